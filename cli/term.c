/* term.c - see term.h. */
#include "term.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "../common/log.h"

/*
 * The terminal in raw mode, for the atexit() hook only: fatal() and
 * exit() from code that knows nothing of the picker must not leave the
 * user's shell without echo.
 */
static struct term *term_active;
static sigset_t term_oldmask;

static void
term_atexit(void)
{
	if (term_active != NULL)
		term_close(term_active);
}

static void
term_size(struct term *t)
{
	struct winsize ws;

	t->rows = 24;
	t->cols = 80;
	if (ioctl(t->fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 &&
	    ws.ws_col > 0) {
		t->rows = ws.ws_row;
		t->cols = ws.ws_col;
	}
	if (t->fullscreen) {
		t->height = t->rows;
		return;
	}
	t->height = t->height_pct ? t->rows * t->height_arg / 100 :
	    t->height_arg;
	/* The prompt, the header and one result, if the screen has them. */
	if (t->height < 3)
		t->height = 3;
	if (t->height > t->rows)
		t->height = t->rows;
}

/* Makes room for the area below the cursor, which ends on its row 0. */
static void
term_make_room(struct term *t)
{
	if (t->fullscreen) {
		term_puts(t, "\033[H\033[2J");
		return;
	}
	term_puts(t, "\r");
	for (int i = 1; i < t->height; i++)
		term_puts(t, "\n");
	if (t->height > 1)
		term_printf(t, "\033[%dA", t->height - 1);
}

int
term_open(struct term *t, int height, bool pct, struct fidx_err *err)
{
	static bool hooked;
	struct termios raw;
	sigset_t set;
	int saved;

	memset(t, 0, sizeof(*t));
	t->sigfd = -1;
	t->fullscreen = height == 0;
	t->height_arg = height;
	t->height_pct = pct;
	if ((t->fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) == -1)
		return fidx_error(err, "cannot open the terminal, /dev/tty: %s",
		    strerror(errno));
	if (tcgetattr(t->fd, &t->saved) == -1) {
		saved = errno;
		close(t->fd);
		t->fd = -1;
		return fidx_error(err, "/dev/tty: %s", strerror(saved));
	}
	if ((t->out = malloc(TERM_OUT_MAX)) == NULL) {
		close(t->fd);
		t->fd = -1;
		return fidx_error(err, "out of memory");
	}
	/*
	 * Signals are read from a signalfd in the picker's poll, so that
	 * each leaves by the one path that restores the terminal.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGWINCH);
	sigprocmask(SIG_BLOCK, &set, &term_oldmask);
	if ((t->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) ==
	    -1) {
		saved = errno;
		sigprocmask(SIG_SETMASK, &term_oldmask, NULL);
		free(t->out);
		t->out = NULL;
		close(t->fd);
		t->fd = -1;
		return fidx_error(err, "signalfd: %s", strerror(saved));
	}
	/*
	 * fzy's raw mode: no echo, no line editing, and ^C, ^Z, ^S are
	 * keys, not signals or flow control; output processing stays on.
	 */
	raw = t->saved;
	raw.c_iflag &= ~(tcflag_t)(ICRNL | IXON | INLCR | ISTRIP);
	raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG | IEXTEN);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(t->fd, TCSANOW, &raw) == -1) {
		saved = errno;
		close(t->sigfd);
		t->sigfd = -1;
		sigprocmask(SIG_SETMASK, &term_oldmask, NULL);
		free(t->out);
		t->out = NULL;
		close(t->fd);
		t->fd = -1;
		return fidx_error(err, "/dev/tty: %s", strerror(saved));
	}
	t->raw = true;
	term_active = t;
	if (!hooked) {
		atexit(term_atexit);
		hooked = true;
	}
	term_size(t);
	if (t->fullscreen)
		term_puts(t, "\033[?1049h");
	term_make_room(t);
	term_flush(t);
	return 0;
}

void
term_close(struct term *t)
{
	if (t->fd == -1)
		return;
	/* The cursor is on the area's row 0 between frames. */
	if (t->fullscreen)
		term_puts(t, "\033[0m\033[?25h\033[?1049l");
	else
		term_puts(t, "\r\033[0m\033[J\033[?25h");
	term_flush(t);
	if (t->raw)
		tcsetattr(t->fd, TCSANOW, &t->saved);
	t->raw = false;
	close(t->fd);
	t->fd = -1;
	if (t->sigfd != -1) {
		close(t->sigfd);
		t->sigfd = -1;
		sigprocmask(SIG_SETMASK, &term_oldmask, NULL);
	}
	free(t->out);
	t->out = NULL;
	if (term_active == t)
		term_active = NULL;
}

int
term_signal_fd(const struct term *t)
{
	return t->sigfd;
}

int
term_signal_take(struct term *t)
{
	struct signalfd_siginfo si;

	if (read(t->sigfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return 0;
	return (int)si.ssi_signo;
}

void
term_reraise(int sig)
{
	signal(sig, SIG_DFL);
	raise(sig);
	/* Still here: the signal was blocked by our caller's caller. */
	_exit(128 + sig);
}

void
term_resize(struct term *t)
{
	if (t->fullscreen) {
		term_size(t);
	} else {
		/* The old area goes; the new one is made below row 0. */
		term_puts(t, "\r\033[J");
		term_size(t);
	}
	term_make_room(t);
}

int
term_read(struct term *t, struct fidx_err *err)
{
	ssize_t r;

	/* A sequence that never ends is dropped, not grown. */
	if (t->in_len == sizeof(t->in))
		t->in_len = 0;
	r = read(t->fd, t->in + t->in_len, sizeof(t->in) - t->in_len);
	if (r == -1 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (r == -1)
		return fidx_error(err, "reading the terminal: %s",
		    strerror(errno));
	if (r == 0)
		return fidx_error(err, "the terminal was closed");
	t->in_len += (size_t)r;
	return 0;
}

static void
term_consume(struct term *t, size_t n)
{
	memmove(t->in, t->in + n, t->in_len - n);
	t->in_len -= n;
}

/* ESC [ N ~, the keys of the VT220 keypad, by N. */
static enum term_key
term_tilde(unsigned char n)
{
	switch (n) {
	case '1':
	case '7':
		return TERM_KEY_HOME;
	case '3':
		return TERM_KEY_DELETE;
	case '4':
	case '8':
		return TERM_KEY_END;
	case '5':
		return TERM_KEY_PGUP;
	case '6':
		return TERM_KEY_PGDN;
	default:
		return TERM_KEY_OTHER;
	}
}

/*
 * ESC [ or ESC O and what follows, up to its final byte. A modified key
 * (ESC [ 1 ; 5 D, Ctrl-Left) is not the plain one: OTHER, skipped whole.
 */
static bool
term_escape(struct term *t, struct term_keypress *k)
{
	size_t i;

	for (i = 2; i < t->in_len; i++)
		if (t->in[i] >= 0x40 && t->in[i] <= 0x7e)
			break;
	if (i == t->in_len)
		return false;
	if (i > 2 && t->in[i] != '~') {
		k->key = TERM_KEY_OTHER;
		term_consume(t, i + 1);
		return true;
	}
	switch (t->in[i]) {
	case 'A':
		k->key = TERM_KEY_UP;
		break;
	case 'B':
		k->key = TERM_KEY_DOWN;
		break;
	case 'C':
		k->key = TERM_KEY_RIGHT;
		break;
	case 'D':
		k->key = TERM_KEY_LEFT;
		break;
	case 'H':
		k->key = TERM_KEY_HOME;
		break;
	case 'F':
		k->key = TERM_KEY_END;
		break;
	case 'Z':
		k->key = TERM_KEY_BTAB;
		break;
	case '~':
		k->key = term_tilde(i == 3 ? t->in[2] : 0);
		break;
	default:
		k->key = TERM_KEY_OTHER;
	}
	term_consume(t, i + 1);
	return true;
}

static enum term_key
term_control(unsigned char c)
{
	switch (c) {
	case '\r':
		return TERM_KEY_ENTER;
	case '\t':
		return TERM_KEY_TAB;
	case 0x7f:
	case 0x08:
		return TERM_KEY_BACKSPACE;
	case 0x15:
		return TERM_KEY_CTRL_U;
	case 0x17:
		return TERM_KEY_CTRL_W;
	case 0x01:		/* ^A, ^E, ^B, ^F, ^D: readline's */
		return TERM_KEY_HOME;
	case 0x05:
		return TERM_KEY_END;
	case 0x02:
		return TERM_KEY_LEFT;
	case 0x06:
		return TERM_KEY_RIGHT;
	case 0x04:
		return TERM_KEY_DELETE;
	case 0x03:
	case 0x07:		/* ^G, as fzf: abort */
		return TERM_KEY_CTRL_C;
	case 0x0e:		/* ^N */
	case '\n':		/* ^J */
		return TERM_KEY_DOWN;
	case 0x10:		/* ^P */
	case 0x0b:		/* ^K */
		return TERM_KEY_UP;
	default:
		return TERM_KEY_OTHER;
	}
}

bool
term_next_key(struct term *t, struct term_keypress *k)
{
	unsigned char c;
	size_t n;

	memset(k, 0, sizeof(*k));
	if (t->in_len == 0)
		return false;
	c = t->in[0];
	if (c == 0x1b) {
		if (t->in_len >= 2 && (t->in[1] == '[' || t->in[1] == 'O') &&
		    term_escape(t, k))
			return true;
		if (t->in_len >= 2 && t->in[1] != '[' && t->in[1] != 'O') {
			/* ESC then a key (Alt-key): the Esc is taken. */
			k->key = TERM_KEY_ESC;
			term_consume(t, 1);
			return true;
		}
		return false;	/* maybe more to come: term_flush_esc() */
	}
	if (c < 0x20 || c == 0x7f) {
		k->key = term_control(c);
		term_consume(t, 1);
		return true;
	}
	/* One UTF-8 character; a stray byte is a character of its own. */
	n = c >= 0xf0 && c <= 0xf7 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	if (c >= 0xf8)
		n = 1;
	if (t->in_len < n)
		return false;
	k->key = TERM_KEY_CHAR;
	memcpy(k->text, t->in, n);
	k->len = n;
	term_consume(t, n);
	return true;
}

bool
term_pending_esc(const struct term *t)
{
	return t->in_len > 0 && t->in[0] == 0x1b;
}

/* A lone ESC (or a sequence cut short): Esc, the rest dropped. */
bool
term_flush_esc(struct term *t, struct term_keypress *k)
{
	memset(k, 0, sizeof(*k));
	if (!term_pending_esc(t))
		return false;
	k->key = TERM_KEY_ESC;
	t->in_len = 0;
	return true;
}

void
term_flush(struct term *t)
{
	size_t at = 0;

	while (at < t->out_len) {
		ssize_t w = write(t->fd, t->out + at, t->out_len - at);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			break;	/* the terminal is gone: reading says so */
		at += (size_t)w;
	}
	t->out_len = 0;
}

void
term_put(struct term *t, const char *s, size_t n)
{
	if (t->out == NULL)
		return;
	while (n > 0) {
		size_t room = TERM_OUT_MAX - t->out_len, m = n < room ? n :
		    room;

		memcpy(t->out + t->out_len, s, m);
		t->out_len += m;
		s += m;
		n -= m;
		if (t->out_len == TERM_OUT_MAX)
			term_flush(t);
	}
}

void
term_puts(struct term *t, const char *s)
{
	term_put(t, s, strlen(s));
}

void
term_printf(struct term *t, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	term_put(t, buf, (size_t)n < sizeof(buf) ? (size_t)n :
	    sizeof(buf) - 1);
}

void
term_frame_begin(struct term *t)
{
	term_puts(t, "\033[?25l\r");
	t->cur_row = 0;
}

void
term_line_start(struct term *t, int row)
{
	if (row > t->cur_row)
		term_printf(t, "\033[%dB", row - t->cur_row);
	else if (row < t->cur_row)
		term_printf(t, "\033[%dA", t->cur_row - row);
	term_puts(t, "\r\033[0m\033[K");
	t->cur_row = row;
}

void
term_frame_end(struct term *t, int col)
{
	if (t->cur_row > 0)
		term_printf(t, "\033[%dA", t->cur_row);
	t->cur_row = 0;
	term_puts(t, "\r");
	if (col > 0)
		term_printf(t, "\033[%dC", col);
	term_puts(t, "\033[?25h");
	term_flush(t);
}
