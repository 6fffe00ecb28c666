/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The job event stream (op "events", xevents) and the counters the metrics
 * endpoint shows. Events are made in one place: when a job's record is
 * written (daemon_persist_job*), from what changed since the last record
 * (its state, its newest version, its restores). Each subscriber has a
 * bounded buffer: a reader that falls behind misses events and is told how
 * many, it never holds xosd back or makes it grow. DECISIONS.md (ak). */
#include <sys/socket.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "runtime/runtime-internal.h"

/* Recent events kept for --since and for a --job subscriber that comes late. */
#define EVENTS_RING 1024

const double events_bucket_bounds[EVENTS_BUCKETS] = { 0.05, 0.1, 0.25, 0.5, 1,   2.5,
						      5,    10,  30,   60,  120, 300 };

struct event {
	uint64_t time_us;
	uid_t owner_uid;
	char job[XOS_JOB_ID_HEX + 1];
	bool end;   /* the job's "ended" event */
	char *line; /* the event line, newline-terminated */
};

struct events {
	struct event ring[EVENTS_RING];
	size_t head, n; /* the oldest, and how many are held */
	struct events_counters counters;
};

int events_setup(struct daemon *d)
{
	d->events = calloc(1, sizeof(*d->events));
	return d->events ? 0 : -ENOMEM;
}

void events_free(struct daemon *d)
{
	if (!d->events)
		return;
	for (size_t i = 0; i < d->events->n; i++)
		free(d->events->ring[(d->events->head + i) % EVENTS_RING].line);
	free(d->events);
	d->events = NULL;
}

const struct events_counters *events_counters(struct daemon *d)
{
	return &d->events->counters;
}

void events_pool_claimed(struct daemon *d)
{
	if (d->events)
		d->events->counters.pool_claims++;
}

void events_job_loaded(struct job *j)
{
	j->ev = (struct job_ev){
		.seen = true, .state = j->state, .ckpt_last = j->ckpt_last, .restores = j->restores
	};
}

static void histogram_add(struct events_histogram *h, uint64_t us)
{
	size_t i = 0;

	while (i < EVENTS_BUCKETS && (double)us > events_bucket_bounds[i] * 1e6)
		i++;
	if (i < EVENTS_BUCKETS)
		h->buckets[i]++;
	h->count++;
	h->sum_us += us;
}

/* ---- subscribers ---- */

static bool sub_wants(const struct conn *c, const struct event *e)
{
	if (c->mode != CONN_EVENTS || c->closed)
		return false;
	if (c->uid != 0 && c->uid != e->owner_uid)
		return false;
	return !c->ev_job[0] || !strcmp(c->ev_job, e->job);
}

/* Append text to c's output if it fits in the subscriber's buffer; the
 * buffer is compacted first, so memory stays within the bound. */
static bool sub_queue(struct daemon *d, struct conn *c, const char *text)
{
	size_t len = strlen(text), pending = c->out_len - c->out_off;
	char *n;

	if (pending + len > d->cfg->events_buffer)
		return false;
	if (c->out_off) {
		memmove(c->out, c->out + c->out_off, pending);
		c->out_off = 0;
		c->out_len = pending;
	}
	n = realloc(c->out, pending + len);
	if (!n)
		return false;
	c->out = n;
	memcpy(c->out + pending, text, len);
	c->out_len = pending + len;
	return true;
}

/* Tell c how many events it missed (if that fits now). */
static bool sub_say_missed(struct daemon *d, struct conn *c)
{
	char line[96];

	if (!c->ev_missed)
		return true;
	snprintf(line, sizeof(line), "{\"v\":%d,\"ev\":\"missed\",\"count\":%llu}\n",
		 XOS_PROTO_VERSION, (unsigned long long)c->ev_missed);
	if (!sub_queue(d, c, line))
		return false;
	c->ev_missed = 0;
	return true;
}

static void sub_send(struct daemon *d, struct conn *c, const struct event *e)
{
	if (!sub_say_missed(d, c) || !sub_queue(d, c, e->line)) {
		c->ev_missed++;
		d->events->counters.dropped++;
		if (e->end && c->ev_job[0])
			c->ev_end_missed = true;
	} else if (e->end && c->ev_job[0]) {
		c->mode = CONN_CLOSING; /* xevents --job: its job ended */
	}
	conn_event(d, c, 0); /* sends what it can; frees c once a closing one has said all */
}

static char *event_line(const struct job *j, const char *what, uint64_t t);

/* The end of c's job, said from its record (it was missed, or it ended
 * before the events now kept); the connection then closes. */
static void sub_say_end(struct daemon *d, struct conn *c)
{
	struct job *j = daemon_find_job(d, c->ev_job);
	_cleanup_free_ char *line = j && !job_is_live(j) ? event_line(j, "ended", j->ended_us)
							 : NULL;

	if (line && !sub_queue(d, c, line))
		return; /* (the buffer drains first) */
	c->ev_end_missed = false;
	c->mode = CONN_CLOSING;
}

void events_conn_drained(struct daemon *d, struct conn *c)
{
	if (sub_say_missed(d, c) && c->ev_end_missed)
		sub_say_end(d, c);
}

/* ---- making events ---- */

static void ring_push(struct events *ev, struct event *e)
{
	struct event *slot;

	if (ev->n == EVENTS_RING) {
		free(ev->ring[ev->head].line);
		ev->head = (ev->head + 1) % EVENTS_RING;
		ev->n--;
	}
	slot = &ev->ring[(ev->head + ev->n) % EVENTS_RING];
	*slot = *e;
	ev->n++;
}

/* The fields every event has; the event's own follow. */
static yajl_gen event_begin(const struct job *j, const char *what, uint64_t t)
{
	yajl_gen g = yajl_gen_alloc(NULL);

	if (!g)
		return NULL;
	yajl_gen_map_open(g);
	json_gen_kv_int(g, "v", XOS_PROTO_VERSION);
	json_gen_kv_str(g, "ev", "job");
	json_gen_kv_uint(g, "time_us", t);
	json_gen_kv_str(g, "job", j->id);
	if (j->name)
		json_gen_kv_str(g, "name", j->name);
	else
		json_gen_kv_null(g, "name");
	json_gen_kv_str(g, "user", j->user ? j->user : "");
	json_gen_kv_uint(g, "owner_uid", j->owner_uid);
	json_gen_kv_str(g, "event", what);
	json_gen_kv_str(g, "state", job_state_to_string(j->state));
	return g;
}

/* The figures an event carries besides (none for most). */
static void event_figures(const struct job *j, const char *what, yajl_gen g)
{
	if (!strcmp(what, "checkpointed")) {
		json_gen_kv_uint(g, "version", j->ckpt_last);
		json_gen_kv_bool(g, "stopped", j->state == JOB_CHECKPOINTED);
		json_gen_kv_uint(g, "checkpoint_duration_us", j->ev.ckpt_duration_us);
		json_gen_kv_uint(g, "checkpoint_bytes", j->ev.ckpt_bytes);
	} else if (!strcmp(what, "restored")) {
		json_gen_kv_uint(g, "version", j->ev.restore_version);
		json_gen_kv_uint(g, "restore_duration_us", j->ev.restore_duration_us);
		json_gen_kv_uint(g, "restores", j->restores);
	} else if (!strcmp(what, "migrated")) {
		json_gen_kv_uint(g, "version", j->ckpt_last);
	} else if (!strcmp(what, "ended")) {
		int code = job_exit_code(j);

		if (j->reason)
			json_gen_kv_str(g, "reason", j->reason);
		if (code >= 0)
			json_gen_kv_int(g, "exit_code", code);
		if (j->have_acct) {
			json_gen_kv_uint(g, "cpu_us", j->acct.cpu_user_us + j->acct.cpu_system_us);
			json_gen_kv_uint(g, "memory_peak", j->acct.memory_peak);
		}
		if (j->started_us && j->ended_us >= j->started_us)
			json_gen_kv_uint(g, "wall_us", j->ended_us - j->started_us);
	}
}

static char *event_line(const struct job *j, const char *what, uint64_t t)
{
	_cleanup_gen_ yajl_gen g = event_begin(j, what, t);

	if (!g)
		return NULL;
	event_figures(j, what, g);
	yajl_gen_map_close(g);
	return json_gen_take(g, true);
}

static void emit(struct daemon *d, struct job *j, const char *what)
{
	struct event e = { .time_us = now_usec(), .owner_uid = j->owner_uid };

	e.line = event_line(j, what, e.time_us);
	if (!e.line)
		return;
	memcpy(e.job, j->id, sizeof(e.job));
	e.end = !strcmp(what, "ended");
	d->events->counters.events++;
	log_debug("Job %s: event %s (%s)", j->id, what, job_state_to_string(j->state));
	ring_push(d->events, &e);
	for (struct conn *c = d->conns, *next; c; c = next) {
		next = c->next;
		if (sub_wants(c, &e))
			sub_send(d, c, &e);
	}
}

/* The counters of metrics follow the events. */
static void count(struct daemon *d, struct job *j, const char *what)
{
	struct events_counters *k = &d->events->counters;

	if (!strcmp(what, "submitted"))
		k->submitted++;
	else if (!strcmp(what, "started"))
		k->started++;
	else if (!strcmp(what, "ended") && j->state >= 0 && j->state < _JOB_STATE_MAX)
		k->ended[j->state]++;
	else if (!strcmp(what, "checkpointed")) {
		k->checkpoints++;
		k->checkpoint_bytes += j->ev.ckpt_bytes;
		histogram_add(&k->checkpoint_duration, j->ev.ckpt_duration_us);
	} else if (!strcmp(what, "checkpoint_failed"))
		k->checkpoint_failures++;
	else if (!strcmp(what, "restored")) {
		k->restores++;
		histogram_add(&k->restore_duration, j->ev.restore_duration_us);
	} else if (!strcmp(what, "restore_failed"))
		k->restore_failures++;
	else if (!strcmp(what, "migrated"))
		k->migrated++;
}

static void event(struct daemon *d, struct job *j, const char *what)
{
	count(d, j, what);
	emit(d, j, what);
}

/* A job seen for the first time: made here, or taken over from a checkpoint
 * store that another node wrote (migrated). */
static void first_events(struct daemon *d, struct job *j)
{
	if (j->state == JOB_CHECKPOINTED) {
		event(d, j, "migrated");
		return;
	}
	event(d, j, "submitted");
	if (j->state == JOB_QUEUED)
		event(d, j, "queued");
	else if (j->state == JOB_RUNNING)
		event(d, j, "started");
	else if (job_state_is_final(j->state))
		event(d, j, "ended");
}

void events_job_persisted(struct daemon *d, struct job *j)
{
	struct job_ev *was = &j->ev;
	enum job_state s = j->state;

	if (!d->events)
		return;
	if (!was->seen) {
		first_events(d, j);
	} else {
		bool checkpointed = j->ckpt_last > was->ckpt_last;
		bool restored = j->restores > was->restores;

		if (s == JOB_QUEUED && was->state != JOB_QUEUED)
			event(d, j, "queued");
		if (s == JOB_RUNNING && (was->state == JOB_QUEUED || was->state == JOB_STARTING))
			event(d, j, "started");
		if (checkpointed)
			event(d, j, "checkpointed");
		else if (was->state == JOB_CHECKPOINTING && s != JOB_CHECKPOINTING)
			event(d, j, "checkpoint_failed");
		if (restored)
			event(d, j, "restored");
		else if (was->state == JOB_RESTORING && s != JOB_RESTORING)
			event(d, j, "restore_failed");
		if (job_state_is_final(s) && !job_state_is_final(was->state))
			event(d, j, "ended");
	}
	was->seen = true;
	was->state = s;
	was->ckpt_last = j->ckpt_last;
	was->restores = j->restores;
}

/* ---- the request ---- */

/* Past events for a new subscriber: those of its job (all the ring holds),
 * or those since since_us. true: its job's end was among them. */
static bool replay(struct daemon *d, struct conn *c, uint64_t since_us, bool have_since)
{
	bool end = false;

	if (!c->ev_job[0] && !have_since)
		return false;
	for (size_t i = 0; i < d->events->n; i++) {
		struct event *e = &d->events->ring[(d->events->head + i) % EVENTS_RING];

		if (have_since && e->time_us < since_us)
			continue;
		if (!sub_wants(c, e))
			continue;
		if (!sub_say_missed(d, c) || !sub_queue(d, c, e->line)) {
			c->ev_missed++;
			continue;
		}
		end = end || e->end;
	}
	return end;
}

int ops_events(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	const char *name = NULL;
	uint64_t since = 0;
	bool have_since = false, end;
	struct job *j = NULL;
	int r;

	if (!d->events) /* (a daemon not set up: the request tests' and fuzzers') */
		return xerr_set(err, -ENOTCONN, "internal", "The event stream is not set up");
	r = json_get_uint(t, "since", &since);
	if (r == -EINVAL)
		return xerr_set(err, -EINVAL, "bad_request",
				"Field 'since' must be a time in microseconds since the epoch");
	have_since = r >= 0;
	if (json_get_string(t, "job", &name) == -EINVAL)
		return xerr_set(err, -EINVAL, "bad_request", "Field 'job' must be a string");
	if (name && (r = ops_lookup(d, c, name, &j, err)) < 0)
		return r;
	/* what the kernel holds for it is bounded too (it doubles the figure) */
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &(int){ (int)(d->cfg->events_buffer / 2) },
			 sizeof(int));
	conn_send(c, "{\"v\":1,\"ok\":true}\n");
	c->mode = CONN_EVENTS;
	if (j)
		memcpy(c->ev_job, j->id, sizeof(c->ev_job));
	/* a job that has ended: its events as far as they are kept, then its
	 * end (from the record if it is not among them) */
	end = replay(d, c, since, have_since);
	if (j && !job_is_live(j) && end)
		c->mode = CONN_CLOSING;
	else if (j && !job_is_live(j)) {
		c->ev_end_missed = true;
		events_conn_drained(d, c);
	}
	return 0;
}
