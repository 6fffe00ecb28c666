/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The scheduling policy: order (priority, fair share, submission), admission
 * by capacity, EASY backfill, dependencies, estimated starts
 * (docs/SCHEDULING.md). */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/scheduler.h"

static const char *const dep_modes[_SCHEDULER_DEP_MODE_MAX] = {
	[SCHEDULER_DEP_OK] = "ok",
	[SCHEDULER_DEP_FAIL] = "fail",
	[SCHEDULER_DEP_ANY] = "any",
};
static const char *const actions[_SCHEDULER_ACTION_MAX] = {
	[SCHEDULER_WAIT] = "wait",
	[SCHEDULER_START] = "start",
	[SCHEDULER_NEVER] = "never",
	[SCHEDULER_PREEMPT] = "preempt",
};

const char *scheduler_dep_mode_to_string(enum scheduler_dep_mode m)
{
	return m >= 0 && m < _SCHEDULER_DEP_MODE_MAX ? dep_modes[m] : NULL;
}

enum scheduler_dep_mode scheduler_dep_mode_from_string(const char *s)
{
	for (int i = 0; s && i < _SCHEDULER_DEP_MODE_MAX; i++)
		if (!strcmp(s, dep_modes[i]))
			return (enum scheduler_dep_mode)i;
	return _SCHEDULER_DEP_MODE_INVALID;
}

const char *scheduler_action_to_string(enum scheduler_action a)
{
	return a >= 0 && a < _SCHEDULER_ACTION_MAX ? actions[a] : NULL;
}

double scheduler_decay(double usage, uint64_t elapsed_us, uint64_t half_life_us)
{
	if (!half_life_us || !elapsed_us)
		return usage;
	return usage * exp2(-((double)elapsed_us / (double)half_life_us));
}

double scheduler_charge(uint64_t millicpus, uint64_t wall_us)
{
	uint64_t secs = (wall_us + 999999) / 1000000;
	double cpus = (double)millicpus / 1000.0;

	return (cpus < 1.0 ? 1.0 : cpus) * (double)(secs ? secs : 1);
}

int scheduler_parse_dep(const char *s, size_t *ret_id_len, enum scheduler_dep_mode *ret_mode)
{
	const char *colon = strchr(s, ':');
	enum scheduler_dep_mode m = SCHEDULER_DEP_OK;

	if (colon && (m = scheduler_dep_mode_from_string(colon + 1)) < 0)
		return -EINVAL;
	if ((colon ? (size_t)(colon - s) : strlen(s)) == 0)
		return -EINVAL;
	*ret_id_len = colon ? (size_t)(colon - s) : strlen(s);
	*ret_mode = m;
	return 0;
}

void scheduler_format_cpus(uint64_t millicpus, char *buf, size_t len)
{
	if (millicpus % 1000 == 0)
		snprintf(buf, len, "%" PRIu64 " cpu%s", millicpus / 1000,
			 millicpus == 1000 ? "" : "s");
	else
		snprintf(buf, len, "%.3g cpus", (double)millicpus / 1000.0);
}

void scheduler_format_memory(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "bytes", "KiB", "MiB", "GiB", "TiB", "PiB" };
	unsigned u = 0;
	uint64_t scale = 1;

	while (u + 1 < sizeof(units) / sizeof(units[0]) && bytes / scale >= 1024) {
		scale *= 1024;
		u++;
	}
	/* whole units, else two decimals (cut, not rounded: never more than asked) */
	if (bytes % scale == 0)
		snprintf(buf, len, "%" PRIu64 " %s of memory", bytes / scale, units[u]);
	else
		snprintf(buf, len, "%" PRIu64 ".%02" PRIu64 " %s of memory", bytes / scale,
			 (bytes % scale) * 100 / scale, units[u]);
}

/* ---- resources ---- */

static bool fits(const struct scheduler_resources *req, const struct scheduler_resources *free_)
{
	return req->millicpus <= free_->millicpus && req->memory <= free_->memory &&
	       req->jobs <= free_->jobs;
}

static uint64_t sat_sub(uint64_t a, uint64_t b)
{
	return a == SCHEDULER_UNLIMITED ? a : a > b ? a - b : 0;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a == SCHEDULER_UNLIMITED || b > UINT64_MAX - 1 - a ? SCHEDULER_UNLIMITED - 1 : a + b;
}

static void res_sub(struct scheduler_resources *a, const struct scheduler_resources *b)
{
	a->millicpus = sat_sub(a->millicpus, b->millicpus);
	a->memory = sat_sub(a->memory, b->memory);
	a->jobs = sat_sub(a->jobs, b->jobs);
}

static void res_add(struct scheduler_resources *a, const struct scheduler_resources *b)
{
	if (a->millicpus != SCHEDULER_UNLIMITED)
		a->millicpus = sat_add(a->millicpus, b->millicpus);
	if (a->memory != SCHEDULER_UNLIMITED)
		a->memory = sat_add(a->memory, b->memory);
	if (a->jobs != SCHEDULER_UNLIMITED)
		a->jobs = sat_add(a->jobs, b->jobs);
}

static struct scheduler_resources queued_req(const struct scheduler_queued *q)
{
	struct scheduler_resources r = q->req;

	r.jobs = 1;
	return r;
}

/* ---- ends of running jobs: a min-heap by time ---- */

struct end {
	uint64_t at;
	struct scheduler_resources req;
};

struct ends {
	struct end *v;
	size_t n, cap;
};

static int ends_push(struct ends *h, uint64_t at, const struct scheduler_resources *req)
{
	size_t i;

	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 16;
		struct end *v = realloc(h->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	i = h->n++;
	while (i > 0 && h->v[(i - 1) / 2].at > at) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = (struct end){ at, *req };
	return 0;
}

static struct end ends_pop(struct ends *h)
{
	struct end top = h->v[0], last = h->v[--h->n];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1].at < h->v[c].at)
			c++;
		if (h->v[c].at >= last.at)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = last;
	return top;
}

static int ends_copy(struct ends *dst, const struct ends *src)
{
	dst->n = dst->cap = 0;
	dst->v = NULL;
	if (!src->n)
		return 0;
	dst->v = malloc(src->n * sizeof(*dst->v));
	if (!dst->v)
		return -ENOMEM;
	memcpy(dst->v, src->v, src->n * sizeof(*dst->v));
	dst->n = dst->cap = src->n;
	return 0;
}

/* When free (now) plus what the ends give back first fits req: the time, or
 * 0 if the known ends never make room; what is left free then in ret_left. */
static uint64_t shadow_time(const struct ends *h, struct scheduler_resources free_,
			    const struct scheduler_resources *req, uint64_t now,
			    struct scheduler_resources *ret_left)
{
	struct ends c;
	uint64_t at = now;

	if (ends_copy(&c, h) < 0)
		return 0;
	while (!fits(req, &free_) && c.n) {
		struct end e = ends_pop(&c);

		at = e.at;
		res_add(&free_, &e.req);
	}
	free(c.v);
	if (!fits(req, &free_))
		return 0;
	res_sub(&free_, req);
	*ret_left = free_;
	return at;
}

/* ---- order ---- */

struct order_ctx {
	const struct scheduler_node *node;
	struct scheduler_share *share; /* per queued job: its group's and user's usage */
};

struct scheduler_share scheduler_share_of(const struct scheduler_usage *usage, size_t n_usage,
					  const struct scheduler_queued *q)
{
	struct scheduler_share s = { 0.0, 0.0 };
	bool group = false, user = false;

	for (size_t i = 0; i < n_usage && !(group && user); i++) {
		const struct scheduler_usage *u = &usage[i];

		if (u->of_group && !group && u->id == q->group) {
			s.group = u->usage;
			group = true;
		} else if (!u->of_group && !user && u->id == q->uid) {
			s.user = u->usage;
			user = true;
		}
	}
	return s;
}

static struct order_ctx *order_ctx_cur; /* qsort has no context argument */

int scheduler_compare(const struct scheduler_queued *qa, const struct scheduler_share *sa,
		      const struct scheduler_queued *qb, const struct scheduler_share *sb)
{
	if (qa->priority != qb->priority)
		return qa->priority > qb->priority ? -1 : 1;
	if (qa->group != qb->group && sa->group != sb->group)
		return sa->group < sb->group ? -1 : 1;
	if (qa->uid != qb->uid && sa->user != sb->user)
		return sa->user < sb->user ? -1 : 1;
	if (qa->submit_us != qb->submit_us)
		return qa->submit_us < qb->submit_us ? -1 : 1;
	return strcmp(qa->id ? qa->id : "", qb->id ? qb->id : "");
}

static int order_cmp(const void *pa, const void *pb)
{
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;

	return scheduler_compare(&order_ctx_cur->node->queue[a], &order_ctx_cur->share[a],
				 &order_ctx_cur->node->queue[b], &order_ctx_cur->share[b]);
}

/* Insertion sort of idx, for a queue nearly in order (the last pass's, a
 * few jobs added or moved); false if it takes too many moves (then qsort). */
static bool insertion_sort(size_t *idx, size_t n)
{
	size_t budget = 8 * n + 64;

	for (size_t i = 1; i < n; i++) {
		size_t x = idx[i], k = i;

		while (k > 0 && order_cmp(&idx[k - 1], &x) > 0) {
			idx[k] = idx[k - 1];
			k--;
			if (--budget == 0) {
				idx[k] = x;
				return false;
			}
		}
		idx[k] = x;
	}
	return true;
}

/* The queue's indexes in order: priority (higher first), then the group's
 * usage, then the user's (lower first), then submission (earlier first). A queue given
 * sorted needs none (*ret NULL: its own order); else -ENOMEM. (Nothing is
 * allocated per pass for a sorted queue: after each fork of the daemon the
 * first write to a page of its heap costs a fault.) */
static int queue_order(const struct scheduler_node *n, size_t **ret)
{
	size_t *idx;
	struct scheduler_share *share;
	struct order_ctx ctx;

	*ret = NULL;
	if (n->sorted)
		return 0;
	idx = calloc(n->n_queue ? n->n_queue : 1, sizeof(*idx));
	share = calloc(n->n_queue ? n->n_queue : 1, sizeof(*share));
	if (!idx || !share) {
		free(idx);
		free(share);
		return -ENOMEM;
	}
	ctx = (struct order_ctx){ n, share };
	for (size_t i = 0; i < n->n_queue; i++) {
		idx[i] = n->order_hint ? n->order_hint[i] : i;
		if (n->n_usage)
			share[i] = scheduler_share_of(n->usage, n->n_usage, &n->queue[i]);
	}
	order_ctx_cur = &ctx;
	if (!insertion_sort(idx, n->n_queue))
		qsort(idx, n->n_queue, sizeof(*idx), order_cmp);
	order_ctx_cur = NULL;
	free(share);
	*ret = idx;
	return 0;
}

/* ---- reasons ---- */

/* NEVER if a dependency cannot be satisfied any more, WAIT if one has not
 * ended yet; START means the dependencies allow it. why: NULL (len 0) when
 * no reason is wanted. */
static enum scheduler_action deps_check(const struct scheduler_queued *q, char *why, size_t len)
{
	enum scheduler_action a = SCHEDULER_START;

	for (size_t i = 0; i < q->n_deps; i++) {
		const struct scheduler_dep *d = &q->deps[i];
		const char *mode = scheduler_dep_mode_to_string(d->mode);

		if (d->state == SCHEDULER_DEP_GONE) {
			snprintf(why, len, "dependency %s: no such job (any more)", d->id);
			return SCHEDULER_NEVER;
		}
		if (d->state == SCHEDULER_DEP_SUCCEEDED && d->mode == SCHEDULER_DEP_FAIL) {
			snprintf(why, len,
				 "dependency %s succeeded (%s); --after %s:fail needs it to fail",
				 d->id, d->ended_as ? d->ended_as : "EXITED", d->id);
			return SCHEDULER_NEVER;
		}
		if (d->state == SCHEDULER_DEP_FAILED && d->mode == SCHEDULER_DEP_OK) {
			snprintf(
				why, len,
				"dependency %s ended %s; --after %s:ok needs it to exit with code 0",
				d->id, d->ended_as ? d->ended_as : "unsuccessfully", d->id);
			return SCHEDULER_NEVER;
		}
		if (d->state == SCHEDULER_DEP_PENDING && a == SCHEDULER_START) {
			snprintf(why, len, "waiting for job %s to end (--after %s:%s)", d->id,
				 d->id, mode);
			a = SCHEDULER_WAIT;
		}
	}
	return a;
}

/* A reason (cut where it is longer than the room for it). */
__attribute__((format(printf, 2, 3))) static void set_reason(struct scheduler_decision *dec,
							     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dec->reason, sizeof(dec->reason), fmt, ap);
	va_end(ap);
}

/* "waiting for 2 cpus and 1 GiB of memory; 3 jobs ahead" */
static void reason_resources(struct scheduler_decision *dec, const struct scheduler_resources *req,
			     const struct scheduler_resources *free_)
{
	scheduler_reason_resources(req, free_, dec->ahead, dec->reason, sizeof(dec->reason));
}

void scheduler_reason_resources(const struct scheduler_resources *req,
				const struct scheduler_resources *free_, unsigned n_ahead,
				char *buf, size_t len)
{
	char parts[3][64], ahead[48] = "";
	const char *p[3];
	size_t n = 0;

	if (req->millicpus > free_->millicpus)
		scheduler_format_cpus(req->millicpus, parts[n], sizeof(parts[n])), n++;
	if (req->memory > free_->memory)
		scheduler_format_memory(req->memory, parts[n], sizeof(parts[n])), n++;
	if (req->jobs > free_->jobs)
		snprintf(parts[n], sizeof(parts[n]), "a free job slot"), n++;
	for (size_t i = 0; i < 3; i++)
		p[i] = i < n ? parts[i] : "";
	if (n_ahead)
		snprintf(ahead, sizeof(ahead), "; %u job%s ahead", n_ahead,
			 n_ahead == 1 ? "" : "s");
	if (n == 0)
		snprintf(buf, len, "waiting for the jobs ahead to start%s", ahead);
	else
		snprintf(buf, len, "waiting for %s%s%s%s%s%s", p[0],
			 n > 2   ? ", "
			 : n > 1 ? " and "
				 : "",
			 p[1], n > 2 ? " and " : "", p[2], ahead);
}

/* ---- the decision ---- */

struct pass {
	const struct scheduler_node *node;
	struct scheduler_resources free_;
	struct ends ends;                 /* of the running jobs, and of those started now */
	bool reserved;                    /* the first blocked job has its reservation */
	uint64_t shadow;                  /* when it starts (0: unknown) */
	struct scheduler_resources extra; /* free at shadow beyond its request */
	unsigned waiting;                 /* eligible jobs found waiting so far */
	size_t *cand;                     /* room for n_running preemption candidates */
};

static bool want(const struct pass *p, const struct scheduler_queued *q)
{
	return !p->node->only_wanted_reasons || q->want_reason;
}

static int start(struct pass *p, struct scheduler_decision *dec, const struct scheduler_queued *q)
{
	struct scheduler_resources req = queued_req(q);

	dec->action = SCHEDULER_START;
	dec->est_start_us = p->node->now_us;
	res_sub(&p->free_, &req);
	return q->time_us ? ends_push(&p->ends, p->node->now_us + q->time_us, &req) : 0;
}

/* Backfill: a job that fits now may pass the reserved one if it ends before
 * that one's start, or fits in what is left over beside it then. */
static bool may_backfill(struct pass *p, const struct scheduler_queued *q)
{
	struct scheduler_resources req = queued_req(q);

	if (p->node->no_backfill || !p->shadow)
		return false;
	if (q->time_us && p->node->now_us + q->time_us <= p->shadow)
		return true;
	if (!fits(&req, &p->extra))
		return false;
	res_sub(&p->extra, &req);
	return true;
}

/* Victims are taken in this order: lower priority, then less work done
 * since their start or restore, then as listed. */
static bool victim_before(const struct scheduler_running *a, size_t ia,
			  const struct scheduler_running *b, size_t ib)
{
	if (a->priority != b->priority)
		return a->priority < b->priority;
	if (a->work_us != b->work_us)
		return a->work_us < b->work_us;
	return ia < ib;
}

/* The preemptible running jobs of lower priority than q, in victim order. */
static size_t candidates(struct pass *p, const struct scheduler_queued *q)
{
	const struct scheduler_running *run = p->node->running;
	size_t n = 0;

	for (size_t i = 0; i < p->node->n_running; i++) {
		size_t k = n++;

		if (!run[i].preemptible || run[i].stopping || run[i].priority >= q->priority) {
			n--;
			continue;
		}
		while (k > 0 && victim_before(&run[i], i, &run[p->cand[k - 1]], p->cand[k - 1])) {
			p->cand[k] = p->cand[k - 1];
			k--;
		}
		p->cand[k] = i;
	}
	return n;
}

/* The fewest victims, in victim order, whose resources with free_ fit req:
 * taken in order until it fits, then each one not needed given back (the
 * least preferred victims first). Their number, 0 if none do. */
static size_t choose_victims(struct pass *p, const struct scheduler_queued *q,
			     const struct scheduler_resources *req,
			     struct scheduler_resources avail)
{
	const struct scheduler_running *run = p->node->running;
	size_t n = candidates(p, q), k = 0;

	while (k < n && !fits(req, &avail))
		res_add(&avail, &run[p->cand[k++]].req);
	if (!fits(req, &avail))
		return 0;
	for (size_t i = k; i-- > 0;) {
		struct scheduler_resources without = avail;

		res_sub(&without, &run[p->cand[i]].req);
		if (!fits(req, &without))
			continue;
		avail = without;
		memmove(&p->cand[i], &p->cand[i + 1], (k - i - 1) * sizeof(*p->cand));
		k--;
	}
	return k;
}

/* The first job that waits may have lower-priority preemptible jobs
 * stopped at a checkpoint for it (docs/SCHEDULING.md, "Preemption"): true
 * if it waits for that (PREEMPT, or jobs already stopping for it). */
static bool preempt(struct pass *p, struct scheduler_decision *dec,
		    const struct scheduler_queued *q, const struct scheduler_resources *req)
{
	struct scheduler_resources avail = p->free_;
	size_t n;

	for (size_t i = 0; i < p->node->n_running; i++)
		if (p->node->running[i].stopping)
			res_add(&avail, &p->node->running[i].req);
	if (fits(req, &avail) && !fits(req, &p->free_)) {
		if (want(p, q))
			set_reason(dec, "waiting for preempted jobs to stop at a checkpoint");
		return true;
	}
	n = choose_victims(p, q, req, avail);
	if (n == 0 || n > SCHEDULER_VICTIMS_MAX)
		return false;
	dec->action = SCHEDULER_PREEMPT;
	dec->n_victims = (unsigned)n;
	for (size_t i = 0; i < n; i++)
		dec->victims[i] = (uint32_t)p->cand[i];
	set_reason(dec,
		   "preempting %zu job%s of lower priority (stopped at a checkpoint, "
		   "restored later)",
		   n, n == 1 ? "" : "s");
	return true;
}

static int decide_one(struct pass *p, struct scheduler_decision *dec,
		      const struct scheduler_queued *q)
{
	struct scheduler_resources req = queued_req(q);
	enum scheduler_action a;

	if (q->held) {
		if (want(p, q))
			set_reason(dec, "held (xrelease %.64s lets it start)", q->id);
		return 0;
	}
	a = q->n_deps ? deps_check(q, want(p, q) ? dec->reason : NULL,
				   want(p, q) ? sizeof(dec->reason) : 0)
		      : SCHEDULER_START;
	if (a == SCHEDULER_NEVER && !want(p, q)) /* (the job ends with this reason) */
		(void)deps_check(q, dec->reason, sizeof(dec->reason));
	dec->dependency = a == SCHEDULER_NEVER;
	if (a != SCHEDULER_START)
		return dec->action = a, 0;
	if (!fits(&req, &p->node->capacity)) {
		dec->action = SCHEDULER_NEVER;
		set_reason(dec, "it asks for more than this node has (xqueue shows the node)");
		return 0;
	}
	dec->ahead = p->waiting;
	if (fits(&req, &p->free_) && (!p->reserved || may_backfill(p, q))) {
		dec->backfilled = p->reserved;
		return start(p, dec, q);
	}
	if (want(p, q))
		reason_resources(dec, &req, &p->free_);
	p->waiting++;
	if (!p->reserved) {
		/* the first job that waits: room made by preemption, else when
		 * it can start (the ends of running jobs by their --time) */
		p->reserved = true;
		if (!preempt(p, dec, q, &req))
			p->shadow = shadow_time(&p->ends, p->free_, &req, p->node->now_us,
						&p->extra);
	}
	return 0;
}

/* Estimated starts of the jobs that wait, in order, none before the one
 * ahead: each when the ends so far (by --time) leave room for it (of the
 * first n decided). */
static int estimate(struct pass *p, const size_t *order, struct scheduler_decision *decs, size_t n)
{
	struct scheduler_resources free_ = p->free_;
	uint64_t at = p->node->now_us;
	int r = 0;

	for (size_t k = 0; k < n && r >= 0; k++) {
		struct scheduler_decision *dec = &decs[k];
		const struct scheduler_queued *q = &p->node->queue[order ? order[k] : k];
		struct scheduler_resources req = queued_req(q);

		if (dec->action != SCHEDULER_WAIT || q->held || q->n_deps)
			continue; /* (a dependency's end is not known) */
		while (!fits(&req, &free_) && p->ends.n) {
			struct end e = ends_pop(&p->ends);

			if (e.at > at)
				at = e.at;
			res_add(&free_, &e.req);
		}
		if (!fits(&req, &free_))
			break; /* it and those after it: unknown */
		dec->est_start_us = at;
		res_sub(&free_, &req);
		if (q->time_us)
			r = ends_push(&p->ends, at + q->time_us, &req);
		else
			break; /* it never ends, as far as we know */
	}
	return r;
}

static int init_pass(struct pass *p, const struct scheduler_node *n)
{
	*p = (struct pass){ .node = n, .free_ = n->capacity };
	p->cand = calloc(n->n_running + 1, sizeof(*p->cand));
	if (!p->cand)
		return -ENOMEM;
	for (size_t i = 0; i < n->n_running; i++) {
		const struct scheduler_running *r = &n->running[i];
		struct scheduler_resources req = r->req;

		req.jobs = 1;
		res_sub(&p->free_, &req);
		if (r->end_us && ends_push(&p->ends, r->end_us, &req) < 0)
			return -ENOMEM;
	}
	return 0;
}

static bool any_wanted(const struct scheduler_node *node)
{
	if (!node->only_wanted_reasons)
		return true;
	for (size_t i = 0; i < node->n_queue; i++)
		if (node->queue[i].want_reason)
			return true;
	return false;
}

/* No job after the one decided last can start, or be decided otherwise
 * than waiting for resources, and no reason is wanted of one (b: what the
 * queue holds; k: the next job's place) */
static bool rest_waits(const struct pass *p, const struct scheduler_bounds *b, size_t k)
{
	return b && p->reserved && (b->last_wanted == SIZE_MAX || b->last_wanted < k) && !b->held &&
	       !b->deps && fits(&b->max_req, &p->node->capacity) && !fits(&b->min_req, &p->free_);
}

static int decide(const struct scheduler_node *node, const struct scheduler_bounds *b,
		  struct scheduler_decision *decs, struct scheduler_stop *stop)
{
	size_t *order; /* (NULL: the queue's own) */
	struct pass p = { 0 };
	size_t k;
	int r = queue_order(node, &order);

	if (r >= 0)
		r = init_pass(&p, node);
	for (k = 0; r >= 0 && k < node->n_queue && !rest_waits(&p, b, k); k++) {
		struct scheduler_decision *dec = &decs[k];

		/* (not the whole decision: its reason stays unwritten where not wanted) */
		dec->index = order ? order[k] : k;
		dec->action = SCHEDULER_WAIT;
		dec->position = (unsigned)k + 1;
		dec->ahead = 0;
		dec->est_start_us = 0;
		dec->backfilled = dec->dependency = false;
		dec->n_victims = 0;
		dec->reason[0] = 0;
		r = decide_one(&p, dec, &node->queue[dec->index]);
	}
	*stop = (struct scheduler_stop){ k, p.waiting };
	/* estimated starts are for people: only when a reason is wanted */
	if (r >= 0 && (b ? b->last_wanted != SIZE_MAX : any_wanted(node)))
		r = estimate(&p, order, decs, k);
	free(p.ends.v);
	free(p.cand);
	free(order);
	return r;
}

int scheduler_decide_into(const struct scheduler_node *node, struct scheduler_decision *decs)
{
	struct scheduler_stop stop;

	return decide(node, NULL, decs, &stop);
}

int scheduler_decide_lazy(const struct scheduler_node *node, const struct scheduler_bounds *b,
			  struct scheduler_decision *decs, struct scheduler_stop *ret)
{
	if (!node->sorted || !node->only_wanted_reasons)
		return -EINVAL;
	return decide(node, b, decs, ret);
}

void scheduler_rest(const struct scheduler_stop *stop, size_t k, struct scheduler_decision *dec)
{
	*dec = (struct scheduler_decision){
		.index = k,
		.action = SCHEDULER_WAIT,
		.position = (unsigned)k + 1,
		.ahead = stop->waiting + (unsigned)(k - stop->n),
	};
}

int scheduler_decide(const struct scheduler_node *node, struct scheduler_decision **ret)
{
	struct scheduler_decision *decs = calloc(node->n_queue ? node->n_queue : 1, sizeof(*decs));
	int r = decs ? scheduler_decide_into(node, decs) : -ENOMEM;

	if (r < 0) {
		free(decs);
		return r;
	}
	*ret = decs;
	return 0;
}
