/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The queue kept between passes (DECISIONS (az), docs/SCHEDULING.md): the
 * jobs that may start in the scheduler's order and the running jobs,
 * changed by the jobs an event touched; a lazy pass decides over it
 * instead of walking every job, and XOS_SCHED_SELFCHECK=1 compares each
 * such pass with a walk. The rest of the queue: queue.c, queue-job.c. */
#include "runtime/queue-internal.h"

_Static_assert(sizeof(((struct job_sched *)0)->kept_ended[0]) == ENDED_MAX, "ENDED_MAX");

static int push(struct job ***arr, size_t *n, size_t *cap, struct job *j)
{
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 64;
		struct job **a = realloc(*arr, c * sizeof(*a));

		if (!a)
			return -ENOMEM;
		*arr = a;
		*cap = c;
	}
	(*arr)[(*n)++] = j;
	return 0;
}

static void pull(struct job **arr, size_t *n, const struct job *j)
{
	for (size_t i = 0; i < *n; i++)
		if (arr[i] == j) {
			memmove(&arr[i], &arr[i + 1], (*n - i - 1) * sizeof(*arr));
			(*n)--;
			return;
		}
}

void queue_kept_free(struct kept *kp)
{
	scheduler_kept_free(&kp->k);
	kp->v.jobs = NULL; /* (the kept queue's) */
	kp->v.queue = NULL;
	queue_view_free(&kp->v);
	free(kp->touched);
	free(kp->run);
	free(kp->ckpt);
	free(kp->fresh);
	*kp = (struct kept){ 0 };
}

/* Thrown away: the next pass walks every job to make it again */
static void kept_invalidate(struct kept *kp)
{
	kp->valid = false;
	kp->n_touched = 0;
}

/* In the kept queue: a job that may start (its membership comes from
 * what its record holds; a run under way is checked at each pass) */
static bool kept_member(const struct job *j)
{
	return (j->state == JOB_QUEUED && !j->sched.held) ||
	       (j->state == JOB_CHECKPOINTED && j->sched.resume);
}

void queue_job_touched(struct daemon *d, struct job *j)
{
	struct kept *kp = d->queue ? &d->queue->kept : NULL;

	if (!kp || !kp->valid || j->sched.touched_gen == kp->gen)
		return;
	if (push(&kp->touched, &kp->n_touched, &kp->cap_touched, j) < 0)
		return kept_invalidate(kp);
	j->sched.touched_gen = kp->gen;
}

/* j's entry as it was added (its priority then; its group, which
 * queue_entry found then, does not change) */
static struct scheduler_queued kept_key(const struct job *j)
{
	return (struct scheduler_queued){ .id = j->name ? j->name : j->id,
					  .uid = j->owner_uid,
					  .group = j->sched.group1 ? j->sched.group1 - 1 : 0,
					  .priority = j->sched.kept_priority,
					  .submit_us = j->created_us };
}

/* j leaves the kept queue (its index there: at) */
static void kept_leave(struct kept *kp, struct job *j)
{
	j->sched.kept_gen = 0;
	if (j->state == JOB_CHECKPOINTED || kp->n_ckpt)
		pull(kp->ckpt, &kp->n_ckpt, j);
	if (j->sched.kept_deps && kp->n_deps)
		kp->n_deps--;
	free(j->sched.kept_deps);
	free(j->sched.kept_ended);
	j->sched.kept_deps = NULL;
	j->sched.kept_ended = NULL;
}

void queue_job_unlinked(struct daemon *d, struct job *j)
{
	struct kept *kp = d->queue ? &d->queue->kept : NULL;
	struct scheduler_queued key = kept_key(j);

	if (!kp || !kp->valid)
		return;
	if (j->sched.kept_gen == kp->gen) {
		size_t at = scheduler_kept_find(&kp->k, &key, j);

		if (at != SIZE_MAX)
			scheduler_kept_drop(&kp->k, &at, 1);
		kept_leave(kp, j);
	}
	if (j->sched.run_gen == kp->gen)
		pull(kp->run, &kp->n_run, j);
	if (j->sched.touched_gen == kp->gen)
		pull(kp->touched, &kp->n_touched, j);
	j->sched.run_gen = j->sched.touched_gen = 0;
	kp->deps_dirty = true;
}

/* j's entry, its dependencies' states in its own arrays (kept_deps) */
static int kept_entry(struct daemon *d, struct kept *kp, struct job *j,
		      struct scheduler_queued *ret)
{
	bool resume = j->state == JOB_CHECKPOINTED; /* (its dependencies were met) */
	size_t n = resume ? 0 : j->sched.n_deps;

	free(j->sched.kept_deps);
	free(j->sched.kept_ended);
	j->sched.kept_deps = n ? calloc(n, sizeof(*j->sched.kept_deps)) : NULL;
	j->sched.kept_ended = n ? calloc(n, sizeof(*j->sched.kept_ended)) : NULL;
	if (n && (!j->sched.kept_deps || !j->sched.kept_ended))
		return -ENOMEM;
	for (size_t k = 0; k < n; k++)
		queue_dep_state(d, &j->sched.deps[k], &j->sched.kept_deps[k],
				j->sched.kept_ended[k]);
	kp->n_deps += n > 0;
	*ret = queue_entry(d, j, false, j->sched.kept_deps, n);
	j->sched.kept_gen = kp->gen;
	j->sched.kept_priority = j->sched.priority;
	if (j->sched.want_reason) { /* (as add_queued: for this pass) */
		j->sched.want_reason = false;
		if (push(&kp->fresh, &kp->n_fresh, &kp->cap_fresh, j) < 0)
			return -ENOMEM;
	}
	return resume ? push(&kp->ckpt, &kp->n_ckpt, &kp->cap_ckpt, j) : 0;
}

/* A running job into kp->run, in d->jobs's order (the later linked first:
 * victims of equal rank are taken in that order) */
static int kept_run_add(struct kept *kp, struct job *j)
{
	size_t i;

	if (push(&kp->run, &kp->n_run, &kp->cap_run, j) < 0)
		return -ENOMEM;
	for (i = kp->n_run - 1; i > 0 && kp->run[i - 1]->sched.link_seq < j->sched.link_seq; i--)
		kp->run[i] = kp->run[i - 1];
	kp->run[i] = j;
	j->sched.run_gen = kp->gen;
	return 0;
}

/* jobs into the kept queue or its running jobs, as they are now */
static int kept_add(struct daemon *d, struct kept *kp, struct job **jobs, size_t n)
{
	_cleanup_free_ struct scheduler_queued *q = calloc(n + 1, sizeof(*q));
	_cleanup_free_ void **data = calloc(n + 1, sizeof(*data));
	size_t m = 0;
	int r = q && data ? 0 : -ENOMEM;

	for (size_t i = 0; i < n && r >= 0; i++) {
		if (queue_holds_resources(jobs[i]))
			r = kept_run_add(kp, jobs[i]);
		else if (kept_member(jobs[i]) && (r = kept_entry(d, kp, jobs[i], &q[m])) >= 0)
			data[m++] = jobs[i];
	}
	if (r >= 0)
		r = scheduler_kept_add(&kp->k, kp->v.usage, kp->v.node.n_usage, q, data, m);
	return r;
}

/* Every job walked: the kept queue made again */
static int kept_rebuild(struct daemon *d, struct kept *kp)
{
	_cleanup_free_ struct job **all = NULL;
	size_t n = 0, cap = 0;

	for (struct job *j = d->jobs; j; j = j->next)
		if (push(&all, &n, &cap, j) < 0)
			return -ENOMEM;
	scheduler_kept_free(&kp->k);
	kp->gen++;
	kp->valid = true;
	kp->n_touched = kp->n_run = kp->n_ckpt = kp->n_deps = kp->n_fresh = 0;
	kp->deps_dirty = false;
	kp->walks++;
	return kept_add(d, kp, all, n);
}

/* The jobs touched since the last pass: out, and in again as they are */
static int kept_touched(struct daemon *d, struct kept *kp)
{
	_cleanup_free_ size_t *drop = calloc(kp->n_touched + 1, sizeof(*drop));
	_cleanup_free_ struct job **jobs = NULL;
	size_t n_drop = 0, n = kp->n_touched;

	if (!drop)
		return -ENOMEM;
	jobs = TAKE_PTR(kp->touched); /* (touched from here on: the next pass's) */
	kp->n_touched = kp->cap_touched = 0;
	for (size_t i = 0; i < n; i++) {
		struct job *j = jobs[i];

		j->sched.touched_gen = 0;
		if (j->sched.kept_gen == kp->gen) {
			struct scheduler_queued key = kept_key(j);

			drop[n_drop] = scheduler_kept_find(&kp->k, &key, j);
			n_drop += drop[n_drop] != SIZE_MAX;
			kept_leave(kp, j);
		}
		if (j->sched.run_gen == kp->gen) {
			pull(kp->run, &kp->n_run, j);
			j->sched.run_gen = 0;
		}
		if (j->state != JOB_QUEUED) /* (a dependency's state may have moved) */
			kp->deps_dirty = true;
	}
	scheduler_kept_drop(&kp->k, drop, n_drop);
	return kept_add(d, kp, jobs, n);
}

/* Each entry's dependencies' states again */
static void kept_deps(struct daemon *d, struct kept *kp)
{
	for (size_t i = 0; kp->n_deps && i < kp->k.n; i++) {
		struct job *j = kp->k.data[kp->k.off + i];

		for (size_t k = 0; k < kp->k.q[kp->k.off + i].n_deps; k++)
			queue_dep_state(d, &j->sched.deps[k], &j->sched.kept_deps[k],
					j->sched.kept_ended[k]);
	}
	kp->deps_dirty = false;
}

/* The users' and groups' usage now, as view_build gives it (into kp->v) */
static int kept_usage(struct daemon *d, struct kept *kp, uint64_t now)
{
	return queue_usage_now(d, now, &kp->v.usage, &kp->v.cap_usage, &kp->v.node.n_usage);
}

/* The kept queue brought to now; -EAGAIN: this pass walks every job */
static int kept_update(struct daemon *d, struct kept *kp, uint64_t now)
{
	int r = kept_usage(d, kp, now);

	if (r >= 0 && !kp->valid)
		r = kept_rebuild(d, kp);
	else if (r >= 0 && (r = scheduler_kept_usage(&kp->k, kp->v.usage, kp->v.node.n_usage)) >= 0)
		r = kept_touched(d, kp);
	if (r < 0) {
		kept_invalidate(kp);
		return -EAGAIN;
	}
	for (size_t i = 0; i < kp->n_ckpt; i++)
		if (kp->ckpt[i]->run) /* (not in the queue while it runs: a walk says) */
			return -EAGAIN;
	if (kp->deps_dirty)
		kept_deps(d, kp);
	return 0;
}

#define KEPT_WANT_MAX 64

/* The jobs whose reasons a pass wants (attached xruns follow them), as
 * view_build marks them: an entry's want_reason set (its index in want), a
 * held job in held (decided on its own: a held job changes nothing for the
 * others), else marked for when it is in the queue. -EAGAIN: too many */
struct kept_wants {
	size_t want[KEPT_WANT_MAX], n_want;
	struct job *held[KEPT_WANT_MAX];
	size_t n_held;
};

static int kept_want(struct kept *kp, struct job *j, struct kept_wants *w)
{
	struct scheduler_queued key = kept_key(j);
	size_t at;

	if (j->sched.kept_gen != kp->gen) {
		for (size_t i = 0; i < w->n_held; i++)
			if (w->held[i] == j)
				return 0;
		if (j->state != JOB_QUEUED || !j->sched.held)
			j->sched.want_reason = true;
		else if (w->n_held == KEPT_WANT_MAX)
			return -EAGAIN;
		else
			w->held[w->n_held++] = j;
		return 0;
	}
	at = scheduler_kept_find(&kp->k, &key, j);
	if (at == SIZE_MAX || kp->k.q[kp->k.off + at].want_reason)
		return 0;
	if (w->n_want == KEPT_WANT_MAX)
		return -EAGAIN;
	kp->k.q[kp->k.off + at].want_reason = true;
	w->want[w->n_want++] = at;
	return 0;
}

static void kept_unwant(struct kept *kp, struct kept_wants *w)
{
	for (size_t i = 0; i < w->n_want; i++)
		kp->k.q[kp->k.off + w->want[i]].want_reason = false;
	w->n_want = 0;
}

static int kept_wants(struct daemon *d, struct kept *kp, struct kept_wants *w)
{
	int r = 0;

	w->n_want = w->n_held = 0;
	for (size_t i = 0; i < kp->n_fresh && r >= 0; i++)
		r = kept_want(kp, kp->fresh[i], w);
	kp->n_fresh = 0;
	for (struct conn *c = d->conns; c && r >= 0; c = c->next)
		if (c->mode == CONN_ATTACHED && c->job && c->follow)
			r = kept_want(kp, c->job, w);
	if (r < 0)
		kept_unwant(kp, w);
	return r;
}

/* The running jobs (queue_add_running's entries) into kp->v */
static int kept_running(struct kept *kp, uint64_t now)
{
	struct view *v = &kp->v;

	if (queue_grow(&v->running, &v->cap_run, kp->n_run, sizeof(*v->running)) < 0 ||
	    queue_grow(&v->run_jobs, &v->cap_run_jobs, kp->n_run, sizeof(*v->run_jobs)) < 0)
		return -ENOMEM;
	v->node.n_running = 0;
	for (size_t i = 0; i < kp->n_run; i++)
		queue_add_running(v, kp->run[i], now);
	return 0;
}

static bool same_decision(const struct scheduler_decision *a, const struct view *va,
			  const struct scheduler_decision *b, const struct view *vb, bool reasons)
{
	if (a->action != b->action || a->backfilled != b->backfilled ||
	    a->dependency != b->dependency || a->ahead != b->ahead || a->n_victims != b->n_victims)
		return false;
	for (unsigned i = 0; i < a->n_victims; i++)
		if (va->run_jobs[a->victims[i]] != vb->run_jobs[b->victims[i]])
			return false;
	return !reasons || (a->est_start_us == b->est_start_us && !strcmp(a->reason, b->reason));
}

/* XOS_SCHED_SELFCHECK=1 (tests): the kept pass's decisions against a pass
 * that walks every job (made, not applied) */
static void kept_check(struct daemon *d, struct kept *kp, const struct scheduler_stop *stop)
{
	const struct view *kv = &kp->v;
	struct scheduler_decision rest;
	struct view *v = NULL;
	size_t next = 0;
	const char *bad = NULL, *who = "-";
	char what[2 * SCHEDULER_REASON_MAX + 128] = "";

	if (queue_view_build_at(d, NULL, true, kv->node.now_us, &v) < 0 ||
	    (v->node.n_queue && scheduler_decide_into(&v->node, v->decs) < 0))
		return;
	if (v->node.n_running != kv->node.n_running ||
	    memcmp(v->run_jobs, kv->run_jobs, kv->node.n_running * sizeof(*kv->run_jobs)))
		bad = "running jobs";
	for (size_t i = 0; !bad && i < v->node.n_queue; i++) {
		const struct scheduler_decision *a = &v->decs[i], *b;
		struct job *j = v->jobs[a->index];

		who = j->id;
		if (j->sched.kept_gen != kp->gen) {
			if (a->action != SCHEDULER_WAIT || j->state != JOB_QUEUED || !j->sched.held)
				bad = "a job left out";
			continue;
		}
		if (next >= stop->n && next < kv->node.n_queue) /* (left waiting by a lazy pass) */
			scheduler_rest(stop, next, &rest);
		b = next < stop->n ? &kv->decs[next] : next < kv->node.n_queue ? &rest : NULL;
		if (!b || kp->k.data[kp->k.off + b->index] != j)
			bad = "the order";
		else if (!same_decision(a, v, b, kv,
					v->queue[a->index].want_reason &&
						kv->queue[b->index].want_reason)) {
			bad = "a decision";
			snprintf(what, sizeof(what),
				 ": %s/%s, %u/%u ahead, %u/%u victims, '%s'/'%s' (of %zu/%zu "
				 "running)",
				 scheduler_action_to_string(a->action),
				 scheduler_action_to_string(b->action), a->ahead, b->ahead,
				 a->n_victims, b->n_victims, a->reason, b->reason,
				 v->node.n_running, kv->node.n_running);
		}
		next++;
	}
	if (!bad && next != kv->node.n_queue)
		bad = "the jobs in it";
	if (bad)
		log_error("Scheduler self-check: the kept queue's pass differs from a full pass "
			  "in %s (job %s)%s",
			  bad, who, what);
}

/* A decision to apply: its job, whether its reason was wanted, its index */
struct kept_act {
	struct job *job;
	bool want;
	size_t dec;
};

/* The held jobs an attached xrun follows, each decided on its own (what a
 * pass says of a held job depends on nothing else) */
static void kept_held(struct daemon *d, const struct view *kv, struct job **held, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct scheduler_queued q = { .id = held[i]->name ? held[i]->name : held[i]->id,
					      .uid = held[i]->owner_uid,
					      .group = queue_job_group(d, held[i]),
					      .priority = held[i]->sched.priority,
					      .submit_us = held[i]->created_us,
					      .req = { held[i]->sched.millicpus,
						       held[i]->sched.memory, 1 },
					      .held = true,
					      .want_reason = true };
		struct scheduler_node node = { .capacity = d->queue->capacity,
					       .now_us = kv->node.now_us,
					       .queue = &q,
					       .n_queue = 1,
					       .sorted = true,
					       .only_wanted_reasons = true };
		struct scheduler_decision dec;

		if (scheduler_decide_into(&node, &dec) >= 0)
			queue_apply_to(d, kv, held[i], true, &dec);
	}
}

/* A lazy pass over the kept queue: the decisions a pass that walks every
 * job makes (held jobs, which change nothing for the others, left out). 0,
 * or -EAGAIN: that pass must be made (the kept queue is then up to date
 * or thrown away). */
/* The decisions of the first n jobs of a lazy pass applied: those that
 * start, end or preempt, and those whose reason is wanted (w's marks, read
 * and cleared). What is applied is taken first: applying may drop entries
 * (a job that ends at once is unlinked), and touches the jobs it changes.
 * -ENOMEM: nothing applied. */
static int kept_apply(struct daemon *d, struct kept *kp, size_t n, struct kept_wants *w)
{
	struct view *kv = &kp->v;
	_cleanup_free_ struct kept_act *act = NULL;
	size_t n_act = 0;

	for (size_t k = 0; k < n; k++)
		n_act += kv->decs[k].action != SCHEDULER_WAIT ||
			 kv->queue[kv->decs[k].index].want_reason;
	act = calloc(n_act + 1, sizeof(*act));
	n_act = 0;
	for (size_t k = 0; act && k < n; k++) {
		const struct scheduler_decision *dec = &kv->decs[k];
		bool want = kv->queue[dec->index].want_reason;

		if (dec->action != SCHEDULER_WAIT || want)
			act[n_act++] = (struct kept_act){ kv->jobs[dec->index], want, k };
	}
	kept_unwant(kp, w);
	if (!act)
		return -ENOMEM;
	for (size_t i = 0; i < n_act; i++) {
		const struct scheduler_decision *dec = &kv->decs[act[i].dec];

		queue_job_touched(d, act[i].job);
		for (unsigned v = 0; v < dec->n_victims; v++)
			queue_job_touched(d, kv->run_jobs[dec->victims[v]]);
	}
	for (size_t i = 0; i < n_act; i++)
		queue_apply_to(d, kv, act[i].job, act[i].want, &kv->decs[act[i].dec]);
	return 0;
}

int queue_kept_schedule(struct daemon *d, struct pass_clock begun)
{
	struct kept *kp = &d->queue->kept;
	struct view *kv = &kp->v;
	struct kept_wants w;
	struct scheduler_bounds b;
	struct scheduler_stop stop = { 0 };
	uint64_t now = now_usec();

	if (kept_update(d, kp, now) < 0 || kept_wants(d, kp, &w) < 0)
		return -EAGAIN;
	if (kept_running(kp, now) < 0 ||
	    queue_grow(&kv->decs, &kv->cap_decs, kp->k.n + w.n_held, sizeof(*kv->decs)) < 0) {
		kept_unwant(kp, &w);
		return -EAGAIN;
	}
	kv->node = (struct scheduler_node){ .capacity = d->queue->capacity,
					    .now_us = now,
					    .running = kv->running,
					    .n_running = kv->node.n_running,
					    .usage = kv->usage,
					    .n_usage = kv->node.n_usage,
					    .no_backfill = !d->cfg->backfill,
					    .only_wanted_reasons = true };
	scheduler_kept_node(&kp->k, &kv->node);
	kv->jobs = (struct job **)(kp->k.data ? kp->k.data + kp->k.off : NULL);
	kv->queue = (struct scheduler_queued *)kv->node.queue;
	/* (a lazy pass: the jobs after those it decided all wait, no reason wanted) */
	scheduler_kept_bounds(&kp->k, &b);
	for (size_t i = 0; i < w.n_want; i++)
		if (b.last_wanted == SIZE_MAX || w.want[i] > b.last_wanted)
			b.last_wanted = w.want[i];
	if (kv->node.n_queue && scheduler_decide_lazy(&kv->node, &b, kv->decs, &stop) < 0) {
		kept_unwant(kp, &w);
		return -EAGAIN;
	}
	queue_pass_timed(d->queue, begun); /* (the decision; applying it starts jobs) */
	kp->passes++;
	kp->stopped += stop.n < kv->node.n_queue;
	if (d->queue->selfcheck)
		kept_check(d, kp, &stop);
	if (kept_apply(d, kp, stop.n, &w) <
	    0) { /* (decided, not applied: again at the next tick) */
		d->queue->dirty = true;
		return 0;
	}
	kept_held(d, kv, w.held, w.n_held);
	return 0;
}
