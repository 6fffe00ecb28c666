/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pool (DECISIONS.md (as)): containers prepared while xosd is idle, each
 * for the next job of one owner with the default settings, and claimed by
 * exactly one job. A pooled container has its job's id already (its name,
 * directories, hostname, cgroups and id slice come from it), its root and
 * volumes mounted, its LXC config, and its loader (started with -w), which
 * waits for the unit request of the job that claims it. It is no job: it is
 * in no list but the pool's, no request names it, and it has no job.json but
 * a mark (<state>/jobs/<id>/pool) by which the next xosd removes it. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "hooks/hooks.h"
#include "runtime/runtime-internal.h"
#include "templates/templates.h"

#define POOL_MARK "pool"
#define POOL_IDLE_MS 50                 /* fill after this long without an event */
#define POOL_RETRY_US (10ULL * 1000000) /* after a preparation failed */
#define POOL_KILL_WAIT_MS 5000          /* a killed container's end, at stop */

static int min_ms(int a, int b)
{
	return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* The host's account files as they are (their copies in a job root depend
 * on them, rootfs.c) and the loader (its copy is the container's init,
 * loader-copy.c): a change of either after a pooled container was made voids
 * it. */
static uint64_t pool_stamp(const struct daemon *d)
{
	const char *const files[] = { "/etc/passwd", "/etc/group", d->cfg->loader_path };
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		struct stat st;
		uint64_t v[4] = { 0 };

		if (files[i] && stat(files[i], &st) == 0)
			v[0] = (uint64_t)st.st_ino, v[1] = (uint64_t)st.st_size,
			v[2] = (uint64_t)st.st_mtim.tv_sec, v[3] = (uint64_t)st.st_mtim.tv_nsec;
		for (size_t k = 0; k < ELEMENTSOF(v); k++)
			h = (h ^ v[k]) * 1099511628211ULL;
	}
	return h;
}

/* Settings a pooled container was made with: the node's defaults. */
static bool defaults_only(const struct runtime_config *cfg, const struct job *j)
{
	return !j->grid_dn && !j->shifted_user && !j->cg_caller && !j->name &&
	       str_eq(j->template, TEMPLATE_HOST) && j->limits.memory == cfg->default_memory &&
	       j->limits.millicpus == cfg->default_millicpus &&
	       j->limits.pids == cfg->default_pids && j->disk == cfg->layer_size &&
	       j->files == cfg->layer_inodes && j->log_size == cfg->log_size_default &&
	       j->net.mode == NETSETUP_NONE && !j->net.addr &&
	       !j->net.n_ports; /* (a group names a bridge-mode job's peers) */
}

/* Whether j and o are of one owner, with the same account and volumes. */
static bool same_owner(const struct job *j, const struct job *o)
{
	if (j->owner_uid != o->owner_uid || j->uid != o->uid || j->gid != o->gid ||
	    j->n_groups != o->n_groups || !str_eq(j->user, o->user) || !str_eq(j->home, o->home) ||
	    !str_eq(j->cgroup_parent, o->cgroup_parent) || j->n_volumes != o->n_volumes)
		return false;
	for (size_t i = 0; i < j->n_groups; i++)
		if (j->groups[i] != o->groups[i])
			return false;
	for (size_t i = 0; i < j->n_volumes; i++) {
		const struct job_volume *a = &j->volumes[i], *b = &o->volumes[i];

		if (!str_eq(a->src, b->src) || !str_eq(a->dst, b->dst) || a->ro != b->ro ||
		    a->home != b->home)
			return false;
	}
	return true;
}

/* The whole rule of a claim, for one container (pool_claim checks the
 * defaults once, then the owner of each) */
bool pool_job_fits(const struct runtime_config *cfg, const struct job *j, const struct job *owner)
{
	return defaults_only(cfg, j) && owner && same_owner(j, owner);
}

/* Pooled containers of owner o, live or starting */
static size_t owner_count(struct daemon *d, const struct job *o)
{
	size_t n = 0;

	for (struct job *p = d->pool; p; p = p->next)
		n += job_is_live(p) && same_owner(p, o);
	return n;
}

/* The share of the pool of the i-th latest owner: pool_size shared out, the
 * latest owners taking what is left over */
static size_t owner_share(struct daemon *d, size_t i)
{
	size_t n = d->n_pool_owners, size = d->cfg->pool_size;

	return n ? size / n + (i < size % n) : 0;
}

/* A job of o's identity, settings and volumes (none of its state). */
static struct job *copy_owner(struct daemon *d, const struct job *o)
{
	struct job *p = job_new();

	if (!p)
		return NULL;
	p->owner_uid = o->owner_uid;
	p->uid = o->uid;
	p->gid = o->gid;
	p->n_groups = o->n_groups;
	p->groups = calloc(o->n_groups ? o->n_groups : 1, sizeof(gid_t));
	if (p->groups && o->n_groups)
		memcpy(p->groups, o->groups, o->n_groups * sizeof(gid_t));
	p->user = o->user ? strdup(o->user) : NULL;
	p->home = o->home ? strdup(o->home) : NULL;
	p->template = strdup(TEMPLATE_HOST);
	p->cgroup_parent = o->cgroup_parent ? strdup(o->cgroup_parent) : NULL;
	p->limits = (struct runtime_limits){ d->cfg->default_memory, d->cfg->default_millicpus,
					     d->cfg->default_pids };
	p->disk = d->cfg->layer_size;
	p->files = d->cfg->layer_inodes;
	p->log_size = d->cfg->log_size_default;
	p->net.mode = NETSETUP_NONE;
	p->state = JOB_STARTING;
	for (size_t i = 0; p->groups && i < o->n_volumes; i++)
		if (job_add_volume(p, o->volumes[i].src, o->volumes[i].dst, o->volumes[i].ro,
				   o->volumes[i].home) < 0)
			break;
	if (!p->groups || (o->user && !p->user) || (o->home && !p->home) || !p->template ||
	    (o->cgroup_parent && !p->cgroup_parent) || p->n_volumes != o->n_volumes) {
		job_free(p);
		return NULL;
	}
	return p;
}

static void epoll_del(struct daemon *d, int fd)
{
	if (fd >= 0)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* Every trace of pooled container p, whose container is gone or never ran;
 * its cgroups go later (pool_tick), as a job's do. */
static void tidy(struct daemon *d, struct job *p)
{
	epoll_del(d, p->starter_fd);
	closep(&p->starter_fd);
	epoll_del(d, p->pidfd);
	epoll_del(d, p->notify_fd);
	closep(&p->notify_fd);
	if (p->dirfd >= 0)
		notify_unlink(d, p);
	container_release(p);
	netsetup_job_release(d->net, p->id, &p->net);
	job_close_volume_fds(p);
	rootfs_job_umount(d, p); /* (and the volumes' staging mounts) */
	container_remove_config(d, p);
	unlinkat(d->vjobs_fd, p->id, AT_REMOVEDIR);
	closep(&p->spoolfd);
	closep(&p->dirfd);
	(void)rm_rf_at(d->jobs_fd, p->id);
	slice_release(d, p);
	p->state = JOB_FAILED; /* dead: only its cgroups are left to prune */
	p->cg_prune_tries = 50;
}

static void kill_container(struct job *p)
{
	if (p->pidfd >= 0)
		(void)syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
}

/* Wait (bounded) for a killed container's init to end. */
static void wait_gone(struct job *p)
{
	struct pollfd pf = { .fd = p->pidfd, .events = POLLIN };

	if (p->pidfd >= 0)
		(void)poll(&pf, 1, POOL_KILL_WAIT_MS);
}

static size_t pool_count(struct daemon *d)
{
	size_t n = 0;

	for (struct job *p = d->pool; p; p = p->next)
		n += job_is_live(p);
	return n;
}

/* Room for one more: the pool's size, and the node's job capacity, which
 * pooled containers count against as running jobs do. */
static bool pool_room(struct daemon *d)
{
	uint64_t n = pool_count(d);

	if (!d->n_pool_owners || n >= d->cfg->pool_size || mono_usec() < d->pool_retry_us)
		return false;
	if (d->cfg->capacity_jobs) {
		for (struct job *j = d->jobs; j; j = j->next)
			n += job_is_live(j) && j->state != JOB_QUEUED;
		return n < d->cfg->capacity_jobs;
	}
	return true;
}

static int prepare(struct daemon *d, struct job *p, char **ret_why)
{
	struct xerr err = XERR_INIT;
	_cleanup_close_ int mark = -EBADF;
	int r;

	if ((r = netsetup_job_setup(d->net, p->id, &p->net, &err)) < 0 ||
	    (r = volume_open_job(d, p, false, ret_why)) < 0 || (r = slice_claim(d, p)) < 0 ||
	    (r = ops_make_job_dirs(d, p)) < 0)
		goto out;
	mark = openat(p->dirfd, POOL_MARK, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (mark < 0) {
		r = -errno;
		goto out;
	}
	p->pool_accounts = pool_stamp(d);
	if ((r = rootfs_job_mount(d, p)) < 0 || (r = volume_stage(d, p, ret_why)) < 0 ||
	    (r = container_create(d, p)) < 0 || (r = notify_listen(d, p)) < 0 ||
	    (r = container_start(d, p, &p->starter, &p->starter_fd)) < 0)
		goto out;
	if (p->starter_fd < 0)
		r = p->starter_fd;
	else
		r = daemon_epoll_add(d, p->starter_fd, EPOLLIN, EP_STARTER, p);
out:
	if (r < 0 && !*ret_why && err.msg)
		*ret_why = strdup(err.msg);
	xerr_clear(&err);
	return r;
}

/* The owner the next pooled container is for: the latest one below its share */
static const struct job *fill_owner(struct daemon *d)
{
	for (size_t i = 0; i < d->n_pool_owners; i++)
		if (owner_count(d, d->pool_owners[i]) < owner_share(d, i))
			return d->pool_owners[i];
	return d->pool_owners[0];
}

static void pool_fill(struct daemon *d)
{
	_cleanup_free_ char *why = NULL;
	struct job *p;
	int r;

	if (!pool_room(d))
		return;
	if (hook_event_has_dir(d->cfg->hooks_dir, HOOK_PRESTART)) {
		/* a prestart hook is given its job's record: no pool (looked at again later) */
		d->pool_retry_us = mono_usec() + POOL_RETRY_US;
		return;
	}
	p = copy_owner(d, fill_owner(d));
	if (!p || random_job_id(p->id) < 0) {
		job_free(p);
		return;
	}
	p->pooled = true;
	p->created_us = now_usec();
	p->next = d->pool;
	d->pool = p;
	r = prepare(d, p, &why);
	if (r >= 0) {
		log_debug("Preparing pooled container %s", p->id);
		return;
	}
	log_warn("Failed to prepare a pooled container: %s (tried again in %llu s)",
		 why ? why : strerror(-r), (unsigned long long)(POOL_RETRY_US / 1000000));
	if (p->starter > 0) { /* (no pidfd for the starter: its end is waited for here) */
		(void)container_start_wait(d, p->starter);
		p->starter = 0;
		if (container_attach(d, p) >= 0) {
			kill_container(p);
			wait_gone(p);
		}
	}
	tidy(d, p);
	d->pool_retry_us = mono_usec() + POOL_RETRY_US;
}

void pool_started(struct daemon *d, struct job *p, int status)
{
	int r = -ECHILD;

	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && p->state == JOB_STARTING)
		r = container_started(d, p);
	if (r >= 0 && p->closing) { /* dropped while it started */
		kill_container(p);
		wait_gone(p);
		tidy(d, p);
		return;
	}
	if (r >= 0)
		r = daemon_epoll_add(d, p->pidfd, EPOLLIN, EP_PIDFD, p);
	if (r < 0) {
		log_warn("Failed to start a pooled container: %s (tried again in %llu s)",
			 strerror(-r), (unsigned long long)(POOL_RETRY_US / 1000000));
		/* a start whose answer was lost (its spawner died meanwhile) may
		 * have brought the container up: its starter has ended, so it
		 * runs now or never will */
		if (p->pidfd < 0)
			(void)container_attach(d, p);
		kill_container(p);
		wait_gone(p);
		tidy(d, p);
		d->pool_retry_us = mono_usec() + POOL_RETRY_US;
		return;
	}
	p->state = JOB_RUNNING; /* ready to be claimed */
	log_debug("Pooled container %s is ready (init %d)", p->id, (int)p->init_pid);
}

void pool_gone(struct daemon *d, struct job *p)
{
	log_warn("Pooled container %s ended before a job claimed it", p->id);
	tidy(d, p);
}

/* Drop pooled containers of owner o (NULL: of all), at most max of them
 * (what they were made from changed, their owner is no longer one of the
 * latest, or it holds more than its share). */
static void pool_drain_owner(struct daemon *d, const struct job *o, bool wait, size_t max)
{
	for (struct job *p = d->pool; p && max; p = p->next) {
		if ((o && !same_owner(p, o)) || !job_is_live(p))
			continue;
		max--;
		p->closing = true; /* one still starting goes once it runs */
		if (p->state != JOB_RUNNING)
			continue;
		kill_container(p);
		if (wait)
			wait_gone(p);
		epoll_del(d, p->pidfd);
		tidy(d, p);
	}
}

static void pool_drain(struct daemon *d, bool wait)
{
	pool_drain_owner(d, NULL, wait, SIZE_MAX);
}

/* j, a job of the defaults, comes: its owner becomes the latest; the
 * oldest owner beyond pool_size loses its pooled containers */
static void owner_touch(struct daemon *d, const struct job *j)
{
	size_t i, n = d->n_pool_owners;
	struct job *o;

	for (i = 0; i < n && !same_owner(j, d->pool_owners[i]); i++)
		;
	if (i < n) {
		o = d->pool_owners[i];
	} else if (!(o = copy_owner(d, j))) {
		return;
	} else {
		log_debug("Pool: jobs of another owner now (uid %u)", (unsigned)j->uid);
		if (n >= d->cfg->pool_size || n >= POOL_OWNERS_MAX) {
			struct job *old = d->pool_owners[--n];

			pool_drain_owner(d, old, false, SIZE_MAX);
			job_free(old);
		}
		i = n++;
	}
	memmove(d->pool_owners + 1, d->pool_owners, i * sizeof(*d->pool_owners));
	d->pool_owners[0] = o;
	d->n_pool_owners = n;
	/* what an owner holds beyond its share now goes, to make room for the
	 * others' (the latest owner's first: it is the one waiting) */
	for (i = 0; i < n; i++) {
		size_t has = owner_count(d, d->pool_owners[i]), share = owner_share(d, i);

		if (has > share)
			pool_drain_owner(d, d->pool_owners[i], false, has - share);
	}
}

/* The new job j of the default settings takes a ready pooled container made
 * for its owner: its id and slice become j's. */
bool pool_claim(struct daemon *d, struct job *j)
{
	uint64_t stamp;
	struct job **pp;

	if (!d->cfg->pool_size || !defaults_only(d->cfg, j))
		return false;
	owner_touch(d, j);
	if (hook_event_has_dir(d->cfg->hooks_dir, HOOK_PRESTART)) {
		pool_drain(d, false); /* (made before the node owner's prestart hook) */
		return false;
	}
	stamp = pool_stamp(d);
	/* (j is of the defaults, checked above, as every pooled container is:
	 * of pool_job_fits only the owner is left to compare) */
	for (pp = &d->pool; *pp; pp = &(*pp)->next)
		if ((*pp)->state == JOB_RUNNING && (*pp)->pool_accounts == stamp &&
		    same_owner(j, *pp))
			break;
	if (!*pp) {
		for (struct job *p = d->pool; p; p = p->next)
			if (p->state == JOB_RUNNING && p->pool_accounts != stamp) {
				log_debug("Pool: the host's accounts or the loader changed; "
					  "dropping the pool");
				pool_drain(d, false);
				break;
			}
		return false;
	}
	events_pool_claimed(d);
	j->from_pool = *pp;
	*pp = (*pp)->next;
	j->from_pool->next = NULL;
	memcpy(j->id, j->from_pool->id, sizeof(j->id));
	j->idmap_base = j->from_pool->idmap_base;
	j->idmap_gid_base = j->from_pool->idmap_gid_base;
	j->idmap_size = j->from_pool->idmap_size;
	j->slice_held = j->from_pool->slice_held;
	j->from_pool->slice_held = false;
	free(j->loader); /* the loader copy its container runs (loader-copy.c) */
	j->loader = TAKE_PTR(j->from_pool->loader);
	j->net.active = j->from_pool->net.active; /* (mode none: nothing is leased) */
	return true;
}

/* What the claimed container holds becomes j's (the fds in the event loop
 * now name j); the rest of the pooled record goes. */
static int take_over(struct daemon *d, struct job *j, struct job *p)
{
	int r;

	epoll_del(d, p->pidfd);
	epoll_del(d, p->notify_fd);
	j->dirfd = TAKE_FD(p->dirfd);
	j->notify_fd = TAKE_FD(p->notify_fd);
	j->pidfd = TAKE_FD(p->pidfd);
	j->spoolfd = TAKE_FD(p->spoolfd);
	j->c = TAKE_PTR(p->c);
	j->init_pid = p->init_pid;
	job_close_volume_fds(j); /* (its volumes were staged for the pooled container) */
	job_free(p);
	r = daemon_epoll_add(d, j->notify_fd, EPOLLIN, EP_NOTIFY, j);
	return r < 0 ? r : 0;
}

int pool_start(struct daemon *d, struct job *j, int r, char **env, const char *cwd, bool tty)
{
	struct job *p = TAKE_PTR(j->from_pool);

	if (take_over(d, j, p) < 0 && r >= 0)
		r = -ENOMEM;

	log_debug("Job %s starts in a pooled container", j->id);
	j->state = JOB_RUNNING;
	j->started_us = now_usec();
	j->units[0].started_us = j->started_us;
	/* its record first: from here on it is a job, and the next xosd knows it */
	if (r >= 0 && (r = daemon_persist_job(d, j)) >= 0 && unlinkat(j->dirfd, POOL_MARK, 0) < 0)
		r = -errno;
	if (r >= 0)
		r = container_write_unit_spec(d, j, 1, j->units[0].argv, env, cwd, tty);
	if (r < 0) {
		if (j->pidfd >= 0)
			(void)syscall(SYS_pidfd_send_signal, j->pidfd, SIGKILL, NULL, 0);
		j->state = JOB_STARTING;
		return ops_start_failed(d, j, "starting the job in a pooled container", r), r;
	}
	ops_start_seen(d, j, false); /* (answered by the run request it is in) */
	return 0;
}

/* Cgroups of dead pooled containers, as prune_cgroups does a job's; the
 * next timeout (ms) or -1. */
int pool_tick(struct daemon *d)
{
	int timeout = -1;

	for (struct job **pp = &d->pool; *pp;) {
		struct job *p = *pp;
		struct runtime_cgroup_paths paths;
		char name[64];

		if (job_is_live(p)) {
			pp = &p->next;
			continue;
		}
		snprintf(name, sizeof(name), "xos-%s", p->id);
		if (p->cg_prune_tries > 0 &&
		    runtime_cgroup_paths(p->cgroup_parent, name, &paths) >= 0 &&
		    runtime_cgroup_prune(&paths) == -EBUSY && --p->cg_prune_tries > 0) {
			/* its container is gone for xosd, but something runs there:
			 * a start that went on after it was given up (a spawner that
			 * died with it in flight); nothing of a pooled container
			 * may stay */
			runtime_cgroup_kill(&paths);
			timeout = 100;
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		job_free(p);
	}
	if (pool_room(d))
		return min_ms(timeout, POOL_IDLE_MS);
	if (d->n_pool_owners && d->cfg->pool_size && pool_count(d) < d->cfg->pool_size &&
	    mono_usec() < d->pool_retry_us) /* (a wakeup when it may be tried again) */
		timeout = min_ms(timeout,
				 (int)((d->pool_retry_us - mono_usec()) / 1000) + POOL_IDLE_MS);
	return timeout;
}

/* The event loop had nothing to do for a while. */
void pool_idle(struct daemon *d)
{
	if (d->cfg->pool_size && !d->quit)
		pool_fill(d);
}

/* xosd stops: no pooled container outlives it. */
void pool_stop(struct daemon *d)
{
	for (struct job *p = d->pool; p; p = p->next)
		if (p->starter > 0) { /* its start first, bounded by liblxc's own */
			(void)container_start_wait(d, p->starter);
			p->starter = 0;
			if (container_started(d, p) < 0)
				tidy(d, p);
			else
				p->state = JOB_RUNNING;
		}
	pool_drain(d, true);
	for (int i = 0; i < 20 && pool_tick(d) >= 0 && d->pool; i++)
		(void)poll(NULL, 0, 100);
	while (d->pool) {
		struct job *p = d->pool;

		d->pool = p->next;
		job_free(p);
	}
	while (d->n_pool_owners)
		job_free(d->pool_owners[--d->n_pool_owners]);
}

/* A pooled container of an xosd that ended without stopping it (a crash,
 * a kill): it is killed and removed before the jobs are loaded. */
static void remove_leftover(struct daemon *d, const char *id)
{
	struct job *p = job_new();
	struct stat st;

	if (!p)
		return;
	memcpy(p->id, id, sizeof(p->id));
	p->net.mode = NETSETUP_NONE;
	p->dirfd = open_dir_at(d->jobs_fd, id);
	p->cgroup_parent = d->cfg->cgroup_parent && strcmp(d->cfg->cgroup_parent,
							   RUNTIME_CGROUP_PARENT_CALLER)
				   ? strdup(d->cfg->cgroup_parent)
				   : NULL;
	if (p->dirfd < 0 || fstatat(p->dirfd, POOL_MARK, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fstatat(p->dirfd, "job.json", &st, AT_SYMLINK_NOFOLLOW) == 0) {
		job_free(p);
		return;
	}
	log_info("Removing pooled container %s, left by an earlier xosd", id);
	if (container_attach(d, p) >= 0) {
		kill_container(p);
		wait_gone(p);
	}
	tidy(d, p);
	p->next = d->pool; /* (its cgroups are pruned by pool_tick) */
	d->pool = p;
}

void pool_remove_leftovers(struct daemon *d)
{
	DIR *dir = opendir_dup(d->jobs_fd);
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir)))
		if (job_id_valid(de->d_name))
			remove_leftover(d, de->d_name);
	closedir(dir);
}
