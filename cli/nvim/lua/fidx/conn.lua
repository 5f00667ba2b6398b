-- fidx/conn.lua - one connection to fidxd over its Unix socket.
--
-- Owns: the pipe (vim.loop), the bytes read and not yet a whole line,
-- the requests sent and not yet answered (their ids and callbacks), and
-- the lines waiting for the connection to open; starting fidxd when no
-- one listens (`fidx --socket PATH daemon start`, once per connect).
-- Never touches: windows, buffers or messages; it only calls callbacks.
--
-- The protocol is the README's "The daemon protocol": one JSON object a
-- line each way, answers in order, each echoing its request's "id". The
-- connection is kept open and used for every request; when fidxd goes
-- away (EOF, a read or write error) every unanswered request is failed
-- with code "disconnected" and the next request connects again, starting
-- fidxd if it must, so a daemon restarted mid-session is simply found.
-- Callbacks run on the main loop (vim.schedule), never in a fast event,
-- as cb(answer) for an answer (ok or not) or cb(nil, err) with err =
-- {code=..., message=...} for a failure of the connection itself.

local uv = vim.loop

local M = {}

-- Requests sent and not answered: past this, request() fails with
-- "busy" at once (the picker keeps far fewer in flight; this bounds a
-- caller that sends without waiting). Lines waiting for the connection
-- to open are among them. setup({max_pending = N}).
M.MAX_PENDING = 256
-- A line longer than this from fidxd closes the connection: it is 16
-- times fidxd's default output cap per client (--max-output-bytes 4M),
-- so only a daemon whose cap was raised that far reaches it.
-- setup({max_line_bytes = N}).
M.MAX_LINE_BYTES = 64 * 1024 * 1024
-- `fidx daemon start` still running after this is killed and its start
-- counted as failed; its own waits are shorter. setup({start_timeout_ms = N}).
M.START_TIMEOUT_MS = 15000

local json_encode = vim.json and vim.json.encode or vim.fn.json_encode
local json_decode = vim.json and vim.json.decode or vim.fn.json_decode

local Conn = {}
Conn.__index = Conn

-- opts: path (the socket), fidx (the command that starts the daemon),
-- autostart (default true), max_pending, max_line_bytes.
function M.new(opts)
  local self = setmetatable({}, Conn)
  self.path = opts.path
  self:configure(opts)
  self.state = 'closed' -- closed, connecting, open
  self.pipe = nil
  self.next_id = 0
  self.pending = {} -- id -> callback
  self.npending = 0
  self.outq = {} -- lines written once open
  self.parts = {} -- pieces of the line being read
  self.nparts = 0 -- their bytes
  self.last_error = nil -- an answer without an id (capped, forbidden)
  -- Counters, shown by :checkhealth fidx: connections made, lost
  -- (fidxd went away or broke the protocol), daemons started, requests
  -- refused at max_pending, answers over max_line_bytes.
  self.connects, self.lost_count, self.starts = 0, 0, 0
  self.refused_busy, self.lines_too_long = 0, 0
  return self
end

function Conn:configure(opts)
  self.fidx = opts.fidx or 'fidx'
  self.autostart = opts.autostart ~= false
  self.max_pending = opts.max_pending or M.MAX_PENDING
  self.max_line_bytes = opts.max_line_bytes or M.MAX_LINE_BYTES
  self.start_timeout_ms = opts.start_timeout_ms or M.START_TIMEOUT_MS
end

local function fail(code, message)
  return { code = code, message = message }
end

-- The socket path quoted for a shell, as the CLI prints it.
local function shquote(s)
  if s:match('^[%w%%+,./:=@_-]+$') then
    return s
  end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

function M.cmd_prefix(fidx, path)
  return (fidx or 'fidx') .. ' --socket ' .. shquote(path)
end

-- Fails every unanswered request and every queued line with err.
function Conn:fail_all(err)
  local pending = self.pending
  self.pending, self.npending, self.outq = {}, 0, {}
  local cbs = {}
  for _, cb in pairs(pending) do
    cbs[#cbs + 1] = cb
  end
  if #cbs > 0 then
    vim.schedule(function()
      for _, cb in ipairs(cbs) do
        cb(nil, err)
      end
    end)
  end
end

function Conn:close_pipe()
  local p = self.pipe
  self.pipe = nil
  self.state = 'closed'
  self.parts, self.nparts = {}, 0
  if p and not p:is_closing() then
    p:read_stop()
    p:close()
  end
end

-- fidxd went away or broke the protocol: every waiter hears why.
function Conn:lost(message, code)
  self.lost_count = self.lost_count + 1
  self:close_pipe()
  self:fail_all(fail(code or 'disconnected', message))
end

function Conn:too_long()
  self.lines_too_long = self.lines_too_long + 1
  -- Not "disconnected": asking again would get the same answer.
  self:lost(string.format('an answer from fidxd on %s is longer than %d bytes (max_line_bytes)',
    self.path, self.max_line_bytes), 'too_long')
end

function Conn:close()
  self:close_pipe()
  self:fail_all(fail('closed', 'the connection to fidxd was closed'))
end

function Conn:dispatch(line, ready)
  if line:match('^[ \t\r]*$') then
    return
  end
  local ok, msg = pcall(json_decode, line)
  if not ok or type(msg) ~= 'table' then
    return self:lost('fidxd on ' .. self.path .. ' answered with a line that is not JSON')
  end
  local id = msg.id
  local cb = id ~= nil and self.pending[id] or nil
  if cb == nil then
    -- capped, forbidden, line_too_long: said once, then fidxd closes.
    if msg.ok == false and type(msg.error) == 'table' then
      self.last_error = msg.error
    end
    return
  end
  self.pending[id] = nil
  self.npending = self.npending - 1
  ready[#ready + 1] = { cb, msg }
end

function Conn:on_read(err, chunk)
  if err or chunk == nil then
    local why = err and ('reading: ' .. err) or 'it closed the connection'
    if self.last_error then
      why = self.last_error.code .. ': ' .. tostring(self.last_error.message)
    end
    return self:lost('fidxd on ' .. self.path .. ' went away (' .. why .. ')')
  end
  local ready = {}
  local start = 1
  while true do
    local nl = chunk:find('\n', start, true)
    if nl == nil then
      break
    end
    local piece = chunk:sub(start, nl - 1)
    if self.nparts + #piece > self.max_line_bytes then
      return self:too_long()
    end
    if self.nparts > 0 then
      self.parts[#self.parts + 1] = piece
      piece = table.concat(self.parts)
      self.parts, self.nparts = {}, 0
    end
    self:dispatch(piece, ready)
    if self.state ~= 'open' then
      return
    end
    start = nl + 1
  end
  if start <= #chunk then
    local rest = chunk:sub(start)
    self.nparts = self.nparts + #rest
    if self.nparts > self.max_line_bytes then
      return self:too_long()
    end
    self.parts[#self.parts + 1] = rest
  end
  if #ready > 0 then
    vim.schedule(function()
      for _, r in ipairs(ready) do
        r[1](r[2])
      end
    end)
  end
end

function Conn:write(line)
  self.pipe:write(line, function(err)
    if err and self.state == 'open' then
      self:lost('fidxd on ' .. self.path .. ' went away (writing: ' .. err .. ')')
    end
  end)
end

function Conn:opened(pipe)
  self.pipe = pipe
  self.state = 'open'
  self.last_error = nil
  self.connects = self.connects + 1
  pipe:read_start(function(err, chunk)
    if self.pipe == pipe then
      self:on_read(err, chunk)
    end
  end)
  local q = self.outq
  self.outq = {}
  for _, line in ipairs(q) do
    self:write(line)
  end
end

-- Runs `fidx --socket PATH daemon start`; done(nil) once it says the
-- socket listens, done(message) if it could not.
function Conn:start_daemon(done)
  local cmd = M.cmd_prefix(self.fidx, self.path) .. ' daemon start'
  if vim.fn.executable(self.fidx) ~= 1 then
    return done(string.format("fidxd is not running on %s, and the fidx command (%s) was not found to start it: "
      .. "put fidx on $PATH (make install) or set require('fidx').setup({fidx = '/path/to/fidx'})", self.path, self.fidx))
  end
  self.starts = self.starts + 1
  local stderr = uv.new_pipe(false)
  local errs = {}
  local handle
  local timer = uv.new_timer()
  local timed_out = false
  local ok, spawn_err = pcall(function()
    handle = uv.spawn(self.fidx, {
      args = { '--socket', self.path, 'daemon', 'start' },
      stdio = { nil, nil, stderr },
      detached = true,
    }, function(code, signal)
      timer:stop()
      timer:close()
      handle:close()
      stderr:close()
      if code == 0 and signal == 0 and not timed_out then
        return done(nil)
      end
      local said = table.concat(errs):gsub('%s+$', ''):gsub('\n.*', '')
      if timed_out then
        said = string.format('it did not finish within %d ms (start_timeout_ms)', self.start_timeout_ms)
      elseif said == '' then
        said = signal ~= 0 and ('killed by signal ' .. signal) or ('exit ' .. code)
      end
      done(string.format('fidxd is not running on %s and `%s` failed: %s', self.path, cmd, said))
    end)
  end)
  if not ok or not handle then
    timer:close()
    stderr:close()
    return done(string.format('cannot run `%s`: %s', cmd, tostring(spawn_err)))
  end
  timer:start(self.start_timeout_ms, 0, function()
    timed_out = true
    handle:kill('sigkill')
  end)
  stderr:read_start(function(_, data)
    if data and #errs < 64 then
      errs[#errs + 1] = data
    end
  end)
end

function Conn:connect()
  if self.state ~= 'closed' then
    return
  end
  self.state = 'connecting'
  local started = false
  local function attempt()
    local pipe = uv.new_pipe(false)
    pipe:connect(self.path, function(err)
      if err == nil then
        return self:opened(pipe)
      end
      pipe:close()
      local nobody = err:match('ENOENT') or err:match('ECONNREFUSED')
      if nobody and self.autostart and not started then
        started = true
        -- vim.fn is not callable in this fast callback.
        return vim.schedule(function()
          self:start_daemon(function(msg)
            if msg then
              self.state = 'closed'
              return self:fail_all(fail('no_daemon', msg))
            end
            attempt()
          end)
        end)
      end
      self.state = 'closed'
      local msg
      if nobody and started then
        msg = string.format('fidxd started but %s accepts no connections', self.path)
      elseif nobody then
        msg = string.format('fidxd is not running on %s (`%s daemon start` starts it)', self.path, M.cmd_prefix(self.fidx, self.path))
      else
        msg = string.format('cannot connect to fidxd on %s: %s', self.path, err)
      end
      self:fail_all(fail('no_daemon', msg))
    end)
  end
  attempt()
end

-- Sends msg (a table; its id is set here) and calls cb once with the
-- answer. Returns the id, or nil when too many requests are unanswered.
function Conn:request(msg, cb)
  if self.npending >= self.max_pending then
    self.refused_busy = self.refused_busy + 1
    vim.schedule(function()
      cb(nil, fail('busy', string.format('%d requests to fidxd are unanswered (max_pending)', self.max_pending)))
    end)
    return nil
  end
  self.next_id = self.next_id + 1
  local id = self.next_id
  msg.id = id
  local ok, line = pcall(json_encode, msg)
  if not ok then
    vim.schedule(function()
      cb(nil, fail('bad_request', 'cannot encode the request: ' .. tostring(line)))
    end)
    return nil
  end
  self.pending[id] = cb
  self.npending = self.npending + 1
  line = line .. '\n'
  if self.state == 'open' then
    self:write(line)
  else
    self.outq[#self.outq + 1] = line
    self:connect()
  end
  return id
end

-- Unanswered requests, for tests and :checkhealth.
function Conn:inflight()
  return self.npending
end

return M
