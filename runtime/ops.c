/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Client requests: the dispatcher (each request parsed completely and its
 * fields checked against its op; the one place where an error becomes the
 * answer), the field readers the handlers share, and the requests ps, wait,
 * kill, logs, signal and version. The run request and a job's start:
 * ops-run.c; the other requests' handlers: the files the table names. */
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "ckpt/ckpt.h"
#include "runtime/runtime-internal.h"

yajl_gen ops_reply_begin(void)
{
	yajl_gen g = yajl_gen_alloc(NULL);

	if (!g)
		return NULL;
	yajl_gen_map_open(g);
	json_gen_kv_int(g, "v", XOS_PROTO_VERSION);
	json_gen_kv_bool(g, "ok", true);
	return g;
}

static bool may_see(const struct conn *c, const struct job *j)
{
	return grid_may_see(c, j);
}

/* (only the caller's jobs count: an answer never tells of another's) */
int ops_lookup(struct daemon *d, struct conn *c, const char *name, struct job **ret,
	       struct xerr *err)
{
	struct job *j = NULL;
	int r = daemon_lookup_job_for(d, c, name, &j);

	if (r == -ENOTUNIQ)
		return xerr_set(err, r, "ambiguous",
				"'%s' matches several jobs; give more of the id", name);
	if (r < 0)
		return xerr_set(err, -ENOENT, "not_found", "No such job: %s", name);
	*ret = j;
	return 0;
}

int ops_get_limit(struct conn *c, yajl_val t, const char *k, uint64_t *ret, struct xerr *err)
{
	int r = json_get_uint(t, k, ret);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		xerr_set(err, -EINVAL, "bad_request", "Field '%s' must be a non-negative integer",
			 k);
	return r;
}

int ops_get_opt_bool(struct conn *c, yajl_val t, const char *k, bool *ret, struct xerr *err)
{
	int r = json_get_bool(t, k, ret);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		xerr_set(err, -EINVAL, "bad_request", "Field '%s' must be true or false", k);
	return r;
}

static int op_ps(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_free_ struct job **named = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	size_t n = 0;
	bool all = false, brief = false;
	int r = json_get_strv(t, "jobs", &names);

	if (r < 0 && r != -ENOENT)
		return xerr_set(err, -EINVAL, "bad_request",
				"Field 'jobs' must be a list of strings");
	if ((r = ops_get_opt_bool(c, t, "all", &all, err)) < 0 ||
	    (r = ops_get_opt_bool(c, t, "brief", &brief, err)) < 0)
		return r;
	n = strv_length(names);
	named = calloc(n + 1, sizeof(*named));
	if (!named)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	for (size_t i = 0; i < n; i++) /* each name resolved once, in the request's order */
		if ((r = ops_lookup(d, c, names[i], &named[i], err)) < 0)
			return r;
	queue_refresh(d); /* queued jobs' places and reasons as of now */
	g = ops_reply_begin();
	if (!g)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	json_gen_key(g, "jobs");
	yajl_gen_array_open(g);
	for (struct job *j = d->jobs; j; j = j->next) {
		bool want = n == 0 && (all || job_is_live(j));

		for (size_t i = 0; i < n && !want; i++)
			want = named[i] == j;
		if (!want || !may_see(c, j))
			continue;
		if (j->state != JOB_QUEUED) { /* (queued: no root, no versions to measure) */
			j->have_usage = job_is_live(j) &&
					rootfs_job_usage(d, j, &j->disk_used, &j->files_used) >= 0;
			if (!brief) /* (checkpoint.storage, not in the short form) */
				(void)ckpt_space_job_bytes(d->ckpt, j);
		}
		(brief ? job_to_json_brief : job_to_json)(j, g);
	}
	yajl_gen_array_close(g);
	conn_send_map(c, g);
	c->mode = CONN_CLOSING;
	return 0;
}

bool ops_wait_check(struct daemon *d, struct conn *c)
{
	_cleanup_gen_ yajl_gen g = NULL;

	for (size_t i = 0; c->wait_ids && c->wait_ids[i]; i++) {
		struct job *j = daemon_find_job(d, c->wait_ids[i]);

		if (j && (job_is_live(j) || job_cgroups_held(j)))
			return false;
	}
	g = ops_reply_begin();
	if (!g)
		return false;
	json_gen_key(g, "jobs");
	yajl_gen_array_open(g);
	for (size_t i = 0; c->wait_ids && c->wait_ids[i]; i++) {
		struct job *j = daemon_find_job(d, c->wait_ids[i]);

		if (!j)
			continue;
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "id", j->id);
		json_gen_kv_str(g, "state", queue_job_state_name(j));
		if (j->state == JOB_MIGRATED) /* (it ends on the node it moved to) */
			json_gen_kv_str(g, "node", j->migrate_node);
		else
			json_gen_kv_int(g, "exit_code", job_exit_code(j));
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	conn_send_map(c, g);
	c->mode = CONN_CLOSING;
	return true;
}

static int op_wait(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	_cleanup_strv_free_ char **names = NULL;
	int r = json_get_strv(t, "jobs", &names);

	if (r < 0 || !names[0])
		return xerr_set(err, -EINVAL, "bad_request",
				"Field 'jobs' must be a non-empty list");
	for (size_t i = 0; names[i]; i++) {
		struct job *j;

		if ((r = ops_lookup(d, c, names[i], &j, err)) < 0)
			return r;
		if (strv_push(&c->wait_ids, strdup(j->id)) < 0)
			return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	}
	c->mode = CONN_WAIT;
	(void)ops_wait_check(d, c); /* the caller flushes */
	return 0;
}

static int signal_unit(struct daemon *d, struct conn *c, struct job *j, unsigned unit, int sig,
		       struct xerr *err)
{
	int r;

	if (!job_is_live(j)) { /* (a starting job takes it once its loader runs) */
		xerr_set(err, -EBUSY, "conflict", "Job %.12s is not running (%s)", j->id,
			 job_state_to_string(j->state));
		return -ESRCH;
	}
	r = container_signal(d, j, unit, sig);
	if (r < 0)
		xerr_set(err, -EIO, "internal", "Failed to signal job %.12s: %s", j->id,
			 strerror(-r));
	return r;
}

static int op_kill(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	const char *name = NULL;
	uint64_t sig = 0, unit = 0;
	struct job *j;
	int r;

	if (json_get_string(t, "job", &name) < 0 || json_get_uint(t, "signal", &sig) < 0)
		return xerr_set(err, -EINVAL, "bad_request",
				"Fields 'job' (string) and 'signal' "
				"(integer) are required");
	if ((r = ops_get_limit(c, t, "unit", &unit, err)) < 0)
		return r;
	if (sig < 1 || sig > 64)
		return xerr_set(err, -EINVAL, "invalid_argument", "Invalid signal %llu",
				(unsigned long long)sig);
	if ((r = ops_lookup(d, c, name, &j, err)) < 0)
		return r;
	if (unit && !job_unit(j, (unsigned)unit))
		return xerr_set(err, -ENOENT, "not_found", "Job %.12s has no unit %llu", j->id,
				(unsigned long long)unit);
	if (j->state == JOB_CHECKPOINTED && j->migrate_phase &&
	    (!strcmp(j->migrate_phase, "send") || !strcmp(j->migrate_phase, "doubt") ||
	     !strcmp(j->migrate_phase, "pull")))
		/* (its other node may run it: ending it here would not end it) */
		return xerr_set(err, -EBUSY, "conflict",
				"Job %.12s is being moved to node %s: kill it there once xmigrate "
				"says it runs there, or here if the move fails",
				j->id, j->migrate_node ? j->migrate_node : "?");
	if (j->state == JOB_QUEUED) /* it ends without running */
		queue_kill(d, j, (int)sig);
	else if (j->state == JOB_CHECKPOINTED) /* no container: the job ends, its versions stay */
		daemon_job_discard(d, j, (int)sig);
	else if (j->state == JOB_RESTORING) /* the restore ends, then so does the job */
		ckpt_abort(d->ckpt, j, (int)sig);
	else if ((r = signal_unit(d, c, j, (unsigned)unit, (int)sig, err)) < 0)
		return r;
	else if (j->state == JOB_CHECKPOINTING) /* it takes the signal once thawed */
		ckpt_abort(d->ckpt, j, (int)sig);
	{
		_cleanup_gen_ yajl_gen g = ops_reply_begin();

		if (g)
			conn_send_map(c, g);
		c->mode = CONN_CLOSING;
	}
	return 0;
}

static int op_logs(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	const char *name = NULL;
	uint64_t unit = 1;
	bool follow = false;
	struct job *j;
	_cleanup_gen_ yajl_gen g = NULL;
	int r;

	if (json_get_string(t, "job", &name) < 0)
		return xerr_set(err, -EINVAL, "bad_request", "Field 'job' (string) is required");
	if ((r = ops_get_limit(c, t, "unit", &unit, err)) < 0 ||
	    (r = ops_get_opt_bool(c, t, "follow", &follow, err)) < 0 ||
	    (r = ops_lookup(d, c, name, &j, err)) < 0 ||
	    (r = grid_owner_only(c, j, "read its output", err)) < 0)
		return r;
	if (!job_unit(j, (unsigned)unit))
		return xerr_set(err, -ENOENT, "not_found", "Job %.12s has no unit %llu", j->id,
				(unsigned long long)unit);
	g = ops_reply_begin();
	if (!g)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	conn_send_map(c, g);
	conn_attach(d, c, j, (unsigned)unit, follow);
	return 0;
}

static int op_signal(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	uint64_t sig = 0;

	if (c->mode != CONN_ATTACHED || !c->follow)
		return xerr_set(err, -EINVAL, "bad_request",
				"'signal' is only valid while attached");
	if (json_get_uint(t, "signal", &sig) < 0 || sig < 1 || sig > 64)
		return 0;                /* no response for signal; ignore a bad one */
	if (c->job->state == JOB_QUEUED) /* (xrun interrupted while queued) */
		queue_kill(d, c->job, (int)sig);
	else if (job_is_live(c->job) && c->job->init_pid > 0)
		(void)container_signal(d, c->job, c->unit, (int)sig);
	return 0;
}

static int op_version(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	_cleanup_gen_ yajl_gen g = ops_reply_begin();

	if (!g)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	json_gen_kv_str(g, "version", XOS_VERSION);
	json_gen_kv_int(g, "proto", XOS_PROTO_VERSION);
	conn_send_map(c, g);
	c->mode = CONN_CLOSING;
	return 0;
}

static const struct op {
	const char *name;
	/* 0: answered (or to be answered later); else the error, which
	 * ops_handle answers */
	int (*fn)(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err);
	const char *const keys[40];
} ops[] = {
	{ "run",
	  ops_run,
	  { "v",
	    "op",
	    "argv",
	    "env",
	    "workdir",
	    "name",
	    "template",
	    "memory",
	    "cpus",
	    "pids",
	    "user",
	    "job",
	    "attach",
	    "tty",
	    "cwd",
	    "no_home",
	    "disk",
	    "files",
	    "log_size",
	    "volumes",
	    "net",
	    "ip",
	    "ports",
	    "group",
	    "checkpoint_every",
	    "checkpoint_keep",
	    "checkpoint_signal",
	    "checkpoint_grace",
	    "restore_signal",
	    "restart",
	    "priority",
	    "hold",
	    "preemptible",
	    "after",
	    "time",
	    NULL } },
	{ "ps", op_ps, { "v", "op", "jobs", "all", "brief", NULL } },
	{ "wait", op_wait, { "v", "op", "jobs", NULL } },
	{ "kill", op_kill, { "v", "op", "job", "signal", "unit", NULL } },
	{ "logs", op_logs, { "v", "op", "job", "unit", "follow", NULL } },
	{ "signal", op_signal, { "v", "op", "signal", NULL } },
	{ "version", op_version, { "v", "op", NULL } },
	/* the queue: queue.c */
	{ "queue", queue_op_queue, { "v", "op", NULL } },
	{ "release", queue_op_release, { "v", "op", "job", NULL } },
	/* the template catalogue: template-ops.c */
	{ "template_import",
	  ops_template_import,
	  { "v", "op", "name", "env", "workdir", "user", "allow_devices", NULL } },
	{ "template_list", ops_template_list, { "v", "op", NULL } },
	{ "template_show", ops_template_show, { "v", "op", "name", NULL } },
	{ "template_default", ops_template_default, { "v", "op", "name", NULL } },
	{ "template_remove", ops_template_remove, { "v", "op", "name", "force", NULL } },
	/* checkpoints: ckpt-host.c */
	{ "checkpoint", ops_checkpoint, { "v", "op", "job", "stop", NULL } },
	{ "checkpoints", ops_checkpoints, { "v", "op", "job", NULL } },
	{ "checkpoint_delete", ops_checkpoint_delete, { "v", "op", "job", "version", NULL } },
	{ "restart", ops_restart, { "v", "op", "job", "version", NULL } },
	{ "nodes", ops_nodes, { "v", "op", NULL } },
	/* the job event stream: events.c */
	{ "events", ops_events, { "v", "op", "job", "since", NULL } },
	{ "migrate", ops_migrate, { "v", "op", "job", "node", "postcopy", "compress", NULL } },
	/* grid logins: grid.c */
	{ "auth_challenge", ops_auth_challenge, { "v", "op", NULL } },
	{ "auth", ops_auth, { "v", "op", "chain", "signature", NULL } },
	{ "vo_policy", ops_vo_policy, { "v", "op", "vo", "set", "reset", NULL } },
	{ "acct", ops_acct, { "v", "op", "vo", "user", "since", NULL } },
	/* pam_xos's sessions: session.c */
	{ "session_open", ops_session_open, { "v", "op", "user", "vo", NULL } },
};

/* Parse and check a request line: the op it names, or the error. */
static int request_parse(const char *line, size_t len, yajl_val *ret, const struct op **ret_op,
			 struct xerr *err)
{
	char why[256] = "";
	_cleanup_json_ yajl_val t = NULL;
	const char *opname = NULL, *bad = NULL;
	int64_t v = 0;
	int r;

	if (strlen(line) != len)
		return xerr_set(err, -EINVAL, "bad_request", "Request contains a NUL byte");
	r = json_parse(line, JSON_DEPTH_MAX, why, sizeof(why), &t);
	if (r == -ELOOP)
		return xerr_set(err, -EINVAL, "bad_request", "Request nested too deeply (limit %d)",
				JSON_DEPTH_MAX);
	if (r < 0 || !YAJL_IS_OBJECT(t))
		return xerr_set(err, -EINVAL, "bad_request", "Malformed JSON request: %s",
				r < 0 ? why : "not an object");
	if (json_get_int(t, "v", &v) < 0)
		return xerr_set(err, -EINVAL, "bad_request",
				"Field 'v' (protocol version) is required");
	if (v != XOS_PROTO_VERSION)
		return xerr_set(err, -EPROTO, "unsupported_version",
				"Protocol version %lld is not supported (this xosd speaks %d)",
				(long long)v, XOS_PROTO_VERSION);
	if (json_get_string(t, "op", &opname) < 0)
		return xerr_set(err, -EINVAL, "bad_request", "Field 'op' is required");
	for (size_t i = 0; i < ELEMENTSOF(ops); i++) {
		if (strcmp(ops[i].name, opname) != 0)
			continue;
		if (json_check_keys(t, ops[i].keys, &bad) < 0)
			return xerr_set(err, -EINVAL, "bad_request",
					"Unknown field '%s' in '%s' request", bad, opname);
		*ret_op = &ops[i];
		*ret = TAKE_PTR(t);
		return 0;
	}
	return xerr_set(err, -EINVAL, "unknown_op", "Unknown operation '%s'", opname);
}

/* The one place where a request's error becomes the client's answer. */
void ops_handle(struct daemon *d, struct conn *c, const char *line, size_t len)
{
	_cleanup_xerr_ struct xerr err = XERR_INIT;
	_cleanup_json_ yajl_val t = NULL;
	const struct op *op = NULL;
	int r;

	if (c->mode == CONN_WAIT || c->mode == CONN_STARTING || c->mode == CONN_TEMPLATE ||
	    c->mode == CONN_CKPT || (c->mode == CONN_ATTACHED && !c->follow))
		return;
	r = request_parse(line, len, &t, &op, &err);
	if (r >= 0 && c->mode == CONN_ATTACHED && op->fn != op_signal)
		return;
	if (r >= 0)
		daemon_forget_moved(d); /* (jobs another node took over: not shown, not acted on) */
	if (r >= 0)
		r = op->fn(d, c, t, &err);
	if (r < 0 && !xerr_is_set(&err)) /* (a helper that gave no reason) */
		xerr_set_msg(&err, r, NULL, NULL);
	if (r < 0)
		conn_reply_xerr(c, &err);
}
