# key-bindings.zsh - fidx's key bindings for zsh, in fzf's manner.
# Installed by: eval "$(fidx shell zsh)"
#
#   Ctrl-T  pick paths with `fidx pick` and insert them at the cursor,
#           each quoted for zsh (${(q)...}), space-separated
#   Alt-C   pick a path and cd into its directory (a file's parent)
#
# FIDX_CTRL_T_OPTS and FIDX_ALT_C_OPTS add options to `fidx pick` (split
# into words at spaces). Bound in the emacs, viins and vicmd keymaps.
# The picker draws on /dev/tty itself; Esc (exit 130) leaves the line
# as it was.

fidx-file-widget() {
	emulate -L zsh
	local p sel=
	# NUL-separated, so a name holding a newline is one name; unquoted,
	# the empty word after the last NUL is dropped.
	for p in ${(0)"$(command fidx pick -0 ${=FIDX_CTRL_T_OPTS} </dev/tty)"}; do
		sel+="${(q)p} "
	done
	LBUFFER+=$sel
	zle reset-prompt
}

fidx-cd-widget() {
	emulate -L zsh
	local p=${${(0)"$(command fidx pick -0 --no-multi ${=FIDX_ALT_C_OPTS} </dev/tty)"}[1]}
	if [[ -z $p ]]; then
		zle redisplay
		return 0
	fi
	# A file's directory is its parent (:h; "." for a bare name).
	[[ -d $p ]] || p=${p:h}
	builtin cd -- $p || { zle redisplay; return 1 }
	# The prompt may show the directory: run the hooks, then redraw it.
	local f
	for f in precmd $precmd_functions; do
		(( $+functions[$f] )) && $f
	done
	zle reset-prompt
}

zle -N fidx-file-widget
zle -N fidx-cd-widget
bindkey -M emacs '^T' fidx-file-widget
bindkey -M viins '^T' fidx-file-widget
bindkey -M vicmd '^T' fidx-file-widget
bindkey -M emacs '\ec' fidx-cd-widget
bindkey -M viins '\ec' fidx-cd-widget
bindkey -M vicmd '\ec' fidx-cd-widget
