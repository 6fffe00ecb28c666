/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Start-up of the loader: inherited fds, its directories and log, loopback,
 * masked /proc and /sys paths, signal handling. */
#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "loader/loader-internal.h"

int loader_close_inherited_fds(void)
{
	long max;

	if (close_range(3, ~0U, 0) == 0)
		return 0;
	if (errno != ENOSYS && errno != EINVAL)
		return -errno;
	max = sysconf(_SC_OPEN_MAX);
	for (long fd = 3; fd < (max > 0 ? max : 65536); fd++)
		close((int)fd);
	return 0;
}

static int open_subdir(int dir_fd, const char *name)
{
	if (mkdirat(dir_fd, name, 0700) < 0 && errno != EEXIST)
		return -errno;
	return open_dir_at(dir_fd, name);
}

int loader_open_dirs(struct loader *l, const char *dir)
{
	l->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dir_fd < 0)
		return -errno;
	l->in_fd = open_subdir(l->dir_fd, "in");
	if (l->in_fd < 0)
		return l->in_fd;
	l->spool_fd = open_subdir(l->dir_fd, "spool");
	if (l->spool_fd < 0)
		return l->spool_fd;
	l->null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (l->null_fd < 0)
		return -errno;
	return 0;
}

/* stdin from /dev/null, stdout and stderr to spool/loader.log */
int loader_redirect_stdio(struct loader *l)
{
	_cleanup_close_ int log_fd = -EBADF;

	log_fd = openat(l->spool_fd, "loader.log",
			O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	if (log_fd < 0)
		return -errno;
	if (dup2(l->null_fd, STDIN_FILENO) < 0 || dup2(log_fd, STDOUT_FILENO) < 0 ||
	    dup2(log_fd, STDERR_FILENO) < 0)
		return -errno;
	return 0;
}

/* A network namespace starts with lo down: bring it up. */
int loader_loopback_up(void)
{
	_cleanup_close_ int fd = -EBADF;
	struct ifreq ifr = { 0 };

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memcpy(ifr.ifr_name, "lo", sizeof("lo"));
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	if (ifr.ifr_flags & IFF_UP)
		return 0;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return -errno;
	return 1;
}

static const char *const masked_files[] = {
	"/proc/kcore",       "/proc/keys",          "/proc/timer_list",
	"/proc/sched_debug", "/proc/latency_stats", "/proc/sysrq-trigger",
};
static const char *const masked_dirs[] = { "/proc/acpi", "/proc/scsi", "/sys/firmware" };
/* the empty directory the masked directories are binds of: on LXC's /dev
 * tmpfs, which CRIU dumps anyway (root's, 0555, hidden from ls) */
#define MASK_DIR "/dev/.xos-mask"

/* Make a fresh bind mount read-only, keeping the flags the kernel locks. */
static int remount_bind_ro(const char *path)
{
	const unsigned long keep = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME |
				   MS_RELATIME;
	struct statvfs sv;
	unsigned long flags;

	if (statvfs(path, &sv) < 0)
		return -errno;
	flags = MS_BIND | MS_REMOUNT | MS_RDONLY | (sv.f_flag & keep);
	if (mount(NULL, path, NULL, flags, NULL) < 0)
		return -errno;
	return 0;
}

/* Returns 1 if masked, 0 if path does not exist, -errno on failure. A
 * directory is hidden under a read-only bind of an empty directory
 * (*first_dir: MASK_DIR in the container's /dev, else the first masked
 * directory, under an empty read-only tmpfs of its own): no file system of
 * their own, which CRIU would dump (tar | gzip) and restore each time. */
static int mask_one(const char *path, bool dir, const char **first_dir)
{
	struct stat st;
	int r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (dir && !S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (dir && !*first_dir) { /* (made only where a directory is masked) */
		struct stat mst;

		if ((mkdir(MASK_DIR, 0555) == 0 || errno == EEXIST) && lstat(MASK_DIR, &mst) == 0 &&
		    S_ISDIR(mst.st_mode)) {
			*first_dir = MASK_DIR;
		} else {
			if (mount("tmpfs", path, "tmpfs",
				  MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
				  "mode=0555,size=4k") < 0)
				return -errno;
			*first_dir = path;
			return 1;
		}
	}
	if (!dir && S_ISDIR(st.st_mode))
		return -EISDIR;
	if (mount(dir ? *first_dir : "/dev/null", path, NULL, MS_BIND, NULL) < 0)
		return -errno;
	r = remount_bind_ro(path);
	if (r < 0) {
		umount2(path, MNT_DETACH);
		return r;
	}
	return 1;
}

void loader_mask_paths(void)
{
	unsigned masked = 0, failed = 0;
	const char *first_dir = NULL;

	for (size_t i = 0; i < ELEMENTSOF(masked_files) + ELEMENTSOF(masked_dirs); i++) {
		bool dir = i >= ELEMENTSOF(masked_files);
		const char *p = dir ? masked_dirs[i - ELEMENTSOF(masked_files)] : masked_files[i];
		int r = mask_one(p, dir, &first_dir);

		if (r > 0)
			masked++;
		else if (r < 0) {
			failed++;
			errno = -r;
			log_warn("Failed to mask %s, it stays visible to jobs: %m", p);
		}
	}
	if (failed)
		log_warn("Masked %u paths, %u could not be masked", masked, failed);
	else
		log_info("Masked %u sensitive paths", masked);
}

/* Signals the loader reads from its signalfd. The handler never runs (they
 * are blocked), but it must not be SIG_DFL: the kernel drops such signals
 * for the init of a pid namespace before they are even queued. */
static const int handled_signals[] = {
	SIGCHLD, SIGUSR1, SIGUSR2,  SIGTERM, SIGINT,  SIGHUP,  SIGQUIT,
	SIGPWR,  SIGCONT, SIGWINCH, SIGALRM, SIGPIPE, SIGTTIN, SIGTTOU,
};

static void noop_handler(int sig)
{
}

int loader_signals_setup(struct loader *l)
{
	struct sigaction sa = { .sa_handler = noop_handler, .sa_flags = SA_RESTART };

	sigemptyset(&l->handled);
	sigfillset(&sa.sa_mask);
	for (size_t i = 0; i < ELEMENTSOF(handled_signals); i++) {
		int sig = handled_signals[i];

		sa.sa_flags = SA_RESTART | (sig == SIGCHLD ? SA_NOCLDSTOP : 0);
		if (sigaction(sig, &sa, NULL) < 0)
			return -errno;
		sigaddset(&l->handled, sig);
	}
	if (sigprocmask(SIG_BLOCK, &l->handled, NULL) < 0)
		return -errno;
	l->sig_fd = signalfd(-1, &l->handled, SFD_NONBLOCK | SFD_CLOEXEC);
	if (l->sig_fd < 0)
		return -errno;
	return 0;
}

/* In a forked child, before exec: default dispositions for every signal
 * (an ignored signal inherited from LXC or xosd would survive exec), nothing
 * blocked. Async-signal-safe. */
void loader_signals_reset_child(const sigset_t *handled)
{
	struct sigaction sa = { .sa_handler = SIG_DFL };
	sigset_t none;

	sigemptyset(&sa.sa_mask);
	(void)handled;
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}
