/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The liblxc engine of job containers (container.c's interface): each job's
 * LXC configuration, its start through liblxc (whose monitor stays with the
 * container), its init found again through liblxc after a restart of xosd,
 * and what liblxc leaves (the config directory, lock files). Checkpoints of
 * its containers go through liblxc's migrate API (ckpt/, container_handle). */
#include <fcntl.h>
#include <lxc/lxccontainer.h>
#include <signal.h>
#include <sys/stat.h>

#include "runtime/runtime-internal.h"

#define CONFIG_MAX 16384
/* pseudo-terminals a job may hold at once (its devpts' max=) */
#define JOB_PTY_MAX "256"

static int cfg_add(char *buf, size_t *off, const char *k, const char *v)
{
	int r = snprintf(buf + *off, CONFIG_MAX - *off, "%s = %s\n", k, v);

	if (r < 0 || (size_t)r >= CONFIG_MAX - *off)
		return -E2BIG;
	*off += (size_t)r;
	return 0;
}

/* The job's slice of root's ids, its own ids mapped to themselves. */
static int cfg_idmap(const struct job *j, char *buf, size_t *off)
{
	struct runtime_idmap_entry u[80], g[80];
	size_t nu = 0, ng = 0;
	int r = slice_job_maps(j, u, &nu, g, &ng, ELEMENTSOF(u));

	for (size_t i = 0; r >= 0 && i < nu + ng; i++) {
		const struct runtime_idmap_entry *e = i < nu ? &u[i] : &g[i - nu];
		char v[96];

		snprintf(v, sizeof(v), "%c %u %u %u", i < nu ? 'u' : 'g', e->inside, e->outside,
			 e->count);
		r = cfg_add(buf, off, "lxc.idmap", v);
	}
	return r;
}

/* The container's place in the cgroup tree is a parameter (the job's
 * cgroup_parent), not a constant. */
static int cfg_cgroup_dirs(struct job *j, char *buf, size_t *off)
{
	struct runtime_cgroup_paths p;
	char name[64];
	int r;

	if (!j->cgroup_parent || !j->cgroup_parent[0])
		return 0;
	snprintf(name, sizeof(name), "xos-%s", j->id);
	r = runtime_cgroup_paths(j->cgroup_parent, name, &p);
	if (r >= 0)
		r = cfg_add(buf, off, "lxc.cgroup.dir.container", p.payload);
	return r < 0 ? r : cfg_add(buf, off, "lxc.cgroup.dir.monitor", p.monitor);
}

/* Volumes: bound from their staging mounts (volume_stage), so what was
 * checked is what gets mounted; targets were checked (volume_check_target)
 * and made by xosd (rootfs_job_targets): no entry has LXC's create=, which
 * would make them through symlinks on the host. */
static int cfg_volumes(struct daemon *d, struct job *j, char *buf, size_t *off)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < j->n_volumes; i++) {
		const struct job_volume *v = &j->volumes[i];
		char e[8400], run[4096];

		if (daemon_job_runpath(d, j, NULL, run, sizeof(run)) < 0)
			return -ENAMETOOLONG;
		r = snprintf(e, sizeof(e), "%s/vol/%zu %s none bind%s 0 0", run, i, v->dst + 1,
			     v->ro ? ",ro" : "");
		if (r < 0 || (size_t)r >= sizeof(e))
			return -ENAMETOOLONG;
		r = cfg_add(buf, off, "lxc.mount.entry", e);
	}
	return r;
}

struct cfg_buf {
	char *buf;
	size_t *off;
};

static int cfg_add_net(void *ud, const char *k, const char *v)
{
	struct cfg_buf *b = ud;

	return cfg_add(b->buf, b->off, k, v);
}

/* The job's network (netsetup's backend for its mode) and, in bridge mode,
 * its resolv.conf, written to the job directory and bound read-only. */
static int cfg_net(struct daemon *d, struct job *j, char *buf, size_t *off)
{
	struct cfg_buf b = { buf, off };
	_cleanup_free_ char *warning = NULL;
	_cleanup_free_ char *resolv = netsetup_resolv_conf(d->net, &j->net, &warning);
	_cleanup_close_ int run = -EBADF;
	char v[4096], p[4096];
	int r = netsetup_job_lxc_config(d->net, j->id, &j->net, cfg_add_net, &b);

	if (r < 0 || !resolv)
		return r;
	free(j->start_warning); /* told to the xrun that starts it */
	j->start_warning = TAKE_PTR(warning);
	if (daemon_job_runpath(d, j, "resolv.conf", p, sizeof(p)) < 0)
		return -ENAMETOOLONG;
	run = daemon_job_rundir(d, j, true);
	if (run < 0)
		return run;
	/* ICMP echo (ping) without privileges for the job's group, as docker
	 * allows it (the range must be mapped in the container) */
	snprintf(v, sizeof(v), "%u %u", (unsigned)j->gid, (unsigned)j->gid);
	r = cfg_add(buf, off, "lxc.sysctl.net.ipv4.ping_group_range", v);
	if (r < 0)
		return r;
	r = write_file_atomic_at(run, "resolv.conf", resolv, strlen(resolv), 0644, false);
	if (r < 0)
		return r;
	r = snprintf(v, sizeof(v), "%s etc/resolv.conf none bind,ro 0 0", p);
	if (r < 0 || (size_t)r >= sizeof(v))
		return -ENAMETOOLONG;
	return cfg_add(buf, off, "lxc.mount.entry", v);
}

static int build_config(struct daemon *d, struct job *j, char *buf, size_t *off)
{
	char v[4096], lp[2048] = "";
	struct runtime_cg_item items[8];
	int r, n;

	memcpy(v, j->id, XOS_JOB_ID_SHORT);
	v[XOS_JOB_ID_SHORT] = 0;
	r = cfg_add(buf, off, "lxc.uts.name", j->name ? j->name : v);
	memcpy(v, "dir:", 4);
	if (r >= 0 && daemon_job_runpath(d, j, "rootfs", v + 4, sizeof(v) - 4) < 0)
		r = -ENAMETOOLONG;
	r = r < 0 ? r : cfg_add(buf, off, "lxc.rootfs.path", v);
	r = r < 0 ? r : cfg_add(buf, off, "lxc.rootfs.mount", d->rootfs_mnt);
	/* the job's own ids map to themselves, unless they are a template's */
	r = r < 0 ? r : cfg_idmap(j, buf, off);
	r = r < 0 ? r : cfg_net(d, j, buf, off);
	r = r < 0 ? r : cfg_add(buf, off, "lxc.tty.max", "0");
	/* every job has a devpts instance of its own (gid=5, ptmxmode=0666, and
	 * /dev/ptmx bound to pts/ptmx: LXC's pty.max semantics): script, tmux,
	 * pty.openpty() work, and CRIU dumps and restores it with the mount
	 * namespace, ptys included (no LXC console, no LXC ttys) */
	r = r < 0 ? r : cfg_add(buf, off, "lxc.pty.max", JOB_PTY_MAX);
	r = r < 0 ? r : cfg_add(buf, off, "lxc.console.path", "none");
	r = r < 0 ? r : cfg_add(buf, off, "lxc.autodev", "1");
	r = r < 0 ? r : cfg_add(buf, off, "lxc.mount.auto", "proc:mixed sys:ro");
	snprintf(v, sizeof(v), "%s/jobs/%s/xos .xos none bind 0 0", d->cfg->state_dir, j->id);
	r = r < 0 ? r : cfg_add(buf, off, "lxc.mount.entry", v);
	r = r < 0 ? r : loader_copy_path(d, j, lp, sizeof(lp));
	snprintf(v, sizeof(v), "%s .xos/loader none bind,ro 0 0", lp);
	r = r < 0 ? r : cfg_add(buf, off, "lxc.mount.entry", v);
	r = r < 0 ? r : cfg_volumes(d, j, buf, off);
	snprintf(v, sizeof(v), "%s/xos-%s/lxc.log", d->lxcpath, j->id);
	r = r < 0 ? r : cfg_add(buf, off, "lxc.log.file", v);
	r = r < 0 ? r
		  : cfg_add(buf, off, "lxc.log.level",
			    getenv("XOS_LXC_LOG_LEVEL") ? getenv("XOS_LXC_LOG_LEVEL") : "ERROR");
	r = r < 0 ? r : cfg_cgroup_dirs(j, buf, off);
	n = d->cg->limits(&j->limits, items, ELEMENTSOF(items));
	if (r >= 0 && n < 0)
		r = n;
	for (int i = 0; r >= 0 && i < n; i++)
		r = cfg_add(buf, off, items[i].key, items[i].value);
	return r;
}

int container_name(struct job *j, char *buf, size_t len)
{
	int r = snprintf(buf, len, "xos-%s", j->id);

	return r < 0 || (size_t)r >= len ? -ENAMETOOLONG : 0;
}

static int lxc_create(struct daemon *d, struct job *j)
{
	_cleanup_free_ char *buf = malloc(CONFIG_MAX);
	_cleanup_close_ int lxc = -EBADF, dir = -EBADF;
	char name[64];
	size_t off = 0;
	int r;

	if (!buf)
		return -ENOMEM;
	r = build_config(d, j, buf, &off);
	if (r < 0)
		return r;
	container_name(j, name, sizeof(name));
	lxc = open(d->lxcpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lxc < 0)
		return -errno;
	if (mkdirat(lxc, name, 0711) < 0 && errno != EEXIST)
		return -errno;
	dir = open_dir_at(lxc, name);
	if (dir < 0)
		return dir;
	return write_file_atomic_at(dir, "config", buf, off, 0600, false);
}

/* The handle of job id's container under lxcpath (detach: to start it,
 * daemonized, every fd closed); NULL */
static struct lxc_container *handle_at(const char *lxcpath, const char *id, bool detach)
{
	struct lxc_container *c;
	char name[64];

	if (snprintf(name, sizeof(name), "xos-%s", id) >= (int)sizeof(name))
		return NULL;
	c = lxc_container_new(name, lxcpath);
	if (c && detach) {
		c->want_daemonize(c, true);
		c->want_close_all_fds(c, true);
	}
	return c;
}

struct lxc_container *container_handle(struct daemon *d, struct job *j, bool detach)
{
	return handle_at(d->lxcpath, j->id, detach);
}

static int open_handle(struct daemon *d, struct job *j)
{
	if (!j->c)
		j->c = container_handle(d, j, false);
	return j->c ? 0 : -ENOMEM;
}

static int open_pidfd(struct job *j)
{
	return container_take_init(j, j->c->init_pid(j->c));
}

/* liblxc's start moves the calling process into the container's monitor
 * cgroup and leaves its signal state to the monitor; so it runs in the
 * short-lived child container_start forks (the spawner's, else xosd's own),
 * and xosd itself stays where it is. The child first closes every fd it
 * inherited (liblxc would close them one by one, rescanning /proc/self/fd
 * each time) and takes a handle of its own. */
static _noreturn_ void lxc_start_child(const struct container_start_args *a)
{
	/* a pooled container's loader waits for the unit of the job that claims it */
	char *argv[] = { "/.xos/loader", a->pooled ? "-w" : (char *)a->id,
			 a->pooled ? (char *)a->id : NULL, NULL };
	struct lxc_container *c;

	close_range(3, ~0U, 0);
	c = handle_at(a->lxcpath, a->id, true);
	_exit(c && c->start(c, 0, argv) ? 0 : 1);
}

static int lxc_started(struct daemon *d, struct job *j)
{
	int r = open_handle(d, j);

	return r < 0 ? r : open_pidfd(j);
}

/* The first error LXC logged for the job: usually the cause. */
static char *lxc_start_error(struct daemon *d, struct job *j)
{
	_cleanup_close_ int lxc = open(d->lxcpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int dir = -EBADF;
	_cleanup_free_ char *log = NULL;
	char *line, *save = NULL, name[64];

	container_name(j, name, sizeof(name));
	dir = lxc >= 0 ? open_dir_at(lxc, name) : -EBADF;
	if (dir < 0 || read_file_at(dir, "lxc.log", 1 << 20, &log, NULL) < 0)
		return NULL;
	for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *msg = strstr(line, " ERROR ");

		if (!msg || !(msg = strstr(msg, " - ")) || !(msg = strstr(msg + 3, " - ")))
			continue;
		return strdup(msg + 3);
	}
	return NULL;
}

static int lxc_attach(struct daemon *d, struct job *j)
{
	int r = open_handle(d, j);

	if (r < 0)
		return r;
	if (!j->c->is_running(j->c))
		return -ESRCH;
	return open_pidfd(j);
}

static bool lxc_running(struct job *j)
{
	return j->c && j->c->is_running(j->c);
}

static void lxc_release(struct job *j)
{
	if (j->c)
		lxc_container_put(j->c);
	j->c = NULL;
}

/* liblxc's lock file of a container: /run/lxc/lock/<lxcpath>/.<name> */
#define LXC_LOCK_DIR "/run/lxc/lock"

static void lxc_remove(struct daemon *d, struct job *j)
{
	_cleanup_close_ int lxc = open(d->lxcpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char name[64], lock[4096];

	container_name(j, name, sizeof(name));
	if (lxc >= 0)
		rm_rf_at(lxc, name);
	snprintf(lock, sizeof(lock), LXC_LOCK_DIR "%s/.%s", d->lxcpath, name);
	unlink(lock);
}

void container_remove_lock_dirs(struct daemon *d)
{
	char dir[4096];
	char *slash;

	snprintf(dir, sizeof(dir), LXC_LOCK_DIR "%s", d->lxcpath);
	/* the lxcpath's directories below /run/lxc/lock, deepest first, while empty */
	while (strlen(dir) > strlen(LXC_LOCK_DIR) && rmdir(dir) == 0 && (slash = strrchr(dir, '/')))
		*slash = 0;
}

const struct container_engine container_engine_lxc = {
	.name = "lxc",
	.create = lxc_create,
	.start_child = lxc_start_child,
	.started = lxc_started,
	.attach = lxc_attach,
	.running = lxc_running,
	.release = lxc_release,
	.remove = lxc_remove,
	.start_error = lxc_start_error,
};
