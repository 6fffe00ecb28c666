/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A dead job's layer kept for its restart, rolled back in place to a
 * checkpoint version (docs/DECISIONS.md (ao)).
 *
 * When a job with a checkpoint version ends, xosd holds detached clones
 * (open_tree) of its root overlay and of its layer's tmpfs: the two
 * superblocks stay, so the overlay's device number and the layer's inode
 * numbers do. The restart of that version attaches them again and makes the
 * layer what the version's copy (<version>/upper) holds, changing only what
 * differs: a file whose bytes, owner, mode or attributes differ is rewritten
 * in place (same inode), one the version lacks is removed, one it has that
 * the layer lacks is made. Every change goes through the kept overlay (never
 * into its upper directory behind its back: the overlay caches what it
 * looked up); the upper directory is only read. Hard links come from the
 * version's "links" list (the action script writes it: inode and path of
 * each file with several names at the checkpoint), so a link CRIU made for
 * the dump (link_remap.N) links to the same inode again. Whatever cannot be
 * made equal through the overlay (a name the lower layers hold that the
 * version shows differently) fails with -EXDEV: the caller copies the
 * version's layer into a new tmpfs instead, as before. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "runtime/runtime-internal.h"

#define OVL_XATTR "trusted.overlay."
#define LINKS_MAX (16u << 20) /* bytes of the links list */

struct rb_link {
	uint64_t ino; /* the inode at the checkpoint */
	const char *path;
	int anchor; /* O_PATH through the root of the group's file, or -EBADF */
};

struct rb {
	int root; /* the kept overlay (changes go here) */
	int l;    /* its upper directory (read only) */
	const int *lowers;
	size_t n_lowers;
	struct rb_link *links;
	size_t n_links;
	char path[PATH_MAX]; /* the entry's path below the top */
};

/* kinds of entry in an upper directory */
enum { K_NONE, K_DIR, K_REG, K_LNK, K_WHITEOUT, K_OTHER };

static int kind_of(const struct stat *st)
{
	if (S_ISDIR(st->st_mode))
		return K_DIR;
	if (S_ISREG(st->st_mode))
		return K_REG;
	if (S_ISLNK(st->st_mode))
		return K_LNK;
	if (S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0))
		return K_WHITEOUT;
	return K_OTHER;
}

static int kind_at(int dir, const char *name, struct stat *st)
{
	if (dir < 0 || fstatat(dir, name, st, AT_SYMLINK_NOFOLLOW) < 0)
		return dir >= 0 && errno != ENOENT ? -errno : K_NONE;
	return kind_of(st);
}

static bool same_kind(const struct stat *a, const struct stat *b)
{
	return kind_of(a) == kind_of(b) &&
	       (kind_of(a) != K_OTHER ||
		((a->st_mode & S_IFMT) == (b->st_mode & S_IFMT) && a->st_rdev == b->st_rdev));
}

/* the directory's overlay opacity ("y", "x"...; 0: none) */
static char opacity(int dir, const char *name)
{
	_cleanup_close_ int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	char v[4];

	return fd >= 0 && fgetxattr(fd, OVL_XATTR "opaque", v, sizeof(v)) == 1 ? v[0] : 0;
}

/* ---- the links list: "INO PATH\0" per name ---- */

static int link_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rb_link *)a)->path, ((const struct rb_link *)b)->path);
}

static int links_parse(char *text, size_t len, struct rb_link **ret, size_t *ret_n)
{
	_cleanup_free_ struct rb_link *v = NULL;
	size_t n = 0;

	for (size_t off = 0; off < len; off += strlen(text + off) + 1)
		n++;
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	n = 0;
	for (size_t off = 0; off < len; off += strlen(text + off) + 1) {
		char *sp = strchr(text + off, ' '), *end = NULL;
		unsigned long long ino;

		if (!sp)
			return -EBADMSG;
		errno = 0;
		ino = strtoull(text + off, &end, 10);
		if (errno || end != sp || !sp[1] || sp[1] == '/' || strstr(sp + 1, ".."))
			return -EBADMSG;
		v[n++] = (struct rb_link){ .ino = ino, .path = sp + 1, .anchor = -EBADF };
	}
	qsort(v, n, sizeof(*v), link_cmp);
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

static struct rb_link *link_find(struct rb *rb, const char *path)
{
	struct rb_link key = { .path = path };

	return rb->n_links ? bsearch(&key, rb->links, rb->n_links, sizeof(key), link_cmp) : NULL;
}

static struct rb_link *group_anchor(struct rb *rb, uint64_t ino)
{
	for (size_t i = 0; i < rb->n_links; i++)
		if (rb->links[i].ino == ino && rb->links[i].anchor >= 0)
			return &rb->links[i];
	return NULL;
}

/* The member of each group that still is the checkpoint's inode anchors it. */
static void links_anchor(struct rb *rb)
{
	for (size_t i = 0; i < rb->n_links; i++) {
		struct rb_link *k = &rb->links[i];
		_cleanup_close_ int fd = openat_beneath(rb->l, k->path, O_PATH | O_NOFOLLOW, 0);
		struct stat st;

		if (group_anchor(rb, k->ino) || fd < 0 || fstat(fd, &st) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_ino != k->ino)
			continue;
		k->anchor = openat_beneath(rb->root, k->path, O_PATH | O_NOFOLLOW, 0);
	}
}

static void links_free(struct rb *rb)
{
	for (size_t i = 0; i < rb->n_links; i++)
		closep(&rb->links[i].anchor);
	free(rb->links);
}

/* ---- attributes and contents ---- */

/* The xattrs of to (through the overlay) made v's; the overlay's own stay. */
static int sync_xattrs(int v, int to)
{
	char names[8192], value[65536], cur[65536];
	ssize_t n = flistxattr(to, names, sizeof(names));

	for (char *k = names; n > 0 && k < names + n; k += strlen(k) + 1)
		if (!str_has_prefix(k, OVL_XATTR) && fgetxattr(v, k, value, 0) < 0 &&
		    errno == ENODATA && fremovexattr(to, k) < 0)
			return -errno;
	n = flistxattr(v, names, sizeof(names));
	if (n < 0)
		return errno == ENOTSUP ? 0 : -errno;
	for (char *k = names; k < names + n; k += strlen(k) + 1) {
		ssize_t a, b;

		if (str_has_prefix(k, OVL_XATTR) || (a = fgetxattr(v, k, value, sizeof(value))) < 0)
			continue;
		b = fgetxattr(to, k, cur, sizeof(cur));
		if (b == a && !memcmp(value, cur, (size_t)a))
			continue;
		if (fsetxattr(to, k, value, (size_t)a, 0) < 0)
			return -errno;
	}
	return 0;
}

static int sync_meta(int v, int to, const struct stat *st)
{
	struct timespec ts[2] = { st->st_atim, st->st_mtim };
	int r = sync_xattrs(v, to);

	if (r < 0)
		return r;
	if (fchown(to, st->st_uid, st->st_gid) < 0 || fchmod(to, st->st_mode & 07777) < 0)
		return -errno;
	return futimens(to, ts) < 0 ? -errno : 0;
}

static bool all_zero(const char *b, size_t n)
{
	return n == 0 || (b[0] == 0 && !memcmp(b, b + 1, n - 1));
}

/* Whether the two files hold the same bytes (a full compare: a write through
 * a shared mapping changes neither time on tmpfs, DECISIONS (ab)). */
static int same_bytes(int a, int b, off_t size)
{
	_cleanup_free_ char *x = malloc(1 << 16), *y = malloc(1 << 16);

	if (!x || !y)
		return -ENOMEM;
	for (off_t off = 0; off < size;) {
		ssize_t n = pread(a, x, 1 << 16, off), m;

		if (n <= 0)
			return n < 0 ? -errno : 0;
		m = pread(b, y, (size_t)n, off);
		if (m != n)
			return m < 0 ? -errno : 0;
		if (memcmp(x, y, (size_t)n))
			return 0;
		off += n;
	}
	return 1;
}

/* to (open for writing, truncated) gets from's bytes; zero blocks stay holes */
static int put_bytes(int from, int to, off_t size)
{
	_cleanup_free_ char *x = malloc(1 << 16);

	if (!x)
		return -ENOMEM;
	for (off_t off = 0; off < size;) {
		ssize_t n = pread(from, x, 1 << 16, off), w;

		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		w = all_zero(x, (size_t)n) ? n : pwrite(to, x, (size_t)n, off);

		if (w != n)
			return w < 0 ? -errno : -EIO;
		off += n;
	}
	return ftruncate(to, size) < 0 ? -errno : 0;
}

/* ---- the walk: dirs v (the version's), l (the layer's upper, read only)
 * and r (the same directory through the overlay) ---- */

static int path_push(struct rb *rb, const char *name, size_t *ret_len)
{
	size_t len = strlen(rb->path);
	int n = snprintf(rb->path + len, sizeof(rb->path) - len, "%s%s", len ? "/" : "", name);

	if (n < 0 || (size_t)n >= sizeof(rb->path) - len)
		return -ENAMETOOLONG;
	*ret_len = len;
	return 0;
}

/* Remove name through the overlay; what the lower layers hold under it then
 * shows as the overlay's whiteout in l, which only the version's own
 * whiteout (want_whiteout) may answer. */
static int remove_entry(int l, int r, const char *name, bool want_whiteout)
{
	struct stat st;
	int k, e = rm_rf_at(r, name);

	if (e < 0)
		return e;
	k = kind_at(l, name, &st);
	if (k < 0)
		return k;
	return k == K_NONE || (k == K_WHITEOUT && want_whiteout) ? 0 : -EXDEV;
}

typedef int (*walk_fn)(struct rb *rb, int v, int l, int r, const char *name, unsigned depth);

static int walk_dir(struct rb *rb, int v, int l, int r, unsigned depth, bool of_v, walk_fn fn)
{
	DIR *dir = opendir_dup(of_v ? v : l);
	struct dirent *de;
	int e = 0;

	if (!dir)
		return -errno;
	if (depth > 256)
		e = -ELOOP;
	while (e >= 0 && (errno = 0, de = readdir(dir))) {
		size_t len = strlen(rb->path);

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		e = path_push(rb, de->d_name, &len);
		if (e >= 0)
			e = fn(rb, v, l, r, de->d_name, depth);
		rb->path[len] = 0;
	}
	closedir(dir);
	return e;
}

static int open_sub(int dir, const char *name)
{
	return dir < 0 ? -EBADF
		       : openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Whether layer hides from the layers below it what lies at path: one of
 * path's parents there is a whiteout, not a directory, or an opaque
 * directory (overlayfs's lookup stops there). */
static bool hides(int layer, const char *path)
{
	char prefix[PATH_MAX];

	for (size_t i = strcspn(path, "/"); path[i]; i += 1 + strcspn(path + i + 1, "/")) {
		_cleanup_close_ int fd = -EBADF;
		struct stat st;

		memcpy(prefix, path, i);
		prefix[i] = 0;
		fd = openat_beneath(layer, prefix, O_PATH | O_NOFOLLOW, 0);
		if (fd == -ENOENT)
			return false;
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode))
			return true;
		closep(&fd);
		fd = openat_beneath(layer, prefix, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
		if (fd < 0 || opacity(fd, ".") != 0)
			return true;
	}
	return false;
}

/* What a lower layer shows at the entry's path once the layer's own entry
 * is gone (the version, which lacks it, shows that; the overlay could only
 * hide it), following overlayfs's lookup: top first, stopping where a layer
 * hides what is below. K_NONE: nothing. */
static int lower_kind(struct rb *rb)
{
	if (hides(rb->l, rb->path))
		return K_NONE;
	for (size_t i = 0; i < rb->n_lowers; i++) {
		_cleanup_close_ int fd = openat_beneath(rb->lowers[i], rb->path,
							O_PATH | O_NOFOLLOW, 0);
		struct stat st;

		if (fd >= 0 && fstat(fd, &st) == 0)
			return kind_of(&st) == K_WHITEOUT ? K_NONE : kind_of(&st);
		if (hides(rb->lowers[i], rb->path))
			return K_NONE;
	}
	return K_NONE;
}

/* Pass 1, over the layer: what the version lacks, or holds as another kind. */
static int prune_one(struct rb *rb, int v, int l, int r, const char *name, unsigned depth)
{
	struct stat ls, vs;
	int lk = kind_at(l, name, &ls), vk = kind_at(v, name, &vs), lk2;
	_cleanup_close_ int vd = -EBADF, ld = -EBADF, rd = -EBADF;

	if (lk < 0 || vk < 0)
		return lk < 0 ? lk : vk;
	/* a whiteout the version lacks: the job removed a name of the lower
	 * layers after the checkpoint, which the overlay cannot bring back */
	if (lk == K_WHITEOUT)
		return vk == K_WHITEOUT ? 0 : -EXDEV;
	if (vk == K_NONE && (lk2 = lower_kind(rb)) != K_NONE) {
		/* a directory of the lower layers that the job copied up after
		 * the checkpoint stays, merged with them as in the version, and
		 * loses what the job put in it; anything else cannot be undone */
		if (lk != K_DIR || lk2 != K_DIR || opacity(l, name) != 0)
			return -EXDEV;
		ld = open_sub(l, name), rd = open_sub(r, name);
		if (ld < 0 || rd < 0)
			return -errno;
		return walk_dir(rb, -EBADF, ld, rd, depth + 1, false, prune_one);
	}
	if (vk == K_NONE || !same_kind(&ls, &vs))
		return remove_entry(l, r, name, vk == K_WHITEOUT);
	if (lk != K_DIR)
		return 0;
	if (opacity(v, name) != opacity(l, name))
		return -EXDEV;
	vd = open_sub(v, name), ld = open_sub(l, name), rd = open_sub(r, name);
	if (vd < 0 || ld < 0 || rd < 0)
		return -errno;
	return walk_dir(rb, vd, ld, rd, depth + 1, false, prune_one);
}

/* A file with the version's bytes made under name through the overlay. */
static int make_file(int vf, int r, const char *name, const struct stat *vs)
{
	_cleanup_close_ int fd = -EBADF;
	int e = unlinkat(r, name, 0) < 0 && errno != ENOENT ? -errno : 0;

	if (e < 0)
		return e;
	fd = openat(r, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	e = put_bytes(vf, fd, vs->st_size);
	return e < 0 ? e : sync_meta(vf, fd, vs);
}

/* The file at name, in place when it is the version's inode (its only
 * name, or the anchor of its group of links), else made anew or linked to
 * the group's anchor. */
static int restore_file(struct rb *rb, int v, int l, int r, const char *name, const struct stat *vs)
{
	_cleanup_close_ int vf = openat(v, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), rf = -EBADF;
	struct rb_link *k = link_find(rb, rb->path), *a = k ? group_anchor(rb, k->ino) : NULL;
	struct stat ls, as, rs;
	int lk = kind_at(l, name, &ls), e;

	if (vf < 0 || lk < 0)
		return vf < 0 ? -errno : lk;
	if (a && a != k) {
		if (fstat(a->anchor, &as) == 0 && fstatat(r, name, &rs, AT_SYMLINK_NOFOLLOW) == 0 &&
		    as.st_dev == rs.st_dev && as.st_ino == rs.st_ino)
			return 0;
		e = rm_rf_at(r, name);
		if (e >= 0 && linkat(a->anchor, "", r, name, AT_EMPTY_PATH) < 0)
			e = -errno;
		return e;
	}
	if (lk != K_REG || (k ? ls.st_ino != k->ino : ls.st_nlink != 1)) {
		e = make_file(vf, r, name, vs);
	} else {
		rf = openat(r, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		if (rf < 0)
			return -errno;
		e = ls.st_size == vs->st_size ? same_bytes(vf, rf, vs->st_size) : 0;
		if (e == 0 && ftruncate(rf, 0) < 0)
			e = -errno;
		if (e == 0)
			e = put_bytes(vf, rf, vs->st_size);
		if (e >= 0)
			e = sync_meta(vf, rf, vs);
	}
	if (e >= 0 && k && !a && (k->anchor = openat(r, name, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0)
		e = -errno;
	return e;
}

static int restore_link(int v, int l, int r, const char *name, const struct stat *vs)
{
	char t[PATH_MAX], u[PATH_MAX];
	ssize_t n = readlinkat(v, name, t, sizeof(t) - 1), m;
	struct timespec ts[2] = { vs->st_atim, vs->st_mtim };
	struct stat ls;

	if (n < 0)
		return -errno;
	t[n] = 0;
	m = kind_at(l, name, &ls) == K_LNK ? readlinkat(l, name, u, sizeof(u) - 1) : -1;
	if (m != n || memcmp(t, u, (size_t)n)) {
		int e = rm_rf_at(r, name);

		if (e < 0)
			return e;
		if (symlinkat(t, r, name) < 0)
			return -errno;
	}
	if (fchownat(r, name, vs->st_uid, vs->st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
	    utimensat(r, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

/* a fifo or device node (sockets are not copied into versions) */
static int restore_node(int l, int r, const char *name, const struct stat *vs)
{
	struct timespec ts[2] = { vs->st_atim, vs->st_mtim };
	struct stat ls;

	if (kind_at(l, name, &ls) != K_OTHER || !same_kind(&ls, vs)) {
		int e = rm_rf_at(r, name);

		if (e < 0)
			return e;
		if (mknodat(r, name, vs->st_mode & (S_IFMT | 07777), vs->st_rdev) < 0)
			return -errno;
	}
	if (fchownat(r, name, vs->st_uid, vs->st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fchmodat(r, name, vs->st_mode & 07777, 0) < 0 ||
	    utimensat(r, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

static int restore_one(struct rb *rb, int v, int l, int r, const char *name, unsigned depth);

static int restore_dir(struct rb *rb, int v, int l, int r, const char *name, const struct stat *vs,
		       unsigned depth)
{
	_cleanup_close_ int vd = -EBADF, ld = -EBADF, rd = -EBADF;
	struct stat ls, rs;
	int e;

	if (kind_at(l, name, &ls) != K_DIR) {
		/* not in the layer: where the lower layers hold it, the
		 * version merges with them, which the overlay cannot make */
		if (fstatat(r, name, &rs, AT_SYMLINK_NOFOLLOW) == 0)
			return -EXDEV;
		if (mkdirat(r, name, 0700) < 0)
			return -errno;
	}
	vd = open_sub(v, name), ld = open_sub(l, name), rd = open_sub(r, name);
	if (vd < 0 || ld < 0 || rd < 0)
		return -errno;
	e = walk_dir(rb, vd, ld, rd, depth + 1, true, restore_one);
	return e < 0 ? e : sync_meta(vd, rd, vs);
}

/* Pass 2, over the version: each of its entries made the layer's. */
static int restore_one(struct rb *rb, int v, int l, int r, const char *name, unsigned depth)
{
	struct stat vs, rs;
	int vk = kind_at(v, name, &vs);

	switch (vk) {
	case K_WHITEOUT:
		if (fstatat(r, name, &rs, AT_SYMLINK_NOFOLLOW) < 0)
			return 0; /* hidden already, or nothing to hide */
		return remove_entry(l, r, name, true);
	case K_DIR:
		return restore_dir(rb, v, l, r, name, &vs, depth);
	case K_REG:
		return restore_file(rb, v, l, r, name, &vs);
	case K_LNK:
		return restore_link(v, l, r, name, &vs);
	case K_OTHER:
		return S_ISSOCK(vs.st_mode) ? 0 : restore_node(l, r, name, &vs);
	default:
		return vk < 0 ? vk : 0; /* gone meanwhile */
	}
}

int rollback_tree(int vupper, int lupper, int root, const int *lowers, size_t n_lowers,
		  const char *links, size_t links_len)
{
	_cleanup_free_ char *text = NULL;
	struct rb rb = { .root = root, .l = lupper, .lowers = lowers, .n_lowers = n_lowers };
	struct stat vs;
	int r = 0;

	if (links_len) {
		text = malloc(links_len + 1);
		if (!text)
			return -ENOMEM;
		memcpy(text, links, links_len);
		text[links_len] = 0;
		r = links_parse(text, links_len, &rb.links, &rb.n_links);
		if (r < 0)
			return r;
	}
	if (opacity(vupper, ".") != opacity(lupper, "."))
		r = -EXDEV;
	if (r >= 0)
		r = walk_dir(&rb, vupper, lupper, root, 0, false, prune_one);
	if (r >= 0) {
		links_anchor(&rb);
		r = walk_dir(&rb, vupper, lupper, root, 0, true, restore_one);
	}
	if (r >= 0)
		r = fstat(vupper, &vs) < 0 ? -errno : sync_meta(vupper, root, &vs);
	links_free(&rb);
	return r;
}

/* ---- the daemon's side ---- */

void rootfs_job_unkeep(struct job *j)
{
	closep(&j->kept_root);
	closep(&j->kept_layer);
	j->kept = 0;
}

/* At most kept_layers of them: the layers of the jobs that ended first go. */
static void keep_bound(struct daemon *d)
{
	for (;;) {
		struct job *oldest = NULL;
		uint64_t n = 0;

		for (struct job *k = d->jobs; k; k = k->next)
			if (k->kept) {
				n++;
				if (!oldest || k->ended_us < oldest->ended_us)
					oldest = k;
			}
		if (n <= d->cfg->kept_layers)
			return;
		log_info(
			"Job %s: its kept layer is let go (kept_layers = %llu); a restart copies the "
			"version's layer",
			oldest->id, (unsigned long long)d->cfg->kept_layers);
		rootfs_job_unkeep(oldest);
	}
}

void rootfs_job_keep(struct daemon *d, struct job *j)
{
	char root[4096], layer[4096];

	rootfs_job_unkeep(j);
	if (!j->ckpt_last || !d->cfg->kept_layers || !rootfs_job_kept(d, j) ||
	    daemon_job_runpath(d, j, "rootfs", root, sizeof(root)) < 0 ||
	    daemon_job_runpath(d, j, "layer", layer, sizeof(layer)) < 0)
		return;
	j->kept_root = (int)syscall(SYS_open_tree, AT_FDCWD, root,
				    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	j->kept_layer = (int)syscall(SYS_open_tree, AT_FDCWD, layer,
				     OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (j->kept_root < 0 || j->kept_layer < 0) {
		log_warn(
			"Job %s: its layer cannot be kept for a restart (%s); a restart copies the "
			"version's layer",
			j->id, strerror(errno));
		j->kept_root = j->kept_root < 0 ? -EBADF : j->kept_root;
		j->kept_layer = j->kept_layer < 0 ? -EBADF : j->kept_layer;
		rootfs_job_unkeep(j);
		return;
	}
	j->kept = j->ckpt_last;
	keep_bound(d);
}

static int attach(int *fd, const char *path)
{
	if (syscall(SYS_move_mount, *fd, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return -errno;
	closep(fd); /* (attached: it stays mounted) */
	return 0;
}

int rootfs_job_rollback(struct daemon *d, struct job *j, int vfd)
{
	char root[4096], layer[4096], upper[4200];
	_cleanup_close_ int run = -EBADF, v = -EBADF, l = -EBADF, r = -EBADF;
	_cleanup_free_ char *links = NULL;
	int lowers[2] = { -EBADF, -EBADF };
	size_t links_len = 0, n_lowers = 0;
	int e;

	if (j->kept_root < 0 || j->kept_layer < 0)
		return -ENOENT;
	if (daemon_job_runpath(d, j, "rootfs", root, sizeof(root)) < 0 ||
	    daemon_job_runpath(d, j, "layer", layer, sizeof(layer)) < 0)
		return -ENAMETOOLONG;
	run = daemon_job_rundir(d, j, true);
	if (run < 0)
		return run;
	if ((mkdirat(run, "layer", 0700) < 0 && errno != EEXIST) ||
	    (mkdirat(run, "rootfs", 0755) < 0 && errno != EEXIST))
		return -errno;
	if ((e = attach(&j->kept_layer, layer)) < 0 || (e = attach(&j->kept_root, root)) < 0)
		return e;
	snprintf(upper, sizeof(upper), "%s/upper", layer);
	v = open_dir_at(vfd, "upper");
	l = open(upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	r = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (v < 0 || l < 0 || r < 0)
		return v < 0 ? v : -errno;
	e = read_file_at(vfd, "links", LINKS_MAX, &links, &links_len);
	if (e < 0 && e != -ENOENT)
		return e;
	if (e < 0)
		links_len = 0;
	e = rootfs_job_lowers(d, j, lowers, &n_lowers);
	if (e >= 0)
		e = rollback_tree(v, l, r, lowers, n_lowers, links, links_len);
	for (size_t i = 0; i < ELEMENTSOF(lowers); i++)
		closep(&lowers[i]);
	return e;
}
