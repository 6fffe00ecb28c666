/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Copying a directory tree exactly: owners, modes, times, extended
 * attributes (overlayfs's trusted.overlay.* included), device nodes
 * (overlayfs whiteouts are 0:0 character devices), fifos and symlinks. Every
 * step goes through dirfds and never follows a link. Hard links become
 * separate copies; sockets are skipped (nothing can use a copied socket).
 * Holes are kept: a sparse file costs its data blocks only, in the copy as
 * in the original. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "common/common.h"

static int copy_xattrs(int from, int to)
{
	char names[8192], value[65536];
	ssize_t n = flistxattr(from, names, sizeof(names));

	if (n < 0)
		return errno == ENOTSUP ? 0 : -errno;
	for (char *k = names; k < names + n; k += strlen(k) + 1) {
		ssize_t v = fgetxattr(from, k, value, sizeof(value));

		if (v < 0)
			continue; /* vanished or unreadable: nothing to keep */
		if (fsetxattr(to, k, value, (size_t)v, 0) < 0 && errno != ENOTSUP)
			return -errno;
	}
	return 0;
}

/* Copy len bytes at off from one file to the other (same offsets). */
static int copy_range(int from, int to, off_t off, off_t len, off_t *ret_done)
{
	off_t in = off, out = off, left = len;

	while (left > 0) {
		ssize_t n = copy_file_range(from, &in, to, &out, (size_t)left, 0);

		if (n < 0 &&
		    (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
			if (lseek(from, in, SEEK_SET) < 0 || lseek(to, out, SEEK_SET) < 0)
				return -errno;
			n = sendfile(to, from, NULL, (size_t)left);
			if (n > 0)
				in += n, out += n;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break; /* shrank meanwhile */
		left -= n;
	}
	*ret_done = len - left;
	return 0;
}

/* The data of a file, its holes kept: only the extents SEEK_DATA finds are
 * copied (a sparse file of 4 GiB with 1 MiB of data costs 1 MiB), and the
 * copy gets the source's size. Without SEEK_DATA, everything is copied. */
static int copy_data(int from, int to, off_t size, uint64_t *bytes)
{
	off_t pos = 0, copied = 0;
	int r;

	while (pos < size) {
		off_t data = lseek(from, pos, SEEK_DATA), hole, done = 0;

		if (data < 0 && errno != ENXIO && errno != EINVAL && errno != EOPNOTSUPP)
			return -errno;
		if (data < 0 && errno == ENXIO)
			data = size; /* only a hole is left */
		else if (data < 0)   /* no SEEK_DATA here: all of it */
			data = pos, hole = size;
		else if ((hole = lseek(from, data, SEEK_HOLE)) < 0)
			return -errno;
		if (data >= size) {
			pos = size;
			break;
		}
		if (hole > size)
			hole = size;
		r = copy_range(from, to, data, hole - data, &done);
		if (r < 0)
			return r;
		copied += done;
		pos = data + done;
		if (done < hole - data)
			break; /* shrank meanwhile */
	}
	/* the size, a hole at the end included */
	if (ftruncate(to, pos) < 0)
		return -errno;
	if (bytes)
		*bytes += (uint64_t)copied;
	return 0;
}

int copy_fd_data(int from, int to)
{
	struct stat st;

	if (fstat(from, &st) < 0)
		return -errno;
	return copy_data(from, to, st.st_size, NULL);
}

/* Owner, mode and times of an entry that was just made (fd open on it). */
static int copy_meta(int fd, const struct stat *st)
{
	struct timespec ts[2] = { st->st_atim, st->st_mtim };

	if (fchown(fd, st->st_uid, st->st_gid) < 0 || fchmod(fd, st->st_mode & 07777) < 0)
		return -errno;
	return futimens(fd, ts) < 0 ? -errno : 0;
}

static int copy_file(int from, int to, const char *name, const struct stat *st, uint64_t *bytes)
{
	_cleanup_close_ int s = openat(from, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_close_ int d = -EBADF;
	int r;

	if (s < 0)
		return -errno;
	d = openat(to, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (d < 0)
		return -errno;
	r = copy_data(s, d, st->st_size, bytes);
	if (r >= 0)
		r = copy_xattrs(s, d);
	return r < 0 ? r : copy_meta(d, st);
}

static int copy_special(int from, int to, const char *name, const struct stat *st)
{
	struct timespec ts[2] = { st->st_atim, st->st_mtim };

	if (S_ISLNK(st->st_mode)) {
		char target[4096];
		ssize_t n = readlinkat(from, name, target, sizeof(target) - 1);

		if (n < 0)
			return -errno;
		target[n] = 0;
		if (symlinkat(target, to, name) < 0)
			return -errno;
	} else if (S_ISSOCK(st->st_mode)) {
		return 0;
	} else if (mknodat(to, name, st->st_mode & (S_IFMT | 07777), st->st_rdev) < 0) {
		return -errno;
	}
	if (fchownat(to, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISLNK(st->st_mode) && fchmodat(to, name, st->st_mode & 07777, 0) < 0)
		return -errno;
	return utimensat(to, name, ts, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int copy_dir(int from, const char *name, int to, const char *to_name, const struct stat *st,
		    uint64_t *bytes, unsigned depth)
{
	_cleanup_close_ int s = open_dir_at(from, name), d = -EBADF;
	struct dirent *de;
	DIR *dir;
	int r = 0;

	if (s < 0)
		return s;
	if (depth > 256)
		return -ELOOP;
	if (mkdirat(to, to_name, 0700) < 0)
		return -errno;
	d = open_dir_at(to, to_name);
	if (d < 0)
		return d;
	dir = opendir_dup(s);
	if (!dir)
		return -errno;
	while (r >= 0 && (errno = 0, de = readdir(dir))) {
		struct stat cst;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(s, de->d_name, &cst, AT_SYMLINK_NOFOLLOW) < 0)
			r = errno == ENOENT ? 0 : -errno;
		else if (S_ISDIR(cst.st_mode))
			r = copy_dir(s, de->d_name, d, de->d_name, &cst, bytes, depth + 1);
		else if (S_ISREG(cst.st_mode))
			r = copy_file(s, d, de->d_name, &cst, bytes);
		else
			r = copy_special(s, d, de->d_name, &cst);
	}
	closedir(dir);
	if (r >= 0)
		r = copy_xattrs(s, d);
	return r < 0 ? r : copy_meta(d, st);
}

int copy_tree_at(int from, const char *name, int to, const char *to_name, uint64_t *ret_bytes)
{
	struct stat st;
	uint64_t bytes = 0;
	int r;

	if (fstatat(from, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	r = copy_dir(from, name, to, to_name, &st, &bytes, 0);
	if (r >= 0 && ret_bytes)
		*ret_bytes = bytes;
	return r;
}

int link_or_copy_at(int from_dir, const char *from, int to_dir, const char *to, mode_t mode)
{
	_cleanup_close_ int src = -EBADF, dst = -EBADF;

	if (linkat(from_dir, from, to_dir, to, 0) == 0 || errno == EEXIST)
		return 0;
	if (errno != EXDEV)
		return -errno;
	src = openat(from_dir, from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (src < 0)
		return -errno;
	dst = openat(to_dir, to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (dst < 0)
		return -errno;
	return copy_fd_data(src, dst);
}
