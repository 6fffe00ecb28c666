/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Completion reports from the loader: one listening socket per job, bind-mounted
 * into that job only; a report is accepted from the container's mapped root
 * and only for the job the socket belongs to. The spool status file is the
 * fallback for reports made while xosd was down. */
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "loader/loader.h"
#include "runtime/runtime-internal.h"

#define NOTIFY_MAX 4096

int notify_xos_open(struct daemon *d, struct job *j, const char *path, int flags)
{
	char p[64];
	int dir = daemon_job_dir(d, j);
	int r = snprintf(p, sizeof(p), "xos/%s", path);

	if (dir < 0)
		return dir;
	if (r < 0 || (size_t)r >= sizeof(p))
		return -ENAMETOOLONG;
	return openat_beneath(dir, p, flags, 0);
}

void notify_unlink(struct daemon *d, struct job *j)
{
	_cleanup_close_ int xos = notify_xos_open(d, j, ".", O_PATH | O_DIRECTORY);

	if (xos >= 0)
		unlinkat(xos, "notify.sock", 0);
}

/* The socket is bound in the job's directory, which is root's, given to the
 * container's root and made private there, then moved into xos/ (the
 * container root's: nothing is done there by name but the rename). */
int notify_listen(struct daemon *d, struct job *j)
{
	static const char tmp[] = ".notify.sock";
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -EBADF, xos = notify_xos_open(d, j, ".", O_PATH | O_DIRECTORY);
	int dir = daemon_job_dir(d, j), r;

	if (xos < 0 || dir < 0)
		return xos < 0 ? xos : dir;
	r = snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dir, tmp);
	if (r < 0 || (size_t)r >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlinkat(dir, tmp, 0);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	if (fchownat(dir, tmp, j->idmap_base, j->idmap_base, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fchmodat(dir, tmp, 0600, 0) < 0 || renameat(dir, tmp, xos, "notify.sock") < 0) {
		r = -errno;
		unlinkat(dir, tmp, 0);
		return r;
	}
	if (listen(fd, 64) < 0)
		return -errno;
	r = daemon_epoll_add(d, fd, EPOLLIN, EP_NOTIFY, j);
	if (r < 0)
		return r;
	closep(&j->notify_fd);
	j->notify_fd = TAKE_FD(fd);
	return 0;
}

static bool all_units_ended(const struct job *j)
{
	for (size_t i = 0; i < j->n_units; i++)
		if (j->units[i].state == UNIT_RUNNING)
			return false;
	return true;
}

static void acct_from_units(struct job *j)
{
	j->have_acct = true;
	j->acct = (struct runtime_accounting){ 0 };
	for (size_t i = 0; i < j->n_units; i++) {
		j->acct.cpu_user_us += j->units[i].utime_us;
		j->acct.cpu_system_us += j->units[i].stime_us;
		if (j->units[i].maxrss_kb * 1024 > j->acct.memory_peak)
			j->acct.memory_peak = j->units[i].maxrss_kb * 1024;
	}
}

/* Apply a status; persist before anyone hears of it. Returns a reply message. */
static const char *apply_status(struct daemon *d, struct job *j, const struct loader_status *st)
{
	bool fresh;

	if (strcmp(st->job, j->id) != 0)
		return "err report names another job";
	if (!job_unit(j, st->unit))
		return "err no such unit";
	fresh = job_record_status(j, st);
	if (!fresh)
		return "ok";
	if (st->remaining == 0 && all_units_ended(j) && !j->closing) {
		j->closing = true;
		if (container_accounting(d, j, &j->acct) >= 0) {
			j->have_acct = true;
			job_acct_add(&j->acct, &j->acct_base); /* containers before a restore */
		} else
			acct_from_units(j);
		job_finish(j);
	}
	if (daemon_persist_job(d, j) < 0)
		log_warn("Failed to persist job %s: %m", j->id);
	daemon_unit_ended(d, j, st->unit);
	return "ok";
}

static int read_report(int fd, char *buf, size_t max, size_t *ret_len, int *passed)
{
	size_t len = 0;
	uint64_t deadline = mono_usec() + 1000000;

	while (len < max) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = mono_usec();
		ssize_t k;

		if (now >= deadline || poll(&p, 1, (int)((deadline - now) / 1000) + 1) <= 0)
			return -ETIMEDOUT;
		k = recv_with_fd(fd, buf + len, max - len, MSG_DONTWAIT, passed);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EPIPE;
		len += (size_t)k;
		if (len >= 2 && buf[len - 1] == '\n' && buf[len - 2] == '\n') {
			*ret_len = len - 1;
			return 0;
		}
	}
	return -EMSGSIZE;
}

/* "tty\njob=ID\nunit=N\n" with a terminal's master: hand it to the xrun -t
 * attached to that unit. */
static const char *apply_tty(struct daemon *d, struct job *j, const char *text, int master)
{
	char job[XOS_JOB_ID_HEX + 1];
	unsigned unit;
	struct unit *u;

	if (master < 0 || sscanf(text, "tty\njob=%16[0-9a-f]\nunit=%u\n", job, &unit) != 2)
		return "err malformed terminal message";
	if (strcmp(job, j->id) != 0)
		return "err report names another job";
	u = job_unit(j, unit);
	if (!u || u->state != UNIT_RUNNING)
		return "err no such unit";
	return conns_pass_tty(d, j, unit, master) < 0 ? "err no xrun waits for this terminal"
						      : "ok";
}

void notify_accept(struct daemon *d, struct job *j)
{
	for (;;) {
		_cleanup_close_ int passed = -EBADF;
		_cleanup_close_ int fd = accept4(j->notify_fd, NULL, NULL, SOCK_CLOEXEC);
		struct ucred cred;
		socklen_t cl = sizeof(cred);
		char buf[NOTIFY_MAX];
		struct loader_status st;
		const char *reply;
		size_t len = 0;

		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 ||
		    cred.uid != j->idmap_base) {
			log_warn("Rejected a completion report for job %s from uid %u: not the "
				 "job's loader",
				 j->id, (unsigned)cred.uid);
			(void)!write(fd, "err not the job's loader\n", 25);
			continue;
		}
		if (j->init_pid <= 0) /* the loader spoke before its start was seen */
			j->init_pid = cred.pid;
		if (read_report(fd, buf, sizeof(buf) - 1, &len, &passed) < 0) {
			log_warn("Rejected a malformed completion report for job %s", j->id);
			(void)!write(fd, "err malformed report\n", 21);
			continue;
		}
		buf[len] = 0;
		if (str_has_prefix(buf, "tty\n")) {
			reply = apply_tty(d, j, buf, passed);
			if (reply[0] == 'e')
				log_warn("Terminal of job %s: %s", j->id, reply + 4);
			(void)!write(fd, reply, strlen(reply));
			(void)!write(fd, "\n", 1);
			continue;
		}
		if (loader_status_parse(buf, len, &st) < 0) {
			log_warn("Rejected a malformed completion report for job %s", j->id);
			(void)!write(fd, "err malformed report\n", 21);
			continue;
		}
		reply = apply_status(d, j, &st);
		if (reply[0] == 'e')
			log_warn("Rejected a completion report for job %s: %s", j->id, reply + 4);
		(void)!write(fd, reply, strlen(reply));
		(void)!write(fd, "\n", 1);
	}
}

void notify_collect_spool(struct daemon *d, struct job *j)
{
	for (size_t i = 0; i < j->n_units; i++) {
		_cleanup_free_ char *text = NULL;
		struct loader_status st;
		char name[32];
		size_t len;

		if (j->units[i].state != UNIT_RUNNING)
			continue;
		snprintf(name, sizeof(name), "%u.status", j->units[i].n);
		if (j->spoolfd < 0 || read_file_at(j->spoolfd, name, NOTIFY_MAX, &text, &len) < 0)
			continue;
		if (loader_status_parse(text, len, &st) < 0) {
			log_warn("Ignoring malformed status file %s of job %s", name, j->id);
			continue;
		}
		(void)apply_status(d, j, &st);
	}
}
