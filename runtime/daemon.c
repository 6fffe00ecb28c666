/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xosd main loop: the job table, persistence, re-adoption after a restart. */
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <yajl/yajl_gen.h>

#include "hooks/hooks.h"
#include "runtime/runtime-internal.h"
#include "templates/templates.h"

/* epoll data: the object pointer (malloc'ed, so 16-byte aligned) with the
 * kind of event source in its low bits. */
#define EP_KIND_MASK 15ULL
_Static_assert(EP_MIGRATE <= EP_KIND_MASK, "more kinds of event source than the epoll data holds");

int daemon_epoll_add(struct daemon *d, int fd, uint32_t events, int kind, void *ptr)
{
	struct epoll_event ev = { .events = events };

	ev.data.u64 = (uint64_t)(uintptr_t)ptr | (uint64_t)kind;
	return epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int daemon_job_dir(struct daemon *d, struct job *j)
{
	if (j->dirfd < 0)
		j->dirfd = open_dir_at(d->jobs_fd, j->id);
	return j->dirfd;
}

int daemon_job_rundir(struct daemon *d, struct job *j, bool create)
{
	if (create && mkdirat(d->vjobs_fd, j->id, 0711) < 0 && errno != EEXIST)
		return -errno;
	return open_dir_at(d->vjobs_fd, j->id);
}

int daemon_job_runpath(struct daemon *d, const struct job *j, const char *sub, char *buf,
		       size_t len)
{
	int r = snprintf(buf, len, "%s/jobs/%s%s%s", d->volatile_dir, j->id, sub ? "/" : "",
			 sub ? sub : "");

	return r < 0 || (size_t)r >= len ? -ENAMETOOLONG : 0;
}

/* What is left of the job's volatile directory once its mounts are gone. */
static void job_rundir_remove(struct daemon *d, struct job *j)
{
	_cleanup_close_ int run = daemon_job_rundir(d, j, false);

	if (run < 0)
		return;
	unlinkat(run, "resolv.conf", 0);
	unlinkat(d->vjobs_fd, j->id, AT_REMOVEDIR);
}

/* A regular file of the spool, never anything the container's root planted in
 * its place (a symlink, a fifo that would block xosd). */
static int open_spool_file_at(int spool, const char *name)
{
	_cleanup_close_ int fd = openat_beneath(spool, name, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
	struct stat st;

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADFD;
	return TAKE_FD(fd);
}

int daemon_open_spool_file(struct daemon *d, struct job *j, const char *name)
{
	_cleanup_close_ int spool = -EBADF;
	int fd;

	if (j->spoolfd >= 0)
		return open_spool_file_at(j->spoolfd, name);
	spool = notify_xos_open(d, j, "spool", O_PATH | O_DIRECTORY);
	if (spool < 0)
		return -ENOENT;
	fd = open_spool_file_at(spool, name);
	if (!job_is_live(j))
		closep(&j->dirfd); /* ended jobs hold no fds */
	return fd;
}

/* The flusher: a thread that makes written final records and the users'
 * usage durable (fdatasync), in groups, so that the event loop never waits
 * for the disk. */
#define SYNC_DELAY_USEC 50000

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool running, stop;
	bool usage; /* <state>/usage.json was written */
	char (*ids)[XOS_JOB_ID_HEX + 1];
	size_t n, cap;
	int jobs_fd, state_fd;
} flusher = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void flush_one(int jobs_fd, const char *id)
{
	_cleanup_close_ int dir = openat(jobs_fd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int f = dir >= 0 ? openat(dir, "job.json", O_RDONLY | O_CLOEXEC) : -EBADF;

	if (f < 0 || fdatasync(f) < 0 || fsync(dir) < 0)
		log_warn("Failed to flush the record of job %s: %m", id);
}

static void flush_usage(int state_fd)
{
	_cleanup_close_ int f = openat(state_fd, USAGE_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (f < 0 || fdatasync(f) < 0 || fsync(state_fd) < 0)
		log_warn("Failed to flush the users' usage: %m");
}

static void *flusher_main(void *arg)
{
	sigset_t all;

	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the main loop's */
	pthread_mutex_lock(&flusher.lock);
	for (;;) {
		char(*ids)[XOS_JOB_ID_HEX + 1];
		size_t n;
		bool usage;

		while (flusher.n == 0 && !flusher.usage && !flusher.stop)
			pthread_cond_wait(&flusher.cond, &flusher.lock);
		if (flusher.n == 0 && !flusher.usage && flusher.stop)
			break;
		pthread_mutex_unlock(&flusher.lock);
		if (!flusher.stop)
			usleep(SYNC_DELAY_USEC); /* gather the ends of more jobs */
		pthread_mutex_lock(&flusher.lock);
		ids = flusher.ids;
		n = flusher.n;
		flusher.ids = NULL;
		flusher.n = flusher.cap = 0;
		usage = flusher.usage;
		flusher.usage = false;
		pthread_mutex_unlock(&flusher.lock);
		for (size_t i = 0; i < n; i++)
			flush_one(flusher.jobs_fd, ids[i]);
		if (usage)
			flush_usage(flusher.state_fd);
		free(ids);
		pthread_mutex_lock(&flusher.lock);
	}
	pthread_mutex_unlock(&flusher.lock);
	return NULL;
}

/* (with flusher.lock held) */
static void flusher_start(struct daemon *d)
{
	if (flusher.running)
		return;
	flusher.jobs_fd = d->jobs_fd;
	flusher.state_fd = d->state_fd;
	flusher.running = pthread_create(&flusher.thread, NULL, flusher_main, NULL) == 0;
}

void daemon_flush_usage(struct daemon *d)
{
	pthread_mutex_lock(&flusher.lock);
	flusher_start(d);
	flusher.usage = true;
	pthread_cond_signal(&flusher.cond);
	pthread_mutex_unlock(&flusher.lock);
	if (!flusher.running) /* no thread: flush here */
		flush_usage(d->state_fd);
}

static void flusher_queue(struct daemon *d, const char *id)
{
	pthread_mutex_lock(&flusher.lock);
	flusher_start(d);
	if (flusher.n == flusher.cap) {
		size_t cap = flusher.cap ? flusher.cap * 2 : 16;
		void *p = realloc(flusher.ids, cap * sizeof(*flusher.ids));

		if (p) {
			flusher.ids = p;
			flusher.cap = cap;
		}
	}
	if (flusher.n < flusher.cap)
		memcpy(flusher.ids[flusher.n++], id, XOS_JOB_ID_HEX + 1);
	pthread_cond_signal(&flusher.cond);
	pthread_mutex_unlock(&flusher.lock);
	if (!flusher.running) /* no thread: flush here */
		flush_one(d->jobs_fd, id);
}

static void flusher_stop(void)
{
	if (!flusher.running)
		return;
	pthread_mutex_lock(&flusher.lock);
	flusher.stop = true;
	pthread_cond_signal(&flusher.cond);
	pthread_mutex_unlock(&flusher.lock);
	pthread_join(flusher.thread, NULL);
	flusher.running = false;
	free(flusher.ids);
	flusher.ids = NULL;
	flusher.n = flusher.cap = 0;
}

/* The job's record; durable: written through and its directory entry synced
 * before this returns (a queued job, answered only once its record holds). */
static int write_record(struct daemon *d, struct job *j, bool durable)
{
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	_cleanup_free_ char *text = NULL;
	int r;

	if (!g)
		return -ENOMEM;
	job_to_json(j, g);
	text = json_gen_take(g, true);
	if (!text)
		return -ENOMEM;
	r = write_file_atomic_at(daemon_job_dir(d, j), "job.json", text, strlen(text), 0600,
				 durable);
	if (r >= 0 && durable && fsync(d->jobs_fd) < 0)
		r = -errno;
	return r;
}

/* j's record written (durable: synced), and what follows each write */
static int persist(struct daemon *d, struct job *j, bool durable)
{
	int r;

	d->jobs_gen++;
	queue_job_touched(d, j);
	recover_job_persisted(d, j); /* (its holder record in a shared store) */
	r = write_record(d, j, durable);
	if (j->state == JOB_CHECKPOINTED) /* (every change of state is persisted) */
		d->checkpointed_jobs = true;
	events_job_persisted(d, j);
	queue_job_charge(d, j);
	return r;
}

int daemon_persist_job(struct daemon *d, struct job *j)
{
	int r = persist(d, j, false);

	/* Only the end of a job must survive a crash of the node (its container
	 * dies with the node anyway); the flusher makes it durable within
	 * SYNC_DELAY, off the path that answers the client. */
	if (r >= 0 && d->cfg->sync_writes && job_state_is_final(j->state))
		flusher_queue(d, j->id);
	return r;
}

int daemon_persist_job_durably(struct daemon *d, struct job *j)
{
	return persist(d, j, d->cfg->sync_writes);
}

enum lookup { LOOKUP_ID, LOOKUP_LIVE_NAME, LOOKUP_PREFIX, LOOKUP_NAME, _LOOKUP_MAX };

static bool lookup_matches(const struct job *j, const char *name, size_t len, enum lookup how)
{
	switch (how) {
	case LOOKUP_ID:
		return !strcmp(j->id, name);
	case LOOKUP_LIVE_NAME:
		return j->name && job_is_live(j) && !strcmp(j->name, name);
	case LOOKUP_PREFIX:
		return !strncmp(j->id, name, len);
	default:
		return j->name && !strcmp(j->name, name);
	}
}

static bool sees(uid_t uid, const struct conn *c, const struct job *j)
{
	return c ? grid_may_see(c, j) : job_may_see(j, uid);
}

static int lookup_job(struct daemon *d, uid_t uid, const struct conn *c, const char *name,
		      struct job **ret)
{
	size_t len = strlen(name);

	if (len == 0)
		return -ENOENT;
	for (enum lookup how = 0; how < _LOOKUP_MAX; how++) {
		struct job *found = NULL;
		size_t n = 0;

		if (how == LOOKUP_ID) { /* (ids are unique: the table has it) */
			found = daemon_find_job(d, name);
			if (found && sees(uid, c, found)) {
				*ret = found;
				return 0;
			}
			continue;
		}
		/* (by name: only the jobs of that name, from the table by name) */
		for (struct job *j = how == LOOKUP_PREFIX ? d->jobs : daemon_named_first(d, name);
		     j; j = how == LOOKUP_PREFIX ? j->next : daemon_named_next(d, j, name))
			if (sees(uid, c, j) && lookup_matches(j, name, len, how))
				found = j, n++;
		if (n > 1)
			return -ENOTUNIQ;
		if (n == 1) {
			*ret = found;
			return 0;
		}
	}
	return -ENOENT;
}

int daemon_lookup_job(struct daemon *d, uid_t uid, const char *name, struct job **ret)
{
	return lookup_job(d, uid, NULL, name, ret);
}

int daemon_lookup_job_for(struct daemon *d, const struct conn *c, const char *name,
			  struct job **ret)
{
	return lookup_job(d, c->uid, c, name, ret);
}

int daemon_watch_job(struct daemon *d, struct job *j)
{
	char p[4096];
	int r = 0;

	if (j->spoolfd < 0) {
		j->spoolfd = notify_xos_open(d, j, "spool", O_RDONLY | O_DIRECTORY);
		if (j->spoolfd < 0)
			return j->spoolfd;
	}
	/* the directory of that fd: its magic link, followed as a parent ("N/") */
	snprintf(p, sizeof(p), "/proc/self/fd/%d/", j->spoolfd);
	j->inotify_wd = inotify_add_watch(d->inotify_fd, p,
					  IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_DONT_FOLLOW |
						  IN_ONLYDIR);
	if (j->inotify_wd < 0)
		return -errno;
	if (j->notify_fd < 0 && (r = notify_listen(d, j)) < 0)
		return r;
	if (j->pidfd >= 0)
		r = daemon_epoll_add(d, j->pidfd, EPOLLIN, EP_PIDFD, j);
	return r;
}

void daemon_unit_ended(struct daemon *d, struct job *j, unsigned unit)
{
	conns_unit_ended(d, j, unit);
	if (job_state_is_final(j->state))
		conns_job_ended(d, j);
}

/* The container is gone (or never came up): tidy every trace of it. */
/* The node owner's poststop hooks, once a job's container is gone. */
static void poststop_hooks(struct daemon *d, struct job *j)
{
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	_cleanup_free_ char *text = NULL;

	if (!g || j->starter > 0)
		return;
	job_to_json(j, g);
	text = json_gen_take(g, true);
	if (text)
		(void)hook_run_detached(d->cfg->hooks_dir, HOOK_POSTSTOP, j->id, text, strlen(text),
					d->cfg->hook_timeout_us);
}

void daemon_job_cleanup(struct daemon *d, struct job *j)
{
	if (j->pidfd >= 0 || j->c)
		poststop_hooks(d, j);
	if (j->inotify_wd >= 0)
		inotify_rm_watch(d->inotify_fd, j->inotify_wd);
	j->inotify_wd = -1;
	if (j->pidfd >= 0)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, j->pidfd, NULL);
	if (j->notify_fd >= 0)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, j->notify_fd, NULL);
	closep(&j->notify_fd);
	notify_unlink(d, j);
	container_release(j);
	/* the network goes with the job; a job stopped at a checkpoint keeps its
	 * address, ports and rules for its restore */
	if (j->state != JOB_CHECKPOINTED)
		netsetup_job_release(d->net, j->id, &j->net);
	/* one stopped at a checkpoint keeps its layer and root for the restart */
	if (j->state == JOB_CHECKPOINTED && j->parked)
		rootfs_job_park(d, j);
	else {
		/* an ended job with a version holds its root and layer for the
		 * restart of that version (rollback.c; DECISIONS (ao)) */
		if (job_state_is_final(j->state))
			rootfs_job_keep(d, j);
		rootfs_job_umount(d, j);
	}
	template_ops_job_gone(d, j);
	container_remove_config(d, j);
	job_rundir_remove(d, j);
	/* LXC's monitor may still sit in its cgroup; below a Slurm task's, a
	 * leftover would keep Slurm from removing the task's: longer */
	j->cg_prune_tries = j->cg_caller ? 300 : 50;
	d->cg_prune_pending = true;
	closep(&j->spoolfd);
	closep(&j->dirfd); /* an ended job holds no fd: xosd may keep thousands */
	/* ended, with no checkpoint version: its ids go */
	slice_job_check(d, j);
	d->prune_ended = true;
	queue_job_gone(d, j); /* its resources are free: the queue moves */
}

static bool job_in_use(struct daemon *d, struct job *j)
{
	for (struct conn *c = d->conns; c; c = c->next)
		if (c->job == j)
			return true;
	return j->cg_prune_tries > 0 || j->pidfd >= 0 || j->starter > 0 || j->run;
}

/* Forget the oldest ended jobs beyond keep_ended: record, output, directory. */
static void prune_ended_jobs(struct daemon *d)
{
	uint64_t n = 0;

	d->prune_ended = false;
	for (struct job *j = d->jobs; j; j = j->next)
		n += !job_is_live(j);
	while (n > d->cfg->keep_ended) {
		struct job **oldest = NULL, *j;
		int r;

		for (struct job **p = &d->jobs; *p; p = &(*p)->next)
			if (!job_is_live(*p) && !job_in_use(d, *p) &&
			    (!oldest || (*p)->ended_us < (*oldest)->ended_us))
				oldest = p;
		if (!oldest)
			return;
		j = *oldest;
		r = rm_rf_at(d->jobs_fd, j->id);
		if (r >= 0) {
			ckpt_forget(d->ckpt, j);
			slice_release(d, j);
		}
		if (r < 0) {
			log_warn("Failed to remove ended job %s: %s", j->id, strerror(-r));
			return;
		}
		log_debug("Forgot ended job %s (keep_ended = %llu)", j->id,
			  (unsigned long long)d->cfg->keep_ended);
		daemon_job_unlink(d, j);
		job_free(j);
		loader_copy_gc(d); /* (the loader copy it ran, unless another job runs it) */
		n--;
	}
}

/* Retry removing LXC's leftover cgroups; returns the next timeout (ms) or -1. */
static int prune_cgroups(struct daemon *d)
{
	int timeout = -1;

	/* (each main-loop turn: a walk of every job only while one has tries left) */
	if (!d->cg_prune_pending)
		return -1;
	d->cg_prune_pending = false;
	for (struct job *j = d->jobs; j; j = j->next) {
		struct runtime_cgroup_paths p;
		char name[64];

		if (j->cg_prune_tries <= 0)
			continue;
		snprintf(name, sizeof(name), "xos-%s", j->id);
		if (runtime_cgroup_paths(j->cgroup_parent, name, &p) < 0)
			j->cg_prune_tries = 0;
		else if (runtime_cgroup_prune(&p) == -EBUSY && --j->cg_prune_tries > 0)
			timeout = 100, d->cg_prune_pending = true;
		else
			j->cg_prune_tries = 0;
		if (j->cg_prune_tries == 0 && j->cgroup_parent_prev &&
		    runtime_cgroup_paths(j->cgroup_parent_prev, name, &p) >= 0) {
			(void)runtime_cgroup_prune(&p); /* what CRIU re-made of the old place */
			free(j->cgroup_parent_prev);
			j->cgroup_parent_prev = NULL;
		}
		if (j->cg_caller && j->cg_prune_tries == 0) {
			for (size_t i = 0; i < j->n_units; i++) /* the held exits */
				conns_unit_ended(d, j, j->units[i].n);
			conns_job_ended(d, j); /* and xwait's answer */
		}
	}
	return timeout;
}

bool job_cgroups_held(const struct job *j)
{
	return j->cg_caller && (job_is_live(j) || j->pidfd >= 0 || j->cg_prune_tries > 0);
}

/* The container of live job j is gone: what its units reported is taken,
 * the others failed with unit_reason, the job with job_reason. */
static void job_lost(struct daemon *d, struct job *j, const char *unit_reason,
		     const char *job_reason)
{
	if (job_is_live(j)) {
		notify_collect_spool(d, j);
		if (job_is_live(j)) {
			for (size_t i = 0; i < j->n_units; i++)
				if (j->units[i].state == UNIT_RUNNING) {
					struct unit *u = &j->units[i];

					free(u->reason);
					u->state = UNIT_FAILED;
					u->reason = strdup(unit_reason);
					u->ended_us = now_usec();
				}
			free(j->reason);
			j->reason = strdup(job_reason);
			job_finish(j);
			if (daemon_persist_job(d, j) < 0)
				log_warn("Failed to persist job %s: %m", j->id);
			for (size_t i = 0; i < j->n_units; i++)
				conns_unit_ended(d, j, j->units[i].n);
			conns_job_ended(d, j);
		}
	}
	daemon_job_cleanup(d, j);
}

void daemon_job_gone(struct daemon *d, struct job *j)
{
	job_lost(d, j, "lost: the container ended without a report",
		 "the job's container ended unexpectedly");
}

/* The node rebooted under live job j (its container went with the volatile
 * tmpfs) and ckpt_adopt did not restore it: it is lost. */
static void job_lost_reboot(struct daemon *d, struct job *j)
{
	static const char unit_reason[] = "lost: the node rebooted while it ran";
	_cleanup_free_ char *why = NULL;

	if (!j->ckpt.restart_on_failure)
		why = strdup(unit_reason);
	else if (!j->ckpt_last)
		why = strdup("lost: the node rebooted while it ran, and it had no checkpoint "
			     "to restart from");
	else
		why = xstrdup_printf("lost: the node rebooted while it ran, and restoring its "
				     "newest version failed (version %u; see xosd's log)",
				     j->ckpt_last);
	log_warn("Job %s was lost with the node's reboot%s", j->id,
		 j->ckpt.restart_on_failure ? " (not restored)" : "");
	job_lost(d, j, unit_reason, why ? why : unit_reason);
}

/* Wait (briefly) for the container of an ended job to go, answering its
 * loader's last report meanwhile: the loader leaves only after its ack. */
int daemon_job_settle(struct daemon *d, struct job *j)
{
	uint64_t deadline = mono_usec() + 3000000;

	if (j->pidfd < 0 && container_attach(d, j) < 0) {
		daemon_job_cleanup(d, j); /* already gone */
		return 0;
	}
	if (j->notify_fd < 0)
		(void)notify_listen(d, j);
	while (mono_usec() < deadline) {
		struct pollfd p[2] = { { .fd = j->pidfd, .events = POLLIN },
				       { .fd = j->notify_fd, .events = POLLIN } };

		if (poll(p, 2, 100) < 0 && errno != EINTR)
			break;
		if (p[0].revents) {
			daemon_job_cleanup(d, j);
			return 0;
		}
		if (p[1].revents)
			notify_accept(d, j);
	}
	log_warn("Container of ended job %s is still running", j->id);
	return -EBUSY;
}

static void adopt_job(struct daemon *d, struct job *j)
{
	int r = container_attach(d, j);

	if (r >= 0) {
		if (j->state == JOB_STARTING) { /* xosd stopped while it was starting */
			j->state = JOB_RUNNING;
			j->started_us = now_usec();
			(void)daemon_persist_job(d, j);
		}
		r = daemon_watch_job(d, j);
		if (r < 0)
			log_error("Failed to watch re-adopted job %s: %s", j->id, strerror(-r));
		notify_collect_spool(d, j);
		log_info("Re-adopted running job %s", j->id);
		return;
	}
	j->spoolfd = notify_xos_open(d, j, "spool", O_RDONLY | O_DIRECTORY);
	if (d->rebooted)
		return job_lost_reboot(d, j);
	log_info("Job %s ended while xosd was down; collecting its reports", j->id);
	daemon_job_gone(d, j);
}

static bool job_has_rundir(struct daemon *d, struct job *j)
{
	_cleanup_close_ int run = daemon_job_rundir(d, j, false);

	return run >= 0;
}

static int load_job(struct daemon *d, const char *id)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int dfd = open_dir_at(d->jobs_fd, id);
	struct job *j = NULL;
	int r;

	if (dfd < 0)
		return dfd;
	r = read_file_at(dfd, "job.json", 16 << 20, &text, NULL);
	if (r < 0)
		return r;
	r = job_from_json(text, &j);
	if (r < 0)
		return r;
	if (strcmp(j->id, id) != 0) {
		job_free(j);
		return -EINVAL;
	}
	j->dirfd = TAKE_FD(dfd);
	daemon_job_link(d, j);
	/* one that had ended before was charged to its owner's usage then */
	j->sched.charged = job_state_is_final(j->state);
	events_job_loaded(j); /* (what it is now is no event; what happens next is) */
	/* (not in the record: a node placing jobs below their callers placed this one so) */
	j->cg_caller = j->cgroup_parent && d->cfg->cgroup_parent &&
		       !strcmp(d->cfg->cgroup_parent, RUNTIME_CGROUP_PARENT_CALLER);
	if (j->state == JOB_QUEUED) /* no ids, network or container yet */
		return queue_adopt(d, j), 0;
	slice_adopt(d, j); /* (reconciled once every job is loaded) */
	/* a live job's network is its own again (lease, ports; the rules come
	 * with netsetup_reconcile); if its container is gone, it goes with it */
	if (job_is_live(j) && (r = netsetup_job_adopt(d->net, j->id, &j->net)) < 0)
		log_warn("Failed to take over the network of job %s: %s", j->id, strerror(-r));
	if (recover_loaded(d, j)) /* another node took it over meanwhile */
		return 0;
	if (ckpt_adopt(d->ckpt, j) || daemon_job_recover(d, j))
		return 0;
	if (job_is_live(j))
		adopt_job(d, j);
	else if (job_has_rundir(d, j))
		(void)daemon_job_settle(d, j); /* ended, but xosd stopped before tidying up */
	else
		closep(&j->dirfd);
	return 0;
}

static void load_jobs(struct daemon *d)
{
	DIR *dir = opendir_dup(d->jobs_fd);
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		int r;

		if (!job_id_valid(de->d_name))
			continue;
		r = load_job(d, de->d_name);
		if (r < 0)
			log_error("Failed to load job %s: %s", de->d_name, strerror(-r));
	}
	closedir(dir);
}

static int make_dir(const char *path, mode_t mode)
{
	int r = mkdir_p_at(AT_FDCWD, path, mode);

	if (r < 0)
		return r;
	return chmod(path, mode) < 0 ? -errno : 0;
}

/* xos-template-helper beside this xosd (a build tree, or both installed in
 * one directory), else the installed one. */
static char *template_helper_path(const char *self_exe)
{
	const char *slash = self_exe ? strrchr(self_exe, '/') : NULL;
	_cleanup_free_ char *beside = NULL;

	if (slash)
		beside = xstrdup_printf("%.*s/" TEMPLATE_HELPER_BIN, (int)(slash - self_exe),
					self_exe);
	if (beside && access(beside, X_OK) == 0)
		return TAKE_PTR(beside);
	return strdup(XOS_LIBEXECDIR "/" TEMPLATE_HELPER_BIN);
}

static int setup_dirs(struct daemon *d)
{
	struct runtime_config *c = d->cfg;
	int r;

	if ((r = make_dir(c->state_dir, 0711)) < 0 || (r = make_dir(c->run_dir, 0755)) < 0)
		return r;
	d->state_fd = open(c->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->state_fd < 0)
		return -errno;
	if (mkdirat(d->state_fd, "jobs", 0711) < 0 && errno != EEXIST)
		return -errno;
	if (mkdirat(d->state_fd, "rootfs-mnt", 0755) < 0 && errno != EEXIST)
		return -errno;
	/* container root must traverse these to reach its rootfs and mounts */
	if (fchmodat(d->state_fd, "jobs", 0711, 0) < 0)
		return -errno;
	d->jobs_fd = open_dir_at(d->state_fd, "jobs");
	if (d->jobs_fd < 0)
		return d->jobs_fd;
	/* (also removes what interrupted imports left) */
	if ((r = template_catalog_open(d->state_fd, &d->catalog_fd)) < 0)
		return r;
	d->volatile_dir = xstrdup_printf("%s/volatile", c->state_dir);
	d->lxcpath = xstrdup_printf("%s/volatile/lxc", c->state_dir);
	d->skel_dir = xstrdup_printf("%s/skel", c->state_dir);
	d->rootfs_mnt = xstrdup_printf("%s/rootfs-mnt", c->state_dir);
	d->self_exe = realpath("/proc/self/exe", NULL);
	d->template_helper = template_helper_path(d->self_exe);
	return d->volatile_dir && d->lxcpath && d->skel_dir && d->rootfs_mnt && d->template_helper
		       ? 0
		       : -ENOMEM;
}

/* The volatile tmpfs and its lxc and jobs directories (0711: container root
 * traverses them to reach its rootfs and mounts). */
static int setup_volatile(struct daemon *d)
{
	_cleanup_close_ int fd = -EBADF;
	int r = rootfs_volatile_setup(d->volatile_dir);

	if (r < 0)
		return r;
	d->rebooted = r > 0;
	fd = open(d->volatile_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if ((mkdirat(fd, "lxc", 0711) < 0 && errno != EEXIST) ||
	    (mkdirat(fd, "jobs", 0711) < 0 && errno != EEXIST) ||
	    fchmodat(fd, "lxc", 0711, 0) < 0 || fchmodat(fd, "jobs", 0711, 0) < 0)
		return -errno;
	d->vjobs_fd = open_dir_at(fd, "jobs");
	return d->vjobs_fd < 0 ? d->vjobs_fd : 0;
}

static int lock_state(struct daemon *d)
{
	int fd = openat(d->state_fd, "xosd.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return -EBUSY;
	}
	return fd; /* held for the daemon's life */
}

static int setup_listen(struct daemon *d)
{
	const char *path = d->cfg->socket_path;
	_cleanup_close_ int fd = unix_listen(path, 512);
	mode_t mode = 0666;

	if (fd < 0)
		return fd;
	if (d->cfg->socket_group) {
		struct group *g = getgrnam(d->cfg->socket_group);

		if (!g || chown(path, 0, g->gr_gid) < 0)
			return -ENOENT;
		mode = 0660;
	}
	if (chmod(path, mode) < 0)
		return -errno;
	d->listen_fd = TAKE_FD(fd);
	return daemon_epoll_add(d, d->listen_fd, EPOLLIN, EP_LISTEN, NULL);
}

/* liblxc sets id maps through a privileged newuidmap when one is installed,
 * and that insists that root's ranges cover the ids xos maps to themselves. */
static void warn_newuidmap(void)
{
	static const char *const paths[] = { "/usr/bin/newuidmap", "/bin/newuidmap" };

	for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
		struct stat st;
		char cap[64];

		if (stat(paths[i], &st) < 0)
			continue;
		if ((st.st_mode & S_ISUID) ||
		    getxattr(paths[i], "security.capability", cap, sizeof(cap)) > 0)
			log_warn("%s is installed and privileged: liblxc will map ids through it, "
				 "and job starts fail unless root's entries in /etc/subuid and "
				 "/etc/subgid also cover every job's uid and gids (see xosd(8), "
				 "SUBORDINATE IDS)",
				 paths[i]);
		return;
	}
}

/* Root's ranges (their sizes in ret_ranges); subuid_size and subgid_size
 * become the size of one job's slice. */
static int setup_ids(struct daemon *d, uint32_t ret_ranges[2])
{
	int r = runtime_subid_lookup("/etc/subuid", "root", 0, &d->subuid_base, &ret_ranges[0]);

	warn_newuidmap();
	if (r < 0)
		return log_error_errno(
			r, "No subordinate uid range for root in /etc/subuid "
			   "(add e.g. 'root:1000000:1000000000'; scripts/setup.sh does)");
	r = runtime_subid_lookup("/etc/subgid", "root", 0, &d->subgid_base, &ret_ranges[1]);
	if (r < 0)
		return log_error_errno(
			r, "No subordinate gid range for root in /etc/subgid "
			   "(add e.g. 'root:1000000:1000000000'; scripts/setup.sh does)");
	d->subuid_size = d->subgid_size = (uint32_t)d->cfg->idmap_slice;
	return 0;
}

/* Each job's slice of root's ids: the leases, reconciled once the jobs are loaded. */
static int setup_slices(struct daemon *d, const uint32_t ranges[2])
{
	int r = slice_setup(d, ranges[0], ranges[1]);

	if (r < 0)
		return log_error_errno(r, "Failed to set up the container id leases: %m");
	if (d->n_slices < 2)
		log_warn("Root's subordinate ranges (%u ids of uids from %u, %u of gids from %u) "
			 "hold no slice of %u ids for jobs besides the shared one: every job "
			 "start will fail; give root a larger range (scripts/setup.sh adds "
			 "one, see xosd(8))",
			 ranges[0], d->subuid_base, ranges[1], d->subgid_base, d->subuid_size);
	else
		log_info("Container ids: %u slices of %u ids for jobs, uids from %u, gids from %u",
			 d->n_slices - 1, d->subuid_size, d->subuid_base + d->subuid_size,
			 d->subgid_base + d->subgid_size);
	return 0;
}

static void handle_inotify(struct daemon *d)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(d->inotify_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			for (struct job *j = d->jobs; j; j = j->next)
				if (j->inotify_wd == ev->wd) {
					conns_job_output(d, j);
					break;
				}
			p += sizeof(*ev) + ev->len;
		}
	}
}

/* Out of fds (EMFILE, ENFILE): a pending client would wake epoll again and
 * again. Give up the reserve fd to accept it and refuse it, so that the
 * queue moves; if even that fails, stop listening for a moment. */
#define LISTEN_PAUSE_USEC 100000

static void listen_exhausted(struct daemon *d)
{
	int fd = -EBADF;

	if (d->reserve_fd >= 0) {
		closep(&d->reserve_fd);
		fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			conn_refuse(fd, "busy",
				    "xosd has no file descriptor left; try again later");
			close(fd);
		}
		d->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0 || d->reserve_fd < 0) {
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, d->listen_fd, NULL);
		d->listen_paused_until = mono_usec() + LISTEN_PAUSE_USEC;
	}
	log_warn("Out of file descriptors: refusing new clients for now "
		 "(raise xosd's RLIMIT_NOFILE, or lower max_connections_per_user)");
}

/* The listener back in epoll once its pause is over; the next timeout (ms) or -1. */
static int listen_resume(struct daemon *d)
{
	uint64_t now = mono_usec();

	if (!d->listen_paused_until)
		return -1;
	if (now < d->listen_paused_until)
		return (int)((d->listen_paused_until - now + 999) / 1000);
	d->listen_paused_until = 0;
	if (d->reserve_fd < 0)
		d->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (daemon_epoll_add(d, d->listen_fd, EPOLLIN, EP_LISTEN, NULL) < 0)
		log_error("Failed to listen again: %m");
	return -1;
}

static void handle_listen(struct daemon *d)
{
	for (;;) {
		int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
			listen_exhausted(d);
			if (d->listen_paused_until)
				return;
			continue;
		}
		if (fd < 0)
			return;
		if (!conn_new(d, fd))
			close(fd);
	}
}

/* The soft fd limit up to the hard one: every client holds one. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void dispatch(struct daemon *d, struct epoll_event *ev, int sfd)
{
	void *ptr = (void *)(uintptr_t)(ev->data.u64 & ~EP_KIND_MASK);
	struct job *j = ptr;

	switch ((int)(ev->data.u64 & EP_KIND_MASK)) {
	case EP_LISTEN:
		handle_listen(d);
		break;
	case EP_CLIENT:
		conn_event(d, ptr, ev->events);
		break;
	case EP_NOTIFY:
		notify_accept(d, j);
		break;
	case EP_INOTIFY:
		handle_inotify(d);
		break;
	case EP_STARTER:
		ops_start_done(d, j);
		break;
	case EP_TEMPLATE:
		template_ops_event(d, ptr);
		break;
	case EP_PIDFD:
		if (j->pooled) {
			pool_gone(d, j);
			break;
		}
		log_debug("Container of job %s ended", j->id);
		if (!ckpt_container_gone(d->ckpt, j))
			daemon_job_gone(d, j);
		break;
	case EP_CKPT:
		ckpt_child_done(d->ckpt, j);
		break;
	case EP_COMMIT:
		commit_done(d);
		break;
	case EP_SPAWNER:
		spawner_event(d);
		break;
	case EP_NODES:
		nodes_process(d->nodes);
		break;
	case EP_METRICS:
		metrics_listen_event(d, ptr);
		break;
	case EP_METRICS_CONN:
		metrics_conn_event(d, ptr, ev->events);
		break;
	case EP_MIGRATE:
		migrate_event(d, ptr);
		break;
	case EP_SIGNAL: {
		struct signalfd_siginfo si;

		if (read(sfd, &si, sizeof(si)) == sizeof(si))
			d->quit = true;
		break;
	}
	}
}

static void stop_signals(sigset_t *ret)
{
	sigemptyset(ret);
	sigaddset(ret, SIGTERM);
	sigaddset(ret, SIGINT);
	sigaddset(ret, SIGHUP);
}

/* First thing: blocked in every thread xosd will have (the flusher inherits
 * the mask), so a stop signal is always read from the signalfd, never acted
 * on by default. */
static int block_signals(void)
{
	sigset_t mask;

	signal(SIGPIPE, SIG_IGN);
	stop_signals(&mask);
	return sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ? -errno : 0;
}

static int setup_signals(struct daemon *d)
{
	sigset_t mask;
	int fd;

	stop_signals(&mask);
	fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	return daemon_epoll_add(d, fd, EPOLLIN, EP_SIGNAL, NULL) < 0 ? -errno : fd;
}

/* Memory and fds only: what a daemon that could not start must give back
 * without touching what another daemon may use (the skeleton, sockets). */
static void daemon_free(struct daemon *d)
{
	recover_free(d);
	template_ops_stop(d);
	conns_free_all(d);
	metrics_free(d);
	events_free(d);
	daemon_jobs_free(d);
	netsetup_free(d->net);
	d->net = NULL;
	nodes_free(d->nodes);
	d->nodes = NULL;
	migrate_stop(d);
	migrate_cpu_free(d);
	if (d->trust)
		session_cgroups_prune(d);
	grid_free(d);
	slice_free_all(d);
	commit_stop(d);
	spawner_stop(d);
	queue_free(d);
	free(d->lxcpath);
	free(d->volatile_dir);
	closep(&d->vjobs_fd);
	free(d->skel_dir);
	free(d->rootfs_mnt);
	free(d->self_exe);
	free(d->template_helper);
	ckpt_free(d->ckpt);
	d->ckpt = NULL;
	closep(&d->epfd);
	closep(&d->inotify_fd);
	closep(&d->jobs_fd);
	closep(&d->catalog_fd);
	closep(&d->state_fd);
}

static void daemon_shutdown(struct daemon *d)
{
	bool live = false;

	/* jobs whose last report was acknowledged: let their containers go first */
	for (struct job *j = d->jobs; j; j = j->next)
		if (!job_is_live(j) && j->pidfd >= 0)
			(void)daemon_job_settle(d, j);
	for (int i = 0; i < 60 && prune_cgroups(d) >= 0; i++)
		usleep(50000);
	flusher_stop();
	for (struct job *j = d->jobs; j; j = j->next)
		live = live || job_is_live(j);
	routes_stop(d);            /* (announcements cannot be followed while xosd is down) */
	netsetup_shutdown(d->net); /* bridge and tables, unless jobs still use them */
	if (!live) {
		rootfs_host_skel_teardown(d->skel_dir);
		closep(&d->vjobs_fd);
		rootfs_volatile_teardown(d->volatile_dir);
		container_remove_lock_dirs(d);
	}
	if (d->listen_fd >= 0)
		unlink(d->cfg->socket_path);
	metrics_unlink(d);
	closep(&d->listen_fd);
	closep(&d->reserve_fd);
	daemon_free(d);
}

/* Everything that can fail at start-up has been said on stderr by now; from
 * here on the log goes to a file in the state directory. */
static int detach(struct daemon *d)
{
	int fd = openat(d->state_fd, "xosd.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	if (daemon(0, 1) < 0 || dup2(fd, STDERR_FILENO) < 0) {
		close(fd);
		return -errno;
	}
	close(fd);
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		close(fd);
	}
	return 0;
}

/* Job roots of idmapped lower layers (the skeleton, /, the catalogue's
 * templates): each job sees their files with its own ids. Where the kernel or
 * a file system cannot, lower layers are mounted as they are (host root's
 * files and templates' show as nobody in jobs). */
static void probe_idmapped_mounts(struct daemon *d)
{
	_cleanup_free_ char *scratch = xstrdup_printf("%s/idmap-probe", d->volatile_dir);
	_cleanup_free_ char *catalog = xstrdup_printf("%s/templates", d->cfg->state_dir);
	const char *host[] = { d->skel_dir, "/" };
	int r = scratch && catalog ? idmount_probe(host, ELEMENTSOF(host), scratch, d->subuid_base,
						   d->subgid_base)
				   : -ENOMEM;

	if (r >= 0) /* (a layer of its own: / holds it) */
		r = idmount_probe((const char *[]){ catalog }, 1, scratch, d->subuid_base,
				  d->subgid_base);

	d->idmapped_mounts = r >= 0;
	if (r < 0)
		log_warn("Idmapped lower layers do not work here (%s): job roots use them as "
			 "they are, and files of host root and of templates show as nobody in jobs",
			 strerror(-r));
}

/* Everything before the loop; on failure nothing is left to undo but memory. */
static int daemon_start(struct daemon *d, int *ret_lock, int *ret_sfd)
{
	struct runtime_config *cfg = d->cfg;
	uint32_t ranges[2];
	int r;

	if ((r = block_signals()) < 0)
		return log_error_errno(r, "Failed to block signals: %m");
	d->cg = runtime_cgroup_detect();
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (d->epfd < 0 || d->inotify_fd < 0)
		return log_error_errno(errno, "Failed to set up the event loop: %m");
	if ((r = setup_ids(d, ranges)) < 0)
		return r;
	if ((r = setup_dirs(d)) < 0)
		return log_error_errno(r, "Failed to create %s: %m", cfg->state_dir);
	*ret_lock = lock_state(d);
	if (*ret_lock < 0)
		return log_error_errno(*ret_lock, "Another xosd uses state directory %s",
				       cfg->state_dir);
	/* (before anything is mounted: a node key or certificate that does not
	 * load leaves nothing behind) */
	if ((r = daemon_nodes_start(d)) < 0)
		return r;
	if ((r = setup_volatile(d)) < 0)
		return log_error_errno(r, "Failed to set up the volatile tmpfs %s: %m",
				       d->volatile_dir);
	if ((r = setup_slices(d, ranges)) < 0)
		return r;
	/* (host root's: each job sees it as its own root's through an idmapped mount) */
	r = rootfs_host_skel_setup(d->skel_dir, 0, 0);
	if (r < 0)
		return log_error_errno(r, "Failed to build the host template in %s: %m",
				       d->skel_dir);
	probe_idmapped_mounts(d);
	if ((r = daemon_epoll_add(d, d->inotify_fd, EPOLLIN, EP_INOTIFY, NULL)) < 0)
		return log_error_errno(r, "Failed to watch job output: %m");
	if ((r = netsetup_new(&cfg->net, d->state_fd, &d->net)) < 0)
		return log_error_errno(r, "Failed to set up networking: %m");
	if ((r = routes_start(d)) < 0)
		return log_error_errno(r, "Failed to set up the routes to other nodes' jobs: %m");
	if ((r = daemon_ckpt_setup(d)) < 0)
		return log_error_errno(r, "Failed to set up checkpoints: %m");
	if ((r = grid_setup(d)) < 0)
		return r;
	if ((r = queue_setup(d)) < 0)
		return log_error_errno(r, "Failed to set up the queue: %m");
	if ((r = events_setup(d)) < 0)
		return log_error_errno(r, "Failed to set up the event stream: %m");
	pool_remove_leftovers(d); /* (before the jobs: they have no record) */
	load_jobs(d);
	loader_copy_gc(d);
	if ((r = slice_reconcile(d)) < 0)
		log_error("Failed to reconcile the container id leases: %s", strerror(-r));
	if ((r = netsetup_reconcile(d->net)) < 0)
		log_error("Failed to restore the network of the re-adopted jobs (bridge %s, "
			  "table %s): %s",
			  cfg->net.bridge, cfg->net.table, strerror(-r));
	migrate_startup(d); /* moves under way when xosd stopped */
	prune_ended_jobs(d);
	template_ops_start(d); /* removed templates no job uses go */
	if ((r = setup_listen(d)) < 0)
		return log_error_errno(r, "Failed to listen on %s: %m", cfg->socket_path);
	if ((r = metrics_setup(d)) < 0)
		return r;
	raise_nofile();
	d->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (cfg->detach && (r = detach(d)) < 0)
		return log_error_errno(r, "Failed to detach: %m");
	/* after detaching: a signalfd wakes epoll only in the process that added it */
	if ((*ret_sfd = setup_signals(d)) < 0)
		return log_error_errno(*ret_sfd, "Failed to set up signals: %m");
	return 0;
}

/* The nearer of two timeouts in ms, -1 meaning none. */
static int min_timeout(int a, int b)
{
	return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

int runtime_run(struct runtime_config *cfg)
{
	struct daemon d = DAEMON_EMPTY;
	_cleanup_close_ int lock = -EBADF, sfd = -EBADF;
	int r;

	d.cfg = cfg;
	sdnotify_init();
	r = daemon_start(&d, &lock, &sfd);
	if (r < 0) {
		daemon_free(&d);
		return r;
	}
	log_info("Listening on %s (state %s, cgroup %s)", cfg->socket_path, cfg->state_dir,
		 d.cg->name);
	(void)sdnotify("READY=1\nMAINPID=%d\nSTATUS=Listening on %s", (int)getpid(),
		       cfg->socket_path);
	while (!d.quit) {
		struct epoll_event evs[64];
		int t1 = min_timeout(prune_cgroups(&d), queue_tick(&d)), t2 = ckpt_tick(d.ckpt);
		int t3 = min_timeout(conns_expire(&d), listen_resume(&d));
		int t4 = min_timeout(
			min_timeout(d.nodes ? nodes_tick(d.nodes) : -1, metrics_tick(&d)),
			min_timeout(min_timeout(daemon_caller_watch(&d), migrate_tick(&d)),
				    min_timeout(routes_tick(&d), recover_tick(&d))));
		int n = epoll_wait(d.epfd, evs, ELEMENTSOF(evs),
				   min_timeout(min_timeout(t1, t2),
					       min_timeout(min_timeout(t3, t4), pool_tick(&d))));

		if (n < 0 && errno != EINTR) {
			r = log_error_errno(errno, "epoll_wait failed: %m");
			break;
		}
		if (n == 0)
			pool_idle(&d);
		for (int i = 0; i < n && !d.quit; i++)
			dispatch(&d, &evs[i], sfd);
		conns_reap(&d);
		if (d.prune_ended && !d.quit)
			prune_ended_jobs(&d);
	}
	(void)sdnotify("STOPPING=1\nSTATUS=Stopping; jobs keep running");
	log_info("Stopping; jobs keep running");
	pool_stop(&d);
	daemon_shutdown(&d);
	return r < 0 ? r : 0;
}
