/*
 * term.h - the picker's terminal: /dev/tty in raw mode, keys in, ANSI
 * escapes out, and the signals that must not leave it raw.
 *
 * Owns: the /dev/tty fd and its saved termios, the drawing area (the
 * whole screen on the alternate screen, or the bottom lines below the
 * cursor for --height), a bounded output buffer, the key decoder's
 * bytes, and a signalfd for SIGINT, SIGTERM, SIGHUP, SIGQUIT and
 * SIGWINCH (blocked while the terminal is open).
 * Never touches: stdin and stdout (they stay the caller's: a pipeline's
 * input, the picked paths' output), the socket, what is drawn.
 *
 * In fzy's style, not ncurses: the picker needs a dozen escapes that
 * every terminal in use speaks (VT100 cursor moves, erase, SGR, the
 * xterm alternate screen), drawing in part of the screen and leaving
 * the rest alone is a few relative moves here and a fight with
 * ncurses's idea of owning the screen, and no terminfo database is
 * needed at run time.
 *
 * Every way out restores the terminal: term_close() on the caller's
 * paths, an atexit() hook for fatal() and exit() from deeper down, and
 * signals arrive as reads on term_signal_fd() so the caller leaves by
 * its own path, then term_reraise() dies of the same signal.
 */
#ifndef FIDX_TERM_H
#define FIDX_TERM_H

#include <stdbool.h>
#include <stddef.h>
#include <termios.h>

struct fidx_err;

/* Bytes of escapes and text gathered before one write(2). */
#define TERM_OUT_MAX (64u * 1024)

/* Bytes of keyboard input held while a sequence is being decoded. */
#define TERM_IN_MAX 256

/* How long a lone ESC waits for the rest of a sequence (fzy: 25 ms). */
#define TERM_ESC_WAIT_MS 40

enum term_key {
	TERM_KEY_NONE = 0,
	TERM_KEY_CHAR,		/* a printable character: key.text */
	TERM_KEY_ENTER,
	TERM_KEY_ESC,
	TERM_KEY_CTRL_C,
	TERM_KEY_TAB,
	TERM_KEY_BTAB,		/* shift-tab */
	TERM_KEY_BACKSPACE,
	TERM_KEY_CTRL_U,
	TERM_KEY_CTRL_W,
	TERM_KEY_UP,
	TERM_KEY_DOWN,
	TERM_KEY_PGUP,
	TERM_KEY_PGDN,
	TERM_KEY_LEFT,
	TERM_KEY_RIGHT,
	TERM_KEY_HOME,
	TERM_KEY_END,
	TERM_KEY_DELETE,
	TERM_KEY_OTHER,		/* anything else: ignored */
};

struct term_keypress {
	enum term_key key;
	char text[8];		/* TERM_KEY_CHAR: one UTF-8 character */
	size_t len;
};

struct term {
	int fd;			/* /dev/tty, -1 when closed */
	int sigfd;		/* signalfd, -1 when closed */
	struct termios saved;
	bool raw;		/* saved is to be put back */
	bool fullscreen;	/* on the alternate screen */
	int rows, cols;		/* the terminal's size */
	int height;		/* lines drawn in (rows when fullscreen) */
	int cur_row;		/* the cursor's row in the area, in a frame */
	int height_arg;		/* --height: lines, or percent if pct */
	bool height_pct;
	char *out;		/* TERM_OUT_MAX bytes */
	size_t out_len;
	unsigned char in[TERM_IN_MAX];
	size_t in_len;
};

/*
 * Opens /dev/tty, puts it in raw mode, blocks the signals above into a
 * signalfd and makes room to draw: height lines (pct: percent of the
 * rows; 0: the whole screen, on the alternate screen). On failure err
 * says why and nothing is left to close.
 */
int term_open(struct term *t, int height, bool pct, struct fidx_err *err);

/* Clears the drawing area, restores the terminal, closes; idempotent. */
void term_close(struct term *t);

/* The fd to poll for the signals, and the next one taken (0: none). */
int term_signal_fd(const struct term *t);
int term_signal_take(struct term *t);

/* Dies of sig with its default action (after term_close). */
void term_reraise(int sig);

/*
 * Reads the size again after SIGWINCH, clears the old area and makes
 * room for the new one; the caller redraws.
 */
void term_resize(struct term *t);

/*
 * Reads what the tty has (call when poll says it is readable): 0, or -1
 * with err when the terminal is gone (EOF, EIO after a hangup).
 */
int term_read(struct term *t, struct fidx_err *err);

/*
 * The next key decoded from what was read: false when none is whole. A
 * lone ESC is a key once TERM_ESC_WAIT_MS passed with nothing after it:
 * term_pending_esc() tells the caller to poll for that long, then
 * term_flush_esc() hands it out (false if nothing was pending).
 */
bool term_next_key(struct term *t, struct term_keypress *k);
bool term_pending_esc(const struct term *t);
bool term_flush_esc(struct term *t, struct term_keypress *k);

/* Output: bytes and printf into the buffer, written by term_flush(). */
void term_put(struct term *t, const char *s, size_t n);
void term_puts(struct term *t, const char *s);
void term_printf(struct term *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void term_flush(struct term *t);

/*
 * Starts a frame: hides the cursor and goes to the area's first line.
 * Lines are then drawn with term_line_start() (row 0 first), and
 * term_frame_end() puts the cursor on row 0 at column col.
 */
void term_frame_begin(struct term *t);
void term_line_start(struct term *t, int row);
void term_frame_end(struct term *t, int col);

#endif
