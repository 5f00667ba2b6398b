" autoload/fidx.vim - the fidx plugin's connection to fidxd.
"
" Owns: the one channel to fidxd's Unix socket (kept open between
" pickers), the request ids and the callbacks waiting for their answers,
" starting fidxd when nobody answers, and the project root of a :Fidx.
" Never touches: windows or buffers (autoload/fidx/picker.vim draws),
" fidxd's files (it runs `fidx daemon start` and nothing else).
"
" The protocol is README.md's "The daemon protocol": one JSON object per
" line each way, which is a channel in 'nl' mode; every request carries
" an "id", echoed in its answer, by which the answer finds its callback.
" Errors that the user must act on are thrown as "fidx: ..." strings, so
" that :Fidx shows one message, not a stack of Vim errors.
"
" Vim 8.2.4684 or later (ch_open on "unix:"); legacy script, so that
" Vim 9.0 as Debian 12 ships it and later versions read it alike.

let s:save_cpo = &cpo
set cpo&vim

" The channel, or v:null when closed; ids count up for the whole session.
let s:ch = v:null
let s:sock = ''
let s:next_id = 0
" id (as a string key) -> Funcref called with the decoded answer.
let s:pending = {}
" Requests waiting at most this long for an answer by default (ms).
let s:SYNC_TIMEOUT_MS = 10000

" The socket, found as the fidx CLI finds it (common/sockpath.c):
" g:fidx_socket, else $FIDX_SOCKET, else $XDG_RUNTIME_DIR/fidx/sock when
" that is an absolute path, else /tmp/fidx-$UID/sock.
function! fidx#socket() abort
  if !empty(get(g:, 'fidx_socket', ''))
    return g:fidx_socket
  endif
  if !empty($FIDX_SOCKET)
    return $FIDX_SOCKET
  endif
  if $XDG_RUNTIME_DIR =~# '^/'
    return $XDG_RUNTIME_DIR . '/fidx/sock'
  endif
  if !exists('s:uid')
    let s:uid = trim(system('id -u'))
  endif
  return '/tmp/fidx-' . s:uid . '/sock'
endfunction

" The fidx binary that starts the daemon: g:fidx_bin, else fidx in $PATH.
function! fidx#bin() abort
  return get(g:, 'fidx_bin', 'fidx')
endfunction

" The project root for dir (default: the current directory): the
" enclosing git work tree, else the directory itself, symlinks resolved,
" as `fidx` takes it (cli/client.c). Returns [root, is_git].
function! fidx#root(...) abort
  let dir = a:0 > 0 ? a:1 : getcwd()
  let top = ''
  if executable('git')
    let out = systemlist('git -C ' . shellescape(dir) .
        \ ' rev-parse --show-toplevel 2>/dev/null')
    if v:shell_error == 0 && len(out) == 1 && out[0] =~# '^/'
      let top = out[0]
    endif
  endif
  let root = resolve(top !=# '' ? top : fnamemodify(dir, ':p'))
  " resolve() keeps a trailing slash; the daemon's roots have none.
  if len(root) > 1
    let root = substitute(root, '/\+$', '', '')
  endif
  return [root, top !=# '']
endfunction

" True while the channel is open.
function! fidx#connected() abort
  return s:ch isnot v:null && ch_status(s:ch) ==# 'open'
endfunction

" An answer line: handed to the callback waiting for its id. Lines of
" other ids (an answer after its callback gave up) are dropped.
function! s:on_line(ch, msg) abort
  if a:msg =~# '^\s*$'
    return
  endif
  try
    let resp = json_decode(a:msg)
  catch
    return
  endtry
  if type(resp) != v:t_dict || type(get(resp, 'id', v:null)) != v:t_number
    return
  endif
  let key = string(resp.id)
  if has_key(s:pending, key)
    let Cb = remove(s:pending, key)
    call Cb(resp)
  endif
endfunction

" Every request still waiting is answered "disconnected", so a caller
" can ask again (and so reconnect to a daemon started since).
function! s:fail_pending(why) abort
  let waiting = s:pending
  let s:pending = {}
  for [key, Cb] in items(waiting)
    call Cb({'id': str2nr(key), 'ok': v:false,
        \ 'error': {'code': 'disconnected', 'message': a:why}})
  endfor
endfunction

function! s:on_close(ch) abort
  if s:ch is a:ch
    let s:ch = v:null
  endif
  call s:fail_pending('fidxd closed the connection')
endfunction

" The socket's directory must be ours alone when it is fidx's private
" one (".../sock"), as the CLI checks (sockpath_check_dir): a socket in a
" directory others can write could be anyone's.
function! s:dir_error(sock) abort
  if a:sock !~# '/sock$'
    return ''
  endif
  let dir = fnamemodify(a:sock, ':h')
  let perm = getfperm(dir)
  if perm !=# '' && perm !=# 'rwx------'
    return printf('%s is accessible to others (%s); it must be 0700',
        \ dir, perm)
  endif
  return ''
endfunction

" A channel to sock, or v:null if nobody answers there.
function! s:open(sock) abort
  try
    let ch = ch_open('unix:' . a:sock, {'mode': 'nl',
        \ 'callback': function('s:on_line'),
        \ 'close_cb': function('s:on_close')})
  catch /^Vim\%((\a\+)\)\=:E90[0-9]/
    return v:null
  endtry
  return ch_status(ch) ==# 'open' ? ch : v:null
endfunction

" The command that starts fidxd on sock, as a list of words.
function! s:start_cmd(sock) abort
  let cmd = [fidx#bin()]
  if !empty(get(g:, 'fidx_socket', ''))
    let cmd += ['--socket', a:sock]
  endif
  return cmd + ['daemon', 'start']
endfunction

" The words of cmd as a user would type them: quoted only where needed.
function! s:shell_words(cmd) abort
  return join(map(copy(a:cmd),
      \ 'v:val =~# "^[-A-Za-z0-9_./:=@%+,]\\+$" ? v:val : shellescape(v:val)'))
endfunction

" Runs `fidx daemon start`, which returns once fidxd listens (or says
" why it could not). Returns '' or what went wrong.
function! s:start_daemon(sock) abort
  let cmd = s:start_cmd(a:sock)
  let shown = s:shell_words(cmd)
  if !executable(cmd[0])
    return printf("fidxd does not answer on %s and it cannot be started: "
        \ . "'%s' is not an executable (install fidx with `make install`,"
        \ . " or set g:fidx_bin)", a:sock, cmd[0])
  endif
  let out = system(join(map(copy(cmd), 'shellescape(v:val)')))
  if v:shell_error != 0
    let lines = filter(split(out, "\n"), 'v:val !~# "^\\s*$"')
    return printf('fidxd does not answer on %s and `%s` failed (exit %d)%s',
        \ a:sock, shown, v:shell_error, empty(lines) ?
        \ '; run it in a shell to see why' : ': ' . join(lines, ' / '))
  endif
  return ''
endfunction

" Opens the channel if it is not open: connects, else starts fidxd and
" connects. Throws "fidx: ..." when neither works.
function! fidx#connect() abort
  let sock = fidx#socket()
  if fidx#connected() && sock ==# s:sock
    return
  endif
  if s:ch isnot v:null
    call fidx#disconnect()
  endif
  let why = s:dir_error(sock)
  if why !=# ''
    throw 'fidx: ' . why
  endif
  let ch = s:open(sock)
  if ch is v:null
    let why = s:start_daemon(sock)
    if why !=# ''
      throw 'fidx: ' . why
    endif
    let ch = s:open(sock)
    if ch is v:null
      throw printf('fidx: `%s` said fidxd started, but %s accepts no '
          \ . 'connection', s:shell_words(s:start_cmd(sock)), sock)
    endif
  endif
  let s:ch = ch
  let s:sock = sock
endfunction

" Closes the channel; what waited for an answer gets "disconnected".
function! fidx#disconnect() abort
  if s:ch isnot v:null
    let ch = s:ch
    let s:ch = v:null
    try
      call ch_close(ch)
    catch
    endtry
  endif
  call s:fail_pending('disconnected')
endfunction

" Sends req (a Dict, "id" added here) and returns its id; Cb gets the
" decoded answer, or {"ok": false, "error": {"code": "disconnected"}} if
" the connection closes first. A channel found dead on sending (fidxd
" restarted since the last request) is opened again once.
function! fidx#request(req, Cb) abort
  let s:next_id += 1
  let id = s:next_id
  let line = json_encode(extend(copy(a:req), {'id': id})) . "\n"
  for attempt in [1, 2]
    call fidx#connect()
    let s:pending[string(id)] = a:Cb
    try
      call ch_sendraw(s:ch, line)
      return id
    catch /^Vim\%((\a\+)\)\=:E\d\+/
      " The peer is gone: drop this channel, start again once.
      silent! call remove(s:pending, string(id))
      let s:ch = v:null
      call s:fail_pending('fidxd closed the connection')
      if attempt == 2
        throw 'fidx: cannot send to fidxd on ' . fidx#socket() . ': '
            \ . v:exception
      endif
    endtry
  endfor
endfunction

" Forgets the callback of request id: its answer, if any, is dropped.
function! fidx#forget(id) abort
  silent! call remove(s:pending, string(a:id))
endfunction

" Sends req and waits for its answer (at most timeout_ms, default 10 s),
" which it returns. Throws "fidx: ..." on no answer.
function! fidx#request_sync(req, ...) abort
  let timeout_ms = a:0 > 0 ? a:1 : s:SYNC_TIMEOUT_MS
  let box = {}
  let id = fidx#request(a:req, {resp -> extend(box, {'resp': resp})})
  let start = reltime()
  " :sleep reads the channel, so the callback runs meanwhile.
  while !has_key(box, 'resp') &&
      \ reltimefloat(reltime(start)) * 1000 < timeout_ms
    sleep 2m
  endwhile
  if !has_key(box, 'resp')
    call fidx#forget(id)
    throw printf('fidx: no answer from fidxd in %d ms', timeout_ms)
  endif
  return box.resp
endfunction

" The query request for q: opts may set root (default: fidx#root()),
" limit, mode, git, typos, supersede, timeout_ms; positions are asked for.
function! fidx#query_request(q, opts) abort
  let req = {'op': 'query', 'q': a:q, 'positions': v:true,
      \ 'root': get(a:opts, 'root', '')}
  if req.root ==# ''
    let req.root = fidx#root()[0]
  endif
  for k in ['limit', 'mode', 'typos', 'timeout_ms', 'min_generation']
    if has_key(a:opts, k)
      let req[k] = a:opts[k]
    endif
  endfor
  for k in ['git', 'supersede']
    if get(a:opts, k, 0)
      let req[k] = v:true
    endif
  endfor
  return req
endfunction

" Sends the query; Cb gets the whole answer. Returns the request's id.
function! fidx#query(q, opts, Cb) abort
  return fidx#request(fidx#query_request(a:q, a:opts), a:Cb)
endfunction

" The results of q, [{path, score, positions, git?}, ...], once answered;
" a refusal (a bad regex, no such root) is thrown as "fidx: ...".
function! fidx#query_sync(q, ...) abort
  let opts = a:0 > 0 ? a:1 : {}
  let req = fidx#query_request(a:q, opts)
  " As `fidx --git`: a git op first, which waits for a status not cached
  " yet, so this one answer has the letters (the query after it on the
  " channel waits for it). Its answer (not a repository...) is not needed.
  if get(opts, 'git', 0)
    call fidx#request({'op': 'git', 'root': req.root, 'limit': 1},
        \ {resp -> 0})
  endif
  let resp = fidx#request_sync(req,
      \ get(opts, 'timeout_ms', s:SYNC_TIMEOUT_MS) + 1000)
  if !get(resp, 'ok', v:false)
    throw 'fidx: ' . fidx#error_text(resp)
  endif
  return get(resp, 'results', [])
endfunction

" An error answer's message (its code when it has none).
function! fidx#error_text(resp) abort
  let e = get(a:resp, 'error', {})
  if type(e) != v:t_dict
    return 'unexpected answer'
  endif
  return get(e, 'message', get(e, 'code', 'unknown error'))
endfunction

" Tells fidxd that path (relative to root) was opened, so frecency ranks
" it higher; the answer is not waited for. Errors other than a dead
" daemon are not the user's business here and are dropped.
function! fidx#visit(root, path) abort
  try
    call fidx#request({'op': 'visit', 'root': a:root, 'path': a:path},
        \ {resp -> 0})
  catch /^fidx:/
  endtry
endfunction

let &cpo = s:save_cpo
unlet s:save_cpo
