/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lease store: <state>/net/leases/<address>, one file per leased
 * address holding the job id. A claim is an O_EXCL create, so it is atomic
 * and survives a restart of the daemon. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "netsetup/netsetup-internal.h"

int lease_claim(struct netsetup *n, uint32_t addr, const char *job_id)
{
	char name[16];
	_cleanup_close_ int fd = -EBADF;
	int r;

	netsetup_addr_format(addr, name);
	fd = openat(n->lease_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno; /* EEXIST: taken */
	r = loop_write(fd, job_id, strlen(job_id)) < 0 ? -errno : 0;
	if (r < 0)
		unlinkat(n->lease_fd, name, 0);
	return r;
}

/* Only the job's own lease goes (a lease file of another job stays). */
void lease_release(struct netsetup *n, uint32_t addr, const char *job_id)
{
	_cleanup_free_ char *owner = NULL;
	char name[16];

	netsetup_addr_format(addr, name);
	if (read_file_at(n->lease_fd, name, 64, &owner, NULL) >= 0 && !strcmp(owner, job_id))
		unlinkat(n->lease_fd, name, 0);
}

bool lease_taken(struct netsetup *n, uint32_t addr)
{
	char name[16];

	netsetup_addr_format(addr, name);
	return faccessat(n->lease_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static bool lease_wanted(struct netsetup *n, const char *name, const char *owner)
{
	uint32_t a;

	if (netsetup_addr_parse(name, &a) < 0)
		return false;
	for (struct nsjob *j = n->jobs; j; j = j->next)
		if (j->nj->mode == NETSETUP_BRIDGE && j->nj->addr == a && !strcmp(j->id, owner))
			return true;
	return false;
}

/* Leases of jobs not registered (ended, unknown) are freed. */
int lease_reconcile(struct netsetup *n)
{
	DIR *d = opendir_dup(n->lease_fd);
	struct dirent *de;
	int freed = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		_cleanup_free_ char *owner = NULL;

		if (de->d_name[0] == '.')
			continue;
		if (read_file_at(n->lease_fd, de->d_name, 64, &owner, NULL) >= 0 &&
		    lease_wanted(n, de->d_name, owner))
			continue;
		if (unlinkat(n->lease_fd, de->d_name, 0) == 0)
			freed++;
	}
	closedir(d);
	return freed;
}
