-- fidx/health.lua - :checkhealth fidx: the fidx command, the socket,
-- fidxd's version and the state of this directory's project.
--
-- Owns: one connection of its own for the duration of the check, with
-- autostart off (a health check does not start a daemon).
-- Never touches: the plugin's own connections or configuration.

local fidx = require('fidx')
local conn = require('fidx.conn')
local uv = vim.loop

local M = {}

-- 0.7 has require('health').report_*; 0.8 vim.health.report_*; 0.9 on
-- vim.health.start/ok/... (report_* deprecated in 0.10).
local h = vim.health or require('health')
local start = h.start or h.report_start
local ok = h.ok or h.report_ok
local warn = h.warn or h.report_warn
local err = h.error or h.report_error
local info = h.info or h.report_info

local function ask(c, msg)
  local done, answer, e = false, nil, nil
  c:request(msg, function(a, x)
    done, answer, e = true, a, x
  end)
  if not vim.wait(5000, function() return done end, 5) then
    return nil, 'no answer in 5 s'
  end
  if answer == nil then
    return nil, e.message
  end
  if answer.ok ~= true then
    return nil, type(answer.error) == 'table' and tostring(answer.error.message) or 'error'
  end
  return answer
end

function M.check()
  start('fidx')
  if vim.fn.has('nvim-0.7') == 1 then
    ok('Neovim ' .. tostring(vim.version().major) .. '.' .. vim.version().minor .. '.' .. vim.version().patch)
  else
    err('Neovim 0.7 or newer is needed')
  end

  local bin = fidx.config.fidx
  local cli_version
  if vim.fn.executable(bin) == 1 then
    local out = vim.fn.system({ bin, '--version' })
    cli_version = (out:match('(%d+%.%d+%.%d+)'))
    ok(string.format('fidx command: %s (%s)', vim.fn.exepath(bin), vim.trim(out)))
  else
    warn(string.format('fidx command %q not found: fidxd cannot be started from Neovim', bin),
      { 'put fidx on $PATH (make install), or', "require('fidx').setup({ fidx = '/path/to/fidx' })" })
  end

  local path = fidx.socket_path()
  local mine = fidx.existing()
  if mine then
    info(string.format('this session\'s connection: %s; %d connects, %d lost, %d daemon starts; '
      .. '%d of max_pending %d unanswered (%d refused busy); max_line_bytes %d (%d over)',
      mine.state, mine.connects, mine.lost_count, mine.starts, mine:inflight(), mine.max_pending,
      mine.refused_busy, mine.max_line_bytes, mine.lines_too_long))
  end
  local st = uv.fs_stat(path)
  if st == nil then
    warn(string.format('no socket at %s: fidxd is not running (the first :Fidx starts it)', path),
      { conn.cmd_prefix(bin, path) .. ' daemon start' })
    return
  end
  if st.type ~= 'socket' then
    err(string.format('%s is a %s, not a socket', path, st.type))
    return
  end
  ok('socket: ' .. path)

  local c = conn.new({ path = path, fidx = bin, autostart = false })
  local ping, why = ask(c, { op = 'ping' })
  if ping == nil then
    err('fidxd does not answer on ' .. path .. ': ' .. tostring(why),
      { conn.cmd_prefix(bin, path) .. ' daemon status' })
    c:close()
    return
  end
  if cli_version and ping.version ~= cli_version then
    warn(string.format('fidxd %s (pid %s) is not the fidx command\'s version %s', tostring(ping.version),
      tostring(ping.pid), cli_version), { conn.cmd_prefix(bin, path) .. ' daemon stop; the next :Fidx starts the new one' })
  else
    ok(string.format('fidxd %s, pid %s', tostring(ping.version), tostring(ping.pid)))
  end

  local root, is_git = fidx.root()
  local answer, perr = ask(c, { op = 'projects' })
  c:close()
  if answer == nil then
    err('projects: ' .. tostring(perr))
    return
  end
  local found
  for _, p in ipairs(answer.projects or {}) do
    if p.root == root then
      found = p
    end
  end
  local kind = is_git and 'git work tree' or 'directory'
  if found == nil then
    info(string.format('project %s (%s) is not indexed yet: the first :Fidx indexes it', root, kind))
    return
  end
  local line = string.format('project %s (%s): %s, %s files, generation %s, watch %s', root, kind,
    tostring(found.state), tostring(found.files), tostring(found.generation), tostring(found.watch))
  if found.state == 'ready' and found.watch == 'watching' then
    ok(line)
  elseif found.state == 'error' or found.state == 'gone' then
    err(line .. (found.message ~= nil and found.message ~= vim.NIL and (': ' .. found.message) or ''))
  else
    local more = {}
    if found.message ~= nil and found.message ~= vim.NIL then
      more[#more + 1] = found.message
    end
    if found.watch_message ~= nil and found.watch_message ~= vim.NIL then
      more[#more + 1] = found.watch_message
    end
    warn(line, more)
  end
end

return M
