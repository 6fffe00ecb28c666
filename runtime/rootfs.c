/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The built-in `host` template and each job's copy-on-write root.
 *
 * host template: one overlay whose lower layers are SKEL:/ . SKEL, on a small
 * tmpfs shared by all jobs of this daemon, holds a whiteout for every top-level
 * host entry that must not show, an opaque directory for each directory whose
 * host contents must not show (etc, home, root, var, tmp, run...), and a curated
 * /etc. Host /usr and the merged-/usr links show through from /.
 * The writable layer (upper + work) lives on a tmpfs of its own per job: its size=
 * and nr_inodes= are the job's block and inode quota. */
#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <limits.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "runtime/runtime-internal.h"
#include "templates/templates.h"

/* xattr on the skeleton's root: built, version 2 (owned by host root, idmapped per job) */
#define SKEL_STAMP "trusted.xos.skel"
#define VOLATILE_STAMP "trusted.xos.volatile" /* on the volatile tmpfs's root: version 1 */

static const char *const show_from_host[] = { "usr",   "bin",   "sbin",   "lib",
					      "lib32", "lib64", "libx32", NULL };
static const struct {
	const char *name;
	mode_t mode;
} opaque_dirs[] = {
	{ "etc", 0755 },   { "tmp", 01777 }, { "run", 0755 },  { "var", 0755 },  { "home", 0755 },
	{ "root", 0700 },  { "dev", 0755 },  { "proc", 0555 }, { "sys", 0555 },  { "mnt", 0755 },
	{ "media", 0755 }, { "opt", 0755 },  { "srv", 0755 },  { "boot", 0755 }, { ".xos", 0700 },
};
/* /etc files copied from the host when present (regular files and symlinks). */
static const char *const etc_copy[] = {
	"passwd",     "group",          "nsswitch.conf", "ld.so.cache", "ld.so.conf", "localtime",
	"os-release", "debian_version", "shells",        "login.defs",  "profile",    "bash.bashrc",
	"inputrc",    "services",       "protocols",     "mime.types",  NULL
};

static bool in_list(const char *const *l, const char *s)
{
	for (; *l; l++)
		if (!strcmp(*l, s))
			return true;
	return false;
}

static bool is_opaque(const char *s)
{
	for (size_t i = 0; i < ELEMENTSOF(opaque_dirs); i++)
		if (!strcmp(opaque_dirs[i].name, s))
			return true;
	return false;
}

static int make_opaque_dirs(int skel, uid_t ru, gid_t rg)
{
	for (size_t i = 0; i < ELEMENTSOF(opaque_dirs); i++) {
		const char *n = opaque_dirs[i].name;
		char path[64];

		if (mkdirat(skel, n, opaque_dirs[i].mode) < 0 && errno != EEXIST)
			return -errno;
		if (fchownat(skel, n, ru, rg, AT_SYMLINK_NOFOLLOW) < 0 ||
		    fchmodat(skel, n, opaque_dirs[i].mode, 0) < 0)
			return -errno;
		snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", skel, n);
		if (lsetxattr(path, "trusted.overlay.opaque", "y", 1, 0) < 0)
			return -errno;
	}
	if (mkdirat(skel, "var/tmp", 01777) < 0 && errno != EEXIST)
		return -errno;
	if (fchmodat(skel, "var/tmp", 01777, 0) < 0 || fchownat(skel, "var/tmp", ru, rg, 0) < 0)
		return -errno;
	return 0;
}

static int make_whiteouts(int skel)
{
	DIR *d = opendir("/");
	struct dirent *de;
	int r = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		const char *n = de->d_name;

		if (!strcmp(n, ".") || !strcmp(n, "..") || in_list(show_from_host, n) ||
		    is_opaque(n))
			continue;
		if (mknodat(skel, n, S_IFCHR | 0000, makedev(0, 0)) < 0 && errno != EEXIST) {
			r = -errno;
			break;
		}
	}
	closedir(d);
	return r;
}

static int copy_entry(int from, int to, const char *name, uid_t ru, gid_t rg)
{
	struct stat st;
	_cleanup_free_ char *data = NULL;
	size_t len;
	int r;

	if (fstatat(from, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlinkat(from, name, target, sizeof(target) - 1);

		if (n < 0)
			return -errno;
		target[n] = 0;
		if (symlinkat(target, to, name) < 0 && errno != EEXIST)
			return -errno;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return 0;
	r = read_file_at(from, name, 64 << 20, &data, &len);
	if (r < 0)
		return r;
	r = write_file_atomic_at(to, name, data, len, st.st_mode & 0644, false);
	if (r < 0)
		return r;
	return fchownat(to, name, ru, rg, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int copy_dir_links(int from, int to, const char *name, uid_t ru, gid_t rg)
{
	_cleanup_close_ int src = open_dir_at(from, name), dst = -EBADF;
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (src < 0)
		return src == -ENOENT ? 0 : src;
	if (mkdirat(to, name, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (fchownat(to, name, ru, rg, 0) < 0)
		return -errno;
	dst = open_dir_at(to, name);
	if (dst < 0)
		return dst;
	d = fdopendir(TAKE_FD(src));
	if (!d)
		return -errno;
	while (r >= 0 && (de = readdir(d)))
		if (de->d_name[0] != '.')
			r = copy_entry(dirfd(d), dst, de->d_name, ru, rg);
	closedir(d);
	return r;
}

static int make_etc(int skel, uid_t ru, gid_t rg)
{
	_cleanup_close_ int host = open("/etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int etc = open_dir_at(skel, "etc");
	static const char hosts[] = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n";
	int r;

	if (host < 0)
		return -errno;
	if (etc < 0)
		return etc;
	for (const char *const *n = etc_copy; *n; n++) {
		r = copy_entry(host, etc, *n, ru, rg);
		if (r < 0)
			return r;
	}
	r = copy_dir_links(host, etc, "alternatives", ru, rg);
	if (r < 0)
		return r;
	r = write_file_atomic_at(etc, "hosts", hosts, sizeof(hosts) - 1, 0644, false);
	if (r < 0)
		return r;
	r = write_file_atomic_at(etc, "resolv.conf", "", 0, 0644, false);
	if (r < 0)
		return r;
	if (symlinkat("../proc/self/mounts", etc, "mtab") < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static bool skel_ready(const char *dir)
{
	struct statfs fs;
	char v[8];

	if (statfs(dir, &fs) < 0 || fs.f_type != TMPFS_MAGIC)
		return false;
	return lgetxattr(dir, SKEL_STAMP, v, sizeof(v)) == 1 && v[0] == '2';
}

int rootfs_host_skel_setup(const char *dir, uid_t ru, gid_t rg)
{
	_cleanup_close_ int skel = -EBADF;
	int r;

	if (skel_ready(dir))
		return 0; /* kept across daemon restarts: running jobs use it */
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (mount("xos-skel", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=0755") < 0)
		return -errno;
	skel = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (skel < 0) {
		r = -errno;
		goto err_umount;
	}
	if (fchown(skel, ru, rg) < 0) {
		r = -errno;
		goto err_umount;
	}
	r = make_opaque_dirs(skel, ru, rg);
	if (r >= 0)
		r = make_whiteouts(skel);
	if (r >= 0)
		r = make_etc(skel, ru, rg);
	if (r >= 0)
		r = fsetxattr(skel, SKEL_STAMP, "2", 1, 0) < 0 ? -errno : 0;
	if (r < 0)
		goto err_umount;
	/* read-only from now on: lower layers must not change under overlays */
	if (mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0) {
		r = -errno;
		goto err_umount;
	}
	return 0;
err_umount:
	closep(&skel);
	umount2(dir, MNT_DETACH);
	return r;
}

int rootfs_host_skel_teardown(const char *dir)
{
	/* (an older version's skeleton may lie below: its jobs used it) */
	while (umount2(dir, MNT_DETACH) == 0)
		;
	if (errno != EINVAL && errno != ENOENT)
		return -errno;
	rmdir(dir);
	return 0;
}

/* The volatile tmpfs: what a job start creates and removes again (LXC's
 * configuration and log, mount points, resolv.conf), kept off the state file
 * system, whose inode allocation is slow under churn (ext4 without a journal
 * scans for inodes freed in the last 30 s). Kept while jobs run, so that the
 * next xosd finds their files. */
int rootfs_volatile_setup(const char *dir)
{
	_cleanup_close_ int fd = -EBADF;
	struct statfs fs;
	char v[8];
	int r;

	if (statfs(dir, &fs) == 0 && fs.f_type == TMPFS_MAGIC &&
	    lgetxattr(dir, VOLATILE_STAMP, v, sizeof(v)) == 1 && v[0] == '1')
		return 0; /* kept across daemon restarts: running jobs use it */
	if (mkdir(dir, 0711) < 0 && errno != EEXIST)
		return -errno;
	if (mount("xos-volatile", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "size=256m,mode=0711") < 0)
		return -errno;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = fd < 0 ? -errno : fsetxattr(fd, VOLATILE_STAMP, "1", 1, 0) < 0 ? -errno : 1;
	if (r < 0) {
		closep(&fd);
		umount2(dir, MNT_DETACH);
	}
	return r;
}

int rootfs_volatile_teardown(const char *dir)
{
	return rootfs_host_skel_teardown(dir);
}

static int job_path(struct daemon *d, struct job *j, const char *sub, char *buf, size_t len)
{
	return daemon_job_runpath(d, j, sub, buf, len);
}

/* Whether the host's account files still are what the skeleton copied. */
static bool accounts_unchanged(const char *skel)
{
	static const char *const files[] = { "passwd", "group" };

	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		char p[4096];
		struct stat h, k;

		snprintf(p, sizeof(p), "%s/etc/%s", skel, files[i]);
		if (stat(p, &k) < 0 ||
		    fstatat(AT_FDCWD, files[i][0] == 'p' ? "/etc/passwd" : "/etc/group", &h, 0) < 0)
			return false;
		/* the copy is newer than the last change of the host's file */
		if (h.st_size != k.st_size || h.st_mtim.tv_sec > k.st_mtim.tv_sec ||
		    (h.st_mtim.tv_sec == k.st_mtim.tv_sec &&
		     h.st_mtim.tv_nsec >= k.st_mtim.tv_nsec))
			return false;
	}
	return true;
}

/* Add line to the job's copy of etc/name. */
static int append_entry(int etc, const char *name, const char *line, uid_t ru, gid_t rg)
{
	_cleanup_free_ char *text = NULL, *more = NULL;
	size_t len = 0;
	int r = read_file_at(etc, name, 64 << 20, &text, &len);

	if (r < 0)
		return r;
	more = xstrdup_printf("%s%s%s\n", text, len && text[len - 1] != '\n' ? "\n" : "", line);
	if (!more)
		return -ENOMEM;
	r = write_file_atomic_at(etc, name, more, strlen(more), 0644, false);
	return r < 0 ? r : fchownat(etc, name, ru, rg, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* A pool account (grid login, DECISIONS (af)) is in no host file: its job's
 * copies name it and its VO's group, for id and ls in the job. */
static int job_etc_grid(int etc, const struct job *j, uid_t ru, gid_t rg)
{
	_cleanup_free_ char *gecos = strdup(j->grid_dn ? j->grid_dn : "");
	_cleanup_free_ char *pw = NULL;
	_cleanup_free_ char *gr = xstrdup_printf("xos-%s:x:%u:%s", j->grid_vo, (unsigned)j->gid,
						 j->user);
	int r;

	for (char *c = gecos; c && *c; c++)
		if (*c == ':' || *c == '\n')
			*c = ';';
	pw = gecos ? xstrdup_printf("%s:x:%u:%u:%s:%s:/bin/sh", j->user, (unsigned)j->uid,
				    (unsigned)j->gid, gecos, j->home ? j->home : "/")
		   : NULL;
	if (!pw || !gr)
		return -ENOMEM;
	r = append_entry(etc, "passwd", pw, ru, rg);
	return r < 0 ? r : append_entry(etc, "group", gr, ru, rg);
}

/* The accounts as they are now: when they changed since the skeleton was
 * made, or the job's account is a pool account, the job gets fresh copies in
 * its own layer. */
static int job_etc(int layer, const struct job *j, uid_t ru, gid_t rg, const char *skel)
{
	_cleanup_close_ int host = -EBADF;
	_cleanup_close_ int etc = -EBADF;
	bool pool = j->grid_vo && j->user && !getpwuid(j->uid);
	int r;

	if (!pool && accounts_unchanged(skel))
		return 0;
	host = open("/etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (host < 0)
		return -errno;
	if (mkdirat(layer, "upper/etc", 0755) < 0 || fchownat(layer, "upper/etc", ru, rg, 0) < 0)
		return -errno;
	etc = open_dir_at(layer, "upper/etc");
	if (etc < 0)
		return etc;
	r = copy_entry(host, etc, "passwd", ru, rg);
	if (r >= 0)
		r = copy_entry(host, etc, "group", ru, rg);
	return r < 0 || !pool ? r : job_etc_grid(etc, j, ru, rg);
}

/* The overlay's lower layers, top first: the host skeleton over / for
 * "host", else the template's read-only tree in the catalogue. Where
 * idmapped mounts work (idmount_probe), each is a clone shown with the job's
 * ids: a stored id is the container id it is shifted from (host: the same),
 * which the job's map takes to its host id. */
struct lowers {
	char path[2][4096];
	size_t n;
	struct lower_tmp info;                   /* the top layer's /tmp; its stored ids' shift */
	struct runtime_idmap_entry u[80], g[80]; /* the mount's maps: stored -> host ids */
	size_t nu, ng;
	int fd[2]; /* the idmapped clones; -EBADF: plain lower layers */
};

static void lowers_done(struct lowers *lw)
{
	for (size_t i = 0; i < ELEMENTSOF(lw->fd); i++)
		closep(&lw->fd[i]);
}

static int lowers_paths(struct daemon *d, struct job *j, struct lowers *lw)
{
	int r;

	if (!j->template || !strcmp(j->template, "host")) {
		lw->n = 2;
		snprintf(lw->path[1], sizeof(lw->path[1]), "/");
		r = snprintf(lw->path[0], sizeof(lw->path[0]), "%s", d->skel_dir);
	} else {
		lw->n = 1;
		r = snprintf(lw->path[0], sizeof(lw->path[0]), "%s/templates/%s/rootfs",
			     d->cfg->state_dir, j->template);
	}
	return r < 0 || (size_t)r >= sizeof(lw->path[0]) ? -ENAMETOOLONG : 0;
}

int rootfs_job_lowers(struct daemon *d, struct job *j, int *ret_fds, size_t *ret_n)
{
	struct lowers lw = { .fd = { -EBADF, -EBADF } };
	int r = lowers_paths(d, j, &lw);

	for (size_t i = 0; r >= 0 && i < lw.n; i++) {
		ret_fds[i] = open(lw.path[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (ret_fds[i] < 0) {
			r = -errno;
			while (i > 0)
				closep(&ret_fds[--i]);
		}
	}
	if (r >= 0)
		*ret_n = lw.n;
	return r;
}

static int lowers_open(struct daemon *d, struct job *j, struct lowers *lw)
{
	struct runtime_idmap_entry u[80], g[80];
	_cleanup_close_ int ns = -EBADF;
	int r = lowers_paths(d, j, lw);

	if (r < 0)
		return r;
	/* what the lower layer's /tmp is comes from the template cache: lower
	 * layers never change */
	r = template_cache_lower_tmp(d, j->template ? j->template : TEMPLATE_HOST, lw->path[0],
				     &lw->info);
	if (r < 0 || d->idmapped_mounts <= 0)
		return r;
	r = slice_job_maps(j, u, &lw->nu, g, &lw->ng, ELEMENTSOF(u));
	if (r >= 0)
		r = runtime_idmap_shift(u, lw->nu, lw->info.shift_uid, lw->u);
	if (r >= 0)
		r = runtime_idmap_shift(g, lw->ng, lw->info.shift_gid, lw->g);
	ns = r < 0 ? r : idmount_userns(lw->u, lw->nu, lw->g, lw->ng);
	if (ns < 0)
		return ns;
	for (size_t i = 0; i < lw->n; i++) {
		lw->fd[i] = idmount_clone(lw->path[i], ns);
		if (lw->fd[i] < 0)
			return lw->fd[i];
	}
	return 0;
}

/* The host id a stored id of the lower layers shows as in the job. */
static uint32_t lowers_host_id(const struct lowers *lw, uint32_t id, bool gid)
{
	uint32_t host = 65534; /* (unmapped ids show as the overflow id) */

	if (lw->fd[0] < 0)
		return id;
	(void)runtime_idmap_lookup(gid ? lw->g : lw->u, gid ? lw->ng : lw->nu, id, &host);
	return host;
}

/* The job's root overlay, with xino=on (OPTS ends with it); a kernel that
 * refuses xino (EINVAL) gets it without. */
static int mount_root_overlay(const char *rootfs, char *opts, size_t xino_at)
{
	if (mount("xos-root", rootfs, "overlay", MS_NOSUID | MS_NODEV, opts) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	opts[xino_at] = 0;
	if (mount("xos-root", rootfs, "overlay", MS_NOSUID | MS_NODEV, opts) < 0)
		return -errno;
	return 0;
}

/* xino=on: every file has the overlay's device and one inode number, which
 * CRIU's inotify dump needs (docs/DECISIONS.md (aa)) */
static int lowers_mount(const struct lowers *lw, const char *layer, const char *rootfs)
{
	char opts[12288 + 256], upper[4200], work[4200];
	int r;

	snprintf(upper, sizeof(upper), "%s/upper", layer);
	snprintf(work, sizeof(work), "%s/work", layer);
	if (lw->fd[0] >= 0) {
		r = idmount_overlay(rootfs, lw->fd, lw->n, upper, work, true);
		return r == -EINVAL ? idmount_overlay(rootfs, lw->fd, lw->n, upper, work, false)
				    : r;
	}
	r = snprintf(opts, sizeof(opts), "lowerdir=%s%s%s,upperdir=%s,workdir=%s,xino=on",
		     lw->path[0], lw->n > 1 ? ":" : "", lw->n > 1 ? lw->path[1] : "", upper, work);
	if (r < 0 || (size_t)r >= sizeof(opts))
		return -ENAMETOOLONG;
	return mount_root_overlay(rootfs, opts, (size_t)r - strlen(",xino=on"));
}

/* /tmp copied up in advance, so that --files counts the files a job makes in
 * /tmp, not the directory's own copy; owned as the job sees the lower one. */
static int job_tmp(const struct lowers *lw, int layer)
{
	const struct lower_tmp *t = &lw->info;

	if (!t->dir)
		return 0;
	if (mkdirat(layer, "upper/tmp", 0700) < 0 ||
	    fchownat(layer, "upper/tmp", lowers_host_id(lw, t->uid, false),
		     lowers_host_id(lw, t->gid, true), AT_SYMLINK_NOFOLLOW) < 0 ||
	    fchmodat(layer, "upper/tmp", t->mode, 0) < 0)
		return -errno;
	return 0;
}

/* The mount targets made in a job's root when they are missing: its
 * /.xos, /proc, /sys, /dev, its volumes and, in bridge mode, resolv.conf. */
#define MOUNT_TARGETS_MAX 80 /* 4 of xos, resolv.conf, at most 64 volumes and the home */

static size_t mount_targets(const struct job *j, const char **t)
{
	size_t n = 0;

	t[n++] = ".xos";
	t[n++] = "proc";
	t[n++] = "sys";
	t[n++] = "dev";
	if (j->net.mode == NETSETUP_BRIDGE)
		t[n++] = "etc/resolv.conf";
	for (size_t i = 0; i < j->n_volumes && n < MOUNT_TARGETS_MAX; i++)
		t[n++] = j->volumes[i].dst + 1;
	return n;
}

/* ---- mount targets: made by xosd in the job's own root, never through a
 * symlink. LXC's create=dir and create=file would make them with mkdir(2) on
 * host paths, following any symlink on the way (out of the job's root: the
 * mount after it refuses the symlink, the directory stays made), so xos's
 * mount entries have no create= option and everything is made here first. */

/* What is left of path after top, when path is top or below it (component by
 * component: repeated slashes do not count); else NULL. */
static const char *path_rest(const char *path, const char *top)
{
	for (;;) {
		size_t n;

		path += strspn(path, "/");
		top += strspn(top, "/");
		if (!*top)
			return path;
		n = strcspn(top, "/");
		if (strncmp(path, top, n) != 0 || (path[n] != '/' && path[n] != 0))
			return NULL;
		path += n;
		top += n;
	}
}

/* The first symlink on rel below base, as a path in the job (top: base's), for
 * the message. */
static void first_symlink(int base, const char *top, const char *rel, char *buf, size_t len)
{
	char prefix[PATH_MAX];
	size_t i = 0;

	snprintf(buf, len, "a directory on its path");
	while (rel[i]) {
		struct stat st;

		i += strcspn(rel + i, "/");
		if (i >= sizeof(prefix))
			return;
		memcpy(prefix, rel, i);
		prefix[i] = 0;
		if (base < 0 || fstatat(base, prefix, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return;
		if (S_ISLNK(st.st_mode)) {
			snprintf(buf, len, "%s/%s", top, prefix);
			return;
		}
		i += strspn(rel + i, "/");
	}
}

static int target_error(char **ret_error, const char *dst, int r, int base, const char *top,
			const char *rel)
{
	char link[PATH_MAX + 256];

	if (r == -ELOOP) {
		first_symlink(base, top, rel, link, sizeof(link));
		*ret_error = xstrdup_printf(
			"Mount target %s: %s is a symlink, and xos never follows one to a mount "
			"target; give the path it points to",
			dst, link);
	} else if (r == -ENOTDIR)
		*ret_error = xstrdup_printf(
			"Mount target %s: its path goes through something that is not a directory",
			dst);
	else if (r == -EROFS)
		*ret_error = xstrdup_printf("Mount target %s is missing in the read-only volume at "
					    "%s; create it there first",
					    dst, top);
	else if (r == -EACCES || r == -EPERM)
		*ret_error = xstrdup_printf("Mount target %s is missing, and you may not create "
					    "it in the volume at %s",
					    dst, top);
	else
		*ret_error = xstrdup_printf("Mount target %s cannot be made: %s", dst,
					    strerror(-r));
	return r;
}

/* A directory in the job's own layer, owned by the container's root. */
static int layer_dir(int root, const char *rel, uid_t ru)
{
	int fd = mkdirat_beneath(root, rel, 0755, ru, ru);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

/* The loader is bound on <job>/xos/loader, made with the job's directories. */
static int loader_target(struct daemon *d, struct job *j)
{
	_cleanup_close_ int fd = -EBADF;
	int dir = daemon_job_dir(d, j);
	struct stat st;

	if (dir < 0)
		return dir;
	fd = openat_beneath(dir, "xos/loader", O_PATH, 0);
	if (fd == -ENOENT)
		fd = openat_beneath(dir, "xos/loader", O_WRONLY | O_CREAT | O_EXCL, 0755);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		return -errno;
	return S_ISREG(st.st_mode) ? 0 : -EEXIST;
}

/* /etc/resolv.conf, a file: a template's symlink there (to a resolver's file
 * of its own) gives way, in the job's layer, to the file xos binds. */
static int resolv_target(int root, uid_t ru)
{
	_cleanup_close_ int etc = mkdirat_beneath(root, "etc", 0755, ru, ru), fd = -EBADF;
	struct stat st;

	if (etc < 0)
		return etc;
	if (fstatat(etc, "resolv.conf", &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISREG(st.st_mode))
			return 0;
		if (!S_ISLNK(st.st_mode))
			return -EEXIST;
		if (unlinkat(etc, "resolv.conf", 0) < 0)
			return -errno;
	} else if (errno != ENOENT)
		return -errno;
	fd = openat(etc, "resolv.conf", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || fchown(fd, ru, ru) < 0)
		return -errno;
	return 0;
}

/* Volume k's target: in the job's layer, or inside the volume mounted last
 * above it (LXC mounts them in order), as that volume's account. */
static int volume_target(struct daemon *d, struct job *j, int root, size_t k, char **ret_error)
{
	const char *dst = j->volumes[k].dst, *rel = NULL, *top = "";
	_cleanup_close_ int run = -EBADF, base = -EBADF;
	size_t in = k;
	char name[32];
	int r;

	for (size_t i = 0; i < k; i++) {
		const char *rest = path_rest(dst, j->volumes[i].dst);

		if (rest) {
			in = i;
			rel = rest;
		}
	}
	if (in == k) {
		rel = dst + strspn(dst, "/");
		r = layer_dir(root, rel, j->idmap_base);
		return r < 0 ? target_error(ret_error, dst, r, root, "", rel) : 0;
	}
	if (!*rel) /* mounted on the root of that volume */
		return 0;
	top = j->volumes[in].dst;
	r = volume_mkdir_target(d, j, in, rel);
	if (r >= 0)
		return 0;
	snprintf(name, sizeof(name), "vol/%zu", in);
	run = daemon_job_rundir(d, j, false);
	base = run < 0 ? -EBADF : openat(run, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return target_error(ret_error, dst, r, base, top, rel);
}

int rootfs_job_targets(struct daemon *d, struct job *j, char **ret_error)
{
	static const char *const own[] = { "/.xos", "/proc", "/sys", "/dev" };
	_cleanup_close_ int run = daemon_job_rundir(d, j, false), root = -EBADF;
	uid_t ru = j->idmap_base;
	int r = 0;

	if (run < 0)
		return target_error(ret_error, "/", run, -EBADF, "", "");
	root = openat(run, "rootfs", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root < 0)
		return target_error(ret_error, "/", -errno, -EBADF, "", "");
	for (size_t i = 0; r >= 0 && i < ELEMENTSOF(own); i++)
		if ((r = layer_dir(root, own[i] + 1, ru)) < 0)
			return target_error(ret_error, own[i], r, root, "", own[i] + 1);
	if ((r = loader_target(d, j)) < 0)
		return target_error(ret_error, "/.xos/loader", r, -EBADF, "", "");
	if (j->net.mode == NETSETUP_BRIDGE && (r = resolv_target(root, ru)) < 0)
		return target_error(ret_error, "/etc/resolv.conf", r, root, "", "etc/resolv.conf");
	for (size_t k = 0; k < j->n_volumes; k++)
		if ((r = volume_target(d, j, root, k, ret_error)) < 0)
			return r;
	return 0;
}

/* How many inodes the job's mount targets will take in its root (made by
 * rootfs_job_targets):
 * each missing path component once (a symlink on the way counts the rest as
 * missing: a little slack, never too few). */
static uint64_t mount_target_inodes(const struct job *j, int root)
{
	const char *t[MOUNT_TARGETS_MAX];
	char seen[64][256]; /* missing prefixes counted (more: counted again, slack) */
	size_t nt = mount_targets(j, t), ns = 0;
	struct stat st;
	uint64_t n = 0;

	for (size_t i = 0; i < nt; i++) {
		char prefix[256];

		for (size_t len = 0; t[i][len];) {
			_cleanup_close_ int fd = -EBADF;
			bool counted = false;

			len += strcspn(t[i] + len, "/");
			if (len >= sizeof(prefix))
				break;
			snprintf(prefix, sizeof(prefix), "%.*s", (int)len, t[i]);
			if (t[i][len] == '/')
				len++;
			fd = openat(root, prefix, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0)
				continue;
			for (size_t k = 0; k < ns && !counted; k++)
				counted = !strcmp(seen[k], prefix);
			if (counted)
				continue;
			n++;
			if (ns < ELEMENTSOF(seen))
				snprintf(seen[ns++], sizeof(seen[0]), "%s", prefix);
		}
	}
	/* a template's resolv.conf link gives way to a file (and /etc is copied up) */
	if (j->net.mode == NETSETUP_BRIDGE &&
	    fstatat(root, "etc/resolv.conf", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
		n += 2;
	return n;
}

/* The job's writable layer: its own tmpfs, of the job's size; inodes: what
 * the overlay itself uses, what LXC's mount targets will take, plus the
 * job's --files. */
static int layer_limit_inodes(struct daemon *d, struct job *j, const char *layer,
			      const char *rootfs)
{
	uint64_t files = j->files ? j->files : d->cfg->layer_inodes;
	_cleanup_close_ int root = -EBADF;
	struct statfs sf;
	char opts[128];

	if (files == 0) /* no limit */
		return 0;
	root = open(rootfs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root < 0 || statfs(layer, &sf) < 0)
		return -errno;
	snprintf(opts, sizeof(opts), "nr_inodes=%llu",
		 (unsigned long long)(sf.f_files - sf.f_ffree + mount_target_inodes(j, root) +
				      files));
	if (mount(NULL, layer, NULL, MS_REMOUNT | MS_NOSUID | MS_NODEV, opts) < 0)
		return -errno;
	return 0;
}

/* upper_from >= 0: a directory holding "upper", the writable layer of a
 * checkpoint, which becomes the job's writable layer. */
static int layer_prepare(struct daemon *d, struct job *j, const char *layer,
			 const struct lowers *lw, int upper_from)
{
	_cleanup_close_ int lfd = open(layer, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	uid_t ru = j->idmap_base;
	gid_t rg = j->idmap_gid_base;
	int r;

	if (lfd < 0 || mkdirat(lfd, "work", 0700) < 0)
		return -errno;
	if (upper_from >= 0)
		return copy_tree_at(upper_from, "upper", lfd, "upper", NULL);
	if (mkdirat(lfd, "upper", 0755) < 0 || fchownat(lfd, "upper", ru, rg, 0) < 0)
		return -errno;
	r = job_tmp(lw, lfd);
	if (r >= 0 && (!j->template || !strcmp(j->template, "host")))
		r = job_etc(lfd, j, ru, rg, d->skel_dir);
	return r;
}

int rootfs_job_mount(struct daemon *d, struct job *j)
{
	return rootfs_job_mount_from(d, j, -EBADF);
}

/* (after a restart, the --files limit counts from the restored layer) */
int rootfs_job_mount_from(struct daemon *d, struct job *j, int upper_from)
{
	_cleanup_(lowers_done) struct lowers lw = { .fd = { -EBADF, -EBADF } };
	char layer[4096], rootfs[4096], opts[256];
	uint64_t size = j->disk ? j->disk : d->cfg->layer_size;
	uint64_t files = j->files ? j->files : d->cfg->layer_inodes;
	_cleanup_close_ int run = -EBADF;
	int r;

	if (job_path(d, j, "layer", layer, sizeof(layer)) < 0 ||
	    job_path(d, j, "rootfs", rootfs, sizeof(rootfs)) < 0)
		return -ENAMETOOLONG;
	r = lowers_open(d, j, &lw);
	if (r < 0)
		return r;
	run = daemon_job_rundir(d, j, true);
	if (run < 0)
		return run;
	if (mkdirat(run, "layer", 0700) < 0 || mkdirat(run, "rootfs", 0755) < 0)
		return -errno;
	/* (nr_inodes is set to the job's --files once the overlay is mounted) */
	snprintf(opts, sizeof(opts), "size=%llu,nr_inodes=%llu,mode=0700", (unsigned long long)size,
		 files ? (unsigned long long)files + 64 : 0ULL);
	if (mount("xos-layer", layer, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		return -errno;
	r = layer_prepare(d, j, layer, &lw, upper_from);
	if (r < 0)
		goto err_umount_layer;
	r = lowers_mount(&lw, layer, rootfs);
	if (r < 0)
		goto err_umount_layer;
	r = layer_limit_inodes(d, j, layer, rootfs);
	if (r < 0)
		goto err_umount_root;
	return 0;
err_umount_root:
	umount2(rootfs, MNT_DETACH);
err_umount_layer:
	umount2(layer, MNT_DETACH);
	return r;
}
/* What the job's writable layer holds now (xps). */
int rootfs_job_usage(struct daemon *d, struct job *j, uint64_t *ret_bytes, uint64_t *ret_files)
{
	char layer[4096];
	struct statfs sf;

	if (job_path(d, j, "layer", layer, sizeof(layer)) < 0)
		return -ENAMETOOLONG;
	if (statfs(layer, &sf) < 0)
		return -errno;
	if (sf.f_type != TMPFS_MAGIC)
		return -ENOENT;
	*ret_bytes = (uint64_t)(sf.f_blocks - sf.f_bfree) * (uint64_t)sf.f_bsize;
	*ret_files = (uint64_t)(sf.f_files - sf.f_ffree);
	return 0;
}

void rootfs_job_park(struct daemon *d, struct job *j)
{
	volume_unstage(d, j);
}

/* (the layer is its own tmpfs, on another device than the run directory) */
bool rootfs_job_kept(struct daemon *d, struct job *j)
{
	_cleanup_close_ int run = daemon_job_rundir(d, j, false);
	struct stat dir, layer;
	struct statfs sf;
	char p[4096];

	if (run < 0 || fstat(run, &dir) < 0 ||
	    fstatat(run, "layer", &layer, AT_SYMLINK_NOFOLLOW) < 0 || layer.st_dev == dir.st_dev)
		return false;
	if (job_path(d, j, "rootfs", p, sizeof(p)) < 0 || statfs(p, &sf) < 0)
		return false;
	return sf.f_type == OVERLAYFS_SUPER_MAGIC;
}

void rootfs_job_umount(struct daemon *d, struct job *j)
{
	_cleanup_close_ int run = -EBADF;
	char p[4096];

	volume_unstage(d, j);
	if (job_path(d, j, "rootfs", p, sizeof(p)) >= 0)
		while (umount2(p, MNT_DETACH) == 0)
			;
	if (job_path(d, j, "layer", p, sizeof(p)) >= 0)
		while (umount2(p, MNT_DETACH) == 0)
			;
	run = daemon_job_rundir(d, j, false);
	if (run < 0)
		return;
	unlinkat(run, "rootfs", AT_REMOVEDIR);
	unlinkat(run, "layer", AT_REMOVEDIR);
}
