-- tests/nvim_cases.lua - the Neovim plugin's cases, run inside a real
-- headless Neovim by tests/nvim.sh, one case per Neovim process:
--
--   FIDX_CASE=picker nvim --headless -u NORC -i NONE --cmd 'set rtp^=cli/nvim' \
--       -c 'luafile tests/nvim_cases.lua'
--
-- Each case is a function run in a coroutine on Neovim's main loop, so
-- that keys fed with nvim_input are typed by Neovim itself between its
-- steps, exactly as a user's are. wait(cond) yields to the loop and
-- polls cond every 10 ms until it holds or its deadline passes (5 s x
-- TIMEOUT_MULTIPLIER): no bare sleeps. Every check writes "ok: ..." or
-- "FAIL: ..." to $FIDX_T/$FIDX_CASE.res; Neovim exits 0 only if every
-- check passed and the case ran to its end ("done" is the last line).
--
-- Environment (from tests/nvim.sh): FIDX_T (the suite's temp dir),
-- FIDX_SOCK (a running fidxd), FIDX_BIN, FIDXD_BIN, FIDX_PROJ (a git
-- work tree of fixtures), FIDX_FAKE (a slow fake fidxd's socket).

local uv = vim.loop
local api = vim.api
local env = function(k)
  return os.getenv(k) or error('no $' .. k)
end
local T, CASE = env('FIDX_T'), env('FIDX_CASE')
local MULT = tonumber(os.getenv('TIMEOUT_MULTIPLIER') or '1') or 1
local out = assert(io.open(T .. '/' .. CASE .. '.res', 'w'))
local failed, co = 0, nil

local function say(line)
  out:write(line, '\n')
  out:flush()
end
local function ok(desc)
  say('ok: ' .. desc)
end
local function fail(desc, detail)
  failed = failed + 1
  say('FAIL: ' .. desc .. (detail and (': ' .. vim.inspect(detail):sub(1, 1500)) or ''))
end
local function check(desc, cond, detail)
  if cond then ok(desc) else fail(desc, detail) end
  return cond
end

local function finish()
  say(failed == 0 and 'done' or ('done, ' .. failed .. ' failed'))
  out:close()
  vim.cmd((failed == 0 and 'qall!' or 'cquit! 1'))
end

-- Yields to the main loop for about ms.
local function pause(ms)
  vim.defer_fn(function()
    assert(coroutine.resume(co))
  end, ms)
  coroutine.yield()
end

-- Waits for cond() to be true; false (and a failed check) at the deadline.
local function wait(desc, cond, secs)
  local deadline = uv.hrtime() + (secs or 5) * MULT * 1e9
  while true do
    local okc, v = pcall(cond)
    if okc and v then
      return true
    end
    if uv.hrtime() > deadline then
      fail('timed out waiting: ' .. desc, okc and nil or v)
      return false
    end
    pause(10)
  end
end

local fidx = require('fidx')
local picker = require('fidx.picker')
local SOCK, BIN, FIDXD, P = env('FIDX_SOCK'), env('FIDX_BIN'), env('FIDXD_BIN'), env('FIDX_PROJ')

local function setup(o)
  fidx.setup(vim.tbl_extend('force', { socket = SOCK, fidx = BIN }, o or {}))
end

local function paths(results)
  local t = {}
  for _, r in ipairs(results or {}) do
    t[#t + 1] = r.path
  end
  return t
end

local function floats()
  local n = 0
  for _, w in ipairs(api.nvim_list_wins()) do
    if api.nvim_win_get_config(w).relative ~= '' then
      n = n + 1
    end
  end
  return n
end

local function list_lines(pk)
  return api.nvim_buf_get_lines(pk.lbuf, 0, -1, false)
end

local function messages()
  return api.nvim_exec('messages', true)
end

-- A fidxd of the case's own, in the foreground, on sock.
local function spawn_fidxd(sock)
  local log = io.open(T .. '/' .. CASE .. '.fidxd.log', 'a')
  log:close()
  local h, pid
  h, pid = uv.spawn('/bin/sh', {
    args = { '-c', 'exec "$0" --foreground --socket "$1" 2>>"$2"', FIDXD, sock, T .. '/' .. CASE .. '.fidxd.log' },
  }, function()
    h:close()
  end)
  return pid
end

local function alive(pid)
  return uv.kill(pid, 0) == 0
end

local function answers(sock)
  vim.fn.system({ BIN, '--socket', sock, 'daemon', 'status' })
  return vim.v.shell_error == 0
end

local cases = {}

-- query_sync returns the expected file; the root is the git work tree.
function cases.query()
  setup()
  local r, a = fidx.query_sync('mkfl', { root = P })
  check('query_sync answers', r ~= nil, a)
  check('Makefile is first', r and r[1] and r[1].path == 'Makefile', r)
  check('with its score and positions', r and r[1] and type(r[1].score) == 'number'
    and vim.deep_equal(r[1].positions, { 0, 2, 4, 6 }), r)
  r = fidx.query_sync('util', { root = P, limit = 1 })
  check('opts.limit', r and #r == 1 and r[1].path == 'src/util.c', r)
  r = fidx.query_sync('^src/.*[.]h$', { root = P, mode = 'regex' })
  check('opts.mode regex', r and vim.deep_equal(paths(r), { 'src/util.h' }), r)
  vim.fn.chdir(P .. '/src')
  local root, is_git = fidx.root()
  check('the root of a subdirectory is its git work tree', root == P and is_git, { root, is_git })
  r = fidx.query_sync('readme')
  check('a query without opts.root uses it', r and r[1] and r[1].path == 'README.md', r)
  local plain = T .. '/plain'
  vim.fn.mkdir(plain .. '/sub', 'p')
  vim.fn.chdir(plain .. '/sub')
  root, is_git = fidx.root()
  check('outside git the root is the current directory', root == plain .. '/sub' and not is_git, { root, is_git })
  vim.fn.chdir(P)
  local r2, e = fidx.query_sync('(', { root = P, mode = 'regex' })
  check('a bad regex is an error, not a traceback', r2 == nil and e.code == 'bad_query', e)
  local c = fidx.conn()
  check('one connection for all of it', c.connects == 1, c.connects)
  -- The socket, as the CLI finds it: setup's, else $FIDX_SOCKET, else
  -- $XDG_RUNTIME_DIR/fidx/sock, else /tmp/fidx-$UID/sock.
  check('setup names the socket', fidx.socket_path() == SOCK, fidx.socket_path())
  check('opts.socket names it for one request', fidx.socket_path({ socket = '/x/s' }) == '/x/s')
  fidx.setup({ fidx = BIN })
  vim.env.FIDX_SOCKET = T .. '/env.sock'
  check('else $FIDX_SOCKET', fidx.socket_path() == T .. '/env.sock', fidx.socket_path())
  vim.env.FIDX_SOCKET = nil
  vim.env.XDG_RUNTIME_DIR = T .. '/run'
  check('else $XDG_RUNTIME_DIR/fidx/sock', fidx.socket_path() == T .. '/run/fidx/sock', fidx.socket_path())
  vim.env.XDG_RUNTIME_DIR = nil
  check('else /tmp/fidx-$UID/sock', fidx.socket_path() == '/tmp/fidx-' .. uv.getuid() .. '/sock', fidx.socket_path())
  setup()
  local done
  fidx.query('mkfl', { root = P }, function(res)
    done = res
  end)
  wait('the async query answers', function() return done end)
  check('query(q, opts, cb) gives the results', done and done[1].path == 'Makefile', done)
end

-- :Fidx opens, typing narrows, highlights, <CR> opens and visits.
function cases.picker()
  setup()
  vim.fn.chdir(P)
  vim.cmd('Fidx')
  local pk = picker.active()
  check(':Fidx opens a picker in two floating windows', pk ~= nil and floats() == 2, floats())
  check('the prompt has the cursor, in insert mode', pk and api.nvim_get_current_win() == pk.pwin)
  if not pk then return end
  wait('the list fills in', function() return #pk.results >= 8 end)
  wait('insert mode in the prompt', function() return api.nvim_get_mode().mode == 'i' end)
  api.nvim_input('mkfl')
  wait('typing narrows to Makefile', function()
    local l = list_lines(pk)
    return #l == 1 and l[1]:match('Makefile$')
  end)
  check('the git column shows a clean file as blanks', list_lines(pk)[1] == '   Makefile', list_lines(pk))
  local marks = api.nvim_buf_get_extmarks(pk.lbuf, api.nvim_create_namespace('fidx'), 0, -1, { details = true })
  local cols = {}
  for _, m in ipairs(marks) do
    if m[4].hl_group == 'FidxMatch' then
      cols[#cols + 1] = m[3]
    end
  end
  check('matched characters are highlighted from positions', vim.deep_equal(cols, { 3, 5, 7, 9 }), marks)
  local every = true
  for _, s in ipairs(pk.sent) do
    every = every and s.id ~= nil
  end
  check('each keystroke sent a query with an id', #pk.sent >= 2 and every, pk.sent)
  api.nvim_input('<CR>')
  wait('<CR> opens Makefile', function()
    return api.nvim_buf_get_name(0) == P .. '/Makefile'
  end)
  check('the picker is gone', floats() == 0 and picker.active() == nil)
  wait('and insert mode is left', function() return api.nvim_get_mode().mode == 'n' end)
  wait('the visit reached fidxd', function()
    local s = fidx.request_sync({ op = 'stats' })
    return s and s.visits.usage.entries >= 1
  end)
  -- An untracked file gets git's letters.
  vim.cmd('Fidx untracked')
  pk = picker.active()
  wait('an untracked file shows ??', function()
    local l = list_lines(pk)
    return l[1] == '?? notes/untracked.txt'
  end)
  api.nvim_input('<Esc>')
  wait('<Esc> closes', function() return floats() == 0 and picker.active() == nil end)
  check('Esc leaves the buffer as it was', api.nvim_buf_get_name(0) == P .. '/Makefile')
  -- A Latin-1 name (not UTF-8): shown with U+FFFD, opened by its bytes.
  vim.cmd('Fidx latin')
  pk = picker.active()
  wait('the Latin-1 name is listed', function() return pk.results[1] and pk.results[1].path_b64 end)
  check('its path_b64 decodes to its bytes', fidx.result_path(pk.results[1]) == 'latin/caf\233.txt', pk.results[1])
  api.nvim_input('<CR>')
  wait('<CR> opens the file of those bytes', function()
    return api.nvim_buf_get_name(0) == P .. '/latin/caf\233.txt'
  end)
  check('which is the file on disk', vim.fn.getline(1) == 'latin1', vim.fn.getline(1))
  for _, t in ipairs({ { '', '' }, { 'Zg==', 'f' }, { 'Zm8=', 'fo' }, { 'Zm9v', 'foo' }, { 'Zm9vYg==', 'foob' },
    { '/w==', '\255' } }) do
    check('base64 ' .. t[1], fidx.b64decode(t[1]) == t[2], fidx.b64decode(t[1]))
  end
  check('bad base64 is nil', fidx.b64decode('Zm9') == nil and fidx.b64decode('Z===') == nil and fidx.b64decode('Zm!v') == nil)
end

-- <C-n>/<C-p>/arrows move; <C-v>, <C-x>, <C-t> open where they say.
function cases.splits()
  setup()
  vim.fn.chdir(P)
  vim.cmd('Fidx')
  local pk = picker.active()
  wait('insert mode in the prompt', function() return api.nvim_get_mode().mode == 'i' end)
  api.nvim_input('src/')
  wait('src/ narrows to the three files', function() return #list_lines(pk) == 3 and pk.q == 'src/' end)
  local first = pk.results[1].path
  api.nvim_input('<C-n>')
  wait('<C-n> moves down', function() return pk.sel == 2 end)
  api.nvim_input('<Down>')
  wait('<Down> moves down', function() return pk.sel == 3 end)
  api.nvim_input('<C-p>')
  wait('<C-p> moves up', function() return pk.sel == 2 end)
  api.nvim_input('<Up>')
  wait('<Up> moves up', function() return pk.sel == 1 end)
  check('the cursor line follows', api.nvim_win_get_cursor(pk.lwin)[1] == 1)
  api.nvim_input('<C-n><C-v>')
  local want = P .. '/' .. pk.results[2].path
  wait('<C-v> opens the second in a vertical split', function()
    return api.nvim_buf_get_name(0) == want and #api.nvim_tabpage_list_wins(0) == 2
  end)
  check('the split is vertical', vim.fn.winlayout()[1] == 'row', vim.fn.winlayout())
  vim.cmd('only')
  vim.cmd('Fidx ' .. first)
  pk = picker.active()
  wait('the query from :Fidx ARG', function() return pk.results[1] and pk.results[1].path == first end)
  api.nvim_input('<C-x>')
  wait('<C-x> opens it in a horizontal split', function()
    return api.nvim_buf_get_name(0) == P .. '/' .. first and vim.fn.winlayout()[1] == 'col'
  end)
  vim.cmd('Fidx mkfl')
  pk = picker.active()
  wait('Makefile for <C-t>', function() return pk.results[1] and pk.results[1].path == 'Makefile' end)
  api.nvim_input('<C-t>')
  wait('<C-t> opens it in a new tab', function()
    return vim.fn.tabpagenr('$') == 2 and api.nvim_buf_get_name(0) == P .. '/Makefile'
  end)
end

-- A fake fidxd (tests/nvim.sh) answers every query 100 ms after the one
-- before, in order, with one path naming the query: after "a", "ab" and
-- "abc" typed 30 ms apart, answers to older queries come in after newer
-- ones were sent. Only the last query's answer may ever be drawn.
function cases.stale()
  setup({ socket = env('FIDX_FAKE'), git = false })
  vim.cmd('Fidx')
  local pk = picker.active()
  wait('the fake answers the first query', function() return list_lines(pk)[1] == 'q-empty.c' end)
  local before = #pk.shown
  for _, k in ipairs({ 'a', 'b', 'c' }) do
    api.nvim_input(k)
    local n = #pk.sent
    wait('the key is sent as its own query', function() return #pk.sent > n end)
    pause(30)
  end
  wait('the answer to abc is drawn', function() return list_lines(pk)[1] == 'q-abc.c' end)
  local last = pk.sent[#pk.sent]
  check('three queries were sent after the first', #pk.sent == 4, pk.sent)
  check('the last one sent is abc', last.q == 'abc', pk.sent)
  local drawn = {}
  for i = before + 1, #pk.shown do
    drawn[#drawn + 1] = pk.shown[i]
  end
  check('only its answer was drawn', #drawn == 1 and drawn[1].id == last.id and drawn[1].q == 'abc', drawn)
  -- The fake answered every query, in order: the older answers came
  -- and were dropped.
  wait('the fake answered all four', function() return pk.inflight == 0 end)
  check('older answers came in and were dropped', #pk.shown == before + 1, pk.shown)
  check('the screen still shows abc', list_lines(pk)[1] == 'q-abc.c', list_lines(pk))
  api.nvim_input('<Esc>')
end

-- fidxd killed and started again mid-session: the same Neovim finds it.
function cases.restart()
  local sock = T .. '/restart.sock'
  -- No autostart, so that only the case starts daemons; no git column,
  -- whose "pending" retries would query while fidxd is down.
  setup({ socket = sock, autostart = false, git = false })
  local pid = spawn_fidxd(sock)
  wait('the case\'s fidxd listens', function() return answers(sock) end)
  local r = fidx.query_sync('mkfl', { root = P })
  check('a first answer', r and r[1] and r[1].path == 'Makefile', r)
  vim.fn.chdir(P)
  vim.cmd('Fidx')
  local pk = picker.active()
  wait('the picker fills in', function() return #pk.results >= 8 and pk.inflight == 0 end)
  uv.kill(pid, 'sigkill')
  wait('fidxd is dead', function() return not alive(pid) end)
  wait('the plugin saw the connection close', function() return fidx.conn().state == 'closed' end)
  pid = spawn_fidxd(sock)
  wait('a new fidxd listens on the same socket', function() return answers(sock) end)
  wait('insert mode in the prompt', function() return api.nvim_get_mode().mode == 'i' end)
  api.nvim_input('mkfl')
  wait('typing after the restart gets answers', function()
    local l = list_lines(pk)
    return #l == 1 and l[1]:match('Makefile$')
  end)
  check('on a second connection', fidx.conn().connects == 2, fidx.conn().connects)
  api.nvim_input('<Esc>')
  -- Killed under an unanswered request: tried once more, on the new one.
  uv.kill(pid, 'sigterm')
  wait('fidxd stopped', function() return not alive(pid) end)
  pid = spawn_fidxd(sock)
  wait('and started again', function() return answers(sock) end)
  r = fidx.query_sync('readme', { root = P })
  check('query_sync after the second restart', r and r[1] and r[1].path == 'README.md', r)
  uv.kill(pid, 'sigterm')
  wait('the case\'s fidxd stops', function() return not alive(pid) end)
end

-- No daemon on the socket: the plugin runs `fidx daemon start`.
function cases.autostart()
  local sock = T .. '/auto/sock'
  setup({ socket = sock })
  local r, e = fidx.query_sync('mkfl', { root = P })
  check('the first query started fidxd and was answered', r and r[1] and r[1].path == 'Makefile', e)
  check('fidxd runs on the socket', answers(sock))
  vim.fn.system({ BIN, '--socket', sock, 'daemon', 'stop' })
  check('and stops', vim.v.shell_error == 0)
end

-- No fidx binary to start fidxd with: one message, no traceback.
function cases.nobinary()
  setup({ socket = T .. '/none/sock', fidx = T .. '/no/such/fidx' })
  vim.cmd('messages clear')
  local r, e = fidx.query_sync('x', { root = P })
  check('query_sync says no_daemon', r == nil and e and e.code == 'no_daemon', e)
  check('naming the missing command', e and e.message:find('was not found', 1, true), e)
  vim.cmd('Fidx')
  wait('the picker closes', function() return picker.active() == nil and floats() == 0 end)
  local m = messages()
  local _, n = m:gsub('fidx: fidxd is not running', '')
  check('one message says why and what to do', n == 1 and m:find('setup({fidx', 1, true), m)
  check('no traceback, no E5108', not m:find('traceback') and not m:find('E5108') and not m:find('Error executing'), m)
  -- A fidx that cannot start it: its reason, once.
  setup({ socket = T .. '/none/sock', fidx = '/bin/false' })
  vim.cmd('messages clear')
  vim.cmd('Fidx')
  wait('the picker closes', function() return picker.active() == nil end)
  m = messages()
  check('a failed start is said with the command', m:find('daemon start` failed: exit 1', 1, true), m)
  -- A start that never finishes is killed after start_timeout_ms.
  local hang = T .. '/hang.sh'
  local f = assert(io.open(hang, 'w'))
  f:write('#!/bin/sh\nexec sleep 600\n')
  f:close()
  vim.fn.setfperm(hang, 'rwx------')
  setup({ socket = T .. '/none/sock', fidx = hang, start_timeout_ms = 300 })
  local r2, e2 = fidx.query_sync('x', { root = P })
  check('a start that hangs is given up after start_timeout_ms', r2 == nil and e2.code == 'no_daemon'
    and e2.message:find('did not finish within 300 ms', 1, true), e2)
end

-- A file written with :w is in the very next query.
function cases.write()
  setup()
  vim.fn.chdir(P)
  local r = fidx.query_sync('brandnew', { root = P })
  check('not there before', r and #r == 0, r)
  for i = 1, 3 do
    local name = string.format('src/brandnew%d.c', i)
    vim.cmd('edit ' .. name)
    api.nvim_buf_set_lines(0, 0, -1, false, { 'int x;' })
    vim.cmd('write')
    r = fidx.query_sync('brandnew' .. i, { root = P })
    check('the next query finds ' .. name, r and r[1] and r[1].path == name, r)
  end
  vim.cmd('edit src/brandnew4.c | write')
  vim.cmd('Fidx brandnew4')
  local pk = picker.active()
  if not wait('and so does the next :Fidx', function() return list_lines(pk)[1] == '?? src/brandnew4.c' end) then
    fail('the list', { list_lines(pk), pk.shown })
  end
  check('in the first answer drawn', pk.shown[1] and pk.shown[1].first == 'src/brandnew4.c', pk.shown)
  api.nvim_input('<Esc>')
end

-- An idle picker follows the tree: a file made outside Neovim appears.
function cases.refresh()
  -- No git column: its own retries while the status is stale would
  -- query again too, and hide whether the idle look does.
  setup({ git = false })
  vim.fn.chdir(P)
  vim.cmd('Fidx outside')
  local pk = picker.active()
  wait('the first answer', function() return #pk.shown >= 1 end)
  check('nothing matches yet', #pk.results == 0, pk.results)
  local f = assert(io.open(P .. '/docs/outside_made.txt', 'w'))
  f:write('x\n')
  f:close()
  wait('the file made outside shows up with no key pressed', function()
    return pk.results[1] and pk.results[1].path == 'docs/outside_made.txt'
  end)
  api.nvim_input('<Esc>')
  wait('closed', function() return picker.active() == nil end)
  check('its timer is gone with it', pk.refresh == nil and pk.timer == nil)
end

-- :checkhealth fidx and :help fidx.
function cases.health()
  setup()
  vim.fn.chdir(P)
  fidx.query_sync('x', { root = P })
  vim.cmd('checkhealth fidx')
  local text = table.concat(api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  check(':checkhealth fidx reports no error', text:find('OK') and not text:find('ERROR'), text)
  check('names the fidx command', text:find('fidx command: ' .. BIN, 1, true), text)
  check('the socket', text:find('socket: ' .. SOCK, 1, true), text)
  check("fidxd's version", text:find('fidxd 0%.%d+%.%d+, pid %d+'), text)
  check("and the project's state", text:find('project ' .. P .. ' (git work tree): ready', 1, true), text)
  check("and this session's connection with its bounds", text:find("this session's connection: open; 1 connects", 1, true)
    and text:find('max_pending 256', 1, true), text)
  vim.cmd('tabclose')
  setup({ socket = T .. '/none/sock' })
  vim.cmd('checkhealth fidx')
  text = table.concat(api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  check('no daemon is a warning with the command to run', text:find('WARNING') and text:find('daemon start', 1, true)
    and not text:find('ERROR'), text)
  vim.cmd('tabclose')
  for _, tag in ipairs({ 'fidx', ':Fidx', 'fidx-keys', 'fidx.query_sync()', 'fidx-install', 'fidx-health' }) do
    local okh, e = pcall(vim.cmd, 'help ' .. tag)
    check(':help ' .. tag .. ' resolves', okh and vim.bo.filetype == 'help'
      and api.nvim_buf_get_name(0):match('cli/nvim/doc/fidx%.txt$'), e)
    pcall(vim.cmd, 'helpclose')
  end
end

-- The connection's bounds: max_pending and max_line_bytes, counted.
function cases.bounds()
  setup({ max_pending = 2 })
  local c = fidx.conn()
  local got = {}
  for i = 1, 3 do
    fidx.request({ op = 'ping' }, {}, function(a, e)
      got[i] = a and 'ok' or e.code
    end)
  end
  wait('three answers', function() return got[1] and got[2] and got[3] end)
  check('past max_pending a request is refused busy', vim.deep_equal(got, { 'ok', 'ok', 'busy' }), got)
  check('and counted', c.refused_busy == 1, c.refused_busy)
  setup({ max_line_bytes = 100 })
  local r, e = fidx.query_sync('', { root = P, limit = 50, timeout_ms = 1000 })
  check('an answer over max_line_bytes fails the request', r == nil and e.message:find('max_line_bytes', 1, true), e)
  check('and is counted', c.lines_too_long == 1 and c.state == 'closed', { c.lines_too_long, c.state })
  setup()
  r = fidx.query_sync('mkfl', { root = P })
  check('the next request connects again', r and r[1] and r[1].path == 'Makefile' and c.connects == 2, { r, c.connects })
end

-- The telescope source: used when telescope is there, skipped when not.
function cases.telescope()
  local has = pcall(require, 'telescope')
  if not has then
    ok('telescope.nvim is not installed: its source is skipped')
    local f = assert(loadfile(vim.fn.fnamemodify(debug.getinfo(1).source:sub(2), ':h:h')
      .. '/cli/nvim/lua/telescope/_extensions/fidx.lua'))
    check('and the source file compiles', type(f) == 'function')
    return
  end
  setup()
  require('telescope').load_extension('fidx')
  check('the extension loads', require('telescope').extensions.fidx.fidx ~= nil)
end

vim.schedule(function()
  co = coroutine.create(function()
    local fn = cases[CASE]
    if not fn then
      fail('no case ' .. CASE)
    else
      local okc, e = xpcall(fn, debug.traceback)
      if not okc then
        fail('the case raised an error', e)
      end
    end
    finish()
  end)
  local okr, e = coroutine.resume(co)
  if not okr then
    fail('the case could not start', e)
    finish()
  end
end)
