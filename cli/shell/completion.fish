# completion.fish - fish completion for fidx: subcommands, their options,
# option values, and files or directories where a command takes them.
# Loaded by `fidx shell fish | source`, or installed as
# $(PREFIX)/share/fish/vendor_completions.d/fidx.fish.

complete -c fidx -e

# The subcommand: the first word after fidx and its --socket, if any.
# Any other option first makes the words a query, as fidx.c's main()
# reads them: "query", and no subcommand is offered.
function __fidx_cmd
    set -l words (commandline -opc)
    set -e words[1]
    while set -q words[1]
        switch $words[1]
            case --socket
                set -e words[1]
            case '-*'
                echo query
                return 0
            case '*'
                echo $words[1]
                return 0
        end
        set -e words[1]
    end
    return 1
end

# No subcommand: the words are a query (or none yet), so its options.
function __fidx_no_cmd
    not __fidx_cmd; or test (__fidx_cmd) = query
end

# __fidx_in CMD...: the subcommand is one of CMD.
function __fidx_in
    contains -- (__fidx_cmd) $argv
end

# No file names unless a command takes them (a query is not a path).
complete -c fidx -f

complete -c fidx -n 'not __fidx_cmd' -a add -d 'index a directory'
complete -c fidx -n 'not __fidx_cmd' -a rm -d 'forget a project'
complete -c fidx -n 'not __fidx_cmd' -a ls -d 'list projects'
complete -c fidx -n 'not __fidx_cmd' -a visit -d 'rank a file higher'
complete -c fidx -n 'not __fidx_cmd' -a reindex -d 'walk a project again'
complete -c fidx -n 'not __fidx_cmd' -a sync -d 'wait until changes are indexed'
complete -c fidx -n 'not __fidx_cmd' -a fsmonitor -d "git's file-system monitor hook"
complete -c fidx -n 'not __fidx_cmd' -a git -d 'branch and changed files'
complete -c fidx -n 'not __fidx_cmd' -a stats -d 'limits, usage, memory'
complete -c fidx -n 'not __fidx_cmd' -a pick -d 'choose files interactively'
complete -c fidx -n 'not __fidx_cmd' -a daemon -d 'start, stop or ask about fidxd'
complete -c fidx -n 'not __fidx_cmd' -a filter -d 'rank lines of stdin, no daemon'
complete -c fidx -n 'not __fidx_cmd' -a shell -d 'key bindings and completion to eval'

# Every command takes --socket and --help.
complete -c fidx -l socket -r -F -d "the daemon's socket"
complete -c fidx -l help -d 'show help'

# The query's options (no subcommand).
complete -c fidx -n '__fidx_no_cmd' -s n -l limit -x -d results
complete -c fidx -n '__fidx_no_cmd; or __fidx_in filter' -s m -l mode -x -a 'fuzzy exact regex' -d 'query mode'
complete -c fidx -n '__fidx_no_cmd' -s j -l json -d 'print the answer as is'
complete -c fidx -n '__fidx_no_cmd' -s 0 -l null -d 'end each path with NUL'
complete -c fidx -n '__fidx_no_cmd' -s p -l positions -d 'matched byte offsets'
complete -c fidx -n '__fidx_no_cmd; or __fidx_in filter' -l color -x -a 'auto always never' -d 'highlight matches'
complete -c fidx -n '__fidx_no_cmd; or __fidx_in pick' -l root -x -a '(__fish_complete_directories)' -d 'project root'
complete -c fidx -n '__fidx_no_cmd; or __fidx_in pick' -l git -d 'git status letters'
complete -c fidx -n '__fidx_no_cmd; or __fidx_in filter' -l typos -x -a '0 1 2' -d 'bytes a query may have wrong'
complete -c fidx -n '__fidx_no_cmd' -l timeout -x -d 'seconds to wait for an index'
complete -c fidx -n '__fidx_no_cmd' -l version -d 'show the version'

# Subcommands' options and operands.
complete -c fidx -n '__fidx_in add rm reindex sync git' -x -a '(__fish_complete_directories)'
complete -c fidx -n '__fidx_in visit' -F
complete -c fidx -n '__fidx_in add rm ls visit reindex sync git stats filter' -l json -d 'print the answer as is'
complete -c fidx -n '__fidx_in add reindex' -l wait -d 'wait for the index'
complete -c fidx -n '__fidx_in add reindex sync' -l timeout -x -d seconds
complete -c fidx -n '__fidx_in add' -l hidden -d 'index dot-files'
complete -c fidx -n '__fidx_in add' -l exclude -x -d 'leave out paths matching a regex'
complete -c fidx -n '__fidx_in reindex' -l all -d 'every project'
complete -c fidx -n '__fidx_in reindex' -l quiet -d 'for cron'
complete -c fidx -n '__fidx_in pick' -s q -l query -x -d 'the first query'
complete -c fidx -n '__fidx_in pick' -l height -x -d 'lines, or N%'
complete -c fidx -n '__fidx_in pick' -s m -l multi -d 'Tab marks several'
complete -c fidx -n '__fidx_in pick' -l no-multi -d 'one path only'
complete -c fidx -n '__fidx_in pick' -s e -l exact -d 'exact match'
complete -c fidx -n '__fidx_in pick' -l regex -d 'regex match'
complete -c fidx -n '__fidx_in pick filter' -s 0 -l null -d 'NUL-separated'
complete -c fidx -n '__fidx_in daemon' -x -a 'start stop status'
complete -c fidx -n '__fidx_in filter' -s n -l limit -x -d results
complete -c fidx -n '__fidx_in filter' -s p -l positions -d 'matched byte offsets'
complete -c fidx -n '__fidx_in filter' -l max-lines -x -d 'candidate lines read'
complete -c fidx -n '__fidx_in filter' -l max-line-bytes -x -d 'longer lines are skipped'
complete -c fidx -n '__fidx_in filter' -l max-input-bytes -x -d 'bytes read from stdin'
complete -c fidx -n '__fidx_in filter' -l threads -x -d 'scoring threads'
complete -c fidx -n '__fidx_in shell' -x -a 'bash zsh fish'
complete -c fidx -n '__fidx_in shell' -l completion -d 'only the completion'
complete -c fidx -n '__fidx_in shell' -l key-bindings -d 'only the key bindings'
