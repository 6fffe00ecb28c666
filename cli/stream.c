/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Output events of an attached xrun or of xlogs: decoded onto our own stdout
 * and stderr until an exit or eof event; signals forwarded on the way. */
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>

#include "cli/cli.h"

void cli_stream_done(struct cli_stream *s)
{
	cli_tty_restore(s);
	if (s->have_tty)
		close(s->tty);
	s->have_tty = false;
	free(s->state);
	s->state = NULL;
	free(s->reason);
	s->reason = NULL;
	if (s->response)
		json_free(s->response);
	s->response = NULL;
}

int cli_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* An inherited non-blocking stdout: wait until it drains. */
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };

			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int cli_send_signal(struct cli_conn *c, int sig)
{
	_cleanup_gen_ yajl_gen g = NULL;
	_cleanup_free_ char *req = NULL;
	size_t len;
	int r;

	r = cli_request_begin("signal", &g);
	if (r >= 0)
		r = cli_gen_int(g, "signal", sig);
	if (r >= 0)
		r = cli_request_end(g, &req, &len);
	if (r < 0)
		return r;
	return cli_conn_send(c, req, len);
}

static int stream_output(struct cli_conn *c, struct cli_stream *s, yajl_val ev)
{
	_cleanup_free_ char *data = NULL;
	const char *stream = cli_json_string(ev, "stream");
	const char *b64 = cli_json_string(ev, "data");
	size_t len;
	int fd, r;

	if (!stream || !b64)
		return -EBADMSG;
	fd = strcmp(stream, "stderr") == 0 ? STDERR_FILENO : STDOUT_FILENO;
	if (base64_decode(b64, strlen(b64), &data, &len) < 0)
		return -EBADMSG;
	if (s->closed[fd])
		return 0;
	r = cli_write_all(fd, data, len);
	if (r >= 0)
		return 0;
	if (r != -EPIPE || !s->forward_sigpipe) {
		s->write_error = r;
		return r;
	}
	/* Our reader went away (xrun CMD | head): the job gets SIGPIPE, as a
	 * local program in the pipeline would. */
	s->closed[fd] = true;
	if (!s->sent_sigpipe) {
		s->sent_sigpipe = true;
		(void)cli_send_signal(c, SIGPIPE);
	}
	return 0;
}

static int stream_exit(struct cli_stream *s, yajl_val ev)
{
	const char *state = cli_json_string(ev, "state");
	const char *reason = cli_json_string(ev, "reason");
	int64_t v;

	free(s->state);
	s->state = strdup(state ? state : "failed");
	free(s->reason);
	s->reason = reason && *reason ? strdup(reason) : NULL;
	if (!s->state || (reason && *reason && !s->reason))
		return -ENOMEM;
	s->signal = cli_json_int(ev, "signal", &v) >= 0 && v > 0 && v < 128 ? (int)v : 0;
	if (cli_json_int(ev, "exit_code", &v) >= 0 && v >= 0 && v <= 255)
		s->exit_code = (int)v;
	else if (strcmp(s->state, "killed") == 0 && s->signal > 0)
		s->exit_code = 128 + s->signal;
	else if (strcmp(s->state, "exited") == 0 && cli_json_int(ev, "code", &v) >= 0)
		s->exit_code = (int)(v & 0xff);
	else
		s->exit_code = CLI_EXIT_XOS;
	return 0;
}

int cli_stream_event(struct cli_conn *c, struct cli_stream *s, yajl_val ev,
		     enum cli_stream_end *ret_end)
{
	const char *kind = cli_json_string(ev, "ev");
	int r;

	if (!kind) { /* not an event: an error response, or garbage */
		r = cli_conn_check(c, ev);
		if (r == -EREMOTEIO) {
			cli_report(s->prog ? s->prog : "xos", c, r);
			return 0;
		}
		return r < 0 ? r : -EBADMSG;
	}
	if (strcmp(kind, "output") == 0)
		return stream_output(c, s, ev);
	if (strcmp(kind, "tty") == 0)
		return cli_tty_take(c, s);
	if (strcmp(kind, "exit") == 0) {
		if (s->have_tty) /* what the job wrote last is still in the terminal */
			(void)cli_tty_pump_out(s);
		r = stream_exit(s, ev);
		if (r < 0)
			return r;
		*ret_end = CLI_STREAM_EXIT;
		return 1;
	}
	if (strcmp(kind, "eof") == 0) {
		*ret_end = CLI_STREAM_EOF;
		return 1;
	}
	return 0; /* an event this client does not know: newer daemon */
}

/* Signals are forwarded once the daemon has answered the request: it
 * takes them only on an attached connection. */
static void forward_signals(struct cli_conn *c, struct cli_stream *s)
{
	struct signalfd_siginfo si;

	while (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo < 1 || si.ssi_signo > 64)
			continue;
		if (si.ssi_signo == SIGWINCH) { /* ours, not the job's */
			cli_tty_resize(s);
			continue;
		}
		if (s->want_response)
			s->pending |= 1ULL << (si.ssi_signo - 1);
		else
			(void)cli_send_signal(c, (int)si.ssi_signo);
	}
}

static void send_pending(struct cli_conn *c, struct cli_stream *s)
{
	for (int sig = 1; sig <= 64; sig++)
		if (s->pending & (1ULL << (sig - 1)))
			(void)cli_send_signal(c, sig);
	s->pending = 0;
}

/* Handle every complete message already buffered. */
static int stream_drain(struct cli_conn *c, struct cli_stream *s, enum cli_stream_end *ret_end)
{
	for (;;) {
		_cleanup_json_ yajl_val ev = NULL;
		int r = cli_conn_next(c, &ev);

		if (r <= 0)
			return r;
		if (s->want_response) {
			r = cli_conn_check(c, ev);
			if (r < 0)
				return r;
			s->want_response = false;
			s->response = TAKE_PTR(ev);
			send_pending(c, s);
			*ret_end = CLI_STREAM_RESPONSE;
			return 1;
		}
		r = cli_stream_event(c, s, ev, ret_end);
		if (r != 0)
			return r;
	}
}

static int pump_tty(struct cli_stream *s, const struct pollfd *pfd)
{
	int r = 0;

	if (pfd[2].revents & (POLLIN | POLLHUP | POLLERR))
		r = cli_tty_pump_in(s);
	if (r >= 0 && (pfd[3].revents & (POLLIN | POLLHUP | POLLERR)))
		r = cli_tty_pump_out(s);
	return r;
}

int cli_stream_run(struct cli_conn *c, struct cli_stream *s, enum cli_stream_end *ret_end)
{
	struct pollfd pfd[4] = {
		{ .fd = c->fd, .events = POLLIN },
		{ .fd = s->sigfd, .events = POLLIN },
		{ .fd = -1, .events = POLLIN },
		{ .fd = -1, .events = POLLIN },
	};

	for (;;) {
		int r = stream_drain(c, s, ret_end);

		if (r != 0)
			return r;
		pfd[1].fd = s->sigfd;
		pfd[2].fd = s->have_tty && !s->stdin_eof ? STDIN_FILENO : -1;
		pfd[3].fd = s->have_tty && !s->tty_eof ? s->tty : -1;
		if (poll(pfd, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (s->sigfd >= 0 && (pfd[1].revents & POLLIN))
			forward_signals(c, s);
		if (s->have_tty && (r = pump_tty(s, pfd)) < 0)
			return r;
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			r = cli_conn_fill(c);
			if (r == 0)
				return -ECONNRESET;
			if (r < 0 && r != -EAGAIN)
				return r;
		}
	}
}
