/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Safe extraction of archive entries below a root directory. libarchive is
 * only the reader: every name is checked, every parent directory is opened
 * beneath the root without following a symlink (mkdirat_beneath of common/:
 * openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or a component walk with
 * O_NOFOLLOW), files are
 * created O_EXCL|O_NOFOLLOW, and owners are shifted into the containers' range.
 * Nothing recurses: a tree of any depth is handled with one cached parent fd. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "templates/templates-internal.h"

void template_extract_force_fallback(bool on)
{
	fs_beneath_force_walk(on);
}

struct ex {
	int root;
	const struct template_import_opts *o;
	struct template_progress *p;
	char *cache_path; /* the last parent directory opened, and its fd */
	int cache_fd;
	char why[512];
};

static int why(struct ex *x, int r, const char *fmt, ...) _printf_(3, 4);
static int why(struct ex *x, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->why, sizeof(x->why), fmt, ap);
	va_end(ap);
	return r;
}

static void cache_drop(struct ex *x)
{
	free(x->cache_path);
	x->cache_path = NULL;
	closep(&x->cache_fd);
}

static void cache_set(struct ex *x, const char *path, size_t len, int fd)
{
	char *p = strndup(path, len);

	cache_drop(x);
	if (!p) {
		close(fd);
		return;
	}
	x->cache_path = p;
	x->cache_fd = fd;
}

/* The message for a failed open of a parent directory. */
static int walk_error(struct ex *x, int err)
{
	if (err == ELOOP)
		return why(x, -ELOOP, "its path goes through a symlink");
	if (err == ENOTDIR)
		return why(x, -ENOTDIR, "its path goes through something that is not a directory");
	return why(x, -err, "cannot open or create its parent directory: %s", strerror(err));
}

/* Open directory rel below from, creating what is missing (owned by the
 * containers' root), never through a symlink (mkdirat_beneath), in chunks
 * shorter than PATH_MAX (a deep tree's names are longer). */
static int open_beneath(struct ex *x, int from, const char *rel, size_t len, int *ret)
{
	_cleanup_close_ int cur = -EBADF;
	size_t i = 0;

	while (i < len) {
		char chunk[PATH_MAX];
		size_t n = len - i;
		int fd;

		if (n >= sizeof(chunk)) { /* cut at the last '/' that fits */
			n = sizeof(chunk) - 1;
			while (n > 0 && rel[i + n] != '/')
				n--;
		}
		memcpy(chunk, rel + i, n);
		chunk[n] = 0;
		fd = mkdirat_beneath(cur >= 0 ? cur : from, chunk, 0755, x->o->uid_base,
				     x->o->gid_base);
		if (fd < 0)
			return walk_error(x, -fd);
		closep(&cur);
		cur = fd;
		i += n + 1;
	}
	*ret = TAKE_FD(cur);
	return 0;
}

/* The directory that holds path (normalised, not ""): borrowed fd, valid
 * until the next call; *ret_base: the last component. */
static int open_parent(struct ex *x, const char *path, int *ret_fd, const char **ret_base)
{
	const char *slash = strrchr(path, '/'), *rel = path;
	size_t len = slash ? (size_t)(slash - path) : 0, clen;
	int from = x->root, fd = -EBADF, r;

	*ret_base = slash ? slash + 1 : path;
	if (len == 0) {
		*ret_fd = x->root;
		return 0;
	}
	clen = x->cache_path ? strlen(x->cache_path) : 0;
	if (x->cache_path && clen == len && !memcmp(x->cache_path, path, len)) {
		*ret_fd = x->cache_fd;
		return 0;
	}
	if (x->cache_path && clen < len && path[clen] == '/' &&
	    !memcmp(x->cache_path, path, clen)) {
		from = x->cache_fd; /* the usual order: children follow their parent */
		rel = path + clen + 1;
	}
	r = open_beneath(x, from, rel, (size_t)(path + len - rel), &fd);
	if (r < 0)
		return r;
	cache_set(x, path, len, fd);
	*ret_fd = x->cache_fd;
	return x->cache_fd >= 0 ? 0 : -ENOMEM;
}

/* Make room for the entry base in dir: an earlier entry of the same name
 * goes, unless both are directories (*ret_keep_dir). */
static int make_room(struct ex *x, int dir, const char *base, bool is_dir, bool *ret_keep_dir)
{
	struct stat st;

	*ret_keep_dir = false;
	if (fstatat(dir, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : why(x, -errno, "cannot inspect it: %m");
	if (S_ISDIR(st.st_mode) && is_dir) {
		*ret_keep_dir = true;
		return 0;
	}
	if (S_ISDIR(st.st_mode)) {
		if (unlinkat(dir, base, AT_REMOVEDIR) < 0)
			return why(x, -errno, "it would replace a directory%s",
				   errno == ENOTEMPTY ? " that is not empty" : "");
		cache_drop(x); /* the cached directory may have been that one */
		return 0;
	}
	if (unlinkat(dir, base, 0) < 0)
		return why(x, -errno, "cannot replace an earlier entry: %m");
	return 0;
}

static int entry_ids(struct ex *x, struct archive_entry *e, uid_t *ret_uid, gid_t *ret_gid)
{
	int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
	uint32_t n = x->o->id_count;

	if (uid < 0 || uid >= n)
		return why(x, -ERANGE, "its owner uid %lld is outside the containers' ids 0-%u",
			   (long long)uid, n - 1);
	if (gid < 0 || gid >= n)
		return why(x, -ERANGE, "its group gid %lld is outside the containers' ids 0-%u",
			   (long long)gid, n - 1);
	*ret_uid = x->o->uid_base + (uid_t)uid;
	*ret_gid = x->o->gid_base + (gid_t)gid;
	return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
	ts[0].tv_sec = ts[1].tv_sec = archive_entry_mtime(e);
	ts[0].tv_nsec = ts[1].tv_nsec = archive_entry_mtime_nsec(e);
}

/* Owner, then mode (chown clears set-id bits), then times, on an open fd. */
static int finish_fd(struct ex *x, int fd, struct archive_entry *e, uid_t u, gid_t g)
{
	struct timespec ts[2];

	entry_times(e, ts);
	if (fchown(fd, u, g) < 0 || fchmod(fd, archive_entry_perm(e) & 07777) < 0 ||
	    futimens(fd, ts) < 0)
		return why(x, -errno, "cannot set its owner, mode or time: %m");
	return 0;
}

static int write_all_at(int fd, const char *buf, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static int check_cap(struct ex *x, uint64_t more)
{
	uint64_t max = x->o->max_bytes;

	if (max && (more > max || x->p->bytes > max - more))
		return why(x, -EFBIG, "the archive holds more than %llu bytes, the import's limit",
			   (unsigned long long)max);
	return 0;
}

static int extract_file(struct ex *x, struct archive *a, struct archive_entry *e, int dir,
			const char *base, uid_t u, gid_t g)
{
	int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
	_cleanup_close_ int fd = -EBADF;
	int r;

	if (size < 0 || (r = check_cap(x, (uint64_t)size)) < 0)
		return size < 0 ? why(x, -EINVAL, "its size is negative") : r;
	fd = openat(dir, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return why(x, -errno, "cannot create it: %m");
	for (;;) {
		const void *buf;
		size_t len;
		la_int64_t off;

		r = archive_read_data_block(a, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN)
			return why(x, -EIO, "%s", archive_error_string(a));
		if ((r = check_cap(x, len)) < 0)
			return r;
		if ((r = write_all_at(fd, buf, len, off)) < 0)
			return why(x, r, "cannot write it: %s", strerror(-r));
		x->p->bytes += len;
	}
	if (ftruncate(fd, size) < 0) /* a sparse file's last hole */
		return why(x, -errno, "cannot write it: %m");
	return finish_fd(x, fd, e, u, g);
}

static int extract_dir(struct ex *x, struct archive_entry *e, const char *path, int dir,
		       const char *base, uid_t u, gid_t g)
{
	bool keep;
	int fd, r = make_room(x, dir, base, true, &keep);

	if (r < 0)
		return r;
	if (!keep && mkdirat(dir, base, 0700) < 0)
		return why(x, -errno, "cannot create it: %m");
	fd = openat(dir, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return why(x, -errno, "cannot open it: %m");
	r = finish_fd(x, fd, e, u, g);
	if (r < 0) {
		close(fd);
		return r;
	}
	cache_set(x, path, strlen(path), fd); /* its children come next */
	return 0;
}

static int extract_symlink(struct ex *x, struct archive_entry *e, const char *path, int dir,
			   const char *base, uid_t u, gid_t g)
{
	const char *target = archive_entry_symlink(e), *reason = NULL;
	struct timespec ts[2];
	bool keep;
	int r;

	if (template_symlink_check(path, target, &reason) < 0)
		return why(x, -EINVAL, "%s", reason);
	if ((r = make_room(x, dir, base, false, &keep)) < 0)
		return r;
	if (symlinkat(target, dir, base) < 0)
		return why(x, -errno, "cannot create it: %m");
	entry_times(e, ts);
	if (fchownat(dir, base, u, g, AT_SYMLINK_NOFOLLOW) < 0 ||
	    utimensat(dir, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return why(x, -errno, "cannot set its owner or time: %m");
	return 0;
}

static int extract_hardlink(struct ex *x, const char *path, const char *target)
{
	_cleanup_free_ char *norm = NULL, *shown = template_entry_display(target);
	_cleanup_close_ int tdir = -EBADF;
	const char *reason = NULL, *tbase, *base;
	struct stat st;
	bool keep;
	int dir, r;

	if (template_entry_normalize(target, &norm, &reason) < 0 || !norm[0])
		return why(x, -EINVAL, "its hardlink target %s: %s", shown ? shown : "",
			   reason ? reason : "is the root");
	if ((r = open_parent(x, norm, &dir, &tbase)) < 0) {
		char inner[sizeof(x->why)];

		memcpy(inner, x->why, sizeof(inner));
		return why(x, r, "its hardlink target %s: %s", shown ? shown : "", inner);
	}
	tdir = fcntl(dir, F_DUPFD_CLOEXEC, 3);
	if (tdir < 0)
		return why(x, -errno, "cannot open its hardlink target: %m");
	if (fstatat(tdir, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
		return why(x, -EINVAL,
			   "its hardlink target %s is not a regular file extracted before it",
			   shown ? shown : "");
	if ((r = open_parent(x, path, &dir, &base)) < 0 ||
	    (r = make_room(x, dir, base, false, &keep)) < 0)
		return r;
	if (linkat(tdir, tbase, dir, base, 0) < 0) /* no AT_SYMLINK_FOLLOW */
		return why(x, -errno, "cannot link it: %m");
	return 0;
}

static int extract_node(struct ex *x, struct archive_entry *e, int dir, const char *base, uid_t u,
			gid_t g)
{
	mode_t type = archive_entry_filetype(e);
	bool keep;
	int r;

	if (!x->o->allow_devices)
		return why(x, -EPERM, "%s are refused (import with --allow-devices to keep them)",
			   type == AE_IFIFO ? "fifos" : "device nodes");
	if ((r = make_room(x, dir, base, false, &keep)) < 0)
		return r;
	if (mknodat(dir, base, type | (archive_entry_perm(e) & 0777), archive_entry_rdev(e)) < 0)
		return why(x, -errno, "cannot create it: %m");
	if (fchownat(dir, base, u, g, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fchmodat(dir, base, archive_entry_perm(e) & 07777, 0) < 0)
		return why(x, -errno, "cannot set its owner or mode: %m");
	return 0;
}

static int extract_entry(struct ex *x, struct archive *a, struct archive_entry *e, const char *path)
{
	mode_t type = archive_entry_filetype(e);
	const char *link = archive_entry_hardlink(e), *base;
	uid_t u = 0;
	gid_t g = 0;
	int dir, r;

	if ((r = entry_ids(x, e, &u, &g)) < 0)
		return r;
	if (!path[0]) { /* "./": the root itself */
		if (type != AE_IFDIR || link)
			return why(x, -EINVAL, "it would replace the template's root");
		return finish_fd(x, x->root, e, u, g);
	}
	if (link)
		return extract_hardlink(x, path, link);
	if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK && type != AE_IFCHR &&
	    type != AE_IFBLK && type != AE_IFIFO)
		return why(x, -EINVAL, "its type (%o) is not supported", (unsigned)type);
	if ((r = open_parent(x, path, &dir, &base)) < 0)
		return r;
	switch (type) {
	case AE_IFREG: {
		bool keep;

		if ((r = make_room(x, dir, base, false, &keep)) < 0)
			return r;
		return extract_file(x, a, e, dir, base, u, g);
	}
	case AE_IFDIR:
		return extract_dir(x, e, path, dir, base, u, g);
	case AE_IFLNK:
		return extract_symlink(x, e, path, dir, base, u, g);
	default:
		return extract_node(x, e, dir, base, u, g);
	}
}

/* One entry: its name checked and normalised, then extracted. */
static int do_entry(struct ex *x, struct archive *a, struct archive_entry *e, const char *name)
{
	_cleanup_free_ char *path = NULL;
	const char *reason = NULL;
	int r = template_entry_normalize(name, &path, &reason);

	if (r < 0)
		return why(x, r, "%s", reason ? reason : strerror(-r));
	return extract_entry(x, a, e, path);
}

static char *entry_error(const char *name, const char *what)
{
	_cleanup_free_ char *shown = template_entry_display(name);

	return xstrdup_printf("entry %s: %s", shown ? shown : "?", what);
}

int template_extract_all(struct archive *a, int root_fd, const struct template_import_opts *o,
			 struct template_progress *p, char **ret_err)
{
	struct ex x = { .root = root_fd, .o = o, .p = p, .cache_fd = -EBADF };
	_cleanup_free_ char *last = NULL;
	int r = 0;

	for (;;) {
		struct archive_entry *e;
		const char *name;

		r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF) {
			r = 0;
			break;
		}
		if (r < ARCHIVE_WARN) {
			_cleanup_free_ char *shown = last ? template_entry_display(last) : NULL;

			if (shown)
				*ret_err = xstrdup_printf("after entry %s: %s", shown,
							  archive_error_string(a));
			else if (p->read == 0)
				*ret_err = xstrdup_printf("the archive is empty (0 bytes)");
			else
				*ret_err = xstrdup_printf(
					"%s (a tar archive is needed, optionally gzip, xz, "
					"bzip2 or zstd compressed)",
					archive_error_string(a));
			r = -EIO;
			break;
		}
		name = archive_entry_pathname(e);
		if (!name) {
			*ret_err = xstrdup_printf("an entry has a name that cannot be read");
			r = -EINVAL;
			break;
		}
		r = do_entry(&x, a, e, name);
		if (r < 0) {
			*ret_err = entry_error(name, x.why);
			break;
		}
		p->entries++;
		free(last);
		last = strdup(name);
	}
	cache_drop(&x);
	if (r == 0 && p->entries == 0) {
		*ret_err = xstrdup_printf("the archive holds no entries");
		r = -ENODATA;
	}
	return r;
}
