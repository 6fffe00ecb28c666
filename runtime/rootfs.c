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
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "runtime/runtime-internal.h"
#include "templates/templates.h"

#define SKEL_STAMP "trusted.xos.skel"         /* xattr on the skeleton's root: built, version 1 */
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
	return lgetxattr(dir, SKEL_STAMP, v, sizeof(v)) == 1 && v[0] == '1';
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
		r = fsetxattr(skel, SKEL_STAMP, "1", 1, 0) < 0 ? -errno : 0;
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
	if (umount2(dir, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
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
	r = fd < 0 ? -errno : fsetxattr(fd, VOLATILE_STAMP, "1", 1, 0) < 0 ? -errno : 0;
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

/* The accounts as they are now: when they changed since the skeleton was
 * made, the job gets fresh copies in its own layer. */
static int job_etc(int layer, uid_t ru, const char *skel)
{
	_cleanup_close_ int host = -EBADF;
	_cleanup_close_ int etc = -EBADF;
	int r;

	if (accounts_unchanged(skel))
		return 0;
	host = open("/etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (host < 0)
		return -errno;
	if (mkdirat(layer, "upper/etc", 0755) < 0 || fchownat(layer, "upper/etc", ru, ru, 0) < 0)
		return -errno;
	etc = open_dir_at(layer, "upper/etc");
	if (etc < 0)
		return etc;
	r = copy_entry(host, etc, "passwd", ru, ru);
	return r < 0 ? r : copy_entry(host, etc, "group", ru, ru);
}

/* The overlay's lower layers: the host skeleton over / for "host", else the
 * template's read-only tree in the catalogue. */
static int job_lower(struct daemon *d, struct job *j, char *buf, size_t len)
{
	int r;

	if (!j->template || !strcmp(j->template, "host"))
		r = snprintf(buf, len, "%s:/", d->skel_dir);
	else
		r = snprintf(buf, len, "%s/templates/%s/rootfs", d->cfg->state_dir, j->template);
	return r < 0 || (size_t)r >= len ? -ENAMETOOLONG : 0;
}

/* /tmp copied up in advance, so that --files counts the files a job makes in
 * /tmp, not the directory's own copy. What the lower layer's /tmp is comes
 * from the template cache: lower layers never change. */
static int job_tmp(struct daemon *d, struct job *j, const char *lower, int layer)
{
	struct lower_tmp t;
	char first[4096];
	int r;

	snprintf(first, sizeof(first), "%.*s", (int)strcspn(lower, ":"), lower);
	r = template_cache_lower_tmp(d, j->template ? j->template : TEMPLATE_HOST, first, &t);
	if (r < 0 || !t.dir)
		return r;
	if (mkdirat(layer, "upper/tmp", 0700) < 0 ||
	    fchownat(layer, "upper/tmp", t.uid, t.gid, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fchmodat(layer, "upper/tmp", t.mode, 0) < 0)
		return -errno;
	return 0;
}

/* The mount targets LXC creates in a job's root when they are missing: its
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

/* How many inodes LXC will make in the job's root for its mount targets:
 * each missing path component once (a symlink on the way counts the rest as
 * missing: a little slack, never too few). */
static uint64_t mount_target_inodes(const struct job *j, int root)
{
	const char *t[MOUNT_TARGETS_MAX];
	char seen[64][256]; /* missing prefixes counted (more: counted again, slack) */
	size_t nt = mount_targets(j, t), ns = 0;
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
static int layer_prepare(struct daemon *d, struct job *j, const char *layer, const char *lower,
			 int upper_from)
{
	_cleanup_close_ int lfd = open(layer, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	uid_t ru = j->idmap_base;
	int r;

	if (lfd < 0 || mkdirat(lfd, "work", 0700) < 0)
		return -errno;
	if (upper_from >= 0)
		return copy_tree_at(upper_from, "upper", lfd, "upper", NULL);
	if (mkdirat(lfd, "upper", 0755) < 0 || fchownat(lfd, "upper", ru, ru, 0) < 0)
		return -errno;
	r = job_tmp(d, j, lower, lfd);
	if (r >= 0 && (!j->template || !strcmp(j->template, "host")))
		r = job_etc(lfd, ru, d->skel_dir);
	return r;
}

int rootfs_job_mount(struct daemon *d, struct job *j)
{
	return rootfs_job_mount_from(d, j, -EBADF);
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

/* (after a restart, the --files limit counts from the restored layer) */
int rootfs_job_mount_from(struct daemon *d, struct job *j, int upper_from)
{
	char layer[4096], rootfs[4096], lower[4096], opts[12288 + 256];
	uint64_t size = j->disk ? j->disk : d->cfg->layer_size;
	uint64_t files = j->files ? j->files : d->cfg->layer_inodes;
	_cleanup_close_ int run = -EBADF;
	int r;

	if (job_path(d, j, "layer", layer, sizeof(layer)) < 0 ||
	    job_path(d, j, "rootfs", rootfs, sizeof(rootfs)) < 0 ||
	    job_lower(d, j, lower, sizeof(lower)) < 0)
		return -ENAMETOOLONG;
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
	r = layer_prepare(d, j, layer, lower, upper_from);
	if (r < 0)
		goto err_umount_layer;
	/* xino=on: every file has the overlay's device and one inode number,
	 * which CRIU's inotify dump needs (docs/DECISIONS.md (t)) */
	r = snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s/upper,workdir=%s/work,xino=on",
		     lower, layer, layer);
	if (r < 0 || (size_t)r >= sizeof(opts)) {
		r = -ENAMETOOLONG;
		goto err_umount_layer;
	}
	r = mount_root_overlay(rootfs, opts, (size_t)r - strlen(",xino=on"));
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
