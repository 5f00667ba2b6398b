-- fidx/picker.lua - the :Fidx picker: a prompt and a result list in
-- floating windows, fed by fidxd as you type.
--
-- Owns: the picker's two buffers and windows, its keys, the results
-- shown and the queries in flight for them.
-- Never touches: the socket except through fidx.conn (one connection,
-- shared with the rest of the plugin); other windows, except to open the
-- file picked in the window :Fidx was called from.
--
-- Every change of the prompt sends one query with "supersede": fidxd
-- cancels the one before, and only the answer to the last query sent is
-- drawn, so fast typing never shows stale results. At most MAX_INFLIGHT
-- requests are unanswered; past that the newest query waits for a slot
-- and the keys in between are never sent (fidx pick does the same).

local fidx = require('fidx')
local api = vim.api

local M = {}

M.MAX_INFLIGHT = 16
-- While the project has no index yet, a query waits this long in fidxd
-- and is sent again, so the status stays current ("indexing...").
M.INDEXING_POLL_MS = 200
-- git letters still "pending" or "stale": the pause before asking
-- again, and how many times for one query (a tree that keeps changing
-- stays "stale": its letters may lag, the picker does not poll for good).
M.GIT_RETRY_MS = 100
M.GIT_RETRIES = 50
-- After "busy" (fidxd's query queue full): the pause before trying again.
M.BUSY_RETRY_MS = 50
-- How often an idle picker asks `projects` (no scoring) whether its
-- project has a new generation (a file made or deleted outside Neovim,
-- a reindex), to query again if so; fidx pick does the same.
M.REFRESH_MS = 1000
-- The record of queries sent and answers drawn that tests read
-- (picker.sent, picker.shown): the last LOG_MAX of each.
M.LOG_MAX = 512

local ns = api.nvim_create_namespace('fidx')
local active = nil

local Picker = {}
Picker.__index = Picker

function M.active()
  return active
end

local function log(list, entry)
  if #list >= M.LOG_MAX then
    table.remove(list, 1)
  end
  list[#list + 1] = entry
end

local function layout(cfg)
  local cols, lines = vim.o.columns, vim.o.lines - vim.o.cmdheight
  local width = math.max(20, math.min(cols - 4, math.floor(cols * cfg.width)))
  -- prompt: 1 line and its border; list: height lines and their border.
  local height = math.max(1, math.min(lines - 7, math.floor(lines * cfg.height)))
  local row = math.max(0, math.floor((lines - height - 5) / 2))
  local col = math.max(0, math.floor((cols - width - 2) / 2))
  return {
    prompt = { relative = 'editor', row = row, col = col, width = width, height = 1,
      style = 'minimal', border = cfg.border, zindex = 60 },
    list = { relative = 'editor', row = row + 3, col = col, width = width, height = height,
      style = 'minimal', border = cfg.border, zindex = 50, focusable = false },
    height = height,
  }
end

function M.open(opts)
  if active then
    active:close()
  end
  local cfg = fidx.config
  local pcfg = cfg.picker
  local root, is_git = fidx.root(opts.cwd)
  if opts.root then
    root = vim.loop.fs_realpath(opts.root) or opts.root
    is_git = select(2, fidx.root(root))
  end
  local self = setmetatable({
    root = root,
    git = (opts.git == nil and cfg.git and is_git) or opts.git == true,
    mode = opts.mode or cfg.mode,
    socket = opts.socket,
    conn = fidx.conn(opts),
    prompt = pcfg.prompt,
    q = nil,
    want_id = nil, -- the last query sent: the only one drawn
    inflight = 0,
    dirty = false, -- the prompt changed while no slot was free
    timer = nil,
    results = {},
    matched = 0,
    sel = 1,
    state = nil,
    msg = nil,
    tries = 0,
    git_retries = 0,
    sent = {}, -- {id=, q=} of each query sent (tests)
    shown = {}, -- {id=, q=, n=, first=} of each answer drawn (tests)
    prev_win = api.nvim_get_current_win(),
    closed = false,
  }, Picker)
  active = self
  local lay = layout(pcfg)
  self.limit = lay.height

  self.lbuf = api.nvim_create_buf(false, true)
  vim.bo[self.lbuf].bufhidden = 'wipe'
  self.lwin = api.nvim_open_win(self.lbuf, false, lay.list)
  vim.wo[self.lwin].cursorline = true
  vim.wo[self.lwin].wrap = false
  vim.wo[self.lwin].winhighlight = 'Normal:FidxNormal,FloatBorder:FidxBorder,CursorLine:FidxSelection'

  self.pbuf = api.nvim_create_buf(false, true)
  vim.bo[self.pbuf].bufhidden = 'wipe'
  vim.bo[self.pbuf].buftype = 'prompt'
  vim.fn.prompt_setprompt(self.pbuf, self.prompt)
  self.pwin = api.nvim_open_win(self.pbuf, true, lay.prompt)
  vim.wo[self.pwin].winhighlight = 'Normal:FidxNormal,FloatBorder:FidxBorder'
  if opts.query and opts.query ~= '' then
    api.nvim_buf_set_lines(self.pbuf, 0, -1, false, { self.prompt .. opts.query })
  end
  self:keys()
  local group = api.nvim_create_augroup('fidx_picker', { clear = true })
  api.nvim_create_autocmd({ 'TextChangedI', 'TextChanged' }, {
    group = group, buffer = self.pbuf,
    callback = function()
      self:changed()
    end,
  })
  api.nvim_create_autocmd({ 'WinLeave', 'BufLeave' }, {
    group = group, buffer = self.pbuf,
    callback = function()
      -- Leaving the prompt (a mouse click, a :wincmd) ends the picker.
      vim.schedule(function()
        self:close()
      end)
    end,
  })
  api.nvim_create_autocmd('VimResized', {
    group = group,
    callback = function()
      self:resize()
    end,
  })
  vim.cmd('startinsert!')
  self:changed()
  self.refresh = vim.loop.new_timer()
  self.refresh:start(M.REFRESH_MS, M.REFRESH_MS, vim.schedule_wrap(function()
    self:look()
  end))
  return self
end

-- The idle look: a new generation of the project queries again.
function Picker:look()
  if self.closed or self.inflight > 0 or self.looking or self.generation == nil then
    return
  end
  self.looking = true
  self.conn:request({ op = 'projects' }, function(answer)
    self.looking = false
    if self.closed or answer == nil or answer.ok ~= true then
      return
    end
    for _, p in ipairs(answer.projects or {}) do
      if p.root == self.root and p.generation ~= self.generation and self.inflight == 0 then
        self.git_retries = 0
        return self:send()
      end
    end
  end)
end

function Picker:resize()
  if self.closed then
    return
  end
  local lay = layout(fidx.config.picker)
  api.nvim_win_set_config(self.pwin, lay.prompt)
  api.nvim_win_set_config(self.lwin, lay.list)
  if lay.height ~= self.limit then
    self.limit = lay.height
    self.q = nil
    self:changed()
  end
end

function Picker:keys()
  local function map(lhs, fn)
    vim.keymap.set('i', lhs, fn, { buffer = self.pbuf, nowait = true })
  end
  local function mapn(lhs, fn)
    vim.keymap.set('n', lhs, fn, { buffer = self.pbuf, nowait = true })
  end
  map('<CR>', function() self:accept('edit') end)
  map('<C-x>', function() self:accept('split') end)
  map('<C-v>', function() self:accept('vsplit') end)
  map('<C-t>', function() self:accept('tabedit') end)
  map('<C-n>', function() self:move(1) end)
  map('<Down>', function() self:move(1) end)
  map('<C-p>', function() self:move(-1) end)
  map('<Up>', function() self:move(-1) end)
  map('<Esc>', function() self:close() end)
  map('<C-c>', function() self:close() end)
  mapn('<CR>', function() self:accept('edit') end)
  mapn('<Esc>', function() self:close() end)
  mapn('q', function() self:close() end)
  mapn('j', function() self:move(1) end)
  mapn('k', function() self:move(-1) end)
end

function Picker:query_text()
  local line = api.nvim_buf_get_lines(self.pbuf, 0, 1, false)[1] or ''
  if line:sub(1, #self.prompt) == self.prompt then
    return line:sub(#self.prompt + 1)
  end
  return line
end

function Picker:changed()
  if self.closed then
    return
  end
  local q = self:query_text()
  if q == self.q then
    return
  end
  self.q = q
  self.sel = 1
  self.git_retries = 0
  self:send()
end

function Picker:later(ms)
  if self.timer then
    return
  end
  self.timer = vim.defer_fn(function()
    self.timer = nil
    self:send()
  end, ms)
end

function Picker:send()
  if self.closed then
    return
  end
  if self.inflight >= M.MAX_INFLIGHT then
    self.dirty = true
    return
  end
  self.dirty = false
  fidx._sync_if_written(self.conn, self.root)
  local q = self.q or ''
  local req = fidx._query_request(q, {
    limit = self.limit, mode = self.mode, git = self.git, supersede = true,
    timeout_ms = M.INDEXING_POLL_MS,
  }, self.root)
  self.inflight = self.inflight + 1
  local id
  id = self.conn:request(req, function(answer, err)
    self.inflight = self.inflight - 1
    self:answered(id, q, answer, err)
  end)
  if id == nil then
    return
  end
  self.want_id = id
  log(self.sent, { id = id, q = q })
end

function Picker:answered(id, q, answer, err)
  if self.closed then
    return
  end
  if id ~= self.want_id then
    -- An older keystroke's answer (or "cancelled"): never drawn.
    if self.dirty then
      self:send()
    end
    return
  end
  if answer == nil then
    -- fidxd went away under the query: once more, on a new connection
    -- (started again if it must be); then the message, and the end.
    if err.code == 'disconnected' and self.tries < 1 then
      self.tries = self.tries + 1
      return self:send()
    end
    self:close()
    return fidx.error(err.message)
  end
  self.tries = 0
  if answer.ok ~= true then
    local e = type(answer.error) == 'table' and answer.error or {}
    if e.code == 'timeout' then
      self.state = 'indexing...'
      self:status()
      return self:later(1)
    elseif e.code == 'busy' then
      return self:later(M.BUSY_RETRY_MS)
    elseif e.code == 'cancelled' then
      return
    end
    -- A regex being typed ("(") and the like: said in the status line.
    self.msg = tostring(e.message or e.code)
    self.results, self.matched = {}, 0
    log(self.shown, { id = id, q = q, n = 0 })
    return self:draw()
  end
  self.msg = nil
  self.generation = answer.generation
  self.results = answer.results or {}
  self.matched = answer.matched or #self.results
  local st = {}
  if answer.state and answer.state ~= 'ready' then
    st[#st + 1] = answer.state
  end
  if answer.watch == 'degraded' then
    st[#st + 1] = 'watch degraded'
  end
  self.state = #st > 0 and table.concat(st, '  ') or nil
  log(self.shown, { id = id, q = q, n = #self.results, first = self.results[1] and self.results[1].path })
  self:draw()
  -- git's letters are being computed ("pending": none yet; "stale":
  -- from before the last change, a file just saved has none): ask again,
  -- at most GIT_RETRIES times for one query.
  if self.git and (answer.git_status == 'pending' or answer.git_status == 'stale') then
    if self.git_retries < M.GIT_RETRIES then
      self.git_retries = self.git_retries + 1
      self:later(M.GIT_RETRY_MS)
    end
  end
  -- The prompt changed while every slot was taken: its query now.
  if self.dirty then
    self:send()
  end
end

function Picker:status()
  if self.closed then
    return
  end
  api.nvim_buf_clear_namespace(self.pbuf, ns, 0, -1)
  local text = self.msg or string.format('%d/%d', math.min(#self.results, self.matched), self.matched)
  if self.state then
    text = text .. '  ' .. self.state
  end
  pcall(api.nvim_buf_set_extmark, self.pbuf, ns, 0, 0, {
    virt_text = { { text, self.msg and 'FidxError' or 'FidxStatus' } },
    virt_text_pos = 'right_align',
  })
end

function Picker:draw()
  local lines = {}
  local pre = self.git and 3 or 0
  for i, r in ipairs(self.results) do
    local path = tostring(r.path or ''):gsub('\n', '?')
    if self.git then
      lines[i] = string.format('%-2s ', r.git or '') .. path
    else
      lines[i] = path
    end
  end
  vim.bo[self.lbuf].modifiable = true
  api.nvim_buf_set_lines(self.lbuf, 0, -1, false, lines)
  vim.bo[self.lbuf].modifiable = false
  api.nvim_buf_clear_namespace(self.lbuf, ns, 0, -1)
  for i, r in ipairs(self.results) do
    if self.git and r.git then
      api.nvim_buf_add_highlight(self.lbuf, ns, 'FidxGitIndex', i - 1, 0, 1)
      api.nvim_buf_add_highlight(self.lbuf, ns, 'FidxGitWorktree', i - 1, 1, 2)
    end
    -- Byte offsets in the path, each run of adjacent ones one highlight.
    local pos = type(r.positions) == 'table' and r.positions or {}
    local j = 1
    while j <= #pos do
      local s, e = pos[j], pos[j] + 1
      while j < #pos and pos[j + 1] == e do
        j = j + 1
        e = e + 1
      end
      api.nvim_buf_add_highlight(self.lbuf, ns, 'FidxMatch', i - 1, pre + s, pre + e)
      j = j + 1
    end
  end
  self.sel = math.max(1, math.min(self.sel, #self.results))
  if #self.results > 0 then
    api.nvim_win_set_cursor(self.lwin, { self.sel, 0 })
  end
  self:status()
end

function Picker:move(d)
  if #self.results == 0 then
    return
  end
  self.sel = (self.sel - 1 + d) % #self.results + 1
  api.nvim_win_set_cursor(self.lwin, { self.sel, 0 })
end

function Picker:selected()
  return self.results[self.sel]
end

function Picker:close()
  if self.closed then
    return
  end
  self.closed = true
  if active == self then
    active = nil
  end
  if self.timer then
    if not self.timer:is_closing() then
      self.timer:stop()
      self.timer:close()
    end
    self.timer = nil
  end
  if self.refresh then
    self.refresh:stop()
    self.refresh:close()
    self.refresh = nil
  end
  pcall(api.nvim_del_augroup_by_name, 'fidx_picker')
  for _, w in ipairs({ self.pwin, self.lwin }) do
    if api.nvim_win_is_valid(w) then
      pcall(api.nvim_win_close, w, true)
    end
  end
  if api.nvim_win_is_valid(self.prev_win) then
    api.nvim_set_current_win(self.prev_win)
  end
  vim.cmd('stopinsert')
end

-- how: edit, split, vsplit or tabedit, in the window :Fidx came from.
function Picker:accept(how)
  local r = self:selected()
  self:close()
  if r == nil or r.path == nil then
    return
  end
  local path = fidx.result_path(r)
  local abs = self.root == '/' and ('/' .. path) or (self.root .. '/' .. path)
  -- Frecency learns from the editor; the answer is not waited for.
  local visit = { op = 'visit', root = self.root }
  if r.path_b64 then
    visit.path_b64 = r.path_b64
  else
    visit.path = r.path
  end
  self.conn:request(visit, function() end)
  local ok, err = pcall(vim.cmd, how .. ' ' .. vim.fn.fnameescape(vim.fn.fnamemodify(abs, ':~:.')))
  if not ok then
    fidx.error(tostring(err):gsub('^Vim:', ''):gsub('^Vim%(%a+%):', ''))
  end
end

return M
