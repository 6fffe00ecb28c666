/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The run request (xrun): its fields parsed completely and validated, the
 * caller authorised, the job made (template, account, network, volumes,
 * ids, directories, first unit) and queued or started; a unit added to a
 * running job (--job); a job's start and its end answered to the xruns
 * waiting for it (ops_start_done, ops_start_failed). The dispatcher and
 * the other job requests: ops.c. */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <grp.h>
#include <pwd.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "ckpt/ckpt.h"
#include "runtime/runtime-internal.h"
#include "templates/templates.h"

#define RUN_MAX_VOLUMES 64

struct run_volume {
	const char *src, *dst;
	bool ro;
};

/* The request's filesystem: template, writable layer, volumes. */
struct run_fs {
	const char *template;      /* asked for (NULL: the node's default) */
	char *tpl_name;            /* the job's template (resolve_template) */
	struct template_info *tpl; /* its metadata; NULL for host */
	uint64_t disk, files;      /* 0: the node's defaults */
	uint64_t log_size;         /* spool kept per stream of a unit; 0: the node's default */
	struct run_volume volumes[RUN_MAX_VOLUMES];
	size_t n_volumes;
	const char *cwd; /* where xrun was run (unit_cwd) */
	bool no_home;
};

/* The request's network (checked by parse_net). */
struct run_net {
	const char *mode, *ip, *group;
	char **ports;
};

struct run_req {
	char **argv, **env;
	const char *workdir, *name, *user, *job;
	struct runtime_limits limits; /* the node's defaults unless given; 0: none */
	bool limits_given, attach, tty;
	struct run_fs fs;
	struct run_net net;
	struct job_ckpt_policy ckpt;
	bool ckpt_given;
	struct job_sched sched; /* request, priority, hold, --after, --time (queue.c) */
	bool sched_given;
};

static int get_run_limit(struct conn *c, yajl_val t, const char *k, uint64_t *ret, bool *given,
			 struct xerr *err)
{
	uint64_t v;
	int r = ops_get_limit(c, t, k, &v, err);

	if (r < 0 || json_get_uint(t, k, &v) < 0)
		return r;
	*ret = v;
	*given = true;
	return 0;
}

static int get_opt_str(struct conn *c, yajl_val t, const char *k, const char **ret,
		       struct xerr *err)
{
	int r = json_get_string(t, k, ret);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		xerr_set(err, -EINVAL, "bad_request", "Field '%s' must be a string", k);
	return r;
}

static int parse_volumes(struct conn *c, yajl_val t, struct run_req *q, struct xerr *err)
{
	const char *path[] = { "volumes", NULL };
	yajl_val v = yajl_tree_get(t, path, yajl_t_any);

	if (!v)
		return 0;
	if (!YAJL_IS_ARRAY(v) || v->u.array.len > RUN_MAX_VOLUMES) {
		xerr_set(err, -EINVAL, "bad_request",
			 "Field 'volumes' must be a list of at most %d", RUN_MAX_VOLUMES);
		return -EINVAL;
	}
	for (size_t i = 0; i < v->u.array.len; i++) {
		static const char *const keys[] = { "src", "dst", "ro", NULL };
		yajl_val o = v->u.array.values[i];
		struct run_volume *rv = &q->fs.volumes[q->fs.n_volumes++];
		const char *bad = NULL;
		int r = YAJL_IS_OBJECT(o) ? json_check_keys(o, keys, &bad) : -EINVAL;

		if (r >= 0 && json_get_bool(o, "ro", &rv->ro) == -EINVAL)
			r = -EINVAL;
		if (r < 0 || json_get_string(o, "src", &rv->src) < 0 ||
		    json_get_string(o, "dst", &rv->dst) < 0) {
			xerr_set(err, -EINVAL, "bad_request",
				 "Each volume must be {\"src\": PATH, \"dst\": PATH, "
				 "\"ro\": BOOL}");
			return -EINVAL;
		}
	}
	return 0;
}

/* The checkpoint settings of a new job (docs/PROTOCOL.md). */
static int parse_run_ckpt(struct conn *c, yajl_val t, struct run_req *q, struct xerr *err)
{
	struct job_ckpt_policy *p = &q->ckpt;
	uint64_t keep = 0, sig = 0, rsig = 0;
	const char *restart = NULL;
	bool given = false;

	p->grace_us = 5000000;
	if (get_run_limit(c, t, "checkpoint_every", &p->every_us, &given, err) < 0 ||
	    get_run_limit(c, t, "checkpoint_keep", &keep, &given, err) < 0 ||
	    get_run_limit(c, t, "checkpoint_signal", &sig, &given, err) < 0 ||
	    get_run_limit(c, t, "checkpoint_grace", &p->grace_us, &given, err) < 0 ||
	    get_run_limit(c, t, "restore_signal", &rsig, &given, err) < 0 ||
	    get_opt_str(c, t, "restart", &restart, err) < 0)
		return -EINVAL;
	if ((p->every_us && p->every_us < 1000000) || keep > 1000 || sig > 64 || rsig > 64 ||
	    p->grace_us > 3600000000ULL ||
	    (restart && strcmp(restart, "on-failure") && strcmp(restart, "no"))) {
		xerr_set(err, -EINVAL, "invalid_argument",
			 "Invalid checkpoint settings (every >= 1s, keep <= 1000, signals "
			 "1-64, grace <= 1h, restart on-failure or no)");
		return -EINVAL;
	}
	p->keep = (unsigned)keep;
	p->signal = (int)sig;
	p->restore_signal = (int)rsig;
	p->restart_on_failure = restart && !strcmp(restart, "on-failure");
	q->ckpt_given = given || restart;
	return 0;
}

static int parse_run(struct conn *c, yajl_val t, struct run_req *q, struct xerr *err)
{
	int r = json_get_strv(t, "argv", &q->argv);

	if (r < 0 || !q->argv[0] || !q->argv[0][0]) {
		xerr_set(err, -EINVAL, "bad_request",
			 "Field 'argv' must be a non-empty list of strings");
		return -EINVAL;
	}
	r = json_get_strv(t, "env", &q->env);
	if (r < 0 && r != -ENOENT) {
		xerr_set(err, -EINVAL, "bad_request", "Field 'env' must be a list of strings");
		return r;
	}
	for (size_t i = 0; q->env && q->env[i]; i++)
		if (!strchr(q->env[i], '=') || q->env[i][0] == '=') {
			xerr_set(err, -EINVAL, "invalid_argument",
				 "Environment item '%s' is not K=V", q->env[i]);
			return -EINVAL;
		}
	if (get_opt_str(c, t, "workdir", &q->workdir, err) < 0 ||
	    get_opt_str(c, t, "name", &q->name, err) < 0 ||
	    get_opt_str(c, t, "template", &q->fs.template, err) < 0 ||
	    get_opt_str(c, t, "user", &q->user, err) < 0 ||
	    get_opt_str(c, t, "job", &q->job, err) < 0 ||
	    get_run_limit(c, t, "memory", &q->limits.memory, &q->limits_given, err) < 0 ||
	    get_run_limit(c, t, "cpus", &q->limits.millicpus, &q->limits_given, err) < 0 ||
	    get_run_limit(c, t, "pids", &q->limits.pids, &q->limits_given, err) < 0 ||
	    ops_get_opt_bool(c, t, "attach", &q->attach, err) < 0 ||
	    ops_get_opt_bool(c, t, "tty", &q->tty, err) < 0 ||
	    get_opt_str(c, t, "cwd", &q->fs.cwd, err) < 0 ||
	    ops_get_opt_bool(c, t, "no_home", &q->fs.no_home, err) < 0 ||
	    ops_get_limit(c, t, "disk", &q->fs.disk, err) < 0 ||
	    ops_get_limit(c, t, "files", &q->fs.files, err) < 0 ||
	    ops_get_limit(c, t, "log_size", &q->fs.log_size, err) < 0 ||
	    parse_volumes(c, t, q, err) < 0 || get_opt_str(c, t, "net", &q->net.mode, err) < 0 ||
	    get_opt_str(c, t, "ip", &q->net.ip, err) < 0 ||
	    get_opt_str(c, t, "group", &q->net.group, err) < 0)
		return -EINVAL;
	r = json_get_strv(t, "ports", &q->net.ports);
	if (r < 0 && r != -ENOENT) {
		xerr_set(err, -EINVAL, "bad_request", "Field 'ports' must be a list of strings");
		return r;
	}
	return parse_run_ckpt(c, t, q, err);
}

/* The published ports of the request: checked, not yet held. */
static int parse_ports(struct conn *c, struct run_req *q, struct netsetup_job *nj, struct xerr *err)
{
	for (size_t i = 0; q->net.ports && q->net.ports[i]; i++) {
		struct netsetup_port *p = &nj->ports[nj->n_ports];

		if (nj->n_ports == NETSETUP_PORTS_MAX)
			return xerr_set(err, -EINVAL, "invalid_argument",
					"At most %d ports can be published", NETSETUP_PORTS_MAX),
			       -E2BIG;
		if (netsetup_port_parse(q->net.ports[i], p) < 0)
			return xerr_set(err, -EINVAL, "invalid_argument",
					"Invalid port '%s': use HOSTPORT:PORT[/tcp|/udp] "
					"with ports 1-65535",
					q->net.ports[i]),
			       -EINVAL;
		if (p->host < 1024 && c->uid != 0)
			return xerr_set(err, -EPERM, "permission_denied",
					"Only root may publish port %u (below 1024); "
					"use a host port of 1024 or above",
					p->host),
			       -EPERM;
		for (size_t k = 0; k < nj->n_ports; k++)
			if (nj->ports[k].host == p->host && nj->ports[k].proto == p->proto)
				return xerr_set(err, -EINVAL, "invalid_argument",
						"Port %u is published twice", p->host),
				       -EINVAL;
		nj->n_ports++;
	}
	return 0;
}

/* The job's network from the request (checked; the lease and ports are
 * taken later, by netsetup). */
static int parse_net(struct daemon *d, struct conn *c, struct run_req *q, struct netsetup_job *nj,
		     struct xerr *err)
{
	bool wants_bridge = q->net.ip || q->net.group || (q->net.ports && q->net.ports[0]);

	/* an address, a port or a group asks for the bridge unless --net says otherwise */
	nj->mode = q->net.mode    ? netsetup_mode_from_string(q->net.mode)
		   : wants_bridge ? NETSETUP_BRIDGE
				  : d->cfg->net.default_mode;
	if ((int)nj->mode < 0)
		return xerr_set(err, -EINVAL, "invalid_argument",
				"Unknown network mode '%s' (use none or bridge)", q->net.mode),
		       -EINVAL;
	if (nj->mode != NETSETUP_BRIDGE && wants_bridge)
		return xerr_set(err, -EINVAL, "invalid_argument",
				"--ip, --publish and --group need --net bridge"),
		       -EINVAL;
	if (q->net.ip && (netsetup_addr_parse(q->net.ip, &nj->addr) < 0 || !nj->addr))
		return xerr_set(err, -EINVAL, "invalid_argument",
				"Invalid address '%s': use a dotted IPv4 address", q->net.ip),
		       -EINVAL;
	if (q->net.group && !netsetup_group_valid(q->net.group))
		return xerr_set(err, -EINVAL, "invalid_argument",
				"Invalid group '%s': use letters, digits, '_', '.', '-' "
				"(at most %d)",
				q->net.group, NETSETUP_GROUP_MAX),
		       -EINVAL;
	if (q->net.group && vo_check_group(c, q->net.group, err) < 0)
		return -EPERM;
	if (q->net.group)
		snprintf(nj->group, sizeof(nj->group), "%s", q->net.group);
	return parse_ports(c, q, nj, err);
}

/* Lease, ports, bridge and rules for the job, or a clear error and nothing. */
/* Once, at the first bridge-mode job: say so if the node would drop the
 * replies to its outbound traffic (forwarding off on the uplink). */
static void check_uplink(struct daemon *d, struct job *j)
{
	char ifaces[256];

	if (d->uplink_checked || j->net.mode != NETSETUP_BRIDGE || !d->cfg->net.outbound)
		return;
	d->uplink_checked = true;
	if (netsetup_uplinks_not_forwarding(ifaces, sizeof(ifaces)) > 0)
		log_warn("Bridge-mode jobs cannot reach the outside: IPv4 forwarding is off on %s, "
			 "which must forward the replies (sysctl net.ipv4.ip_forward=1, or "
			 "net.ipv4.conf.IFACE.forwarding=1; net_outbound in xosd.conf(5))",
			 ifaces);
}

static int setup_net(struct daemon *d, struct conn *c, struct job *j, struct xerr *err)
{
	int r = netsetup_job_setup(d->net, j->id, &j->net, err);

	if (r >= 0) {
		if (netsetup_take_forwarding_turned_on(d->net))
			log_info(
				"Turned on IPv4 forwarding (net.ipv4.ip_forward = 1) for the "
				"outbound traffic of bridge-mode jobs, as Docker does; it stays on "
				"(net_ip_forward = leave in xosd.conf keeps xosd from it)");
		check_uplink(d, j);
		return 0;
	}
	if (!strcmp(xerr_code(err), "internal"))
		xerr_prefix(err, "Failed to set up the job's network: ");
	return r;
}

/* The unit's own settings: terminal, working directory, the job's name. */
static int validate_unit(struct conn *c, const struct run_req *q, struct xerr *err)
{
	if (q->tty && !q->attach) {
		xerr_set(err, -EINVAL, "invalid_argument",
			 "A terminal (-t) needs an attached xrun; drop -d or -t");
		return -EINVAL;
	}
	if (q->workdir && q->workdir[0] != '/') {
		xerr_set(err, -EINVAL, "invalid_argument", "Working directory '%s' is not absolute",
			 q->workdir);
		return -EINVAL;
	}
	if (q->name && !job_name_valid(q->name)) {
		xerr_set(err, -EINVAL, "invalid_argument",
			 "Invalid job name '%s': use letters, digits, '_', '.', '-' (at "
			 "most 63), and not hex digits only (those name job ids)",
			 q->name);
		return -EINVAL;
	}
	return 0;
}

static int validate_limits(struct conn *c, const struct run_req *q, struct xerr *err)
{
	if (q->limits.memory && q->limits.memory < (4ULL << 20)) {
		xerr_set(err, -EINVAL, "invalid_argument",
			 "Memory limit below 4 MiB cannot run a job");
		return -EINVAL;
	}
	if (q->limits.millicpus > 1024000 || (q->limits.pids && q->limits.pids < 2)) {
		xerr_set(err, -EINVAL, "invalid_argument", "Invalid cpus or pids limit");
		return -EINVAL;
	}
	return 0;
}

static int validate_ckpt(struct conn *c, const struct run_req *q, struct xerr *err)
{
	if (q->tty && (q->ckpt.every_us || q->ckpt.restart_on_failure)) {
		xerr_set(err, -EINVAL, "invalid_argument",
			 "A job with a terminal (-t) cannot be checkpointed: drop -t or "
			 "the checkpoint options");
		return -EINVAL;
	}
	return 0;
}

/* A user's checkpoint settings within the node's bounds (root: any). */
static int validate_ckpt_bounds(struct daemon *d, struct conn *c, const struct run_req *q,
				struct xerr *err)
{
	return ckpt_policy_check(d->cfg, c->uid, &q->ckpt, err);
}

static int validate_volumes(struct conn *c, const struct run_fs *fs, struct xerr *err)
{
	for (size_t i = 0; i < fs->n_volumes; i++) {
		const char *why = NULL;

		if (volume_check_target(fs->volumes[i].dst, &why) < 0) {
			xerr_set(err, -EINVAL, "invalid_argument", "Volume %s:%s: %s",
				 fs->volumes[i].src, fs->volumes[i].dst, why);
			return -EINVAL;
		}
		for (size_t k = 0; k < i; k++)
			if (!strcmp(fs->volumes[k].dst, fs->volumes[i].dst)) {
				xerr_set(err, -EINVAL, "invalid_argument",
					 "Two volumes are mounted at %s", fs->volumes[i].dst);
				return -EINVAL;
			}
	}
	return 0;
}

/* The writable layer's size (the node's bounds) and the volumes' targets. */
static int validate_fs(struct daemon *d, struct conn *c, const struct run_fs *fs, struct xerr *err)
{
	if (c->uid != 0 && (fs->disk > d->cfg->max_disk || fs->files > d->cfg->max_files)) {
		xerr_set(err, -EINVAL, "invalid_argument",
			 "At most --disk %" PRIu64 " bytes and --files %" PRIu64 " on this node",
			 d->cfg->max_disk, d->cfg->max_files);
		return -EINVAL;
	}
	if (fs->disk && fs->disk < (1ULL << 20)) {
		xerr_set(err, -EINVAL, "invalid_argument",
			 "A job's writable layer needs at least 1 MiB (--disk)");
		return -EINVAL;
	}
	if (c->uid != 0 && fs->log_size > d->cfg->log_size_max) {
		xerr_set(err, -EINVAL, "invalid_argument",
			 "At most --log-size %" PRIu64 " bytes on this node (log_size_max)",
			 d->cfg->log_size_max);
		return -EINVAL;
	}
	if (fs->log_size && fs->log_size < RUNTIME_LOG_SIZE_MIN) {
		xerr_set(err, -EINVAL, "invalid_argument", "--log-size must be at least 64 KiB");
		return -EINVAL;
	}
	return validate_volumes(c, fs, err);
}

/* Names are unique among the live jobs of one owner (others' are not seen). */
static int validate_name_free(struct daemon *d, struct conn *c, const char *name, struct xerr *err)
{
	for (struct job *j = name ? daemon_named_first(d, name) : NULL; j;
	     j = daemon_named_next(d, j, name))
		if (job_is_live(j) && j->owner_uid == c->uid) {
			xerr_set(err, -EBUSY, "conflict",
				 "Your job %.12s is already named '%s'; choose another name", j->id,
				 name);
			return -EEXIST;
		}
	return 0;
}

/* Each part in turn: the first error found is the one answered. */
static int validate_run(struct daemon *d, struct conn *c, const struct run_req *q, struct xerr *err)
{
	return validate_unit(c, q, err) ?: validate_limits(c, q, err) ?: validate_ckpt(c, q, err)
		?: validate_ckpt_bounds(d, c, q, err) ?: validate_fs(d, c, &q->fs, err)
		?: validate_name_free(d, c, q->name, err);
}

static int resolve_user(struct daemon *d, struct conn *c, const char *name, struct job *j,
			struct xerr *err)
{
	struct passwd *pw = name          ? getpwnam(name)
			    : c->uid == 0 ? getpwnam(d->cfg->default_user)
					  : getpwuid(c->uid);
	gid_t groups[64];
	int ng = ELEMENTSOF(groups);

	if (!pw) {
		xerr_set(err, -ENOENT, "not_found", "No such local account: %s",
			 name          ? name
			 : c->uid == 0 ? d->cfg->default_user
				       : "(caller)");
		return -ENOENT;
	}
	if (pw->pw_uid == 0) {
		xerr_set(err, -EPERM, "permission_denied",
			 "Jobs never run as root; name a non-root account with --user");
		return -EPERM;
	}
	if (c->uid != 0 && pw->pw_uid != c->uid) {
		xerr_set(err, -EPERM, "permission_denied", "You may only run jobs as yourself");
		return -EPERM;
	}
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &ng) < 0)
		ng = 0;
	j->uid = pw->pw_uid;
	j->gid = pw->pw_gid;
	j->user = strdup(pw->pw_name);
	j->home = strdup(pw->pw_dir);
	j->groups = calloc((size_t)ng + 1, sizeof(gid_t));
	for (int i = 0; j->groups && i < ng; i++)
		if (groups[i] != 0)
			j->groups[j->n_groups++] = groups[i];
	return j->user && j->home && j->groups ? 0 : -ENOMEM;
}

/* Find NAME (or a number) in the template's own /etc/passwd. */
static int template_passwd(struct daemon *d, const char *tpl, const char *name, uid_t *ret_uid,
			   gid_t *ret_gid, char **ret_name)
{
	_cleanup_close_ int root = -EBADF, etc = -EBADF;
	_cleanup_free_ char *text = NULL;
	char *line, *save = NULL;
	uint64_t num = 0;
	bool numeric = parse_uint64(name, &num) >= 0;
	int r;

	root = open_dir_at(d->catalog_fd, tpl);
	if (root >= 0)
		etc = open_dir_at(root, "rootfs/etc");
	r = etc < 0 ? etc : read_file_at(etc, "passwd", 1 << 20, &text, NULL);
	if (r < 0 && !numeric)
		return r;
	for (line = r < 0 ? NULL : strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *f[7] = { 0 }, *p = line;
		uint64_t u, g;

		for (int i = 0; i < 7 && p; i++)
			f[i] = strsep(&p, ":");
		if (!f[3] || parse_uint64(f[2], &u) < 0 || parse_uint64(f[3], &g) < 0)
			continue;
		if (numeric ? u == num : !strcmp(f[0], name)) {
			*ret_uid = (uid_t)u;
			*ret_gid = (gid_t)g;
			*ret_name = strdup(f[0]);
			return *ret_name ? 0 : -ENOMEM;
		}
	}
	if (!numeric)
		return -ENOENT;
	/* a number the template's passwd lacks (or no passwd): uid = gid = it */
	*ret_uid = *ret_gid = (uid_t)num;
	*ret_name = xstrdup_printf("%" PRIu64, num);
	return *ret_name ? 0 : -ENOMEM;
}

/* Root's job on a template that names its user: it runs as that user of the
 * template, an id of the containers' own range (not a host account). */
static int template_user(struct daemon *d, struct conn *c, struct run_req *q, struct job *j,
			 struct xerr *err)
{
	uid_t uid = 0;
	gid_t gid = 0;
	int r = template_passwd(d, j->template, q->fs.tpl->user, &uid, &gid, &j->user);

	if (r < 0) {
		xerr_set(err, -EINVAL, "invalid_argument",
			 "Template %s names user '%s', which its /etc/passwd does not have",
			 j->template, q->fs.tpl->user);
		return r;
	}
	if (uid == 0 || uid >= d->subuid_size || gid >= d->subgid_size) {
		xerr_set(err, -EPERM, "permission_denied",
			 "Template %s names user '%s' (uid %u): jobs never run as root and "
			 "need an id below %u; give --user",
			 j->template, q->fs.tpl->user, (unsigned)uid, d->subuid_size);
		return -EPERM;
	}
	j->uid = uid;
	j->gid = gid;
	j->shifted_user = true;
	j->groups = calloc(1, sizeof(gid_t));
	return j->groups ? 0 : -ENOMEM;
}

int ops_make_job_dirs(struct daemon *d, struct job *j)
{
	_cleanup_close_ int xos = -EBADF;
	uid_t ru = j->idmap_base; /* the job's own root */
	gid_t rg = j->idmap_gid_base;

	/* (a queued job has its directory, for its record, already) */
	if (mkdirat(d->jobs_fd, j->id, 0711) < 0 && (errno != EEXIST || !j->sched.queued))
		return -errno;
	if (j->dirfd < 0)
		j->dirfd = open_dir_at(d->jobs_fd, j->id);
	if (j->dirfd < 0)
		return j->dirfd;
	if (mkdirat(j->dirfd, "xos", 0700) < 0 || fchownat(j->dirfd, "xos", ru, rg, 0) < 0)
		return -errno;
	xos = open_dir_at(j->dirfd, "xos");
	if (xos < 0)
		return xos;
	if (mkdirat(xos, "in", 0700) < 0 || fchownat(xos, "in", ru, rg, 0) < 0 ||
	    mkdirat(xos, "spool", 0700) < 0 || fchownat(xos, "spool", ru, rg, 0) < 0)
		return -errno;
	{
		_cleanup_close_ int lf = openat(xos, "loader", O_WRONLY | O_CREAT | O_CLOEXEC,
						0755);

		if (lf < 0)
			return -errno;
	}
	return 0;
}

/* The job's template: the one asked for, else the node's default; its
 * metadata loaded and validated, its ids those of this node's containers. */
static int resolve_template(struct daemon *d, struct conn *c, struct run_req *q, struct xerr *err)
{
	_cleanup_free_ char *name = NULL, *why = NULL;
	const char *def = NULL;
	int r = 0;

	if (!q->fs.template && (r = template_cache_default(d, &def)) < 0)
		return xerr_set(err, -EIO, "internal", "Cannot read the default template: %s",
				strerror(-r)),
		       r;
	name = strdup(q->fs.template ? q->fs.template : def);
	if (!name)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory"), -ENOMEM;
	if (strcmp(name, TEMPLATE_HOST) != 0) {
		r = template_name_valid(name) ? template_load(d->catalog_fd, name, &q->fs.tpl, &why)
					      : -ENOENT;
		if (r == -ENOENT)
			return xerr_set(err, -ENOENT, "not_found",
					"No such template: %s (xtemplate list shows this "
					"node's; host is built in)",
					name),
			       r;
		if (r < 0)
			return xerr_set(err, -EIO, "internal", "Template %s cannot be used: %s",
					name, why ? why : strerror(-r)),
			       r;
	}
	q->fs.tpl_name = TAKE_PTR(name);
	return 0;
}

/* The template's environment, then the user's items (which win). */
static int template_env(const struct template_info *tpl, char **env, char ***ret)
{
	_cleanup_strv_free_ char **v = NULL;
	int r = 0;

	for (size_t i = 0; r >= 0 && tpl && tpl->env && tpl->env[i]; i++) {
		size_t kl = strcspn(tpl->env[i], "=");
		bool mine = false;

		for (size_t k = 0; env && env[k] && !mine; k++)
			mine = !strncmp(env[k], tpl->env[i], kl) && env[k][kl] == '=';
		if (!mine)
			r = strv_push(&v, strdup(tpl->env[i]));
	}
	for (size_t i = 0; r >= 0 && env && env[i]; i++)
		r = strv_push(&v, strdup(env[i]));
	if (r < 0)
		return r;
	*ret = TAKE_PTR(v);
	return 0;
}

/* The home directory of the job's account (unless a volume is mounted there
 * or it is not there), then the volumes asked for: opened as the submitter
 * (root: as root), the home as that account (left out when it cannot be). */
static int open_volumes(struct daemon *d, struct conn *c, struct run_req *q, struct job *j,
			struct xerr *err)
{
	_cleanup_free_ char *why = NULL;
	const char *bad = NULL;
	/* (a home that is not there, as nobody's, costs no helper process) */
	bool home = d->cfg->mount_home && !q->fs.no_home && !j->shifted_user && j->home &&
		    access(j->home, F_OK) == 0 && volume_check_target(j->home, &bad) >= 0;
	int r = 0;

	for (size_t i = 0; home && i < q->fs.n_volumes; i++)
		home = strcmp(q->fs.volumes[i].dst, j->home) != 0;
	if (home)
		r = job_add_volume(j, j->home, j->home, false, true);
	for (size_t i = 0; r >= 0 && i < q->fs.n_volumes; i++)
		r = job_add_volume(j, q->fs.volumes[i].src, q->fs.volumes[i].dst,
				   q->fs.volumes[i].ro, false);
	if (r < 0)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory"), -ENOMEM;
	r = volume_open_job(d, j, false, &why);
	if (r < 0)
		xerr_set(err, r,
			 r == -EPERM || r == -EACCES ? "permission_denied" : "invalid_argument",
			 "%s", why ? why : strerror(-r));
	return r;
}

/* The unit's working directory: asked for, else where xrun was run when that
 * is inside a volume (cd project && xrun make), else the job's default. */
static char *unit_cwd(const struct job *j, const struct run_req *q)
{
	char *cwd;

	if (q->workdir)
		return strdup(q->workdir);
	cwd = volume_map_cwd(j, q->fs.cwd);
	if (!cwd && q->fs.tpl && q->fs.tpl->workdir)
		cwd = strdup(q->fs.tpl->workdir);
	return cwd;
}

/* The job could not start: it fails, its xruns waiting for the start hear why
 * (what failed and the error; r 0: what says it all). */
void ops_start_failed(struct daemon *d, struct job *j, const char *what, int r)
{
	_cleanup_free_ char *lxc_err = NULL;

	if (r == -ECANCELED && read_file_at(j->dirfd, "prestart.err", 4096, &lxc_err, NULL) < 0)
		lxc_err = strdup("failed");
	else if (r == -ECHILD)
		lxc_err = container_start_error(d, j);

	job_close_volume_fds(j);
	j->state = JOB_FAILED;
	j->ended_us = now_usec();
	free(j->reason);
	j->reason = lxc_err  ? xstrdup_printf("%s: %s", what, lxc_err)
		    : r == 0 ? strdup(what)
			     : xstrdup_printf("%s: %s", what, strerror(-r));
	if (j->n_units) {
		j->units[0].state = UNIT_FAILED;
		j->units[0].ended_us = j->ended_us;
	}
	log_error("Failed to start job %s: %s", j->id, j->reason);
	(void)daemon_persist_job(d, j);
	for (struct conn *c = d->conns; c; c = c->next)
		if (c->mode == CONN_STARTING && c->job == j) {
			conn_reply_error(c, "internal", "Failed to start the job: %s", j->reason);
			conn_kick(d, c); /* (this may be long after its request) */
		}
	daemon_job_gone(d, j);
}

/* Prepare the job and fork the child that starts its container; the rest
 * happens when that child ends (ops_start_done): xosd serves others meanwhile. */
int ops_start_job(struct daemon *d, struct job *j, char **env, const char *cwd, bool tty)
{
	_cleanup_free_ char *err = NULL;
	int r;

	container_engine_choose(d, j);
	if ((r = ops_make_job_dirs(d, j)) < 0)
		return ops_start_failed(d, j, "creating the job directory", r), r;
	if ((r = daemon_persist_job(d, j)) < 0)
		return ops_start_failed(d, j, "persisting the job", r), r;
	if ((r = rootfs_job_mount(d, j)) < 0)
		return ops_start_failed(d, j, "mounting the job's root", r), r;
	if ((r = volume_stage(d, j, &err)) < 0)
		return ops_start_failed(d, j, err ? err : "mounting the job's volumes",
					err ? 0 : r),
		       r;
	if ((r = container_create(d, j)) < 0)
		return ops_start_failed(d, j, "writing the container config", r), r;
	if ((r = container_write_unit_spec(d, j, 1, j->units[0].argv, env, cwd, tty)) < 0)
		return ops_start_failed(d, j, "writing the unit request", r), r;
	/* listening before the loader runs: its first report needs no retry */
	if ((r = notify_listen(d, j)) < 0)
		return ops_start_failed(d, j, "creating the job's notify socket", r), r;
	if ((r = container_start(d, j, &j->starter, &j->starter_fd)) == -EIO)
		return ops_start_failed(d, j,
					"starting the container: the container spawner gave no "
					"answer (xosd's log says more)",
					0),
		       r;
	if (r < 0)
		return ops_start_failed(d, j, "starting the container", r), r;
	if (j->starter_fd < 0 || daemon_epoll_add(d, j->starter_fd, EPOLLIN, EP_STARTER, j) < 0)
		ops_start_done(d, j); /* no pidfd: wait for the starter here */
	return 0;
}

/* The first unit's environment (the template's, then the request's) and
 * working directory. */
static int start_spec(struct job *j, const struct run_req *q, char ***ret_env, char **ret_cwd)
{
	_cleanup_strv_free_ char **env = NULL;
	int r = template_env(q->fs.tpl, q->env, &env);

	if (r < 0)
		return r;
	*ret_cwd = unit_cwd(j, q);
	*ret_env = TAKE_PTR(env);
	return 0;
}

static int start_job(struct daemon *d, struct run_req *q, struct job *j)
{
	_cleanup_strv_free_ char **env = NULL;
	_cleanup_free_ char *cwd = NULL;
	int r = start_spec(j, q, &env, &cwd);

	if (j->from_pool)
		return pool_start(d, j, r, env, cwd, q->tty);
	if (r < 0)
		return ops_start_failed(d, j, "writing the unit request", r), r;
	return ops_start_job(d, j, env, cwd, q->tty);
}

void ops_start_done(struct daemon *d, struct job *j)
{
	int status = 0, r;

	if (j->starter_fd >= 0)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, j->starter_fd, NULL);
	closep(&j->starter_fd);
	status = container_start_wait(d, j->starter);
	j->starter = 0;
	if (j->pooled)
		return pool_started(d, j, status);
	/* liblxc may call a start failed whose container already ran and ended
	 * (it saw STOPPED, not RUNNING): the loader having spoken proves it ran */
	if (WIFEXITED(status) && WEXITSTATUS(status) == CONTAINER_START_HOOK_FAILED)
		return ops_start_failed(d, j, "a prestart hook", -ECANCELED);
	/* a start whose answer was lost (the spawner died meanwhile: taken as
	 * failed) may have brought the container up; its starter has ended, so
	 * it runs now or never will: a job that runs is not failed */
	if ((!WIFEXITED(status) || WEXITSTATUS(status) != 0) && j->init_pid <= 0 &&
	    job_is_live(j)) {
		if (container_attach(d, j) < 0)
			return ops_start_failed(d, j, "starting the container", -ECHILD);
		log_warn("Job %s: its start was said to fail, but its container runs", j->id);
	}
	r = container_started(d, j);
	if (j->init_pid > 0) /* requests (signals) may have come while it started */
		kill(j->init_pid, SIGUSR1);
	if (job_is_live(j)) {
		j->state = JOB_RUNNING;
		j->started_us = now_usec();
		j->units[0].started_us = j->started_us;
		if ((r = daemon_persist_job(d, j)) < 0)
			log_warn("Failed to persist job %s: %s", j->id, strerror(-r));
	}
	ops_start_seen(d, j, true);
}

/* Its container runs (recorded): watched, and its xruns hear of it (flush:
 * sent now; else by the request being handled, which must not free them). */
void ops_start_seen(struct daemon *d, struct job *j, bool flush)
{
	int r;

	if (j->pidfd >= 0 && (r = daemon_watch_job(d, j)) < 0)
		log_error("Failed to watch job %s: %s", j->id, strerror(-r));
	for (struct conn *c = d->conns, *next; c; c = next) {
		next = c->next;
		if (c->mode == CONN_STARTING && c->job == j) {
			ops_reply_started(d, c);
			if (flush)
				conn_event(d, c, 0); /* flushes and may free c */
		}
	}
	if (j->pidfd < 0) /* it ran and ended already (or vanished) */
		daemon_job_gone(d, j);
}

static void reply_run(struct daemon *d, struct conn *c, struct job *j, unsigned unit, bool attach,
		      bool tty);

void ops_reply_started(struct daemon *d, struct conn *c)
{
	reply_run(d, c, c->job, 1, c->attach_when_started, c->wants_tty);
}

static void reply_run(struct daemon *d, struct conn *c, struct job *j, unsigned unit, bool attach,
		      bool tty)
{
	_cleanup_gen_ yajl_gen g = ops_reply_begin();

	if (!g)
		return;
	json_gen_kv_str(g, "job", j->id);
	json_gen_kv_uint(g, "unit", unit);
	if (unit == 1 && j->start_warning)
		json_gen_kv_str(g, "warning", j->start_warning);
	if (j->state == JOB_QUEUED) { /* it starts when the scheduler says */
		json_gen_kv_str(g, "state", job_state_to_string(j->state));
		json_gen_kv_str(g, "reason", j->reason);
	}
	conn_send_map(c, g);
	c->wants_tty = tty;
	if (attach)
		conn_attach(d, c, j, unit, true);
	else
		c->mode = CONN_CLOSING;
}

static int add_unit(struct daemon *d, struct conn *c, struct run_req *q, struct xerr *err)
{
	_cleanup_strv_free_ char **env = NULL;
	_cleanup_free_ char *cwd = NULL;
	struct job *j;
	struct unit *u;
	int r;

	if ((r = ops_lookup(d, c, q->job, &j, err)) < 0 ||
	    (r = grid_owner_only(c, j, "run commands in it", err)) < 0)
		return r;
	if (q->name || q->fs.template || q->limits_given || q->fs.disk || q->fs.files ||
	    q->fs.log_size || q->fs.n_volumes || q->net.mode || q->net.ip || q->net.group ||
	    q->net.ports || q->ckpt_given || q->sched_given) {
		return xerr_set(
			err, -EINVAL, "invalid_argument",
			"--name, --template, limits, disk and log limits, volumes, the network, "
			"checkpoint and scheduling settings belong to the job; not allowed with "
			"--job");
	}
	if (j->state != JOB_RUNNING || j->closing) {
		return xerr_set(err, -EBUSY, "conflict",
				"Job %.12s is %s; units can only be added to a running job", j->id,
				job_state_to_string(j->state));
	}
	if (q->tty && !j->tty) {
		return xerr_set(
			err, -EINVAL, "invalid_argument",
			"Job %.12s has no terminals: only a job started with -t can add units "
			"with -t",
			j->id);
	}
	if (q->user && strcmp(q->user, j->user) != 0) {
		return xerr_set(err, -EINVAL, "invalid_argument", "All units of a job run as %s",
				j->user);
	}
	u = job_add_unit(j, TAKE_PTR(q->argv));
	if (!u)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	u->started_us = now_usec();
	r = template_cache_job_info(d, j, &q->fs.tpl);
	cwd = unit_cwd(j, q);
	if (r < 0 || (r = template_env(q->fs.tpl, q->env, &env)) < 0 ||
	    (r = daemon_persist_job(d, j)) < 0 ||
	    (r = container_write_unit_spec(d, j, u->n, u->argv, env, cwd, q->tty)) < 0) {
		u->state = UNIT_FAILED;
		u->reason = xstrdup_printf("Failed to hand the unit to the loader: %s",
					   strerror(-r));
		(void)daemon_persist_job(d, j);
		return xerr_set(err, -EIO, "internal", "%s", u->reason);
	}
	reply_run(d, c, j, u->n, q->attach, q->tty);
	return 0;
}

/* xosd.conf's cgroup_parent; for "caller" the caller's own cgroup where
 * DECISIONS.md (ag) accepts it, else LXC's default place (NULL). */
char *ops_cgroup_parent(struct daemon *d, struct conn *c, bool *ret_caller)
{
	const char *p = d->cfg->cgroup_parent;
	char *parent = NULL;
	bool slurm = false;
	int r;

	if (!p || strcmp(p, RUNTIME_CGROUP_PARENT_CALLER) != 0)
		return p ? strdup(p) : NULL;
	r = runtime_cgroup_caller(c->pid, c->uid, d->cg == &runtime_cgroup_v2, &parent, &slurm);
	if (r < 0) {
		log_info("Job of uid %u (pid %d) goes to the default cgroup: its caller's cgroup "
			 "cannot hold it (%s)",
			 (unsigned)c->uid, (int)c->pid,
			 r == -ENOENT  ? "a root cgroup"
			 : r == -EPERM ? "neither a Slurm step's nor delegated to the caller"
				       : strerror(-r));
		return NULL;
	}
	log_debug("Job of uid %u (pid %d) nests under its caller's cgroup %s%s", (unsigned)c->uid,
		  (int)c->pid, parent, slurm ? " (a Slurm step)" : " (delegated)");
	*ret_caller = true;
	return parent;
}

/* The new job's record from the request (its template resolved). */
static struct job *new_job(struct daemon *d, struct conn *c, struct run_req *q, struct xerr *err)
{
	struct job *j = job_new();

	if (!j || random_job_id(j->id) < 0) {
		xerr_set(err, -ENOMEM, "internal", "Out of memory");
		job_free(j);
		return NULL;
	}
	j->owner_uid = c->uid;
	j->limits = q->limits;
	j->name = q->name ? strdup(q->name) : NULL;
	j->tty = q->tty;
	j->ckpt = q->ckpt;
	j->template = TAKE_PTR(q->fs.tpl_name);
	j->cgroup_parent = ops_cgroup_parent(d, c, &j->cg_caller);
	j->state = JOB_STARTING;
	j->created_us = now_usec();
	j->disk = q->fs.disk ? q->fs.disk : d->cfg->layer_size;
	j->files = q->fs.files ? q->fs.files : d->cfg->layer_inodes;
	j->log_size = q->fs.log_size ? q->fs.log_size : d->cfg->log_size_default;
	return j;
}

/* Root's job on a template that names its user runs as that user; any other
 * as --user or the caller. */
static int job_account(struct daemon *d, struct conn *c, struct run_req *q, struct job *j,
		       struct xerr *err)
{
	if (c->grid)
		return grid_job_account(d, c, q->user, j, err);
	if (c->uid == 0 && !q->user && q->fs.tpl && q->fs.tpl->user)
		return template_user(d, c, q, j, err);
	return resolve_user(d, c, q->user, j, err);
}

static int check_ckpt_net(struct daemon *d, struct conn *c, const struct run_req *q,
			  const struct job *j, struct xerr *err)
{
	const char *why;

	if (j->net.mode == NETSETUP_BRIDGE && (q->ckpt.every_us || q->ckpt.restart_on_failure) &&
	    ckpt_bridge_allowed(d->ckpt, &why) < 0) {
		xerr_set(err, -EOPNOTSUPP, "not_supported",
			 "Jobs with --net bridge cannot be checkpointed on this node: %s; "
			 "drop --net bridge or the checkpoint options",
			 why);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int add_first_unit(struct conn *c, const struct run_req *q, struct job *j, struct xerr *err)
{
	if (!job_add_unit(j, strv_copy(q->argv)) || template_cache_keep_on_job(j, q->fs.tpl) < 0) {
		xerr_set(err, -ENOMEM, "internal", "Out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* The job's own slice of root's subordinate ids. */
static int claim_ids(struct daemon *d, struct conn *c, struct job *j, struct xerr *err)
{
	int r = slice_claim(d, j);

	if (r == -ENOSPC && d->n_slices < 2)
		xerr_set(err, -EBUSY, "conflict",
			 "No container ids for jobs: root's ranges in /etc/subuid and "
			 "/etc/subgid hold no slice of %u ids besides the shared one; give "
			 "root a larger range (scripts/setup.sh adds one, see xosd(8))",
			 d->subuid_size);
	else if (r == -ENOSPC)
		xerr_set(err, -EBUSY, "conflict",
			 "No free slice of container ids: all %u are in use (by running "
			 "jobs and by jobs with checkpoint versions); try again when a job "
			 "has ended, delete checkpoint versions (xcheckpoint --delete), or "
			 "give root a larger range in /etc/subuid and /etc/subgid",
			 d->n_slices - 1);
	else if (r < 0)
		xerr_set(err, -EIO, "internal", "Cannot lease container ids: %s", strerror(-r));
	return r;
}

/* Queue the new job with what its first unit gets when it starts. */
static int queue_new(struct daemon *d, struct conn *c, const struct run_req *q, struct job *j,
		     struct xerr *err)
{
	int r = start_spec(j, q, &j->sched.start_env, &j->sched.start_cwd);

	if (r < 0)
		return xerr_set(err, r, "internal", "Out of memory");
	return queue_submit(d, c, j, err);
}

/* Whether the scheduler lets the new job start at once (1), or queues it
 * (0: ids and network are taken when it starts). */
static int admit(struct daemon *d, struct job *j, struct xerr *err)
{
	int r = queue_admit(d, j);

	if (r < 0)
		return xerr_set(err, r, "internal", "Cannot schedule the job: %s", strerror(-r));
	return r;
}

/* The job of a new request: template, account, network, first unit,
 * volumes and, when it starts at once, ids; NULL when it cannot run
 * (err set). A queued job's record is on disk before it is answered. */
static struct job *prepare_job(struct daemon *d, struct conn *c, struct run_req *q,
			       struct xerr *err)
{
	const struct vo_run how = { .limits_given = q->limits_given,
				    .disk_given = q->fs.disk != 0,
				    .group_given = q->net.group != NULL };
	struct job *j;
	int now = 0;

	if (resolve_template(d, c, q, err) < 0 || !(j = new_job(d, c, q, err)))
		return NULL;
	j->sched = q->sched;
	q->sched = (struct job_sched){ 0 };
	/* (volumes and ids before the network: a refused one leaves no lease behind) */
	if (job_account(d, c, q, j, err) < 0 || parse_net(d, c, q, &j->net, err) < 0 ||
	    check_ckpt_net(d, c, q, j, err) < 0 || add_first_unit(c, q, j, err) < 0 ||
	    open_volumes(d, c, q, j, err) < 0 || vo_check_run(d, c, j, &how, err) < 0 ||
	    (now = admit(d, j, err)) < 0 ||
	    (now && !pool_claim(d, j) &&
	     (claim_ids(d, c, j, err) < 0 || setup_net(d, c, j, err) < 0)) ||
	    (!now && queue_new(d, c, q, j, err) < 0)) {
		slice_release(d, j);
		job_free(j);
		return NULL;
	}
	return j;
}

static void run_req_done(struct run_req *q)
{
	struct job tmp = { .sched = q->sched };

	queue_job_free(&tmp);
	strv_free(q->argv);
	strv_free(q->env);
	strv_free(q->net.ports);
	free(q->fs.tpl_name);
	template_info_free(q->fs.tpl);
}

int ops_run(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	_cleanup_(run_req_done) struct run_req q = { .limits = { d->cfg->default_memory,
								 d->cfg->default_millicpus,
								 d->cfg->default_pids } };
	struct job *j;
	int r;

	if ((r = parse_run(c, t, &q, err)) < 0 || (r = validate_run(d, c, &q, err)) < 0)
		return r;
	q.sched_given = queue_fields_given(t);
	if (q.job)
		return add_unit(d, c, &q, err);
	if ((r = queue_parse_run(d, c, t, &q.sched, err)) < 0)
		return r;
	j = prepare_job(d, c, &q, err);
	if (!j)
		return xerr_is_set(err) ? err->error
					: xerr_set(err, -ENOMEM, "internal", "Out of memory");
	daemon_job_link(d, j);
	if (j->state == JOB_QUEUED) { /* answered now; attached, it waits for the start */
		reply_run(d, c, j, 1, q.attach, q.tty);
		return 0;
	}
	c->mode = CONN_STARTING; /* answered once the container runs */
	c->job = j;
	c->attach_when_started = q.attach;
	c->kill_job_on_close = j->cg_caller && q.attach;
	c->wants_tty = q.tty;
	(void)start_job(d, &q, j);
	return 0;
}
