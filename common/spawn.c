/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Running a program in a child: its fds placed, a pipe it reports on, and a
 * wait with a time limit (common.h, "running programs"). */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "common/common.h"

/* In the child: fds[i] (or the report pipe's write end) becomes first + i,
 * every fd above them is closed. Async-signal-safe calls only. */
static int place_fds(const struct spawn_opts *o, int report)
{
	int tmp[SPAWN_FDS_MAX];
	int top = o->first_fd + (int)o->n_fds;

	/* first out of the way of the targets (no CLOEXEC: they are closed below) */
	for (size_t i = 0; i < o->n_fds; i++) {
		int fd = o->fds[i] == SPAWN_REPORT ? report : o->fds[i];

		tmp[i] = fd >= 0 ? fcntl(fd, F_DUPFD, top) : -EBADF;
		if (fd >= 0 && tmp[i] < 0)
			return -1;
	}
	for (size_t i = 0; i < o->n_fds; i++) {
		int target = o->first_fd + (int)i;

		if (tmp[i] < 0)
			close(target);
		else if (dup2(tmp[i], target) < 0)
			return -1;
	}
	close_range((unsigned)top, ~0U, 0);
	return 0;
}

static _noreturn_ void child(const struct spawn_opts *o, pid_t parent, int report)
{
	sigset_t none;

	if ((o->flags & SPAWN_PDEATHSIG) &&
	    (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent))
		_exit(127);
	if (place_fds(o, report) < 0)
		_exit(127);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL); /* the caller may block signals */
	if (o->flags & SPAWN_SIGPIPE_DEFAULT)
		signal(SIGPIPE, SIG_DFL);
	if (o->flags & SPAWN_SETSID)
		setsid();
	execve(o->path, o->argv, o->envp ? o->envp : environ);
	_exit(127);
}

int spawn_program(const struct spawn_opts *o, pid_t *ret_pid, int *ret_report)
{
	int p[2], r;
	pid_t parent = getpid(), pid;

	if (o->n_fds > SPAWN_FDS_MAX)
		return -EINVAL;
	if (pipe2(p, O_CLOEXEC | ((o->flags & SPAWN_REPORT_NONBLOCK) ? O_NONBLOCK : 0)) < 0)
		return -errno;
	if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) {
		r = -errno;
		goto err_pipe;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		goto err_pipe;
	}
	if (pid == 0)
		child(o, parent, p[1]);
	close(p[1]);
	*ret_pid = pid;
	*ret_report = p[0];
	return 0;

err_pipe:
	close(p[0]);
	close(p[1]);
	return r;
}

int spawn_wait(pid_t pid, uint64_t timeout_us, int *ret_status)
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
