/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Client connections: size-capped JSON lines in, responses and streamed
 * events out (non-blocking, with back-pressure). */
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <yajl/yajl_gen.h>

#include "runtime/runtime-internal.h"

#define OUT_HIGH (1U << 20) /* stop reading job output above this much queued */
#define CHUNK 49152

static void conn_flush(struct conn *c);

static void conn_update_events(struct daemon *d, struct conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };

	if (c->out_len > c->out_off && !c->hold_out)
		ev.events |= EPOLLOUT;
	ev.data.u64 = (uint64_t)(uintptr_t)c | EP_CLIENT;
	epoll_ctl(d->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

void conn_kick(struct daemon *d, struct conn *c)
{
	conn_flush(c);
	conn_update_events(d, c);
}

/* An error line sent on a connection that is closed at once (best effort:
 * the socket buffer of a new connection holds it). */
void conn_refuse(int fd, const char *code, const char *msg)
{
	_cleanup_free_ char *text = xstrdup_printf(
		"{\"v\":%d,\"ok\":false,\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n",
		XOS_PROTO_VERSION, code, msg);

	if (text)
		(void)send(fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Whether uid may open one more connection (root always may). */
static bool conn_allowed(struct daemon *d, uid_t uid)
{
	uint64_t n = 0;

	if (uid == 0)
		return true;
	for (struct conn *c = d->conns; c; c = c->next)
		n += c->uid == uid;
	return n < d->cfg->max_connections_per_user;
}

struct conn *conn_new(struct daemon *d, int fd)
{
	struct conn *c = NULL;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return NULL;
	if (!conn_allowed(d, cred.uid)) {
		_cleanup_free_ char *msg = xstrdup_printf(
			"Too many connections from uid %u (limit %llu, max_connections_per_user "
			"in xosd.conf); close some and try again",
			(unsigned)cred.uid, (unsigned long long)d->cfg->max_connections_per_user);

		conn_refuse(fd, "too_many_connections", msg ? msg : "Too many connections");
		log_debug("Refused a connection of uid %u: it holds too many", (unsigned)cred.uid);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (daemon_epoll_add(d, fd, EPOLLIN | EPOLLRDHUP, EP_CLIENT, c) < 0) {
		free(c);
		return NULL;
	}
	c->fd = fd;
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->pid = cred.pid;
	c->out_fd = c->err_fd = c->passed_fd = -EBADF;
	c->deadline_us = mono_usec() + d->cfg->request_timeout_us;
	if (!d->conn_deadline_next || c->deadline_us < d->conn_deadline_next)
		d->conn_deadline_next = c->deadline_us;
	c->next = d->conns;
	d->conns = c;
	return c;
}

int conns_expire(struct daemon *d)
{
	uint64_t now = mono_usec(), next = 0;

	if (!d->conn_deadline_next)
		return -1;
	if (now < d->conn_deadline_next)
		return (int)((d->conn_deadline_next - now + 999) / 1000);
	for (struct conn *c = d->conns, *n; c; c = n) {
		n = c->next;
		if (c->mode != CONN_REQUEST)
			continue;
		if (c->deadline_us > now) {
			if (!next || c->deadline_us < next)
				next = c->deadline_us;
			continue;
		}
		c->in_len = 0;
		conn_reply_error(c, "timeout",
				 "Request not complete within %llu ms (request_timeout in "
				 "xosd.conf); closing the connection",
				 (unsigned long long)(d->cfg->request_timeout_us / 1000));
		conn_flush(c);           /* said if it can be said at once; then it goes */
		c->out_off = c->out_len; /* (a client that sends nothing may read nothing) */
		conn_event(d, c, 0);     /* frees c */
	}
	d->conn_deadline_next = next;
	return next ? (int)((next - now + 999) / 1000) : -1;
}

/* Close c now; its memory goes after the current batch of events, which may
 * still hold an event for it (conns_reap). */
static void conn_free(struct daemon *d, struct conn *c)
{
	if (c->kill_job_on_close && c->job && !c->exit_sent && job_is_live(c->job)) {
		log_info("Killing job %s: its caller, whose cgroup holds it, went before it",
			 c->job->id);
		(void)container_signal(d, c->job, 0, SIGKILL);
	}
	for (struct conn **p = &d->conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	closep(&c->fd);
	closep(&c->out_fd);
	closep(&c->err_fd);
	closep(&c->passed_fd);
	template_ops_conn_gone(d, c);
	grid_conn_free(c);
	c->closed = true;
	c->next = d->closed_conns;
	d->closed_conns = c;
}

void conns_reap(struct daemon *d)
{
	while (d->closed_conns) {
		struct conn *c = d->closed_conns;

		d->closed_conns = c->next;
		strv_free(c->wait_ids);
		free(c->in);
		free(c->out);
		free(c);
	}
}

void conns_free_all(struct daemon *d)
{
	for (struct conn *c = d->conns; c; c = c->next)
		c->kill_job_on_close = false; /* xosd stops: jobs stay */
	while (d->conns)
		conn_free(d, d->conns);
	conns_reap(d);
}

static void queue(struct conn *c, const char *data, size_t len)
{
	char *n;

	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	n = realloc(c->out, c->out_len + len);
	if (!n) {
		c->mode = CONN_CLOSING;
		return;
	}
	c->out = n;
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
}

void conn_send(struct conn *c, const char *text)
{
	queue(c, text, strlen(text));
}

void conn_reply_error(struct conn *c, const char *code, const char *fmt, ...)
{
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	_cleanup_free_ char *msg = NULL, *text = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!g)
		return;
	yajl_gen_map_open(g);
	json_gen_kv_int(g, "v", XOS_PROTO_VERSION);
	json_gen_kv_bool(g, "ok", false);
	json_gen_key(g, "error");
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "code", code);
	json_gen_kv_str(g, "message", msg ? msg : "out of memory");
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	text = json_gen_take(g, true);
	if (text)
		conn_send(c, text);
	c->mode = CONN_CLOSING;
}

void conn_reply_xerr(struct conn *c, const struct xerr *err)
{
	conn_reply_error(c, xerr_code(err), "%s", xerr_message(err));
}

void conn_send_map(struct conn *c, yajl_gen g)
{
	const unsigned char *buf;
	size_t len;

	yajl_gen_map_close(g);
	/* straight from the generator's buffer (a listing of every job is
	 * megabytes: no copy of it, no strlen over it) */
	if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
		return;
	queue(c, (const char *)buf, len);
	queue(c, "\n", 1);
}

/* An event line: {"v":1,"ev":EV,"unit":N, ...}; finished by conn_send_map(). */
static yajl_gen event_begin(const char *ev, unsigned unit)
{
	yajl_gen g = yajl_gen_alloc(NULL);

	if (!g)
		return NULL;
	yajl_gen_map_open(g);
	json_gen_kv_int(g, "v", XOS_PROTO_VERSION);
	json_gen_kv_str(g, "ev", ev);
	json_gen_kv_uint(g, "unit", unit);
	return g;
}

static void send_output(struct conn *c, const char *stream, const char *data, size_t len)
{
	_cleanup_gen_ yajl_gen g = event_begin("output", c->unit);
	_cleanup_free_ char *b64 = base64_encode(data, len);

	if (!g || !b64)
		return;
	json_gen_kv_str(g, "stream", stream);
	json_gen_kv_str(g, "data", b64);
	conn_send_map(c, g);
}

static void send_exit(struct conn *c, const struct unit *u)
{
	_cleanup_gen_ yajl_gen g = event_begin("exit", u->n);
	const char *st = u->state == UNIT_EXITED   ? "exited"
			 : u->state == UNIT_KILLED ? "killed"
						   : "failed";

	if (g) {
		json_gen_kv_str(g, "state", st);
		json_gen_kv_int(g, "code", u->code);
		json_gen_kv_int(g, "signal", u->sig);
		json_gen_kv_str(g, "reason", u->reason);
		json_gen_kv_int(g, "exit_code", unit_exit_code(u->state, u->code, u->sig));
		conn_send_map(c, g);
	}
	c->exit_sent = true;
	c->mode = CONN_CLOSING;
}

static void open_spool(struct daemon *d, struct conn *c)
{
	char name[32];

	if (c->out_fd < 0) {
		snprintf(name, sizeof(name), "%u.out", c->unit);
		c->out_fd = daemon_open_spool_file(d, c->job, name);
	}
	if (c->err_fd < 0) {
		snprintf(name, sizeof(name), "%u.err", c->unit);
		c->err_fd = daemon_open_spool_file(d, c->job, name);
	}
}

/* "1 MiB", "64 KiB", or bytes: the largest unit that divides n. */
static void format_size(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = { "bytes", "KiB", "MiB", "GiB", "TiB" };
	size_t u = 0;

	while (u + 1 < ELEMENTSOF(units) && n && n % 1024 == 0) {
		n /= 1024;
		u++;
	}
	snprintf(buf, len, "%llu %s", (unsigned long long)n, units[u]);
}

/* Say on stderr that n bytes of a stream were dropped (the job's log_size). */
static void send_dropped(struct conn *c, const char *stream, uint64_t n, uint64_t cap)
{
	char size[32], line[160];

	format_size(cap, size, sizeof(size));
	snprintf(line, sizeof(line), "xos: %llu bytes of earlier %s dropped (log size limit %s)\n",
		 (unsigned long long)n, strcmp(stream, "stdout") ? "error output" : "output", size);
	send_output(c, "stderr", line, strlen(line));
}

/* Read what is new in one stream from *pos on; true if it is drained (EOF
 * for now). The loader punches what is beyond the job's log_size out of the
 * file's start: a hole where a reader is (found before or after reading it)
 * is skipped, and said to be. */
static bool pump_fd(struct conn *c, int fd, uint64_t *pos, const char *stream, uint64_t cap)
{
	char buf[CHUNK];

	while (fd >= 0 && c->out_len - c->out_off < OUT_HIGH) {
		ssize_t n = pread(fd, buf, sizeof(buf), (off_t)*pos);
		off_t data;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return true;
		data = lseek(fd, (off_t)*pos, SEEK_DATA);
		if (data < 0 && errno == ENXIO) /* a hole up to the end */
			data = (off_t)*pos + n;
		if (data > (off_t)*pos) {
			send_dropped(c, stream, (uint64_t)data - *pos, cap);
			*pos = (uint64_t)data;
			continue;
		}
		*pos += (uint64_t)n;
		send_output(c, stream, buf, (size_t)n);
	}
	return fd < 0;
}

void conn_pump(struct daemon *d, struct conn *c)
{
	struct unit *u;
	uint64_t cap;
	bool drained;

	if (c->mode != CONN_ATTACHED || !c->job)
		return;
	open_spool(d, c);
	cap = c->job->log_size ? c->job->log_size : d->cfg->log_size_default;
	drained = pump_fd(c, c->out_fd, &c->out_pos, "stdout", cap);
	drained = pump_fd(c, c->err_fd, &c->err_pos, "stderr", cap) && drained;
	u = job_unit(c->job, c->unit);
	if (drained && u && !c->exit_sent) {
		if (u->state != UNIT_RUNNING && c->follow) {
			if (!job_cgroups_held(c->job))
				send_exit(c, u);
		} else if (!c->follow) {
			conn_send(c, "{\"v\":1,\"ev\":\"eof\"}\n");
			c->mode = CONN_CLOSING;
		}
	}
	conn_update_events(d, c);
}

void conn_attach(struct daemon *d, struct conn *c, struct job *j, unsigned unit, bool follow)
{
	c->mode = CONN_ATTACHED;
	c->job = j;
	c->unit = unit;
	c->follow = follow;
	conn_pump(d, c);
}

/* Flush what is queued (the run response: a few bytes), then send the tty
 * event with the terminal's master attached. */
static int send_tty(struct conn *c, int fd)
{
	char text[64];
	size_t len;
	ssize_t n;

	conn_flush(c);
	if (c->out_off < c->out_len)
		return -EAGAIN;
	len = (size_t)snprintf(text, sizeof(text), "{\"v\":1,\"ev\":\"tty\",\"unit\":%u}\n",
			       c->unit);
	n = send_with_fd(c->fd, text, len, fd);
	if (n < 0)
		return -errno;
	if ((size_t)n < len) /* the rest of the line goes the usual way */
		queue(c, text + n, len - (size_t)n);
	return 0;
}

int conns_pass_tty(struct daemon *d, struct job *j, unsigned unit, int fd)
{
	for (struct conn *c = d->conns; c; c = c->next) {
		if (c->mode == CONN_STARTING && c->job == j && unit == 1 && c->wants_tty)
			ops_reply_started(d, c); /* the terminal comes before the start is seen */
		if (c->mode == CONN_ATTACHED && c->job == j && c->unit == unit && c->wants_tty) {
			c->wants_tty = false;
			return send_tty(c, fd);
		}
	}
	return -ENOENT;
}

void conns_job_output(struct daemon *d, struct job *j)
{
	for (struct conn *c = d->conns; c; c = c->next)
		if (c->mode == CONN_ATTACHED && c->job == j)
			conn_pump(d, c);
}

/* The unit's exit goes to its attached xrun now, not at the loop's next
 * turn, when the socket takes it at once. */
void conns_unit_ended(struct daemon *d, struct job *j, unsigned unit)
{
	for (struct conn *c = d->conns, *next; c; c = next) {
		next = c->next;
		if (c->mode == CONN_ATTACHED && c->job == j && c->unit == unit)
			conn_event(d, c, 0); /* pumps and flushes; may free c */
	}
}

void conns_job_ended(struct daemon *d, struct job *j)
{
	for (struct conn *c = d->conns, *next; c; c = next) {
		next = c->next;
		if (c->mode == CONN_WAIT && ops_wait_check(d, c))
			conn_event(d, c, 0); /* flushes and may free c */
	}
}

static void conn_read(struct daemon *d, struct conn *c)
{
	char buf[65536];

	for (;;) {
		ssize_t n = recv_with_fd(c->fd, buf, sizeof(buf), 0, &c->passed_fd);
		char *nl, *nb;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			if (c->mode != CONN_CLOSING)
				c->mode = CONN_CLOSING, c->out_off = c->out_len;
			return;
		}
		if (c->mode == CONN_CLOSING || c->mode == CONN_WAIT || c->mode == CONN_EVENTS)
			continue; /* nothing more is expected */
		if (c->in_len + (size_t)n > XOS_REQUEST_MAX) {
			c->in_len = 0;
			conn_reply_error(c, "too_large", "Request larger than %d bytes",
					 XOS_REQUEST_MAX);
			return;
		}
		nb = realloc(c->in, c->in_len + (size_t)n + 1);
		if (!nb)
			return;
		c->in = nb;
		memcpy(c->in + c->in_len, buf, (size_t)n);
		c->in_len += (size_t)n;
		c->in[c->in_len] = 0;
		while (c->mode != CONN_CLOSING && (nl = memchr(c->in, '\n', c->in_len))) {
			size_t len = (size_t)(nl - c->in);

			*nl = 0;
			ops_handle(d, c, c->in, len);
			memmove(c->in, nl + 1, c->in_len - len - 1);
			c->in_len -= len + 1;
		}
	}
}

static void conn_flush(struct conn *c)
{
	if (c->hold_out) /* (its answer waits for the queue's group commit) */
		return;
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) { /* peer gone */
			c->out_off = c->out_len;
			c->mode = CONN_CLOSING;
			return;
		}
		c->out_off += (size_t)n;
	}
}

void conn_event(struct daemon *d, struct conn *c, uint32_t events)
{
	if (c->closed)
		return; /* closed earlier in this batch of events */
	if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR))
		conn_read(d, c);
	conn_flush(c);
	if (c->mode == CONN_ATTACHED && c->out_off == c->out_len)
		conn_pump(d, c); /* back-pressure released */
	if (c->mode == CONN_EVENTS && c->out_off == c->out_len)
		events_conn_drained(d, c); /* what it missed meanwhile */
	conn_flush(c);
	if (c->mode == CONN_CLOSING && c->out_off >= c->out_len) {
		conn_free(d, c);
		return;
	}
	conn_update_events(d, c);
}
