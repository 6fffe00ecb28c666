/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Volumes: host directories bind-mounted into a job (xrun -v, the owner's
 * home). A source is opened by a child that has become the submitting user,
 * so the kernel checks that user's access on every path component; the O_PATH
 * fd it hands back is what LXC mounts (as /proc/self/fd/N), so nothing can be
 * swapped between the check and the mount. */
#include <fcntl.h>
#include <grp.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/runtime-internal.h"

/* Host trees no volume may expose unless the node allows it (when root owns
 * the directory): the system and xos's own state. */
static const char *const system_trees[] = {
	"/bin",  "/boot", "/dev",  "/etc", "/lib", "/lib32",   "/lib64",   "/libx32",  "/proc",
	"/root", "/run",  "/sbin", "/sys", "/usr", "/var/lib", "/var/log", "/var/run",
};

static bool path_under(const char *path, const char *top)
{
	size_t n = strlen(top);

	return !strncmp(path, top, n) && (path[n] == 0 || path[n] == '/');
}

int volume_check_target(const char *dst, const char **ret_why)
{
	static const char *const reserved[] = { "/.xos", "/proc", "/sys", "/dev" };
	const char *p = dst;

	if (!dst || dst[0] != '/' || strlen(dst) >= 4096) {
		*ret_why = "the path inside the job must be absolute";
		return -EINVAL;
	}
	for (; *p; p += strcspn(p, "/")) {
		size_t n;

		p += strspn(p, "/");
		n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
			*ret_why = "the path inside the job may not contain '.' or '..'";
			return -EINVAL;
		}
	}
	if (strspn(dst, "/") == strlen(dst)) {
		*ret_why = "the job's root cannot be a volume";
		return -EINVAL;
	}
	if (strpbrk(dst, "\n\t\\ ,")) {
		*ret_why = "the path inside the job may not contain spaces, tabs, commas, "
			   "backslashes or newlines";
		return -EINVAL;
	}
	for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
		if (path_under(dst, reserved[i])) {
			*ret_why = "the path inside the job is reserved (/.xos, /proc, /sys, /dev)";
			return -EINVAL;
		}
	return 0;
}

/* In a child: become the account (uid 0: stay root). 0 or an errno. Only
 * system calls: xosd has threads. */
static int become(uid_t uid, gid_t gid, const gid_t *groups, size_t ng)
{
	if (uid != 0 &&
	    (syscall(SYS_setgroups, ng, groups) < 0 || syscall(SYS_setresgid, gid, gid, gid) < 0 ||
	     syscall(SYS_setresuid, uid, uid, uid) < 0))
		return errno;
	return 0;
}

/* In the child: become the account, open src, check access, send the fd back
 * (or an errno). */
static _noreturn_ void open_child(int sock, uid_t uid, gid_t gid, const gid_t *groups, size_t ng,
				  const char *src, bool ro)
{
	int err = become(uid, gid, groups, ng), fd;

	fd = err ? -1 : open(src, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (!err && fd < 0)
		err = errno;
	if (!err && faccessat(fd, "", R_OK | X_OK | (ro ? 0 : W_OK), AT_EMPTY_PATH) < 0)
		err = errno;
	if (err)
		(void)!write(sock, &err, sizeof(err));
	else
		(void)send_with_fd(sock, &err, sizeof(err), fd);
	_exit(0);
}

static int open_as(uid_t uid, gid_t gid, const gid_t *groups, size_t ng, const char *src, bool ro,
		   int *ret_fd)
{
	_cleanup_close_ int s0 = -EBADF, s1 = -EBADF, fd = -EBADF;
	int sv[2], err = 0, status;
	ssize_t n;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	s0 = sv[0];
	s1 = sv[1];
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		open_child(s1, uid, gid, groups, ng, src, ro);
	closep(&s1);
	n = recv_with_fd(s0, &err, sizeof(err), 0, &fd);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n != sizeof(err))
		return n < 0 ? (int)n : -EIO;
	if (err)
		return -err;
	if (fd < 0)
		return -EIO;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static bool forbidden_place(const struct daemon *d, const char *path, const struct stat *st)
{
	if (path_under(path, d->cfg->state_dir) || path_under(path, d->cfg->run_dir))
		return true;
	if (d->cfg->volume_system_paths || st->st_uid != 0)
		return false;
	if (!strcmp(path, "/"))
		return true;
	for (size_t i = 0; i < ELEMENTSOF(system_trees); i++)
		if (path_under(path, system_trees[i]))
			return true;
	return false;
}

int volume_open_as(const struct daemon *d, uid_t uid, gid_t gid, const gid_t *groups,
		   size_t n_groups, const char *src, bool ro, int *ret_fd, char **ret_path,
		   const char **ret_why)
{
	_cleanup_close_ int fd = -EBADF;
	char link[64], path[4096];
	struct stat st;
	ssize_t n;
	int r;

	if (!src || src[0] != '/') {
		*ret_why = "the host directory must be given as an absolute path";
		return -EINVAL;
	}
	r = open_as(uid, gid, groups, n_groups, src, ro, &fd);
	if (r < 0) {
		*ret_why = r == -EACCES || r == -EPERM ? "you may not access it"
			   : r == -ENOENT              ? "it does not exist"
			   : r == -ENOTDIR             ? "it is not a directory"
			   : r == -EROFS               ? "it is on a read-only file system; add :ro"
						       : "it cannot be opened";
		return r;
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0 || fstat(fd, &st) < 0)
		return -errno;
	path[n] = 0;
	if (forbidden_place(d, path, &st)) {
		*ret_why = "it is a system or xos directory (the node config does not allow it)";
		return -EPERM;
	}
	*ret_path = strdup(path);
	if (!*ret_path)
		return -ENOMEM;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

char *volume_map_cwd(const struct job *j, const char *cwd)
{
	const struct job_volume *best = NULL;

	if (!cwd || cwd[0] != '/')
		return NULL;
	for (size_t i = 0; i < j->n_volumes; i++) {
		const struct job_volume *v = &j->volumes[i];

		if (path_under(cwd, v->src) && (!best || strlen(v->src) > strlen(best->src)))
			best = v;
	}
	if (!best)
		return NULL;
	if (!strcmp(best->src, "/"))
		return xstrdup_printf("%s%s", best->dst, cwd);
	return xstrdup_printf("%s%s", best->dst, cwd + strlen(best->src));
}

/* Each volume's directory, bound at <job>/vol/N from the fd that was checked
 * (in xosd's mount namespace, where that fd's mount is), read-only if asked;
 * LXC binds it from there into the container. */
static int stage(struct daemon *d, struct job *j)
{
	_cleanup_close_ int run = -EBADF, vol = -EBADF;

	if (!j->n_volumes)
		return 0;
	run = daemon_job_rundir(d, j, true);
	if (run < 0)
		return run;
	if (mkdirat(run, "vol", 0711) < 0 && errno != EEXIST)
		return -errno;
	vol = open_dir_at(run, "vol");
	if (vol < 0)
		return vol;
	for (size_t i = 0; i < j->n_volumes; i++) {
		const struct job_volume *v = &j->volumes[i];
		char name[32], src[64], dst[4096];

		snprintf(name, sizeof(name), "%zu", i);
		snprintf(src, sizeof(src), "/proc/self/fd/%d", v->fd);
		snprintf(name, sizeof(name), "vol/%zu", i);
		if (daemon_job_runpath(d, j, name, dst, sizeof(dst)) < 0)
			return -ENAMETOOLONG;
		snprintf(name, sizeof(name), "%zu", i);
		if (v->fd < 0)
			return -EBADF;
		if (mkdirat(vol, name, 0711) < 0 && errno != EEXIST)
			return -errno;
		if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
			return -errno;
		if (mount(NULL, dst, NULL,
			  MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (v->ro ? MS_RDONLY : 0),
			  NULL) < 0)
			return -errno;
	}
	job_close_volume_fds(j);
	return 0;
}

int volume_stage(struct daemon *d, struct job *j, char **ret_error)
{
	int r = stage(d, j);

	if (r < 0) {
		*ret_error = xstrdup_printf("Cannot mount the job's volumes: %s", strerror(-r));
		return r;
	}
	return rootfs_job_targets(d, j, ret_error);
}

/* The credentials volume v of job j is opened (and targets in it are made)
 * with: the owner's (root's when root submitted the job), the job account's
 * for its home. */
struct creds {
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t n_groups;
};

static struct creds volume_creds(const struct job *j, const struct job_volume *v)
{
	bool as_root = !v->home && j->owner_uid == 0;

	return (struct creds){ .uid = as_root ? 0 : j->uid,
			       .gid = j->gid,
			       .groups = as_root ? NULL : j->groups,
			       .n_groups = as_root ? 0 : j->n_groups };
}

int volume_mkdir_target(struct daemon *d, struct job *j, size_t i, const char *rel)
{
	struct creds cr = volume_creds(j, &j->volumes[i]);
	_cleanup_close_ int run = daemon_job_rundir(d, j, false), base = -EBADF;
	_cleanup_close_ int p0 = -EBADF, p1 = -EBADF;
	int p[2], err = 0, status;
	char name[32];
	ssize_t n;
	pid_t pid;

	if (run < 0)
		return run;
	snprintf(name, sizeof(name), "vol/%zu", i);
	base = openat(run, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (base < 0 || pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	p0 = p[0];
	p1 = p[1];
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) { /* as the account: its rights decide, as they did for the source */
		int fd;

		err = become(cr.uid, cr.gid, cr.groups, cr.n_groups);
		fd = err ? -1 : mkdirat_beneath(base, rel, 0755, (uid_t)-1, (gid_t)-1);
		if (!err && fd < 0)
			err = -fd;
		(void)!write(p1, &err, sizeof(err));
		_exit(0);
	}
	closep(&p1);
	n = loop_read(p0, &err, sizeof(err));
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (n != sizeof(err))
		return n < 0 ? (int)n : -EIO;
	return -err;
}

void volume_unstage(struct daemon *d, struct job *j)
{
	_cleanup_close_ int run = daemon_job_rundir(d, j, false), vol = -EBADF;

	if (run < 0 || (vol = open_dir_at(run, "vol")) < 0)
		return;
	for (size_t i = 0; i < j->n_volumes; i++) {
		char name[32], p[4096];

		snprintf(name, sizeof(name), "vol/%zu", i);
		if (daemon_job_runpath(d, j, name, p, sizeof(p)) >= 0)
			while (umount2(p, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
				;
		unlinkat(vol, name + 4, AT_REMOVEDIR);
	}
	unlinkat(run, "vol", AT_REMOVEDIR);
}

static void drop_volume(struct job *j, size_t i)
{
	closep(&j->volumes[i].fd);
	free(j->volumes[i].src);
	free(j->volumes[i].dst);
	memmove(&j->volumes[i], &j->volumes[i + 1], (j->n_volumes - i - 1) * sizeof(*j->volumes));
	j->n_volumes--;
}

/* Open volume v of job j with the credentials it was submitted with: the
 * owner's (root's when root submitted the job), the job account's for its
 * home. *ret_path: the directory it resolves to. */
static int open_volume(struct daemon *d, const struct job *j, struct job_volume *v, char **ret_path,
		       const char **ret_why)
{
	struct creds cr = volume_creds(j, v);

	closep(&v->fd);
	return volume_open_as(d, cr.uid, cr.gid, cr.groups, cr.n_groups, v->src, v->ro, &v->fd,
			      ret_path, ret_why);
}

int volume_open_job(struct daemon *d, struct job *j, bool again, char **ret_error)
{
	size_t i = 0;

	while (i < j->n_volumes) {
		struct job_volume *v = &j->volumes[i];
		_cleanup_free_ char *path = NULL;
		const char *why = NULL;
		int r = open_volume(d, j, v, &path, &why);

		if (r >= 0 && again && strcmp(path, v->src) != 0)
			r = -ESTALE, why = "it now resolves to another directory";
		if (r >= 0) {
			if (!again) {
				free(v->src);
				v->src = TAKE_PTR(path);
			}
			i++;
		} else if (v->home && !again) {
			log_debug("Job %.12s: home %s not mounted: %s", j->id, v->src,
				  why ? why : strerror(-r));
			drop_volume(j, i);
		} else {
			*ret_error = xstrdup_printf("Volume %s: %s", v->src,
						    why ? why : strerror(-r));
			job_close_volume_fds(j);
			return r;
		}
	}
	return 0;
}

int volume_restage(struct daemon *d, struct job *j, char **ret_error)
{
	int r = volume_open_job(d, j, true, ret_error);

	return r < 0 ? r : volume_stage(d, j, ret_error);
}
