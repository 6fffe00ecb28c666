/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fd and filesystem helpers: EINTR-safe I/O, atomic writes, *at() walking. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include "common/common.h"

ssize_t loop_write(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	size_t done = 0;

	while (done < n) {
		ssize_t k = write(fd, p + done, n - done);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			return -EIO;
		done += (size_t)k;
	}
	return (ssize_t)done;
}

ssize_t loop_read(int fd, void *buf, size_t n)
{
	char *p = buf;
	size_t done = 0;

	while (done < n) {
		ssize_t k = read(fd, p + done, n - done);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		done += (size_t)k;
	}
	return (ssize_t)done;
}

int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
			 bool sync)
{
	char tmp[256];
	_cleanup_close_ int fd = -EBADF;
	ssize_t k;
	int r;

	r = snprintf(tmp, sizeof(tmp), ".%s.tmp%d", name, (int)getpid());
	if (r < 0 || (size_t)r >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	k = loop_write(fd, data, len);
	if (k < 0) {
		r = (int)k;
		goto err_unlink;
	}
	if (fchmod(fd, mode) < 0 || (sync && fdatasync(fd) < 0)) {
		r = -errno;
		goto err_unlink;
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		r = -errno;
		goto err_unlink;
	}
	return 0;
err_unlink:
	unlinkat(dirfd, tmp, 0);
	return r;
}

int file_stamp(const char *path, char *buf, size_t len)
{
	struct stat st;
	int r;

	if (stat(path, &st) < 0)
		return -errno;
	r = snprintf(buf, len, "%llx.%llx.%llx.%lld.%ld", (unsigned long long)st.st_dev,
		     (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
		     (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
	return r < 0 || (size_t)r >= len ? -ENAMETOOLONG : 0;
}

int read_file_at(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t cap, len = 0;

	/* O_NONBLOCK: a fifo planted under the name must not block us */
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADFD;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;
	/* files of /proc and /sys say size 0; a sysctl answers only a read at
	 * offset 0, so it must be read whole by the first read */
	cap = st.st_size ? (size_t)st.st_size + 1 : (max < 4095 ? max : 4095) + 1;
	buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t k = read(fd, buf + len, cap - len);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			break;
		len += (size_t)k;
		if (len == cap) {
			char *nb;

			if (cap > max)
				return -EFBIG;
			cap *= 2;
			nb = realloc(buf, cap + 1);
			if (!nb)
				return -ENOMEM;
			buf = nb;
		}
	}
	if (len > max)
		return -EFBIG;
	buf[len] = 0;
	*ret = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int open_dir_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/* ---- below a directory that a container or a user controls ---- */

static bool beneath_walk_only;
static int have_openat2 = -1; /* -1: not probed yet */

void fs_beneath_force_walk(bool on)
{
	beneath_walk_only = on;
}

static bool openat2_usable(void)
{
	struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC };
	int fd;

	if (beneath_walk_only)
		return false;
	if (have_openat2 < 0) { /* (seccomp profiles of other runtimes answer EPERM) */
		fd = (int)syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how));
		have_openat2 = fd >= 0 || (errno != ENOSYS && errno != EPERM);
		if (fd >= 0)
			close(fd);
	}
	return have_openat2 > 0;
}

/* Relative, no "..", shorter than PATH_MAX, components within NAME_MAX. */
static int beneath_check(const char *path)
{
	size_t len = strlen(path);

	if (len == 0 || path[0] == '/')
		return -EINVAL;
	if (len >= PATH_MAX)
		return -ENAMETOOLONG;
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -EINVAL;
		if (n > NAME_MAX)
			return -ENAMETOOLONG;
		p += n;
		p += strspn(p, "/");
	}
	return 0;
}

/* The error of a failed open of comp below dir: a symlink there (which an
 * O_DIRECTORY|O_NOFOLLOW open reports as ENOTDIR) is -ELOOP. */
static int beneath_errno(int err, int dir, const char *comp)
{
	struct stat st;

	if (err == ENOTDIR && fstatat(dir, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		return -ELOOP;
	return -err;
}

/* The next component of *p into comp (checked by beneath_check); true if it
 * is the last one. */
static bool next_component(const char **p, char comp[NAME_MAX + 1])
{
	size_t n = strcspn(*p, "/");

	memcpy(comp, *p, n);
	comp[n] = 0;
	*p += n;
	*p += strspn(*p, "/");
	return **p == 0;
}

/* A final symlink opened with O_PATH is refused unless the caller asked for
 * the link itself (O_PATH|O_NOFOLLOW). */
static int beneath_final(int fd, int flags)
{
	struct stat st;

	if (fd < 0 || !(flags & O_PATH) || (flags & O_NOFOLLOW))
		return fd;
	if (fstat(fd, &st) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	if (S_ISLNK(st.st_mode)) {
		close(fd);
		return -ELOOP;
	}
	return fd;
}

static int beneath_walk(int dirfd, const char *path, int flags, mode_t mode)
{
	_cleanup_close_ int cur = -EBADF;
	const char *p = path;

	for (;;) {
		char comp[NAME_MAX + 1];
		bool last = next_component(&p, comp);
		int at = cur >= 0 ? cur : dirfd, fd;

		if (last)
			fd = openat(at, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
		else
			fd = openat(at, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return beneath_errno(errno, at, comp);
		if (last)
			return beneath_final(fd, flags);
		closep(&cur);
		cur = fd;
	}
}

int openat_beneath(int dirfd, const char *path, int flags, mode_t mode)
{
	struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC),
				.mode = (flags & O_CREAT) ? mode : 0,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
					   RESOLVE_NO_MAGICLINKS };
	int r = beneath_check(path);

	if (r < 0)
		return r;
	for (int tries = 0; openat2_usable(); tries++) {
		int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));

		if (fd >= 0)
			return fd;
		if (errno == EAGAIN && tries < 8) /* a rename raced with the lookup */
			continue;
		if (errno != ENOSYS)
			return -errno;
		have_openat2 = 0;
	}
	return beneath_walk(dirfd, path, flags, mode);
}

int mkdirat_beneath(int dirfd, const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	_cleanup_close_ int cur = -EBADF;
	const char *p = path;
	int fd = openat_beneath(dirfd, path, O_PATH | O_DIRECTORY, 0);

	if (fd != -ENOENT)
		return fd;
	for (;;) { /* some are missing: one component at a time */
		char comp[NAME_MAX + 1];
		bool last = next_component(&p, comp), made = false;
		int at = cur >= 0 ? cur : dirfd;

		fd = openat(at, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT) {
			if (mkdirat(at, comp, mode) == 0)
				made = true;
			else if (errno != EEXIST)
				return -errno;
			fd = openat(at, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (fd < 0)
			return beneath_errno(errno, at, comp);
		closep(&cur);
		cur = fd;
		if (made && uid != (uid_t)-1 && fchownat(cur, "", uid, gid, AT_EMPTY_PATH) < 0)
			return -errno;
		if (last)
			return TAKE_FD(cur);
	}
}

int mkdir_p_at(int dirfd, const char *path, mode_t mode)
{
	_cleanup_free_ char *copy = strdup(path);
	_cleanup_close_ int cur = -EBADF;
	char *save = NULL, *tok;
	int at = dirfd;

	if (!copy)
		return -ENOMEM;
	if (path[0] == '/') {
		cur = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cur < 0)
			return -errno;
		at = cur;
	}
	for (tok = strtok_r(copy, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		int next;

		if (strcmp(tok, "..") == 0)
			return -EINVAL;
		if (mkdirat(at, tok, mode) < 0 && errno != EEXIST)
			return -errno;
		next = open_dir_at(at, tok);
		if (next < 0)
			return next;
		closep(&cur);
		cur = next;
		at = cur;
	}
	return 0;
}

DIR *opendir_dup(int fd)
{
	int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	DIR *dir;

	if (dup < 0)
		return NULL;
	dir = fdopendir(dup);
	if (!dir) {
		int e = errno;

		close(dup);
		errno = e;
		return NULL;
	}
	rewinddir(dir); /* (the duplicate shares fd's offset) */
	return dir;
}

static int rm_rf_children(int fd, dev_t dev)
{
	DIR *d;
	struct dirent *de;
	int r = 0;

	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			int sub;

			if (st.st_dev != dev) { /* a mount point: never cross */
				r = -EBUSY;
				continue;
			}
			sub = open_dir_at(dirfd(d), de->d_name);
			if (sub >= 0) {
				int q = rm_rf_children(sub, dev);

				if (q < 0 && r == 0)
					r = q;
			}
			if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0 && r == 0)
				r = -errno;
		} else if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT && r == 0) {
			r = -errno;
		}
	}
	closedir(d);
	return r;
}

int rm_rf_at(int dirfd, const char *name)
{
	struct stat st;
	int fd, r;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
	fd = open_dir_at(dirfd, name);
	if (fd < 0)
		return fd;
	r = rm_rf_children(fd, st.st_dev);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && r == 0)
		r = -errno;
	return r;
}

ssize_t recv_with_fd(int sock, void *buf, size_t len, int flags, int *ret_fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} cm;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cm.buf,
			    .msg_controllen = sizeof(cm.buf) };
	ssize_t n = recvmsg(sock, &m, flags | MSG_CMSG_CLOEXEC);

	if (n < 0)
		return n;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (h->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int f;

			memcpy(&f, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
			if (*ret_fd < 0)
				*ret_fd = f;
			else
				close(f);
		}
	}
	return n;
}

ssize_t send_with_fd(int sock, const void *buf, size_t len, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm = { 0 };
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cm.buf,
			    .msg_controllen = sizeof(cm.buf) };
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);

	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(int));
	return sendmsg(sock, &m, MSG_NOSIGNAL);
}

int unix_listen(const char *path, int backlog)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -EBADF;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	(void)unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0)
		return -errno;
	return TAKE_FD(fd);
}
