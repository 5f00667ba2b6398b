#compdef fidx
# completion.zsh - zsh completion for fidx: subcommands, their options,
# option values, and files or directories where a command takes them.
# Loaded by eval "$(fidx shell zsh)" (after compinit, as every zsh
# completion), or installed as $(PREFIX)/share/zsh/vendor-completions/_fidx
# and autoloaded by compinit.

_fidx() {
	local curcontext=$curcontext state line ret=1
	local -a cmds common
	cmds=(
		'add:index a directory'
		'rm:forget a project'
		'ls:list projects'
		'visit:rank a file higher: it was opened'
		'reindex:walk a project again'
		'sync:wait until every change so far is indexed'
		'git:branch and changed files'
		'fsmonitor:git'\''s file-system monitor hook'
		'stats:limits, usage, memory'
		'pick:choose files interactively'
		'daemon:start, stop or ask about fidxd'
		'filter:rank lines of stdin, no daemon'
		'shell:key bindings and completion to eval'
	)
	common=('--socket=[the daemon'\''s socket]:socket:_files' '--help[show help]')
	_arguments -C \
		'--socket=[the daemon'\''s socket]:socket:_files' \
		'(-n --limit)'{-n+,--limit=}'[results]:number: ' \
		'(-m --mode)'{-m+,--mode=}'[query mode]:mode:(fuzzy exact regex)' \
		'(-j --json)'{-j,--json}'[print the answer as is]' \
		'(-0 --null)'{-0,--null}'[end each path with NUL]' \
		'(-p --positions)'{-p,--positions}'[matched byte offsets]' \
		'--color=[highlight matches]:when:(auto always never)' \
		'--root=[project root]:directory:_directories' \
		'--git[git status letters]' \
		'--typos=[bytes a query may have wrong]:typos:(0 1 2)' \
		'--timeout=[seconds to wait for an index]:seconds: ' \
		'(- *)--help[show help]' \
		'(- *)--version[show the version]' \
		'1: :->cmd' \
		'*:: :->args' && ret=0
	case $state in
	cmd)
		# A subcommand only first, after --socket: any other option
		# makes the words a query, as fidx.c's main() reads them.
		local w skip=0 query=0
		for w in $words[2,CURRENT-1]; do
			if (( skip )); then
				skip=0
				continue
			fi
			case $w in
			--socket) skip=1 ;;
			--socket=*) ;;
			-*) query=1 ;;
			esac
		done
		(( query )) || _describe -t commands 'fidx command' cmds && ret=0
		;;
	args)
		curcontext=${curcontext%:*:*}:fidx-$words[1]:
		case $words[1] in
		add)
			_arguments $common '--wait[wait for the index]' \
				'--timeout=[seconds]:seconds: ' '--hidden[index dot-files]' \
				'--exclude=[leave out paths matching]:regex: ' \
				'--json[print the answer as is]' \
				'1:directory:_directories' && ret=0 ;;
		rm | git)
			_arguments $common '--json[print the answer as is]' \
				'1:directory:_directories' && ret=0 ;;
		sync)
			_arguments $common '--json[print the answer as is]' \
				'--timeout=[seconds]:seconds: ' \
				'1:directory:_directories' && ret=0 ;;
		reindex)
			_arguments $common '--all[every project]' \
				'--wait[wait for the index]' '--quiet[for cron]' \
				'--timeout=[seconds]:seconds: ' \
				'--json[print the answer as is]' \
				'1:directory:_directories' && ret=0 ;;
		visit)
			_arguments $common '--json[print the answer as is]' \
				'1:file:_files' && ret=0 ;;
		ls | stats)
			_arguments $common '--json[print the answer as is]' && ret=0 ;;
		pick)
			_arguments $common \
				'(-q --query)'{-q+,--query=}'[the first query]:query: ' \
				'--height=[lines, or N%]:height: ' \
				'--root=[project root]:directory:_directories' \
				'(-m --multi --no-multi)'{-m,--multi}'[Tab marks several]' \
				'(-m --multi --no-multi)--no-multi[one path only]' \
				'(-e --exact --regex)'{-e,--exact}'[exact match]' \
				'(-e --exact --regex)--regex[regex match]' \
				'--git[git status letters]' \
				'(-0 --null)'{-0,--null}'[end each path with NUL]' && ret=0 ;;
		daemon)
			_arguments $common '1:action:(start stop status)' && ret=0 ;;
		filter)
			_arguments '--help[show help]' \
				'(-n --limit)'{-n+,--limit=}'[results]:number: ' \
				'(-m --mode)'{-m+,--mode=}'[query mode]:mode:(fuzzy exact regex)' \
				'(-p --positions)'{-p,--positions}'[matched byte offsets]' \
				'(-0 --null)'{-0,--null}'[NUL-separated input and output]' \
				'(-j --json)'{-j,--json}'[one JSON object]' \
				'--color=[highlight matches]:when:(auto always never)' \
				'--max-lines=[candidate lines read]:lines: ' \
				'--max-line-bytes=[longer lines are skipped]:bytes: ' \
				'--max-input-bytes=[bytes read from stdin]:bytes: ' \
				'--threads=[scoring threads]:threads: ' \
				'--typos=[bytes a query may have wrong]:typos:(0 1 2)' && ret=0 ;;
		shell)
			_arguments '--help[show help]' \
				'(--key-bindings)--completion[only the completion]' \
				'(--completion)--key-bindings[only the key bindings]' \
				'1:shell:(bash zsh fish)' && ret=0 ;;
		esac
		;;
	esac
	return ret
}

# Autoloaded from fpath, this file is _fidx's body: define, then run it.
# Evaluated, it registers _fidx (compdef exists once compinit has run).
if [[ $funcstack[1] == _fidx ]]; then
	_fidx "$@"
elif (( $+functions[compdef] )); then
	compdef _fidx fidx
fi
