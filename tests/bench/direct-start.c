/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* direct-start: a measurement probe of a container start without liblxc (no
 * monitor, no double fork), not a feature. It makes with system calls of its
 * own what an xos job container needs, so that its cost can be set beside
 * lxc-execute's and xos's own cold start in one run
 * (tests/bench/direct-start.sh, which builds it):
 *
 *   parent: a cgroup per container in each hierarchy given (-c) below -g,
 *     with a memory and a pids limit; clone3 of the child into new user,
 *     mount, pid, uts, ipc and net namespaces (with a pidfd); its uid and gid
 *     maps (a 65536-id slice of -b/-s, like xos's slices); the child put into
 *     its cgroups; its root: an idmapped clone of the read-only lower tree
 *     (idmapped onto the child's own user namespace, as xos idmaps its
 *     templates), a tmpfs of its own holding upper and work, mounted on the
 *     host below the layers directory (this kernel's overlay refuses a
 *     detached tmpfs as its upper layer; xosd mounts a job's layer on the
 *     host too), one overlay of them, detached and handed to the child
 *     (SCM_RIGHTS); the layer is unmounted when the container ends.
 *   child: a cgroup namespace (after its placement), root of its user
 *     namespace, the overlay attached, a tmpfs /dev with the usual nodes
 *     bound from the host, a devpts, proc (/proc/sys and sysrq-trigger
 *     read-only), sysfs read-only, pivot_root, its hostname, lo up, LXC's
 *     default capability drops from the bounding set, exec of INIT.
 *   parent: waits for INIT (the pidfd), removes the cgroups.
 *
 *   direct-start [OPTIONS] run [-n COUNT] -- INIT [ARG...]
 *   direct-start [OPTIONS] hold COUNT -- INIT [ARG...]
 *
 * run starts COUNT containers one after another, each waited for (exit 0 if
 * every INIT exited 0); hold starts COUNT containers, prints "ready COUNT"
 * once every INIT has been executed, and on SIGTERM, SIGINT or SIGHUP kills
 * them, waits for them and removes their cgroups.
 *
 * Options: -r LOWER (a read-only tree owned by host root, with /dev, /proc,
 * /sys), -m DIR (an empty directory the root is attached to, in the child's
 * mount namespace only), -g CGROUP (an existing cgroup, relative to each
 * hierarchy's root), -c LIST (hierarchies under /sys/fs/cgroup, comma
 * separated), -b BASE -s SLICES (host ids of the slices), -M BYTES (memory
 * limit), -P N (pids limit), -v (wall and CPU per start on stderr).
 *
 * Build: cc -O2 -Wall -Wextra -o direct-start direct-start.c (root to run). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define SLICE 65536U
#define CG_MAX 16
#define START_TIMEOUT_MS 10000
#define CG_RMDIR_TRIES 200 /* 1 ms apart */

static void closep(int *fd)
{
	int saved = errno;

	if (*fd >= 0)
		close(*fd);
	*fd = -EBADF;
	errno = saved;
}

static void freep(void *p)
{
	int saved = errno;

	free(*(void **)p);
	errno = saved;
}

#define _cleanup_close_ __attribute__((cleanup(closep)))
#define _cleanup_free_ __attribute__((cleanup(freep)))

static int take_fd(int *fd)
{
	int r = *fd;

	*fd = -EBADF;
	return r;
}

struct opts {
	const char *lower;
	const char *mnt;
	const char *layers;
	const char *cg_parent;
	const char *cg_list;
	uint64_t id_base;
	uint64_t slices;
	uint64_t memory;
	uint64_t pids;
	bool verbose;
	char **init; /* INIT [ARG...] */
};

struct cgroups {
	int dir[CG_MAX]; /* -g in each hierarchy */
	char name[CG_MAX][32];
	size_t n;
};

/* What a run has open on the host: its cgroups and the layers' directory */
struct host {
	struct cgroups cg;
	int layers;
};

struct ctr {
	pid_t pid;
	int pidfd;
	char cg[48]; /* its cgroup's name below -g in every hierarchy, and its layer's */
	bool cg_made;
	bool layer_made;
};

/* ---- the child's steps, reported to the parent when one fails ---- */

enum step {
	STEP_RECV,
	STEP_CGROUPNS,
	STEP_CREDS,
	STEP_PDEATHSIG,
	STEP_SLAVE,
	STEP_ATTACH,
	STEP_CHDIR,
	STEP_DEV_TMPFS,
	STEP_DEV_DIR,
	STEP_DEV_NODE,
	STEP_DEV_BIND,
	STEP_DEV_LINK,
	STEP_DEVPTS,
	STEP_PROC,
	STEP_PROC_RO,
	STEP_SYSFS,
	STEP_PIVOT,
	STEP_HOSTNAME,
	STEP_LOOPBACK,
	STEP_CAPS,
	STEP_SIGMASK,
	STEP_EXEC,
	_STEP_MAX,
};

static const char *const step_names[_STEP_MAX] = {
	[STEP_RECV] = "receive the root",
	[STEP_CGROUPNS] = "unshare the cgroup namespace",
	[STEP_CREDS] = "become root of the user namespace",
	[STEP_PDEATHSIG] = "set the parent-death signal",
	[STEP_SLAVE] = "make / a slave mount",
	[STEP_ATTACH] = "attach the root",
	[STEP_CHDIR] = "enter the root",
	[STEP_DEV_TMPFS] = "mount the /dev tmpfs",
	[STEP_DEV_DIR] = "make /dev/pts or /dev/shm",
	[STEP_DEV_NODE] = "make a device node's mount point",
	[STEP_DEV_BIND] = "bind a device node",
	[STEP_DEV_LINK] = "make a /dev symlink",
	[STEP_DEVPTS] = "mount devpts",
	[STEP_PROC] = "mount proc",
	[STEP_PROC_RO] = "make /proc/sys read-only",
	[STEP_SYSFS] = "mount sysfs",
	[STEP_PIVOT] = "pivot_root",
	[STEP_HOSTNAME] = "set the hostname",
	[STEP_LOOPBACK] = "bring lo up",
	[STEP_CAPS] = "drop capabilities",
	[STEP_SIGMASK] = "reset the signal mask",
	[STEP_EXEC] = "execute INIT",
};

struct child_err {
	int32_t step;
	int32_t err;
};

static const char *const dev_nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };
static const char *const dev_links[][2] = {
	{ "/proc/self/fd", "dev/fd" },       { "/proc/self/fd/0", "dev/stdin" },
	{ "/proc/self/fd/1", "dev/stdout" }, { "/proc/self/fd/2", "dev/stderr" },
	{ "pts/ptmx", "dev/ptmx" },
};
/* LXC's default drops (its common.conf) */
static const int cap_drops[] = { CAP_MAC_ADMIN, CAP_MAC_OVERRIDE, CAP_SYS_TIME, CAP_SYS_MODULE,
				 CAP_SYS_RAWIO };
static char *const init_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "container=xos-direct",
	NULL
};

/* What the child needs, made before the clone: it only calls the kernel. */
struct child_args {
	const struct opts *o;
	int sock;
	char hostname[32];
	char dev_src[ELEMENTSOF(dev_nodes)][24];
	char dev_dst[ELEMENTSOF(dev_nodes)][24];
	sigset_t no_signals;
};

/* ---- small helpers ---- */

static int parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

static uint64_t now_us(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int write_at(int dir, const char *path, const char *text)
{
	_cleanup_close_ int fd = openat(dir, path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	size_t len = strlen(text);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, len);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

/* ---- cgroups: one per container in each hierarchy, below -g ---- */

static void cg_close(struct cgroups *cg)
{
	for (size_t i = 0; i < cg->n; i++)
		closep(&cg->dir[i]);
	cg->n = 0;
}

static int cg_open(struct cgroups *cg, const char *list, const char *parent)
{
	_cleanup_free_ char *copy = strdup(list);
	char *save = NULL, path[4096];

	cg->n = 0;
	if (!copy)
		return -ENOMEM;
	for (char *h = strtok_r(copy, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
		int n, fd;

		if (cg->n >= CG_MAX || strlen(h) >= sizeof(cg->name[0]) || strchr(h, '/'))
			return -EINVAL;
		n = snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/%s", h, parent);
		if (n < 0 || (size_t)n >= sizeof(path))
			return -ENAMETOOLONG;
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		cg->dir[cg->n] = fd;
		memcpy(cg->name[cg->n], h, strlen(h) + 1);
		cg->n++;
	}
	return cg->n ? 0 : -EINVAL;
}

static int cg_rmdir(int dir, const char *name)
{
	for (int i = 0; i < CG_RMDIR_TRIES; i++) {
		if (unlinkat(dir, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		usleep(1000); /* (the last task's css_set is still being released) */
	}
	return -EBUSY;
}

static int cg_remove(const struct cgroups *cg, struct ctr *c)
{
	int r = 0, k;

	if (!c->cg_made)
		return 0;
	for (size_t i = 0; i < cg->n; i++)
		if ((k = cg_rmdir(cg->dir[i], c->cg)) < 0 && r == 0)
			r = k;
	c->cg_made = r < 0;
	return r;
}

/* The container's cgroup in every hierarchy, its limits written. */
static int cg_make(const struct cgroups *cg, const struct opts *o, struct ctr *c)
{
	char path[128], v[32];
	int r = 0;

	for (size_t i = 0; i < cg->n; i++)
		if (mkdirat(cg->dir[i], c->cg, 0755) < 0) {
			r = -errno;
			for (size_t k = 0; k < i; k++)
				(void)cg_rmdir(cg->dir[k], c->cg);
			return r;
		}
	c->cg_made = true;
	for (size_t i = 0; r >= 0 && i < cg->n; i++) {
		const char *file = !strcmp(cg->name[i], "memory") ? "memory.limit_in_bytes"
				   : !strcmp(cg->name[i], "pids") ? "pids.max"
								  : NULL;

		if (!file)
			continue;
		snprintf(path, sizeof(path), "%s/%s", c->cg, file);
		snprintf(v, sizeof(v), "%" PRIu64, file[0] == 'm' ? o->memory : o->pids);
		r = write_at(cg->dir[i], path, v);
	}
	return r;
}

static int cg_place(const struct cgroups *cg, const struct ctr *c)
{
	char path[128], v[16];
	int r = 0;

	snprintf(path, sizeof(path), "%s/cgroup.procs", c->cg);
	snprintf(v, sizeof(v), "%d", (int)c->pid);
	for (size_t i = 0; r >= 0 && i < cg->n; i++)
		r = write_at(cg->dir[i], path, v);
	return r;
}

/* ---- the parent's half of a start ---- */

static int write_map(pid_t pid, const char *file, uint64_t base)
{
	char path[64], text[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	snprintf(text, sizeof(text), "0 %" PRIu64 " %u\n", base, SLICE);
	return write_at(AT_FDCWD, path, text);
}

static int fs_set(int fs, unsigned cmd, const char *key, const void *value, int aux)
{
	return fsconfig(fs, cmd, key, value, aux) < 0 ? -errno : 0;
}

/* The container's writable layer: a tmpfs of its own attached at
 * LAYERS/<its cgroup name> (as xosd mounts a job's layer on the host: an
 * overlay's upper layer cannot be a detached mount on this kernel) with
 * upper/ (owned by the container's root) and work/ in it; their fds. */
static int make_layer(int layers, struct ctr *c, uint64_t base, int *ret_upper, int *ret_work)
{
	_cleanup_close_ int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
	_cleanup_close_ int mnt = -EBADF, up = -EBADF, wk = -EBADF;
	int r;

	if (fs < 0)
		return -errno;
	r = fs_set(fs, FSCONFIG_SET_STRING, "source", "xos-direct-layer", 0);
	r = r < 0 ? r : fs_set(fs, FSCONFIG_SET_STRING, "size", "64m", 0);
	r = r < 0 ? r : fs_set(fs, FSCONFIG_SET_STRING, "nr_inodes", "16384", 0);
	r = r < 0 ? r : fs_set(fs, FSCONFIG_SET_STRING, "mode", "0755", 0);
	r = r < 0 ? r : fs_set(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
	if (r < 0)
		return r;
	mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
	if (mnt < 0)
		return -errno;
	if (mkdirat(layers, c->cg, 0700) < 0)
		return -errno;
	if (move_mount(mnt, "", layers, c->cg, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
		r = -errno;
		unlinkat(layers, c->cg, AT_REMOVEDIR);
		return r;
	}
	c->layer_made = true; /* (from here on layer_remove undoes it) */
	if (mkdirat(mnt, "upper", 0755) < 0 || mkdirat(mnt, "work", 0700) < 0)
		return -errno;
	if (fchownat(mnt, "upper", (uid_t)base, (gid_t)base, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	up = openat(mnt, "upper", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	wk = openat(mnt, "work", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (up < 0 || wk < 0)
		return -errno;
	*ret_upper = take_fd(&up);
	*ret_work = take_fd(&wk);
	return 0;
}

/* The layer unmounted and its mount point removed (its upper dir with it) */
static int layer_remove(const struct opts *o, const struct host *h, struct ctr *c)
{
	char path[4096];
	int n;

	if (!c->layer_made)
		return 0;
	n = snprintf(path, sizeof(path), "%s/%s", o->layers, c->cg);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	while (umount2(path, MNT_DETACH) == 0)
		;
	if (errno != EINVAL && errno != ENOENT)
		return -errno;
	if (unlinkat(h->layers, c->cg, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return -errno;
	c->layer_made = false;
	return 0;
}

/* The overlay of lower (an idmapped clone), upper and work, detached;
 * xino=on as xos mounts it, without where the kernel refuses it. */
static int make_overlay(int lower, int upper, int work)
{
	for (int xino = 1; xino >= 0; xino--) {
		_cleanup_close_ int fs = fsopen("overlay", FSOPEN_CLOEXEC);
		int r, mnt;

		if (fs < 0)
			return -errno;
		r = fs_set(fs, FSCONFIG_SET_STRING, "source", "xos-direct", 0);
		r = r < 0 ? r : fs_set(fs, FSCONFIG_SET_FD, "lowerdir+", NULL, lower);
		r = r < 0 ? r : fs_set(fs, FSCONFIG_SET_FD, "upperdir", NULL, upper);
		r = r < 0 ? r : fs_set(fs, FSCONFIG_SET_FD, "workdir", NULL, work);
		if (xino)
			r = r < 0 ? r : fs_set(fs, FSCONFIG_SET_STRING, "xino", "on", 0);
		r = r < 0 ? r : fs_set(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
		if (r == -EINVAL && xino)
			continue;
		if (r < 0)
			return r;
		mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
		return mnt < 0 ? -errno : mnt;
	}
	return -EINVAL;
}

/* The container's root for child pid (its user namespace has its maps). */
static int make_root(const struct opts *o, const struct host *h, struct ctr *c, uint64_t base)
{
	_cleanup_close_ int ns = -EBADF, lower = -EBADF, up = -EBADF, wk = -EBADF;
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP };
	char path[64];
	int r;

	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)c->pid);
	ns = open(path, O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		return -errno;
	lower = open_tree(AT_FDCWD, o->lower, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (lower < 0)
		return -errno;
	attr.userns_fd = (uint64_t)ns;
	if (mount_setattr(lower, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
		return -errno;
	r = make_layer(h->layers, c, base, &up, &wk);
	return r < 0 ? r : make_overlay(lower, up, wk);
}

static int send_fd(int sock, int fd)
{
	char byte = 'g';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u = { 0 };
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &m, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

/* 0 once the child has executed INIT (the socket closed on exec), else the
 * child's error (*ret_step says where) */
static int await_exec(int sock, int *ret_step)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };
	struct child_err e;
	ssize_t n;
	int r;

	*ret_step = -1;
	do
		r = poll(&p, 1, START_TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	n = recv(sock, &e, sizeof(e), 0);
	if (n == 0)
		return 0;
	if (n != (ssize_t)sizeof(e))
		return n < 0 ? -errno : -EPROTO;
	*ret_step = e.step >= 0 && e.step < _STEP_MAX ? e.step : -1;
	return e.err > 0 ? -e.err : -EPROTO;
}

/* ---- the child: only system calls, then exec or _exit ---- */

__attribute__((noreturn)) static void child_fail(int sock, enum step s)
{
	struct child_err e = { .step = (int32_t)s, .err = errno ? errno : EIO };

	(void)!write(sock, &e, sizeof(e));
	_exit(127);
}

static int recv_fd(int sock)
{
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c;
	ssize_t n;
	int fd;

	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	c = n == 1 ? CMSG_FIRSTHDR(&m) : NULL;
	if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) {
		errno = n < 0 ? errno : EPROTO;
		return -1;
	}
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* /dev: a tmpfs, the usual nodes bound from the host, a devpts of its own */
static void child_dev(const struct child_args *a)
{
	int fd;

	if (mount("xos-dev", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=500000,mode=755") < 0)
		child_fail(a->sock, STEP_DEV_TMPFS);
	if (mkdir("dev/pts", 0755) < 0 || mkdir("dev/shm", 01777) < 0)
		child_fail(a->sock, STEP_DEV_DIR);
	for (size_t i = 0; i < ELEMENTSOF(dev_nodes); i++) {
		fd = open(a->dev_dst[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0);
		if (fd < 0)
			child_fail(a->sock, STEP_DEV_NODE);
		close(fd);
		if (mount(a->dev_src[i], a->dev_dst[i], NULL, MS_BIND, NULL) < 0)
			child_fail(a->sock, STEP_DEV_BIND);
	}
	for (size_t i = 0; i < ELEMENTSOF(dev_links); i++)
		if (symlink(dev_links[i][0], dev_links[i][1]) < 0)
			child_fail(a->sock, STEP_DEV_LINK);
	if (mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620,gid=5,max=256") < 0)
		child_fail(a->sock, STEP_DEVPTS);
}

/* proc as LXC's proc:mixed (/proc/sys and sysrq-trigger read-only), sysfs
 * read-only */
static void child_proc_sys(const struct child_args *a)
{
	const unsigned long fl = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	static const char *const ro[] = { "proc/sys", "proc/sysrq-trigger" };

	if (mount("proc", "proc", "proc", fl, NULL) < 0)
		child_fail(a->sock, STEP_PROC);
	for (size_t i = 0; i < ELEMENTSOF(ro); i++) {
		if (mount(ro[i], ro[i], NULL, MS_BIND, NULL) < 0) {
			if (errno == ENOENT) /* (no sysrq-trigger in this kernel) */
				continue;
			child_fail(a->sock, STEP_PROC_RO);
		}
		if (mount(NULL, ro[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | fl, NULL) < 0)
			child_fail(a->sock, STEP_PROC_RO);
	}
	if (mount("sysfs", "sys", "sysfs", fl | MS_RDONLY, NULL) < 0)
		child_fail(a->sock, STEP_SYSFS);
}

static void child_loopback(const struct child_args *a)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		child_fail(a->sock, STEP_LOOPBACK);
	memcpy(ifr.ifr_name, "lo", sizeof("lo"));
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		child_fail(a->sock, STEP_LOOPBACK);
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		child_fail(a->sock, STEP_LOOPBACK);
	close(fd);
}

__attribute__((noreturn)) static void child_main(const struct child_args *a)
{
	int root;

	errno = 0;
	root = recv_fd(a->sock); /* (the parent has written the maps and placed us) */
	if (root < 0)
		child_fail(a->sock, STEP_RECV);
	if (unshare(CLONE_NEWCGROUP) < 0)
		child_fail(a->sock, STEP_CGROUPNS);
	if (syscall(SYS_setresgid, 0, 0, 0) < 0 || syscall(SYS_setgroups, 0, NULL) < 0 ||
	    syscall(SYS_setresuid, 0, 0, 0) < 0)
		child_fail(a->sock, STEP_CREDS);
	/* (after the uid change, which clears it: a probe must leave nothing) */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		child_fail(a->sock, STEP_PDEATHSIG);
	umask(0);
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		child_fail(a->sock, STEP_SLAVE);
	if (move_mount(root, "", AT_FDCWD, a->o->mnt, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		child_fail(a->sock, STEP_ATTACH);
	close(root);
	if (chdir(a->o->mnt) < 0)
		child_fail(a->sock, STEP_CHDIR);
	child_dev(a);
	child_proc_sys(a);
	if (syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		child_fail(a->sock, STEP_PIVOT);
	if (sethostname(a->hostname, strlen(a->hostname)) < 0)
		child_fail(a->sock, STEP_HOSTNAME);
	child_loopback(a);
	for (size_t i = 0; i < ELEMENTSOF(cap_drops); i++)
		if (prctl(PR_CAPBSET_DROP, cap_drops[i], 0, 0, 0) < 0)
			child_fail(a->sock, STEP_CAPS);
	umask(022);
	if (sigprocmask(SIG_SETMASK, &a->no_signals, NULL) < 0)
		child_fail(a->sock, STEP_SIGMASK);
	execve(a->o->init[0], a->o->init, init_env);
	child_fail(a->sock, STEP_EXEC);
}

/* clone3 as a fork (no stack: the child runs on a copy of ours) */
struct clone_args_v0 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static pid_t clone3_fork(uint64_t flags, int *ret_pidfd)
{
	struct clone_args_v0 ca = { .flags = flags | CLONE_PIDFD,
				    .pidfd = (uint64_t)(uintptr_t)ret_pidfd,
				    .exit_signal = SIGCHLD };

	return (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
}

static void ctr_kill(struct ctr *c)
{
	siginfo_t si;

	if (c->pidfd < 0)
		return;
	(void)pidfd_send_signal(c->pidfd, SIGKILL, NULL, 0);
	while (waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED) < 0 && errno == EINTR)
		;
	closep(&c->pidfd);
}

/* (the strings the child needs, made before the clone) */
static void child_args_init(struct child_args *a, unsigned seq)
{
	snprintf(a->hostname, sizeof(a->hostname), "direct-%u", seq);
	for (size_t i = 0; i < ELEMENTSOF(dev_nodes); i++) {
		snprintf(a->dev_src[i], sizeof(a->dev_src[i]), "/dev/%s", dev_nodes[i]);
		snprintf(a->dev_dst[i], sizeof(a->dev_dst[i]), "dev/%s", dev_nodes[i]);
	}
	sigemptyset(&a->no_signals);
}

/* Start one container; on failure nothing of it is left. */
static int ctr_start(const struct opts *o, const struct host *h, unsigned seq, struct ctr *c)
{
	const uint64_t ns = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS |
			    CLONE_NEWIPC | CLONE_NEWNET;
	_cleanup_close_ int root = -EBADF;
	struct child_args a = { .o = o };
	uint64_t base = o->id_base + (((uint64_t)getpid() + seq) % o->slices) * SLICE;
	int sv[2], r, step = -1;
	const char *where = "make its cgroups";

	*c = (struct ctr){ .pidfd = -EBADF };
	snprintf(c->cg, sizeof(c->cg), "c%d.%u", (int)getpid(), seq);
	child_args_init(&a, seq);
	r = cg_make(&h->cg, o, c);
	if (r < 0)
		goto err;
	where = "make its socket";
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		r = -errno;
		goto err;
	}
	c->pid = clone3_fork(ns, &c->pidfd);
	if (c->pid == 0) {
		close(sv[0]);
		a.sock = sv[1];
		child_main(&a);
	}
	close(sv[1]);
	where = "clone";
	r = c->pid < 0 ? -errno : 0;
	if (r >= 0) {
		where = "write its id maps";
		r = write_map(c->pid, "uid_map", base);
		r = r < 0 ? r : write_map(c->pid, "gid_map", base);
	}
	if (r >= 0) {
		where = "put it into its cgroups";
		r = cg_place(&h->cg, c);
	}
	if (r >= 0) {
		where = "make its root";
		root = r = make_root(o, h, c, base);
	}
	if (r >= 0) {
		where = "hand over its root";
		r = send_fd(sv[0], root);
	}
	if (r >= 0) {
		where = "start it";
		r = await_exec(sv[0], &step);
	}
	close(sv[0]);
	if (r >= 0)
		return 0;
err:
	fprintf(stderr, "direct-start: Failed to %s%s%s for container %u: %s\n", where,
		step >= 0 ? ": " : "", step >= 0 ? step_names[step] : "", seq, strerror(-r));
	ctr_kill(c);
	(void)layer_remove(o, h, c);
	(void)cg_remove(&h->cg, c);
	return r;
}

/* INIT's wait status once it has ended; its layer and cgroups removed */
static int ctr_wait(const struct opts *o, const struct host *h, struct ctr *c)
{
	siginfo_t si = { 0 };
	int r;

	while (waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED) < 0)
		if (errno != EINTR)
			return -errno;
	closep(&c->pidfd);
	r = layer_remove(o, h, c);
	if (r < 0)
		fprintf(stderr, "direct-start: Failed to remove layer %s: %s\n", c->cg,
			strerror(-r));
	r = cg_remove(&h->cg, c);
	if (r < 0)
		fprintf(stderr, "direct-start: Failed to remove cgroup %s: %s\n", c->cg,
			strerror(-r));
	return si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
}

/* ---- the commands ---- */

static double cpu_us(void)
{
	struct rusage self, kids;

	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	return (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec +
			kids.ru_stime.tv_sec) *
		       1e6 +
	       (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec + kids.ru_utime.tv_usec +
			kids.ru_stime.tv_usec);
}

static int cmd_run(const struct opts *o, const struct host *h, uint64_t count)
{
	uint64_t w0 = now_us(CLOCK_MONOTONIC), to_exec = 0, bad = 0;

	for (uint64_t i = 0; i < count; i++) {
		uint64_t s = now_us(CLOCK_MONOTONIC);
		struct ctr c;

		if (ctr_start(o, h, (unsigned)i, &c) < 0)
			return 1;
		to_exec += now_us(CLOCK_MONOTONIC) - s;
		bad += ctr_wait(o, h, &c) != 0;
	}
	if (o->verbose && count)
		fprintf(stderr,
			"direct-start: %" PRIu64 " starts, %.0f us wall (%.0f us until INIT is "
			"executed) and %.0f us CPU (this process and its children) per start\n",
			count, (double)(now_us(CLOCK_MONOTONIC) - w0) / (double)count,
			(double)to_exec / (double)count, cpu_us() / (double)count);
	return bad ? 1 : 0;
}

static int cmd_hold(const struct opts *o, const struct host *h, uint64_t count)
{
	_cleanup_free_ struct ctr *c = calloc(count ? count : 1, sizeof(*c));
	_cleanup_close_ int sfd = -EBADF;
	struct signalfd_siginfo si;
	uint64_t n = 0;
	sigset_t mask;
	int rc = 0;

	if (!c)
		return 1;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		fprintf(stderr, "direct-start: Failed to make a signalfd: %s\n", strerror(errno));
		return 1;
	}
	for (; n < count; n++) {
		struct pollfd p = { .fd = sfd, .events = POLLIN };

		if (poll(&p, 1, 0) > 0 || ctr_start(o, h, (unsigned)n, &c[n]) < 0) {
			rc = 1; /* (told to stop while starting, or a start failed) */
			break;
		}
	}
	if (rc == 0) {
		printf("ready %" PRIu64 "\n", n);
		fflush(stdout);
		while (read(sfd, &si, sizeof(si)) < 0 && errno == EINTR)
			;
	}
	for (uint64_t i = 0; i < n; i++)
		(void)pidfd_send_signal(c[i].pidfd, SIGKILL, NULL, 0);
	for (uint64_t i = 0; i < n; i++)
		(void)ctr_wait(o, h, &c[i]);
	printf("stopped %" PRIu64 "\n", n);
	return rc;
}

static void usage(FILE *f)
{
	fputs("usage: direct-start -r LOWER -m DIR -l LAYERS -g CGROUP [-c LIST] -b BASE -s SLICES\n"
	      "                    [-M BYTES] [-P N] [-v] run [-n COUNT] -- INIT [ARG...]\n"
	      "       direct-start ... hold COUNT -- INIT [ARG...]\n"
	      "A probe of a container start without liblxc (see the top of direct-start.c).\n",
	      f);
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	int c;

	while ((c = getopt(argc, argv, "+r:m:l:g:c:b:s:M:P:vh")) != -1) {
		int r = 0;

		switch (c) {
		case 'r':
			o->lower = optarg;
			break;
		case 'm':
			o->mnt = optarg;
			break;
		case 'l':
			o->layers = optarg;
			break;
		case 'g':
			o->cg_parent = optarg;
			break;
		case 'c':
			o->cg_list = optarg;
			break;
		case 'b':
			r = parse_u64(optarg, &o->id_base);
			break;
		case 's':
			r = parse_u64(optarg, &o->slices);
			break;
		case 'M':
			r = parse_u64(optarg, &o->memory);
			break;
		case 'P':
			r = parse_u64(optarg, &o->pids);
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -EINVAL;
		}
		if (r < 0)
			return r;
	}
	if (!o->lower || !o->mnt || !o->layers || !o->cg_parent || !o->id_base || !o->slices ||
	    o->id_base + o->slices * SLICE > UINT32_MAX || strstr(o->cg_parent, ".."))
		return -EINVAL;
	return optind;
}

int main(int argc, char **argv)
{
	struct opts o = { .cg_list = "memory,cpu,cpuacct,pids,freezer,systemd,unified",
			  .memory = 256ULL << 20,
			  .pids = 1024 };
	struct host h = { .layers = -EBADF };
	uint64_t count = 1;
	const char *cmd;
	int i = parse_opts(argc, argv, &o), rc, r;

	if (i < 0 || i >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[i++];
	if (!strcmp(cmd, "hold")) {
		if (i >= argc || parse_u64(argv[i++], &count) < 0) {
			usage(stderr);
			return 2;
		}
	} else if (!strcmp(cmd, "run")) {
		if (i + 1 < argc && !strcmp(argv[i], "-n")) {
			if (parse_u64(argv[i + 1], &count) < 0) {
				usage(stderr);
				return 2;
			}
			i += 2;
		}
	} else {
		usage(stderr);
		return 2;
	}
	if (i >= argc || strcmp(argv[i], "--") || i + 1 >= argc) {
		usage(stderr);
		return 2;
	}
	o.init = argv + i + 1;
	if (geteuid() != 0) {
		fputs("direct-start: Must run as root (namespaces, cgroups, id maps)\n", stderr);
		return 1;
	}
	r = cg_open(&h.cg, o.cg_list, o.cg_parent);
	if (r < 0) {
		fprintf(stderr, "direct-start: Failed to open cgroup %s in each of %s: %s\n",
			o.cg_parent, o.cg_list, strerror(-r));
		cg_close(&h.cg);
		return 1;
	}
	h.layers = open(o.layers, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (h.layers < 0) {
		fprintf(stderr, "direct-start: Failed to open %s: %s\n", o.layers, strerror(errno));
		cg_close(&h.cg);
		return 1;
	}
	rc = cmd[0] == 'h' ? cmd_hold(&o, &h, count) : cmd_run(&o, &h, count);
	closep(&h.layers);
	cg_close(&h.cg);
	return rc;
}
