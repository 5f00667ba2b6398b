# key-bindings.bash - fidx's key bindings for bash, in fzf's manner.
# Installed by: eval "$(fidx shell bash)"
#
#   Ctrl-T  pick paths with `fidx pick` and insert them at the cursor,
#           each quoted for bash (printf %q), space-separated
#   Alt-C   pick a path and cd into its directory (a file's parent)
#
# FIDX_CTRL_T_OPTS and FIDX_ALT_C_OPTS add options to `fidx pick` (split
# into words at spaces and tabs, never globbed: --query *.c stays *.c).
# `bind -x` runs the functions in this shell, so `cd` changes its
# directory; the picker draws on /dev/tty itself, and Esc (exit 130)
# leaves the line as it was.

__fidx_ctrl_t() {
	local p sel= opts
	read -ra opts <<<"$FIDX_CTRL_T_OPTS"
	# NUL-separated, so a name holding a newline is one name.
	while IFS= read -r -d '' p; do
		sel+=$(printf '%q' "$p")' '
	done < <(command fidx pick -0 "${opts[@]}")
	[[ -n $sel ]] || return 0
	READLINE_LINE=${READLINE_LINE:0:READLINE_POINT}$sel${READLINE_LINE:READLINE_POINT}
	READLINE_POINT=$((READLINE_POINT + ${#sel}))
}

__fidx_alt_c() {
	local p opts
	read -ra opts <<<"$FIDX_ALT_C_OPTS"
	IFS= read -r -d '' p < <(command fidx pick -0 --no-multi "${opts[@]}")
	[[ -n $p ]] || return 0
	# A file's directory is its parent; a path with no slash is here.
	if [[ ! -d $p ]]; then
		if [[ $p == */* ]]; then p=${p%/*}; else p=.; fi
	fi
	# The prompt shows the new directory from the next command on:
	# bash cannot redraw it from inside `bind -x`.
	builtin cd -- "${p:-/}"
}

bind -m emacs-standard -x '"\C-t": __fidx_ctrl_t'
bind -m vi-insert -x '"\C-t": __fidx_ctrl_t'
bind -m emacs-standard -x '"\ec": __fidx_alt_c'
bind -m vi-insert -x '"\ec": __fidx_alt_c'
