-- telescope/_extensions/fidx.lua - a telescope.nvim picker over fidxd:
-- require('telescope').load_extension('fidx'), then :Telescope fidx.
--
-- Owns: nothing but the telescope picker's definition; every query goes
-- through require('fidx') (its one connection). Only loaded by
-- telescope's load_extension, so without telescope it is never required.
-- The results are fidxd's, in its order: telescope's sorter is not used.

local has, telescope = pcall(require, 'telescope')
if not has then
  error('fidx: this is a telescope.nvim extension and telescope.nvim is not installed; use :Fidx')
end

local pickers = require('telescope.pickers')
local finders = require('telescope.finders')
local sorters = require('telescope.sorters')
local actions = require('telescope.actions')
local action_state = require('telescope.actions.state')
local conf = require('telescope.config').values
local fidx = require('fidx')

local function files(opts)
  opts = opts or {}
  local root = opts.root or (fidx.root(opts.cwd))
  pickers.new(opts, {
    prompt_title = 'fidx ' .. root,
    finder = finders.new_dynamic({
      fn = function(prompt)
        local r = fidx.query_sync(prompt or '', { root = root, limit = opts.limit or 100 })
        return r or {}
      end,
      entry_maker = function(r)
        return { value = r, ordinal = r.path, display = r.path, path = root .. '/' .. r.path }
      end,
    }),
    sorter = sorters.empty(),
    previewer = conf.file_previewer(opts),
    attach_mappings = function()
      actions.select_default:enhance({
        pre = function()
          local e = action_state.get_selected_entry()
          if e and e.value then
            fidx.visit(e.value.path, { root = root })
          end
        end,
      })
      return true
    end,
  }):find()
end

return telescope.register_extension({ exports = { fidx = files } })
