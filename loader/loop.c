/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The loader's main loop: signals (signalfd), requests, reaping, reports. */
#include <malloc.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include "loader/loader-internal.h"

static void loader_free(struct loader *l)
{
	struct unit *u;

	while ((u = l->units)) {
		l->units = u->next;
		loader_relay_close(&u->out);
		loader_relay_close(&u->err);
		free(u);
	}
	loader_notify_done(&l->notify);
	free(l->seccomp.filter);
	if (l->child_caps)
		cap_free(l->child_caps);
	closep(&l->sig_fd);
	closep(&l->null_fd);
	closep(&l->spool_fd);
	closep(&l->in_fd);
	closep(&l->dir_fd);
}

static int prepare_child_caps(struct loader *l)
{
	static const cap_value_t keep[] = { CAP_SETUID, CAP_SETGID };

	l->child_caps = cap_init();
	if (!l->child_caps)
		return -errno;
	if (cap_set_flag(l->child_caps, CAP_PERMITTED, ELEMENTSOF(keep), keep, CAP_SET) < 0 ||
	    cap_set_flag(l->child_caps, CAP_EFFECTIVE, ELEMENTSOF(keep), keep, CAP_SET) < 0)
		return -errno;
	return 0;
}

/* The unit's seccomp program, made once. libseccomp's rule database is
 * freed once the program is out, but its pages (about 350 KiB) stay in the
 * heap, dirty, for the loader's whole life, which is the job's: they are
 * given back (a node's idle jobs each held them). */
static int prepare_seccomp(struct loader *l)
{
	scmp_filter_ctx ctx = NULL;
	int r = loader_seccomp_build(&ctx);

	if (r >= 0)
		r = loader_seccomp_export(ctx, &l->seccomp);
	loader_seccomp_releasep(&ctx);
	(void)malloc_trim(0);
	return r;
}

static void container_setup(void)
{
	int r = loader_loopback_up();

	if (r < 0)
		log_warn("Failed to bring up the loopback interface: %s", strerror(-r));
	else if (r > 0)
		log_info("Loopback interface is up");
	loader_mask_paths();
}

static int loader_init(struct loader *l, const struct loader_options *o)
{
	int r;

	if (o->close_fds && (r = loader_close_inherited_fds()) < 0)
		return log_error_errno(r, "Failed to close inherited file descriptors: %m");
	r = loader_open_dirs(l, o->dir ? o->dir : LOADER_DEFAULT_DIR);
	if (r < 0)
		return log_error_errno(r, "Failed to open %s and its in/ and spool/: %m",
				       o->dir ? o->dir : LOADER_DEFAULT_DIR);
	log_setup("xos-loader", LOG_LVL_INFO, true);
	if (o->redirect_stdio && (r = loader_redirect_stdio(l)) < 0)
		log_warn("Failed to open spool/loader.log, logging to the inherited stderr: %s",
			 strerror(-r));
	log_info("Starting for job %s as pid %d", l->job, (int)getpid());
	if (o->container_setup)
		container_setup();
	if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		log_warn("Failed to become a child subreaper: %m");
	l->notify.sync_fd = l->spool_fd;
	r = loader_notify_set_path(&l->notify, o->dir ? o->dir : LOADER_DEFAULT_DIR);
	if (r < 0)
		return log_error_errno(r, "Failed to name the notify socket: %m");
	if ((r = prepare_seccomp(l)) < 0)
		return log_error_errno(r, "Failed to build the seccomp profile: %m");
	if ((r = prepare_child_caps(l)) < 0)
		return log_error_errno(r, "Failed to prepare capabilities: %m");
	if ((r = loader_signals_setup(l)) < 0)
		return log_error_errno(r, "Failed to set up signal handling: %m");
	return 0;
}

static void reap(struct loader *l)
{
	for (;;) {
		struct rusage ru;
		struct unit *u;
		int ws;
		pid_t pid = wait4(-1, &ws, WNOHANG, &ru);

		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return;
		u = loader_unit_find_pid(l, pid);
		if (u)
			loader_unit_ended(l, u, ws, &ru);
		else
			log_debug("Reaped process %d", (int)pid);
	}
}

static void read_signals(struct loader *l, bool *reap_needed, bool *scan_needed)
{
	struct signalfd_siginfo si;

	while (read(l->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		int sig = (int)si.ssi_signo;

		switch (sig) {
		case SIGCHLD:
			*reap_needed = true;
			break;
		case SIGUSR1:
			*scan_needed = true;
			break;
		case SIGPWR: /* lxc-stop's halt signal */
			log_info("Received SIGPWR, sending SIGTERM to every unit");
			loader_forward_signal(l, 0, SIGTERM);
			break;
		case SIGTERM:
		case SIGINT:
		case SIGHUP:
		case SIGQUIT:
		case SIGUSR2:
		case SIGCONT:
		case SIGWINCH:
			log_info("Received signal %d, forwarding it to every unit", sig);
			loader_forward_signal(l, 0, sig);
			break;
		default:
			log_debug("Ignoring signal %d", sig);
			break;
		}
	}
}

/* The units' output pipes to poll, in p (NULL: only count them); how many. */
static size_t poll_relays(struct loader *l, struct pollfd *p)
{
	size_t n = 0;

	for (struct unit *u = l->units; u; u = u->next) {
		if (!p) {
			n += (u->out.pipe_fd >= 0) + (u->err.pipe_fd >= 0);
			continue;
		}
		if (u->out.pipe_fd >= 0)
			p[n++] = (struct pollfd){ .fd = u->out.pipe_fd, .events = POLLIN };
		if (u->err.pipe_fd >= 0)
			p[n++] = (struct pollfd){ .fd = u->err.pipe_fd, .events = POLLIN };
	}
	return n;
}

static void pump_relays(struct loader *l, const struct pollfd *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!p[i].revents)
			continue;
		for (struct unit *u = l->units; u; u = u->next) {
			if (u->out.pipe_fd == p[i].fd)
				(void)loader_relay_pump(&u->out);
			else if (u->err.pipe_fd == p[i].fd)
				(void)loader_relay_pump(&u->err);
			else
				continue;
			break;
		}
	}
}

/* Wait for something to do and do it. Returns -errno only if poll fails. */
static int loop_once(struct loader *l)
{
	size_t n_relays = poll_relays(l, NULL);
	_cleanup_free_ struct pollfd *p = calloc(2 + n_relays, sizeof(*p));
	bool reap_needed = false, scan_needed = false;
	int timeout, r;

	if (!p) { /* out of memory: try again in a moment rather than end the job */
		usleep(10000);
		return 0;
	}
	p[0] = (struct pollfd){ .fd = l->sig_fd, .events = POLLIN };
	/* p[1] is the notify connection, or nothing (fd -1 is ignored by poll) */
	p[1].fd = loader_notify_poll(&l->notify, &p[1].events, &timeout);
	n_relays = poll_relays(l, p + 2);
	if (poll(p, 2 + n_relays, timeout) < 0) {
		if (errno == EINTR)
			return 0;
		return log_error_errno(errno, "Failed to wait for events: %m");
	}
	/* output first: a unit's end is reported after what it wrote */
	pump_relays(l, p + 2, n_relays);
	if (p[0].revents)
		read_signals(l, &reap_needed, &scan_needed);
	if (reap_needed)
		reap(l);
	if (scan_needed && (r = loader_scan_requests(l)) < 0)
		log_error("Failed to read the requests in in/: %s", strerror(-r));
	loader_notify_step(&l->notify, p[1].fd >= 0 ? p[1].revents : 0);
	return 0;
}

static bool loader_idle(const struct loader *l)
{
	return l->running == 0 && loader_notify_idle(&l->notify);
}

int loader_run(const struct loader_options *o)
{
	struct loader l = {
		.dir_fd = -EBADF,
		.in_fd = -EBADF,
		.spool_fd = -EBADF,
		.null_fd = -EBADF,
		.sig_fd = -EBADF,
	};
	int r;

	loader_notify_init(&l.notify);
	if (!o->job || !job_id_valid(o->job))
		return -EINVAL;
	memcpy(l.job, o->job, sizeof(l.job));
	r = loader_init(&l, o);
	if (r < 0)
		goto out;
	r = loader_scan_requests(&l);
	if (r < 0) {
		log_error("Failed to read the requests in in/: %s", strerror(-r));
		goto out;
	}
	if (r == 0 && !o->wait_first)
		log_warn("No unit request in in/ at start-up");
	loader_notify_step(&l.notify, 0);
	for (bool waiting = o->wait_first && r == 0;;) {
		/* (a pooled container's waits until its first unit is asked
		 * for: not until it runs, as one that fails at exec never runs,
		 * and its report may be answered in the same turn) */
		waiting = waiting && !l.units;
		/* idle: look once more, a unit may have been added meanwhile */
		if (loader_idle(&l)) {
			r = loader_scan_requests(&l);
			loader_notify_step(&l.notify, 0);
			waiting = waiting && !l.units;
			if (loader_idle(&l) && !waiting) {
				if (r <= 0)
					break;
				continue; /* only repeated requests: look again */
			}
		}
		r = loop_once(&l);
		if (r < 0)
			goto out;
	}
	log_info("No unit runs and every report is acknowledged: exiting");
	r = 0;
out:
	loader_free(&l);
	return r;
}
