/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Checkpoint and restart of whole job containers through liblxc's migrate
 * API (CRIU). As with starts, a forked child of xosd calls liblxc (a restore
 * makes the caller a monitor's parent and may take long); xosd's loop goes
 * on serving and finishes the operation when that child ends (its pidfd is
 * watched through host->watch_child).
 * The writable layer and spool are copied by CRIU's post-dump action script
 * (xos-criu-helper, see ckpt_action), while the container is frozen. */
#include <fcntl.h>
#include <lxc/lxccontainer.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "hooks/hooks.h"
#include "ckpt/ckpt-internal.h"

enum ckpt_kind { CKPT_DUMP, CKPT_RESTORE };

struct ckpt_run {
	enum ckpt_kind kind;
	unsigned version;
	bool stop, ct_gone, timed_out;
	bool unsynced;       /* dump: for a move, not written out before it is committed */
	int kill_sig;        /* xkill during the run: it was aborted, then this signal */
	uint64_t abort_us;   /* aborting: when SIGKILL follows (UINT64_MAX: sent) */
	enum job_state prev; /* where the job goes back to if it fails */
	pid_t child;
	int child_fd; /* its pidfd, in the event loop */
	int err_fd;   /* read end of the pipe carrying the child's message */
	uint64_t begun_us;
	char *record; /* dump: the job.json of when it began (its units as frozen) */
	char *detail; /* restore: why preparing it failed, for the user (or NULL) */
	/* post-copy (DECISIONS (ar)): the socket the shim connects CRIU's page
	 * socket to (a lazy dump, or a restore's lazy-pages daemon) */
	char *lazy;
	bool lazy_ready; /* dump: its images are out, the pages are being pulled */
};

/* link-remap: a file still open under a name that was removed while another
 * link to it remains is kept as a hidden link (link_remap.N) in its
 * directory until the restore, as CRIU's own test runner does; network-lock
 * nftables: the job's network namespace is locked while its TCP connections
 * are repaired, else one with unsent data fails its restore (DECISIONS (ab)) */
#define CRIU_CONF "network-lock nftables\nlink-remap\n" IRMAP_CONF
/* An inotify watch on a file of the job's root (an overlay: its file handles
 * cannot be opened, overlayfs decodes them only with nfs_export=on) is dumped
 * by path, found by CRIU's inode scan ("irmap") of these directories besides
 * its own few (/etc, /var/log...): the places a job writes. (Watches on
 * volumes open by handle.) */
#define IRMAP_CONF                                                               \
	"irmap-scan-path /tmp\nirmap-scan-path /var/tmp\nirmap-scan-path /run\n" \
	"irmap-scan-path /home\nirmap-scan-path /root\nirmap-scan-path /srv\n"   \
	"irmap-scan-path /opt\nirmap-scan-path /var/lib\n"

static void run_free(struct ckpt_run *run)
{
	if (!run)
		return;
	closep(&run->child_fd);
	closep(&run->err_fd);
	free(run->record);
	free(run->detail);
	free(run->lazy);
	free(run);
}

/* The options every CRIU run of xos gets besides liblxc's (the job's
 * network namespace has nothing for CRIU to lock). */
static int criu_conf_path(struct ckpt *ck, char *buf, size_t len)
{
	_cleanup_close_ int run = open(ck->cfg->run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = snprintf(buf, len, "%s/criu.conf", ck->cfg->run_dir);

	if (r < 0 || (size_t)r >= len)
		return -ENAMETOOLONG;
	if (run < 0)
		return -errno;
	return write_file_atomic_at(run, "criu.conf", CRIU_CONF, strlen(CRIU_CONF), 0644, false);
}

static void child_setup(int errfd)
{
	sigset_t none;

	sigemptyset(&none);
	setpgid(0, 0); /* an aborted dump or restore is killed as a group */
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(errfd, 3) < 0)
		_exit(1);
	close_range(4, ~0U, 0);
}

/* Before a dump: the job was sent its checkpoint signal; wait (at most the
 * grace period) for it to create the file XOS_CHECKPOINT_READY names. */
static void wait_ready(struct ckpt *ck, struct job *j)
{
	uint64_t deadline = mono_usec() + j->ckpt.grace_us;
	char p[4096];

	if (HOST(ck, runpath, j, "rootfs/tmp", p, sizeof(p)) < 0)
		return;
	while (mono_usec() < deadline) {
		_cleanup_close_ int tmp = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (tmp >= 0 &&
		    faccessat(tmp, ".xos-checkpoint-ready", F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
			unlinkat(tmp, ".xos-checkpoint-ready", 0);
			return;
		}
		usleep(20000);
	}
}

/* A dump that failed only because a task changed under CRIU as it seized the
 * tree (one exiting or forking at that instant: "Unseizable non-zombie ...",
 * "Task pid reused while suspending") is tried again, from empty images. */
#define DUMP_ATTEMPTS 3

static bool dump_met_moving_task(const char *dir)
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_close_ int img = dfd >= 0 ? open_dir_at(dfd, "images") : -EBADF;
	_cleanup_free_ char *log = NULL;
	bool moving;

	if (img < 0 || read_file_at(img, "dump.log", 4 << 20, &log, NULL) < 0)
		return false;
	moving = strstr(log, "Unseizable non-zombie") || strstr(log, "pid reused while suspending");
	return moving && rm_rf_at(dfd, "images") >= 0;
}

/* The dump failed: say why if CRIU's log tells (log.c). */
static void dump_fail_reason(const char *dir, uint64_t ghost_limit)
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_close_ int img = dfd >= 0 ? open_dir_at(dfd, "images") : -EBADF;
	_cleanup_free_ char *log = NULL, *why = NULL;

	if (img >= 0 && read_file_at(img, "dump.log", 4 << 20, &log, NULL) >= 0)
		why = ckpt_dump_log_reason(log, ghost_limit);
	dprintf(3, "%s", why ? why : "CRIU could not dump the container");
}

/* The loader file j's init runs into the version as "loader": a link when
 * both are on one filesystem, else a copy. Whoever restores the version (a
 * migration's target, another node from a shared store, this one after
 * its copy went) runs the same bytes, which CRIU requires of an
 * executable that is mapped. */
static int put_loader(struct ckpt *ck, struct job *j, int vfd)
{
	char path[4096];
	int r = HOST(ck, loader_file, j, path, sizeof(path));

	if (r < 0)
		return r == -ENOENT ? 0 : r; /* (a job from before the copies) */
	return link_or_copy_at(AT_FDCWD, path, vfd, "loader", 0755);
}

/* After a dump: the loader into the version, then CRIU's images and the
 * copies of the layer and spool reach the disk here, in the child, before
 * xosd commits the version and the client hears OK (DECISIONS (av));
 * xosd's loop, which a big version would hold for seconds, only syncs the
 * record and manifest it adds. */
static _noreturn_ void dump_written(struct ckpt *ck, struct job *j, const char *dir)
{
	int vfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int r = vfd < 0 ? -errno : put_loader(ck, j, vfd);

	if (r < 0) {
		dprintf(3, "putting the job's loader into the version: %s", strerror(-r));
		_exit(1);
	}
	/* (a move's version: a marker instead, DECISIONS (bn)) */
	r = !ck->cfg->sync_writes ? 0
	    : j->run->unsynced    ? ckpt_mark_unsynced(vfd)
				  : ckpt_sync_tree(vfd);
	if (r < 0) {
		dprintf(3, "writing the version to the disk: %s", strerror(-r));
		_exit(1);
	}
	_exit(0);
}

static _noreturn_ void dump_child(struct ckpt *ck, struct job *j, int errfd, bool stop)
{
	char dir[4096], images[4200], path[4096], helper_buf[4096];
	struct migrate_opts o = { .stop = stop };
	struct lxc_container *c;
	const char *helper;

	child_setup(errfd);
	/* an abort asks CRIU to let go first with SIGALRM, its own timeout;
	 * ignored here, not in CRIU, which sets its handler */
	signal(SIGALRM, SIG_IGN);
	if (j->ckpt.signal)
		wait_ready(ck, j);
	if (j->run->record) {
		struct xerr err = XERR_INIT;

		if (hook_run(ck->cfg->hooks_dir, HOOK_PRECHECKPOINT, j->id, j->run->record,
			     strlen(j->run->record), ck->cfg->hook_timeout_us, &err) < 0) {
			dprintf(3, "the precheckpoint hook %s", err.msg ? err.msg : "failed");
			_exit(1);
		}
	}
	snprintf(dir, sizeof(dir), "%s/%s/.new-%u", ck->cfg->checkpoint_dir, j->id,
		 j->run->version);
	snprintf(images, sizeof(images), "%s/images", dir);
	if (criu_conf_path(ck, path, sizeof(path)) < 0 || setenv("CRIU_CONFIG_FILE", path, 1) < 0)
		_exit(1);
	helper = ckpt_criu_helper(ck, helper_buf, sizeof(helper_buf));
	if (ckpt_criu_shim_setup(ck, helper) < 0) {
		dprintf(3, "CRIU was not found on xosd's PATH");
		_exit(1);
	}
	setenv("XOS_CKPT_DEST", dir, 1);
	if (HOST(ck, runpath, j, "layer/upper", path, sizeof(path)) < 0)
		_exit(1);
	setenv("XOS_CKPT_UPPER", path, 1);
	snprintf(path, sizeof(path), "%s/jobs/%s/xos/spool", ck->cfg->state_dir, j->id);
	setenv("XOS_CKPT_SPOOL", path, 1);
	if (j->run->lazy && setenv(CKPT_LAZY_DUMP_ENV, j->run->lazy, 1) < 0)
		_exit(1);
	c = HOST(ck, handle, j, false);
	if (!c)
		_exit(1);
	o.directory = images;
	o.action_script = (char *)helper;
	/* a deleted file still open is kept in the images up to what the
	 * job's layer can hold (CRIU's own default is 1 MiB) */
	o.ghost_limit = j->disk ? j->disk : ck->cfg->layer_size;
	for (unsigned attempt = 1;; attempt++) {
		if (c->migrate(c, MIGRATE_DUMP, &o, sizeof(o)) == 0)
			dump_written(ck, j, dir);
		/* CRIU thaws what it froze, unless it died: never leave the job frozen */
		if (c->is_running(c) && !strcmp(c->state(c), "FROZEN"))
			c->unfreeze(c);
		/* (a lazy dump's page socket served one try) */
		if (attempt == DUMP_ATTEMPTS || j->run->lazy || !dump_met_moving_task(dir))
			break;
		usleep(attempt * 200000);
	}
	dump_fail_reason(dir, o.ghost_limit);
	_exit(1);
}

static _noreturn_ void restore_child(struct ckpt *ck, struct job *j, int errfd)
{
	char images[4200], path[4096], helper_buf[4096];
	struct migrate_opts o = { 0 };
	struct lxc_container *c;
	_cleanup_free_ char *why = NULL;
	int vfd;

	child_setup(errfd);
	/* a move's version reaches the disk before anything runs from it */
	snprintf(path, sizeof(path), "%s/%s/%u", ck->cfg->checkpoint_dir, j->id, j->run->version);
	vfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (vfd < 0 || ckpt_settle(vfd, &why) < 0) {
		dprintf(3, "its version %s", why ? why : "cannot be opened");
		_exit(1);
	}
	close(vfd);
	if (criu_conf_path(ck, path, sizeof(path)) < 0 || setenv("CRIU_CONFIG_FILE", path, 1) < 0)
		_exit(1);
	/* (only for liblxc's "criu --version": the restore's arguments pass as they are) */
	if (ckpt_criu_shim_setup(ck, ckpt_criu_helper(ck, helper_buf, sizeof(helper_buf))) < 0) {
		dprintf(3, "CRIU was not found on xosd's PATH");
		_exit(1);
	}
	snprintf(images, sizeof(images), "%s/%s/%u/images", ck->cfg->checkpoint_dir, j->id,
		 j->run->version);
	if (j->run->lazy && setenv(CKPT_LAZY_RESTORE_ENV, j->run->lazy, 1) < 0)
		_exit(1);
	c = HOST(ck, handle, j, true);
	if (!c)
		_exit(1);
	o.directory = images;
	if (c->migrate(c, MIGRATE_RESTORE, &o, sizeof(o)) == 0)
		_exit(0);
	dprintf(3, "CRIU could not restore the container");
	_exit(1);
}

static int run_fork(struct ckpt *ck, struct job *j, bool stop)
{
	int p[2], r;

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	j->run->child = fork();
	if (j->run->child < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		return r;
	}
	if (j->run->child == 0) {
		if (j->run->kind == CKPT_DUMP)
			dump_child(ck, j, p[1], stop);
		restore_child(ck, j, p[1]);
	}
	close(p[1]);
	(void)setpgid(j->run->child, j->run->child); /* (as the child does: no race) */
	j->run->err_fd = p[0];
	j->run->child_fd = (int)syscall(SYS_pidfd_open, j->run->child, 0);
	if (j->run->child_fd < 0 || (r = HOST(ck, watch_child, j, j->run->child_fd)) < 0) {
		closep(&j->run->child_fd);
		return 0; /* finished synchronously by the caller */
	}
	return 1;
}

/* The clients waiting for the run of j are told why it failed. */
static void answer_error(struct ckpt *ck, struct job *j, const char *code, const char *msg)
{
	_cleanup_xerr_ struct xerr err = XERR_INIT;

	xerr_set_msg(&err, -EIO, code, msg);
	HOST(ck, answer, j, &err, NULL);
}

static void set_state(struct ckpt *ck, struct job *j, enum job_state s)
{
	int r;

	j->state = s;
	if ((r = HOST(ck, persist, j)) < 0)
		log_warn("Failed to persist job %s: %s", j->id, strerror(-r));
}

static unsigned next_version(struct ckpt *ck, struct job *j, int jfd)
{
	_cleanup_free_ unsigned *v = NULL;
	size_t n = 0;
	unsigned next = j->ckpt_last + 1;

	if (ckpt_list_versions(jfd, &v, &n) >= 0 && n && v[n - 1] >= next)
		next = v[n - 1] + 1;
	return next;
}

/* Whether j may be dumped now: 0, or the refusal. */
static int dump_refused(struct ckpt *ck, struct job *j, struct xerr *err)
{
	const char *why;

	if (j->state != JOB_RUNNING || j->closing || j->run)
		return xerr_set(err, -EBUSY, "conflict",
				"Job %.12s is %s; only a running job can be checkpointed", j->id,
				j->run ? "busy" : job_state_to_string(j->state));
	if (j->tty)
		return xerr_set(err, -EOPNOTSUPP, "not_supported",
				"Job %.12s has a terminal (xrun -t): jobs with terminals cannot be "
				"checkpointed; run it without -t",
				j->id);
	if (j->engine && strcmp(j->engine->name, "lxc") != 0)
		return xerr_set(err, -EOPNOTSUPP, "not_supported",
				"Job %.12s was started by the %s container engine, whose jobs "
				"cannot be checkpointed yet (xosd.conf container_engine)",
				j->id, j->engine->name);
	if (j->net.mode == NETSETUP_BRIDGE && ckpt_bridge_allowed(ck, &why) < 0)
		return xerr_set(err, -EOPNOTSUPP, "not_supported",
				"Job %.12s uses --net bridge and cannot be checkpointed on this "
				"node: %s; run it with --net none",
				j->id, why);
	if (!ck->self_exe || strpbrk(ck->self_exe, " \t\n'\"\\$`;&|<>*?()[]{}!#~"))
		return xerr_set(err, -EINVAL, "internal",
				"xosd's own path cannot serve as CRIU's action script");
	return ckpt_space_check(ck, j, err); /* before anything is frozen */
}

static int begin_dump(struct ckpt *ck, struct job *j, bool stop, const char *lazy, bool unsynced,
		      struct xerr *err)
{
	_cleanup_close_ int jfd = -EBADF;
	char name[32];
	int r;

	if ((r = dump_refused(ck, j, err)) < 0)
		return r;
	jfd = ckpt_job_store(ck, j, true);
	if (jfd < 0)
		return xerr_set(err, jfd, "internal", "Cannot open the checkpoint store %s: %s",
				ck->cfg->checkpoint_dir, strerror(-jfd));
	j->run = calloc(1, sizeof(*j->run));
	if (!j->run)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	ck->tick_walk = true; /* (its deadline) */
	*j->run = (struct ckpt_run){ .kind = CKPT_DUMP,
				     .version = next_version(ck, j, jfd),
				     .stop = stop,
				     .unsynced = unsynced,
				     .prev = j->state,
				     .child_fd = -EBADF,
				     .err_fd = -EBADF,
				     .begun_us = mono_usec() };
	if (lazy && !(j->run->lazy = strdup(lazy))) {
		run_free(TAKE_PTR(j->run));
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	}
	snprintf(name, sizeof(name), ".new-%u", j->run->version);
	(void)rm_rf_at(jfd, name);
	if (mkdirat(jfd, name, 0700) < 0) {
		r = xerr_set(err, -errno, "internal", "Cannot make a version in %s: %s",
			     ck->cfg->checkpoint_dir, strerror(errno));
		run_free(TAKE_PTR(j->run));
		return r;
	}
	if (j->ckpt.signal)
		(void)HOST(ck, signal, j, j->ckpt.signal);
	set_state(ck, j, JOB_CHECKPOINTING);
	{
		_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
		struct runtime_accounting base = j->acct_base, now;

		/* a restore of this version goes on counting from what was used so far */
		if (HOST(ck, accounting, j, &now) >= 0)
			job_acct_add(&j->acct_base, &now);
		if (g) {
			job_to_json(j, g);
			j->run->record = json_gen_take(g, true);
		}
		j->acct_base = base; /* (this container goes on counting for itself) */
	}
	r = run_fork(ck, j, stop);
	if (r < 0) {
		xerr_set(err, r, "internal", "Cannot fork: %s", strerror(-r));
		(void)rm_rf_at(jfd, name);
		run_free(TAKE_PTR(j->run));
		set_state(ck, j, JOB_RUNNING);
		return r;
	}
	if (r == 0)
		ckpt_child_done(ck, j);
	return 0;
}

static void gen_manifest(struct ckpt *ck, struct job *j, int vfd, yajl_gen g,
			 const struct ckpt_stats *st, uint64_t sizes[4])
{
	yajl_gen_map_open(g);
	json_gen_kv_uint(g, "version", j->run->version);
	json_gen_kv_str(g, "job", j->id);
	json_gen_kv_uint(g, "time_us", now_usec());
	json_gen_kv_bool(g, "stopped", j->run->stop);
	json_gen_kv_uint(g, "owner_uid", j->owner_uid);
	json_gen_kv_str(g, "user", j->user);
	json_gen_kv_str(g, "template", j->template);
	json_gen_kv_str(g, "network", "none");
	json_gen_key(g, "sizes");
	yajl_gen_map_open(g);
	json_gen_kv_uint(g, "images", sizes[0]);
	json_gen_kv_uint(g, "layer", sizes[1]);
	json_gen_kv_uint(g, "spool", sizes[2]);
	json_gen_kv_uint(g, "disk", sizes[3]); /* what the version takes on disk */
	yajl_gen_map_close(g);
	ckpt_stats_to_json(st, g);
	ckpt_gen_image_sizes(vfd, g);
	json_gen_kv_uint(g, "checkpoint_duration", mono_usec() - j->run->begun_us);
	json_gen_key(g, "record"); /* limits, units, owner: the job as it was */
	job_to_json(j, g);
	yajl_gen_map_close(g);
}

/* The public part of a manifest: a map of numbers (docs/PROTOCOL.md). */
static void ckpt_gen_summary(yajl_gen g, yajl_val m)
{
	static const char *const top[] = { "version", "time_us", "checkpoint_duration", NULL };
	static const char *const maps[] = { "sizes", "criu_statistics", NULL };
	bool stopped = false;

	yajl_gen_map_open(g);
	for (const char *const *k = top; *k; k++) {
		uint64_t v = 0;

		(void)json_get_uint(m, *k, &v);
		json_gen_kv_uint(g, *k, v);
	}
	(void)json_get_bool(m, "stopped", &stopped);
	json_gen_kv_bool(g, "stopped", stopped);
	for (const char *const *k = maps; *k; k++) {
		yajl_val o = json_get(m, *k);

		json_gen_key(g, *k);
		yajl_gen_map_open(g);
		for (size_t i = 0; YAJL_IS_OBJECT(o) && i < o->u.object.len; i++)
			if (YAJL_IS_INTEGER(o->u.object.values[i]))
				json_gen_kv_uint(g, o->u.object.keys[i],
						 (uint64_t)o->u.object.values[i]->u.number.i);
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
}

/* Images to the mapped root, the record and the manifest into the version
 * being made (vfd): all but its rename into place. */
static int seal_version(struct ckpt *ck, struct job *j, int vfd, char **ret_manifest)
{
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	_cleanup_free_ char *sz = NULL, *text = NULL;
	struct ckpt_stats st = { 0 };
	uint64_t sizes[4] = { 0 };
	unsigned long long ub = 0, sb = 0;
	int r;

	if (!g)
		return -ENOMEM;
	if (read_file_at(vfd, "sizes", 64, &sz, NULL) < 0 || sscanf(sz, "%llu %llu", &ub, &sb) != 2)
		return -EBADMSG; /* the action script did not copy the files */
	sizes[1] = ub;
	sizes[2] = sb;
	r = ckpt_chown_images(vfd, j->idmap_base, j->idmap_gid_base, &sizes[0]);
	if (r < 0)
		return r;
	(void)ckpt_read_stats(vfd, &st);
	r = j->run->record ? write_file_atomic_at(vfd, "record.json", j->run->record,
						  strlen(j->run->record), 0600, true)
			   : -ENOMEM;
	if (r < 0)
		return r;
	sizes[3] = ckpt_tree_disk(vfd);
	gen_manifest(ck, j, vfd, g, &st, sizes);
	text = json_gen_take(g, true);
	if (!text)
		return -ENOMEM;
	r = write_file_atomic_at(vfd, "manifest.json", text, strlen(text), 0600, true);
	if (r < 0)
		return r;
	/* (the rest was synced by the dump's child: dump_written) */
	if (ck->cfg->sync_writes && fsync(vfd) < 0)
		return -errno;
	*ret_manifest = TAKE_PTR(text);
	return 0;
}

/* The version sealed, then renamed into place. */
static int finish_version(struct ckpt *ck, struct job *j, int jfd, char **ret_manifest)
{
	_cleanup_close_ int vfd = -EBADF;
	_cleanup_free_ char *text = NULL;
	char tmp[32], final[32];
	int r;

	snprintf(tmp, sizeof(tmp), ".new-%u", j->run->version);
	snprintf(final, sizeof(final), "%u", j->run->version);
	vfd = open_dir_at(jfd, tmp);
	if (vfd < 0)
		return vfd;
	r = seal_version(ck, j, vfd, &text);
	if (r < 0)
		return r;
	if (renameat(jfd, tmp, jfd, final) < 0 || fsync(jfd) < 0)
		return -errno;
	*ret_manifest = TAKE_PTR(text);
	return 0;
}

/* Keep the newest keep versions (0: all). */
static void apply_retention(struct ckpt *ck, struct job *j, int jfd)
{
	unsigned keep = ckpt_keep_of(ck->cfg, j);
	_cleanup_free_ unsigned *v = NULL;
	size_t n = 0;

	if (keep == 0 || ckpt_list_versions(jfd, &v, &n) < 0)
		return;
	for (size_t i = 0; i + keep < n; i++) {
		char name[32];

		snprintf(name, sizeof(name), "%u", v[i]);
		if (rm_rf_at(jfd, name) < 0)
			log_warn("Failed to remove version %u of job %s", v[i], j->id);
	}
}

/* Keep the log of a failed dump beside the versions; its path. */
static char *keep_failed_log(struct ckpt *ck, struct job *j, int jfd)
{
	char from[64], to[64];

	snprintf(from, sizeof(from), ".new-%u/images/dump.log", j->run->version);
	snprintf(to, sizeof(to), "failed-%u.dump.log", j->run->version);
	if (renameat(jfd, from, jfd, to) < 0)
		return NULL;
	return xstrdup_printf("%s/%s/%s", ck->cfg->checkpoint_dir, j->id, to);
}

/* A failed dump never leaves the container frozen, whoever froze it (CRIU
 * killed while it held the freezer cannot thaw it). */
static void thaw_container(struct ckpt *ck, struct job *j)
{
	bool v2 = ck->cgroup_v2;
	struct runtime_cgroup_paths p;
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -EBADF;

	if (HOST(ck, cgroup_paths, j, &p) < 0)
		return;
	path = v2 ? xstrdup_printf("/sys/fs/cgroup/%s/cgroup.freeze", p.payload)
		  : xstrdup_printf("/sys/fs/cgroup/freezer/%s/freezer.state", p.payload);
	fd = path ? open(path, O_WRONLY | O_CLOEXEC) : -EBADF;
	if (fd >= 0 && write(fd, v2 ? "0" : "THAWED", v2 ? 1 : 6) < 0)
		log_warn("Failed to thaw the container of job %s: %s", j->id, strerror(errno));
}

/* Why a dump was aborted, for the user; NULL if it was not. */
static char *abort_reason(struct ckpt *ck, struct job *j)
{
	if (j->run->kill_sig)
		return xstrdup_printf("it was aborted by xkill (signal %d); the job was thawed "
				      "and got the signal",
				      j->run->kill_sig);
	if (j->run->timed_out) {
		uint64_t t = ck->cfg->dump_timeout_us;
		bool ms = t % 1000000 != 0;

		return xstrdup_printf("it took longer than dump_timeout (%llu %s) and was aborted; "
				      "the job was thawed and runs on (raise dump_timeout in "
				      "xosd.conf if the job needs longer)",
				      (unsigned long long)(ms ? t / 1000 : t / 1000000),
				      ms ? "ms" : "s");
	}
	return NULL;
}

static void dump_failed(struct ckpt *ck, struct job *j, int jfd, const char *why)
{
	_cleanup_free_ char *log = jfd >= 0 ? keep_failed_log(ck, j, jfd) : NULL;
	_cleanup_free_ char *msg = NULL, *aborted = abort_reason(ck, j);
	char name[32];

	snprintf(name, sizeof(name), ".new-%u", j->run->version);
	if (jfd >= 0)
		(void)rm_rf_at(jfd, name);
	HOST(ck, unlock_network, j); /* a CRIU killed mid-dump leaves its lock */
	thaw_container(ck, j);
	msg = xstrdup_printf("Checkpoint of job %.12s failed: %s; version %u was discarded%s%s%s",
			     j->id, aborted ? aborted : why, j->run->version,
			     log ? " (see CRIU's log " : "", log ? log : "", log ? ")" : "");
	log_error("%s", msg ? msg : why);
	j->state = JOB_RUNNING;
	answer_error(ck, j, "checkpoint_failed", msg ? msg : why);
}

/* The figures of the version just made, for its event (runtime's events.c). */
static void version_figures(struct job *j, yajl_val m)
{
	static const char *const parts[] = { "images", "layer", "spool" };
	yajl_val sizes = m ? yajl_tree_get(m, (const char *[]){ "sizes", NULL }, yajl_t_object)
			   : NULL;
	uint64_t v = 0;

	j->ev.ckpt_duration_us = 0;
	j->ev.ckpt_bytes = 0;
	if (m && json_get_uint(m, "checkpoint_duration", &v) >= 0)
		j->ev.ckpt_duration_us = v;
	for (size_t i = 0; sizes && i < ELEMENTSOF(parts); i++)
		if (json_get_uint(sizes, parts[i], &v) >= 0)
			j->ev.ckpt_bytes += v;
}

/* A lazy dump ended well: CRIU served every page (the lazy-pages daemon
 * said so) and killed the tasks. Its version holds no memory: it is never
 * committed (DECISIONS (ar)); the job is stopped without a new version,
 * and the move it served lets go of it. */
static void lazy_dump_done(struct ckpt *ck, struct job *j, int jfd)
{
	_cleanup_gen_ yajl_gen g = HOST(ck, reply_begin);
	struct ckpt_run *run = j->run;
	char name[32];

	snprintf(name, sizeof(name), ".new-%u", run->version);
	if (jfd >= 0)
		(void)rm_rf_at(jfd, name);
	log_info("Job %s: every page of its lazy dump was pulled; the job is stopped here", j->id);
	j->run = NULL;
	j->state = JOB_CHECKPOINTED;
	(void)HOST(ck, persist, j);
	j->parked = 0; /* (no version of this stop to restart on its layer) */
	HOST(ck, stopped, j);
	if (g) {
		json_gen_kv_str(g, "job", j->id);
		json_gen_kv_bool(g, "lazy", true);
		HOST(ck, answer, j, NULL, g);
	}
	if (run->kill_sig)
		HOST(ck, discard, j, run->kill_sig);
	run_free(run);
}

static void dump_done(struct ckpt *ck, struct job *j, bool ok, const char *why)
{
	_cleanup_close_ int jfd = ckpt_job_store(ck, j, false);
	_cleanup_free_ char *manifest = NULL, *over = NULL;
	struct ckpt_run *run = j->run;
	int r = -EIO;

	if (ok && run->lazy)
		return lazy_dump_done(ck, j, jfd);
	if (ok && !run->stop && (over = ckpt_space_over_quota(ck, j, jfd, run->version)))
		ok = false, why = over;
	if (ok && jfd >= 0 && (r = finish_version(ck, j, jfd, &manifest)) < 0)
		why = "could not finish the version (the store may be full)";
	if (!ok || r < 0) {
		_cleanup_free_ char *full = ckpt_space_dump_failure(ck, j, jfd, run->version);

		dump_failed(ck, j, jfd, full ? full : why);
		if (run->stop && !run->ct_gone && !HOST(ck, running, j)) /* killed after all */
			run->ct_gone = true;
	} else {
		_cleanup_json_ yajl_val t = NULL;
		_cleanup_gen_ yajl_gen g = HOST(ck, reply_begin);

		(void)json_parse(manifest, JSON_DEPTH_MAX, NULL, 0, &t);
		version_figures(j, t);
		j->ckpt_last = run->version;
		apply_retention(ck, j, jfd);
		ckpt_space_changed(j, true);
		(void)hook_run_detached(ck->cfg->hooks_dir, HOOK_POSTCHECKPOINT, j->id, manifest,
					strlen(manifest), ck->cfg->hook_timeout_us);
		j->state = run->stop ? JOB_CHECKPOINTED : JOB_RUNNING;
		log_info("Job %s: version %u made%s", j->id, run->version,
			 run->stop ? "; the job is stopped" : "");
		if (g) {
			json_gen_kv_str(g, "job", j->id);
			json_gen_key(g, "checkpoint");
			ckpt_gen_summary(g, t);
			HOST(ck, answer, j, NULL, g);
		}
	}
	j->run = NULL;
	if (j->state == JOB_CHECKPOINTED) {
		(void)HOST(ck, persist, j);
		j->parked = j->ckpt_last; /* its layer is the version's: kept for the restart */
		HOST(ck, stopped, j);     /* container, mounts, config; the record stays */
	} else {
		(void)HOST(ck, persist, j);
		if (run->ct_gone)
			HOST(ck, gone, j);
	}
	if (run->kill_sig && j->state == JOB_CHECKPOINTED) /* the dump won the race */
		HOST(ck, discard, j, run->kill_sig);
	else if (run->kill_sig && j->init_pid > 0) /* its request is waiting */
		kill(j->init_pid, SIGUSR1);
	run_free(run);
}

/* ---- restore ---- */

/* The units as they were at the version (its record.json: the job.json of
 * that instant). */
static int take_units(struct job *j, int vfd)
{
	_cleanup_free_ char *rec = NULL;
	struct job *old = NULL;
	int r = read_file_at(vfd, "record.json", 16 << 20, &rec, NULL);

	if (r < 0)
		return r;
	r = job_from_json(rec, &old);
	if (r < 0)
		return r;
	if (strcmp(old->id, j->id) != 0) {
		job_free(old);
		return -EBADMSG;
	}
	/* (a job keeps its ids while it has versions: the images and the layer
	 * copy hold them) */
	if (old->idmap_base != j->idmap_base || old->idmap_size != j->idmap_size) {
		j->run->detail = xstrdup_printf("the version was made on container ids from %u, "
						"the job has ids from %u",
						old->idmap_base, j->idmap_base);
		job_free(old);
		return -EBADMSG;
	}
	for (size_t i = 0; i < j->n_units; i++) {
		strv_free(j->units[i].argv);
		free(j->units[i].reason);
	}
	free(j->units);
	j->units = TAKE_PTR(old->units);
	j->n_units = old->n_units;
	old->n_units = 0;
	j->closing = old->closing;
	j->acct_base = old->acct_base;
	job_free(old);
	return 0;
}

/* The version's units, then the daemon's part (host->restore_prepare). */
static int prepare_restore(struct ckpt *ck, struct job *j, int vfd, struct xerr *err)
{
	int r = take_units(j, vfd);

	if (r < 0)
		return xerr_set(err, r, "restart_failed", "reading the version's record: %s",
				j->run->detail ? j->run->detail : strerror(-r));
	/* only the restart of the version a job stopped at runs on its own
	 * layer and root, still mounted (restore_prepare; DECISIONS (ab)) */
	if (j->parked != j->run->version || j->run->prev != JOB_CHECKPOINTED)
		j->parked = 0;
	/* an ended job's kept layer serves only the restart of the version
	 * newest when it ended (rolled back in place; DECISIONS (ao)) */
	if (j->kept != j->run->version || !job_state_is_final(j->run->prev))
		j->kept = 0;
	r = HOST(ck, restore_prepare, j, vfd, err);
	if (r < 0 && !err->msg) /* (out of memory: what failed is lost) */
		return xerr_set_msg(err, r, "restart_failed", NULL);
	return r;
}

static int begin_restore(struct ckpt *ck, struct job *j, unsigned version, const char *lazy,
			 struct xerr *err)
{
	_cleanup_close_ int jfd = ckpt_job_store(ck, j, false), vfd = -EBADF;
	_cleanup_xerr_ struct xerr why = XERR_INIT;
	char name[32];
	int r;

	snprintf(name, sizeof(name), "%u", version);
	vfd = jfd >= 0 ? open_dir_at(jfd, name) : -ENOENT;
	if (vfd < 0)
		return xerr_set(err, -ENOENT, "not_found",
				"Job %.12s has no version %u (see xcheckpoint --list)", j->id,
				version);
	{
		_cleanup_free_ char *damage = NULL;

		if (ckpt_check_images(vfd, &damage) < 0)
			return xerr_set(err, -EBADMSG, "damaged",
					"Version %u of job %.12s is damaged: %s; restart refused "
					"(restart from another version, see xcheckpoint --list)",
					version, j->id, damage ? damage : "unreadable");
	}
	j->run = calloc(1, sizeof(*j->run));
	if (!j->run)
		return xerr_set(err, -ENOMEM, "restart_failed", "Out of memory");
	ck->tick_walk = true; /* (its deadline) */
	*j->run = (struct ckpt_run){ .kind = CKPT_RESTORE,
				     .version = version,
				     .prev = j->state,
				     .child_fd = -EBADF,
				     .err_fd = -EBADF,
				     .begun_us = mono_usec() };
	if (lazy && !(j->run->lazy = strdup(lazy))) {
		run_free(TAKE_PTR(j->run));
		return xerr_set(err, -ENOMEM, "restart_failed", "Out of memory");
	}
	set_state(ck, j, JOB_RESTORING);
	r = prepare_restore(ck, j, vfd, &why);
	if (r >= 0 && (r = run_fork(ck, j, false)) < 0)
		xerr_set(&why, r, "restart_failed", "forking: %s", strerror(-r));
	if (r < 0) {
		xerr_set(err, r, "restart_failed", "Restart of job %.12s failed while %s", j->id,
			 xerr_message(&why));
		HOST(ck, restore_undo, j, j->run->prev == JOB_CHECKPOINTED);
		set_state(ck, j, j->run->prev);
		run_free(TAKE_PTR(j->run));
		return r;
	}
	if (r == 0)
		ckpt_child_done(ck, j);
	return 0;
}

static void restore_done(struct ckpt *ck, struct job *j, bool ok, const char *why)
{
	struct ckpt_run *run = j->run;
	_cleanup_free_ char *msg = NULL;
	int r = ok ? HOST(ck, restored, j) : -ECHILD;

	j->run = NULL;
	if (r < 0) {
		msg = xstrdup_printf("Restart of job %.12s from version %u failed: %s (see CRIU's "
				     "log %s/%s/%u/images/restore.log)",
				     j->id, run->version,
				     run->kill_sig    ? "it was aborted by xkill"
				     : run->timed_out ? "it took longer than restore_timeout"
				     : ok             ? strerror(-r)
						      : why,
				     ck->cfg->checkpoint_dir, j->id, run->version);
		log_error("%s", msg ? msg : why);
		HOST(ck, restore_undo, j, run->prev == JOB_CHECKPOINTED);
		set_state(ck, j, run->prev);
		if (!job_is_live(j))
			closep(&j->dirfd);
		answer_error(ck, j, "restart_failed", msg ? msg : why);
		if (run->kill_sig && job_is_live(j)) /* killed: it ends here */
			HOST(ck, discard, j, run->kill_sig);
		run_free(run);
		return;
	}
	free(j->reason);
	j->reason = NULL;
	j->ended_us = 0;
	j->have_acct = false;
	j->restores++;
	j->ev.restore_duration_us = mono_usec() - run->begun_us; /* (for its event) */
	j->ev.restore_version = run->version;
	set_state(ck, j, JOB_RUNNING);
	if ((r = HOST(ck, watch, j)) < 0)
		log_error("Failed to watch restored job %s: %s", j->id, strerror(-r));
	kill(j->init_pid, SIGUSR1); /* the loader looks at its requests again */
	if (run->kill_sig)          /* xkill came as it ended */
		(void)HOST(ck, signal, j, run->kill_sig);
	else if (j->ckpt.restore_signal)
		(void)HOST(ck, signal, j, j->ckpt.restore_signal);
	log_info("Job %s restarted from version %u", j->id, run->version);
	{
		_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
		_cleanup_free_ char *text = NULL;

		if (g) {
			job_to_json(j, g);
			text = json_gen_take(g, true);
		}
		if (text)
			(void)hook_run_detached(ck->cfg->hooks_dir, HOOK_POSTRESTORE, j->id, text,
						strlen(text), ck->cfg->hook_timeout_us);
	}
	{
		_cleanup_gen_ yajl_gen g = HOST(ck, reply_begin);

		if (g) {
			json_gen_kv_str(g, "job", j->id);
			json_gen_kv_uint(g, "version", run->version);
			json_gen_kv_uint(g, "restore_duration", mono_usec() - run->begun_us);
			HOST(ck, answer, j, NULL, g);
		}
	}
	run_free(run);
	HOST(ck, collect_spool, j);
}

void ckpt_child_done(struct ckpt *ck, struct job *j)
{
	struct ckpt_run *run = j->run;
	char msg[1024] = "";
	int status = 0;
	ssize_t n;

	if (run->child_fd >= 0)
		HOST(ck, unwatch, run->child_fd);
	closep(&run->child_fd);
	while (waitpid(run->child, &status, 0) < 0 && errno == EINTR)
		;
	n = read(run->err_fd, msg, sizeof(msg) - 1);
	msg[n > 0 ? n : 0] = 0;
	if (!msg[0])
		snprintf(msg, sizeof(msg), "%s",
			 run->kind == CKPT_DUMP ? "CRIU could not dump the container"
						: "CRIU could not restore the container");
	if (run->kind == CKPT_DUMP)
		dump_done(ck, j, WIFEXITED(status) && WEXITSTATUS(status) == 0, msg);
	else
		restore_done(ck, j, WIFEXITED(status) && WEXITSTATUS(status) == 0, msg);
}

bool ckpt_container_gone(struct ckpt *ck, struct job *j)
{
	if (!j->run || j->run->kind != CKPT_DUMP)
		return false;
	if (j->pidfd >= 0)
		HOST(ck, unwatch, j->pidfd);
	j->run->ct_gone = true;
	return true;
}

/* ---- requests ---- */

int ckpt_checkpoint(struct ckpt *ck, struct job *j, bool stop, struct xerr *err)
{
	return begin_dump(ck, j, stop, NULL, false, err);
}

int ckpt_checkpoint_move(struct ckpt *ck, struct job *j, struct xerr *err)
{
	return begin_dump(ck, j, true, NULL, true, err);
}

int ckpt_checkpoint_lazy(struct ckpt *ck, struct job *j, const char *socket, struct xerr *err)
{
	return begin_dump(ck, j, true, socket, false, err);
}

int ckpt_lazy_ready(struct ckpt *ck, struct job *j, char *dir, size_t len)
{
	_cleanup_close_ int jfd = ckpt_job_store(ck, j, false), vfd = -EBADF;
	_cleanup_free_ char *manifest = NULL;
	char name[32];
	int r;

	if (!j->run || j->run->kind != CKPT_DUMP || !j->run->lazy)
		return -EINVAL;
	snprintf(name, sizeof(name), ".new-%u", j->run->version);
	vfd = jfd >= 0 ? open_dir_at(jfd, name) : jfd;
	if (vfd < 0)
		return vfd;
	r = put_loader(ck, j, vfd);
	if (r >= 0)
		r = seal_version(ck, j, vfd, &manifest);
	if (r < 0)
		return r;
	j->run->lazy_ready = true; /* (the pull has a deadline of its own, the move's) */
	r = snprintf(dir, len, "%s/%s/%s", ck->cfg->checkpoint_dir, j->id, name);
	return r < 0 || (size_t)r >= len ? -ENAMETOOLONG : (int)j->run->version;
}

int ckpt_restart(struct ckpt *ck, struct job *j, unsigned version, struct xerr *err)
{
	return ckpt_restart_lazy(ck, j, version, NULL, err);
}

int ckpt_restart_lazy(struct ckpt *ck, struct job *j, unsigned version, const char *socket,
		      struct xerr *err)
{
	_cleanup_free_ unsigned *v = NULL;
	_cleanup_close_ int jfd = -EBADF;
	size_t n = 0;

	if (j->run || (job_is_live(j) && j->state != JOB_CHECKPOINTED))
		return xerr_set(err, -EBUSY, "conflict",
				"Job %.12s is %s: xrestart is refused while it runs "
				"(xcheckpoint --stop it, or xkill it, first)",
				j->id, job_state_to_string(j->state));
	if (ckpt_holder(ck, j) == 0)
		return xerr_set(
			err, -EPERM, "conflict",
			"Job %.12s was taken over by another node from the shared checkpoint "
			"store: restart it there, or xrestart it again once this node has "
			"forgotten it",
			j->id);
	jfd = ckpt_job_store(ck, j, false);
	if (jfd < 0 || ckpt_list_versions(jfd, &v, &n) < 0 || n == 0)
		return xerr_set(err, -ENOENT, "not_found", "Job %.12s has no checkpoint", j->id);
	/* an ended job's container may still be going away (its network and
	 * mounts go with it): the restore must not meet it */
	if (!job_is_live(j) && j->pidfd >= 0 && HOST(ck, settle, j) < 0)
		return xerr_set(err, -EBUSY, "conflict",
				"The last container of job %.12s is still going away; "
				"try xrestart again in a moment",
				j->id);
	return begin_restore(ck, j, version ? version : v[n - 1], socket, err);
}

static void gen_version(yajl_gen g, int jfd, unsigned version)
{
	_cleanup_close_ int vfd = -EBADF;
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ yajl_val m = NULL;
	char name[32];

	snprintf(name, sizeof(name), "%u", version);
	vfd = open_dir_at(jfd, name);
	if (vfd >= 0 && read_file_at(vfd, "manifest.json", 16 << 20, &text, NULL) >= 0)
		(void)json_parse(text, JSON_DEPTH_MAX, NULL, 0, &m);
	if (!m) { /* unreadable: listed as such, so that it can be deleted */
		yajl_gen_map_open(g);
		json_gen_kv_uint(g, "version", version);
		json_gen_kv_bool(g, "damaged", true);
		yajl_gen_map_close(g);
		return;
	}
	ckpt_gen_summary(g, m);
}

int ckpt_list(struct ckpt *ck, struct job *j, yajl_gen g, struct xerr *err)
{
	_cleanup_free_ unsigned *v = NULL;
	_cleanup_close_ int jfd = ckpt_job_store(ck, j, false);
	size_t n = 0;

	if (jfd >= 0 && ckpt_list_versions(jfd, &v, &n) < 0)
		return xerr_set(err, -EIO, "internal", "Cannot read the checkpoint store");
	json_gen_kv_str(g, "job", j->id);
	json_gen_key(g, "versions");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++)
		gen_version(g, jfd, v[i]);
	yajl_gen_array_close(g);
	ckpt_space_gen_list(ck, j, g);
	return 0;
}

int ckpt_delete(struct ckpt *ck, struct job *j, unsigned version, struct xerr *err)
{
	_cleanup_close_ int jfd = -EBADF;
	char name[32];
	int r;

	if (j->run && j->run->kind == CKPT_RESTORE && j->run->version == version)
		return xerr_set(err, -EBUSY, "conflict", "Version %u is being restored", version);
	if (ckpt_holder(ck, j) == 0)
		return xerr_set(
			err, -EPERM, "conflict",
			"Job %.12s was taken over by another node from the shared checkpoint "
			"store: its versions are that node's; delete them there",
			j->id);
	snprintf(name, sizeof(name), "%u", version);
	jfd = ckpt_job_store(ck, j, false);
	if (jfd < 0 || faccessat(jfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
		return xerr_set(err, -ENOENT, "not_found", "Job %.12s has no version %u", j->id,
				version);
	r = rm_rf_at(jfd, name);
	ckpt_space_changed(j, false);
	if (r < 0)
		return xerr_set(err, r, "internal", "Failed to delete version %u: %s", version,
				strerror(-r));
	HOST(ck, versions_changed, j); /* an ended job's last version: its ids go */
	return 0;
}

/* ---- the job's life around checkpoints ---- */

void ckpt_forget(struct ckpt *ck, struct job *j)
{
	int s;

	if (ckpt_holder(ck, j) != 1)
		return; /* another node's now (or unknown): they stay */
	s = ckpt_store_fd(ck);
	if (s >= 0)
		(void)rm_rf_at(s, j->id);
}

bool ckpt_recover(struct ckpt *ck, struct job *j)
{
	_cleanup_free_ unsigned *v = NULL;
	_cleanup_xerr_ struct xerr err = XERR_INIT;
	_cleanup_close_ int jfd = ckpt_job_store(ck, j, false);
	size_t n = 0;

	if (jfd < 0 || ckpt_list_versions(jfd, &v, &n) < 0 || n == 0)
		return false;
	if (ckpt_holder(ck, j) == 0)
		return false; /* another node took it over: never a second copy (aq) */
	log_info("Job %s lost its container while xosd was down; restoring version %u", j->id,
		 v[n - 1]);
	if (begin_restore(ck, j, v[n - 1], NULL, &err) < 0) {
		log_error("%s", xerr_message(&err));
		return false;
	}
	return true;
}

bool ckpt_adopt(struct ckpt *ck, struct job *j)
{
	_cleanup_close_ int jfd = -EBADF;

	if (j->state == JOB_CHECKPOINTED) {
		closep(&j->dirfd);
		return true;
	}
	if (j->state == JOB_CHECKPOINTING || j->state == JOB_RESTORING) {
		/* xosd stopped in the middle: what is running runs on */
		jfd = ckpt_job_store(ck, j, false);
		if (jfd >= 0)
			ckpt_remove_partial(jfd);
		j->state = JOB_RUNNING;
	}
	return false;
}

/* Every task in the job container's cgroup gets SIGKILL (a stuck restore). */
static void kill_cgroup_tasks(struct ckpt *ck, struct job *j)
{
	static const char *const roots[] = { "/sys/fs/cgroup/pids", "/sys/fs/cgroup" };
	struct runtime_cgroup_paths p;

	if (HOST(ck, cgroup_paths, j, &p) < 0)
		return;
	for (size_t i = 0; i < ELEMENTSOF(roots); i++) {
		_cleanup_free_ char *path = xstrdup_printf("%s/%s/cgroup.procs", roots[i],
							   p.payload);
		_cleanup_free_ char *text = NULL;
		char *save = NULL;

		if (!path || read_file_at(AT_FDCWD, path, 1 << 20, &text, NULL) < 0)
			continue;
		for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			int pid;

			if (parse_int(l, &pid) >= 0 && pid > 1)
				kill(pid, SIGKILL);
		}
	}
}

/* SIGKILL to pid and every descendant (children first listed, then killed). */
static void kill_tree(pid_t pid, unsigned depth)
{
	_cleanup_free_ char *text = NULL;
	char path[64], *save = NULL;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	kill(pid, SIGSTOP); /* no new children meanwhile */
	if (depth < 32 && read_file_at(AT_FDCWD, path, 65536, &text, NULL) >= 0)
		for (char *c = strtok_r(text, " \n", &save); c; c = strtok_r(NULL, " \n", &save)) {
			int child;

			if (parse_int(c, &child) >= 0 && child > 1)
				kill_tree(child, depth + 1);
		}
	kill(pid, SIGKILL);
}

#define ABORT_GRACE_US 3000000

/* Aborting a run: a dump's CRIU first gets SIGALRM, its own timeout (the call
 * it waits in fails and its clean-up lets go of the tasks), and SIGKILL with
 * everything under it ABORT_GRACE_US later; a restore gets SIGKILL at once,
 * and so does every task of its container. The run then fails as usual. */
static void abort_step(struct ckpt *ck, struct job *j, uint64_t now)
{
	struct ckpt_run *run = j->run;

	if (run->abort_us == UINT64_MAX)
		return;
	if (run->kind == CKPT_DUMP && !run->abort_us) {
		kill(-run->child, SIGALRM);
		run->abort_us = now + ABORT_GRACE_US;
		return;
	}
	if (now < run->abort_us)
		return;
	kill_tree(run->child, 0);
	kill(-run->child, SIGKILL);
	if (run->kind == CKPT_RESTORE)
		kill_cgroup_tasks(ck, j);
	run->abort_us = UINT64_MAX;
}

void ckpt_abort(struct ckpt *ck, struct job *j, int sig)
{
	if (!j->run || j->run->child <= 0 || j->run->kill_sig)
		return;
	log_info("Job %s: %s aborted%s", j->id,
		 j->run->kind == CKPT_DUMP ? "checkpoint" : "restart", sig ? " by xkill" : "");
	j->run->kill_sig = sig;
	abort_step(ck, j, mono_usec());
}

/* A dump that outlives dump_timeout (besides the job's --checkpoint-grace)
 * or a restore that outlives restore_timeout is aborted; ms to the next step. */
static int run_deadline(struct ckpt *ck, struct job *j, uint64_t now)
{
	struct ckpt_run *run = j->run;
	bool dump = run && run->kind == CKPT_DUMP;
	uint64_t end;

	if (!run || run->child <= 0)
		return -1;
	if (run->lazy_ready && !run->abort_us) /* (the move watches its pull) */
		return -1;
	if (run->abort_us) {
		abort_step(ck, j, now);
		return run->abort_us == UINT64_MAX || now >= run->abort_us
			       ? 1000
			       : (int)((run->abort_us - now + 999) / 1000);
	}
	end = run->begun_us + (dump ? ck->cfg->dump_timeout_us : ck->cfg->restore_timeout_us);
	if (dump && j->ckpt.signal)
		end += j->ckpt.grace_us;
	if (now < end)
		return (int)((end - now + 999) / 1000);
	log_error("%s of job %s takes longer than %s: aborting it", dump ? "Checkpoint" : "Restart",
		  j->id, dump ? "dump_timeout" : "restore_timeout");
	run->timed_out = true;
	abort_step(ck, j, now);
	return 1000;
}

static void tick_job(struct ckpt *ck, struct job *j, uint64_t now)
{
	_cleanup_xerr_ struct xerr err = XERR_INIT;
	int r;

	if (!j->ckpt.every_us || j->state != JOB_RUNNING || j->run || j->closing) {
		if (j->ckpt_due_us) /* (written only when set: a page of every job
				     * written at each tick costs a copy-on-write
				     * fault each while xosd has a child) */
			j->ckpt_due_us = 0;
		return;
	}
	if (!j->ckpt_due_us)
		j->ckpt_due_us = now + ckpt_every_of(ck->cfg, j);
	if (now < j->ckpt_due_us)
		return;
	j->ckpt_due_us = now + ckpt_every_of(ck->cfg, j);
	ckpt_space_make_room(ck, j); /* versions beyond --keep go first */
	r = begin_dump(ck, j, false, NULL, false, &err);
	if ((r == -EDQUOT || r == -ENOSPC) && err.msg)
		ckpt_space_skipped(ck, j, err.msg);
	else if (r < 0)
		log_error("Periodic checkpoint of job %s failed: %s", j->id, xerr_message(&err));
}

void ckpt_job_linked(struct ckpt *ck, const struct job *j)
{
	if (j->run || j->ckpt.every_us)
		ck->tick_walk = true;
}

int ckpt_tick(struct ckpt *ck)
{
	uint64_t now = mono_usec(), next = UINT64_MAX;
	int timeout = -1;

	if (!ck->tick_walk)
		return -1;
	ck->tick_walk = false; /* (set again by what the walk finds or begins) */
	for (struct job *j = *ck->jobs; j; j = j->next) {
		int t;

		if (j->run || j->ckpt.every_us)
			ck->tick_walk = true;
		t = run_deadline(ck, j, now);
		if (t >= 0 && (timeout < 0 || t < timeout))
			timeout = t;
		tick_job(ck, j, now);
		if (j->ckpt_due_us && j->ckpt_due_us < next)
			next = j->ckpt_due_us;
	}
	if (next != UINT64_MAX) {
		int t = next <= now ? 0 : (int)((next - now + 999) / 1000);

		if (timeout < 0 || t < timeout)
			timeout = t;
	}
	return timeout;
}
