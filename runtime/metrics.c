/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The metrics endpoint: GET /metrics over HTTP/1.0 in Prometheus's text
 * format, on a UNIX socket (metrics_socket) and a loopback TCP address
 * (metrics_listen), served by xosd's event loop without ever blocking it: at
 * most METRICS_CONN_MAX clients at once, a request of at most
 * METRICS_REQUEST_MAX bytes, and each exchange done within METRICS_TIMEOUT
 * or cut off. docs/METRICS.md, DECISIONS.md (ak). */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "runtime/runtime-internal.h"

#define METRICS_CONN_MAX 16
#define METRICS_REQUEST_MAX 4096
#define METRICS_TIMEOUT_USEC 5000000ULL
#define METRICS_PAUSE_USEC 100000ULL /* a listener out of fds rests this long */

/* (aligned: its address goes into the epoll data, whose low 4 bits say the kind) */
struct metrics_listener {
	int fd;
	const char *what; /* for messages: the path or the address */
	uint64_t paused_until;
	enum metrics_jobs jobs; /* what its per-job series carry */
} __attribute__((aligned(16)));

struct metrics_conn {
	int fd;
	char in[METRICS_REQUEST_MAX];
	size_t in_len;
	struct metrics_buf out;
	size_t out_off;
	bool answered;
	enum metrics_jobs jobs; /* its listener's */
	uint64_t deadline_us;
	struct metrics_conn *next;
};

struct metrics {
	struct metrics_listener listeners[2];
	size_t n_listeners;
	bool socket_bound; /* metrics_socket is ours to remove at the end */
	struct metrics_conn *conns;
	unsigned n_conns;
	uint64_t start_us;
	uint64_t refused, timed_out, scrapes;
};

/* ---- the collection ---- */

static void gen_counter(struct metrics_buf *b, const char *name, const char *help, uint64_t v)
{
	metrics_family(b, name, "counter", help);
	metrics_sample(b, name, NULL, (double)v);
}

static void gen_gauge(struct metrics_buf *b, const char *name, const char *help, double v)
{
	metrics_family(b, name, "gauge", help);
	metrics_sample(b, name, NULL, v);
}

static void gen_jobs_by_state(struct daemon *d, struct metrics_buf *b)
{
	const struct events_counters *k = events_counters(d);
	uint64_t n[_JOB_STATE_MAX] = { 0 };

	for (struct job *j = d->jobs; j; j = j->next)
		if (j->state >= 0 && j->state < _JOB_STATE_MAX)
			n[j->state]++;
	metrics_family(b, "xos_jobs", "gauge",
		       "Jobs xosd knows, by state (ended ones as far as keep_ended keeps them)");
	for (int s = 0; s < _JOB_STATE_MAX; s++)
		metrics_sample(b, "xos_jobs",
			       (const char *[]){ "state", job_state_to_string(s), NULL },
			       (double)n[s]);
	metrics_family(b, "xos_jobs_ended_total", "counter",
		       "Jobs that ended since xosd started, by final state");
	for (int s = 0; s < _JOB_STATE_MAX; s++)
		if (job_state_is_final(s))
			metrics_sample(b, "xos_jobs_ended_total",
				       (const char *[]){ "state", job_state_to_string(s), NULL },
				       (double)k->ended[s]);
}

static void gen_counters(struct daemon *d, struct metrics_buf *b)
{
	const struct events_counters *k = events_counters(d);

	gen_counter(b, "xos_jobs_submitted_total", "Jobs submitted since xosd started",
		    k->submitted);
	gen_counter(b, "xos_job_starts_total", "Jobs started since xosd started", k->started);
	gen_counter(b, "xos_job_failures_total",
		    "Jobs that ended FAILED (could not start, or lost) since xosd started",
		    k->ended[JOB_FAILED]);
	gen_counter(b, "xos_checkpoints_total", "Checkpoint versions made since xosd started",
		    k->checkpoints);
	gen_counter(b, "xos_checkpoint_failures_total",
		    "Checkpoints that failed since xosd started", k->checkpoint_failures);
	gen_counter(b, "xos_checkpoint_bytes_total",
		    "Bytes the checkpoints made since xosd started wrote (images, layer, spool)",
		    k->checkpoint_bytes);
	metrics_histogram(b, "xos_checkpoint_duration_seconds",
			  "Time a checkpoint took, from its start to its version made",
			  events_bucket_bounds, k->checkpoint_duration.buckets, EVENTS_BUCKETS,
			  (double)k->checkpoint_duration.sum_us / 1e6,
			  k->checkpoint_duration.count);
	gen_counter(b, "xos_restores_total", "Restores from a checkpoint since xosd started",
		    k->restores);
	gen_counter(b, "xos_restore_failures_total", "Restores that failed since xosd started",
		    k->restore_failures);
	metrics_histogram(b, "xos_restore_duration_seconds",
			  "Time a restore took, from its start to the job running again",
			  events_bucket_bounds, k->restore_duration.buckets, EVENTS_BUCKETS,
			  (double)k->restore_duration.sum_us / 1e6, k->restore_duration.count);
	gen_counter(b, "xos_jobs_migrated_total",
		    "Jobs taken over from a checkpoint store another node wrote", k->migrated);
	gen_counter(b, "xos_events_total", "Job events made since xosd started", k->events);
	gen_counter(b, "xos_events_dropped_total",
		    "Event lines subscribers missed because they read too slowly", k->dropped);
}

static void gen_pool(struct daemon *d, struct metrics_buf *b)
{
	const struct events_counters *k = events_counters(d);
	uint64_t n[2] = { 0, 0 }; /* ready, starting */

	for (const struct job *p = d->pool; p; p = p->next)
		if (job_is_live(p))
			n[p->state != JOB_RUNNING]++;
	metrics_family(b, "xos_pool_containers", "gauge",
		       "Prepared containers (pool_size) that no job has taken yet, by state");
	metrics_sample(b, "xos_pool_containers", (const char *[]){ "state", "ready", NULL },
		       (double)n[0]);
	metrics_sample(b, "xos_pool_containers", (const char *[]){ "state", "starting", NULL },
		       (double)n[1]);
	gen_counter(b, "xos_pool_claims_total",
		    "Jobs started in a prepared container since xosd started", k->pool_claims);
}

static void gen_connections(struct daemon *d, struct metrics_buf *b)
{
	uint64_t clients = 0, subs = 0;

	for (struct conn *c = d->conns; c; c = c->next) {
		clients++;
		subs += c->mode == CONN_EVENTS;
	}
	gen_gauge(b, "xos_client_connections", "Client connections open now", (double)clients);
	gen_gauge(b, "xos_event_subscribers", "Event stream subscribers connected now",
		  (double)subs);
	gen_counter(b, "xos_metrics_refused_total",
		    "Metrics clients refused: METRICS_CONN_MAX were connected already",
		    d->metrics->refused);
	gen_counter(b, "xos_metrics_timeouts_total",
		    "Metrics clients cut off: no whole exchange within the timeout",
		    d->metrics->timed_out);
}

struct job_usage {
	struct job *j;
	struct runtime_accounting acct;
	uint64_t mem;
	bool have_acct, have_mem;
};

/* Figure f of gen_job_usage's families, if known. */
static bool usage_value(const struct job_usage *u, size_t f, double *ret)
{
	switch (f) {
	case 0:
		*ret = (double)(u->acct.cpu_user_us + u->acct.cpu_system_us) / 1e6;
		return u->have_acct;
	case 1:
		*ret = (double)u->mem;
		return u->have_mem;
	case 2:
		*ret = (double)u->acct.memory_peak;
		return u->have_acct;
	default:
		*ret = (double)u->j->limits.memory;
		return true;
	}
}

/* The cgroup usage of each running job (its container's own files),
 * labelled as the endpoint may show it: on the TCP port every local user
 * can read, not by name and user unless the node owner says so. */
static void gen_job_usage(struct daemon *d, struct metrics_buf *b, enum metrics_jobs what)
{
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
		{ "xos_job_cpu_seconds_total", "counter", "CPU time the job's container used" },
		{ "xos_job_memory_bytes", "gauge", "Memory the job's container uses now" },
		{ "xos_job_memory_peak_bytes", "gauge", "Most memory the job's container used" },
		{ "xos_job_memory_limit_bytes", "gauge", "The job's memory limit (0: none)" },
	};
	_cleanup_free_ struct job_usage *u = NULL;
	size_t n = 0, cap = 0;

	if (what == METRICS_JOBS_NONE)
		return;
	for (struct job *j = d->jobs; j; j = j->next)
		cap += j->state == JOB_RUNNING && j->init_pid > 0;
	u = cap ? calloc(cap, sizeof(*u)) : NULL;
	for (struct job *j = d->jobs; u && j && n < cap; j = j->next) {
		if (j->state != JOB_RUNNING || j->init_pid <= 0)
			continue;
		u[n].j = j;
		u[n].have_acct = container_accounting(d, j, &u[n].acct) >= 0;
		u[n].have_mem = container_memory_current(d, j, &u[n].mem) >= 0;
		n++;
	}
	for (size_t f = 0; f < ELEMENTSOF(fam); f++) {
		metrics_family(b, fam[f].name, fam[f].type, fam[f].help);
		for (size_t i = 0; i < n; i++) {
			double v;

			const char *lb[] = { "job",  u[i].j->id,   "name", u[i].j->name,
					     "user", u[i].j->user, NULL };

			if (what != METRICS_JOBS_NAMES)
				lb[2] = NULL;
			if (usage_value(&u[i], f, &v))
				metrics_sample(b, fam[f].name, lb, v);
		}
	}
}

int metrics_collect(struct daemon *d, struct metrics_buf *b, enum metrics_jobs jobs)
{
	metrics_family(b, "xosd_info", "gauge", "xosd's version");
	metrics_sample(b, "xosd_info", (const char *[]){ "version", XOS_VERSION, NULL }, 1);
	gen_gauge(b, "xosd_start_time_seconds", "When xosd started, seconds since the epoch",
		  (double)(d->metrics ? d->metrics->start_us : 0) / 1e6);
	gen_jobs_by_state(d, b);
	gen_counters(d, b);
	gen_pool(d, b);
	if (d->metrics)
		gen_connections(d, b);
	gen_job_usage(d, b, jobs);
	return b->oom ? -ENOMEM : 0;
}

/* ---- the clients ---- */

static void mconn_free(struct daemon *d, struct metrics_conn *m)
{
	struct metrics *ms = d->metrics;

	for (struct metrics_conn **p = &ms->conns; *p; p = &(*p)->next)
		if (*p == m) {
			*p = m->next;
			break;
		}
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, m->fd, NULL);
	closep(&m->fd);
	metrics_buf_free(&m->out);
	free(m);
	ms->n_conns--;
}

static void mconn_answer(struct daemon *d, struct metrics_conn *m, int status, bool head)
{
	struct metrics_buf body = { 0 };
	struct epoll_event ev = { .events = EPOLLOUT };

	if (status == 200 && metrics_collect(d, &body, m->jobs) < 0)
		status = 503;
	if (status == 200)
		d->metrics->scrapes++;
	metrics_http_response(&m->out, status, body.p ? body.p : "", body.len, head);
	metrics_buf_free(&body);
	m->answered = true;
	ev.data.u64 = (uint64_t)(uintptr_t)m | EP_METRICS_CONN;
	epoll_ctl(d->epfd, EPOLL_CTL_MOD, m->fd, &ev);
}

/* Read what came: 1 once the request is whole (or bad: answered), 0 for
 * more to come, -1 when the client went (m is freed). */
static int mconn_read(struct daemon *d, struct metrics_conn *m)
{
	bool head = false;
	int status;

	for (;;) {
		ssize_t n = recv(m->fd, m->in + m->in_len, sizeof(m->in) - m->in_len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0) {
			mconn_free(d, m);
			return -1;
		}
		m->in_len += (size_t)n;
		status = metrics_http_request(m->in, m->in_len, &head);
		if (status == -EAGAIN && m->in_len == sizeof(m->in))
			status = 413;
		if (status != -EAGAIN) {
			mconn_answer(d, m, status, head);
			return 1;
		}
	}
}

static void mconn_write(struct daemon *d, struct metrics_conn *m)
{
	while (m->out_off < m->out.len) {
		ssize_t n = send(m->fd, m->out.p + m->out_off, m->out.len - m->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
			break;
		m->out_off += (size_t)n;
	}
	mconn_free(d, m); /* said all (or the client went) */
}

void metrics_conn_event(struct daemon *d, void *ptr, uint32_t events)
{
	struct metrics_conn *m = ptr;

	if (!m->answered && mconn_read(d, m) <= 0)
		return; /* more to come, or gone */
	mconn_write(d, m);
}

static void listener_pause(struct daemon *d, struct metrics_listener *l)
{
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, l->fd, NULL);
	l->paused_until = mono_usec() + METRICS_PAUSE_USEC;
	log_warn("Out of file descriptors: metrics clients on %s wait", l->what);
}

void metrics_listen_event(struct daemon *d, void *ptr)
{
	struct metrics_listener *l = ptr;
	struct metrics *ms = d->metrics;

	for (int i = 0; i < 64; i++) { /* (a bounded batch: the loop has more to do) */
		int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct metrics_conn *m;

		if (fd < 0 && (errno == EMFILE || errno == ENFILE))
			return listener_pause(d, l);
		if (fd < 0)
			return;
		if (ms->n_conns >= METRICS_CONN_MAX || !(m = calloc(1, sizeof(*m)))) {
			static const char busy[] = "HTTP/1.0 503 Service Unavailable\r\n"
						   "Content-Length: 0\r\nConnection: close\r\n\r\n";

			(void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			ms->refused++;
			continue;
		}
		m->fd = fd;
		m->jobs = l->jobs;
		m->deadline_us = mono_usec() + METRICS_TIMEOUT_USEC;
		if (daemon_epoll_add(d, fd, EPOLLIN | EPOLLRDHUP, EP_METRICS_CONN, m) < 0) {
			close(fd);
			free(m);
			continue;
		}
		m->next = ms->conns;
		ms->conns = m;
		ms->n_conns++;
	}
}

int metrics_tick(struct daemon *d)
{
	struct metrics *ms = d->metrics;
	uint64_t now = mono_usec(), next = 0;

	if (!ms)
		return -1;
	for (struct metrics_conn *m = ms->conns, *n; m; m = n) {
		n = m->next;
		if (m->deadline_us <= now) {
			ms->timed_out++;
			mconn_free(d, m);
		} else if (!next || m->deadline_us < next) {
			next = m->deadline_us;
		}
	}
	for (size_t i = 0; i < ms->n_listeners; i++) {
		struct metrics_listener *l = &ms->listeners[i];

		if (!l->paused_until)
			continue;
		if (l->paused_until <= now) {
			l->paused_until = 0;
			if (daemon_epoll_add(d, l->fd, EPOLLIN, EP_METRICS, l) < 0)
				log_error("Failed to listen for metrics on %s again: %m", l->what);
		} else if (!next || l->paused_until < next) {
			next = l->paused_until;
		}
	}
	return next ? (int)((next - now + 999) / 1000) : -1;
}

/* ---- the listeners ---- */

static int listen_unix(struct daemon *d, const char *path)
{
	_cleanup_close_ int fd = unix_listen(path, 64);

	if (fd < 0)
		return fd;
	/* root's only: the endpoint names every user's jobs */
	if (chmod(path, 0600) < 0)
		return -errno;
	d->metrics->socket_bound = true;
	return TAKE_FD(fd);
}

static int listen_tcp(const char *addr)
{
	struct sockaddr_storage sa;
	unsigned len;
	int one = 1;
	_cleanup_close_ int fd = -EBADF;

	if (runtime_parse_metrics_listen(addr, &sa, &len) < 0)
		return -EINVAL;
	fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, 64) < 0)
		return -errno;
	return TAKE_FD(fd);
}

static int add_listener(struct daemon *d, const char *what, bool tcp)
{
	struct metrics_listener *l = &d->metrics->listeners[d->metrics->n_listeners];
	int fd = tcp ? listen_tcp(what) : listen_unix(d, what);

	if (fd < 0)
		return log_error_errno(fd,
				       "Failed to listen for metrics on %s: %m (%s in xosd.conf)",
				       what, tcp ? "metrics_listen" : "metrics_socket");
	l->fd = fd;
	l->what = what;
	l->jobs = tcp ? (enum metrics_jobs)d->cfg->metrics_listen_jobs : METRICS_JOBS_NAMES;
	d->metrics->n_listeners++;
	if (daemon_epoll_add(d, fd, EPOLLIN, EP_METRICS, l) < 0)
		return log_error_errno(errno, "Failed to listen for metrics on %s: %m", what);
	log_info("Metrics at GET /metrics on %s", what);
	return 0;
}

int metrics_setup(struct daemon *d)
{
	const struct runtime_config *cfg = d->cfg;
	int r;

	if (!cfg->metrics_socket && !cfg->metrics_listen)
		return 0;
	d->metrics = calloc(1, sizeof(*d->metrics));
	if (!d->metrics)
		return log_error_errno(ENOMEM, "Failed to set up the metrics endpoint: %m");
	d->metrics->start_us = now_usec();
	if (cfg->metrics_socket && (r = add_listener(d, cfg->metrics_socket, false)) < 0)
		return r;
	if (cfg->metrics_listen && (r = add_listener(d, cfg->metrics_listen, true)) < 0)
		return r;
	return 0;
}

void metrics_unlink(struct daemon *d)
{
	if (d->metrics && d->metrics->socket_bound)
		unlink(d->cfg->metrics_socket);
}

void metrics_free(struct daemon *d)
{
	if (!d->metrics)
		return;
	while (d->metrics->conns)
		mconn_free(d, d->metrics->conns);
	for (size_t i = 0; i < d->metrics->n_listeners; i++)
		closep(&d->metrics->listeners[i].fd);
	free(d->metrics);
	d->metrics = NULL;
}
