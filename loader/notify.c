/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reports to the daemon: one short connection per report, in order, retried
 * with backoff, never blocking the main loop, never kept open between reports
 * (a checkpoint must not meet an external socket). */
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "loader/loader-internal.h"

#define LOG_EVERY_ATTEMPTS 60 /* while the daemon is away: about once a minute */

void loader_notify_init(struct notify *n)
{
	memset(n, 0, sizeof(*n));
	n->tail = &n->head;
	n->fd = -EBADF;
	n->sync_fd = -EBADF;
	n->backoff = LOADER_BACKOFF_MIN_USEC;
}

int loader_notify_set_path(struct notify *n, const char *dir)
{
	int k = snprintf(n->path, sizeof(n->path), "%s/notify.sock", dir);

	if (k < 0 || (size_t)k >= sizeof(n->path))
		return -ENAMETOOLONG;
	return 0;
}

int loader_notify_queue(struct notify *n, unsigned unit, const char *text, size_t len)
{
	struct report *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->text = malloc(len + 1);
	if (!r->text) {
		free(r);
		return -ENOMEM;
	}
	memcpy(r->text, text, len);
	r->text[len] = '\n'; /* the empty line that ends the message */
	r->len = len + 1;
	r->unit = unit;
	*n->tail = r;
	n->tail = &r->next;
	return 0;
}

static void report_pop(struct notify *n)
{
	struct report *r = n->head;

	n->head = r->next;
	if (!n->head)
		n->tail = &n->head;
	free(r->text);
	free(r);
}

static void set_phase(struct notify *n, enum notify_phase p, uint64_t now, uint64_t duration)
{
	n->phase = p;
	n->phase_start = now;
	n->deadline = now + duration;
}

/* A monotonic clock that went backwards (restored on another machine) ends
 * the phase too, so a deadline from the old clock never stalls the loop. */
static bool expired(const struct notify *n, uint64_t now)
{
	return now >= n->deadline || now < n->phase_start;
}

static void close_conn(struct notify *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -EBADF;
}

/* Give up on this attempt; retry after the backoff delay. */
static void attempt_failed(struct notify *n, uint64_t now, const char *why, int err)
{
	struct report *r = n->head;

	close_conn(n);
	if (r->attempts == 0 && n->sync_fd >= 0)
		(void)syncfs(n->sync_fd); /* xosd is away: the status file must last */
	if (r->attempts++ % LOG_EVERY_ATTEMPTS == 0)
		log_warn("Cannot report the end of unit %u yet (attempt %u), retrying: %s%s%s",
			 r->unit, r->attempts, why, err ? ": " : "", err ? strerror(err) : "");
	set_phase(n, NOTIFY_WAIT, now, n->backoff);
	n->backoff = n->backoff * 2 > LOADER_BACKOFF_MAX_USEC ? LOADER_BACKOFF_MAX_USEC
							      : n->backoff * 2;
}

/* The daemon answered: the report is done, whatever the answer. */
static void answered(struct notify *n, uint64_t now, const char *line)
{
	struct report *r = n->head;

	close_conn(n);
	if (strcmp(line, "ok") == 0)
		log_info("Reported the end of unit %u", r->unit);
	else if (str_has_prefix(line, "err ") || strcmp(line, "err") == 0)
		log_error("The daemon rejected the report for unit %u: %s", r->unit,
			  line[3] ? line + 4 : "no reason given");
	else
		log_error("Unexpected answer to the report for unit %u, not retrying: %.80s",
			  r->unit, line);
	report_pop(n);
	n->backoff = LOADER_BACKOFF_MIN_USEC;
	set_phase(n, NOTIFY_IDLE, now, 0);
}

static void connect_start(struct notify *n, uint64_t now)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	n->sent = 0;
	n->answer_len = 0;
	n->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (n->fd < 0)
		return attempt_failed(n, now, "socket", errno);
	memcpy(sa.sun_path, n->path, sizeof(n->path));
	set_phase(n, NOTIFY_SEND, now, LOADER_NOTIFY_TIMEOUT_USEC);
	if (connect(n->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return;
	if (errno == EINPROGRESS || errno == EINTR)
		n->phase = NOTIFY_CONNECT;
	else
		attempt_failed(n, now, "connect", errno);
}

static void connect_check(struct notify *n, uint64_t now, short revents)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
		return;
	if (getsockopt(n->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err)
		return attempt_failed(n, now, "connect", err);
	n->phase = NOTIFY_SEND;
}

static void send_some(struct notify *n, uint64_t now)
{
	const struct report *r = n->head;
	ssize_t k = send(n->fd, r->text + n->sent, r->len - n->sent, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (k < 0) {
		if (errno != EAGAIN && errno != EINTR)
			attempt_failed(n, now, "send", errno);
		return;
	}
	n->sent += (size_t)k;
	if (n->sent == r->len)
		n->phase = NOTIFY_RECV;
}

static void recv_some(struct notify *n, uint64_t now)
{
	char *nl;
	ssize_t k = recv(n->fd, n->answer + n->answer_len, sizeof(n->answer) - 1 - n->answer_len,
			 MSG_DONTWAIT);

	if (k < 0) {
		if (errno != EAGAIN && errno != EINTR)
			attempt_failed(n, now, "receive", errno);
		return;
	}
	n->answer_len += (size_t)k;
	n->answer[n->answer_len] = 0;
	nl = strchr(n->answer, '\n');
	if (nl) {
		*nl = 0;
		return answered(n, now, n->answer);
	}
	if (n->answer_len == sizeof(n->answer) - 1)
		return answered(n, now, n->answer); /* an overlong line: not an answer */
	if (k == 0)
		attempt_failed(n, now, "the daemon closed the connection without an answer", 0);
}

/* One transition at most; returns true if something changed. */
static bool step_once(struct notify *n, uint64_t now, short revents)
{
	enum notify_phase p = n->phase;
	const struct report *head = n->head;
	size_t sent = n->sent, answer_len = n->answer_len;

	switch (n->phase) {
	case NOTIFY_IDLE:
		if (n->head)
			connect_start(n, now);
		break;
	case NOTIFY_WAIT:
		if (expired(n, now))
			connect_start(n, now);
		break;
	case NOTIFY_CONNECT:
		connect_check(n, now, revents);
		break;
	case NOTIFY_SEND:
		send_some(n, now);
		break;
	case NOTIFY_RECV:
		recv_some(n, now);
		break;
	default:
		break;
	}
	if (n->phase >= NOTIFY_CONNECT && n->phase == p && expired(n, now))
		attempt_failed(n, now, "no answer within 2 s", 0);
	return n->phase != p || n->head != head || n->sent != sent || n->answer_len != answer_len;
}

void loader_notify_step(struct notify *n, short revents)
{
	uint64_t now = mono_usec();

	/* go on while progress is possible without waiting (bounded: each
	 * report needs an answer from the daemon, which is not instant) */
	for (int i = 0; i < 64 && step_once(n, now, revents); i++)
		revents = 0;
}

int loader_notify_poll(const struct notify *n, short *ret_events, int *ret_timeout_ms)
{
	uint64_t now = mono_usec(), left;

	switch (n->phase) {
	case NOTIFY_RECV:
		*ret_events = POLLIN;
		break;
	case NOTIFY_CONNECT:
	case NOTIFY_SEND:
		*ret_events = POLLOUT;
		break;
	default:
		*ret_events = 0;
		break;
	}
	if (n->phase == NOTIFY_IDLE) {
		*ret_timeout_ms = n->head ? 0 : -1;
		return n->fd;
	}
	left = expired(n, now) ? 0 : n->deadline - now;
	if (left > LOADER_NOTIFY_TIMEOUT_USEC)
		left = LOADER_NOTIFY_TIMEOUT_USEC;
	*ret_timeout_ms = (int)((left + 999) / 1000);
	return n->fd;
}

bool loader_notify_idle(const struct notify *n)
{
	return !n->head && n->phase == NOTIFY_IDLE;
}

void loader_notify_done(struct notify *n)
{
	close_conn(n);
	while (n->head)
		report_pop(n);
}

static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

/* One message "tty\njob=ID\nunit=N\n\n" carrying the master as SCM_RIGHTS;
 * xosd answers "ok" once it holds the fd. */
int loader_notify_send_tty(const struct notify *n, const char *job, unsigned unit, int master)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char text[128], answer[64] = "";
	ssize_t k;
	int len;

	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path, n->path, sizeof(n->path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	len = snprintf(text, sizeof(text), "tty\njob=%s\nunit=%u\n\n", job, unit);
	if (send_with_fd(fd, text, (size_t)len, master) != len)
		return -EIO;
	if (wait_fd(fd, POLLIN, 3000) < 0)
		return -ETIMEDOUT;
	k = read(fd, answer, sizeof(answer) - 1);
	if (k <= 0)
		return -EPIPE;
	answer[k] = 0;
	return strncmp(answer, "ok", 2) == 0 ? 0 : -EPERM;
}
