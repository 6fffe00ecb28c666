/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The login agent xlogin leaves behind (DECISIONS (af)): one process per
 * login session holding the decrypted key in its memory (not dumpable, so
 * not readable through /proc or ptrace by the user's other processes),
 * answering on a socket in the user's 0700 directory, only to processes of
 * the same user and the same session. It signs xos login challenges and
 * nothing else, and ends with xlogout, at the credential's expiry or when
 * the session's leader exits. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>

#include <openssl/evp.h>

#include "cli/cli.h"
#include "cli/login-internal.h"
#include "credstore/credstore.h"

#define REQUEST_MAX 1024

static bool valid_token(const char *s, const char *allowed, size_t max)
{
	size_t n = strlen(s);

	return n > 0 && n <= max && strspn(s, allowed) == n;
}

static char *sign_reply(const struct agent *a, char *args)
{
	char *node = strsep(&args, " "), *nonce = args;
	_cleanup_free_ void *sig = NULL;
	_cleanup_free_ char *sig64 = NULL, *chain64 = NULL;
	char text[512];
	size_t sig_len = 0;
	int n;

	if (!nonce ||
	    !valid_token(node,
			 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789.-_",
			 255) ||
	    !valid_token(nonce, "0123456789abcdef", 64))
		return strdup("err Malformed challenge");
	n = credstore_challenge_text(node, nonce, text, sizeof(text));
	if (n < 0 || credstore_sign_key(a->key, text, (size_t)n, &sig, &sig_len) < 0)
		return strdup("err Signing failed");
	sig64 = base64_encode(sig, sig_len);
	chain64 = base64_encode(a->chain, a->chain_len);
	if (!sig64 || !chain64)
		return NULL;
	return xstrdup_printf("ok %s %s", sig64, chain64);
}

/* The reply to one request; *quit for logout. */
static char *handle(const struct agent *a, char *req, bool *quit)
{
	if (!strcmp(req, "ping"))
		return strdup("ok");
	if (str_has_prefix(req, "sign "))
		return sign_reply(a, req + 5);
	if (!strcmp(req, "status")) {
		_cleanup_free_ char *chain64 = base64_encode(a->chain, a->chain_len);

		return chain64 ? xstrdup_printf("ok %lld %s", (long long)a->not_after, chain64)
			       : NULL;
	}
	if (!strcmp(req, "logout")) {
		*quit = true;
		return strdup("ok");
	}
	return strdup("err Unknown request");
}

/* Same user and same session only. */
static bool peer_allowed(const struct agent *a, int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return false;
	return cr.uid == a->uid && getsid(cr.pid) == a->sid;
}

static void serve_one(const struct agent *a, int lfd, bool *quit)
{
	_cleanup_close_ int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	_cleanup_free_ char *reply = NULL;
	struct timeval tv = { .tv_sec = 2 };
	char req[REQUEST_MAX + 1];
	size_t len = 0;

	if (fd < 0)
		return;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (!peer_allowed(a, fd)) {
		(void)loop_write(fd, "err This grid login belongs to another session\n", 48);
		return;
	}
	while (len < REQUEST_MAX) {
		ssize_t n = read(fd, req + len, REQUEST_MAX - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		len += (size_t)n;
		req[len] = 0;
		if (memchr(req, '\n', len))
			break;
	}
	req[len] = 0;
	req[strcspn(req, "\n")] = 0;
	reply = handle(a, req, quit);
	if (reply) {
		(void)loop_write(fd, reply, strlen(reply));
		(void)loop_write(fd, "\n", 1);
	}
}

static int watch_fds(const struct agent *a, int *ret_leader, int *ret_timer)
{
	struct itimerspec when = { .it_value = { .tv_sec = a->not_after } };

	*ret_leader = (int)syscall(SYS_pidfd_open, a->sid, 0);
	if (*ret_leader < 0)
		return -errno;
	*ret_timer = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC);
	if (*ret_timer < 0 || timerfd_settime(*ret_timer, TFD_TIMER_ABSTIME, &when, NULL) < 0)
		return -errno;
	return 0;
}

/* Serve until logout, expiry or the end of the session. */
int cli_agent_run(struct agent *a, int lfd)
{
	_cleanup_close_ int leader = -EBADF, timer = -EBADF;
	bool quit = false;
	int r = watch_fds(a, &leader, &timer);

	if (r < 0)
		return r;
	while (!quit) {
		struct pollfd p[3] = { { .fd = lfd, .events = POLLIN },
				       { .fd = leader, .events = POLLIN },
				       { .fd = timer, .events = POLLIN } };

		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents || p[2].revents)
			break; /* the session ended, or the credential expired */
		if (p[0].revents & POLLIN)
			serve_one(a, lfd, &quit);
	}
	unlink(a->path);
	return 0;
}

/* Become the agent: a session of our own, no terminal, not dumpable, no fd
 * but the listening socket (now 3) inherited from whoever ran xlogin. */
int cli_agent_detach(int lfd)
{
	int null;

	if (lfd != 3 && dup3(lfd, 3, O_CLOEXEC) < 0)
		return -errno;
	if (close_range(4, ~0U, 0) < 0)
		return -errno;
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(null, STDOUT_FILENO) < 0 ||
	    dup2(null, STDERR_FILENO) < 0)
		return -EBADF;
	if (null > 3)
		close(null);
	(void)setsid();
	(void)prctl(PR_SET_DUMPABLE, 0);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	return chdir("/") < 0 ? -errno : 3;
}
