" autoload/fidx/picker.vim - the :Fidx picker: a popup window with a
" prompt line and the results, queried as you type.
"
" Owns: the one picker's popup, its query text, the results shown, the
" cursor, and the id of the query whose answer it waits for.
" Never touches: the channel (autoload/fidx.vim sends and receives),
" buffers other than the popup's, until a file is opened.
"
" Each keystroke sends a query with "supersede", so fidxd cancels the
" one before; the picker keeps only the newest id, and any other answer
" (cancelled, or overtaken on the way) is dropped, so fast typing never
" shows stale results.

let s:save_cpo = &cpo
set cpo&vim

" How long fidxd may hold a query for an index still being built before
" it answers "timeout"; the picker then says "indexing" and asks again.
let s:INDEXING_POLL_MS = 500
" Retry delays: git letters still being computed; a full query queue.
let s:GIT_RETRY_MS = 100
let s:BUSY_RETRY_MS = 50
" Results asked for: enough to scroll through, few enough to draw at once.
let s:DEFAULT_LIMIT = 100
" Answers the picker keeps a record of, for fidx#picker#state().
let s:HISTORY_MAX = 64

" The picker; empty when none is open.
let s:p = {}

function! s:hl() abort
  " Groups every Vim has, syntax on or off; a colorscheme may set ours.
  highlight default FidxMatch term=bold cterm=bold ctermfg=green
      \ gui=bold guifg=#3cb371
  highlight default link FidxSelected PmenuSel
  highlight default link FidxPrompt Question
  highlight default link FidxGit WarningMsg
  highlight default link FidxInfo NonText
  highlight default FidxCursor term=reverse cterm=reverse gui=reverse
  for [name, group, prio] in [['fidx_match', 'FidxMatch', 30],
      \ ['fidx_selected', 'FidxSelected', 10],
      \ ['fidx_prompt', 'FidxPrompt', 20], ['fidx_git', 'FidxGit', 20],
      \ ['fidx_info', 'FidxInfo', 20], ['fidx_cursor', 'FidxCursor', 40]]
    if empty(prop_type_get(name))
      call prop_type_add(name, {'highlight': group, 'priority': prio,
          \ 'combine': v:true})
    endif
  endfor
endfunction

" Opens the picker with query q. opts: root (default: the git work tree
" enclosing the current directory, else it), limit, mode. A daemon that
" cannot be reached or started is one error message, and no popup.
function! fidx#picker#open(q, ...) abort
  let opts = a:0 > 0 ? a:1 : {}
  if !empty(s:p)
    call fidx#picker#close()
  endif
  if has_key(opts, 'root')
    let [root, is_git] = [opts.root, get(opts, 'git', v:false)]
  else
    let [root, is_git] = fidx#root()
  endif
  try
    call fidx#connect()
  catch /^fidx:/
    call s:error(v:exception)
    return 0
  endtry
  call s:hl()
  let width = max([20, min([get(g:, 'fidx_width', 100), &columns - 6])])
  let rows = max([1, min([get(g:, 'fidx_rows', 15), &lines - 6])])
  let s:p = {'root': root, 'git': is_git, 'q': a:q, 'results': [],
      \ 'cursor': 0, 'top': 0, 'want': 0, 'matched': 0, 'state': '',
      \ 'msg': 'searching', 'rows': rows, 'width': width,
      \ 'limit': get(opts, 'limit', get(g:, 'fidx_limit', s:DEFAULT_LIMIT)),
      \ 'mode': get(opts, 'mode', ''), 'retried': 0, 'timer': -1,
      \ 'sent': {}, 'history': []}
  let s:p.winid = popup_create([''], {'title': ' fidx: ' . root . ' ',
      \ 'border': [], 'padding': [0, 1, 0, 1], 'minwidth': width,
      \ 'maxwidth': width, 'minheight': rows + 1, 'maxheight': rows + 1,
      \ 'wrap': v:false, 'scrollbar': 0, 'zindex': 200, 'mapping': 0,
      \ 'filter': function('s:filter'), 'callback': function('s:on_closed'),
      \ 'highlight': 'Normal'})
  " An edit saved a moment ago may not be indexed yet: sync first (its
  " answer is not needed: the query after it on this connection waits
  " for it). A root that is no project yet is added by the query.
  try
    call fidx#request({'op': 'sync', 'root': root, 'timeout_ms': 1000},
        \ {resp -> 0})
  catch /^fidx:/
  endtry
  call s:render()
  call s:send()
  return s:p.winid
endfunction

function! s:error(msg) abort
  echohl ErrorMsg
  echomsg a:msg
  echohl None
endfunction

" Sends the query as it stands; its answer is the only one to show.
function! s:send() abort
  if empty(s:p)
    return
  endif
  call s:stop_timer()
  let opts = {'root': s:p.root, 'limit': s:p.limit, 'supersede': 1,
      \ 'git': s:p.git, 'timeout_ms': s:INDEXING_POLL_MS}
  if s:p.mode !=# ''
    let opts.mode = s:p.mode
  endif
  if s:p.want != 0
    call fidx#forget(s:p.want)
  endif
  try
    let s:p.want = fidx#query(s:p.q, opts, function('s:on_answer'))
    let s:p.sent = {string(s:p.want): s:p.q}
  catch /^fidx:/
    let s:p.want = 0
    let s:p.msg = v:exception
    call s:render()
  endtry
endfunction

function! s:stop_timer() abort
  if !empty(s:p) && s:p.timer != -1
    call timer_stop(s:p.timer)
    let s:p.timer = -1
  endif
endfunction

function! s:later(ms) abort
  call s:stop_timer()
  let s:p.timer = timer_start(a:ms, {t -> s:send()})
endfunction

function! s:on_answer(resp) abort
  " An older keystroke's answer, or the picker is gone: dropped.
  if empty(s:p) || get(a:resp, 'id', -1) != s:p.want
    return
  endif
  let s:p.want = 0
  if !get(a:resp, 'ok', v:false)
    let code = get(get(a:resp, 'error', {}), 'code', '')
    if code ==# 'timeout'
      " No index yet: say so and ask again.
      let s:p.msg = 'indexing'
      call s:render()
      call s:send()
      return
    elseif code ==# 'busy'
      call s:later(s:BUSY_RETRY_MS)
      return
    elseif code ==# 'disconnected' && !s:p.retried
      " fidxd went away (a restart): connect again, once.
      let s:p.retried = 1
      call s:send()
      return
    endif
    " A regex being typed ("(") and the like: shown, not fatal.
    let s:p.msg = fidx#error_text(a:resp)
    let s:p.results = []
    let s:p.matched = 0
    call s:clamp()
    call s:render()
    return
  endif
  let s:p.retried = 0
  let s:p.msg = ''
  let s:p.results = get(a:resp, 'results', [])
  let s:p.matched = get(a:resp, 'matched', len(s:p.results))
  let s:p.state = get(a:resp, 'state', '')
  call add(s:p.history, get(s:p.sent, string(a:resp.id), ''))
  if len(s:p.history) > s:HISTORY_MAX
    call remove(s:p.history, 0)
  endif
  call s:clamp()
  call s:render()
  " git's letters are being computed: ask again shortly.
  if s:p.git && get(a:resp, 'git_status', '') ==# 'pending'
    call s:later(s:GIT_RETRY_MS)
  endif
endfunction

function! s:clamp() abort
  let n = len(s:p.results)
  let s:p.cursor = max([0, min([s:p.cursor, n - 1])])
  if s:p.cursor < s:p.top
    let s:p.top = s:p.cursor
  elseif s:p.cursor >= s:p.top + s:p.rows
    let s:p.top = s:p.cursor - s:p.rows + 1
  endif
  let s:p.top = max([0, s:p.top])
endfunction

" The popup's lines: the prompt, then one line per visible result with
" the matched bytes ("positions") highlighted; git's letters before the
" path when the project is a git work tree.
function! s:render() abort
  if empty(s:p) || empty(popup_getpos(s:p.winid))
    return
  endif
  let w = s:p.width
  let prompt = '> ' . s:p.q
  let info = s:p.msg !=# '' ? s:p.msg : s:p.matched . ' matched' .
      \ (s:p.state !=# '' && s:p.state !=# 'ready' ? ' (' . s:p.state . ')'
      \ : '')
  let gap = max([1, w - strdisplaywidth(prompt) - 1 - strdisplaywidth(info)])
  let lines = [{'text': prompt . ' ' . repeat(' ', gap) . info,
      \ 'props': [{'col': 1, 'length': 2, 'type': 'fidx_prompt'},
      \ {'col': len(prompt) + 1, 'length': 1, 'type': 'fidx_cursor'},
      \ {'col': len(prompt) + 2 + gap, 'length': len(info),
      \  'type': 'fidx_info'}]}]
  let i = s:p.top
  while i < len(s:p.results) && i < s:p.top + s:p.rows
    let r = s:p.results[i]
    let mark = i == s:p.cursor ? '> ' : '  '
    let lead = mark
    let props = []
    if s:p.git
      let letters = get(r, 'git', '')
      let letters = letters . repeat(' ', 2 - len(letters))
      if letters !=# '  '
        call add(props, {'col': len(lead) + 1, 'length': 2,
            \ 'type': 'fidx_git'})
      endif
      let lead .= letters . ' '
    endif
    let path = get(r, 'path', '')
    let [shown, skip] = s:tail(path, w - len(lead))
    " Byte p of the path is at column len(lead) + (p - skip) + 1 of the
    " line; "..", when the head is cut, stands in for bytes 0 to skip.
    let at = len(lead) + len(shown) - (len(path) - skip)
    for pos in get(r, 'positions', [])
      if pos >= skip && pos < len(path)
        call add(props, {'col': at + pos - skip + 1, 'length': 1,
            \ 'type': 'fidx_match'})
      endif
    endfor
    let text = lead . shown
    let text .= repeat(' ', max([0, w - strdisplaywidth(text)]))
    if i == s:p.cursor
      call add(props, {'col': 1, 'length': len(text),
          \ 'type': 'fidx_selected'})
    endif
    call add(lines, {'text': text, 'props': props})
    let i += 1
  endwhile
  call popup_settext(s:p.winid, lines)
endfunction

" A path too wide for the columns left keeps its end, the file name,
" behind "..": returns [the text shown, the bytes of path cut off].
function! s:tail(path, room) abort
  if strdisplaywidth(a:path) <= a:room || a:room < 4
    return [a:path, 0]
  endif
  let k = strchars(a:path) - (a:room - 2)
  let skip = byteidx(a:path, max([k, 0]))
  while skip >= 0 && strdisplaywidth(strpart(a:path, skip)) > a:room - 2
    let k += 1
    let skip = byteidx(a:path, k)
  endwhile
  if skip < 0
    return [a:path, 0]
  endif
  return ['..' . strpart(a:path, skip), skip]
endfunction

" The query text less its last character.
function! s:backspace(q) abort
  return strcharpart(a:q, 0, strchars(a:q) - 1)
endfunction

function! s:edited(q) abort
  let s:p.q = a:q
  let s:p.cursor = 0
  let s:p.top = 0
  call s:send()
  call s:render()
endfunction

function! s:move(delta) abort
  let s:p.cursor += a:delta
  call s:clamp()
  call s:render()
endfunction

" The keys. Everything is consumed: the picker is modal.
function! s:filter(winid, key) abort
  let k = a:key
  if k ==# "\<Esc>" || k ==# "\<C-c>" || k ==# "\<C-g>"
    call fidx#picker#close()
  elseif k ==# "\<CR>"
    call s:accept('edit')
  elseif k ==# "\<C-x>" || k ==# "\<C-s>"
    call s:accept('split')
  elseif k ==# "\<C-v>"
    call s:accept('vsplit')
  elseif k ==# "\<C-t>"
    call s:accept('tabedit')
  elseif k ==# "\<C-n>" || k ==# "\<Down>" || k ==# "\<C-j>"
    call s:move(1)
  elseif k ==# "\<C-p>" || k ==# "\<Up>" || k ==# "\<C-k>"
    call s:move(-1)
  elseif k ==# "\<PageDown>" || k ==# "\<C-f>"
    call s:move(s:p.rows)
  elseif k ==# "\<PageUp>" || k ==# "\<C-b>"
    call s:move(-s:p.rows)
  elseif k ==# "\<BS>" || k ==# "\<C-h>"
    if s:p.q !=# ''
      call s:edited(s:backspace(s:p.q))
    endif
  elseif k ==# "\<C-u>"
    call s:edited('')
  elseif k ==# "\<C-w>"
    call s:edited(substitute(s:p.q, '\S*\s*$', '', ''))
  elseif k =~# '^\p$' || (strchars(k) == 1 && char2nr(k) >= 0xa0)
    call s:edited(s:p.q . k)
  endif
  return 1
endfunction

" The test suites' way in: one key as the filter gets it.
function! fidx#picker#key(key) abort
  if empty(s:p)
    return 0
  endif
  return s:filter(s:p.winid, a:key)
endfunction

" What the picker shows, for tests and statuslines: its query, the paths
" listed, the cursor, the popup's id, the message, and the queries whose
" answers were shown, oldest first.
function! fidx#picker#state() abort
  if empty(s:p)
    return {}
  endif
  return {'q': s:p.q, 'root': s:p.root, 'git': s:p.git,
      \ 'paths': map(copy(s:p.results), 'get(v:val, "path", "")'),
      \ 'results': deepcopy(s:p.results), 'cursor': s:p.cursor,
      \ 'winid': s:p.winid, 'msg': s:p.msg, 'waiting': s:p.want != 0,
      \ 'history': copy(s:p.history)}
endfunction

" Opens the file under the cursor with cmd (edit, split, vsplit,
" tabedit) once the popup is closed, and tells fidxd it was visited.
function! s:accept(cmd) abort
  if empty(s:p.results)
    return
  endif
  let r = s:p.results[s:p.cursor]
  let root = s:p.root
  call fidx#picker#close()
  if has_key(r, 'path_b64')
    call s:error('fidx: ' . get(r, 'path', '') . ' is not a UTF-8 name; '
        \ . 'open it from the shell (fidx pick)')
    return
  endif
  call fidx#visit(root, r.path)
  " Out of the filter's callback: opening a window from it is refused.
  call timer_start(0, {t -> s:open_file(a:cmd, root . '/' . r.path)})
endfunction

function! s:open_file(cmd, path) abort
  try
    execute a:cmd fnameescape(a:path)
  catch
    call s:error(substitute(v:exception, '^Vim\%((\a\+)\)\=:', '', ''))
  endtry
endfunction

function! fidx#picker#close() abort
  if empty(s:p)
    return
  endif
  let p = s:p
  let s:p = {}
  if p.timer != -1
    call timer_stop(p.timer)
  endif
  if p.want != 0
    call fidx#forget(p.want)
  endif
  if p.winid != -1
    call popup_close(p.winid)
  endif
endfunction

" The popup closed by other means (CTRL-C, popup_clear()).
function! s:on_closed(winid, result) abort
  if !empty(s:p) && s:p.winid == a:winid
    let s:p.winid = -1
    call fidx#picker#close()
  endif
endfunction

let &cpo = s:save_cpo
unlet s:save_cpo
