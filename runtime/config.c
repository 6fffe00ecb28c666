/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xosd.conf(5): "key = value" lines, '#' comments, every error with its line. */
#include <ctype.h>
#include <sys/socket.h>

#include "common/common.h"
#include "runtime/runtime.h"

void runtime_config_init(struct runtime_config *c)
{
	*c = (struct runtime_config){
		.layer_size = 1ULL << 30,
		.layer_inodes = 262144,
		.max_disk = 16ULL << 30,
		.max_files = 4194304,
		.mount_home = true,
		.sync_writes = true,
		.pool_size = 2, /* DECISIONS (as), (bj) */
		.keep_ended = 1000,
		.kept_layers = 16,
		.checkpoint_keep = 5,
		.hook_timeout_us = 30000000,
		.restore_timeout_us = 300000000,
		.dump_timeout_us = 120000000,
		.node_recover_after_us = 60000000,
		.max_connections_per_user = 256,
		.request_timeout_us = 10000000,
		.log_size_default = 64ULL << 20,
		.log_size_max = 1ULL << 30,
		.checkpoint_keep_max = 100,
		.checkpoint_every_min_us = 60000000,
		.idmap_slice = 65536,
		.fairshare_half_life_us = 7ULL * 24 * 3600 * 1000000,
		.backfill = true,
		.log_level = LOG_LVL_INFO,
		.events_buffer = 64 << 10,
		.metrics_listen_jobs = METRICS_JOBS_IDS,
	};
	netsetup_config_init(&c->net);
	nodes_config_init(&c->nodes);
	credstore_config_init(&c->cred);
}

void runtime_config_free(struct runtime_config *c)
{
	free(c->state_dir);
	free(c->run_dir);
	free(c->socket_path);
	free(c->loader_path);
	free(c->default_user);
	free(c->socket_group);
	free(c->cgroup_parent);
	free(c->session_cgroup);
	netsetup_config_free(&c->net);
	nodes_config_free(&c->nodes);
	free(c->checkpoint_dir);
	free(c->hooks_dir);
	free(c->metrics_socket);
	free(c->metrics_listen);
	credstore_config_free(&c->cred);
	*c = (struct runtime_config){ 0 };
}

static int set_str(char **field, const char *v)
{
	char *s = strdup(v);

	if (!s)
		return -ENOMEM;
	free(*field);
	*field = s;
	return 0;
}

static int set_abs_path(char **field, const char *v)
{
	return v[0] == '/' ? set_str(field, v) : -EINVAL;
}

static const char *const ckpt_bridge_names[_CKPT_BRIDGE_MAX] = {
	[CKPT_BRIDGE_AUTO] = "auto",
	[CKPT_BRIDGE_NO] = "false",
	[CKPT_BRIDGE_YES] = "true",
};

const char *ckpt_bridge_to_string(enum ckpt_bridge b)
{
	return b >= 0 && b < _CKPT_BRIDGE_MAX ? ckpt_bridge_names[b] : NULL;
}

enum ckpt_bridge ckpt_bridge_from_string(const char *s)
{
	bool v;

	if (!strcmp(s, "auto"))
		return CKPT_BRIDGE_AUTO;
	if (parse_bool(s, &v) < 0)
		return _CKPT_BRIDGE_INVALID;
	return v ? CKPT_BRIDGE_YES : CKPT_BRIDGE_NO;
}

/* The keys of the modules: credstore's, then netsetup's. */
static int apply_module(struct runtime_config *c, const char *k, const char *v)
{
	int r = credstore_config_set(&c->cred, k, v);

	return r != -ENOKEY ? r : netsetup_config_set(&c->net, k, v);
}

static int set_cpus(uint64_t *field, const char *v)
{
	*field = 0;
	return !strcmp(v, "0") ? 0 : parse_cpus(v, field);
}

/* The capacity keys' names before the node channel's node_* keys came:
 * accepted, with a warning in xosd.log (runtime_config_warn_old). */
const char *const runtime_capacity_old_keys[3][2] = {
	{ "node_cpus", "capacity_cpus" },
	{ "node_memory", "capacity_memory" },
	{ "node_jobs", "capacity_jobs" },
};

/* The scheduler's keys (docs/SCHEDULING.md); -ENOKEY for others. */
static int apply_sched(struct runtime_config *c, const char *k, const char *v)
{
	for (size_t i = 0; i < ELEMENTSOF(runtime_capacity_old_keys); i++)
		if (!strcmp(k, runtime_capacity_old_keys[i][0])) {
			c->capacity_old_keys |= 1U << i;
			k = runtime_capacity_old_keys[i][1];
			break;
		}
	if (!strcmp(k, "capacity_cpus"))
		return set_cpus(&c->capacity_millicpus, v);
	if (!strcmp(k, "capacity_memory"))
		return parse_size(v, &c->capacity_memory);
	if (!strcmp(k, "capacity_jobs"))
		return parse_uint64(v, &c->capacity_jobs);
	if (!strcmp(k, "reserve_cpus"))
		return set_cpus(&c->reserve_millicpus, v);
	if (!strcmp(k, "reserve_memory"))
		return parse_size(v, &c->reserve_memory);
	if (!strcmp(k, "request_cpus"))
		return set_cpus(&c->request_millicpus, v);
	if (!strcmp(k, "request_memory"))
		return parse_size(v, &c->request_memory);
	if (!strcmp(k, "fairshare_half_life"))
		return parse_duration(v, &c->fairshare_half_life_us);
	if (!strcmp(k, "backfill"))
		return parse_bool(v, &c->backfill);
	return -ENOKEY;
}

/* metrics_socket, metrics_listen: an empty value is none */
static int set_metrics(struct runtime_config *c, const char *k, const char *v)
{
	char **field = !strcmp(k, "metrics_socket") ? &c->metrics_socket : &c->metrics_listen;
	struct sockaddr_storage sa;
	unsigned len;

	if (!*v) {
		free(*field);
		*field = NULL;
		return 0;
	}
	if (field == &c->metrics_socket)
		return set_abs_path(field, v);
	if (runtime_parse_metrics_listen(v, &sa, &len) < 0)
		return -EINVAL;
	return set_str(field, v);
}

static int apply(struct runtime_config *c, const char *k, const char *v)
{
	int sr = apply_sched(c, k, v);

	if (sr != -ENOKEY)
		return sr;
	if (!strcmp(k, "state_dir"))
		return set_abs_path(&c->state_dir, v);
	if (!strcmp(k, "run_dir"))
		return set_abs_path(&c->run_dir, v);
	if (!strcmp(k, "socket"))
		return set_abs_path(&c->socket_path, v);
	if (!strcmp(k, "loader"))
		return set_abs_path(&c->loader_path, v);
	if (!strcmp(k, "default_user"))
		return set_str(&c->default_user, v);
	if (!strcmp(k, "socket_group"))
		return set_str(&c->socket_group, v);
	if (!strcmp(k, "cgroup_parent") || !strcmp(k, "session_cgroup")) {
		if (!v[0] || v[0] == '/' || strstr(v, "..") ||
		    strspn(v, "abcdefghijklmnopqrstuvwxyz"
			      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/@") != strlen(v))
			return -EINVAL;
		return set_str(k[0] == 'c' ? &c->cgroup_parent : &c->session_cgroup, v);
	}
	if (!strcmp(k, "layer_size"))
		return parse_size(v, &c->layer_size);
	if (!strcmp(k, "layer_inodes"))
		return parse_uint64(v, &c->layer_inodes);
	if (!strcmp(k, "max_disk"))
		return parse_size(v, &c->max_disk);
	if (!strcmp(k, "max_files"))
		return parse_uint64(v, &c->max_files);
	if (!strcmp(k, "mount_home"))
		return parse_bool(v, &c->mount_home);
	if (!strcmp(k, "volume_system_paths"))
		return parse_bool(v, &c->volume_system_paths);
	if (!strcmp(k, "default_memory"))
		return parse_size(v, &c->default_memory);
	if (!strcmp(k, "default_cpus")) {
		c->default_millicpus = 0;
		return !strcmp(v, "0") ? 0 : parse_cpus(v, &c->default_millicpus);
	}
	if (!strcmp(k, "default_pids"))
		return parse_uint64(v, &c->default_pids);
	if (!strcmp(k, "keep_ended"))
		return parse_uint64(v, &c->keep_ended);
	if (!strcmp(k, "kept_layers"))
		return parse_uint64(v, &c->kept_layers);
	if (!strcmp(k, "checkpoint_dir"))
		return set_abs_path(&c->checkpoint_dir, v);
	if (!strcmp(k, "node_recover_after"))
		return parse_duration(v, &c->node_recover_after_us);
	if (!strcmp(k, "migrate_max_incoming"))
		return parse_size(v, &c->migrate_max_incoming);
	if (!strcmp(k, "checkpoint_bridge")) {
		enum ckpt_bridge b = ckpt_bridge_from_string(v);

		if (b < 0)
			return b;
		c->checkpoint_bridge = b;
		return 0;
	}
	if (!strcmp(k, "checkpoint_keep"))
		return parse_uint64(v, &c->checkpoint_keep);
	if (!strcmp(k, "hooks_dir"))
		return set_abs_path(&c->hooks_dir, v);
	if (!strcmp(k, "restore_timeout"))
		return parse_duration(v, &c->restore_timeout_us) < 0 || !c->restore_timeout_us
			       ? -EINVAL
			       : 0;
	if (!strcmp(k, "dump_timeout"))
		return parse_duration(v, &c->dump_timeout_us) < 0 || !c->dump_timeout_us ? -EINVAL
											 : 0;
	if (!strcmp(k, "hook_timeout")) {
		uint64_t s;
		int r = parse_uint64(v, &s);

		if (r < 0 || s == 0 || s > 3600)
			return -EINVAL;
		c->hook_timeout_us = s * 1000000;
		return 0;
	}
	if (!strcmp(k, "checkpoint_keep_max"))
		return parse_uint64(v, &c->checkpoint_keep_max) < 0 || !c->checkpoint_keep_max ||
				       c->checkpoint_keep_max > 1000
			       ? -EINVAL
			       : 0;
	if (!strcmp(k, "checkpoint_interval_min"))
		return parse_duration(v, &c->checkpoint_every_min_us);
	if (!strcmp(k, "checkpoint_quota"))
		return parse_size(v, &c->checkpoint_quota);
	if (!strcmp(k, "checkpoint_quota_root"))
		return parse_size(v, &c->checkpoint_quota_root);
	if (!strcmp(k, "idmap_slice")) /* templates' ids 0-65535 fit in any slice */
		return parse_uint64(v, &c->idmap_slice) < 0 || c->idmap_slice < 65536 ||
				       c->idmap_slice > (1ULL << 31)
			       ? -EINVAL
			       : 0;
	if (!strcmp(k, "sync_writes"))
		return parse_bool(v, &c->sync_writes);
	if (!strcmp(k, "log_level")) {
		static const char *const lv[] = { "error", "warning", "info", "debug" };

		for (size_t i = 0; i < ELEMENTSOF(lv); i++)
			if (!strcmp(v, lv[i])) {
				c->log_level = (int)i;
				return 0;
			}
		return -EINVAL;
	}
	if (!strcmp(k, "max_connections_per_user"))
		return parse_uint64(v, &c->max_connections_per_user) < 0 ||
				       !c->max_connections_per_user
			       ? -EINVAL
			       : 0;
	if (!strcmp(k, "request_timeout"))
		return parse_duration(v, &c->request_timeout_us) < 0 || !c->request_timeout_us
			       ? -EINVAL
			       : 0;
	if (!strcmp(k, "log_size_default"))
		return parse_size(v, &c->log_size_default) < 0 ||
				       c->log_size_default < RUNTIME_LOG_SIZE_MIN
			       ? -EINVAL
			       : 0;
	if (!strcmp(k, "log_size_max"))
		return parse_size(v, &c->log_size_max) < 0 || c->log_size_max < RUNTIME_LOG_SIZE_MIN
			       ? -EINVAL
			       : 0;
	if (!strcmp(k, "metrics_socket") || !strcmp(k, "metrics_listen"))
		return set_metrics(c, k, v);
	if (!strcmp(k, "metrics_listen_jobs")) {
		static const char *const mj[] = { "none", "ids", "names" };

		for (size_t i = 0; i < ELEMENTSOF(mj); i++)
			if (!strcmp(v, mj[i])) {
				c->metrics_listen_jobs = (int)i;
				return 0;
			}
		return -EINVAL;
	}
	if (!strcmp(k, "container_engine")) {
		if (strcmp(v, "lxc") && strcmp(v, "direct"))
			return -EINVAL;
		c->engine_direct = !strcmp(v, "direct");
		return 0;
	}
	if (!strcmp(k, "pool_size"))
		return parse_uint64(v, &c->pool_size) < 0 || c->pool_size > 16 ? -EINVAL : 0;
	if (!strcmp(k, "events_buffer"))
		return parse_size(v, &c->events_buffer) < 0 || c->events_buffer < 4096 ||
				       c->events_buffer > (16 << 20)
			       ? -EINVAL
			       : 0;
	if (str_has_prefix(k, "node_"))
		return nodes_config_set(&c->nodes, k, v);
	return apply_module(c, k, v);
}

static char *strip(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

int runtime_config_load(struct runtime_config *c, const char *path, char **ret_error)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) >= 0) {
		char *eq, *k, *v;
		int r;

		lineno++;
		k = strip(line);
		if (!*k || *k == '#')
			continue;
		eq = strchr(k, '=');
		if (!eq) {
			*ret_error = xstrdup_printf("%s:%u: expected 'key = value'", path, lineno);
			return -EINVAL;
		}
		*eq = 0;
		k = strip(k);
		v = strip(eq + 1);
		r = apply(c, k, v);
		if (r == -ENOKEY) {
			*ret_error = xstrdup_printf("%s:%u: unknown key '%s'", path, lineno, k);
			return -EINVAL;
		}
		if (r < 0) {
			*ret_error = xstrdup_printf("%s:%u: invalid value '%s' for %s", path,
						    lineno, v, k);
			return -EINVAL;
		}
	}
	return 0;
}

int runtime_config_finish(struct runtime_config *c)
{
	if (!c->state_dir && set_str(&c->state_dir, "/var/lib/xos") < 0)
		return -ENOMEM;
	if (!c->run_dir && set_str(&c->run_dir, "/run/xos") < 0)
		return -ENOMEM;
	if (!c->socket_path) {
		c->socket_path = xstrdup_printf("%s/xosd.sock", c->run_dir);
		if (!c->socket_path)
			return -ENOMEM;
	}
	if (!c->loader_path && set_str(&c->loader_path, XOS_LIBEXECDIR "/xos-loader") < 0)
		return -ENOMEM;
	if (!c->default_user && set_str(&c->default_user, "nobody") < 0)
		return -ENOMEM;
	if (!c->checkpoint_dir &&
	    !(c->checkpoint_dir = xstrdup_printf("%s/checkpoints", c->state_dir)))
		return -ENOMEM;
	if (!c->hooks_dir && set_str(&c->hooks_dir, XOS_SYSCONFDIR "/xos/hooks.d") < 0)
		return -ENOMEM;
	if (!c->session_cgroup && set_str(&c->session_cgroup, "xos-sessions") < 0)
		return -ENOMEM;
	if (credstore_config_finish(&c->cred) < 0)
		return -ENOMEM;
	return netsetup_config_finish(&c->net);
}
