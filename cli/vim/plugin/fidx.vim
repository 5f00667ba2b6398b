" plugin/fidx.vim - :Fidx [query], the fidx file picker for Vim.
"
" Owns: the :Fidx command. Everything else loads on first use from
" autoload/fidx.vim (the connection to fidxd) and autoload/fidx/picker.vim
" (the popup). See :help fidx.

if exists('g:loaded_fidx')
  finish
endif
let g:loaded_fidx = 1

" Unix-domain channels came with 8.2.4684; popups and text properties
" with 8.2. An older Vim says so once, when :Fidx is used.
if v:version < 802 || !has('patch-8.2.4684') || !has('channel')
    \ || !has('popupwin') || !has('textprop') || !has('timers')
  command! -nargs=* Fidx echohl ErrorMsg
      \ | echomsg 'fidx: needs Vim 8.2.4684 or later with +channel, '
      \ . '+popupwin, +textprop and +timers'
      \ | echohl None
  finish
endif

command! -nargs=* Fidx call fidx#picker#open(<q-args>)
