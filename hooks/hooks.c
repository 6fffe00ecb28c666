/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Running the node owner's hooks (hooks.h). */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
	DIR *d = opendir_dup(evfd);
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

/* The caller's environment with XOS_HOOK_EVENT and XOS_JOB_ID set (made
 * before the fork: the child only executes). */
static int hook_env(const char *event, const char *job_id, char ***ret)
{
	_cleanup_strv_free_ char **v = NULL;
	int r = 0;

	for (char **p = environ; r >= 0 && p && *p; p++)
		if (!str_has_prefix(*p, "XOS_HOOK_EVENT=") && !str_has_prefix(*p, "XOS_JOB_ID="))
			r = strv_push(&v, strdup(*p));
	r = r ?: strv_push(&v, xstrdup_printf("XOS_HOOK_EVENT=%s", event));
	r = r ?: strv_push(&v, xstrdup_printf("XOS_JOB_ID=%s", job_id));
	if (r < 0)
		return r;
	*ret = TAKE_PTR(v);
	return 0;
}

/* How a hook that failed ended (r: spawn_wait's), for *ret_msg. */
static char *hook_failure(const char *name, int r, int status, const char *err, uint64_t timeout_us)
{
	if (r == -ETIME)
		return xstrdup_printf("%s: killed after %llu s (the time limit)", name,
				      (unsigned long long)(timeout_us / 1000000));
	if (err[0])
		return xstrdup_printf("%s: %s", name, err);
	if (WIFEXITED(status))
		return xstrdup_printf("%s: exited with status %d", name, WEXITSTATUS(status));
	return xstrdup_printf("%s: killed by signal %d", name, WTERMSIG(status));
}

static int run_one(const char *dir, const char *name, enum hook_event e, const char *job_id,
		   const char *input, size_t len, uint64_t timeout_us, char **ret_msg)
{
	const char *event = hook_event_to_string(e);
	_cleanup_free_ char *path = event ? xstrdup_printf("%s/%s/%s", dir, event, name) : NULL;
	_cleanup_close_ int in = memfd_create("xos-hook-input", MFD_CLOEXEC), err_fd = -EBADF;
	_cleanup_close_ int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	_cleanup_strv_free_ char **env = NULL;
	char *argv[] = { (char *)name, (char *)event, (char *)job_id, NULL };
	struct spawn_opts o = { .argv = argv,
				.first_fd = 0,
				.fds = { in, null, SPAWN_REPORT },
				.n_fds = 3,
				.flags = SPAWN_SETSID | SPAWN_SIGPIPE_DEFAULT |
					 SPAWN_REPORT_NONBLOCK };
	int status = 0, r;
	char err[1024] = "";
	ssize_t n;
	pid_t pid;

	if (!path)
		return -ENOMEM;
	if (in < 0 || null < 0 || loop_write(in, input, len) < 0 || lseek(in, 0, SEEK_SET) < 0)
		return -errno;
	if ((r = hook_env(event, job_id, &env)) < 0)
		return r;
	/* by path: a script run through execveat(dirfd) would get /dev/fd/N,
	 * closed on exec, as its name */
	o.path = path;
	o.envp = env;
	if ((r = spawn_program(&o, &pid, &err_fd)) < 0)
		return r;
	r = spawn_wait(pid, timeout_us, &status);
	n = read(err_fd, err, sizeof(err) - 1);
	err[n > 0 ? n : 0] = 0;
	err[strcspn(err, "\n")] = 0;
	if (r != -ETIME && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	*ret_msg = hook_failure(name, r, status, err, timeout_us);
	return r == -ETIME ? r : -EPERM;
}

int hook_run(const char *dir, enum hook_event e, const char *job_id, const char *input, size_t len,
	     uint64_t timeout_us, struct xerr *err)
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), evfd = -EBADF;
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_free_ char *msg = NULL;
	int r;

	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	evfd = openat(dfd, hook_event_to_string(e), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (evfd < 0)
		return errno == ENOENT ? 0 : -errno;
	r = list_hooks(evfd, &names);
	for (size_t i = 0; r >= 0 && names && names[i]; i++)
		r = run_one(dir, names[i], e, job_id, input, len, timeout_us, &msg);
	if (r < 0)
		return xerr_set_msg(err, r, NULL, msg);
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
		_exit(hook_run(dir, e, job_id, input, len, timeout_us, NULL) < 0);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return 0;
}
