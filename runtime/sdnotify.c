/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The service manager's readiness protocol (sd_notify(3)) without libsystemd:
 * one datagram of NAME=VALUE lines to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or '@' for the abstract namespace). xosd says
 * READY=1 once its client socket listens and STOPPING=1 when a stop signal
 * arrives. Without $NOTIFY_SOCKET every call does nothing. */
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "runtime/runtime-internal.h"

static struct sockaddr_un notify_addr;
static socklen_t notify_len;

/* Take $NOTIFY_SOCKET out of the environment (containers, CRIU and helpers
 * must not talk to the service manager in xosd's name) and remember it. */
void sdnotify_init(void)
{
	const char *p = getenv("NOTIFY_SOCKET");
	size_t n = p ? strlen(p) : 0;

	notify_len = 0;
	if (n < 2 || n >= sizeof(notify_addr.sun_path) || (p[0] != '/' && p[0] != '@')) {
		if (p)
			log_warn("Ignoring NOTIFY_SOCKET=%s: not a socket path", p);
		unsetenv("NOTIFY_SOCKET");
		return;
	}
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, p, n);
	if (p[0] == '@')
		notify_addr.sun_path[0] = '\0';
	notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	unsetenv("NOTIFY_SOCKET");
}

/* Send one state message; 0 when sent or when no manager listens. */
int sdnotify(const char *fmt, ...)
{
	_cleanup_close_ int fd = -EBADF;
	char msg[256];
	va_list ap;
	int n;

	if (notify_len == 0)
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return -EINVAL;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&notify_addr, notify_len) <
	    0)
		return -errno;
	return 0;
}
