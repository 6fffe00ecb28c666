/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A job below a Slurm step's cgroup (cgroup_parent = caller) ends with the
 * step, also when it was started detached (xrun -d): Slurm kills a step
 * through the cgroup.procs of its own cgroups, which do not list the
 * container's processes (they are in a child cgroup), and once the step's
 * processes are gone Slurm counts its resources free. So once a second xosd
 * looks at the cgroup each such job nests in: when no process is left in it
 * (the container's own, in its child cgroups, aside), or it is gone, the job
 * is killed. DECISIONS.md (am). */
#include <fcntl.h>
#include <signal.h>

#include "runtime/runtime-internal.h"

#define CALLER_WATCH_US (1000 * 1000)

/* 1: a process is in the cgroup path of the reference hierarchy (v1: the
 * one holding cpuacct, where the caller's path was read; v2: the unified
 * one), 0: none, -errno (-ENOENT: the cgroup is gone). */
int runtime_cgroup_has_procs(const char *path, bool v2)
{
	_cleanup_close_ int root = -EBADF, cg = -EBADF, fd = -EBADF;
	char buf[32];
	ssize_t k;

	if (!path || !path[0] || path[0] == '/' || strstr(path, ".."))
		return -EINVAL;
	root = open(v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/cpuacct",
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -errno;
	cg = openat(root, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (cg < 0)
		return -errno;
	fd = openat(cg, "cgroup.procs", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	/* one pid is enough to know */
	do
		k = read(fd, buf, sizeof(buf));
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return -errno;
	return k > 0;
}

/* j is a running job below a Slurm step's cgroup */
static bool watched(const struct daemon *d, const struct job *j)
{
	return j->cg_caller && j->state == JOB_RUNNING && j->cgroup_parent &&
	       runtime_cgroup_is_slurm_step(j->cgroup_parent, d->cg == &runtime_cgroup_v2,
					    j->owner_uid);
}

bool daemon_caller_mode(const struct daemon *d)
{
	const char *p = d->cfg->cgroup_parent;

	return p && !strcmp(p, RUNTIME_CGROUP_PARENT_CALLER);
}

int daemon_caller_watch(struct daemon *d)
{
	uint64_t now = mono_usec();
	bool any = false;

	if (!daemon_caller_mode(d)) /* (no job has cg_caller: no walk at each wakeup) */
		return -1;

	for (struct job *j = d->jobs; j; j = j->next)
		any = any || watched(d, j);
	if (!any)
		return -1;
	if (now < d->caller_watch_due_us)
		return (int)((d->caller_watch_due_us - now + 999) / 1000);
	d->caller_watch_due_us = now + CALLER_WATCH_US;
	for (struct job *j = d->jobs; j; j = j->next) {
		int r;

		if (!watched(d, j) || j->caller_ended)
			continue;
		r = runtime_cgroup_has_procs(j->cgroup_parent, d->cg == &runtime_cgroup_v2);
		if (r > 0 || (r < 0 && r != -ENOENT))
			continue; /* (an error other than gone: it stays, as it was) */
		log_info("Killing job %s: the Slurm step whose cgroup holds it (%s) ended", j->id,
			 j->cgroup_parent);
		j->caller_ended = true;
		free(j->reason); /* (xps shows it beside KILLED) */
		j->reason = strdup("Slurm step ended");
		(void)container_signal(d, j, 0, SIGKILL);
	}
	return CALLER_WATCH_US / 1000;
}
