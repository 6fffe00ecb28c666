/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The spawner (DECISIONS (bd)): a small child of xosd, forked at the first
 * container start, that forks the children which start containers.
 *
 * A fork of xosd itself copies the page tables of all of xosd's memory and
 * leaves every page of it copy-on-write, shared with the start child and with
 * liblxc's monitor, a fork of that child that lives as long as the container:
 * each later first write of xosd to a page is a fault (a copy where a
 * monitor still maps it), and each running job's monitor keeps the old copy
 * of every page xosd wrote since the job started. The spawner was forked
 * while xosd was small and writes nothing of it; what it forks shares its
 * pages, not xosd's.
 *
 * One SOCK_SEQPACKET socket: xosd sends a start (struct spawn_req and the
 * job's record, the job directory's fd with it) and reads the child's pid;
 * the spawner tells of each child's end (its wait status), which
 * container_start_wait hands to xosd as waitpid would. Where the spawner
 * cannot be used (it could not be made, it died, a request too large), xosd
 * forks as before. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "runtime/runtime-internal.h"

#define SPAWN_MAGIC 0x78737031U /* "xsp1" */
/* a request's most bytes, the job's record included (more: xosd forks) */
#define SPAWN_MSG_MAX (128 * 1024)
/* how long a start's pid may take (the spawner only forks) */
#define SPAWN_REPLY_MS 10000

enum {
	SPAWN_POOLED = 1 << 0, /* the loader waits for its unit (a pooled container) */
	SPAWN_DIRFD = 1 << 1,  /* the job directory's fd comes with it */
};

struct spawn_req {
	uint32_t magic, flags;
	uint32_t engine; /* container_engine_by_id */
	uint64_t hook_timeout_us;
	char id[XOS_JOB_ID_HEX + 1];
	char lxcpath[PATH_MAX];
	char hooks_dir[PATH_MAX]; /* "": no prestart hook is run */
	uint32_t record_len;      /* then the job's record (the hook's input) */
};

enum spawn_kind {
	SPAWN_STARTED = 1, /* value: 0, or -errno (no child) */
	SPAWN_EXITED = 2,  /* value: the child's wait status */
};

struct spawn_msg {
	uint32_t magic, kind;
	int32_t pid, value;
};

struct spawn_kid {
	pid_t pid;
	int pidfd; /* a copy of the one xosd was given: its end if the spawner dies */
	int status;
	bool ended;
};

struct spawner {
	int fd;
	pid_t pid;
	bool dead; /* ended or given up: xosd forks from now on */
	struct spawn_kid *kids;
	size_t n_kids, cap_kids;
};

/* One message, with fd where >= 0; -errno */
static int send_msg_fd(int sock, const void *buf, size_t len, int fd)
{
	ssize_t n;

	do
		n = fd >= 0 ? send_with_fd(sock, buf, len, fd) : send(sock, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

/* ---- the spawner process ---- */

/* A message to xosd, with fd (a pidfd) where >= 0 */
static void send_msg(int sock, enum spawn_kind kind, pid_t pid, int value, int fd)
{
	struct spawn_msg m = { SPAWN_MAGIC, kind, pid, value };

	if (send_msg_fd(sock, &m, sizeof(m), fd) < 0)
		_exit(0); /* (xosd is gone) */
}

static void reap(int sock, int sfd)
{
	struct signalfd_siginfo si;
	int status;
	pid_t pid;

	while (read(sfd, &si, sizeof(si)) == sizeof(si))
		;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		send_msg(sock, SPAWN_EXITED, pid, status, -EBADF);
}

static bool req_valid(const struct spawn_req *q, size_t n)
{
	return n >= sizeof(*q) && q->magic == SPAWN_MAGIC && q->record_len == n - sizeof(*q) &&
	       container_engine_by_id(q->engine) && memchr(q->id, 0, sizeof(q->id)) &&
	       memchr(q->lxcpath, 0, sizeof(q->lxcpath)) &&
	       memchr(q->hooks_dir, 0, sizeof(q->hooks_dir));
}

/* The forked child of request q (its record after it): the start goes on
 * only once xosd holds its pid, on the spawner's go through the pipe go; a
 * spawner that dies before it answered leaves no start behind (xosd then
 * makes it itself) */
static _noreturn_ void start_child(const struct spawn_req *q, const char *record, int dirfd,
				   const int go[2])
{
	struct container_start_args a = {
		.engine = container_engine_by_id(q->engine),
		.id = q->id,
		.pooled = q->flags & SPAWN_POOLED,
		.lxcpath = q->lxcpath,
		.hooks_dir = q->hooks_dir[0] ? q->hooks_dir : NULL,
		.hook_timeout_us = q->hook_timeout_us,
		.record = q->record_len ? record : NULL,
		.record_len = q->record_len,
		.dirfd = dirfd,
	};
	char c;
	ssize_t k;

	close(go[1]);
	while ((k = read(go[0], &c, 1)) < 0 && errno == EINTR)
		;
	if (k != 1)
		_exit(1);
	close(go[0]);
	container_start_child(&a);
}

/* One request: a child forked to start the container, its pid answered */
static void serve(int sock)
{
	static char buf[SPAWN_MSG_MAX];
	const struct spawn_req *q = (const struct spawn_req *)buf;
	const char *fault = getenv("XOS_SPAWNER_FAULT");
	int dirfd = -EBADF, pidfd, go[2], e;
	ssize_t n = recv_with_fd(sock, buf, sizeof(buf), 0, &dirfd);
	pid_t pid;

	if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
		_exit(0); /* xosd closed its end */
	if (n < 0)
		return;
	if (!req_valid(q, (size_t)n) || !(q->flags & SPAWN_DIRFD) != (dirfd < 0)) {
		closep(&dirfd);
		return send_msg(sock, SPAWN_STARTED, 0, -EBADMSG, -EBADF);
	}
	if (pipe2(go, O_CLOEXEC) < 0) {
		closep(&dirfd);
		return send_msg(sock, SPAWN_STARTED, 0, -errno, -EBADF);
	}
	pid = fork();
	if (pid == 0)
		start_child(q, buf + sizeof(*q), dirfd, go);
	e = errno;
	closep(&dirfd);
	closep(&go[0]);
	if (pid < 0) {
		closep(&go[1]);
		return send_msg(sock, SPAWN_STARTED, 0, -e, -EBADF);
	}
	if (fault && !strcmp(fault, "die-before-answer"))
		_exit(0); /* (tests: its child waits for a go that never comes) */
	/* its pidfd goes with it (not yet reaped here, so the pid is the child's;
	 * xosd's pidfd_open of a pid could meet another process by then) */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	send_msg(sock, SPAWN_STARTED, pid, 0, pidfd);
	closep(&pidfd);
	(void)!write(go[1], "g", 1);
	closep(&go[1]);
	if (fault && !strcmp(fault, "die-after-start"))
		_exit(0); /* (tests: the start's end is never told) */
	if (fault && !strcmp(fault, "stop-after-start"))
		(void)raise(SIGSTOP); /* (tests: nor is it, by a spawner that lives on) */
}

static _noreturn_ void spawner_main(int sock, pid_t parent)
{
	sigset_t chld;
	int sfd;

	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	(void)prctl(PR_SET_NAME, "xosd-spawner");
	if (sock != 3 && (dup3(sock, 3, O_CLOEXEC) < 0 || (sock = 3) < 0))
		_exit(1);
	close_range(4, ~0U, 0);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sfd = sigprocmask(SIG_BLOCK, &chld, NULL) < 0
		      ? -1
		      : signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		_exit(1);
	for (;;) {
		struct pollfd p[2] = { { sock, POLLIN, 0 }, { sfd, POLLIN, 0 } };

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		if (p[1].revents)
			reap(sock, sfd);
		if (p[0].revents)
			serve(sock);
	}
}

/* ---- xosd's side ---- */

static int spawner_make(struct daemon *d)
{
	struct spawner *s = calloc(1, sizeof(*s));
	int sv[2], size = 4 * SPAWN_MSG_MAX, r;
	pid_t parent = getpid();

	if (!s)
		return -ENOMEM;
	d->spawner = s;
	s->fd = -EBADF;
	s->dead = true; /* (until it is made) */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* (a request with a large record in one message) */
	(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size));
	(void)setsockopt(sv[1], SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
	s->pid = fork();
	if (s->pid == 0) {
		close(sv[0]);
		spawner_main(sv[1], parent);
	}
	close(sv[1]);
	if (s->pid < 0) {
		close(sv[0]);
		return -errno;
	}
	s->fd = sv[0];
	r = daemon_epoll_add(d, s->fd, EPOLLIN, EP_SPAWNER, NULL);
	if (r < 0) {
		closep(&s->fd);
		kill(s->pid, SIGKILL);
		while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
			;
		return r;
	}
	s->dead = false;
	log_info("Containers are started by the spawner, pid %d", (int)s->pid);
	return 0;
}

static struct spawn_kid *kid_find(struct spawner *s, pid_t pid)
{
	for (size_t i = 0; i < s->n_kids; i++)
		if (s->kids[i].pid == pid)
			return &s->kids[i];
	return NULL;
}

/* The spawner gone or given up: killed, reaped; its children that have
 * not ended are waited for by their pidfds (spawner_wait) */
static void spawner_bury(struct daemon *d, const char *why)
{
	struct spawner *s = d->spawner;

	if (s->dead)
		return;
	s->dead = true;
	log_warn("The container spawner (pid %d) %s; xosd forks to start containers from now on",
		 (int)s->pid, why);
	if (s->fd >= 0)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	closep(&s->fd);
	kill(s->pid, SIGKILL);
	while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* One message of the spawner: wait up to ms (-1: none; 0: only one
 * already there); a pidfd that came with it in *ret_fd (else -EBADF).
 * 1: a message, 0: none (timeout), <0: the spawner failed */
static int spawner_read(struct daemon *d, int ms, struct spawn_msg *ret, int *ret_fd)
{
	struct spawner *s = d->spawner;
	struct pollfd p = { s->fd, POLLIN, 0 };
	ssize_t n;
	int r;

	*ret_fd = -EBADF;
	while ((r = poll(&p, 1, ms)) < 0 && errno == EINTR)
		;
	if (r <= 0)
		return r < 0 ? -errno : 0;
	n = recv_with_fd(s->fd, ret, sizeof(*ret), MSG_DONTWAIT, ret_fd);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n != sizeof(*ret) || ret->magic != SPAWN_MAGIC ||
	    (*ret_fd >= 0 && ret->kind != SPAWN_STARTED)) {
		closep(ret_fd);
		return n == 0 ? -EPIPE : n < 0 ? -errno : -EBADMSG;
	}
	return 1;
}

/* A child's end, as the spawner told it */
static int kid_ended(struct spawner *s, const struct spawn_msg *m)
{
	struct spawn_kid *k = kid_find(s, m->pid);

	if (!k)
		return -ESRCH; /* (not ours: the spawner is not to be trusted) */
	k->ended = true;
	k->status = m->value;
	return 0;
}

void spawner_event(struct daemon *d)
{
	struct spawn_msg m;
	int r, fd;

	if (!d->spawner || d->spawner->dead)
		return;
	while ((r = spawner_read(d, 0, &m, &fd)) > 0 && m.kind == SPAWN_EXITED &&
	       kid_ended(d->spawner, &m) >= 0)
		;
	closep(&fd);
	if (r < 0)
		spawner_bury(d, r == -EPIPE ? "ended" : "sent what it should not");
	else if (r > 0)
		spawner_bury(d, "sent what it should not");
}

static int kid_add(struct spawner *s, pid_t pid)
{
	if (s->n_kids == s->cap_kids) {
		size_t cap = s->cap_kids ? 2 * s->cap_kids : 16;
		struct spawn_kid *k = realloc(s->kids, cap * sizeof(*k));

		if (!k)
			return -ENOMEM;
		s->kids = k;
		s->cap_kids = cap;
	}
	s->kids[s->n_kids++] = (struct spawn_kid){ .pid = pid, .pidfd = -EBADF };
	return 0;
}

/* The request for a's start (with its record); -E2BIG: too large for one */
static int spawn_request(const struct container_start_args *a, struct spawn_req **ret,
			 size_t *ret_len)
{
	size_t len = sizeof(struct spawn_req) + a->record_len;
	struct spawn_req *q;

	if (len > SPAWN_MSG_MAX)
		return -E2BIG;
	q = calloc(1, len);
	if (!q)
		return -ENOMEM;
	*q = (struct spawn_req){ .magic = SPAWN_MAGIC,
				 .flags = (a->pooled ? SPAWN_POOLED : 0) |
					  (a->dirfd >= 0 ? SPAWN_DIRFD : 0),
				 .engine = container_engine_id(a->engine),
				 .hook_timeout_us = a->hook_timeout_us,
				 .record_len = (uint32_t)a->record_len };
	if (snprintf(q->id, sizeof(q->id), "%s", a->id) >= (int)sizeof(q->id) ||
	    snprintf(q->lxcpath, sizeof(q->lxcpath), "%s", a->lxcpath) >= (int)sizeof(q->lxcpath) ||
	    snprintf(q->hooks_dir, sizeof(q->hooks_dir), "%s", a->hooks_dir ? a->hooks_dir : "") >=
		    (int)sizeof(q->hooks_dir)) {
		free(q);
		return -ENAMETOOLONG;
	}
	if (a->record_len)
		memcpy(q + 1, a->record, a->record_len);
	*ret = q;
	*ret_len = len;
	return 0;
}

/* Its answer to a start: the child's pid (ends of others read meanwhile
 * are kept for spawner_wait). 0, or -errno of the spawner's fork (nothing
 * started); -ENOTCONN: the spawner ended before it answered (nothing
 * started: its child starts only on the go it gives after answering);
 * -EIO: no answer that says (the spawner is to be given up) */
static int spawn_reply(struct daemon *d, pid_t *ret_pid, int *ret_pidfd, const char **ret_why)
{
	struct spawn_msg m;
	int r, fd;

	for (;;) {
		r = spawner_read(d, SPAWN_REPLY_MS, &m, &fd);
		*ret_why = r == 0 ? "did not answer" : r == -EPIPE ? "ended" : "failed";
		if (r == -EPIPE) /* (its child, if any, waits for a go that never comes) */
			return -ENOTCONN;
		if (r <= 0)
			return -EIO;
		if (m.kind == SPAWN_EXITED) {
			if (kid_ended(d->spawner, &m) < 0)
				return -EIO;
			continue;
		}
		if (m.kind != SPAWN_STARTED || (m.value == 0) != (m.pid > 0) || m.value > 0 ||
		    m.value == -EIO) {
			closep(&fd);
			return -EIO;
		}
		*ret_pid = m.pid;
		*ret_pidfd = fd;
		return m.value;
	}
}

int spawner_start(struct daemon *d, const struct container_start_args *a, pid_t *ret_pid,
		  int *ret_pidfd)
{
	_cleanup_free_ struct spawn_req *q = NULL;
	const char *why = "failed";
	size_t len;
	pid_t pid = 0;
	int r, pidfd = -EBADF;

	if (!d->spawner && (r = spawner_make(d)) < 0)
		log_warn("Failed to make the container spawner: %s; xosd forks to start "
			 "containers",
			 strerror(-r));
	if (!d->spawner || d->spawner->dead)
		return -ENOTCONN;
	if ((r = spawn_request(a, &q, &len)) < 0 || (r = kid_add(d->spawner, 0)) < 0)
		return r; /* (nothing sent: this start is forked by xosd) */
	r = send_msg_fd(d->spawner->fd, q, len, a->dirfd);
	if (r < 0) { /* (not sent: nothing started) */
		why = r == -EPIPE || r == -ECONNRESET ? "ended" : "failed";
		r = -ENOTCONN;
	} else {
		r = spawn_reply(d, &pid, &pidfd, &why);
	}
	if (r < 0) {
		d->spawner->n_kids--; /* (the slot made for it) */
		if (r == -EIO || r == -ENOTCONN)
			spawner_bury(d, why);
		return r;
	}
	d->spawner->kids[d->spawner->n_kids - 1].pid = pid;
	if (pidfd >= 0)
		d->spawner->kids[d->spawner->n_kids - 1].pidfd = fcntl(pidfd, F_DUPFD_CLOEXEC, 3);
	*ret_pid = pid;
	*ret_pidfd = pidfd;
	return 0;
}

/* A child of a spawner that is gone: its end waited for by its pidfd, but
 * no status to be had (taken as a start that failed) */
static int orphan_wait(struct spawn_kid *k)
{
	struct pollfd p = { k->pidfd, POLLIN, 0 };

	if (k->pidfd >= 0)
		while (poll(&p, 1, -1) < 0 && errno == EINTR)
			;
	return W_EXITCODE(1, 0);
}

int spawner_wait(struct daemon *d, pid_t pid, int *ret_status)
{
	struct spawner *s = d->spawner;
	struct spawn_kid *k = s && pid > 0 ? kid_find(s, pid) : NULL;
	struct spawn_msg m;
	uint64_t deadline;
	int r = 0, fd;

	if (!k)
		return -ENOENT; /* (xosd's own child) */
	/* bounded: a spawner that is stopped never tells, and xosd's loop must
	 * not wait for it for ever (its child's end is then waited for by its
	 * pidfd) */
	deadline = mono_usec() + SPAWN_REPLY_MS * 1000ULL;
	while (!k->ended && !s->dead) { /* (kids are not added meanwhile: k stays) */
		uint64_t now = mono_usec();

		if (now >= deadline) {
			spawner_bury(d, "did not tell a start's end");
			break;
		}
		r = spawner_read(d, (int)((deadline - now) / 1000) + 1, &m, &fd);
		if (r > 0 && (m.kind != SPAWN_EXITED || kid_ended(s, &m) < 0))
			r = -EBADMSG;
		closep(&fd);
		if (r < 0)
			spawner_bury(d, r == -EPIPE ? "ended" : "sent what it should not");
	}
	*ret_status = k->ended ? k->status : orphan_wait(k);
	closep(&k->pidfd);
	*k = s->kids[--s->n_kids];
	return 0;
}

void spawner_stop(struct daemon *d)
{
	struct spawner *s = d->spawner;

	if (!s)
		return;
	if (!s->dead) { /* (its end of the socket closed: it leaves) */
		if (s->fd >= 0)
			epoll_ctl(d->epfd, EPOLL_CTL_DEL, s->fd, NULL);
		closep(&s->fd);
		while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	for (size_t i = 0; i < s->n_kids; i++)
		closep(&s->kids[i].pidfd);
	free(s->kids);
	free(s);
	d->spawner = NULL;
}
