/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The direct engine of job containers (container.c's interface; DECISIONS
 * (bm), step 2): a container made with system calls of xos's own, no liblxc,
 * no monitor process. The job's LXC configuration (engine-lxc.c writes it,
 * one format for both engines) is its specification; this engine takes the
 * part of it a job of `--net none` uses and refuses any other key, so that a
 * job never runs with less than its configuration says.
 *
 * The starter child (container_start_child: the spawner's, else xosd's)
 * makes the container's cgroups in every v1 hierarchy below init's cgroup
 * (lxc.payload.xos-ID, where liblxc puts them, so xosd's pruning and
 * accounting find them), writes its limits, and clones the init into new
 * user, mount, pid, uts, ipc and network namespaces. The parent writes its
 * id maps and puts it into its cgroups; the init, root of its user
 * namespace, takes a cgroup namespace, mounts its root (the job's root xosd
 * mounted), its mount entries, a /dev of its own (a tmpfs, the usual nodes
 * bound from the host, a devpts, a boot id of its own), proc (/proc/sys
 * read-only but for /proc/sys/net) and a read-only sysfs, pivots into its
 * root, sets its hostname, brings lo up and runs the loader. The starter
 * writes the init's pid and start time into the container's directory (its
 * "init" file) and ends: the init then has no parent of xos's (the node's
 * init reaps it), and xosd follows it through a pidfd, also after a restart. */
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <linux/magic.h>
#include <linux/sched.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "runtime/runtime-internal.h"

#define SPEC_MAX 16384
#define MOUNTS_MAX 64
#define LIMITS_MAX 16
#define HIER_MAX 16
#define INIT_FILE "init"
#define ERROR_FILE "direct.err"

/* What the configuration asks for */
struct spec {
	char *uts, *rootfs, *mnt;
	char umap[2048], gmap[2048]; /* as /proc/PID/uid_map takes them */
	size_t ulen, glen;
	struct {
		char *src, *dst;
		bool ro;
	} m[MOUNTS_MAX];
	size_t nm;
	struct {
		char *file, *value;
	} lim[LIMITS_MAX];
	size_t nlim;
	char pty_max[16];
};

/* A cgroup hierarchy and the container's cgroup in it */
struct hier {
	char name[64]; /* its directory below /sys/fs/cgroup: "memory", "cpu,cpuacct" */
	int base;      /* init's cgroup there */
	bool made;
};

struct cgroups {
	struct hier h[HIER_MAX];
	size_t n;
	char payload[96]; /* lxc.payload.xos-<id> */
};

/* "what" and then "arg" (at most 200 bytes of it) into buf: r */
static int fail_msg(char *buf, size_t len, int r, const char *what, const char *arg)
{
	snprintf(buf, len, "%s%.200s", what, arg ? arg : "");
	return r;
}

static int map_add(char *buf, size_t *len, size_t cap, const char *v)
{
	unsigned a, b, c;
	char kind;
	int n;

	if (sscanf(v, "%c %u %u %u", &kind, &a, &b, &c) != 4)
		return -EINVAL;
	n = snprintf(buf + *len, cap - *len, "%u %u %u\n", a, b, c);
	if (n < 0 || (size_t)n >= cap - *len)
		return -E2BIG;
	*len += (size_t)n;
	return 0;
}

/* One "SRC DST none bind[,ro] 0 0" entry */
static int mount_add(struct spec *s, char *v)
{
	char *save = NULL, *src = strtok_r(v, " ", &save), *dst = strtok_r(NULL, " ", &save);
	char *type = strtok_r(NULL, " ", &save), *opts = strtok_r(NULL, " ", &save);

	if (!src || !dst || !type || !opts || src[0] != '/' || dst[0] == '/' ||
	    strcmp(type, "none") || s->nm >= MOUNTS_MAX)
		return -EINVAL;
	if (strcmp(opts, "bind") && strcmp(opts, "bind,ro"))
		return -EINVAL;
	s->m[s->nm].src = src;
	s->m[s->nm].dst = dst;
	s->m[s->nm].ro = !strcmp(opts, "bind,ro");
	s->nm++;
	return 0;
}

/* The configuration in text (changed in place) into s: 0, or the key it
 * does not take in err. */
static int spec_parse(char *text, struct spec *s, char *err, size_t elen)
{
	char *save = NULL;

	*s = (struct spec){ 0 };
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *eq = strstr(l, " = "), *k = l, *v;
		int r = 0;

		if (!eq)
			return fail_msg(err, elen, -EINVAL, "a malformed line: ", l);
		*eq = 0;
		v = eq + 3;
		if (!strcmp(k, "lxc.uts.name"))
			s->uts = v;
		else if (!strcmp(k, "lxc.rootfs.path") && !strncmp(v, "dir:/", 5))
			s->rootfs = v + 4;
		else if (!strcmp(k, "lxc.rootfs.mount") && v[0] == '/')
			s->mnt = v;
		else if (!strcmp(k, "lxc.idmap") && v[0] == 'u')
			r = map_add(s->umap, &s->ulen, sizeof(s->umap), v);
		else if (!strcmp(k, "lxc.idmap") && v[0] == 'g')
			r = map_add(s->gmap, &s->glen, sizeof(s->gmap), v);
		else if (!strcmp(k, "lxc.pty.max") && strlen(v) < sizeof(s->pty_max) &&
			 strspn(v, "0123456789") == strlen(v) && v[0])
			memcpy(s->pty_max, v, strlen(v) + 1);
		else if (!strcmp(k, "lxc.mount.entry"))
			r = mount_add(s, v);
		else if (!strncmp(k, "lxc.cgroup.", 11) && strncmp(k, "lxc.cgroup.dir", 14) &&
			 strchr(k + 11, '.') && !strchr(k + 11, '/') && s->nlim < LIMITS_MAX) {
			s->lim[s->nlim].file = k + 11;
			s->lim[s->nlim++].value = v;
		} else if ((!strcmp(k, "lxc.net.0.type") && !strcmp(v, "empty")) ||
			   (!strcmp(k, "lxc.tty.max") && !strcmp(v, "0")) ||
			   (!strcmp(k, "lxc.console.path") && !strcmp(v, "none")) ||
			   (!strcmp(k, "lxc.autodev") && !strcmp(v, "1")) ||
			   (!strcmp(k, "lxc.mount.auto") && !strcmp(v, "proc:mixed sys:ro")) ||
			   !strcmp(k, "lxc.log.file") || !strcmp(k, "lxc.log.level"))
			continue; /* (what it does anyway; its own log is direct.err) */
		else
			return fail_msg(err, elen, -EOPNOTSUPP, "the direct engine does not take ",
					k);
		if (r < 0)
			return fail_msg(err, elen, r, "a malformed ", k);
	}
	if (!s->uts || !s->rootfs || !s->mnt || !s->ulen || !s->glen)
		return fail_msg(err, elen, -EINVAL, "its root, hostname or id maps are missing",
				NULL);
	return 0;
}

int container_direct_check(const char *config, char *err, size_t elen)
{
	_cleanup_free_ char *text = strdup(config);
	struct spec s;

	return text ? spec_parse(text, &s, err, elen) : -ENOMEM;
}

/* ---- cgroups ---- */

static void cg_undo(struct cgroups *cg)
{
	for (size_t i = 0; i < cg->n; i++) {
		if (cg->h[i].made)
			for (int k = 0;
			     k < 100 && unlinkat(cg->h[i].base, cg->payload, AT_REMOVEDIR) < 0 &&
			     errno == EBUSY;
			     k++)
				usleep(1000);
		closep(&cg->h[i].base);
	}
	cg->n = 0;
}

static int write_at(int dir, const char *path, const char *text)
{
	_cleanup_close_ int fd = openat(dir, path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	size_t len = strlen(text);

	if (fd < 0)
		return -errno;
	return write(fd, text, len) == (ssize_t)len ? 0 : errno ? -errno : -EIO;
}

/* cpuset's cpus and mems, which a new v1 cgroup has empty, as its parent's */
static int cpuset_copy(int base, const char *payload)
{
	static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };

	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		_cleanup_free_ char *v = NULL;
		char path[160];
		int r = read_file_at(base, files[i], 4096, &v, NULL);

		snprintf(path, sizeof(path), "%s/%s", payload, files[i]);
		if (r < 0 || (r = write_at(base, path, v)) < 0)
			return r;
	}
	return 0;
}

static bool has_controller(const char *list, const char *c, size_t cl)
{
	for (const char *p = list; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] ? 1 : 0))
		if (strcspn(p, ",") == cl && !strncmp(p, c, cl))
			return true;
	return false;
}

/* The container's cgroup in every hierarchy, with its limits. */
static int cg_make(struct cgroups *cg, const char *id, const struct spec *s, char *err, size_t elen)
{
	_cleanup_close_ int root = open("/sys/fs/cgroup", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *init1 = NULL;
	struct statfs sf;
	struct dirent *de;
	DIR *dir;
	int r = 0;

	snprintf(cg->payload, sizeof(cg->payload), "lxc.payload.xos-%s", id);
	if (root < 0 || fstatfs(root, &sf) < 0)
		return fail_msg(err, elen, -errno, "no cgroups at /sys/fs/cgroup", NULL);
	if (sf.f_type == CGROUP2_SUPER_MAGIC)
		return fail_msg(err, elen, -EOPNOTSUPP,
				"the direct engine needs cgroup v1 (for now)", NULL);
	(void)read_file_at(AT_FDCWD, "/proc/1/cgroup", 1 << 16, &init1, NULL);
	dir = opendir_dup(root);
	if (!dir)
		return -errno;
	while (r >= 0 && (de = readdir(dir))) {
		_cleanup_close_ int h = -EBADF;
		char base[512];
		struct hier *x;

		if (de->d_type != DT_DIR || de->d_name[0] == '.' ||
		    strlen(de->d_name) >= sizeof(x->name))
			continue;
		h = open_dir_at(root, de->d_name);
		if (h < 0 || fstatfs(h, &sf) < 0 ||
		    (sf.f_type != CGROUP_SUPER_MAGIC && sf.f_type != CGROUP2_SUPER_MAGIC))
			continue;
		if (cg->n >= HIER_MAX) {
			r = -E2BIG;
			break;
		}
		x = &cg->h[cg->n];
		*x = (struct hier){ .base = -EBADF };
		memcpy(x->name, de->d_name, strlen(de->d_name) + 1);
		runtime_cgroup_init_path(init1, de->d_name, base, sizeof(base));
		x->base = base[0] ? open_dir_at(h, base) : fcntl(h, F_DUPFD_CLOEXEC, 3);
		if (x->base < 0) {
			r = x->base;
			break;
		}
		cg->n++;
		if (mkdirat(x->base, cg->payload, 0755) < 0) {
			r = -errno;
			break;
		}
		x->made = true;
		if (has_controller(x->name, "cpuset", 6))
			r = cpuset_copy(x->base, cg->payload);
	}
	closedir(dir);
	if (r < 0)
		return fail_msg(err, elen, r, "cannot make its cgroups", NULL);
	for (size_t i = 0; i < s->nlim; i++) {
		const char *file = s->lim[i].file;
		size_t cl = strcspn(file, ".");
		char path[256];
		size_t k;

		for (k = 0; k < cg->n && !has_controller(cg->h[k].name, file, cl); k++)
			;
		if (k == cg->n)
			return fail_msg(err, elen, -ENOENT, "no cgroup hierarchy for its ", file);
		snprintf(path, sizeof(path), "%s/%s", cg->payload, file);
		if ((r = write_at(cg->h[k].base, path, s->lim[i].value)) < 0)
			return fail_msg(err, elen, r, "cannot set its ", file);
	}
	return 0;
}

static int cg_place(const struct cgroups *cg, pid_t pid)
{
	char path[128], v[16];
	int r = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg->payload);
	snprintf(v, sizeof(v), "%d", (int)pid);
	for (size_t i = 0; r >= 0 && i < cg->n; i++)
		r = write_at(cg->h[i].base, path, v);
	return r;
}

/* ---- the init's side ---- */

enum step {
	STEP_GO,
	STEP_CREDS,
	STEP_CGROUPNS,
	STEP_SLAVE,
	STEP_ROOT,
	STEP_ENTRY,
	STEP_DEV,
	STEP_DEVPTS,
	STEP_PROC,
	STEP_SYSFS,
	STEP_PIVOT,
	STEP_HOSTNAME,
	STEP_LOOPBACK,
	STEP_EXEC,
	_STEP_MAX,
};

static const char *const step_names[_STEP_MAX] = {
	[STEP_GO] = "wait for its maps and cgroups",
	[STEP_CREDS] = "become root of its user namespace",
	[STEP_CGROUPNS] = "take a cgroup namespace",
	[STEP_SLAVE] = "make its mounts slaves",
	[STEP_ROOT] = "mount its root",
	[STEP_ENTRY] = "mount an entry of its configuration",
	[STEP_DEV] = "make its /dev",
	[STEP_DEVPTS] = "mount its devpts",
	[STEP_PROC] = "mount its proc",
	[STEP_SYSFS] = "mount its sysfs",
	[STEP_PIVOT] = "pivot into its root",
	[STEP_HOSTNAME] = "set its hostname",
	[STEP_LOOPBACK] = "bring lo up",
	[STEP_EXEC] = "run the loader",
};

struct child_err {
	int32_t step, err;
};

static _noreturn_ void child_fail(int fd, enum step step, int err)
{
	struct child_err e = { (int32_t)step, err < 0 ? -err : err };

	(void)!write(fd, &e, sizeof(e));
	_exit(1);
}

/* mnt (a mount fd) moved onto path below root (no symlink followed), or
 * onto the host's path (root AT_FDCWD) */
static int move_onto(int mnt, int root, const char *path)
{
	_cleanup_close_ int t = root == AT_FDCWD ? open(path, O_PATH | O_CLOEXEC)
						 : openat_beneath(root, path, O_PATH, 0);

	if (t < 0)
		return root == AT_FDCWD ? -errno : t;
	return move_mount(mnt, "", t, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0
		       ? -errno
		       : 0;
}

/* A clone of the tree at dfd/path (AT_FDCWD: a host path), read-only if ro */
static int clone_tree(int dfd, const char *path, bool ro)
{
	struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY };
	int fd = open_tree(dfd, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);

	if (fd < 0)
		return -errno;
	if (ro && mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof(a)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

static int bind_onto(int dfd, const char *src, bool ro, int root, const char *dst)
{
	_cleanup_close_ int t = clone_tree(dfd, src, ro);

	return t < 0 ? t : move_onto(t, root, dst);
}

/* A new file system of type with opts (key, value pairs; NULL value: a flag) */
static int new_fs(const char *type, const char *const *opts, size_t n, unsigned attrs)
{
	_cleanup_close_ int fs = fsopen(type, FSOPEN_CLOEXEC);
	int fd;

	if (fs < 0)
		return -errno;
	for (size_t i = 0; i + 1 < n; i += 2)
		if (fsconfig(fs, opts[i + 1] ? FSCONFIG_SET_STRING : FSCONFIG_SET_FLAG, opts[i],
			     opts[i + 1], 0) < 0)
			return -errno;
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return -errno;
	fd = fsmount(fs, FSMOUNT_CLOEXEC, attrs);
	return fd < 0 ? -errno : fd;
}

static const char *const dev_nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };
static const char *const dev_links[][2] = {
	{ "/proc/self/fd", "fd" },
	{ "/proc/self/fd/0", "stdin" },
	{ "/proc/self/fd/1", "stdout" },
	{ "/proc/self/fd/2", "stderr" },
};

/* /dev: a tmpfs, the usual nodes bound from the host's, a devpts of its
 * own with /dev/ptmx its ptmx, a boot id of its own in .lxc-boot-id */
static int make_dev(int root, const struct spec *s, enum step *step)
{
	static const char *const tmpfs_opts[] = { "size", "500000", "mode", "0755" };
	const char *pts_opts[] = {
		"ptmxmode", "0666", "mode", "0620",
		"gid",      "5",    "max",  s->pty_max[0] ? s->pty_max : "1024"
	};
	_cleanup_close_ int tmp = -EBADF, dev = -EBADF, pts = -EBADF;
	_cleanup_free_ char *uuid = NULL;
	int r;

	*step = STEP_DEV;
	tmp = new_fs("tmpfs", tmpfs_opts, ELEMENTSOF(tmpfs_opts), MOUNT_ATTR_NOSUID);
	if (tmp < 0 || (r = move_onto(tmp, root, "dev")) < 0)
		return tmp < 0 ? tmp : r;
	dev = openat_beneath(root, "dev", O_RDONLY | O_DIRECTORY, 0);
	if (dev < 0)
		return dev;
	for (size_t i = 0; i < ELEMENTSOF(dev_nodes); i++) {
		char host[32];
		int fd = openat(dev, dev_nodes[i], O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0);

		if (fd < 0)
			return -errno;
		close(fd);
		snprintf(host, sizeof(host), "/dev/%s", dev_nodes[i]);
		if ((r = bind_onto(AT_FDCWD, host, false, dev, dev_nodes[i])) < 0)
			return r;
	}
	for (size_t i = 0; i < ELEMENTSOF(dev_links); i++)
		if (symlinkat(dev_links[i][0], dev, dev_links[i][1]) < 0)
			return -errno;
	if (mkdirat(dev, "pts", 0755) < 0)
		return -errno;
	r = read_file_at(AT_FDCWD, "/proc/sys/kernel/random/uuid", 64, &uuid, NULL);
	if (r < 0 ||
	    (r = write_file_atomic_at(dev, ".lxc-boot-id", uuid, strlen(uuid), 0444, false)) < 0)
		return r;
	*step = STEP_DEVPTS;
	pts = new_fs("devpts", pts_opts, ELEMENTSOF(pts_opts),
		     MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
	if (pts < 0 || (r = move_onto(pts, dev, "pts")) < 0)
		return pts < 0 ? pts : r;
	r = openat(dev, "ptmx", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0);
	if (r < 0)
		return -errno;
	close(r);
	return bind_onto(dev, "pts/ptmx", false, dev, "ptmx");
}

/* proc with /proc/sys read-only but for /proc/sys/net, the container's
 * boot id; sysfs read-only */
static int make_proc_sys(int root, enum step *step)
{
	_cleanup_close_ int proc = -EBADF, sys = -EBADF, net = -EBADF, sysfs = -EBADF;
	int r;

	*step = STEP_PROC;
	proc = new_fs("proc", NULL, 0, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	if (proc < 0 || (r = move_onto(proc, root, "proc")) < 0)
		return proc < 0 ? proc : r;
	/* (clones of the attached proc: a detached mount is not cloned) */
	net = clone_tree(root, "proc/sys/net", false);
	sys = clone_tree(root, "proc/sys", true);
	if (net < 0 || sys < 0)
		return net < 0 ? net : sys;
	if ((r = move_onto(sys, root, "proc/sys")) < 0 ||
	    (r = move_onto(net, root, "proc/sys/net")) < 0 ||
	    (r = bind_onto(root, "dev/.lxc-boot-id", true, root,
			   "proc/sys/kernel/random/boot_id")) < 0)
		return r;
	*step = STEP_SYSFS;
	sysfs = new_fs("sysfs", NULL, 0,
		       MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
			       MOUNT_ATTR_NOEXEC);
	return sysfs < 0 ? sysfs : move_onto(sysfs, root, "sys");
}

static int loopback_up(void)
{
	_cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = { 0 };

	memcpy(ifr.ifr_name, "lo", 3);
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	ifr.ifr_flags |= IFF_UP;
	return ioctl(s, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
}

static _noreturn_ void init_child(const struct spec *s, const struct container_start_args *a,
				  int go, int errfd)
{
	char *argv[] = { "/.xos/loader", a->pooled ? "-w" : (char *)a->id,
			 a->pooled ? (char *)a->id : NULL, NULL };
	char *envp[] = { "container=xos", NULL };
	_cleanup_close_ int root = -EBADF;
	enum step step = STEP_GO;
	char c;
	int r;

	if (read(go, &c, 1) != 1)
		child_fail(errfd, STEP_GO, EPIPE);
	close(go);
	if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0 || setgroups(0, NULL) < 0)
		child_fail(errfd, STEP_CREDS, errno);
	if (unshare(CLONE_NEWCGROUP) < 0)
		child_fail(errfd, STEP_CGROUPNS, errno);
	if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		child_fail(errfd, STEP_SLAVE, errno);
	/* the job's root at rootfs_mnt, as liblxc puts it */
	r = bind_onto(AT_FDCWD, s->rootfs, false, AT_FDCWD, s->mnt);
	if (r < 0)
		child_fail(errfd, STEP_ROOT, r);
	root = open(s->mnt, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		child_fail(errfd, STEP_ROOT, errno);
	for (size_t i = 0; i < s->nm; i++)
		if ((r = bind_onto(AT_FDCWD, s->m[i].src, s->m[i].ro, root, s->m[i].dst)) < 0)
			child_fail(errfd, STEP_ENTRY, r);
	if ((r = make_dev(root, s, &step)) < 0 || (r = make_proc_sys(root, &step)) < 0)
		child_fail(errfd, step, r);
	if (fchdir(root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
	    umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		child_fail(errfd, STEP_PIVOT, errno);
	if (sethostname(s->uts, strlen(s->uts)) < 0)
		child_fail(errfd, STEP_HOSTNAME, errno);
	if ((r = loopback_up()) < 0)
		child_fail(errfd, STEP_LOOPBACK, r);
	execve(argv[0], argv, envp);
	child_fail(errfd, STEP_EXEC, errno);
}

/* ---- the starter's side ---- */

static int write_map(pid_t pid, const char *file, const char *text)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	return write_at(AT_FDCWD, path, text);
}

/* A process's start time (field 22 of its stat), 0 if it is gone */
static uint64_t start_time(pid_t pid)
{
	_cleanup_free_ char *text = NULL;
	unsigned long long t = 0;
	char path[64], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file_at(AT_FDCWD, path, 4096, &text, NULL) < 0 || !(p = strrchr(text, ')')))
		return 0;
	if (sscanf(p + 1,
		   " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
		   "%*d %*d %llu",
		   &t) != 1)
		return 0;
	return t;
}

static int container_dir(const char *lxcpath, const char *id)
{
	_cleanup_close_ int lxc = open(lxcpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char name[64];

	if (lxc < 0)
		return -errno;
	snprintf(name, sizeof(name), "xos-%s", id);
	return open_dir_at(lxc, name);
}

static _noreturn_ void start_failed(int dir, const char *msg)
{
	if (dir >= 0)
		(void)write_file_atomic_at(dir, ERROR_FILE, msg, strlen(msg), 0600, false);
	_exit(1);
}

static _noreturn_ void direct_start_child(const struct container_start_args *a)
{
	_cleanup_free_ char *text = NULL;
	struct cgroups cg = { 0 };
	struct clone_args ca = { .flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID |
					  CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET,
				 .exit_signal = SIGCHLD };
	struct child_err ce;
	struct spec s;
	char err[512], init[64];
	int dir = container_dir(a->lxcpath, a->id), go[2], ep[2], r;
	ssize_t n;
	pid_t pid;

	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC); /* (dir stays: CLOEXEC, ours) */
	if (dir < 0)
		_exit(1);
	(void)unlinkat(dir, ERROR_FILE, 0);
	(void)unlinkat(dir, INIT_FILE, 0);
	r = read_file_at(dir, "config", SPEC_MAX, &text, NULL);
	if (r < 0)
		start_failed(dir, "its configuration cannot be read");
	if (spec_parse(text, &s, err, sizeof(err)) < 0)
		start_failed(dir, err);
	if (cg_make(&cg, a->id, &s, err, sizeof(err)) < 0) {
		cg_undo(&cg);
		start_failed(dir, err);
	}
	if (pipe2(go, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0) {
		cg_undo(&cg);
		start_failed(dir, "out of file descriptors");
	}
	pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid == 0) {
		close(go[1]);
		close(ep[0]);
		init_child(&s, a, go[0], ep[1]);
	}
	close(go[0]);
	close(ep[1]);
	if (pid < 0) {
		snprintf(err, sizeof(err), "cannot clone its init: %s", strerror(errno));
		cg_undo(&cg);
		start_failed(dir, err);
	}
	r = write_map(pid, "uid_map", s.umap);
	r = r < 0 ? r : write_map(pid, "gid_map", s.gmap);
	if (r < 0)
		snprintf(err, sizeof(err), "cannot write its id maps: %s", strerror(-r));
	else if ((r = cg_place(&cg, pid)) < 0)
		snprintf(err, sizeof(err), "cannot put it into its cgroups: %s", strerror(-r));
	if (r >= 0 && write(go[1], "g", 1) != 1)
		r = -errno;
	close(go[1]);
	while ((n = read(ep[0], &ce, sizeof(ce))) < 0 && errno == EINTR)
		;
	if (r >= 0 && n == sizeof(ce)) {
		r = -ce.err;
		snprintf(err, sizeof(err), "its init could not %s: %s",
			 ce.step >= 0 && ce.step < _STEP_MAX ? step_names[ce.step] : "start",
			 strerror(ce.err));
	}
	if (r < 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		cg_undo(&cg);
		start_failed(dir, err);
	}
	snprintf(init, sizeof(init), "%d %llu\n", (int)pid, (unsigned long long)start_time(pid));
	if (write_file_atomic_at(dir, INIT_FILE, init, strlen(init), 0600, false) < 0) {
		kill(pid, SIGKILL);
		start_failed(dir, "cannot note its init");
	}
	_exit(0);
}

/* ---- xosd's side ---- */

static int direct_create(struct daemon *d, struct job *j)
{
	return container_engine_lxc.create(d, j); /* (one configuration for both) */
}

/* The init the starter noted, if it is still that process: its pidfd in j */
static int find_init(struct daemon *d, struct job *j)
{
	_cleanup_close_ int dir = container_dir(d->lxcpath, j->id);
	_cleanup_free_ char *text = NULL;
	unsigned long long t;
	int pid, r;

	if (dir < 0)
		return dir;
	r = read_file_at(dir, INIT_FILE, 64, &text, NULL);
	if (r < 0)
		return r == -ENOENT ? -ESRCH : r;
	if (sscanf(text, "%d %llu", &pid, &t) != 2 || pid <= 0)
		return -EBADMSG;
	r = container_take_init(j, pid);
	if (r >= 0 && (t == 0 || start_time(pid) != t)) {
		closep(&j->pidfd); /* (another process now holds that pid) */
		j->init_pid = 0;
		r = -ESRCH;
	}
	return r;
}

static bool direct_running(struct job *j)
{
	struct pollfd p = { .fd = j->pidfd, .events = POLLIN };

	return j->pidfd >= 0 && poll(&p, 1, 0) == 0;
}

static int direct_attach(struct daemon *d, struct job *j)
{
	int r = find_init(d, j);

	return r < 0 ? r : direct_running(j) ? 0 : -ESRCH;
}

static char *direct_start_error(struct daemon *d, struct job *j)
{
	_cleanup_close_ int dir = container_dir(d->lxcpath, j->id);
	char *msg = NULL;

	if (dir >= 0)
		(void)read_file_at(dir, ERROR_FILE, 4096, &msg, NULL);
	return msg;
}

static void direct_release(struct job *j)
{
	(void)j; /* (nothing but the pidfd, which container_release closes) */
}

/* (what is left is the liblxc engine's too: the configuration's directory) */
static void direct_remove(struct daemon *d, struct job *j)
{
	container_engine_lxc.remove(d, j);
}

const struct container_engine container_engine_direct = {
	.name = "direct",
	.create = direct_create,
	.start_child = direct_start_child,
	.started = find_init,
	.attach = direct_attach,
	.running = direct_running,
	.release = direct_release,
	.remove = direct_remove,
	.start_error = direct_start_error,
};
