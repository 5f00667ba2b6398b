# key-bindings.fish - fidx's key bindings for fish, in fzf's manner.
# Installed by: fidx shell fish | source
#
#   Ctrl-T  pick paths with `fidx pick` and insert them at the cursor,
#           each quoted for fish (string escape), space-separated
#   Alt-C   pick a path and cd into its directory (a file's parent)
#
# FIDX_CTRL_T_OPTS and FIDX_ALT_C_OPTS add options to `fidx pick` (split
# into words at spaces). Bound in the default and the vi insert modes.
# The picker draws on /dev/tty itself; Esc (exit 130) leaves the line
# as it was.

function __fidx_file_widget
    # NUL-separated, so a name holding a newline is one name.
    set -l picked (command fidx pick -0 (string split -n ' ' -- "$FIDX_CTRL_T_OPTS") | string split0)
    if test (count $picked) -gt 0
        commandline -i -- (string join ' ' -- (string escape -- $picked))' '
    end
    commandline -f repaint
end

function __fidx_cd_widget
    set -l p (command fidx pick -0 --no-multi (string split -n ' ' -- "$FIDX_ALT_C_OPTS") | string split0)
    if test (count $p) -gt 0
        set p $p[1]
        # A file's directory is its parent.
        test -d "$p"; or set p (path dirname -- "$p")
        cd -- $p
    end
    commandline -f repaint
end

bind \ct __fidx_file_widget
bind \ec __fidx_cd_widget
if bind -M insert >/dev/null 2>&1
    bind -M insert \ct __fidx_file_widget
    bind -M insert \ec __fidx_cd_widget
end
