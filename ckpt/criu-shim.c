/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The CRIU that liblxc runs for a dump: xos-criu-helper (or xosd itself),
 * through a link named criu first on the dump's PATH, which runs the real
 * CRIU without liblxc's --freeze-cgroup. CRIU seizes a frozen cgroup's tasks with PTRACE_SEIZE; on
 * a cgroup v1 freezer (kernel 6.1 and later) a task that was already stopped
 * (SIGSTOP) never leaves the freezer to take the trap, so the seize waits
 * forever in ptrace_attach (state D) until the cgroup is thawed. Without
 * --freeze-cgroup CRIU seizes the tree from the container's init, as its own
 * zdtm runner does, stopped tasks included (they are restored stopped), and
 * the tasks are just as still: ptrace-stopped from the seize to the end.
 * A restore runs through it too, for its "criu --version" (shim_version);
 * with XOS_CRIU_LAZY=local it restores with lazy pages (shim_lazy_restore). */
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "ckpt/ckpt-internal.h"

#define SHIM_ENV "XOS_CRIU"
#define SHIM_DIR "criu-shim"
#define SHIM_CACHE_ENV "XOS_CRIU_CACHE" /* the shim's directory */
#define LAZY_ENV CKPT_LAZY_RESTORE_ENV  /* "local" or a socket: restores take pages lazily */
#define LAZY_SOCKET "lazy-pages.socket"
#define LAZY_WAIT_MS 5000

bool ckpt_is_criu_shim(const char *argv0)
{
	const char *base = argv0 ? strrchr(argv0, '/') : NULL;

	base = base ? base + 1 : argv0; /* (liblxc runs "criu --version" by name) */
	return base && !strcmp(base, "criu") && getenv(SHIM_ENV);
}

size_t ckpt_criu_shim_argv(int argc, char **argv, const char *real, char **ret_args)
{
	size_t n = 0;

	ret_args[n++] = (char *)real;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--freeze-cgroup") && i + 1 < argc) {
			i++;
			continue;
		}
		if (!strncmp(argv[i], "--freeze-cgroup=", 16))
			continue;
		ret_args[n++] = argv[i];
	}
	ret_args[n] = NULL;
	return n;
}

/* The value of a CRIU option in argv, given by its short or long name
 * ("-D DIR", "--images-dir DIR", "--images-dir=DIR"); NULL if absent. */
const char *ckpt_criu_option(int argc, char **argv, const char *shortname, const char *longname)
{
	size_t ll = strlen(longname);

	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], shortname) || !strcmp(argv[i], longname)) && i + 1 < argc)
			return argv[i + 1];
		if (!strncmp(argv[i], longname, ll) && argv[i][ll] == '=')
			return argv[i] + ll + 1;
	}
	return NULL;
}

size_t ckpt_criu_lazy_argv(const char *real, const char *images, const char *work, const char *ps,
			   char **ret_args)
{
	size_t n = 0;

	ret_args[n++] = (char *)real;
	ret_args[n++] = (char *)"lazy-pages";
	ret_args[n++] = (char *)"-D";
	ret_args[n++] = (char *)images;
	ret_args[n++] = (char *)"-W";
	ret_args[n++] = (char *)work;
	ret_args[n++] = (char *)"-o";
	ret_args[n++] = (char *)"lazy-pages.log";
	ret_args[n++] = (char *)"-v4";
	if (ps) { /* the pages come from a page server on that descriptor */
		ret_args[n++] = (char *)"--page-server";
		ret_args[n++] = (char *)"--ps-socket";
		ret_args[n++] = (char *)ps;
	}
	ret_args[n] = NULL;
	return n;
}

/* A connected socket to the UNIX socket at path, close-on-exec. */
static int connect_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path) >= (int)sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

/* Forks twice: the daemon's parent is the shim's child, which exits at once,
 * so the daemon is never a child of the CRIU restore the shim becomes (which
 * would not reap it) but of whoever reaps orphans. Returns its pid. */
static pid_t lazy_daemon_spawn(char **args)
{
	int pfd[2], status;
	pid_t pid, daemon = -1;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -errno;
	}
	if (pid == 0) {
		pid_t d = fork();

		if (d == 0) {
			execv(args[0], args);
			_exit(127);
		}
		_exit(write(pfd[1], &d, sizeof(d)) == (ssize_t)sizeof(d) && d > 0 ? 0 : 1);
	}
	close(pfd[1]);
	if (read(pfd[0], &daemon, sizeof(daemon)) != (ssize_t)sizeof(daemon))
		daemon = -ECHILD;
	close(pfd[0]);
	(void)waitpid(pid, &status, 0);
	return daemon;
}

/* CRIU's lazy-pages daemon for a restore whose images are in images (and
 * its socket in work): started, and its socket there, within LAZY_WAIT_MS.
 * It serves the pages from the images, as the restored tasks touch them and
 * in the background, and ends when it has given them all. */
static int lazy_daemon_start(const char *real, const char *images, const char *work, const char *ps)
{
	_cleanup_close_ int wfd = open(work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int pidfd = -1;
	char *args[CKPT_LAZY_ARGS_MAX];
	pid_t pid;

	if (wfd < 0)
		return -errno;
	(void)unlinkat(wfd, LAZY_SOCKET, 0); /* (one a failed restore left) */
	ckpt_criu_lazy_argv(real, images, work, ps, args);
	pid = lazy_daemon_spawn(args);
	if (pid < 0)
		return pid;
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	for (int ms = 0; ms < LAZY_WAIT_MS; ms += 10) {
		struct pollfd p = { .fd = pidfd, .events = POLLIN };

		if (faccessat(wfd, LAZY_SOCKET, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			return 0;
		if (pidfd >= 0 ? poll(&p, 1, 10) > 0 : (usleep(10000), false))
			return -ECHILD; /* (it ended: its pid cannot have been reused) */
	}
	if (pidfd >= 0)
		(void)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	return -ETIMEDOUT;
}

/* A restore with lazy pages: the lazy-pages daemon first, then CRIU's
 * restore with --lazy-pages (DECISIONS (ar)). */
static int shim_lazy_restore(const char *real, int argc, char **argv, char **args, size_t n)
{
	const char *images = ckpt_criu_option(argc, argv, "-D", "--images-dir");
	const char *work = ckpt_criu_option(argc, argv, "-W", "--work-dir");
	const char *lazy = getenv(LAZY_ENV);
	char ps[16];
	int r, fd = -EBADF;

	if (!images) {
		fprintf(stderr, "xosd: No images directory in the restore's arguments\n");
		return 127;
	}
	/* post-copy: the daemon's page server is xosd's relay to the source */
	if (lazy && lazy[0] == '/') {
		fd = connect_unix(lazy);
		if (fd < 0 || fcntl(fd, F_SETFD, 0) < 0) {
			fprintf(stderr, "xosd: Cannot reach the page relay %s: %s\n", lazy,
				strerror(fd < 0 ? -fd : errno));
			return 127;
		}
		snprintf(ps, sizeof(ps), "%d", fd);
	}
	r = lazy_daemon_start(real, images, work ? work : images, fd >= 0 ? ps : NULL);
	if (fd >= 0)
		close(fd); /* (the daemon has it: its end is the relay's EOF) */
	if (r < 0) {
		fprintf(stderr, "xosd: CRIU's lazy-pages daemon did not start in %s: %s\n", images,
			strerror(-r));
		return 127;
	}
	args[n++] = (char *)"--lazy-pages";
	args[n] = NULL;
	unsetenv(LAZY_ENV);
	execv(real, args);
	fprintf(stderr, "xosd: Cannot run %s: %s\n", real, strerror(errno));
	return 127;
}

/* The guard of a lazy dump (a process of its own, forked off twice): it
 * holds a second descriptor of the page socket's relay end, so that xosd's
 * end going (xosd killed) is no EOF for CRIU, which would take it for the
 * pull's end and kill the tasks. It waits on its connection to xosd: the
 * byte CKPT_LAZY_GUARD_OFF, and it ends; an EOF without it (xosd gone), and
 * it writes CRIU a request CRIU does not know: the dump fails and the tasks
 * run on at this node (DECISIONS (ar)). */
static _noreturn_ void lazy_guard(int conn, int relay)
{
	static const unsigned char abort_req[CKPT_LAZY_ABORT_LEN] = { [0 ... CKPT_LAZY_ABORT_LEN -
								       1] = 0xff };
	int a = fcntl(conn, F_DUPFD_CLOEXEC, 10), b = fcntl(relay, F_DUPFD_CLOEXEC, 10);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	char c = 0;
	ssize_t k;

	signal(SIGPIPE, SIG_IGN);
	/* (nothing of liblxc's: it reads CRIU's output to its end) */
	if (a < 0 || b < 0 || null < 0 || dup2(null, STDIN_FILENO) < 0 ||
	    dup2(null, STDOUT_FILENO) < 0 || dup2(null, STDERR_FILENO) < 0 || dup2(a, 3) < 0 ||
	    dup2(b, 4) < 0)
		_exit(1);
	close_range(5, ~0U, 0);
	while ((k = read(3, &c, 1)) < 0 && errno == EINTR)
		;
	if (k == 1 && c == CKPT_LAZY_GUARD_OFF)
		_exit(0);
	(void)loop_write(4, abort_req, sizeof(abort_req));
	_exit(0);
}

/* A lazy dump (post-copy): CRIU's page socket and status pipe, their other
 * ends handed to xosd's relay at path (SCM_RIGHTS), the guard forked off,
 * then CRIU runs with --lazy-pages --ps-socket --status-fd. */
static int shim_lazy_dump(const char *real, const char *path, char **args, size_t n)
{
	int sp[2] = { -EBADF, -EBADF }, st[2] = { -EBADF, -EBADF }, conn, fds[2];
	char cbuf[CMSG_SPACE(sizeof(fds))] = { 0 }, one = 'p';
	static char ps_arg[16], st_arg[16];
	struct iovec iov = { .iov_base = &one, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	pid_t pid;

	conn = connect_unix(path);
	if (conn < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0 ||
	    pipe2(st, O_CLOEXEC) < 0) {
		fprintf(stderr, "xosd: Cannot reach the page relay %s: %s\n", path,
			strerror(conn < 0 ? -conn : errno));
		return 127;
	}
	fds[0] = sp[1];
	fds[1] = st[0];
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	if (sendmsg(conn, &mh, MSG_NOSIGNAL) != 1) {
		fprintf(stderr, "xosd: Cannot hand the page socket to %s: %m\n", path);
		return 127;
	}
	pid = fork();
	if (pid == 0) {
		if (fork() == 0)
			lazy_guard(conn, sp[1]);
		_exit(0);
	}
	if (pid < 0) {
		fprintf(stderr, "xosd: Cannot fork the page socket's guard: %m\n");
		return 127;
	}
	(void)waitpid(pid, NULL, 0);
	close(conn);
	close(sp[1]);
	close(st[0]);
	if (fcntl(sp[0], F_SETFD, 0) < 0 || fcntl(st[1], F_SETFD, 0) < 0)
		return 127;
	snprintf(ps_arg, sizeof(ps_arg), "%d", sp[0]);
	snprintf(st_arg, sizeof(st_arg), "%d", st[1]);
	args[n++] = (char *)"--lazy-pages";
	args[n++] = (char *)"--ps-socket";
	args[n++] = ps_arg;
	args[n++] = (char *)"--status-fd";
	args[n++] = st_arg;
	args[n] = NULL;
	unsetenv(CKPT_LAZY_DUMP_ENV);
	execv(real, args);
	fprintf(stderr, "xosd: Cannot run %s: %s\n", real, strerror(errno));
	return 127;
}

/* The name of the cached answer of this CRIU binary to --version: a new
 * binary (an upgrade) has another. */
static int version_cache_name(const char *real, char *buf, size_t len)
{
	char stamp[128];
	int r = file_stamp(real, stamp, sizeof(stamp));

	if (r < 0)
		return r;
	r = snprintf(buf, len, "version.%s", stamp);
	return r < 0 || (size_t)r >= len ? -ENAMETOOLONG : 0;
}

/* "criu --version", which liblxc asks before every dump and restore: the
 * answer is kept in the shim's directory the first time and given from there
 * afterwards, without starting CRIU (about 25 ms of CPU; DECISIONS (au)). */
static int shim_version(const char *real)
{
	const char *dir = getenv(SHIM_CACHE_ENV);
	_cleanup_close_ int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -EBADF;
	_cleanup_free_ char *text = NULL;
	char name[160], out[4096];
	size_t len = 0, n = 0;
	int p[2], status = 0;
	bool cacheable = dfd >= 0 && version_cache_name(real, name, sizeof(name)) >= 0;
	pid_t pid;

	if (cacheable && read_file_at(dfd, name, sizeof(out), &text, &len) >= 0 && len > 0)
		return loop_write(STDOUT_FILENO, text, len) < 0 ? 1 : 0;
	if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0)
		return 127;
	if (pid == 0) {
		if (dup2(p[1], STDOUT_FILENO) < 0)
			_exit(127);
		execv(real, (char *[]){ (char *)real, (char *)"--version", NULL });
		_exit(127);
	}
	close(p[1]);
	for (ssize_t k; n < sizeof(out) && (k = read(p[0], out + n, sizeof(out) - n)) != 0;)
		if (k > 0)
			n += (size_t)k;
		else if (errno != EINTR)
			break;
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return WIFEXITED(status) ? WEXITSTATUS(status) : 127;
	if (cacheable && n < sizeof(out) && !strncmp(out, "Version: ", 9))
		(void)write_file_atomic_at(dfd, name, out, n, 0600, false);
	return loop_write(STDOUT_FILENO, out, n) < 0 ? 1 : 0;
}

int ckpt_criu_shim(int argc, char **argv)
{
	const char *real = getenv(SHIM_ENV), *lazy = getenv(LAZY_ENV);
	const char *ps = getenv(CKPT_LAZY_DUMP_ENV);
	_cleanup_free_ char **args = calloc((size_t)argc + 8, sizeof(char *));
	size_t n;

	if (!real || real[0] != '/' || !args) {
		fprintf(stderr, "xosd: No CRIU to run (" SHIM_ENV " is not an absolute path)\n");
		return 127;
	}
	if (argc == 2 && !strcmp(argv[1], "--version"))
		return shim_version(real);
	n = ckpt_criu_shim_argv(argc, argv, real, args);
	unsetenv(SHIM_ENV);
	unsetenv(SHIM_CACHE_ENV);
	if (lazy && (!strcmp(lazy, "local") || lazy[0] == '/') && argc > 1 &&
	    !strcmp(argv[1], "restore"))
		return shim_lazy_restore(real, argc, argv, args, n);
	if (ps && ps[0] == '/' && argc > 1 && !strcmp(argv[1], "dump"))
		return shim_lazy_dump(real, ps, args, n);
	execv(real, args);
	fprintf(stderr, "xosd: Cannot run %s: %s\n", real, strerror(errno));
	return 127;
}

/* The first executable criu on PATH that is not the shim. */
static int find_criu(const char *shim_dir, char *buf, size_t len)
{
	const char *path = getenv("PATH");

	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		bool shim = n == strlen(shim_dir) && !strncmp(p, shim_dir, n);

		/* (a copy and a suffix: GCC's sanitizer build calls "%.*s" of p null) */
		if (n && p[0] == '/' && !shim && n + sizeof("/criu") <= len) {
			memcpy(buf, p, n);
			memcpy(buf + n, "/criu", sizeof("/criu"));
			if (access(buf, X_OK) == 0)
				return 0;
		}
		p += n;
		if (*p == ':')
			p++;
	}
	return -ENOENT;
}

/* A path CRIU's action script may have (CRIU runs it through sh -c). */
static bool shell_plain(const char *path)
{
	return path && path[0] == '/' && !strpbrk(path, " \t\n'\"\\$`;&|<>*?()[]{}!#~");
}

const char *ckpt_criu_helper(struct ckpt *ck, char *buf, size_t len)
{
	const char *slash = ck->self_exe ? strrchr(ck->self_exe, '/') : NULL;
	int n;

	if (slash) { /* beside xosd: a build tree, or both in one directory */
		n = snprintf(buf, len, "%.*s/" CRIU_HELPER_BIN, (int)(slash - ck->self_exe),
			     ck->self_exe);
		if (n > 0 && (size_t)n < len && shell_plain(buf) && access(buf, X_OK) == 0)
			return buf;
	}
	n = snprintf(buf, len, "%s", XOS_LIBEXECDIR "/" CRIU_HELPER_BIN);
	if (n > 0 && (size_t)n < len && shell_plain(buf) && access(buf, X_OK) == 0)
		return buf;
	return ck->self_exe; /* (xosd can play both parts, only slower to start) */
}

/* In a dump's child, before liblxc runs CRIU: <run_dir>/criu-shim/criu is
 * a link to the helper, first on PATH; XOS_CRIU names the real CRIU. */
int ckpt_criu_shim_setup(struct ckpt *ck, const char *helper)
{
	_cleanup_close_ int run = open(ck->cfg->run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int dir = -EBADF;
	_cleanup_free_ char *path = NULL;
	char shim[4096], real[4096], tmp[64];
	int r = snprintf(shim, sizeof(shim), "%s/" SHIM_DIR, ck->cfg->run_dir);

	if (r < 0 || (size_t)r >= sizeof(shim))
		return -ENAMETOOLONG;
	if (run < 0)
		return -errno;
	if ((r = find_criu(shim, real, sizeof(real))) < 0)
		return r;
	if (mkdirat(run, SHIM_DIR, 0700) < 0 && errno != EEXIST)
		return -errno;
	dir = open_dir_at(run, SHIM_DIR);
	if (dir < 0)
		return dir;
	/* (several dumps may set it up at once: each renames its own link over) */
	snprintf(tmp, sizeof(tmp), ".criu.%d", (int)getpid());
	(void)unlinkat(dir, tmp, 0);
	if (symlinkat(helper, dir, tmp) < 0 || renameat(dir, tmp, dir, "criu") < 0)
		return -errno;
	path = xstrdup_printf("%s:%s", shim, getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	if (!path || setenv(SHIM_ENV, real, 1) < 0 || setenv(SHIM_CACHE_ENV, shim, 1) < 0 ||
	    setenv("PATH", path, 1) < 0)
		return -ENOMEM;
	return 0;
}

/* ---- the action script: copies made while the container is frozen ---- */
static int action_copy(const char *src, const char *dest, const char *name, uint64_t *bytes)
{
	/* (src's last component, the spool or upper directory, is the container
	 * root's to replace: never followed) */
	_cleanup_close_ int s = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_close_ int d = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (s < 0 || d < 0)
		return -errno;
	return copy_tree_at(s, ".", d, name, bytes);
}

/* "INO PATH\0" for each name of a file with several (below dir, path its
 * path in the layer): the rollback of a kept layer links them again (a
 * link CRIU made for the dump, link_remap.N, among them; DECISIONS (ao)) */
static int links_walk(int dir, char *path, size_t len, FILE *out, unsigned depth)
{
	DIR *d = opendir_dup(dir);
	struct dirent *de;
	int r = 0;

	if (!d)
		return -errno;
	while (r >= 0 && depth < 256 && (de = readdir(d))) {
		struct stat st;
		int n;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    fstatat(dir, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		n = snprintf(path + len, PATH_MAX - len, "%s%s", len ? "/" : "", de->d_name);
		if (n < 0 || (size_t)n >= PATH_MAX - len)
			continue;
		if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
			fprintf(out, "%llu %s", (unsigned long long)st.st_ino, path);
			fputc(0, out);
		} else if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sub = open_dir_at(dir, de->d_name);

			r = sub < 0 ? sub : links_walk(sub, path, len + (size_t)n, out, depth + 1);
		}
		path[len] = 0;
	}
	closedir(d);
	return r;
}

static int action_links(const char *src, const char *dest)
{
	_cleanup_close_ int s = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_close_ int d = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *text = NULL, *path = calloc(1, PATH_MAX);
	size_t len = 0;
	FILE *out;
	int r;

	if (s < 0 || d < 0)
		return -errno;
	if (!path || !(out = open_memstream(&text, &len)))
		return -ENOMEM;
	r = links_walk(s, path, 0, out, 0);
	if (fclose(out) != 0 && r >= 0)
		r = -ENOMEM;
	return r < 0 ? r : write_file_atomic_at(d, "links", text, len, 0600, true);
}

int ckpt_action(void)
{
	const char *action = getenv("CRTOOLS_SCRIPT_ACTION");
	const char *dest = getenv("XOS_CKPT_DEST"), *upper = getenv("XOS_CKPT_UPPER");
	const char *spool = getenv("XOS_CKPT_SPOOL");
	uint64_t ub = 0, sb = 0;
	char sizes[64];
	int r, n;

	if (!action || strcmp(action, "post-dump") != 0)
		return 0;
	if (!dest || !upper || !spool)
		return 1;
	r = action_copy(upper, dest, "upper", &ub);
	if (r >= 0)
		r = action_copy(spool, dest, "spool", &sb);
	if (r >= 0)
		r = action_links(upper, dest);
	if (r < 0) {
		fprintf(stderr, "xosd: Failed to copy the job's files into %s: %s\n", dest,
			strerror(-r));
		return 1;
	}
	n = snprintf(sizes, sizeof(sizes), "%llu %llu\n", (unsigned long long)ub,
		     (unsigned long long)sb);
	{
		_cleanup_close_ int d = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		r = d < 0 ? -errno : write_file_atomic_at(d, "sizes", sizes, (size_t)n, 0600, true);
	}
	return r < 0 ? 1 : 0;
}
