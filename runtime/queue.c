/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The node's queue: capacity, admission and order decided by scheduler/,
 * queued jobs' records, time limits (TIMEOUT), fair-share usage
 * (usage.json), xqueue and xrelease. What a run request asks of the
 * scheduler and the record's "sched" object: queue-job.c; the queue kept
 * between passes: queue-kept.c. docs/SCHEDULING.md. */
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "runtime/queue-internal.h"

#define USAGE_MAX_USERS 65536
#define USAGE_MAX_GROUPS 4096
/* SIGTERM at the time limit, SIGKILL this much later (as Slurm's KillWait) */
#define TIMEOUT_KILL_AFTER_US 10000000ULL

/* a victim whose checkpoint failed is not preempted again for this long */
#define PREEMPT_RETRY_US (600ULL * 1000000)

/* ---- capacity and usage ---- */

static bool res_fits(const struct scheduler_resources *req, const struct scheduler_resources *f)
{
	return req->millicpus <= f->millicpus && req->memory <= f->memory && req->jobs <= f->jobs;
}

static uint64_t sat_sub(uint64_t a, uint64_t b)
{
	return a == SCHEDULER_UNLIMITED ? a : a > b ? a - b : 0;
}

static void res_take(struct scheduler_resources *f, const struct scheduler_resources *r)
{
	f->millicpus = sat_sub(f->millicpus, r->millicpus);
	f->memory = sat_sub(f->memory, r->memory);
	f->jobs = sat_sub(f->jobs, r->jobs);
}

static uint64_t detect_memory(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

	return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : SCHEDULER_UNLIMITED;
}

static uint64_t minus_reserve(uint64_t have, uint64_t reserve)
{
	return have == SCHEDULER_UNLIMITED ? have : have > reserve ? have - reserve : 0;
}

/* The group of VO vo (NULL or "": the local accounts' 0), made where new
 * (add); UINT32_MAX: none, or no room */
static uint32_t group_id(struct queue_state *q, const char *vo, bool add)
{
	char **n;

	if (!vo || !*vo)
		return 0;
	for (size_t i = 0; i < q->n_groups; i++)
		if (!strcmp(q->groups[i], vo))
			return (uint32_t)i + 1;
	if (!add || q->n_groups >= USAGE_MAX_GROUPS ||
	    !(n = realloc(q->groups, (q->n_groups + 1) * sizeof(*n))))
		return UINT32_MAX;
	q->groups = n;
	if (!(q->groups[q->n_groups] = strdup(vo)))
		return UINT32_MAX;
	return (uint32_t)++q->n_groups;
}

uint32_t queue_job_group(struct daemon *d, const struct job *j)
{
	uint32_t g;

	if (j->sched.group1)
		return j->sched.group1 - 1;
	g = group_id(d->queue, j->grid_vo, true);
	if (g == UINT32_MAX) { /* (no room: fair among the local accounts, and said) */
		log_warn("Job %s: no room for the fair-share group of VO %s; its jobs are "
			 "ordered with the local accounts'",
			 j->id, j->grid_vo);
		g = 0;
	}
	/* (a cache of what never changes for a job: its VO) */
	((struct job *)j)->sched.group1 = g + 1;
	return g;
}

static int usage_load_list(struct queue_state *q, yajl_val list, bool groups)
{
	size_t max = groups ? USAGE_MAX_GROUPS + 1 : USAGE_MAX_USERS;

	if (!list && groups) /* (written before groups were) */
		return 0;
	if (!YAJL_IS_ARRAY(list) || list->u.array.len > max)
		return -EINVAL;
	for (size_t i = 0; i < list->u.array.len; i++) {
		yajl_val u = list->u.array.values[i], v = json_get(u, "usage");
		const char *vo = groups ? YAJL_GET_STRING(json_get(u, "vo")) : NULL;
		uint64_t id = 0, stamp = 0;

		if ((groups ? !vo || (id = group_id(q, vo, true)) == UINT32_MAX
			    : json_get_uint(u, "uid", &id) < 0 || id > UINT32_MAX) ||
		    json_get_uint(u, "stamp_us", &stamp) < 0 || !YAJL_IS_NUMBER(v))
			return -EINVAL;
		q->usage[q->n_usage++] = (struct usage_entry){ (uint32_t)id, groups,
							       YAJL_GET_DOUBLE(v), stamp };
	}
	return 0;
}

static int usage_load(struct queue_state *q, int state_fd)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ yajl_val t = NULL;
	yajl_val users, groups;
	size_t n;
	int r = read_file_at(state_fd, USAGE_FILE, 16 << 20, &text, NULL);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (json_parse(text, JSON_DEPTH_MAX, NULL, 0, &t) < 0)
		return -EINVAL;
	users = json_get(t, "users");
	groups = json_get(t, "groups");
	n = (YAJL_IS_ARRAY(users) ? users->u.array.len : 0) +
	    (YAJL_IS_ARRAY(groups) ? groups->u.array.len : 0);
	q->usage = calloc(n + 1, sizeof(*q->usage));
	if (!q->usage)
		return -ENOMEM;
	if ((r = usage_load_list(q, users, false)) < 0 ||
	    (r = usage_load_list(q, groups, true)) < 0)
		return r;
	return 0;
}

/* usage.json: written whole, USAGE_DELAY_US after a job's usage is charged
 * (the charges of a burst of ends in one write, after the answers of the
 * turn that charged them went), and made durable by the flusher (durable:
 * here, at xosd's stop): {"users": [{uid, usage, stamp_us}...], "groups":
 * [{vo ("": the local accounts), usage, stamp_us}...]} */
static int usage_save(struct daemon *d, bool durable)
{
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	_cleanup_free_ char *text = NULL;
	struct queue_state *q = d->queue;
	int r;

	if (!g)
		return -ENOMEM;
	yajl_gen_map_open(g);
	for (int groups = 0; groups < 2; groups++) {
		json_gen_key(g, groups ? "groups" : "users");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < q->n_usage; i++) {
			const struct usage_entry *u = &q->usage[i];

			if (u->of_group != groups)
				continue;
			yajl_gen_map_open(g);
			if (groups)
				json_gen_kv_str(g, "vo", u->id ? q->groups[u->id - 1] : "");
			else
				json_gen_kv_uint(g, "uid", u->id);
			json_gen_key(g, "usage");
			yajl_gen_double(g, u->usage);
			json_gen_kv_uint(g, "stamp_us", u->stamp_us);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
	}
	yajl_gen_map_close(g);
	text = json_gen_take(g, true);
	if (!text)
		return -ENOMEM;
	d->queue->usage_due_us = 0;
	r = write_file_atomic_at(d->state_fd, USAGE_FILE, text, strlen(text), 0600,
				 durable && d->cfg->sync_writes);
	if (r >= 0 && !durable && d->cfg->sync_writes)
		daemon_flush_usage(d);
	return r;
}

/* A charge waiting to be written goes now; the next timeout (ms) or -1. */
static int usage_tick(struct daemon *d, bool durable)
{
	uint64_t now = mono_usec();
	int r;

	if (!d->queue || !d->queue->usage_due_us)
		return -1;
	if (!durable && now < d->queue->usage_due_us)
		return (int)((d->queue->usage_due_us - now + 999) / 1000);
	if ((r = usage_save(d, durable)) < 0)
		log_warn("Failed to save the users' usage: %s", strerror(-r));
	return -1;
}

static void groups_free(struct queue_state *q)
{
	for (size_t i = 0; i < q->n_groups; i++)
		free(q->groups[i]);
	free(q->groups);
	q->groups = NULL;
	q->n_groups = 0;
}

/* u's usage decayed to now (its weight aside) */
static double decayed(struct daemon *d, const struct usage_entry *u, uint64_t now)
{
	return scheduler_decay(u->usage, now > u->stamp_us ? now - u->stamp_us : 0,
			       d->cfg->fairshare_half_life_us);
}

int queue_setup(struct daemon *d)
{
	const struct runtime_config *c = d->cfg;
	struct queue_state *q = calloc(1, sizeof(*q));
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int r;

	if (!q)
		return -ENOMEM;
	d->queue = q;
	for (size_t i = 0; i < ELEMENTSOF(runtime_capacity_old_keys); i++)
		if (c->capacity_old_keys & (1U << i))
			log_warn("xosd.conf: %s is the old name of %s; rename it (the old name "
				 "may go in a later release)",
				 runtime_capacity_old_keys[i][0], runtime_capacity_old_keys[i][1]);
	q->capacity.millicpus = c->capacity_millicpus ? c->capacity_millicpus
				: ncpu > 0            ? (uint64_t)ncpu * 1000
						      : SCHEDULER_UNLIMITED;
	q->capacity.memory = c->capacity_memory ? c->capacity_memory : detect_memory();
	q->capacity.jobs = c->capacity_jobs ? c->capacity_jobs : SCHEDULER_UNLIMITED;
	q->capacity.millicpus = minus_reserve(q->capacity.millicpus, c->reserve_millicpus);
	q->capacity.memory = minus_reserve(q->capacity.memory, c->reserve_memory);
	q->dirty = true;
	/* (tests: each use of the kept queue summary checked against a walk) */
	q->selfcheck = secure_getenv("XOS_SCHED_SELFCHECK") &&
		       !strcmp(secure_getenv("XOS_SCHED_SELFCHECK"), "1");
	r = usage_load(q, d->state_fd);
	if (r < 0) { /* the order is then unfair for a while, not wrong */
		log_warn("Ignoring %s in the state directory: %s", USAGE_FILE, strerror(-r));
		free(q->usage);
		q->usage = NULL;
		q->n_usage = 0;
		groups_free(q);
	}
	return 0;
}

void queue_free(struct daemon *d)
{
	if (!d->queue)
		return;
	(void)usage_tick(d, true); /* a charge not yet written */
	free(d->queue->usage);
	groups_free(d->queue);
	queue_view_free(&d->queue->view);
	queue_kept_free(&d->queue->kept);
	free(d->queue);
	d->queue = NULL;
}

void queue_changed(struct daemon *d)
{
	if (d->queue)
		d->queue->dirty = true;
}

static struct usage_entry *usage_of(struct queue_state *q, uint32_t id, bool of_group, bool add)
{
	struct usage_entry *n;

	for (size_t i = 0; i < q->n_usage; i++)
		if (q->usage[i].id == id && q->usage[i].of_group == of_group)
			return &q->usage[i];
	if (!add || q->n_usage >= USAGE_MAX_USERS + USAGE_MAX_GROUPS + 1 ||
	    !(n = realloc(q->usage, (q->n_usage + 1) * sizeof(*n))))
		return NULL;
	q->usage = n;
	q->usage[q->n_usage] = (struct usage_entry){ .id = id, .of_group = of_group };
	return &q->usage[q->n_usage++];
}

static void usage_add(struct daemon *d, struct usage_entry *u, double charge, uint64_t now)
{
	u->usage = decayed(d, u, now) + charge;
	u->stamp_us = now;
}

/* Charge an ended job's run to its owner's usage and its group's, once:
 * when its end is written, the moment its resources are free, so that no
 * scheduling pass sees them free and its owner's usage without them. */
void queue_job_charge(struct daemon *d, struct job *j)
{
	struct usage_entry *u, *g;
	uint64_t now = now_usec();
	double charge;

	if (!d->queue || j->sched.charged || !job_state_is_final(j->state) || !j->started_us)
		return;
	j->sched.charged = true;
	charge = scheduler_charge(j->sched.millicpus,
				  (j->ended_us > j->started_us ? j->ended_us : now) -
					  j->started_us);
	u = usage_of(d->queue, j->owner_uid, false, true);
	if (u)
		usage_add(d, u, charge, now);
	g = usage_of(d->queue, queue_job_group(d, j), true, true);
	if (g)
		usage_add(d, g, charge, now);
	if ((u || g) && !d->queue->usage_due_us)
		d->queue->usage_due_us = mono_usec() + USAGE_DELAY_US;
}

void queue_job_gone(struct daemon *d, struct job *j)
{
	queue_changed(d);
	queue_job_charge(d, j);
}

/* ---- the scheduler's view of the node ---- */

static size_t map_bytes(size_t cap, size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (cap * size + page - 1) / page * page;
}

/* *buf holds at least n + 1 elements of size (kept from pass to pass). Its
 * pages are mapped apart and not inherited by xosd's children
 * (MADV_DONTFORK): a pass writes them all, and each page shared with a
 * child (xosd forks to start a job) would cost a copy-on-write fault and a
 * TLB shootdown, some 50 ms a pass for 10,000 queued jobs. */
int queue_grow(void *buf, size_t *cap, size_t n, size_t size)
{
	void **p = buf, *nv;
	size_t want = n + 1 > 2 * *cap ? n + 1 : 2 * *cap, bytes;

	if (n + 1 <= *cap)
		return 0;
	if (want > SIZE_MAX / size / 2)
		return -ENOMEM;
	bytes = map_bytes(want, size);
	nv = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (nv == MAP_FAILED)
		return -ENOMEM;
	(void)madvise(nv, bytes, MADV_DONTFORK);
	if (*p) {
		memcpy(nv, *p, *cap * size);
		munmap(*p, map_bytes(*cap, size));
	}
	*p = nv;
	*cap = bytes / size;
	return 0;
}

static void unmap(void *buf, size_t cap, size_t size)
{
	if (buf)
		munmap(buf, map_bytes(cap, size));
}

void queue_view_free(struct view *v)
{
	unmap(v->running, v->cap_run, sizeof(*v->running));
	unmap(v->run_jobs, v->cap_run_jobs, sizeof(*v->run_jobs));
	unmap(v->queue, v->cap_queue, sizeof(*v->queue));
	unmap(v->deps, v->cap_deps, sizeof(*v->deps));
	unmap(v->ended, v->cap_ended, sizeof(*v->ended));
	unmap(v->usage, v->cap_usage, sizeof(*v->usage));
	unmap(v->jobs, v->cap_jobs, sizeof(*v->jobs));
	unmap(v->decs, v->cap_decs, sizeof(*v->decs));
	unmap(v->hint, v->cap_hint, sizeof(*v->hint));
	unmap(v->slot, v->cap_slot, sizeof(*v->slot));
	unmap(v->order, v->cap_order, sizeof(*v->order));
	unmap(v->ptab, v->cap_ptab, sizeof(*v->ptab));
	*v = (struct view){ 0 };
}

bool queue_holds_resources(const struct job *j)
{
	return j->state == JOB_STARTING || j->state == JOB_RUNNING ||
	       j->state == JOB_CHECKPOINTING || j->state == JOB_RESTORING ||
	       j->state == JOB_MIGRATING;
}

/* In the queue: QUEUED jobs, and jobs stopped at a checkpoint that wait
 * there for their restore (preempted, or an xrestart that waits for room). */
static bool in_queue(const struct job *j)
{
	return j->state == JOB_QUEUED ||
	       (j->state == JOB_CHECKPOINTED && j->sched.resume && !j->run);
}

void queue_dep_state(struct daemon *d, const struct job_dep *jd, struct scheduler_dep *ret,
		     char *ended)
{
	struct job *dj = daemon_find_job(d, jd->id);

	*ret = (struct scheduler_dep){ .id = jd->as, .mode = jd->mode };
	if (!dj)
		ret->state = SCHEDULER_DEP_GONE;
	else if (!job_state_is_final(dj->state))
		ret->state = SCHEDULER_DEP_PENDING;
	else
		ret->state = dj->state == JOB_EXITED && job_exit_code(dj) == 0
				     ? SCHEDULER_DEP_SUCCEEDED
				     : SCHEDULER_DEP_FAILED;
	if (dj && job_state_is_final(dj->state)) {
		int code = job_exit_code(dj);

		if (dj->state == JOB_EXITED && code >= 0)
			snprintf(ended, ENDED_MAX, "EXITED(%d)", code);
		else
			snprintf(ended, ENDED_MAX, "%s", job_state_to_string(dj->state));
		ret->ended_as = ended;
	}
}

/* What the scheduler is told of a queued job j (its reason not wanted). */
struct scheduler_queued queue_entry(struct daemon *d, const struct job *j, bool held,
				    const struct scheduler_dep *deps, size_t n_deps)
{
	return (struct scheduler_queued){
		.id = j->name ? j->name : j->id,
		.uid = j->owner_uid,
		.group = queue_job_group(d, j),
		.priority = j->sched.priority,
		.submit_us = j->created_us,
		.req = { j->sched.millicpus, j->sched.memory, 1 },
		.time_us = j->sched.time_us,
		.held = held,
		.deps = deps,
		.n_deps = n_deps,
	};
}

static void add_queued(struct daemon *d, struct view *v, struct job *j, size_t *nd)
{
	struct scheduler_queued *q = &v->queue[v->node.n_queue];
	bool resume = j->state == JOB_CHECKPOINTED; /* (its dependencies were met) */
	size_t n_deps = resume ? 0 : j->sched.n_deps;

	*q = queue_entry(d, j, !resume && j->sched.held, &v->deps[*nd], n_deps);
	q->want_reason = j->sched.want_reason;
	if (j->sched.want_reason) /* (set for this pass only; written only if set:
				   * a page of every job written per pass costs a
				   * copy-on-write fault each while xosd has a child) */
		j->sched.want_reason = false;
	for (size_t k = 0; k < n_deps; k++)
		queue_dep_state(d, &j->sched.deps[k], &v->deps[*nd], v->ended[*nd]), (*nd)++;
	v->jobs[v->node.n_queue++] = j;
}

void queue_add_running(struct view *v, struct job *j, uint64_t now)
{
	struct job_sched *s = &j->sched;
	bool retry = !s->preempt_failed_us || now - s->preempt_failed_us >= PREEMPT_RETRY_US;

	if (s->resume && !s->resuming && j->state == JOB_RUNNING && !j->run)
		s->resume = s->preempted = false; /* (restored while xosd was down) */
	v->run_jobs[v->node.n_running] = j;
	v->running[v->node.n_running++] = (struct scheduler_running){
		.req = { s->millicpus, s->memory, 1 },
		.end_us = s->time_us && j->started_us ? j->started_us + s->time_us : 0,
		.preemptible = s->preemptible && j->state == JOB_RUNNING && !j->run &&
			       !s->preempting && retry,
		.stopping = s->preempting,
		.priority = s->priority,
		.work_us = j->started_us && now > j->started_us ? now - j->started_us : 0,
	};
}

static int view_alloc(struct daemon *d, struct view *v, size_t n_run, size_t n_queue, size_t n_deps)
{
	if (queue_grow(&v->running, &v->cap_run, n_run, sizeof(*v->running)) < 0 ||
	    queue_grow(&v->run_jobs, &v->cap_run_jobs, n_run, sizeof(*v->run_jobs)) < 0 ||
	    queue_grow(&v->queue, &v->cap_queue, n_queue, sizeof(*v->queue)) < 0 ||
	    queue_grow(&v->jobs, &v->cap_jobs, n_queue, sizeof(*v->jobs)) < 0 ||
	    queue_grow(&v->decs, &v->cap_decs, n_queue, sizeof(*v->decs)) < 0 ||
	    queue_grow(&v->deps, &v->cap_deps, n_deps, sizeof(*v->deps)) < 0 ||
	    queue_grow(&v->ended, &v->cap_ended, n_deps, sizeof(*v->ended)) < 0 ||
	    queue_grow(&v->hint, &v->cap_hint, n_queue, sizeof(*v->hint)) < 0 ||
	    queue_grow(&v->slot, &v->cap_slot, n_queue, sizeof(*v->slot)) < 0 ||
	    queue_grow(&v->order, &v->cap_order, n_queue, sizeof(*v->order)) < 0 ||
	    queue_grow(&v->ptab, &v->cap_ptab, 4 * n_queue, sizeof(*v->ptab)) < 0)
		return -ENOMEM;
	return 0;
}

static size_t ptr_hash(const struct job *j, size_t mask)
{
	uint64_t x = (uint64_t)(uintptr_t)j;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 32;
	return (size_t)x & mask;
}

/* The view index of job pointer j (SIZE_MAX: not in the view). */
static size_t ptab_find(const struct view *v, size_t mask, const struct job *j)
{
	for (size_t h = ptr_hash(j, mask);; h = (h + 1) & mask) {
		if (!v->ptab[h])
			return SIZE_MAX;
		if (v->jobs[v->ptab[h] - 1] == j)
			return v->ptab[h] - 1;
	}
}

/* The queue in the last pass's order (v->order), jobs not in it (new) after:
 * nearly sorted, which the scheduler sorts in O(n). */
static void view_hint(struct view *v)
{
	size_t n = v->node.n_queue, k = 0, size = 1, mask;

	while (size < 2 * n) /* (grown for 4 n: at most half full) */
		size *= 2;
	mask = size - 1;
	memset(v->ptab, 0, size * sizeof(*v->ptab));
	for (size_t i = 0; i < n; i++) {
		size_t h = ptr_hash(v->jobs[i], mask);

		while (v->ptab[h])
			h = (h + 1) & mask;
		v->ptab[h] = i + 1;
		v->slot[i] = 0; /* (taken: placed in the hint) */
	}
	for (size_t p = 0; p < v->n_order; p++) {
		size_t i = v->order[p] ? ptab_find(v, mask, v->order[p]) : SIZE_MAX;

		if (i != SIZE_MAX && !v->slot[i]) {
			v->slot[i] = 1;
			v->hint[k++] = i;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (!v->slot[i])
			v->hint[k++] = i;
	v->node.order_hint = v->hint;
}

/* Keep the order a pass decided for the next pass's hint. */
static void view_keep_order(struct view *v)
{
	size_t n = v->node.n_queue;

	for (size_t p = 0; p < n; p++)
		v->order[p] = NULL;
	for (size_t k = 0; k < n; k++) {
		unsigned p = v->decs[k].position;

		if (p >= 1 && p <= n)
			v->order[p - 1] = v->jobs[v->decs[k].index];
	}
	v->n_order = n;
}

/* The node as the scheduler sees it, in d->queue->view; extra: a new job not
 * yet in d->jobs; lazy: reasons and estimates only where wanted; now: the time of the pass. */
int queue_view_build_at(struct daemon *d, struct job *extra, bool lazy, uint64_t now,
			struct view **ret)
{
	struct view *v = &d->queue->view;
	size_t n_run = 0, n_queue = extra ? 1 : 0, n_deps = extra ? extra->sched.n_deps : 0, nd = 0;

	for (struct job *j = d->jobs; j; j = j->next) {
		n_run += queue_holds_resources(j);
		n_queue += in_queue(j);
		n_deps += j->state == JOB_QUEUED ? j->sched.n_deps : 0;
	}
	if (view_alloc(d, v, n_run, n_queue, n_deps) < 0)
		return -ENOMEM;
	v->node = (struct scheduler_node){ .capacity = d->queue->capacity,
					   .now_us = now,
					   .running = v->running,
					   .queue = v->queue,
					   .no_backfill = !d->cfg->backfill,
					   .only_wanted_reasons = lazy };
	for (struct conn *c = d->conns; lazy && c; c = c->next)
		if (c->mode == CONN_ATTACHED && c->job && c->follow)
			c->job->sched.want_reason = true;
	for (struct job *j = d->jobs; j; j = j->next)
		if (queue_holds_resources(j))
			queue_add_running(v, j, now);
		else if (in_queue(j))
			add_queued(d, v, j, &nd);
	if (extra)
		add_queued(d, v, extra, &nd);
	view_hint(v);
	if (queue_usage_now(d, now, &v->usage, &v->cap_usage, &v->node.n_usage) < 0)
		return -ENOMEM;
	v->node.usage = v->usage;
	*ret = v;
	return 0;
}

static int view_build(struct daemon *d, struct job *extra, bool lazy, struct view **ret)
{
	return queue_view_build_at(d, extra, lazy, now_usec(), ret);
}

/* The run's answer and an attached xrun hear a queued job's reason. */
static void tell_reason(struct daemon *d, struct job *j)
{
	_cleanup_free_ char *line = NULL, *b64 = NULL, *ev = NULL;

	line = xstrdup_printf("xos: job %.12s is queued: %s\n", j->id, j->reason);
	b64 = line ? base64_encode(line, strlen(line)) : NULL;
	ev = b64 ? xstrdup_printf("{\"v\":1,\"ev\":\"output\",\"unit\":1,\"stream\":\"stderr\","
				  "\"data\":\"%s\"}\n",
				  b64)
		 : NULL;
	for (struct conn *c = d->conns; ev && c; c = c->next)
		if (c->mode == CONN_ATTACHED && c->job == j && c->unit == 1 && c->follow) {
			conn_send(c, ev);
			conn_kick(d, c);
		}
}

static void set_reason(struct daemon *d, struct job *j, const char *reason)
{
	if (j->reason && !strcmp(j->reason, reason))
		return;
	free(j->reason);
	j->reason = strdup(reason);
	if (j->reason && j->state == JOB_QUEUED)
		tell_reason(d, j);
}

/* A waiting job's reason, with what preemption adds to it. */
static void wait_reason(struct daemon *d, struct job *j, const char *why)
{
	_cleanup_free_ char *full = NULL;

	if (j->sched.preempted)
		full = xstrdup_printf("preempted by job %.12s (restored when there is room); %s",
				      j->sched.preempted_by ? j->sched.preempted_by : "?", why);
	else if (j->sched.resume)
		full = xstrdup_printf("xrestart waits for room: %s", why);
	else if (j->sched.preempt_note)
		full = xstrdup_printf("%s; %s", why, j->sched.preempt_note);
	set_reason(d, j, full ? full : why);
}

/* ---- queued jobs that end or start ---- */

/* A queued job ends without having run: killed, or it never can run. */
static void end_unstarted(struct daemon *d, struct job *j, enum job_state st, enum unit_state us,
			  int sig, const char *reason)
{
	struct unit *u = job_unit(j, 1);
	int r;

	j->state = st;
	j->ended_us = now_usec();
	free(j->reason);
	j->reason = strdup(reason);
	if (u) {
		u->state = us;
		u->sig = sig;
		u->started_us = 0;
		u->ended_us = j->ended_us;
		free(u->reason);
		u->reason = strdup(reason);
	}
	strv_free(j->sched.start_env);
	j->sched.start_env = NULL;
	log_info("Job %s ended %s without running: %s", j->id, job_state_to_string(st), reason);
	if ((r = daemon_persist_job(d, j)) < 0)
		log_warn("Failed to persist job %s: %s", j->id, strerror(-r));
	conns_unit_ended(d, j, 1);
	conns_job_ended(d, j);
	daemon_job_cleanup(d, j);
}

void queue_kill(struct daemon *d, struct job *j, int sig)
{
	_cleanup_free_ char *why = xstrdup_printf("killed by SIG%s while queued",
						  signal_name(sig) ? signal_name(sig) : "?");

	end_unstarted(d, j, JOB_KILLED, UNIT_KILLED, sig, why ? why : "killed while queued");
}

static void fail_unstarted(struct daemon *d, struct job *j, const char *what, const char *err)
{
	_cleanup_free_ char *why = xstrdup_printf("%s: %s", what, err);

	job_close_volume_fds(j);
	slice_release(d, j);
	end_unstarted(d, j, JOB_FAILED, UNIT_FAILED, 0, why ? why : what);
}

/* The scheduler chose queued job j: its ids, volumes and network are taken
 * now (a submission that started at once took them before answering). */
static void start_queued(struct daemon *d, struct job *j)
{
	_cleanup_free_ char *err = NULL, *cwd = NULL;
	_cleanup_strv_free_ char **env = NULL;
	int r = slice_claim(d, j);

	if (r == -ENOSPC) {
		set_reason(d, j,
			   "waiting for free container ids (jobs with checkpoint versions hold "
			   "some)");
		return;
	}
	if (r < 0)
		return fail_unstarted(d, j, "Cannot lease container ids", strerror(-r));
	r = volume_open_job(d, j, true, &err);
	if (r < 0)
		return fail_unstarted(d, j, "Cannot open the job's volumes",
				      err ? err : strerror(-r));
	{
		_cleanup_xerr_ struct xerr nerr = XERR_INIT;

		r = netsetup_job_setup(d->net, j->id, &j->net, &nerr);
		if (r < 0)
			return fail_unstarted(d, j, "Cannot set up the job's network",
					      xerr_message(&nerr));
	}
	log_info("Starting queued job %s", j->id);
	j->state = JOB_STARTING;
	free(j->reason);
	j->reason = NULL;
	env = TAKE_PTR(j->sched.start_env);
	cwd = TAKE_PTR(j->sched.start_cwd);
	if (ops_start_job(d, j, env, cwd, j->tty) < 0) { /* (it ended FAILED) */
		conns_unit_ended(d, j, 1);
		conns_job_ended(d, j);
	}
}

/* A job waiting for its restore that can never get one here */
static void resume_never(struct daemon *d, struct job *j, const char *why)
{
	int r;

	j->sched.resume = j->sched.preempted = false;
	set_reason(d, j, why);
	if ((r = daemon_persist_job(d, j)) < 0)
		log_warn("Failed to persist job %s: %s", j->id, strerror(-r));
}

/* Decision dec of job j (want: its reason was wanted) of a pass over v's
 * running jobs (lazy: reasons only where wanted) */
void queue_apply_to(struct daemon *d, const struct view *v, struct job *j, bool want,
		    const struct scheduler_decision *dec)
{
	struct job *victims[SCHEDULER_VICTIMS_MAX];

	if (!in_queue(j)) /* (ended, or started, meanwhile) */
		return;
	/* (written only when changed, see add_queued; a lazy pass keeps its
	 * order in the view only: xps and xqueue make positions with a full pass) */
	if (!v->node.only_wanted_reasons && j->sched.position != dec->position)
		j->sched.position = dec->position;
	if (j->sched.est_start_us != dec->est_start_us && (!v->node.only_wanted_reasons || want))
		j->sched.est_start_us = dec->est_start_us; /* (a lazy pass makes none) */
	switch (dec->action) {
	case SCHEDULER_START:
		if (j->state == JOB_QUEUED)
			start_queued(d, j);
		else
			preempt_resume(d, j);
		return;
	case SCHEDULER_NEVER:
		if (j->state != JOB_QUEUED)
			resume_never(d, j, dec->reason);
		else if (dec->dependency)
			end_unstarted(d, j, JOB_DEPENDENCY_NEVER_SATISFIED, UNIT_FAILED, 0,
				      dec->reason);
		else
			end_unstarted(d, j, JOB_FAILED, UNIT_FAILED, 0, dec->reason);
		return;
	case SCHEDULER_PREEMPT:
		for (unsigned i = 0; i < dec->n_victims; i++)
			victims[i] = v->run_jobs[dec->victims[i]];
		preempt_jobs(d, j, victims, dec->n_victims);
		break;
	default:
		break;
	}
	if (dec->reason[0]) /* (a lazy pass builds reasons only where wanted) */
		wait_reason(d, j, dec->reason);
}

static void apply_one(struct daemon *d, const struct view *v, const struct scheduler_decision *dec)
{
	queue_apply_to(d, v, v->jobs[dec->index], v->queue[dec->index].want_reason, dec);
}

static uint64_t thread_cpu_usec(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static struct pass_clock pass_begin(void)
{
	return (struct pass_clock){ mono_usec(), thread_cpu_usec() };
}

void queue_pass_timed(struct queue_state *q, struct pass_clock begun)
{
	uint64_t us = mono_usec() - begun.mono_us, cpu = thread_cpu_usec();

	q->pass_cpu_us_last = cpu > begun.cpu_us ? cpu - begun.cpu_us : 0;
	q->pass_cpu_us_total += q->pass_cpu_us_last;
	q->passes++;
	q->pass_us_total += us;
	q->pass_us_last = us;
	if (us > q->pass_us_max)
		q->pass_us_max = us;
}

/* A pass over the queue; lazy: reasons only where an attached xrun wants
 * them (xps and xqueue make the rest with queue_refresh). */
static void schedule(struct daemon *d, bool lazy)
{
	struct pass_clock begun = pass_begin();
	struct view *v = NULL;
	int r;

	if (lazy && queue_kept_schedule(d, begun) == 0) {
		d->queue->stale = true;
		return;
	}
	r = view_build(d, NULL, lazy, &v);

	if (r >= 0 && v->node.n_queue)
		r = scheduler_decide_into(&v->node, v->decs);
	if (r < 0) {
		log_error("Failed to schedule the queue: %s", strerror(-r));
		d->queue->dirty = true; /* tried again at the next event */
	} else {
		queue_pass_timed(d->queue, begun); /* (the decision; applying it starts jobs) */
		if (!lazy) { /* (also counted apart: a listing's, not an event's) */
			d->queue->refreshes++;
			d->queue->refresh_us_total += d->queue->pass_us_last;
			d->queue->refresh_cpu_us_total += d->queue->pass_cpu_us_last;
		}
		view_keep_order(v);
		for (size_t k = 0; k < v->node.n_queue; k++)
			apply_one(d, v, &v->decs[k]);
		d->queue->stale = lazy;
	}
}

/* The fast path of a submission: a held job waits; a job that fits what
 * the running jobs leave while no queued job could start starts. 1: start,
 * 0: queued, -EAGAIN: a full pass must decide. */
static int admit_fast(struct daemon *d, struct job *j)
{
	struct scheduler_resources free_ = d->queue->capacity;
	struct scheduler_resources req = { j->sched.millicpus, j->sched.memory, 1 };
	_cleanup_free_ char *why = NULL;

	if (j->sched.held) {
		why = xstrdup_printf("held (xrelease %.64s lets it start)",
				     j->name ? j->name : j->id);
		if (!why)
			return -EAGAIN;
		free(j->reason);
		j->reason = TAKE_PTR(why);
		j->sched.position = 0; /* (xps and xqueue make it with a full pass) */
		j->sched.est_start_us = 0;
		return 0;
	}
	if (j->sched.n_deps)
		return -EAGAIN;
	for (struct job *o = d->jobs; o; o = o->next) {
		if (in_queue(o) && !(o->state == JOB_QUEUED && o->sched.held))
			return -EAGAIN; /* (it may come first) */
		if (queue_holds_resources(o)) {
			struct scheduler_resources r = { o->sched.millicpus, o->sched.memory, 1 };

			res_take(&free_, &r);
		}
	}
	if (!res_fits(&req, &free_))
		return -EAGAIN; /* (it waits, or preempts: the pass says which) */
	free(j->reason);
	j->reason = NULL;
	j->sched.position = 0;
	j->sched.est_start_us = now_usec();
	return 1;
}

/* u's usage decayed to now; a group's divided by its VO's fair_share */
static double entry_now(struct daemon *d, const struct usage_entry *u, uint64_t now)
{
	double v = decayed(d, u, now);

	if (u->of_group && u->id)
		v /= (double)vo_fair_share(d, d->queue->groups[u->id - 1]);
	return v;
}

int queue_usage_now(struct daemon *d, uint64_t now, struct scheduler_usage **buf, size_t *cap,
		    size_t *ret_n)
{
	const struct queue_state *q = d->queue;

	if (queue_grow(buf, cap, q->n_usage, sizeof(**buf)) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < q->n_usage; i++)
		(*buf)[i] = (struct scheduler_usage){ q->usage[i].id, q->usage[i].of_group,
						      entry_now(d, &q->usage[i], now) };
	*ret_n = q->n_usage;
	return 0;
}

/* A job's share (its group's and user's usage now), as view_build gives
 * the scheduler their usage */
static struct scheduler_share share_now(struct daemon *d, const struct scheduler_queued *k,
					uint64_t now)
{
	struct scheduler_share s = { 0.0, 0.0 };
	const struct usage_entry *g = usage_of(d->queue, k->group, true, false),
				 *u = usage_of(d->queue, k->uid, false, false);

	if (g)
		s.group = entry_now(d, g, now);
	if (u)
		s.user = entry_now(d, u, now);
	return s;
}

/* The job as the scheduler orders it (add_queued's fields that order) */
static struct scheduler_queued order_key(struct daemon *d, const struct job *j)
{
	return (struct scheduler_queued){ .id = j->name ? j->name : j->id,
					  .uid = j->owner_uid,
					  .group = queue_job_group(d, j),
					  .priority = j->sched.priority,
					  .submit_us = j->created_us };
}

/* The summary from a walk of every job: the running ones' resources, and
 * the queue (jobs, the eligible ones, the last in the order) */
static void summary_walk(struct daemon *d, uint64_t now, struct wait_summary *sum)
{
	struct scheduler_queued last = { 0 };
	struct scheduler_share last_share = { 0.0, 0.0 };

	*sum = (struct wait_summary){ .valid = true,
				      .gen = d->jobs_gen,
				      .free_ = d->queue->capacity };
	for (struct job *o = d->jobs; o; o = o->next) {
		struct scheduler_queued k;
		struct scheduler_share u;

		if (queue_holds_resources(o)) {
			struct scheduler_resources r = { o->sched.millicpus, o->sched.memory, 1 };

			sum->preempt = sum->preempt || o->sched.preemptible || o->sched.preempting;
			res_take(&sum->free_, &r);
			continue;
		}
		if (!in_queue(o))
			continue;
		sum->n_queue++;
		k = order_key(d, o);
		u = k.uid == last.uid && k.group == last.group && sum->last ? last_share
									    : share_now(d, &k, now);
		if (!sum->last || scheduler_compare(&last, &last_share, &k, &u) < 0) {
			sum->last = o;
			last = k;
			last_share = u;
		}
		if (o->state == JOB_QUEUED && o->sched.held)
			continue;
		if (o->state == JOB_QUEUED && o->sched.n_deps) {
			sum->deps = true;
			continue;
		}
		sum->ahead++;
		sum->untimed = sum->untimed || !o->sched.time_us;
	}
}

/* XOS_SCHED_SELFCHECK=1 (tests): the kept summary against a walk */
static void summary_check(struct daemon *d, uint64_t now)
{
	const struct wait_summary *k = &d->queue->sum;
	struct wait_summary w;

	summary_walk(d, now, &w);
	if (w.free_.millicpus != k->free_.millicpus || w.free_.memory != k->free_.memory ||
	    w.free_.jobs != k->free_.jobs || w.preempt != k->preempt || w.deps != k->deps ||
	    w.untimed != k->untimed || w.n_queue != k->n_queue || w.ahead != k->ahead ||
	    w.last != k->last)
		log_error("Scheduler self-check: the kept queue summary is wrong "
			  "(queue %u/%u, ahead %u/%u, last %s/%s)",
			  k->n_queue, w.n_queue, k->ahead, w.ahead, k->last ? k->last->id : "-",
			  w.last ? w.last->id : "-");
}

/* The fast path of a submission that waits, where a full pass could only
 * say the same (DECISIONS (ay)): the last pass left nothing to do (not
 * dirty: every job in the queue waits for resources, is held or waits for
 * a dependency), j has no dependency and comes after every job in the
 * queue, none of the running jobs may be preempted or is stopping for a
 * preemption, j does not fit what they leave, no job in the queue waits for
 * a dependency and one that waits has no --time. A pass decides in order,
 * so no job before j changes; j waits, behind the reserved first one (no
 * preemption, no backfill for it), for the resources it lacks; its
 * estimated start is unknown (estimates stop at the first waiting job
 * without --time). What it needs of the jobs is a summary kept between
 * submissions while no job's record was written and no job came or went
 * but the ones it queued; else one walk makes it. 0: it waits (reason,
 * position set), -EAGAIN: a full pass must decide. */
static int admit_wait_fast(struct daemon *d, struct job *j)
{
	struct wait_summary *sum = &d->queue->sum;
	struct scheduler_resources req = { j->sched.millicpus, j->sched.memory, 1 };
	struct scheduler_queued me = order_key(d, j), last;
	struct scheduler_share s_me, s_last;
	uint64_t now = now_usec();
	char why[SCHEDULER_REASON_MAX];

	sum->pending = NULL;
	if (d->queue->dirty || j->sched.n_deps || j->sched.held ||
	    !res_fits(&req, &d->queue->capacity))
		return -EAGAIN;
	if (!sum->valid || sum->gen != d->jobs_gen) {
		summary_walk(d, now, sum);
		d->queue->summary_walks++;
	} else if (d->queue->selfcheck) {
		summary_check(d, now);
	}
	if (sum->preempt || sum->deps || !sum->untimed || !sum->last || res_fits(&req, &sum->free_))
		return -EAGAIN;
	last = order_key(d, sum->last);
	s_last = share_now(d, &last, now);
	s_me = share_now(d, &me, now);
	if (scheduler_compare(&last, &s_last, &me, &s_me) >= 0)
		return -EAGAIN; /* (it comes before the last) */
	scheduler_reason_resources(&req, &sum->free_, sum->ahead, why, sizeof(why));
	free(j->reason);
	j->reason = strdup(why);
	j->sched.position = sum->n_queue + 1;
	j->sched.est_start_us = 0;
	sum->pending = j;
	sum->pending_gen = d->jobs_gen;
	return 0;
}

void queue_job_linked(struct daemon *d, struct job *j)
{
	struct wait_summary *sum = d->queue ? &d->queue->sum : NULL;

	j->sched.link_seq = ++d->link_seq;
	queue_job_touched(d, j);

	if (!sum || !sum->valid)
		return;
	/* the job the summary decided, its record written once (queue_submit)
	 * and now linked, and nothing else since: counted in */
	if (sum->pending == j && j->state == JOB_QUEUED && sum->gen == sum->pending_gen &&
	    d->jobs_gen == sum->pending_gen + 2) {
		sum->n_queue++;
		sum->ahead++;
		sum->last = j;
		sum->gen = d->jobs_gen;
	}
	sum->pending = NULL;
}

int queue_admit(struct daemon *d, struct job *j)
{
	struct pass_clock begun = pass_begin();
	struct view *v = NULL;
	bool start = false;
	int r = admit_fast(d, j);

	if (r != -EAGAIN) {
		d->queue->fast_admits++;
		queue_pass_timed(d->queue, begun);
		if (r == 0)
			d->queue->stale = true;
		return r;
	}
	if (admit_wait_fast(d, j) == 0) {
		d->queue->fast_waits++;
		queue_pass_timed(d->queue, begun);
		d->queue->stale = true;
		return 0;
	}
	j->sched.want_reason = true; /* (the answer says why it waits) */
	r = view_build(d, j, true, &v);
	if (r >= 0)
		r = scheduler_decide_into(&v->node, v->decs);
	if (r >= 0) {
		queue_pass_timed(d->queue, begun);
		view_keep_order(v);
	}
	for (size_t k = 0; r >= 0 && k < v->node.n_queue; k++) {
		const struct scheduler_decision *dec = &v->decs[k];

		if (v->jobs[dec->index] != j) {
			if (dec->action != SCHEDULER_WAIT)
				d->queue->dirty = true; /* (it is their turn too) */
			continue;
		}
		start = dec->action == SCHEDULER_START;
		if (dec->action == SCHEDULER_PREEMPT) /* (done by the next pass) */
			d->queue->dirty = true;
		j->sched.position = dec->position;
		j->sched.est_start_us = dec->est_start_us;
		free(j->reason);
		j->reason = start ? NULL : strdup(dec->reason);
	}
	return r < 0 ? r : start;
}

/* xrestart of j, stopped at a checkpoint: 1 if it may be restored now, 0 if
 * it waits in the queue for room (restored from version then; 0: newest). */
int queue_admit_restore(struct daemon *d, struct job *j, unsigned version)
{
	struct view *v = NULL;
	int r, start = 0;

	if (j->state != JOB_CHECKPOINTED || j->run)
		return 1; /* (ckpt_restart says what it thinks of it) */
	j->sched.resume = true;
	j->sched.want_reason = true;
	r = view_build(d, NULL, true, &v);
	if (r >= 0)
		r = scheduler_decide_into(&v->node, v->decs);
	for (size_t k = 0; r >= 0 && k < v->node.n_queue; k++) {
		const struct scheduler_decision *dec = &v->decs[k];

		if (v->jobs[dec->index] != j) {
			if (dec->action != SCHEDULER_WAIT)
				d->queue->dirty = true;
			continue;
		}
		start = dec->action == SCHEDULER_START || dec->action == SCHEDULER_NEVER;
		if (!start) {
			j->sched.resume_version = version;
			wait_reason(d, j, dec->reason);
		}
	}
	if (r < 0 || start) { /* restored now (a failure is ckpt_restart's to tell) */
		j->sched.resume = j->sched.preempted = false;
		return 1;
	}
	log_info("Job %s waits in the queue for its restore: %s", j->id, j->reason);
	if ((r = daemon_persist_job(d, j)) < 0)
		log_warn("Failed to persist job %s: %s", j->id, strerror(-r));
	d->queue->dirty = true; /* (its PREEMPT decision, if any, is the next pass's) */
	return 0;
}

int queue_submit(struct daemon *d, struct conn *c, struct job *j, struct xerr *err)
{
	int r;

	j->state = JOB_QUEUED;
	j->sched.queued = true;
	job_close_volume_fds(j); /* opened again, as then, when it starts */
	if (mkdirat(d->jobs_fd, j->id, 0711) < 0)
		r = -errno;
	else if ((j->dirfd = open_dir_at(d->jobs_fd, j->id)) < 0)
		r = j->dirfd;
	else /* durable before the answer: commit.c's next syncfs */
		r = daemon_persist_job(d, j);
	if (r < 0) {
		xerr_set(err, r, "internal", "Failed to queue the job: %s", strerror(-r));
		(void)rm_rf_at(d->jobs_fd, j->id);
		return r;
	}
	closep(&j->dirfd);         /* a queued job holds no fd: a queue may be long */
	if (d->cfg->sync_writes) { /* (answered once a syncfs made it durable: commit.c) */
		commit_hold(d, c);
		d->queue->sync_pending = true;
		d->queue->committed++;
	}
	d->queue->stale = true;
	log_info("Queued job %s: %s", j->id, j->reason ? j->reason : "");
	return 0;
}

void queue_adopt(struct daemon *d, struct job *j)
{
	j->sched.queued = true;
	closep(&j->dirfd);
	queue_changed(d);
	log_info("Job %s is queued", j->id);
}

/* ---- time limits ---- */

/* SIGTERM at the limit, SIGKILL TIMEOUT_KILL_AFTER later; the next
 * deadline (ms) or -1. */
static int time_limit(struct daemon *d, struct job *j, uint64_t now)
{
	uint64_t at = j->started_us + j->sched.time_us;
	int r;

	if (!j->sched.timed_out) {
		if (now < at)
			return (int)((at - now + 999) / 1000 < INT32_MAX ? (at - now + 999) / 1000
									 : INT32_MAX);
		j->sched.timed_out = true;
		j->sched.timeout_sent_us = now;
		log_info("Job %s reached its time limit: SIGTERM", j->id);
		if ((r = daemon_persist_job(d, j)) < 0)
			log_warn("Failed to persist job %s: %s", j->id, strerror(-r));
		(void)container_signal(d, j, 0, SIGTERM);
		return (int)(TIMEOUT_KILL_AFTER_US / 1000);
	}
	if (j->sched.timeout_sent_us == UINT64_MAX)
		return -1;
	if (now < j->sched.timeout_sent_us + TIMEOUT_KILL_AFTER_US)
		return (int)((j->sched.timeout_sent_us + TIMEOUT_KILL_AFTER_US - now + 999) / 1000);
	j->sched.timeout_sent_us = UINT64_MAX;
	log_info("Job %s is still running after its time limit: SIGKILL", j->id);
	(void)container_signal(d, j, 0, SIGKILL);
	return -1;
}

static int min_ms(int a, int b)
{
	return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

void queue_refresh(struct daemon *d)
{
	if (d->queue && (d->queue->dirty || d->queue->stale)) {
		d->queue->dirty = false;
		schedule(d, false);
	}
}

int queue_tick(struct daemon *d)
{
	uint64_t now = now_usec();
	int timeout = usage_tick(d, false);
	bool timed = false;

	if (d->queue && d->queue->sync_pending && !commit_busy(d)) {
		d->queue->sync_pending = false; /* (those written from now on: the next one) */
		d->queue->commits++;
		commit_start(d);
	}
	/* (each main-loop turn: a walk of every job only while one has a limit) */
	for (struct job *j = d->timed_jobs ? d->jobs : NULL; j; j = j->next) {
		timed = timed || (j->sched.time_us && !job_state_is_final(j->state));
		if (j->state == JOB_RUNNING && j->sched.time_us && j->started_us)
			timeout = min_ms(timeout, time_limit(d, j, now));
	}
	d->timed_jobs = timed;
	if (d->queue && d->queue->dirty) {
		d->queue->dirty = false;
		schedule(d, true);
	}
	return timeout;
}

/* ---- xqueue and xrelease ---- */

static int cmp_position(const void *a, const void *b)
{
	const struct job *ja = *(struct job *const *)a, *jb = *(struct job *const *)b;

	return ja->sched.position < jb->sched.position ? -1
						       : ja->sched.position > jb->sched.position;
}

static void gen_resources(yajl_gen g, const char *key, const struct scheduler_resources *r)
{
	json_gen_key(g, key);
	yajl_gen_map_open(g);
	json_gen_kv_uint(g, "cpus", r->millicpus == SCHEDULER_UNLIMITED ? 0 : r->millicpus);
	json_gen_kv_uint(g, "memory", r->memory == SCHEDULER_UNLIMITED ? 0 : r->memory);
	json_gen_kv_uint(g, "jobs", r->jobs == SCHEDULER_UNLIMITED ? 0 : r->jobs);
	yajl_gen_map_close(g);
}

static void gen_queued(yajl_gen g, const struct job *j)
{
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "id", j->id);
	json_gen_kv_str(g, "name", j->name);
	json_gen_kv_str(g, "user", j->user);
	json_gen_kv_str(g, "state", queue_job_state_name(j));
	json_gen_kv_uint(g, "owner_uid", j->owner_uid);
	json_gen_kv_uint(g, "position", j->sched.position);
	json_gen_kv_int(g, "priority", j->sched.priority);
	json_gen_kv_bool(g, "hold", j->sched.held);
	json_gen_kv_str(g, "reason", j->reason);
	if (j->sched.est_start_us)
		json_gen_kv_uint(g, "estimated_start_us", j->sched.est_start_us);
	else
		json_gen_kv_null(g, "estimated_start_us");
	json_gen_kv_uint(g, "created_us", j->created_us);
	json_gen_kv_uint(g, "cpus", j->sched.millicpus);
	json_gen_kv_uint(g, "memory", j->sched.memory);
	json_gen_kv_uint(g, "time_us", j->sched.time_us);
	json_gen_kv_strv(g, "argv", j->n_units ? j->units[0].argv : (char *[]){ NULL });
	yajl_gen_map_close(g);
}

/* {"capacity": {...}, "jobs": [queued jobs the caller may see, in order]} */
int queue_op_queue(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	_cleanup_free_ struct job **v = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	size_t n = 0, cap = 0;

	if (!d->queue)
		return xerr_set(err, -ENOMEM, "internal", "The queue is not set up");
	queue_refresh(d);
	for (struct job *j = d->jobs; j; j = j->next)
		cap += in_queue(j);
	v = calloc(cap + 1, sizeof(*v));
	if (!v)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	for (struct job *j = d->jobs; j; j = j->next)
		if (in_queue(j) && grid_may_see(c, j))
			v[n++] = j;
	qsort(v, n, sizeof(*v), cmp_position);
	g = ops_reply_begin();
	if (!g)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	gen_resources(g, "capacity", &d->queue->capacity);
	json_gen_kv_uint(g, "queued", cap);
	json_gen_key(g, "passes"); /* the scheduler's decisions: how many, how long */
	yajl_gen_map_open(g);
	json_gen_kv_uint(g, "count", d->queue->passes);
	json_gen_kv_uint(g, "fast", d->queue->fast_admits);
	json_gen_kv_uint(g, "fast_waits", d->queue->fast_waits);
	json_gen_kv_uint(g, "summary_walks", d->queue->summary_walks);
	json_gen_kv_uint(g, "kept", d->queue->kept.passes);
	json_gen_kv_uint(g, "kept_walks", d->queue->kept.walks);
	json_gen_kv_uint(g, "kept_stopped", d->queue->kept.stopped);
	json_gen_kv_uint(g, "total_us", d->queue->pass_us_total);
	json_gen_kv_uint(g, "cpu_us", d->queue->pass_cpu_us_total);
	json_gen_kv_uint(g, "max_us", d->queue->pass_us_max);
	json_gen_kv_uint(g, "last_us", d->queue->pass_us_last);
	json_gen_kv_uint(g, "refreshes", d->queue->refreshes);
	json_gen_kv_uint(g, "refresh_us", d->queue->refresh_us_total);
	json_gen_kv_uint(g, "refresh_cpu_us", d->queue->refresh_cpu_us_total);
	json_gen_kv_uint(g, "commits", d->queue->commits);
	json_gen_kv_uint(g, "committed", d->queue->committed);
	yajl_gen_map_close(g);
	json_gen_key(g, "jobs");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++)
		gen_queued(g, v[i]);
	yajl_gen_array_close(g);
	conn_send_map(c, g);
	c->mode = CONN_CLOSING;
	return 0;
}

int queue_op_release(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	_cleanup_gen_ yajl_gen g = NULL;
	const char *name = NULL;
	struct job *j;
	int r;

	if (json_get_string(t, "job", &name) < 0)
		return xerr_set(err, -EINVAL, "bad_request", "Field 'job' (string) is required");
	if ((r = ops_lookup(d, c, name, &j, err)) < 0)
		return r;
	if (j->state != JOB_QUEUED || !j->sched.held)
		return xerr_set(err, -EBUSY, "conflict", "Job %.12s is not held (it is %s)", j->id,
				job_state_to_string(j->state));
	j->sched.held = false;
	if ((r = daemon_persist_job_durably(d, j)) < 0) {
		j->sched.held = true;
		return xerr_set(err, r, "internal", "Failed to release job %.12s: %s", j->id,
				strerror(-r));
	}
	queue_changed(d);
	g = ops_reply_begin();
	if (!g)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	conn_send_map(c, g);
	c->mode = CONN_CLOSING;
	return 0;
}

int queue_fits_now(struct daemon *d, const struct job_sched *s, char *why, size_t len)
{
	const struct scheduler_resources *cap = &d->queue->capacity;
	uint64_t cpus = 0, mem = 0, jobs = 0;
	char want[64], have[64];

	for (struct job *j = d->jobs; j; j = j->next)
		if (queue_holds_resources(j)) {
			cpus += j->sched.millicpus;
			mem += j->sched.memory;
			jobs++;
		}
	if (cap->jobs != SCHEDULER_UNLIMITED && jobs + 1 > cap->jobs) {
		snprintf(why, len, "%llu jobs run there (node_jobs %llu)", (unsigned long long)jobs,
			 (unsigned long long)cap->jobs);
		return -E2BIG;
	}
	if (cap->millicpus != SCHEDULER_UNLIMITED && cpus + s->millicpus > cap->millicpus) {
		scheduler_format_cpus(s->millicpus, want, sizeof(want));
		scheduler_format_cpus(cap->millicpus > cpus ? cap->millicpus - cpus : 0, have,
				      sizeof(have));
		snprintf(why, len, "the job asks for %s, %s are free", want, have);
		return -E2BIG;
	}
	if (cap->memory != SCHEDULER_UNLIMITED && mem + s->memory > cap->memory) {
		scheduler_format_memory(s->memory, want, sizeof(want));
		scheduler_format_memory(cap->memory > mem ? cap->memory - mem : 0, have,
					sizeof(have));
		snprintf(why, len, "the job asks for %s, %s are free", want, have);
		return -E2BIG;
	}
	return 0;
}
