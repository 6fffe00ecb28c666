/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A job's part of the queue: what a run request asks of the scheduler
 * (--cpus and --memory against the node's capacity, --priority, --hold,
 * --after, --time, --preemptible) and the job record's "sched" object that
 * keeps it, written and read back. The rest of the queue: queue.c.
 * docs/SCHEDULING.md. */
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "runtime/queue-internal.h"

#define AFTER_MAX 64

/* ---- the job record's "sched" object ---- */

void queue_job_free(struct job *j)
{
	for (size_t i = 0; i < j->sched.n_deps; i++) {
		free(j->sched.deps[i].id);
		free(j->sched.deps[i].as);
	}
	free(j->sched.deps);
	strv_free(j->sched.start_env);
	free(j->sched.start_cwd);
	free(j->sched.preempted_by);
	free(j->sched.preempt_note);
	free(j->sched.kept_deps);
	free(j->sched.kept_ended);
	j->sched = (struct job_sched){ 0 };
}

void queue_job_to_json(const struct job *j, yajl_gen g)
{
	const struct job_sched *s = &j->sched;

	json_gen_key(g, "sched");
	yajl_gen_map_open(g);
	json_gen_kv_uint(g, "cpus", s->millicpus);
	json_gen_kv_uint(g, "memory", s->memory);
	json_gen_kv_int(g, "priority", s->priority);
	json_gen_kv_bool(g, "hold", s->held);
	json_gen_kv_uint(g, "time_us", s->time_us);
	json_gen_kv_bool(g, "timed_out", s->timed_out);
	json_gen_kv_bool(g, "preemptible", s->preemptible);
	if (s->resume) {
		json_gen_kv_bool(g, "resume", true);
		json_gen_kv_bool(g, "preempted", s->preempted);
		json_gen_kv_uint(g, "resume_version", s->resume_version);
	}
	if (s->preempted_by)
		json_gen_kv_str(g, "preempted_by", s->preempted_by);
	json_gen_key(g, "after");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < s->n_deps; i++) {
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "job", s->deps[i].id);
		json_gen_kv_str(g, "as", s->deps[i].as);
		json_gen_kv_str(g, "mode", scheduler_dep_mode_to_string(s->deps[i].mode));
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	if (j->state == JOB_QUEUED) {
		json_gen_kv_uint(g, "position", s->position);
		if (s->est_start_us)
			json_gen_kv_uint(g, "estimated_start_us", s->est_start_us);
		else
			json_gen_kv_null(g, "estimated_start_us");
		json_gen_kv_strv(g, "start_env", s->start_env ? s->start_env : (char *[]){ NULL });
		json_gen_kv_str(g, "start_cwd", s->start_cwd);
	}
	yajl_gen_map_close(g);
}

static int deps_from_json(yajl_val v, struct job_sched *s)
{
	if (!YAJL_IS_ARRAY(v))
		return 0;
	if (v->u.array.len > AFTER_MAX)
		return -EINVAL;
	s->deps = calloc(v->u.array.len + 1, sizeof(*s->deps));
	if (!s->deps)
		return -ENOMEM;
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val o = v->u.array.values[i];
		const char *id = NULL, *as = NULL, *mode = NULL;
		struct job_dep *dp = &s->deps[s->n_deps];

		if (json_get_string(o, "job", &id) < 0 || json_get_string(o, "mode", &mode) < 0 ||
		    (dp->mode = scheduler_dep_mode_from_string(mode)) < 0)
			return -EINVAL;
		(void)json_get_string(o, "as", &as);
		dp->id = strdup(id);
		dp->as = strdup(as ? as : id);
		s->n_deps++;
		if (!dp->id || !dp->as)
			return -ENOMEM;
	}
	return 0;
}

int queue_job_from_json(yajl_val t, struct job *j)
{
	yajl_val v = json_get(t, "sched");
	struct job_sched *s = &j->sched;
	const char *cwd = NULL;
	int64_t prio = SCHEDULER_PRIORITY_DEFAULT;
	int r;

	s->priority = SCHEDULER_PRIORITY_DEFAULT;
	if (!YAJL_IS_OBJECT(v)) /* a record from before the scheduler */
		return 0;
	(void)json_get_uint(v, "cpus", &s->millicpus);
	(void)json_get_uint(v, "memory", &s->memory);
	(void)json_get_int(v, "priority", &prio);
	s->priority = prio;
	(void)json_get_bool(v, "hold", &s->held);
	(void)json_get_uint(v, "time_us", &s->time_us);
	(void)json_get_bool(v, "timed_out", &s->timed_out);
	(void)json_get_bool(v, "preemptible", &s->preemptible);
	(void)json_get_bool(v, "resume", &s->resume);
	(void)json_get_bool(v, "preempted", &s->preempted);
	{
		uint64_t ver = 0;
		const char *by = NULL;

		if (json_get_uint(v, "resume_version", &ver) >= 0 && ver <= UINT32_MAX)
			s->resume_version = (unsigned)ver;
		if (json_get_string(v, "preempted_by", &by) >= 0 && !(s->preempted_by = strdup(by)))
			return -ENOMEM;
	}
	r = deps_from_json(json_get(v, "after"), s);
	if (r < 0)
		return r;
	if (json_get_strv(v, "start_env", &s->start_env) == -ENOMEM)
		return -ENOMEM;
	if (json_get_string(v, "start_cwd", &cwd) >= 0 && !(s->start_cwd = strdup(cwd)))
		return -ENOMEM;
	return 0;
}

/* ---- what a run request asks of the scheduler ---- */

static const char *const sched_keys[] = { "priority", "hold", "after", "time", "preemptible" };

bool queue_fields_given(yajl_val t)
{
	for (size_t i = 0; i < ELEMENTSOF(sched_keys); i++)
		if (json_get(t, sched_keys[i]))
			return true;
	return false;
}

static int parse_priority(struct conn *c, yajl_val t, struct job_sched *s, struct xerr *err)
{
	int64_t p = SCHEDULER_PRIORITY_DEFAULT;
	int r = json_get_int(t, "priority", &p);

	if (r == -ENOENT)
		p = SCHEDULER_PRIORITY_DEFAULT;
	else if (r < 0 || p < SCHEDULER_PRIORITY_MIN || p > SCHEDULER_PRIORITY_MAX) {
		xerr_set(err, -EINVAL, "invalid_argument",
			 "Invalid priority: use a whole number from %d to %d (default %d)",
			 SCHEDULER_PRIORITY_MIN, SCHEDULER_PRIORITY_MAX,
			 SCHEDULER_PRIORITY_DEFAULT);
		return -EINVAL;
	}
	if (p > SCHEDULER_PRIORITY_DEFAULT && c->uid != 0) {
		xerr_set(err, -EPERM, "permission_denied",
			 "Only root may raise a job's priority above %d; use a lower "
			 "--priority or none",
			 SCHEDULER_PRIORITY_DEFAULT);
		return -EPERM;
	}
	s->priority = p;
	return 0;
}

/* One --after: the job it names (one the caller may see) and the mode. */
static int parse_dep(struct daemon *d, struct conn *c, const char *spec, struct job_dep *ret,
		     struct xerr *err)
{
	_cleanup_free_ char *name = NULL;
	enum scheduler_dep_mode mode;
	struct job *dj = NULL;
	size_t len;
	int r;

	if (scheduler_parse_dep(spec, &len, &mode) < 0 || !(name = strndup(spec, len))) {
		xerr_set(err, -EINVAL, "invalid_argument",
			 "Invalid dependency '%s': use JOB, JOB:ok, JOB:fail or JOB:any", spec);
		return -EINVAL;
	}
	r = daemon_lookup_job_for(d, c, name, &dj);
	if (r == -ENOTUNIQ) {
		xerr_set(err, -ENOTUNIQ, "ambiguous",
			 "Dependency '%s' names several jobs; give more of its id", name);
		return r;
	}
	if (r < 0) {
		xerr_set(err, -ENOENT, "not_found",
			 "Dependency '%s': no such job (xps --all lists yours)", name);
		return r;
	}
	*ret = (struct job_dep){ strdup(dj->id), strdup(name), mode };
	if (!ret->id || !ret->as) {
		free(ret->id);
		free(ret->as);
		xerr_set(err, -ENOMEM, "internal", "Out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int parse_after(struct daemon *d, struct conn *c, yajl_val t, struct job_sched *s,
		       struct xerr *err)
{
	_cleanup_strv_free_ char **after = NULL;
	size_t n;
	int r = json_get_strv(t, "after", &after);

	if (r == -ENOENT)
		return 0;
	if (r < 0 || (n = strv_length(after)) > AFTER_MAX) {
		xerr_set(err, -EINVAL, "bad_request",
			 "Field 'after' must be a list of at most %d strings", AFTER_MAX);
		return -EINVAL;
	}
	s->deps = calloc(n + 1, sizeof(*s->deps));
	if (!s->deps)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	for (size_t i = 0; i < n; i++) {
		r = parse_dep(d, c, after[i], &s->deps[i], err);
		if (r < 0)
			return r;
		s->n_deps++;
	}
	return 0;
}

/* The request must fit the node when it is empty: else it would wait forever. */
static int check_fits(struct daemon *d, const struct job_sched *s, struct xerr *err)
{
	const struct scheduler_resources *cap = &d->queue->capacity;
	char want[64], have[64];

	if (s->millicpus > cap->millicpus) {
		scheduler_format_cpus(s->millicpus, want, sizeof(want));
		scheduler_format_cpus(cap->millicpus, have, sizeof(have));
		xerr_set(err, -EINVAL, "invalid_argument",
			 "The job asks for %s but this node has %s for jobs (capacity_cpus "
			 "minus reserve_cpus); ask for at most that with --cpus",
			 want, have);
		return -E2BIG;
	}
	if (s->memory > cap->memory) {
		scheduler_format_memory(s->memory, want, sizeof(want));
		scheduler_format_memory(cap->memory, have, sizeof(have));
		xerr_set(err, -EINVAL, "invalid_argument",
			 "The job asks for %s but this node has %s for jobs (capacity_memory "
			 "minus reserve_memory); ask for at most that with --memory",
			 want, have);
		return -E2BIG;
	}
	return 0;
}

int queue_parse_run(struct daemon *d, struct conn *c, yajl_val t, struct job_sched *ret,
		    struct xerr *err)
{
	struct job_sched s = { .millicpus = d->cfg->request_millicpus,
			       .memory = d->cfg->request_memory };
	int r;

	(void)json_get_uint(t, "cpus", &s.millicpus); /* (checked by parse_run) */
	(void)json_get_uint(t, "memory", &s.memory);
	r = json_get_bool(t, "hold", &s.held);
	if (r < 0 && r != -ENOENT)
		return xerr_set(err, -EINVAL, "bad_request", "Field 'hold' must be true or false");
	r = json_get_bool(t, "preemptible", &s.preemptible);
	if (r < 0 && r != -ENOENT)
		return xerr_set(err, -EINVAL, "bad_request",
				"Field 'preemptible' must be true or false");
	r = json_get_uint(t, "time", &s.time_us);
	if ((r < 0 && r != -ENOENT) || (r >= 0 && s.time_us < 1000000)) {
		xerr_set(err, -EINVAL, "invalid_argument",
			 "Invalid time limit: use at least one second (30s, 10m, 2h, 1d)");
		return -EINVAL;
	}
	if ((r = parse_priority(c, t, &s, err)) < 0 || (r = check_fits(d, &s, err)) < 0 ||
	    (r = parse_after(d, c, t, &s, err)) < 0) {
		struct job tmp = { .sched = s };

		queue_job_free(&tmp);
		return r;
	}
	*ret = s;
	return 0;
}
