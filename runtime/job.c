/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The job model: states, units, the job.json record, completion reports. */
#include <signal.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "loader/loader.h"
#include "runtime/runtime-internal.h"

static const char *const job_states[_JOB_STATE_MAX] = {
	[JOB_QUEUED] = "QUEUED",
	[JOB_STARTING] = "STARTING",
	[JOB_RUNNING] = "RUNNING",
	[JOB_CHECKPOINTING] = "CHECKPOINTING",
	[JOB_CHECKPOINTED] = "CHECKPOINTED",
	[JOB_RESTORING] = "RESTORING",
	[JOB_MIGRATING] = "MIGRATING",
	[JOB_EXITED] = "EXITED",
	[JOB_KILLED] = "KILLED",
	[JOB_FAILED] = "FAILED",
	[JOB_TIMEOUT] = "TIMEOUT",
	[JOB_DEPENDENCY_NEVER_SATISFIED] = "DEPENDENCY_NEVER_SATISFIED",
	[JOB_MIGRATED] = "MIGRATED",
};
static const char *const unit_states[_UNIT_STATE_MAX] = {
	[UNIT_RUNNING] = "RUNNING",
	[UNIT_EXITED] = "EXITED",
	[UNIT_KILLED] = "KILLED",
	[UNIT_FAILED] = "FAILED",
};

const char *job_state_to_string(enum job_state s)
{
	return s >= 0 && s < _JOB_STATE_MAX ? job_states[s] : NULL;
}

enum job_state job_state_from_string(const char *s)
{
	for (int i = 0; i < _JOB_STATE_MAX; i++)
		if (s && !strcmp(s, job_states[i]))
			return (enum job_state)i;
	return _JOB_STATE_INVALID;
}

bool job_state_is_final(enum job_state s)
{
	return s == JOB_EXITED || s == JOB_KILLED || s == JOB_FAILED || s == JOB_TIMEOUT ||
	       s == JOB_DEPENDENCY_NEVER_SATISFIED || s == JOB_MIGRATED;
}

const char *unit_state_to_string(enum unit_state s)
{
	return s >= 0 && s < _UNIT_STATE_MAX ? unit_states[s] : NULL;
}

enum unit_state unit_state_from_string(const char *s)
{
	for (int i = 0; i < _UNIT_STATE_MAX; i++)
		if (s && !strcasecmp(s, unit_states[i]))
			return (enum unit_state)i;
	return _UNIT_STATE_INVALID;
}

int unit_exit_code(enum unit_state s, int code, int sig)
{
	switch (s) {
	case UNIT_EXITED:
		return code;
	case UNIT_KILLED:
		return 128 + sig;
	default:
		return 125;
	}
}

struct job *job_new(void)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->pidfd = j->notify_fd = j->dirfd = j->spoolfd = j->starter_fd = -EBADF;
	j->kept_root = j->kept_layer = -EBADF;
	j->inotify_wd = -1;
	netsetup_job_init(&j->net);
	return j;
}

void job_free(struct job *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->n_units; i++) {
		strv_free(j->units[i].argv);
		free(j->units[i].reason);
	}
	free(j->units);
	free(j->migrate_node);
	free(j->migrate_phase);
	job_close_volume_fds(j);
	for (size_t i = 0; i < j->n_volumes; i++) {
		free(j->volumes[i].src);
		free(j->volumes[i].dst);
	}
	free(j->volumes);
	free(j->name);
	free(j->user);
	free(j->groups);
	free(j->home);
	free(j->grid_dn);
	free(j->grid_vo);
	free(j->grid_role);
	free(j->template);
	strv_free(j->template_env);
	free(j->template_workdir);
	free(j->cgroup_parent);
	free(j->cgroup_parent_prev);
	free(j->store_claim);
	free(j->loader);
	free(j->reason);
	free(j->ckpt_skipped);
	free(j->start_warning);
	queue_job_free(j);
	closep(&j->pidfd);
	closep(&j->notify_fd);
	closep(&j->dirfd);
	closep(&j->spoolfd);
	closep(&j->starter_fd);
	closep(&j->kept_root); /* (a kept layer and root go with the record) */
	closep(&j->kept_layer);
	for (size_t i = 0; i < j->net.n_ports; i++)
		closep(&j->net.port_fds[i]);
	free(j);
}

int job_add_volume(struct job *j, const char *src, const char *dst, bool ro, bool home)
{
	struct job_volume *v = reallocarray(j->volumes, j->n_volumes + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	j->volumes = v;
	v += j->n_volumes;
	*v = (struct job_volume){
		.src = strdup(src), .dst = strdup(dst), .ro = ro, .home = home, .fd = -EBADF
	};
	j->n_volumes++;
	return v->src && v->dst ? 0 : -ENOMEM;
}

void job_close_volume_fds(struct job *j)
{
	for (size_t i = 0; i < j->n_volumes; i++)
		closep(&j->volumes[i].fd);
}

struct unit *job_unit(struct job *j, unsigned n)
{
	for (size_t i = 0; i < j->n_units; i++)
		if (j->units[i].n == n)
			return &j->units[i];
	return NULL;
}

struct unit *job_add_unit(struct job *j, char **argv)
{
	struct unit *u = realloc(j->units, (j->n_units + 1) * sizeof(*u));

	if (!u) {
		strv_free(argv);
		return NULL;
	}
	j->units = u;
	u = &j->units[j->n_units];
	*u = (struct unit){ .n = (unsigned)j->n_units + 1, .argv = argv, .state = UNIT_RUNNING };
	j->n_units++;
	return u;
}

bool job_is_live(const struct job *j)
{
	return !job_state_is_final(j->state);
}

bool job_may_see(const struct job *j, uid_t uid)
{
	return uid == 0 || uid == j->owner_uid;
}

int job_exit_code(const struct job *j)
{
	const struct unit *u = j->n_units ? &j->units[0] : NULL;

	if (j->state == JOB_FAILED && (!u || u->state == UNIT_RUNNING))
		return 125;
	if (!u)
		return 125;
	return unit_exit_code(u->state, u->code, u->sig);
}

static void gen_opt_int(yajl_gen g, const char *k, bool have, int64_t v)
{
	if (have)
		json_gen_kv_int(g, k, v);
	else
		json_gen_kv_null(g, k);
}

static void unit_to_json(const struct unit *u, yajl_gen g)
{
	bool ended = u->state != UNIT_RUNNING;

	yajl_gen_map_open(g);
	json_gen_kv_uint(g, "unit", u->n);
	json_gen_kv_strv(g, "argv", u->argv);
	json_gen_kv_str(g, "state", unit_state_to_string(u->state));
	gen_opt_int(g, "exit_code", ended, unit_exit_code(u->state, u->code, u->sig));
	gen_opt_int(g, "code", ended, u->code);
	gen_opt_int(g, "signal", u->state == UNIT_KILLED, u->sig);
	json_gen_kv_str(g, "reason", u->reason);
	json_gen_kv_uint(g, "started_us", u->started_us);
	gen_opt_int(g, "ended_us", ended, (int64_t)u->ended_us);
	json_gen_kv_uint(g, "cpu_user_us", u->utime_us);
	json_gen_kv_uint(g, "cpu_system_us", u->stime_us);
	json_gen_kv_uint(g, "maxrss_kb", u->maxrss_kb);
	yajl_gen_map_close(g);
}

static void net_to_json(const struct netsetup_job *nj, yajl_gen g)
{
	char a[16];

	json_gen_key(g, "net");
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "mode", netsetup_mode_to_string(nj->mode));
	if (nj->mode == NETSETUP_BRIDGE && nj->addr) {
		netsetup_addr_format(nj->addr, a);
		json_gen_kv_str(g, "address", a);
	} else {
		json_gen_kv_null(g, "address");
	}
	json_gen_kv_str(g, "group", nj->mode == NETSETUP_BRIDGE ? nj->group : NULL);
	if (nj->no_outbound)
		json_gen_kv_bool(g, "outbound", false);
	json_gen_key(g, "ports");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < nj->n_ports; i++) {
		char spec[32];

		if (netsetup_port_format(&nj->ports[i], spec, sizeof(spec)) >= 0)
			json_gen_str(g, spec);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
}

/* The network of a job record; a record without one (older xosd) is "none". */
static int net_from_json(yajl_val t, struct netsetup_job *nj)
{
	_cleanup_strv_free_ char **ports = NULL;
	const char *s = NULL;
	bool out = true;

	if (!YAJL_IS_OBJECT(t))
		return 0;
	if (json_get_string(t, "mode", &s) >= 0 &&
	    (int)(nj->mode = netsetup_mode_from_string(s)) < 0)
		return -EINVAL;
	if (json_get_string(t, "address", &s) >= 0 && netsetup_addr_parse(s, &nj->addr) < 0)
		return -EINVAL;
	if (json_get_string(t, "group", &s) >= 0) {
		if (!netsetup_group_valid(s))
			return -EINVAL;
		snprintf(nj->group, sizeof(nj->group), "%s", s);
	}
	if (json_get_bool(t, "outbound", &out) >= 0)
		nj->no_outbound = !out;
	if (json_get_strv(t, "ports", &ports) < 0)
		return 0;
	for (size_t i = 0; ports[i] && nj->n_ports < NETSETUP_PORTS_MAX; i++)
		if (netsetup_port_parse(ports[i], &nj->ports[nj->n_ports]) >= 0)
			nj->n_ports++;
	return 0;
}

void job_acct_add(struct runtime_accounting *a, const struct runtime_accounting *b)
{
	a->cpu_user_us += b->cpu_user_us;
	a->cpu_system_us += b->cpu_system_us;
	if (b->memory_peak > a->memory_peak)
		a->memory_peak = b->memory_peak;
	a->oom_kills += b->oom_kills;
}

static void acct_fields_to_json(const struct runtime_accounting *a, yajl_gen g)
{
	yajl_gen_map_open(g);
	json_gen_kv_uint(g, "cpu_user_us", a->cpu_user_us);
	json_gen_kv_uint(g, "cpu_system_us", a->cpu_system_us);
	json_gen_kv_uint(g, "memory_peak", a->memory_peak);
	json_gen_kv_uint(g, "wall_us", a->wall_us);
	json_gen_kv_uint(g, "oom_kills", a->oom_kills);
	yajl_gen_map_close(g);
}

static void acct_to_json(const struct job *j, yajl_gen g)
{
	static const struct runtime_accounting zero;

	json_gen_key(g, "accounting");
	if (j->have_acct)
		acct_fields_to_json(&j->acct, g);
	else
		yajl_gen_null(g);
	if (memcmp(&j->acct_base, &zero, sizeof(zero)) != 0) {
		json_gen_key(g, "accounting_base");
		acct_fields_to_json(&j->acct_base, g);
	}
}

static void ckpt_policy_to_json(const struct job *j, yajl_gen g)
{
	const struct job_ckpt_policy *p = &j->ckpt;

	json_gen_key(g, "checkpoint");
	yajl_gen_map_open(g);
	json_gen_kv_uint(g, "every_us", p->every_us);
	json_gen_kv_uint(g, "keep", p->keep);
	json_gen_kv_int(g, "signal", p->signal);
	json_gen_kv_uint(g, "grace_us", p->grace_us);
	json_gen_kv_int(g, "restore_signal", p->restore_signal);
	json_gen_kv_str(g, "restart", p->restart_on_failure ? "on-failure" : "no");
	json_gen_kv_uint(g, "last_version", j->ckpt_last);
	json_gen_kv_uint(g, "restores", j->restores);
	if (j->ckpt_measured) /* (runtime only: measured for ps) */
		json_gen_kv_uint(g, "storage", j->ckpt_bytes);
	if (j->ckpt_skipped) {
		json_gen_kv_str(g, "skipped", j->ckpt_skipped);
		json_gen_kv_uint(g, "skipped_us", j->ckpt_skipped_us);
	}
	yajl_gen_map_close(g);
}

void job_to_json(const struct job *j, yajl_gen g)
{
	bool final = job_state_is_final(j->state);
	const struct unit *u1 = j->n_units ? &j->units[0] : NULL;

	yajl_gen_map_open(g);
	json_gen_kv_str(g, "id", j->id);
	json_gen_kv_str(g, "name", j->name);
	json_gen_kv_uint(g, "owner_uid", j->owner_uid);
	json_gen_kv_str(g, "user", j->user);
	json_gen_kv_uint(g, "uid", j->uid);
	json_gen_kv_uint(g, "gid", j->gid);
	json_gen_key(g, "groups");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < j->n_groups; i++)
		yajl_gen_integer(g, j->groups[i]);
	yajl_gen_array_close(g);
	json_gen_kv_str(g, "home", j->home);
	if (j->grid_dn) {
		json_gen_key(g, "grid");
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "dn", j->grid_dn);
		json_gen_kv_str(g, "vo", j->grid_vo);
		json_gen_kv_str(g, "role", j->grid_role);
		yajl_gen_map_close(g);
	}
	json_gen_kv_str(g, "state", queue_job_state_name(j));
	json_gen_kv_str(g, "reason", j->reason);
	gen_opt_int(g, "exit_code", final, job_exit_code(j));
	gen_opt_int(g, "signal", final && j->state == JOB_KILLED && u1, u1 ? u1->sig : 0);
	json_gen_kv_str(g, "template", j->template);
	if (j->template_env) {
		json_gen_kv_strv(g, "template_env", j->template_env);
		json_gen_kv_str(g, "template_workdir", j->template_workdir);
	}
	json_gen_kv_str(g, "cgroup_parent", j->cgroup_parent);
	if (j->store_claim)
		json_gen_kv_str(g, "store_claim", j->store_claim);
	if (j->loader)
		json_gen_kv_str(g, "loader", j->loader);
	if (j->engine && strcmp(j->engine->name, "lxc") != 0) /* (none: liblxc's) */
		json_gen_kv_str(g, "engine", j->engine->name);
	json_gen_kv_uint(g, "created_us", j->created_us);
	gen_opt_int(g, "started_us", j->started_us != 0, (int64_t)j->started_us);
	gen_opt_int(g, "ended_us", j->ended_us != 0, (int64_t)j->ended_us);
	json_gen_key(g, "limits");
	yajl_gen_map_open(g);
	json_gen_kv_uint(g, "memory", j->limits.memory);
	json_gen_kv_uint(g, "cpus", j->limits.millicpus);
	json_gen_kv_uint(g, "pids", j->limits.pids);
	json_gen_kv_uint(g, "disk", j->disk);
	json_gen_kv_uint(g, "files", j->files);
	json_gen_kv_uint(g, "log_size", j->log_size);
	yajl_gen_map_close(g);
	json_gen_key(g, "volumes");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < j->n_volumes; i++) {
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "src", j->volumes[i].src);
		json_gen_kv_str(g, "dst", j->volumes[i].dst);
		json_gen_kv_bool(g, "ro", j->volumes[i].ro);
		json_gen_kv_bool(g, "home", j->volumes[i].home);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	if (j->have_usage && job_is_live(j)) {
		json_gen_key(g, "usage");
		yajl_gen_map_open(g);
		json_gen_kv_uint(g, "disk", j->disk_used);
		json_gen_kv_uint(g, "files", j->files_used);
		yajl_gen_map_close(g);
	}
	json_gen_kv_uint(g, "idmap_base", j->idmap_base);
	json_gen_kv_uint(g, "idmap_size", j->idmap_size);
	json_gen_kv_uint(g, "idmap_gid_base", j->idmap_gid_base);
	json_gen_kv_bool(g, "closing", j->closing);
	json_gen_kv_bool(g, "tty", j->tty);
	net_to_json(&j->net, g);
	json_gen_kv_bool(g, "shifted_user", j->shifted_user);
	ckpt_policy_to_json(j, g);
	json_gen_key(g, "units");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < j->n_units; i++)
		unit_to_json(&j->units[i], g);
	yajl_gen_array_close(g);
	acct_to_json(j, g);
	queue_job_to_json(j, g);
	if (j->migrate_phase) {
		json_gen_key(g, "migration");
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "node", j->migrate_node);
		json_gen_kv_str(g, "phase", j->migrate_phase);
		if (j->migrate_bytes)
			json_gen_kv_uint(g, "bytes", j->migrate_bytes);
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
}

void job_to_json_brief(const struct job *j, yajl_gen g)
{
	bool final = job_state_is_final(j->state);
	const struct unit *u1 = j->n_units ? &j->units[0] : NULL;

	yajl_gen_map_open(g);
	json_gen_kv_str(g, "id", j->id);
	json_gen_kv_str(g, "name", j->name);
	json_gen_kv_str(g, "user", j->user);
	if (j->grid_dn) {
		json_gen_key(g, "grid");
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "dn", j->grid_dn);
		json_gen_kv_str(g, "vo", j->grid_vo);
		yajl_gen_map_close(g);
	}
	json_gen_kv_str(g, "state", queue_job_state_name(j));
	json_gen_kv_str(g, "reason", j->reason);
	gen_opt_int(g, "exit_code", final, job_exit_code(j));
	gen_opt_int(g, "signal", final && j->state == JOB_KILLED && u1, u1 ? u1->sig : 0);
	json_gen_kv_uint(g, "created_us", j->created_us);
	json_gen_key(g, "limits");
	yajl_gen_map_open(g);
	json_gen_kv_uint(g, "disk", j->disk);
	yajl_gen_map_close(g);
	if (j->have_usage && job_is_live(j)) {
		json_gen_key(g, "usage");
		yajl_gen_map_open(g);
		json_gen_kv_uint(g, "disk", j->disk_used);
		yajl_gen_map_close(g);
	}
	if (j->net.mode != NETSETUP_NONE) /* (its address and ports) */
		net_to_json(&j->net, g);
	json_gen_key(g, "units"); /* (the first one's command; the others' numbers) */
	yajl_gen_array_open(g);
	for (size_t i = 0; i < j->n_units; i++) {
		yajl_gen_map_open(g);
		json_gen_kv_uint(g, "unit", j->units[i].n);
		if (i == 0)
			json_gen_kv_strv(g, "argv", j->units[i].argv);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
}

static yajl_val get(yajl_val o, const char *k)
{
	const char *path[] = { k, NULL };

	return yajl_tree_get(o, path, yajl_t_any);
}

static char *dup_opt(yajl_val o, const char *k)
{
	const char *s = NULL;

	return json_get_string(o, k, &s) >= 0 ? strdup(s) : NULL;
}

static uint64_t get_u(yajl_val o, const char *k)
{
	uint64_t v = 0;

	(void)json_get_uint(o, k, &v);
	return v;
}

static void acct_from_json(yajl_val v, struct runtime_accounting *a)
{
	a->cpu_user_us = get_u(v, "cpu_user_us");
	a->cpu_system_us = get_u(v, "cpu_system_us");
	a->memory_peak = get_u(v, "memory_peak");
	a->wall_us = get_u(v, "wall_us");
	a->oom_kills = get_u(v, "oom_kills");
}

static int unit_from_json(yajl_val o, struct job *j)
{
	char **argv = NULL;
	const char *st = NULL;
	struct unit *u;
	int64_t code = 0, sig = 0;

	/* (the state first: argv is ours once read) */
	if (json_get_string(o, "state", &st) < 0 || json_get_strv(o, "argv", &argv) < 0)
		return -EINVAL;
	u = job_add_unit(j, argv);
	if (!u)
		return -ENOMEM;
	u->n = (unsigned)get_u(o, "unit");
	u->state = unit_state_from_string(st);
	if ((int)u->state < 0)
		return -EINVAL;
	(void)json_get_int(o, "code", &code);
	(void)json_get_int(o, "signal", &sig);
	u->code = (int)code;
	/* a signal means something only for a unit a signal ended, and is one
	 * the kernel has: what the record is written back as (fuzz-job) */
	u->sig = u->state == UNIT_KILLED && sig > 0 && sig < 65 ? (int)sig : 0;
	u->reason = dup_opt(o, "reason");
	u->started_us = get_u(o, "started_us");
	u->ended_us = get_u(o, "ended_us");
	u->utime_us = get_u(o, "cpu_user_us");
	u->stime_us = get_u(o, "cpu_system_us");
	u->maxrss_kb = get_u(o, "maxrss_kb");
	return 0;
}

static int job_fields_from_json(yajl_val t, struct job *j)
{
	const char *id = NULL, *st = NULL;
	yajl_val v;

	if (json_get_string(t, "id", &id) < 0 || !job_id_valid(id) ||
	    json_get_string(t, "state", &st) < 0)
		return -EINVAL;
	memcpy(j->id, id, sizeof(j->id));
	/* PREEMPTED: stopped at a checkpoint by a preemption (its "sched" says so) */
	j->state = !strcmp(st, "PREEMPTED") ? JOB_CHECKPOINTED : job_state_from_string(st);
	if ((int)j->state < 0)
		return -EINVAL;
	j->name = dup_opt(t, "name");
	j->user = dup_opt(t, "user");
	j->home = dup_opt(t, "home");
	if ((v = json_get(t, "grid")) && YAJL_IS_OBJECT(v)) {
		j->grid_dn = dup_opt(v, "dn");
		j->grid_vo = dup_opt(v, "vo");
		j->grid_role = dup_opt(v, "role");
	}
	j->template = dup_opt(t, "template");
	if ((v = json_get(t, "migration")) && YAJL_IS_OBJECT(v)) {
		j->migrate_node = dup_opt(v, "node");
		j->migrate_phase = dup_opt(v, "phase");
	}
	if (json_get_strv(t, "template_env", &j->template_env) == -ENOMEM)
		return -ENOMEM;
	j->template_workdir = dup_opt(t, "template_workdir");
	j->cgroup_parent = dup_opt(t, "cgroup_parent");
	j->store_claim = dup_opt(t, "store_claim");
	j->loader = dup_opt(t, "loader");
	if ((v = json_get(t, "engine")) &&
	    (!YAJL_IS_STRING(v) || !(j->engine = container_engine_by_name(v->u.string))))
		return -EBADMSG; /* (a job this xosd cannot follow) */
	j->reason = dup_opt(t, "reason");
	j->owner_uid = (uid_t)get_u(t, "owner_uid");
	j->uid = (uid_t)get_u(t, "uid");
	j->gid = (gid_t)get_u(t, "gid");
	j->created_us = get_u(t, "created_us");
	j->started_us = get_u(t, "started_us");
	j->ended_us = get_u(t, "ended_us");
	j->idmap_base = (uint32_t)get_u(t, "idmap_base");
	j->idmap_size = (uint32_t)get_u(t, "idmap_size");
	j->idmap_gid_base = (uint32_t)get_u(t, "idmap_gid_base");
	(void)json_get_bool(t, "closing", &j->closing);
	(void)json_get_bool(t, "tty", &j->tty);
	(void)json_get_bool(t, "shifted_user", &j->shifted_user);
	v = get(t, "limits");
	j->limits.memory = get_u(v, "memory");
	j->limits.millicpus = get_u(v, "cpus");
	j->limits.pids = get_u(v, "pids");
	j->disk = get_u(v, "disk");
	j->files = get_u(v, "files");
	j->log_size = get_u(v, "log_size"); /* 0 in older records: the node's default */
	v = get(t, "volumes");
	for (size_t i = 0; YAJL_IS_ARRAY(v) && i < v->u.array.len; i++) {
		yajl_val o = v->u.array.values[i];
		const char *src = NULL, *dst = NULL;
		bool ro = false, home = false;

		if (json_get_string(o, "src", &src) < 0 || json_get_string(o, "dst", &dst) < 0)
			return -EINVAL;
		(void)json_get_bool(o, "ro", &ro);
		(void)json_get_bool(o, "home", &home);
		if (job_add_volume(j, src, dst, ro, home) < 0)
			return -ENOMEM;
	}
	if (net_from_json(get(t, "net"), &j->net) < 0)
		return -EINVAL;
	v = get(t, "checkpoint");
	if (YAJL_IS_OBJECT(v)) {
		const char *restart = NULL, *skipped = NULL;
		int64_t sig = 0;

		j->ckpt.every_us = get_u(v, "every_us");
		j->ckpt.keep = (unsigned)get_u(v, "keep");
		j->ckpt.grace_us = get_u(v, "grace_us");
		(void)json_get_int(v, "signal", &sig);
		j->ckpt.signal = (int)sig;
		sig = 0;
		(void)json_get_int(v, "restore_signal", &sig);
		j->ckpt.restore_signal = (int)sig;
		j->ckpt.restart_on_failure = json_get_string(v, "restart", &restart) >= 0 &&
					     !strcmp(restart, "on-failure");
		j->ckpt_last = (unsigned)get_u(v, "last_version");
		j->restores = (unsigned)get_u(v, "restores");
		if (json_get_string(v, "skipped", &skipped) >= 0 &&
		    !(j->ckpt_skipped = strdup(skipped)))
			return -ENOMEM;
		j->ckpt_skipped_us = get_u(v, "skipped_us");
	}
	v = get(t, "accounting");
	if (YAJL_IS_OBJECT(v)) {
		j->have_acct = true;
		acct_from_json(v, &j->acct);
	}
	v = get(t, "accounting_base");
	if (YAJL_IS_OBJECT(v))
		acct_from_json(v, &j->acct_base);
	return queue_job_from_json(t, j);
}

int job_from_json(const char *text, struct job **ret)
{
	_cleanup_json_ yajl_val t = NULL;
	struct job *j;
	yajl_val v;
	int r;

	if (json_parse(text, JSON_DEPTH_MAX, NULL, 0, &t) < 0 || !YAJL_IS_OBJECT(t))
		return -EINVAL;
	j = job_new();
	if (!j)
		return -ENOMEM;
	r = job_fields_from_json(t, j);
	v = get(t, "groups");
	if (r >= 0 && YAJL_IS_ARRAY(v) && v->u.array.len) {
		j->groups = calloc(v->u.array.len, sizeof(gid_t));
		if (!j->groups)
			r = -ENOMEM;
		for (size_t i = 0; r >= 0 && i < v->u.array.len; i++)
			if (YAJL_IS_INTEGER(v->u.array.values[i]))
				j->groups[j->n_groups++] = (gid_t)v->u.array.values[i]->u.number.i;
	}
	v = get(t, "units");
	for (size_t i = 0; r >= 0 && YAJL_IS_ARRAY(v) && i < v->u.array.len; i++)
		r = unit_from_json(v->u.array.values[i], j);
	if (r < 0) {
		job_free(j);
		return r;
	}
	*ret = j;
	return 0;
}

static enum unit_state unit_state_from_loader(enum loader_state s)
{
	switch (s) {
	case LOADER_STATE_EXITED:
		return UNIT_EXITED;
	case LOADER_STATE_KILLED:
		return UNIT_KILLED;
	default:
		return UNIT_FAILED;
	}
}

bool job_record_status(struct job *j, const struct loader_status *st)
{
	struct unit *u = job_unit(j, st->unit);

	if (!u || u->state != UNIT_RUNNING)
		return false;
	u->state = unit_state_from_loader(st->state);
	u->code = st->code;
	u->sig = st->signal;
	free(u->reason);
	u->reason = st->reason[0] ? strdup(st->reason) : NULL;
	if (st->started_us)
		u->started_us = st->started_us;
	u->ended_us = st->ended_us ? st->ended_us : now_usec();
	u->utime_us = st->utime_us;
	u->stime_us = st->stime_us;
	u->maxrss_kb = st->maxrss_kb;
	return true;
}

void job_finish(struct job *j)
{
	const struct unit *u = j->n_units ? &j->units[0] : NULL;

	j->ended_us = now_usec();
	/* a job may end before xosd records its start (its starter still
	 * waiting on liblxc): its start is then its first unit's, as the
	 * loader reported it */
	if (!j->started_us && u && u->started_us)
		j->started_us = u->started_us;
	if (j->have_acct && j->started_us)
		j->acct.wall_us = j->ended_us - j->started_us;
	if (!u || u->state == UNIT_RUNNING || u->state == UNIT_FAILED) {
		j->state = JOB_FAILED;
		if (!j->reason && u && u->reason)
			j->reason = strdup(u->reason);
	} else if (u->state == UNIT_KILLED) {
		j->state = JOB_KILLED;
		if (u->sig == SIGKILL && j->have_acct && j->acct.oom_kills > 0) {
			free(j->reason);
			j->reason = strdup("OOM");
		}
	} else {
		j->state = JOB_EXITED;
	}
	if (j->sched.timed_out && j->state != JOB_FAILED) { /* ended by its --time */
		j->state = JOB_TIMEOUT;
		free(j->reason);
		j->reason = xstrdup_printf("time limit reached (--time %llus)",
					   (unsigned long long)(j->sched.time_us / 1000000));
	}
}
