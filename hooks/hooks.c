/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Running the node owner's hooks (hooks.h). */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "common/common.h"
#include "hooks/hooks.h"

static const char *const events[_HOOK_EVENT_MAX] = {
	[HOOK_PRESTART] = "prestart",           [HOOK_POSTSTOP] = "poststop",
	[HOOK_PRECHECKPOINT] = "precheckpoint", [HOOK_POSTCHECKPOINT] = "postcheckpoint",
	[HOOK_POSTRESTORE] = "postrestore",
};

const char *hook_event_to_string(enum hook_event e)
{
	return e >= 0 && e < _HOOK_EVENT_MAX ? events[e] : NULL;
}

enum hook_event hook_event_from_string(const char *s)
{
	for (int i = 0; i < _HOOK_EVENT_MAX; i++)
		if (s && !strcmp(s, events[i]))
			return (enum hook_event)i;
	return _HOOK_EVENT_INVALID;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The executables of dir/event, sorted; an absent directory has none. */
static int list_hooks(int evfd, char ***ret)
{
	DIR *d = fdopendir(fcntl(evfd, F_DUPFD_CLOEXEC, 3));
	_cleanup_strv_free_ char **v = NULL;
	struct dirent *de;
	int r = 0;

	if (!d)
		return -errno;
	while (r >= 0 && (de = readdir(d))) {
		struct stat st;

		if (de->d_name[0] == '.' || fstatat(evfd, de->d_name, &st, 0) < 0 ||
		    !S_ISREG(st.st_mode) || !(st.st_mode & 0111))
			continue;
		r = strv_push(&v, strdup(de->d_name));
	}
	closedir(d);
	if (r < 0)
		return r;
	if (v)
		qsort(v, strv_length(v), sizeof(char *), cmp_str);
	*ret = TAKE_PTR(v);
	return 0;
}

static _noreturn_ void exec_hook(const char *path, const char *name, int in, int err,
				 enum hook_event e, const char *job_id)
{
	char *argv[] = { (char *)name, (char *)hook_event_to_string(e), (char *)job_id, NULL };
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (dup2(in, 0) < 0 || dup2(null, 1) < 0 || dup2(err, 2) < 0)
		_exit(127);
	setenv("XOS_HOOK_EVENT", hook_event_to_string(e), 1);
	setenv("XOS_JOB_ID", job_id, 1);
	setsid();
	/* by path: a script run through execveat(dirfd) would get /dev/fd/N,
	 * closed on exec, as its name */
	execve(path, argv, environ);
	_exit(127);
}

/* Wait for the hook, at most timeout_us; -ETIME after killing it. */
static int wait_hook(pid_t pid, uint64_t timeout_us, int *ret_status)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	uint64_t end = mono_usec() + timeout_us;
	int r = 0;

	while (pfd >= 0) {
		uint64_t now = mono_usec();
		struct pollfd p = { .fd = pfd, .events = POLLIN };

		if (now >= end) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			r = -ETIME;
			break;
		}
		if (poll(&p, 1, (int)((end - now) / 1000) + 1) > 0)
			break;
	}
	if (pfd >= 0)
		close(pfd);
	while (waitpid(pid, ret_status, 0) < 0 && errno == EINTR)
		;
	return r;
}

static int run_one(const char *dir, const char *name, enum hook_event e, const char *job_id,
		   const char *input, size_t len, uint64_t timeout_us, char **ret_msg)
{
	_cleanup_free_ char *path = xstrdup_printf("%s/%s/%s", dir, hook_event_to_string(e), name);
	_cleanup_close_ int in = memfd_create("xos-hook-input", MFD_CLOEXEC);
	int p[2], status = 0, r;
	char err[1024] = "";
	ssize_t n;
	pid_t pid;

	if (!path)
		return -ENOMEM;
	if (in < 0 || loop_write(in, input, len) < 0 || lseek(in, 0, SEEK_SET) < 0)
		return -errno;
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		return r;
	}
	if (pid == 0)
		exec_hook(path, name, in, p[1], e, job_id);
	close(p[1]);
	r = wait_hook(pid, timeout_us, &status);
	n = read(p[0], err, sizeof(err) - 1);
	close(p[0]);
	err[n > 0 ? n : 0] = 0;
	err[strcspn(err, "\n")] = 0;
	if (r == -ETIME)
		*ret_msg = xstrdup_printf("%s: killed after %llu s (the time limit)", name,
					  (unsigned long long)(timeout_us / 1000000));
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	else if (err[0])
		*ret_msg = xstrdup_printf("%s: %s", name, err);
	else if (WIFEXITED(status))
		*ret_msg = xstrdup_printf("%s: exited with status %d", name, WEXITSTATUS(status));
	else
		*ret_msg = xstrdup_printf("%s: killed by signal %d", name, WTERMSIG(status));
	return r == -ETIME ? r : -EPERM;
}

int hook_run(const char *dir, enum hook_event e, const char *job_id, const char *input, size_t len,
	     uint64_t timeout_us, char **ret_msg)
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), evfd = -EBADF;
	_cleanup_strv_free_ char **names = NULL;
	int r;

	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	evfd = openat(dfd, hook_event_to_string(e), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (evfd < 0)
		return errno == ENOENT ? 0 : -errno;
	r = list_hooks(evfd, &names);
	for (size_t i = 0; r >= 0 && names && names[i]; i++)
		r = run_one(dir, names[i], e, job_id, input, len, timeout_us, ret_msg);
	return r;
}

bool hook_event_has_dir(const char *dir, enum hook_event e)
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;

	/* (anything but a clear "not there" lets hook_run look and say) */
	if (dfd < 0)
		return errno != ENOENT;
	return fstatat(dfd, hook_event_to_string(e), &st, 0) < 0 ? errno != ENOENT : true;
}

int hook_run_detached(const char *dir, enum hook_event e, const char *job_id, const char *input,
		      size_t len, uint64_t timeout_us)
{
	int status = 0;
	pid_t pid;

	/* most nodes have no hooks: no two forks of xosd per job for nothing */
	if (!hook_event_has_dir(dir, e))
		return 0;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (fork() != 0)
			_exit(0);
		close_range(3, ~0U, 0);
		{
			char *msg = NULL;

			_exit(hook_run(dir, e, job_id, input, len, timeout_us, &msg) < 0);
		}
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return 0;
}
