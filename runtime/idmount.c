/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Idmapped mounts: a job's lower layers (the host's /usr, the skeleton, an
 * imported template) shown with the job's own ids, so that what host root
 * owns (or, in a template, the shared slice's root) is the job's root, while
 * the files stay shared and unchanged on disk.
 *
 * A user namespace with the mount's maps is made by a child cloned into it
 * (CLONE_VM: no copy of xosd's memory; it only waits to be killed), the
 * lower layers are detached clones (open_tree) given that namespace with
 * mount_setattr(MOUNT_ATTR_IDMAP), and the overlay takes them as file
 * descriptors (fsconfig "lowerdir+"), so nothing is attached anywhere but the
 * overlay itself. */
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "runtime/runtime-internal.h"

#define STACK_SIZE 16384

/* (the child shares xosd's memory and thread pointer: a raw system call, no
 * library function that might keep state, not even a sanitizer's) */
static int wait_forever(void *arg)
{
	(void)arg;
	for (;;)
		syscall(SYS_pause);
	return 0;
}

static int write_map(pid_t pid, const char *file, const struct runtime_idmap_entry *e, size_t n)
{
	_cleanup_close_ int fd = -EBADF;
	char path[64], text[4096];
	size_t off = 0;

	for (size_t i = 0; i < n; i++) {
		int w = snprintf(text + off, sizeof(text) - off, "%u %u %u\n", e[i].inside,
				 e[i].outside, e[i].count);

		if (w < 0 || (size_t)w >= sizeof(text) - off)
			return -E2BIG;
		off += (size_t)w;
	}
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* (a map is written in one write, or not at all) */
	return write(fd, text, off) == (ssize_t)off ? 0 : errno ? -errno : -EIO;
}

int idmount_userns(const struct runtime_idmap_entry *u, size_t nu,
		   const struct runtime_idmap_entry *g, size_t ng)
{
	_cleanup_free_ char *stack = malloc(STACK_SIZE);
	char path[64];
	pid_t pid;
	int r, fd;

	if (!stack)
		return -ENOMEM;
	pid = clone(wait_forever, stack + STACK_SIZE, CLONE_NEWUSER | CLONE_VM | SIGCHLD, NULL);
	if (pid < 0)
		return -errno;
	r = write_map(pid, "uid_map", u, nu);
	if (r >= 0)
		r = write_map(pid, "gid_map", g, ng);
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	fd = r < 0 ? r : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && r >= 0)
		r = -errno;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return r < 0 ? r : fd;
}

int idmount_clone(const char *path, int userns_fd)
{
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)userns_fd };
	_cleanup_close_ int fd = (int)syscall(SYS_open_tree, AT_FDCWD, path,
					      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
		return -errno;
	return TAKE_FD(fd);
}

static int fs_set(int fs, unsigned cmd, const char *key, const void *value, int aux)
{
	return syscall(SYS_fsconfig, fs, cmd, key, value, aux) < 0 ? -errno : 0;
}

int idmount_overlay(const char *target, const int *lower, size_t n_lower, const char *upper,
		    const char *work, bool xino)
{
	_cleanup_close_ int fs = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
	_cleanup_close_ int mnt = -EBADF;
	int r;

	if (fs < 0)
		return -errno;
	r = fs_set(fs, FSCONFIG_SET_STRING, "source", "xos-root", 0);
	for (size_t i = 0; r >= 0 && i < n_lower; i++)
		r = fs_set(fs, FSCONFIG_SET_FD, "lowerdir+", NULL, lower[i]);
	r = r < 0 ? r : fs_set(fs, FSCONFIG_SET_STRING, "upperdir", upper, 0);
	r = r < 0 ? r : fs_set(fs, FSCONFIG_SET_STRING, "workdir", work, 0);
	if (xino)
		r = r < 0 ? r : fs_set(fs, FSCONFIG_SET_STRING, "xino", "on", 0);
	r = r < 0 ? r : fs_set(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
	if (r < 0)
		return r;
	mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
	if (mnt < 0)
		return -errno;
	if (syscall(SYS_move_mount, mnt, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return -errno;
	return 0;
}

/* A trial overlay of idmapped clones of lowers at scratch/mnt (upper and
 * work dirs beside it), undone at once; scratch is made and removed. */
int idmount_probe(const char *const *lowers, size_t n, const char *scratch, uint32_t root_uid,
		  uint32_t root_gid)
{
	struct runtime_idmap_entry u = { 0, root_uid, 1 }, g = { 0, root_gid, 1 };
	_cleanup_close_ int ns = -EBADF;
	char mnt[4200], upper[4200], work[4200];
	int fd[4] = { -EBADF, -EBADF, -EBADF, -EBADF };
	int r = 0;

	if (n > ELEMENTSOF(fd))
		return -E2BIG;
	snprintf(mnt, sizeof(mnt), "%s/mnt", scratch);
	snprintf(upper, sizeof(upper), "%s/upper", scratch);
	snprintf(work, sizeof(work), "%s/work", scratch);
	(void)rm_rf_at(AT_FDCWD, scratch);
	if (mkdir(scratch, 0700) < 0 || mkdir(mnt, 0700) < 0 || mkdir(upper, 0700) < 0 ||
	    mkdir(work, 0700) < 0)
		r = -errno;
	ns = r < 0 ? r : idmount_userns(&u, 1, &g, 1);
	if (ns < 0)
		r = ns;
	for (size_t i = 0; r >= 0 && i < n; i++)
		if ((fd[i] = idmount_clone(lowers[i], ns)) < 0)
			r = fd[i];
	if (r >= 0 && (r = idmount_overlay(mnt, fd, n, upper, work, false)) >= 0)
		umount2(mnt, MNT_DETACH);
	for (size_t i = 0; i < n; i++)
		closep(&fd[i]);
	(void)rm_rf_at(AT_FDCWD, scratch);
	return r;
}
