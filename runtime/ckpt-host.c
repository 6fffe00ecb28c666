/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The checkpoint module (ckpt/ckpt.h) in the daemon: what ckpt asks of xosd
 * (struct ckpt_host: the job's record, container, root, network, event loop
 * and waiting clients) and the requests that reach it (xcheckpoint,
 * xrestart). ckpt never calls into runtime/ but through this table. */
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "runtime/runtime-internal.h"

/* ---- the daemon's side of a restore ---- */

/* The spool as it was at the version; no request left for the loader. */
static int restore_spool(struct job *j, int vfd)
{
	_cleanup_close_ int xos = open_dir_at(j->dirfd, "xos");
	int r;

	if (xos < 0)
		return xos;
	closep(&j->spoolfd);
	if ((r = rm_rf_at(xos, "spool")) < 0 || (r = rm_rf_at(xos, "in")) < 0)
		return r;
	r = copy_tree_at(vfd, "spool", xos, "spool", NULL);
	if (r < 0)
		return r;
	if (mkdirat(xos, "in", 0700) < 0 ||
	    fchownat(xos, "in", j->idmap_base, j->idmap_gid_base, 0) < 0)
		return -errno;
	return 0;
}

/* LXC's cgroups of the job's last container must be gone before it makes new ones. */
static int prune_cgroups_now(struct job *j)
{
	struct runtime_cgroup_paths p;
	char name[64];
	int r = -EBUSY;

	container_name(j, name, sizeof(name));
	if (runtime_cgroup_paths(j->cgroup_parent, name, &p) < 0)
		return 0;
	for (int i = 0; i < 100 && (r = runtime_cgroup_prune(&p)) == -EBUSY; i++)
		usleep(20000);
	j->cg_prune_tries = 0;
	return r == -EBUSY ? r : 0;
}

static int restore_failed(struct xerr *err, int r, const char *what, const char *detail)
{
	return xerr_set(err, r, "restart_failed", "%s: %s", what, detail ? detail : strerror(-r));
}

/* The restart of the newest version of an ended job whose root and layer
 * were kept: the layer rolled back in place to the version's copy, the same
 * device and inode numbers (DECISIONS (ao)); false: copy it instead. */
static bool layer_rolled_back(struct daemon *d, struct job *j, int vfd)
{
	int r;

	if (!j->kept) {
		rootfs_job_unkeep(j);
		return false;
	}
	rootfs_job_umount(d, j); /* (nothing is mounted there; to be sure) */
	r = rootfs_job_rollback(d, j, vfd);
	rootfs_job_unkeep(j);
	if (r >= 0) {
		log_info("Job %s: its kept layer was rolled back in place to the version", j->id);
		return true;
	}
	log_info("Job %s: its kept layer cannot be rolled back in place (%s); the version's layer "
		 "is copied",
		 j->id, r == -EXDEV ? "the lower layers show through differently" : strerror(-r));
	return false;
}

static int host_loader_file(void *data, const struct job *j, char *buf, size_t len)
{
	return loader_copy_file(data, j, buf, len);
}

static int host_restore_prepare(void *data, struct job *j, int vfd, struct xerr *err)
{
	struct daemon *d = data;
	_cleanup_free_ char *detail = NULL;
	bool in_place;
	int r;

	if (d->restore_caller) /* below the restoring client's cgroup, as a new job */
		daemon_restore_cgroup(d, d->restore_caller, j);
	if ((r = daemon_job_dir(d, j)) < 0)
		return restore_failed(err, r, "opening the job's directory", NULL);
	if ((r = restore_spool(j, vfd)) < 0)
		return restore_failed(err, r, "restoring the spool", NULL);
	/* the restart of the version a job stopped at runs on its own layer and
	 * root, still mounted: same device and inode numbers (DECISIONS (ab)) */
	in_place = j->parked && rootfs_job_kept(d, j);
	if (in_place)
		rootfs_job_unkeep(j);
	else
		in_place = layer_rolled_back(d, j, vfd);
	if (!in_place) {
		rootfs_job_umount(d, j);
		if ((r = rootfs_job_mount_from(d, j, vfd)) < 0)
			return restore_failed(err, r, "restoring the writable layer", NULL);
	}
	j->parked = 0;
	/* the loader its init ran, from the version if this node lacks it (a
	 * move, a recovery, a copy removed): else CRIU finds another file */
	if ((r = loader_copy_adopt(d, j, vfd)) < 0)
		log_warn("Job %s: the loader copy in its version cannot be used (%s): it gets "
			 "this node's loader, which its restore may refuse",
			 j->id, strerror(-r));
	if ((r = volume_restage(d, j, &detail)) < 0)
		return restore_failed(err, r, "mounting the job's volumes", detail);
	/* the same address and ports as before (the record keeps them) */
	if (!j->net.active && (r = netsetup_job_setup(d->net, j->id, &j->net, err)) < 0)
		return restore_failed(err, r, "setting up the job's network again", err->msg);
	if ((r = container_create(d, j)) < 0)
		return restore_failed(err, r, "writing the container config", NULL);
	r = prune_cgroups_now(j);
	if (r >= 0 && getenv("XOS_MIGRATE_FAULT") &&
	    !strcmp(getenv("XOS_MIGRATE_FAULT"), "restore-busy")) /* tests */
		r = -EBUSY;
	if (r < 0)
		return restore_failed(err, r, "removing the cgroups of the job's last container",
				      NULL);
	if (j->notify_fd < 0 && (r = notify_listen(d, j)) < 0)
		return restore_failed(err, r, "creating the job's notify socket", NULL);
	return 0;
}

static void host_restore_undo(void *data, struct job *j, bool keep_net)
{
	struct daemon *d = data;

	if (j->notify_fd >= 0)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, j->notify_fd, NULL);
	closep(&j->notify_fd);
	container_release(j);
	if (!keep_net)
		netsetup_job_release(d->net, j->id, &j->net);
	rootfs_job_umount(d, j);
	container_remove_config(d, j);
	j->cg_prune_tries = 50;
	d->cg_prune_pending = true;
}

/* ---- the job's life ---- */

void daemon_job_discard(struct daemon *d, struct job *j, int sig)
{
	for (size_t i = 0; i < j->n_units; i++)
		if (j->units[i].state == UNIT_RUNNING) {
			j->units[i].state = UNIT_KILLED;
			j->units[i].sig = sig;
			j->units[i].ended_us = now_usec();
		}
	job_finish(j);
	/* a stopped job keeps its network (address, ports), layer and root until
	 * it ends: now; the layer and root are held on for a restart, as those
	 * of any job that ends with a version (rollback.c) */
	netsetup_job_release(d->net, j->id, &j->net);
	rootfs_job_keep(d, j);
	rootfs_job_umount(d, j);
	unlinkat(d->vjobs_fd, j->id, AT_REMOVEDIR);
	j->parked = 0;
	(void)daemon_persist_job(d, j);
	for (size_t i = 0; i < j->n_units; i++)
		conns_unit_ended(d, j, j->units[i].n);
	conns_job_ended(d, j);
	closep(&j->dirfd);
	slice_job_check(d, j); /* (its ids stay while it has versions) */
	d->prune_ended = true;
}

bool daemon_job_recover(struct daemon *d, struct job *j)
{
	_cleanup_close_ int xos = -EBADF;

	if (!j->ckpt.restart_on_failure || j->state != JOB_RUNNING || container_attach(d, j) >= 0)
		return false;
	container_release(j);
	xos = open_dir_at(j->dirfd, "xos");
	if (xos >= 0 && j->spoolfd < 0)
		j->spoolfd = open_dir_at(xos, "spool");
	notify_collect_spool(d, j); /* it may have ended on its own */
	closep(&j->spoolfd);
	return job_is_live(j) && ckpt_recover(d->ckpt, j);
}

void daemon_ckpt_answer(struct daemon *d, struct job *j, const struct xerr *err, yajl_gen g)
{
	queue_ckpt_done(d, j, err); /* (a preemption's checkpoint or restore) */
	for (struct conn *c = d->conns, *next; c; c = next) {
		next = c->next;
		if (c->mode != CONN_CKPT || c->job != j)
			continue;
		c->mode = CONN_REQUEST;
		if (xerr_is_set(err))
			conn_reply_xerr(c, err);
		else if (g)
			conn_send_map(c, g);
		g = NULL; /* one answer per generator */
		c->job = NULL;
		c->mode = CONN_CLOSING;
		conn_event(d, c, 0);
	}
}

/* ---- struct ckpt_host ---- */

static int host_persist(void *data, struct job *j)
{
	return daemon_persist_job(data, j);
}

static int host_runpath(void *data, const struct job *j, const char *sub, char *buf, size_t len)
{
	return daemon_job_runpath(data, j, sub, buf, len);
}

static struct lxc_container *host_handle(void *data, struct job *j, bool detach)
{
	return container_handle(data, j, detach);
}

static int host_signal(void *data, struct job *j, int sig)
{
	return container_signal(data, j, 0, sig);
}

static bool host_running(void *data, struct job *j)
{
	return container_running(j);
}

static int host_accounting(void *data, struct job *j, struct runtime_accounting *ret)
{
	return container_accounting(data, j, ret);
}

static int host_dump_memory(void *data, struct job *j, uint64_t *ret_anon, uint64_t *ret_shmem)
{
	return container_dump_memory(data, j, ret_anon, ret_shmem);
}

static int host_layer_usage(void *data, struct job *j, uint64_t *ret_bytes, uint64_t *ret_files)
{
	return rootfs_job_usage(data, j, ret_bytes, ret_files);
}

static int host_cgroup_paths(void *data, struct job *j, struct runtime_cgroup_paths *ret)
{
	char name[64];
	int r = container_name(j, name, sizeof(name));

	return r < 0 ? r : runtime_cgroup_paths(j->cgroup_parent, name, ret);
}

static int host_watch_child(void *data, struct job *j, int pidfd)
{
	return daemon_epoll_add(data, pidfd, EPOLLIN, EP_CKPT, j);
}

static void host_unwatch(void *data, int fd)
{
	struct daemon *d = data;

	epoll_ctl(d->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static int host_restored(void *data, struct job *j)
{
	return container_started(data, j);
}

static int host_watch(void *data, struct job *j)
{
	return daemon_watch_job(data, j);
}

static void host_collect_spool(void *data, struct job *j)
{
	notify_collect_spool(data, j);
}

static void host_unlock_network(void *data, struct job *j)
{
	struct daemon *d = data;
	int r;

	if (j->pidfd < 0 && j->init_pid <= 0)
		return;
	r = netsetup_drop_criu_lock(d->net, j->pidfd, j->init_pid);
	if (r > 0)
		log_warn("Job %s: removed the network lock its aborted checkpoint left", j->id);
	else if (r < 0 && r != -ESRCH && r != -ENOENT)
		log_warn(
			"Job %s: could not look for a network lock its aborted checkpoint left: %s",
			j->id, strerror(-r));
}

static void host_stopped(void *data, struct job *j)
{
	daemon_job_cleanup(data, j);
}

static void host_gone(void *data, struct job *j)
{
	daemon_job_gone(data, j);
}

static void host_discard(void *data, struct job *j, int sig)
{
	daemon_job_discard(data, j, sig);
}

static int host_settle(void *data, struct job *j)
{
	return daemon_job_settle(data, j);
}

static void host_versions_changed(void *data, struct job *j)
{
	struct daemon *d = data;
	_cleanup_free_ unsigned *v = NULL;
	size_t n = 0;
	bool have = false;

	/* a kept layer serves the restart of one version: gone with it */
	if (j->kept && ckpt_job_versions(d->ckpt, j, &v, &n) >= 0)
		for (size_t i = 0; i < n; i++)
			have = have || v[i] == j->kept;
	if (j->kept && !have)
		rootfs_job_unkeep(j);
	slice_job_check(data, j);
}

static void host_answer(void *data, struct job *j, const struct xerr *err, yajl_gen g)
{
	if (migrate_answer(data, j, err)) /* a migration's dump or restore */
		return;
	daemon_ckpt_answer(data, j, err, g);
}

static yajl_gen host_reply_begin(void *data)
{
	return ops_reply_begin();
}

static const struct ckpt_host daemon_ckpt_host = {
	.persist = host_persist,
	.runpath = host_runpath,
	.handle = host_handle,
	.signal = host_signal,
	.running = host_running,
	.accounting = host_accounting,
	.dump_memory = host_dump_memory,
	.layer_usage = host_layer_usage,
	.cgroup_paths = host_cgroup_paths,
	.watch_child = host_watch_child,
	.unwatch = host_unwatch,
	.restore_prepare = host_restore_prepare,
	.loader_file = host_loader_file,
	.unlock_network = host_unlock_network,
	.restore_undo = host_restore_undo,
	.restored = host_restored,
	.watch = host_watch,
	.collect_spool = host_collect_spool,
	.stopped = host_stopped,
	.gone = host_gone,
	.discard = host_discard,
	.settle = host_settle,
	.versions_changed = host_versions_changed,
	.answer = host_answer,
	.reply_begin = host_reply_begin,
};

int daemon_ckpt_setup(struct daemon *d)
{
	struct ckpt_setup s = { .cfg = d->cfg,
				.host = &daemon_ckpt_host,
				.data = d,
				.jobs = &d->jobs,
				.self_exe = d->self_exe,
				.cgroup_v2 = d->cg == &runtime_cgroup_v2 };

	return ckpt_new(&s, &d->ckpt);
}

/* ---- requests ---- */

static int get_version(yajl_val t, unsigned *ret, struct xerr *err)
{
	uint64_t v = 0;
	int r = json_get_uint(t, "version", &v);

	if (r == -ENOENT)
		return *ret = 0, 0;
	if (r < 0 || v == 0 || v > 1000000000)
		return xerr_set(err, -EINVAL, "bad_request",
				"Field 'version' must be a positive integer");
	*ret = (unsigned)v;
	return 0;
}

static int request_job(struct daemon *d, struct conn *c, yajl_val t, struct job **ret,
		       struct xerr *err)
{
	const char *name = NULL;

	if (json_get_string(t, "job", &name) < 0)
		return xerr_set(err, -EINVAL, "bad_request", "Field 'job' (string) is required");
	return ops_lookup(d, c, name, ret, err);
}

/* c waits for the run of j, answered when it has ended (or at once, should
 * it end at once), unless it cannot begin: then the refusal is returned. */
static int wait_for_run(struct conn *c, struct job *j, int r)
{
	if (r < 0) {
		c->mode = CONN_REQUEST;
		c->job = NULL;
	}
	return r;
}

int ops_checkpoint(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	struct job *j;
	bool stop = false;
	int r;

	if (json_get_bool(t, "stop", &stop) == -EINVAL)
		return xerr_set(err, -EINVAL, "bad_request", "Field 'stop' must be true or false");
	if ((r = request_job(d, c, t, &j, err)) < 0 || (r = vo_check_checkpoint(d, j, err)) < 0)
		return r;
	c->mode = CONN_CKPT;
	c->job = j;
	return wait_for_run(c, j, ckpt_checkpoint(d->ckpt, j, stop, err));
}

int ops_restart(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	const char *id = NULL;
	unsigned version;
	struct job *j;
	int r;

	if ((r = get_version(t, &version, err)) < 0)
		return r;
	/* a job another node checkpointed into a store both see */
	if (json_get_string(t, "job", &id) >= 0 && (r = daemon_adopt_from_store(d, c, id, err)) < 0)
		return r;
	if ((r = request_job(d, c, t, &j, err)) < 0 || (r = vo_check_restore(d, c, j, err)) < 0)
		return r;
	if (j->migrate_phase && strcmp(j->migrate_phase, "migrated") != 0)
		return xerr_set(err, -EBUSY, "conflict",
				"Job %.12s is being moved to node %s: it is restarted there, or "
				"here if the move fails",
				j->id, j->migrate_node ? j->migrate_node : "?");
	c->mode = CONN_CKPT;
	c->job = j;
	if (!queue_admit_restore(d, j, version))
		return 0; /* answered when the scheduler restores it */
	d->restore_caller = c;
	r = ckpt_restart(d->ckpt, j, version, err);
	d->restore_caller = NULL;
	return wait_for_run(c, j, r);
}

int ops_checkpoints(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	_cleanup_gen_ yajl_gen g = NULL;
	struct job *j;
	int r;

	if ((r = request_job(d, c, t, &j, err)) < 0)
		return r;
	g = ops_reply_begin();
	if (!g)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	if ((r = ckpt_list(d->ckpt, j, g, err)) < 0)
		return r;
	conn_send_map(c, g);
	c->mode = CONN_CLOSING;
	return 0;
}

int ops_checkpoint_delete(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	_cleanup_gen_ yajl_gen g = NULL;
	unsigned version;
	struct job *j;
	int r;

	if ((r = get_version(t, &version, err)) < 0 || (r = request_job(d, c, t, &j, err)) < 0)
		return r;
	if (!version)
		return xerr_set(err, -EINVAL, "bad_request", "Field 'version' is required");
	if ((r = ckpt_delete(d->ckpt, j, version, err)) < 0)
		return r;
	g = ops_reply_begin();
	if (g) {
		json_gen_kv_str(g, "job", j->id);
		json_gen_kv_uint(g, "deleted", version);
		conn_send_map(c, g);
	}
	c->mode = CONN_CLOSING;
	return 0;
}
