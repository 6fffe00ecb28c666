/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Each job's own slice of root's subordinate ids.
 *
 * Root's range in /etc/subuid and /etc/subgid is cut into slices of
 * idmap_slice ids (65536). Slice 0 is shared: imported templates are stored
 * on its ids and shown to every job through an idmapped mount (idmount.c).
 * Each job gets a slice of its own, 1 and up, which it keeps while it lives
 * and while it has checkpoint versions (a version's layer copy holds the
 * slice's host ids, and its images are owned by the slice's root). Its
 * container root and every id it does not map to itself are the slice's, so
 * no two jobs' roots are one host id (Podman's --userns=auto, Incus's
 * isolated idmaps).
 *
 * Leases: <volatile>/idmap/<first uid of the slice>, holding the job id; a
 * claim is an O_EXCL create (no fsync: the job record names the slice and is
 * what survives a reboot; xosd re-makes the leases of the jobs that still
 * want theirs when it starts, and deletes the others). In memory a bitmap of
 * the slices in use makes a claim one create. When a job lets its slice go,
 * its xos/ directory is given to host root (mode 0700) first, so that a later
 * job on the same slice cannot reach what this job's root owned. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "runtime/runtime-internal.h"

#define LEASE_DIR "idmap"

static bool on_slice(const struct daemon *d, const struct job *j)
{
	/* (jobs of an xosd from before slices ran on the shared ids) */
	return j->idmap_size && j->idmap_base != d->subuid_base;
}

static void mark(struct daemon *d, uint32_t k)
{
	if (k < d->n_slices)
		d->slices_used[k / 8] |= (uint8_t)(1u << (k % 8));
}

static bool used(const struct daemon *d, uint32_t k)
{
	return d->slices_used[k / 8] & (1u << (k % 8));
}

/* The bitmap from the jobs that hold a slice (any size: idmap_slice may have
 * changed since a job got its ids). */
static void rebuild(struct daemon *d)
{
	uint64_t s = d->subuid_size;

	if (!d->slices_used)
		return;
	memset(d->slices_used, 0, (d->n_slices + 7) / 8);
	mark(d, 0);
	for (struct job *j = d->jobs; j; j = j->next) {
		uint64_t first, last;

		if (!j->slice_held || j->idmap_base < d->subuid_base)
			continue;
		first = (j->idmap_base - (uint64_t)d->subuid_base) / s;
		last = (j->idmap_base + (uint64_t)j->idmap_size - 1 - d->subuid_base) / s;
		for (uint64_t k = first; k <= last && k < d->n_slices; k++)
			mark(d, (uint32_t)k);
	}
}

int slice_setup(struct daemon *d, uint32_t uid_range, uint32_t gid_range)
{
	int vfd = open(d->volatile_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int r = 0;

	if (vfd < 0)
		return -errno;
	if ((mkdirat(vfd, LEASE_DIR, 0700) < 0 && errno != EEXIST) ||
	    fchmodat(vfd, LEASE_DIR, 0700, 0) < 0)
		r = -errno;
	d->idmap_fd = r < 0 ? r : open_dir_at(vfd, LEASE_DIR);
	close(vfd);
	if (d->idmap_fd < 0)
		return d->idmap_fd;
	d->n_slices = runtime_idmap_slices(uid_range, gid_range, d->subuid_size);
	d->slices_used = calloc(d->n_slices / 8 + 1, 1);
	if (!d->slices_used)
		return -ENOMEM;
	rebuild(d);
	return 0;
}

static int lease_create(struct daemon *d, uint32_t base, const char *id)
{
	_cleanup_close_ int fd = -EBADF;
	char name[16];

	snprintf(name, sizeof(name), "%u", base);
	fd = openat(d->idmap_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno; /* EEXIST: taken */
	if (loop_write(fd, id, strlen(id)) < 0) {
		int r = -errno;

		unlinkat(d->idmap_fd, name, 0);
		return r;
	}
	return 0;
}

/* The lease's owner, or NULL. */
static char *lease_owner(struct daemon *d, const char *name)
{
	char *owner = NULL;

	if (read_file_at(d->idmap_fd, name, 64, &owner, NULL) < 0)
		return NULL;
	return owner;
}

static void lease_remove(struct daemon *d, const struct job *j)
{
	_cleanup_free_ char *owner = NULL;
	char name[16];

	snprintf(name, sizeof(name), "%u", j->idmap_base);
	owner = lease_owner(d, name);
	if (owner && !strcmp(owner, j->id))
		unlinkat(d->idmap_fd, name, 0);
}

static uint32_t random_u32(void)
{
	uint32_t v = 0;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
		v = (uint32_t)mono_usec();
	return v;
}

/* A free slice, from a random one on (as addresses are picked: two daemons
 * on one machine's range meet only by chance), leased to j. */
int slice_claim(struct daemon *d, struct job *j)
{
	uint32_t n = d->n_slices, start;

	if (n < 2 || !d->slices_used)
		return -ENOSPC;
	start = random_u32() % (n - 1);
	for (uint32_t i = 0; i < n - 1; i++) {
		uint32_t k = 1 + (start + i) % (n - 1);
		uint32_t base = d->subuid_base + k * d->subuid_size;
		int r;

		if (used(d, k))
			continue;
		r = lease_create(d, base, j->id);
		if (r == -EEXIST) { /* (a lease the bitmap did not know of: taken) */
			mark(d, k);
			continue;
		}
		if (r < 0)
			return r;
		mark(d, k);
		j->idmap_base = base;
		j->idmap_gid_base = d->subgid_base + k * d->subgid_size;
		j->idmap_size = d->subuid_size;
		j->slice_held = true;
		return 0;
	}
	return -ENOSPC;
}

/* The slice j's record names (a job taken over from another node's
 * checkpoint: its images hold those ids): -EBUSY if this node uses it. */
int slice_claim_base(struct daemon *d, struct job *j)
{
	uint32_t k;
	int r;

	if (!d->slices_used || j->idmap_base < d->subuid_base ||
	    (j->idmap_base - d->subuid_base) % d->subuid_size != 0 ||
	    j->idmap_size != d->subuid_size)
		return -ERANGE;
	k = (j->idmap_base - d->subuid_base) / d->subuid_size;
	if (k == 0 || k >= d->n_slices || j->idmap_gid_base != d->subgid_base + k * d->subgid_size)
		return -ERANGE;
	if (used(d, k))
		return -EBUSY;
	r = lease_create(d, j->idmap_base, j->id);
	if (r < 0)
		return r == -EEXIST ? -EBUSY : r;
	mark(d, k);
	j->slice_held = true;
	return 0;
}

/* What the job's root owned on the state file system goes to host root: its
 * xos/ directory (0700), and with it everything below, which no other id can
 * reach. The directory is the last thing changed, so one owned by root has
 * been handed over already. */
static void disown(struct daemon *d, struct job *j)
{
	_cleanup_close_ int dir = open_dir_at(d->jobs_fd, j->id);
	_cleanup_close_ int xos = dir >= 0 ? open_dir_at(dir, "xos") : -EBADF;
	struct stat st;

	if (xos < 0 || fstat(xos, &st) < 0 || (st.st_uid == 0 && st.st_gid == 0))
		return;
	if (fchmod(xos, 0700) < 0 || fchown(xos, 0, 0) < 0)
		log_warn("Failed to hand the xos directory of job %s to root: %m", j->id);
}

void slice_release(struct daemon *d, struct job *j)
{
	if (!j->slice_held)
		return;
	disown(d, j);
	lease_remove(d, j);
	j->slice_held = false;
	rebuild(d);
	log_debug("Job %s let its container ids %u-%u go", j->id, j->idmap_base,
		  j->idmap_base + j->idmap_size - 1);
}

void slice_job_check(struct daemon *d, struct job *j)
{
	/* (an ended job's container may still be going away: its cleanup asks again) */
	if (!j->slice_held || job_is_live(j) || j->pidfd >= 0 || j->starter > 0 || j->run)
		return;
	if (!d->ckpt || !ckpt_has_versions(d->ckpt, j))
		slice_release(d, j);
}

void slice_adopt(struct daemon *d, struct job *j)
{
	if (!j->idmap_gid_base && j->idmap_base == d->subuid_base)
		j->idmap_gid_base = d->subgid_base; /* a record from before slices */
	j->slice_held = on_slice(d, j);
}

static bool lease_wanted(struct daemon *d, const char *name, const char *owner)
{
	for (struct job *j = d->jobs; j; j = j->next)
		if (j->slice_held && !strcmp(j->id, owner)) {
			char want[16];

			snprintf(want, sizeof(want), "%u", j->idmap_base);
			return !strcmp(want, name);
		}
	return false;
}

/* After the jobs are loaded: the jobs that no longer want their slice let it
 * go, the others' leases are there (again, after a reboot), and leases no job
 * holds are deleted. */
int slice_reconcile(struct daemon *d)
{
	DIR *dir;
	struct dirent *de;
	int freed = 0;

	for (struct job *j = d->jobs; j; j = j->next)
		slice_job_check(d, j);
	rebuild(d);
	for (struct job *j = d->jobs; j; j = j->next) {
		_cleanup_free_ char *owner = NULL;
		char name[16];

		if (!j->slice_held)
			continue;
		snprintf(name, sizeof(name), "%u", j->idmap_base);
		if (lease_create(d, j->idmap_base, j->id) == -EEXIST &&
		    (owner = lease_owner(d, name)) && strcmp(owner, j->id) != 0)
			log_error("Jobs %s and %s both hold container ids %u and up", j->id, owner,
				  j->idmap_base);
	}
	dir = opendir_dup(d->idmap_fd);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		_cleanup_free_ char *owner = NULL;

		if (de->d_name[0] == '.')
			continue;
		owner = lease_owner(d, de->d_name);
		if (owner && lease_wanted(d, de->d_name, owner))
			continue;
		if (unlinkat(d->idmap_fd, de->d_name, 0) == 0)
			freed++;
	}
	closedir(dir);
	return freed;
}

uint32_t slice_free_count(const struct daemon *d)
{
	uint32_t n = 0;

	for (uint32_t k = 1; d->slices_used && k < d->n_slices; k++)
		n += !used(d, k);
	return n;
}

void slice_free_all(struct daemon *d)
{
	free(d->slices_used);
	d->slices_used = NULL;
	closep(&d->idmap_fd);
}

/* The job's id maps: its slice, with its own uid and gids mapped to
 * themselves unless they are a template's (ids of the slice). */
int slice_job_maps(const struct job *j, struct runtime_idmap_entry *u, size_t *nu,
		   struct runtime_idmap_entry *g, size_t *ng, size_t max)
{
	uint32_t uid = j->uid, gids[64];
	size_t n = 0;
	int r;

	gids[n++] = j->gid;
	for (size_t i = 0; i < j->n_groups && n < ELEMENTSOF(gids); i++)
		if (j->groups[i] != 0)
			gids[n++] = j->groups[i];
	r = runtime_idmap_build(j->idmap_base, j->idmap_size, &uid, j->shifted_user ? 0 : 1, u, max,
				nu);
	if (r < 0)
		return r;
	return runtime_idmap_build(j->idmap_gid_base, j->idmap_size, gids, j->shifted_user ? 0 : n,
				   g, max, ng);
}
