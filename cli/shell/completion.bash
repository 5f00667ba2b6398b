# completion.bash - bash completion for fidx: subcommands, their options,
# option values, and files or directories where a command takes them.
# Loaded by eval "$(fidx shell bash)", or installed as
# $(PREFIX)/share/bash-completion/completions/fidx. Plain compgen, so it
# needs neither the bash-completion package nor its helpers.

# _fidx_paths -f|-d WORD: files or directories, one reply per name, so a
# name holding a space or a '*' stays one (no word splitting, no glob).
_fidx_paths() {
	compopt -o filenames
	mapfile -t COMPREPLY < <(compgen "$1" -- "$2")
}

_fidx() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=
	local cmds='add rm ls visit reindex sync git fsmonitor stats pick daemon filter shell'
	local qopts='--limit --mode --json --null --positions --color= --root
		--git --typos --timeout --socket --help --version'
	local i cmd= opts= args=
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}

	# The subcommand: the first word after fidx and its --socket. Any
	# other option first makes the words a query, as fidx.c's main()
	# reads them (cmd=query: no subcommand is offered).
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--socket) ((i++)) ;;
		-n | --limit | -m | --mode | --root | --typos | --timeout)
			((i++)); cmd=query ;;
		-*) cmd=query ;;
		*) [[ -n $cmd ]] || cmd=${COMP_WORDS[i]}; break ;;
		esac
	done

	# Options' values first: they are the same under every command.
	case $prev in
	--socket) _fidx_paths -f "$cur"; return ;;
	--root) _fidx_paths -d "$cur"; return ;;
	-m | --mode) COMPREPLY=($(compgen -W 'fuzzy exact regex' -- "$cur")); return ;;
	--exclude | -n | --limit | --typos | --timeout | -q | --query | --height | \
	--max-lines | --max-line-bytes | --max-input-bytes | --threads)
		return ;;
	esac
	if [[ $cur == --color=* ]]; then
		COMPREPLY=($(compgen -W 'auto always never' -- "${cur#--color=}"))
		return
	fi

	case $cmd in
	'' | query)
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$qopts" -- "$cur"))
			[[ ${COMPREPLY[0]} == *= ]] && compopt -o nospace
		elif [[ -z $cmd ]]; then
			COMPREPLY=($(compgen -W "$cmds" -- "$cur"))
		fi
		return ;;
	add) opts='--wait --timeout --hidden --exclude --json'; args=dirs ;;
	rm) opts='--json'; args=dirs ;;
	ls | stats) opts='--json' ;;
	visit) opts='--json'; args=files ;;
	reindex) opts='--all --wait --quiet --timeout --json'; args=dirs ;;
	sync) opts='--timeout --json'; args=dirs ;;
	git) opts='--json'; args=dirs ;;
	pick) opts='--query --height --root --multi --no-multi --exact --regex
		--git --null' ;;
	daemon) args='start stop status' ;;
	filter) opts='--limit --mode --positions --null --json --color=
		--max-lines --max-line-bytes --max-input-bytes --threads --typos' ;;
	shell) opts='--completion --key-bindings'; args='bash zsh fish' ;;
	*) return ;;	# a query: nothing to offer
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts --socket --help" -- "$cur"))
		[[ ${COMPREPLY[0]} == *= ]] && compopt -o nospace
		return
	fi
	case $args in
	dirs) _fidx_paths -d "$cur" ;;
	files) _fidx_paths -f "$cur" ;;
	?*) COMPREPLY=($(compgen -W "$args" -- "$cur")) ;;
	esac
}

complete -F _fidx fidx
