-- plugin/fidx.lua - :Fidx and what must be known before the first use:
-- the highlight groups and the files written (so that the next query
-- of their project syncs first). Nothing connects until :Fidx or the
-- Lua API is used.
if vim.g.loaded_fidx == 1 or vim.fn.has('nvim-0.7') ~= 1 then
  return
end
vim.g.loaded_fidx = 1

local function highlights()
  vim.cmd([[
    highlight default link FidxNormal NormalFloat
    highlight default link FidxBorder FloatBorder
    highlight default link FidxSelection PmenuSel
    highlight default link FidxMatch Special
    highlight default link FidxStatus Comment
    highlight default link FidxError ErrorMsg
    highlight default link FidxGitIndex String
    highlight default link FidxGitWorktree WarningMsg
  ]])
end
highlights()

local group = vim.api.nvim_create_augroup('fidx', { clear = true })
vim.api.nvim_create_autocmd('ColorScheme', { group = group, callback = highlights })
vim.api.nvim_create_autocmd('BufWritePost', {
  group = group,
  callback = function()
    require('fidx')._wrote()
  end,
})

vim.api.nvim_create_user_command('Fidx', function(a)
  require('fidx').pick({ query = a.args })
end, { nargs = '*', desc = 'fidx: pick a file of this project' })
