/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Checkpoint and restart of whole job containers through liblxc's migrate
 * API (CRIU). As with starts, a forked child of xosd calls liblxc (a restore
 * makes the caller a monitor's parent and may take long); xosd's loop goes
 * on serving and finishes the operation when that child ends (EP_CKPT).
 * The writable layer and spool are copied by CRIU's post-dump action script
 * (xosd itself, see runtime_ckpt_action), while the container is frozen. */
#include <fcntl.h>
#include <lxc/lxccontainer.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "hooks/hooks.h"
#include "runtime/ckpt-internal.h"

enum ckpt_kind { CKPT_DUMP, CKPT_RESTORE };

struct ckpt_run {
	enum ckpt_kind kind;
	unsigned version;
	bool stop, ct_gone, timed_out;
	int kill_sig;        /* xkill during the run: it was aborted, then this signal */
	uint64_t abort_us;   /* aborting: when SIGKILL follows (UINT64_MAX: sent) */
	enum job_state prev; /* where the job goes back to if it fails */
	pid_t child;
	int child_fd; /* its pidfd, in the event loop */
	int err_fd;   /* read end of the pipe carrying the child's message */
	uint64_t begun_us;
	char *record; /* dump: the job.json of when it began (its units as frozen) */
	char *detail; /* restore: why preparing it failed, for the user (or NULL) */
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
	free(run);
}

/* The options every CRIU run of xos gets besides liblxc's (the job's
 * network namespace has nothing for CRIU to lock). */
static int criu_conf_path(struct daemon *d, char *buf, size_t len)
{
	_cleanup_close_ int run = open(d->cfg->run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = snprintf(buf, len, "%s/criu.conf", d->cfg->run_dir);

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
static void wait_ready(struct daemon *d, struct job *j)
{
	uint64_t deadline = mono_usec() + j->ckpt.grace_us;
	char p[4096];

	if (daemon_job_runpath(d, j, "rootfs/tmp", p, sizeof(p)) < 0)
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

/* The dump failed: say why if CRIU's log tells (ckpt-log.c). */
static void dump_fail_reason(const char *dir, uint64_t ghost_limit)
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_close_ int img = dfd >= 0 ? open_dir_at(dfd, "images") : -EBADF;
	_cleanup_free_ char *log = NULL, *why = NULL;

	if (img >= 0 && read_file_at(img, "dump.log", 4 << 20, &log, NULL) >= 0)
		why = ckpt_dump_log_reason(log, ghost_limit);
	dprintf(3, "%s", why ? why : "CRIU could not dump the container");
}

static _noreturn_ void dump_child(struct daemon *d, struct job *j, int errfd, bool stop)
{
	char dir[4096], images[4200], path[4096];
	struct migrate_opts o = { .stop = stop };
	struct lxc_container *c;

	child_setup(errfd);
	/* an abort asks CRIU to let go first with SIGALRM, its own timeout;
	 * ignored here, not in CRIU, which sets its handler */
	signal(SIGALRM, SIG_IGN);
	if (j->ckpt.signal)
		wait_ready(d, j);
	if (j->run->record) {
		char *msg = NULL;

		if (hook_run(d->cfg->hooks_dir, HOOK_PRECHECKPOINT, j->id, j->run->record,
			     strlen(j->run->record), d->cfg->hook_timeout_us, &msg) < 0) {
			dprintf(3, "the precheckpoint hook %s", msg ? msg : "failed");
			_exit(1);
		}
	}
	snprintf(dir, sizeof(dir), "%s/%s/.new-%u", d->cfg->checkpoint_dir, j->id, j->run->version);
	snprintf(images, sizeof(images), "%s/images", dir);
	if (criu_conf_path(d, path, sizeof(path)) < 0 || setenv("CRIU_CONFIG_FILE", path, 1) < 0)
		_exit(1);
	if (ckpt_criu_shim_setup(d) < 0) {
		dprintf(3, "CRIU was not found on xosd's PATH");
		_exit(1);
	}
	setenv("XOS_CKPT_DEST", dir, 1);
	if (daemon_job_runpath(d, j, "layer/upper", path, sizeof(path)) < 0)
		_exit(1);
	setenv("XOS_CKPT_UPPER", path, 1);
	snprintf(path, sizeof(path), "%s/jobs/%s/xos/spool", d->cfg->state_dir, j->id);
	setenv("XOS_CKPT_SPOOL", path, 1);
	c = container_handle(d, j, false);
	if (!c)
		_exit(1);
	o.directory = images;
	o.action_script = d->self_exe;
	/* a deleted file still open is kept in the images up to what the
	 * job's layer can hold (CRIU's own default is 1 MiB) */
	o.ghost_limit = j->disk ? j->disk : d->cfg->layer_size;
	for (unsigned attempt = 1;; attempt++) {
		if (c->migrate(c, MIGRATE_DUMP, &o, sizeof(o)) == 0)
			_exit(0);
		/* CRIU thaws what it froze, unless it died: never leave the job frozen */
		if (c->is_running(c) && !strcmp(c->state(c), "FROZEN"))
			c->unfreeze(c);
		if (attempt == DUMP_ATTEMPTS || !dump_met_moving_task(dir))
			break;
		usleep(attempt * 200000);
	}
	dump_fail_reason(dir, o.ghost_limit);
	_exit(1);
}

static _noreturn_ void restore_child(struct daemon *d, struct job *j, int errfd)
{
	char images[4200], path[4096];
	struct migrate_opts o = { 0 };
	struct lxc_container *c;

	child_setup(errfd);
	if (criu_conf_path(d, path, sizeof(path)) < 0 || setenv("CRIU_CONFIG_FILE", path, 1) < 0)
		_exit(1);
	snprintf(images, sizeof(images), "%s/%s/%u/images", d->cfg->checkpoint_dir, j->id,
		 j->run->version);
	c = container_handle(d, j, true);
	if (!c)
		_exit(1);
	o.directory = images;
	if (c->migrate(c, MIGRATE_RESTORE, &o, sizeof(o)) == 0)
		_exit(0);
	dprintf(3, "CRIU could not restore the container");
	_exit(1);
}

static int run_fork(struct daemon *d, struct job *j, bool stop)
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
			dump_child(d, j, p[1], stop);
		restore_child(d, j, p[1]);
	}
	close(p[1]);
	(void)setpgid(j->run->child, j->run->child); /* (as the child does: no race) */
	j->run->err_fd = p[0];
	j->run->child_fd = (int)syscall(SYS_pidfd_open, j->run->child, 0);
	if (j->run->child_fd < 0 ||
	    (r = daemon_epoll_add(d, j->run->child_fd, EPOLLIN, EP_CKPT, j)) < 0) {
		closep(&j->run->child_fd);
		return 0; /* finished synchronously by the caller */
	}
	return 1;
}

static void reply_conns(struct daemon *d, struct job *j, struct yajl_gen_t *g, const char *code,
			const char *msg)
{
	for (struct conn *c = d->conns, *next; c; c = next) {
		next = c->next;
		if (c->mode != CONN_CKPT || c->job != j)
			continue;
		c->mode = CONN_REQUEST;
		if (code)
			conn_reply_error(c, code, "%s", msg);
		else if (g)
			conn_send_map(c, g);
		g = NULL; /* one answer per generator */
		c->job = NULL;
		c->mode = CONN_CLOSING;
		conn_event(d, c, 0);
	}
}

static void set_state(struct daemon *d, struct job *j, enum job_state s)
{
	int r;

	j->state = s;
	if ((r = daemon_persist_job(d, j)) < 0)
		log_warn("Failed to persist job %s: %s", j->id, strerror(-r));
}

static unsigned next_version(struct daemon *d, struct job *j, int jfd)
{
	_cleanup_free_ unsigned *v = NULL;
	size_t n = 0;
	unsigned next = j->ckpt_last + 1;

	if (ckpt_list_versions(jfd, &v, &n) >= 0 && n && v[n - 1] >= next)
		next = v[n - 1] + 1;
	return next;
}

static int begin_dump(struct daemon *d, struct job *j, bool stop, char **ret_msg)
{
	_cleanup_close_ int jfd = -EBADF;
	const char *why;
	char name[32];
	int r;

	if (j->state != JOB_RUNNING || j->closing || j->run)
		return *ret_msg = xstrdup_printf("Job %.12s is %s; only a running job can be "
						 "checkpointed",
						 j->id,
						 j->run ? "busy" : job_state_to_string(j->state)),
		       -EBUSY;
	if (j->tty)
		return *ret_msg = xstrdup_printf("Job %.12s has a terminal (xrun -t): jobs with "
						 "terminals cannot be checkpointed; run it "
						 "without -t",
						 j->id),
		       -EOPNOTSUPP;
	if (j->net.mode == NETSETUP_BRIDGE && ckpt_bridge_allowed(d, &why) < 0)
		return *ret_msg = xstrdup_printf(
			       "Job %.12s uses --net bridge and cannot be "
			       "checkpointed on this node: %s; run it with --net none",
			       j->id, why),
		       -EOPNOTSUPP;
	if (!d->self_exe || strpbrk(d->self_exe, " \t\n'\"\\$`;&|<>*?()[]{}!#~"))
		return *ret_msg = strdup("xosd's own path cannot serve as CRIU's action script"),
		       -EINVAL;
	if ((r = ckpt_space_check(d, j, ret_msg)) < 0) /* before anything is frozen */
		return r;
	jfd = ckpt_job_store(d, j, true);
	if (jfd < 0)
		return *ret_msg = xstrdup_printf("Cannot open the checkpoint store %s: %s",
						 d->cfg->checkpoint_dir, strerror(-jfd)),
		       jfd;
	j->run = calloc(1, sizeof(*j->run));
	if (!j->run)
		return *ret_msg = strdup("Out of memory"), -ENOMEM;
	*j->run = (struct ckpt_run){ .kind = CKPT_DUMP,
				     .version = next_version(d, j, jfd),
				     .stop = stop,
				     .prev = j->state,
				     .child_fd = -EBADF,
				     .err_fd = -EBADF,
				     .begun_us = mono_usec() };
	snprintf(name, sizeof(name), ".new-%u", j->run->version);
	(void)rm_rf_at(jfd, name);
	if (mkdirat(jfd, name, 0700) < 0) {
		r = -errno;
		*ret_msg = xstrdup_printf("Cannot make a version in %s: %s", d->cfg->checkpoint_dir,
					  strerror(-r));
		run_free(TAKE_PTR(j->run));
		return r;
	}
	if (j->ckpt.signal)
		(void)container_signal(d, j, 0, j->ckpt.signal);
	set_state(d, j, JOB_CHECKPOINTING);
	{
		_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
		struct runtime_accounting base = j->acct_base, now;

		/* a restore of this version goes on counting from what was used so far */
		if (container_accounting(d, j, &now) >= 0)
			job_acct_add(&j->acct_base, &now);
		if (g) {
			job_to_json(j, g);
			j->run->record = json_gen_take(g, true);
		}
		j->acct_base = base; /* (this container goes on counting for itself) */
	}
	r = run_fork(d, j, stop);
	if (r < 0) {
		*ret_msg = xstrdup_printf("Cannot fork: %s", strerror(-r));
		(void)rm_rf_at(jfd, name);
		run_free(TAKE_PTR(j->run));
		set_state(d, j, JOB_RUNNING);
		return r;
	}
	if (r == 0)
		ckpt_child_done(d, j);
	return 0;
}

static void gen_manifest(struct daemon *d, struct job *j, int vfd, yajl_gen g,
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

/* Images to the mapped root, the manifest, then the version is renamed into place. */
static int finish_version(struct daemon *d, struct job *j, int jfd, char **ret_manifest)
{
	_cleanup_close_ int vfd = -EBADF;
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	_cleanup_free_ char *sz = NULL, *text = NULL;
	struct ckpt_stats st = { 0 };
	uint64_t sizes[4] = { 0 };
	unsigned long long ub = 0, sb = 0;
	char tmp[32], final[32];
	int r;

	snprintf(tmp, sizeof(tmp), ".new-%u", j->run->version);
	snprintf(final, sizeof(final), "%u", j->run->version);
	vfd = open_dir_at(jfd, tmp);
	if (vfd < 0 || !g)
		return vfd < 0 ? vfd : -ENOMEM;
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
	gen_manifest(d, j, vfd, g, &st, sizes);
	text = json_gen_take(g, true);
	if (!text)
		return -ENOMEM;
	r = write_file_atomic_at(vfd, "manifest.json", text, strlen(text), 0600, true);
	if (r < 0)
		return r;
	if (renameat(jfd, tmp, jfd, final) < 0 || fsync(jfd) < 0)
		return -errno;
	*ret_manifest = TAKE_PTR(text);
	return 0;
}

/* Keep the newest keep versions (0: all). */
static void apply_retention(struct daemon *d, struct job *j, int jfd)
{
	unsigned keep = ckpt_keep_of(d->cfg, j);
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
static char *keep_failed_log(struct daemon *d, struct job *j, int jfd)
{
	char from[64], to[64];

	snprintf(from, sizeof(from), ".new-%u/images/dump.log", j->run->version);
	snprintf(to, sizeof(to), "failed-%u.dump.log", j->run->version);
	if (renameat(jfd, from, jfd, to) < 0)
		return NULL;
	return xstrdup_printf("%s/%s/%s", d->cfg->checkpoint_dir, j->id, to);
}

/* A failed dump never leaves the container frozen, whoever froze it (CRIU
 * killed while it held the freezer cannot thaw it). */
static void thaw_container(struct daemon *d, struct job *j)
{
	bool v2 = d->cg == &runtime_cgroup_v2;
	struct runtime_cgroup_paths p;
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -EBADF;
	char name[64];

	container_name(j, name, sizeof(name));
	if (runtime_cgroup_paths(j->cgroup_parent, name, &p) < 0)
		return;
	path = v2 ? xstrdup_printf("/sys/fs/cgroup/%s/cgroup.freeze", p.payload)
		  : xstrdup_printf("/sys/fs/cgroup/freezer/%s/freezer.state", p.payload);
	fd = path ? open(path, O_WRONLY | O_CLOEXEC) : -EBADF;
	if (fd >= 0 && write(fd, v2 ? "0" : "THAWED", v2 ? 1 : 6) < 0)
		log_warn("Failed to thaw the container of job %s: %s", j->id, strerror(errno));
}

/* Why a dump was aborted, for the user; NULL if it was not. */
static char *abort_reason(struct daemon *d, struct job *j)
{
	if (j->run->kill_sig)
		return xstrdup_printf("it was aborted by xkill (signal %d); the job was thawed "
				      "and got the signal",
				      j->run->kill_sig);
	if (j->run->timed_out) {
		uint64_t t = d->cfg->dump_timeout_us;
		bool ms = t % 1000000 != 0;

		return xstrdup_printf("it took longer than dump_timeout (%llu %s) and was aborted; "
				      "the job was thawed and runs on (raise dump_timeout in "
				      "xosd.conf if the job needs longer)",
				      (unsigned long long)(ms ? t / 1000 : t / 1000000),
				      ms ? "ms" : "s");
	}
	return NULL;
}

/* A CRIU killed mid-dump leaves its network lock in the job's namespace:
 * the job would run on with every packet dropped, loopback too. */
static void unlock_network(struct daemon *d, struct job *j)
{
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

static void dump_failed(struct daemon *d, struct job *j, int jfd, const char *why)
{
	_cleanup_free_ char *log = jfd >= 0 ? keep_failed_log(d, j, jfd) : NULL;
	_cleanup_free_ char *msg = NULL, *aborted = abort_reason(d, j);
	char name[32];

	snprintf(name, sizeof(name), ".new-%u", j->run->version);
	if (jfd >= 0)
		(void)rm_rf_at(jfd, name);
	unlock_network(d, j);
	thaw_container(d, j);
	msg = xstrdup_printf("Checkpoint of job %.12s failed: %s; version %u was discarded%s%s%s",
			     j->id, aborted ? aborted : why, j->run->version,
			     log ? " (see CRIU's log " : "", log ? log : "", log ? ")" : "");
	log_error("%s", msg ? msg : why);
	j->state = JOB_RUNNING;
	reply_conns(d, j, NULL, "checkpoint_failed", msg ? msg : why);
}

static void dump_done(struct daemon *d, struct job *j, bool ok, const char *why)
{
	_cleanup_close_ int jfd = ckpt_job_store(d, j, false);
	_cleanup_free_ char *manifest = NULL, *over = NULL;
	struct ckpt_run *run = j->run;
	int r = -EIO;

	if (ok && !run->stop && (over = ckpt_space_over_quota(d, j, jfd, run->version)))
		ok = false, why = over;
	if (ok && jfd >= 0 && (r = finish_version(d, j, jfd, &manifest)) < 0)
		why = "could not finish the version (the store may be full)";
	if (!ok || r < 0) {
		_cleanup_free_ char *full = ckpt_space_dump_failure(d, j, jfd, run->version);

		dump_failed(d, j, jfd, full ? full : why);
		if (run->stop && !run->ct_gone && !container_running(j)) /* killed after all */
			run->ct_gone = true;
	} else {
		_cleanup_json_ yajl_val t = NULL;
		_cleanup_gen_ yajl_gen g = ops_reply_begin();

		(void)json_parse(manifest, JSON_DEPTH_MAX, NULL, 0, &t);
		j->ckpt_last = run->version;
		apply_retention(d, j, jfd);
		ckpt_space_changed(j, true);
		(void)hook_run_detached(d->cfg->hooks_dir, HOOK_POSTCHECKPOINT, j->id, manifest,
					strlen(manifest), d->cfg->hook_timeout_us);
		j->state = run->stop ? JOB_CHECKPOINTED : JOB_RUNNING;
		log_info("Job %s: version %u made%s", j->id, run->version,
			 run->stop ? "; the job is stopped" : "");
		if (g) {
			json_gen_kv_str(g, "job", j->id);
			json_gen_key(g, "checkpoint");
			ckpt_gen_summary(g, t);
			reply_conns(d, j, g, NULL, NULL);
		}
	}
	j->run = NULL;
	if (j->state == JOB_CHECKPOINTED) {
		(void)daemon_persist_job(d, j);
		j->parked = j->ckpt_last; /* its layer is the version's: kept for the restart */
		daemon_job_cleanup(d, j); /* container, volumes, config; the record stays */
	} else {
		(void)daemon_persist_job(d, j);
		if (run->ct_gone)
			daemon_job_gone(d, j);
	}
	if (run->kill_sig && j->state == JOB_CHECKPOINTED) /* the dump won the race */
		ckpt_discard(d, j, run->kill_sig);
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

/* The spool as it was at the version; no request left for the loader. */
static int restore_spool(struct daemon *d, struct job *j, int vfd)
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

/* prev: the state the job goes back to; one stopped at a checkpoint keeps
 * its network for the next try. */
static void undo_restore(struct daemon *d, struct job *j, enum job_state prev)
{
	if (j->notify_fd >= 0)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, j->notify_fd, NULL);
	closep(&j->notify_fd);
	container_release(j);
	if (prev != JOB_CHECKPOINTED)
		netsetup_job_release(d->net, j->id, &j->net);
	rootfs_job_umount(d, j);
	container_remove_config(d, j);
	j->cg_prune_tries = 50;
}

static int prepare_restore(struct daemon *d, struct job *j, int vfd, const char **ret_what)
{
	int r;

	if ((r = daemon_job_dir(d, j)) < 0)
		return *ret_what = "opening the job's directory", r;
	if ((r = take_units(j, vfd)) < 0)
		return *ret_what = "reading the version's record", r;
	if ((r = restore_spool(d, j, vfd)) < 0)
		return *ret_what = "restoring the spool", r;
	/* the restart of the version a job stopped at runs on its own layer and
	 * root, still mounted: same device and inode numbers (DECISIONS (ab)) */
	if (j->parked != j->run->version || j->run->prev != JOB_CHECKPOINTED ||
	    !rootfs_job_kept(d, j)) {
		rootfs_job_umount(d, j);
		if ((r = rootfs_job_mount_from(d, j, vfd)) < 0)
			return *ret_what = "restoring the writable layer", r;
	}
	j->parked = 0;
	free(j->run->detail);
	j->run->detail = NULL;
	if ((r = volume_restage(d, j, &j->run->detail)) < 0)
		return *ret_what = "mounting the job's volumes", r;
	/* the same address and ports as before (the record keeps them) */
	if (!j->net.active && (r = netsetup_job_setup(d->net, j->id, &j->net, &j->run->detail)) < 0)
		return *ret_what = "setting up the job's network again", r;
	if ((r = container_create(d, j)) < 0)
		return *ret_what = "writing the container config", r;
	if ((r = prune_cgroups_now(j)) < 0)
		return *ret_what = "removing the cgroups of the job's last container", r;
	if (j->notify_fd < 0 && (r = notify_listen(d, j)) < 0)
		return *ret_what = "creating the job's notify socket", r;
	return 0;
}

static int begin_restore(struct daemon *d, struct job *j, unsigned version, char **ret_msg)
{
	_cleanup_close_ int jfd = ckpt_job_store(d, j, false), vfd = -EBADF;
	const char *what = NULL;
	char name[32];
	int r;

	snprintf(name, sizeof(name), "%u", version);
	vfd = jfd >= 0 ? open_dir_at(jfd, name) : -ENOENT;
	if (vfd < 0)
		return *ret_msg = xstrdup_printf("Job %.12s has no version %u (see xcheckpoint "
						 "--list)",
						 j->id, version),
		       -ENOENT;
	{
		_cleanup_free_ char *why = NULL;

		if (ckpt_check_images(vfd, &why) < 0)
			return *ret_msg = xstrdup_printf("Version %u of job %.12s is damaged: %s; "
							 "restart refused (restart from another "
							 "version, see xcheckpoint --list)",
							 version, j->id, why ? why : "unreadable"),
			       -EBADMSG;
	}
	j->run = calloc(1, sizeof(*j->run));
	if (!j->run)
		return *ret_msg = strdup("Out of memory"), -ENOMEM;
	*j->run = (struct ckpt_run){ .kind = CKPT_RESTORE,
				     .version = version,
				     .prev = j->state,
				     .child_fd = -EBADF,
				     .err_fd = -EBADF,
				     .begun_us = mono_usec() };
	set_state(d, j, JOB_RESTORING);
	r = prepare_restore(d, j, vfd, &what);
	if (r >= 0)
		r = run_fork(d, j, false);
	if (r < 0) {
		*ret_msg = xstrdup_printf("Restart of job %.12s failed while %s: %s", j->id,
					  what ? what : "forking",
					  j->run->detail ? j->run->detail : strerror(-r));
		undo_restore(d, j, j->run->prev);
		set_state(d, j, j->run->prev);
		run_free(TAKE_PTR(j->run));
		return r;
	}
	if (r == 0)
		ckpt_child_done(d, j);
	return 0;
}

static void restore_done(struct daemon *d, struct job *j, bool ok, const char *why)
{
	struct ckpt_run *run = j->run;
	_cleanup_free_ char *msg = NULL;
	int r = ok ? container_started(d, j) : -ECHILD;

	j->run = NULL;
	if (r < 0) {
		msg = xstrdup_printf("Restart of job %.12s from version %u failed: %s (see CRIU's "
				     "log %s/%s/%u/images/restore.log)",
				     j->id, run->version,
				     run->kill_sig    ? "it was aborted by xkill"
				     : run->timed_out ? "it took longer than restore_timeout"
				     : ok             ? strerror(-r)
						      : why,
				     d->cfg->checkpoint_dir, j->id, run->version);
		log_error("%s", msg ? msg : why);
		undo_restore(d, j, run->prev);
		set_state(d, j, run->prev);
		if (!job_is_live(j))
			closep(&j->dirfd);
		reply_conns(d, j, NULL, "restart_failed", msg ? msg : why);
		if (run->kill_sig && job_is_live(j)) /* killed: it ends here */
			ckpt_discard(d, j, run->kill_sig);
		run_free(run);
		return;
	}
	free(j->reason);
	j->reason = NULL;
	j->ended_us = 0;
	j->have_acct = false;
	j->restores++;
	set_state(d, j, JOB_RUNNING);
	if ((r = daemon_watch_job(d, j)) < 0)
		log_error("Failed to watch restored job %s: %s", j->id, strerror(-r));
	kill(j->init_pid, SIGUSR1); /* the loader looks at its requests again */
	if (run->kill_sig)          /* xkill came as it ended */
		(void)container_signal(d, j, 0, run->kill_sig);
	else if (j->ckpt.restore_signal)
		(void)container_signal(d, j, 0, j->ckpt.restore_signal);
	log_info("Job %s restarted from version %u", j->id, run->version);
	{
		_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
		_cleanup_free_ char *text = NULL;

		if (g) {
			job_to_json(j, g);
			text = json_gen_take(g, true);
		}
		if (text)
			(void)hook_run_detached(d->cfg->hooks_dir, HOOK_POSTRESTORE, j->id, text,
						strlen(text), d->cfg->hook_timeout_us);
	}
	{
		_cleanup_gen_ yajl_gen g = ops_reply_begin();

		if (g) {
			json_gen_kv_str(g, "job", j->id);
			json_gen_kv_uint(g, "version", run->version);
			json_gen_kv_uint(g, "restore_duration", mono_usec() - run->begun_us);
			reply_conns(d, j, g, NULL, NULL);
		}
	}
	run_free(run);
	notify_collect_spool(d, j);
}

void ckpt_child_done(struct daemon *d, struct job *j)
{
	struct ckpt_run *run = j->run;
	char msg[1024] = "";
	int status = 0;
	ssize_t n;

	if (run->child_fd >= 0)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, run->child_fd, NULL);
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
		dump_done(d, j, WIFEXITED(status) && WEXITSTATUS(status) == 0, msg);
	else
		restore_done(d, j, WIFEXITED(status) && WEXITSTATUS(status) == 0, msg);
}

bool ckpt_container_gone(struct daemon *d, struct job *j)
{
	if (!j->run || j->run->kind != CKPT_DUMP)
		return false;
	if (j->pidfd >= 0)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, j->pidfd, NULL);
	j->run->ct_gone = true;
	return true;
}

/* ---- requests ---- */

static int get_version(struct conn *c, yajl_val t, unsigned *ret)
{
	uint64_t v = 0;
	int r = json_get_uint(t, "version", &v);

	if (r == -ENOENT)
		return *ret = 0, 0;
	if (r < 0 || v == 0 || v > 1000000000) {
		conn_reply_error(c, "bad_request", "Field 'version' must be a positive integer");
		return -EINVAL;
	}
	*ret = (unsigned)v;
	return 0;
}

static struct job *request_job(struct daemon *d, struct conn *c, yajl_val t)
{
	const char *name = NULL;

	if (json_get_string(t, "job", &name) < 0) {
		conn_reply_error(c, "bad_request", "Field 'job' (string) is required");
		return NULL;
	}
	return ops_lookup(d, c, name);
}

/* The error code of a refused dump or restore. */
static const char *refusal_code(enum ckpt_kind kind, int r)
{
	if (kind == CKPT_DUMP && (r == -EDQUOT || r == -ENOSPC))
		return r == -EDQUOT ? "quota_exceeded" : "no_space";
	if (kind == CKPT_DUMP)
		return r == -EBUSY ? "conflict" : r == -EOPNOTSUPP ? "not_supported" : "internal";
	return r == -ENOENT ? "not_found" : r == -EBADMSG ? "damaged" : "restart_failed";
}

/* Begin a dump (with stop) or a restore (of version) of j for c, which is
 * answered when it has ended, or at once when it cannot begin. */
static void begin_for(struct daemon *d, struct conn *c, struct job *j, enum ckpt_kind kind,
		      bool stop, unsigned version)
{
	_cleanup_free_ char *msg = NULL;
	int r;

	c->mode = CONN_CKPT;
	c->job = j;
	r = kind == CKPT_DUMP ? begin_dump(d, j, stop, &msg) : begin_restore(d, j, version, &msg);
	if (r < 0) {
		c->mode = CONN_REQUEST;
		c->job = NULL;
		conn_reply_error(c, refusal_code(kind, r), "%s", msg ? msg : strerror(-r));
	}
}

void ckpt_op_checkpoint(struct daemon *d, struct conn *c, yajl_val t)
{
	struct job *j;
	bool stop = false;

	if (json_get_bool(t, "stop", &stop) == -EINVAL)
		return conn_reply_error(c, "bad_request", "Field 'stop' must be true or false");
	j = request_job(d, c, t);
	if (j)
		begin_for(d, c, j, CKPT_DUMP, stop, 0);
}

void ckpt_op_restart(struct daemon *d, struct conn *c, yajl_val t)
{
	_cleanup_free_ unsigned *v = NULL;
	_cleanup_close_ int jfd = -EBADF;
	unsigned version;
	size_t n = 0;
	struct job *j;

	if (get_version(c, t, &version) < 0 || !(j = request_job(d, c, t)))
		return;
	if (j->run || (job_is_live(j) && j->state != JOB_CHECKPOINTED))
		return conn_reply_error(c, "conflict",
					"Job %.12s is %s: xrestart is refused while it runs "
					"(xcheckpoint --stop it, or xkill it, first)",
					j->id, job_state_to_string(j->state));
	jfd = ckpt_job_store(d, j, false);
	if (jfd < 0 || ckpt_list_versions(jfd, &v, &n) < 0 || n == 0)
		return conn_reply_error(c, "not_found", "Job %.12s has no checkpoint", j->id);
	/* an ended job's container may still be going away (its network and
	 * mounts go with it): the restore must not meet it */
	if (!job_is_live(j) && j->pidfd >= 0 && daemon_job_settle(d, j) < 0)
		return conn_reply_error(c, "conflict",
					"The last container of job %.12s is still going away; "
					"try xrestart again in a moment",
					j->id);
	begin_for(d, c, j, CKPT_RESTORE, false, version ? version : v[n - 1]);
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

void ckpt_op_list(struct daemon *d, struct conn *c, yajl_val t)
{
	_cleanup_free_ unsigned *v = NULL;
	_cleanup_close_ int jfd = -EBADF;
	_cleanup_gen_ yajl_gen g = NULL;
	size_t n = 0;
	struct job *j = request_job(d, c, t);

	if (!j)
		return;
	jfd = ckpt_job_store(d, j, false);
	if (jfd >= 0 && ckpt_list_versions(jfd, &v, &n) < 0)
		return conn_reply_error(c, "internal", "Cannot read the checkpoint store");
	g = ops_reply_begin();
	if (!g)
		return;
	json_gen_kv_str(g, "job", j->id);
	json_gen_key(g, "versions");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++)
		gen_version(g, jfd, v[i]);
	yajl_gen_array_close(g);
	ckpt_space_gen_list(d, j, g);
	conn_send_map(c, g);
	c->mode = CONN_CLOSING;
}

void ckpt_op_delete(struct daemon *d, struct conn *c, yajl_val t)
{
	_cleanup_close_ int jfd = -EBADF;
	_cleanup_gen_ yajl_gen g = NULL;
	unsigned version;
	char name[32];
	struct job *j;
	int r;

	if (get_version(c, t, &version) < 0 || !(j = request_job(d, c, t)))
		return;
	if (!version)
		return conn_reply_error(c, "bad_request", "Field 'version' is required");
	if (j->run && j->run->kind == CKPT_RESTORE && j->run->version == version)
		return conn_reply_error(c, "conflict", "Version %u is being restored", version);
	snprintf(name, sizeof(name), "%u", version);
	jfd = ckpt_job_store(d, j, false);
	if (jfd < 0 || faccessat(jfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
		return conn_reply_error(c, "not_found", "Job %.12s has no version %u", j->id,
					version);
	r = rm_rf_at(jfd, name);
	ckpt_space_changed(j, false);
	if (r < 0)
		return conn_reply_error(c, "internal", "Failed to delete version %u: %s", version,
					strerror(-r));
	slice_job_check(d, j); /* an ended job's last version: its ids go */
	g = ops_reply_begin();
	if (g) {
		json_gen_kv_str(g, "job", j->id);
		json_gen_kv_uint(g, "deleted", version);
		conn_send_map(c, g);
	}
	c->mode = CONN_CLOSING;
}

/* ---- the job's life around checkpoints ---- */

void ckpt_discard(struct daemon *d, struct job *j, int sig)
{
	for (size_t i = 0; i < j->n_units; i++)
		if (j->units[i].state == UNIT_RUNNING) {
			j->units[i].state = UNIT_KILLED;
			j->units[i].sig = sig;
			j->units[i].ended_us = now_usec();
		}
	job_finish(j);
	/* a stopped job keeps its network (address, ports), layer and root until
	 * it ends: now */
	netsetup_job_release(d->net, j->id, &j->net);
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

void ckpt_forget(struct daemon *d, struct job *j)
{
	int s = ckpt_store_fd(d);

	if (s >= 0)
		(void)rm_rf_at(s, j->id);
}

/* The container of a job that asked for it is gone without the job having
 * ended (the node or xosd failed): restore it from its newest version. */
static bool recover(struct daemon *d, struct job *j)
{
	_cleanup_free_ unsigned *v = NULL;
	_cleanup_free_ char *msg = NULL;
	_cleanup_close_ int jfd = -EBADF, xos = -EBADF;
	size_t n = 0;

	if (!j->ckpt.restart_on_failure || j->state != JOB_RUNNING || container_attach(d, j) >= 0)
		return false;
	container_release(j);
	xos = open_dir_at(j->dirfd, "xos");
	if (xos >= 0 && j->spoolfd < 0)
		j->spoolfd = open_dir_at(xos, "spool");
	notify_collect_spool(d, j); /* it may have ended on its own */
	closep(&j->spoolfd);
	jfd = ckpt_job_store(d, j, false);
	if (!job_is_live(j) || jfd < 0 || ckpt_list_versions(jfd, &v, &n) < 0 || n == 0)
		return false;
	log_info("Job %s lost its container while xosd was down; restoring version %u", j->id,
		 v[n - 1]);
	if (begin_restore(d, j, v[n - 1], &msg) < 0) {
		log_error("%s", msg ? msg : "Failed to restore");
		return false;
	}
	return true;
}

bool ckpt_adopt(struct daemon *d, struct job *j)
{
	_cleanup_close_ int jfd = -EBADF;

	if (j->state == JOB_CHECKPOINTED) {
		closep(&j->dirfd);
		return true;
	}
	if (j->state == JOB_CHECKPOINTING || j->state == JOB_RESTORING) {
		/* xosd stopped in the middle: what is running runs on */
		jfd = ckpt_job_store(d, j, false);
		if (jfd >= 0)
			ckpt_remove_partial(jfd);
		j->state = JOB_RUNNING;
	}
	return recover(d, j);
}

/* Every task in the job container's cgroup gets SIGKILL (a stuck restore). */
static void kill_cgroup_tasks(struct job *j)
{
	static const char *const roots[] = { "/sys/fs/cgroup/pids", "/sys/fs/cgroup" };
	struct runtime_cgroup_paths p;
	char name[64];

	container_name(j, name, sizeof(name));
	if (runtime_cgroup_paths(j->cgroup_parent, name, &p) < 0)
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
static void abort_step(struct job *j, uint64_t now)
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
		kill_cgroup_tasks(j);
	run->abort_us = UINT64_MAX;
}

void ckpt_abort(struct daemon *d, struct job *j, int sig)
{
	(void)d;
	if (!j->run || j->run->child <= 0 || j->run->kill_sig)
		return;
	log_info("Job %s: %s aborted by xkill", j->id,
		 j->run->kind == CKPT_DUMP ? "checkpoint" : "restart");
	j->run->kill_sig = sig;
	abort_step(j, mono_usec());
}

/* A dump that outlives dump_timeout (besides the job's --checkpoint-grace)
 * or a restore that outlives restore_timeout is aborted; ms to the next step. */
static int run_deadline(struct daemon *d, struct job *j, uint64_t now)
{
	struct ckpt_run *run = j->run;
	bool dump = run && run->kind == CKPT_DUMP;
	uint64_t end;

	if (!run || run->child <= 0)
		return -1;
	if (run->abort_us) {
		abort_step(j, now);
		return run->abort_us == UINT64_MAX || now >= run->abort_us
			       ? 1000
			       : (int)((run->abort_us - now + 999) / 1000);
	}
	end = run->begun_us + (dump ? d->cfg->dump_timeout_us : d->cfg->restore_timeout_us);
	if (dump && j->ckpt.signal)
		end += j->ckpt.grace_us;
	if (now < end)
		return (int)((end - now + 999) / 1000);
	log_error("%s of job %s takes longer than %s: aborting it", dump ? "Checkpoint" : "Restart",
		  j->id, dump ? "dump_timeout" : "restore_timeout");
	run->timed_out = true;
	abort_step(j, now);
	return 1000;
}

static void tick_job(struct daemon *d, struct job *j, uint64_t now)
{
	_cleanup_free_ char *msg = NULL;
	int r;

	if (!j->ckpt.every_us || j->state != JOB_RUNNING || j->run || j->closing) {
		j->ckpt_due_us = 0;
		return;
	}
	if (!j->ckpt_due_us)
		j->ckpt_due_us = now + ckpt_every_of(d->cfg, j);
	if (now < j->ckpt_due_us)
		return;
	j->ckpt_due_us = now + ckpt_every_of(d->cfg, j);
	ckpt_space_make_room(d, j); /* versions beyond --keep go first */
	r = begin_dump(d, j, false, &msg);
	if ((r == -EDQUOT || r == -ENOSPC) && msg)
		ckpt_space_skipped(d, j, msg);
	else if (r < 0)
		log_error("Periodic checkpoint of job %s failed: %s", j->id,
			  msg ? msg : "out of memory");
}

int ckpt_tick(struct daemon *d)
{
	uint64_t now = mono_usec(), next = UINT64_MAX;

	int timeout = -1;

	for (struct job *j = d->jobs; j; j = j->next) {
		int t = run_deadline(d, j, now);

		if (t >= 0 && (timeout < 0 || t < timeout))
			timeout = t;
		tick_job(d, j, now);
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
