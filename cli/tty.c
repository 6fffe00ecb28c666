/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xrun -t: the daemon passes the master of the job's terminal; xrun puts its
 * own terminal in raw mode and relays bytes both ways (Ctrl-C is a byte the
 * job's terminal turns into SIGINT), and passes on window size changes. */
#include <fcntl.h>
#include <sys/ioctl.h>

#include "cli/cli.h"

int cli_tty_take(struct cli_conn *c, struct cli_stream *s)
{
	struct termios raw;
	int fl;

	if (c->passed_fd < 0)
		return -EBADMSG;
	if (s->have_tty) { /* one terminal per unit */
		close(TAKE_FD(c->passed_fd));
		return 0;
	}
	s->tty = TAKE_FD(c->passed_fd);
	s->have_tty = true;
	fl = fcntl(s->tty, F_GETFL);
	if (fl < 0 || fcntl(s->tty, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &s->saved) == 0) {
		raw = s->saved;
		cfmakeraw(&raw);
		if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
			s->raw = true;
	}
	cli_tty_resize(s);
	return 0;
}

void cli_tty_restore(struct cli_stream *s)
{
	if (s->raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &s->saved);
	s->raw = false;
}

void cli_tty_resize(struct cli_stream *s)
{
	struct winsize ws;

	if (s->have_tty && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
		(void)ioctl(s->tty, TIOCSWINSZ, &ws);
}

int cli_tty_pump_in(struct cli_stream *s)
{
	char buf[4096];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	if (n == 0) { /* input ends: the job's terminal reads end-of-file */
		s->stdin_eof = true;
		return s->tty_eof ? 0 : cli_write_all(s->tty, "\x04", 1);
	}
	return s->tty_eof ? 0 : cli_write_all(s->tty, buf, (size_t)n);
}

int cli_tty_pump_out(struct cli_stream *s)
{
	char buf[16384];

	for (;;) {
		ssize_t n = read(s->tty, buf, sizeof(buf));
		int r;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0) { /* EIO: no process has the terminal open any more */
			s->tty_eof = true;
			return 0;
		}
		r = cli_write_all(STDOUT_FILENO, buf, (size_t)n);
		if (r < 0)
			return r;
	}
}
