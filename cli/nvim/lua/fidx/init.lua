-- fidx/init.lua - the Lua API of the fidx plugin (see :help fidx-lua).
--
-- Owns: the configuration (setup), one connection per socket path
-- (fidx/conn.lua does the talking), the project root of a directory,
-- and which roots had a file written since their last `sync`.
-- Never touches: windows and buffers (fidx/picker.lua draws the picker).
--
-- require('fidx').query(q, opts, cb)   cb(results, answer) or cb(nil, err)
-- require('fidx').query_sync(q, opts)  results, answer or nil, err
-- with results = { {path=, score=, positions={...}, git=?}, ... } and
-- err = {code=, message=}; opts: root, limit, mode, socket, git,
-- positions, timeout_ms. Every request goes on the socket's one kept
-- connection; none spawns a process.

local uv = vim.loop
local conn = require('fidx.conn')

local M = {}

local defaults = {
  socket = nil, -- nil: $FIDX_SOCKET, else $XDG_RUNTIME_DIR/fidx/sock, else /tmp/fidx-$UID/sock
  fidx = 'fidx', -- the command that starts fidxd when none runs
  autostart = true,
  limit = 50,
  mode = 'fuzzy',
  git = true, -- the picker's git column, in a git work tree
  timeout_ms = 10000, -- query_sync's wait, and fidxd's for a first index
  max_pending = 256, -- requests unanswered on a connection (then busy)
  max_line_bytes = 64 * 1024 * 1024, -- an answer line (then reconnect)
  start_timeout_ms = 15000, -- `fidx daemon start` (then killed: no_daemon)
  picker = { width = 0.8, height = 0.6, border = 'rounded', prompt = '> ' },
}

M.config = vim.deepcopy(defaults)

-- Connections by socket path; a session uses one or two.
local conns = {}
-- Files written (BufWritePost) in this session, and for each
-- "socket\0root" the count at its last sync: a root behind the count is
-- synced before its next query, so a file just saved is in the answer.
-- Bounded: past MAX_ROOTS entries the table starts over, which costs
-- each root one more sync, never a stale answer.
local writes = 0
local synced = {}
local nsynced = 0
local MAX_ROOTS = 256

function M.setup(opts)
  M.config = vim.tbl_deep_extend('force', vim.deepcopy(defaults), opts or {})
  for _, c in pairs(conns) do
    c:configure(M.config)
  end
  return M
end

-- The socket the CLI uses (common/sockpath.c) unless opts or setup name one.
function M.socket_path(opts)
  local s = (opts and opts.socket) or M.config.socket
  if s and s ~= '' then
    return s
  end
  local env = os.getenv('FIDX_SOCKET')
  if env and env ~= '' then
    return env
  end
  local xdg = os.getenv('XDG_RUNTIME_DIR')
  if xdg and xdg:sub(1, 1) == '/' then
    return xdg .. '/fidx/sock'
  end
  return '/tmp/fidx-' .. uv.getuid() .. '/sock'
end

-- The connection to the socket of opts (or setup), made if need be;
-- existing(opts) gives it only if it was made.
function M.existing(opts)
  return conns[M.socket_path(opts)]
end

function M.conn(opts)
  local path = M.socket_path(opts)
  local c = conns[path]
  if c == nil then
    c = conn.new(vim.tbl_extend('force', M.config, { path = path }))
    conns[path] = c
  end
  return c
end

-- GIT_CEILING_DIRECTORIES, as git reads it: never look above these.
local function ceilings()
  local set = {}
  for d in (os.getenv('GIT_CEILING_DIRECTORIES') or ''):gmatch('[^:]+') do
    set[(uv.fs_realpath(d) or d):gsub('/+$', '')] = true
  end
  return set
end

-- The project root of dir (default: the current directory): the
-- enclosing git work tree (a directory holding .git, a directory or a
-- worktree's file), else dir itself; real paths, as fidxd resolves
-- roots. Returns root, is_git. Found with stat() only: no git process.
function M.root(dir)
  dir = dir or uv.cwd()
  local real = uv.fs_realpath(dir) or dir
  local ceil = ceilings()
  local d = real
  while true do
    if uv.fs_stat(d .. '/.git') then
      return d, true
    end
    local parent = d:match('^(.*)/[^/]+$')
    if parent == nil or d == '/' then
      break
    end
    if parent == '' then
      parent = '/'
    end
    if ceil[parent] then
      break
    end
    d = parent
  end
  return real, false
end

-- BufWritePost (plugin/fidx.lua): the next query of each root syncs.
function M._wrote()
  writes = writes + 1
end

-- Sends `sync` ahead of a query when a file was written since root's
-- last one. It is not waited for: fidxd answers a connection in order,
-- so the query behind it is scored once every change is in the index.
function M._sync_if_written(c, root)
  local key = c.path .. '\0' .. root
  local at = synced[key]
  if writes == 0 or at == writes then
    return
  end
  if at == nil then
    if nsynced >= MAX_ROOTS then
      synced, nsynced = {}, 0
    end
    nsynced = nsynced + 1
  end
  synced[key] = writes
  -- A root that is no project yet answers no_project: nothing to wait for.
  c:request({ op = 'sync', root = root, timeout_ms = M.config.timeout_ms }, function() end)
end

local function err_of(answer)
  local e = type(answer.error) == 'table' and answer.error or {}
  return { code = e.code or 'error', message = e.message or 'fidxd answered an error' }
end

-- The query request fidx.query and the picker send.
function M._query_request(q, opts, root)
  local req = {
    op = 'query',
    root = root,
    q = q,
    limit = opts.limit or M.config.limit,
    mode = opts.mode or M.config.mode,
    positions = opts.positions ~= false,
    timeout_ms = opts.timeout_ms or M.config.timeout_ms,
  }
  if opts.git then
    req.git = true
  end
  if opts.supersede then
    req.supersede = true
  end
  return req
end

-- cb(results, answer) on success, cb(nil, err) otherwise; a connection
-- lost under the request (fidxd restarted) is tried once more.
function M.query(q, opts, cb)
  opts = opts or {}
  local c = M.conn(opts)
  local root = opts.root or (M.root())
  local tries = 0
  local function send()
    tries = tries + 1
    M._sync_if_written(c, root)
    return c:request(M._query_request(q or '', opts, root), function(answer, err)
      if answer == nil then
        if err.code == 'disconnected' and tries < 2 then
          return send()
        end
        return cb(nil, err)
      end
      if answer.ok ~= true then
        return cb(nil, err_of(answer))
      end
      cb(answer.results or {}, answer)
    end)
  end
  return send()
end

-- Any request, answered the same way: cb(answer) or cb(nil, err).
function M.request(msg, opts, cb)
  local c = M.conn(opts)
  return c:request(msg, function(answer, err)
    if answer == nil then
      return cb(nil, err)
    end
    if answer.ok ~= true then
      return cb(nil, err_of(answer))
    end
    cb(answer)
  end)
end

-- Waits for fn(cb)'s callback, running the event loop meanwhile.
local function wait(fn, timeout_ms)
  local done, a, b = false, nil, nil
  fn(function(x, y)
    done, a, b = true, x, y
  end)
  local ok = vim.wait(timeout_ms, function()
    return done
  end, 2)
  if not ok then
    return nil, { code = 'timeout', message = string.format('no answer from fidxd in %d ms', timeout_ms) }
  end
  return a, b
end

function M.query_sync(q, opts)
  opts = opts or {}
  -- fidxd's own wait for a first index, plus time for the answer.
  local ms = (opts.timeout_ms or M.config.timeout_ms) + 5000
  return wait(function(cb)
    M.query(q, opts, cb)
  end, ms)
end

function M.request_sync(msg, opts)
  opts = opts or {}
  return wait(function(cb)
    M.request(msg, opts, cb)
  end, opts.timeout_ms or M.config.timeout_ms + 5000)
end

-- Frecency: tells fidxd that path (relative to root, or absolute under
-- it) was opened.
function M.visit(path, opts, cb)
  opts = opts or {}
  local root = opts.root or (M.root())
  return M.request({ op = 'visit', root = root, path = path }, opts, cb or function() end)
end

-- The bytes of a strict base64 string (fidxd's path_b64, for a name
-- that is not UTF-8; Neovim 0.7 has no base64 of its own), nil if it is
-- not base64.
local B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
local b64val = {}
for i = 1, 64 do
  b64val[B64:byte(i)] = i - 1
end
function M.b64decode(s)
  if #s % 4 ~= 0 then
    return nil
  end
  local out = {}
  for i = 1, #s, 4 do
    local a, b, c, d = s:byte(i, i + 3)
    local va, vb = b64val[a], b64val[b]
    local vc = c == 61 and 0 or b64val[c]
    local vd = d == 61 and 0 or b64val[d]
    if va == nil or vb == nil or vc == nil or vd == nil or (c == 61 and d ~= 61) then
      return nil
    end
    local n = ((va * 64 + vb) * 64 + vc) * 64 + vd
    local bytes = string.char(math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
    if c == 61 then
      bytes = bytes:sub(1, 1)
    elseif d == 61 then
      bytes = bytes:sub(1, 2)
    end
    out[#out + 1] = bytes
  end
  return table.concat(out)
end

-- A result's path as bytes: path_b64 decoded when fidxd sent one.
function M.result_path(r)
  if type(r.path_b64) == 'string' then
    return M.b64decode(r.path_b64) or r.path
  end
  return r.path
end

-- Shows err once, as one line: no traceback.
function M.error(msg)
  vim.api.nvim_echo({ { 'fidx: ' .. msg, 'ErrorMsg' } }, true, {})
end

function M.pick(opts)
  return require('fidx.picker').open(opts or {})
end

return M
