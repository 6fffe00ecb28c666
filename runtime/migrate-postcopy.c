/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xmigrate --postcopy (docs/MIGRATION.md "Post-copy", DECISIONS (ar)): the
 * job resumes on the target before its memory moved. The source's lazy dump
 * serves its pages through a socket the CRIU shim hands to xosd; the
 * target's lazy-pages daemon takes them through one xosd accepts; xosd
 * relays between the two over the node channel. Here: that relay, the
 * source's steps from CRIU's status to the pull's end or abort, and the
 * target's end of the pull (done, or its copy killed). */
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <yajl/yajl_gen.h>

#include "runtime/migrate-internal.h"

#define RELAY_CHUNK (256u << 10) /* bytes read from CRIU's socket at once */
#define RELAY_RX_MAX (64u << 20) /* ...and the most kept for it from the peer */
#define PAGES_DIR "pages"        /* the relays' sockets, in the run directory (0700) */

/* ---- post-copy: the relay of CRIU's page socket (DECISIONS (ar)) ----
 * Source: the lazy dump's page server; target: the lazy-pages daemon. Each
 * side reads what CRIU writes and sends it to the other as migrate-pages
 * messages (short, each with a payload, so that other messages pass
 * between them), and writes what comes into CRIU's socket. Back-pressure:
 * CRIU's socket is not read while a message of it is still going out. */
static bool fault_is(const char *what)
{
	const char *fault = getenv("XOS_MIGRATE_FAULT");

	return fault && !strcmp(fault, what);
}

static int epoll_set(struct daemon *d, int fd, uint32_t events, void *ptr, bool add)
{
	struct epoll_event ev = { .events = events };

	if (add)
		return daemon_epoll_add(d, fd, events, EP_MIGRATE, ptr);
	ev.data.u64 = (uint64_t)(uintptr_t)ptr | (uint64_t)EP_MIGRATE;
	return epoll_ctl(d->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

/* ps_fd watched for what the relay can take now. */
static void relay_arm(struct daemon *d, struct migration *m)
{
	uint32_t ev = (m->tx_len == 0 && !m->ps_eof && !m->stalled ? EPOLLIN : 0) |
		      (m->rx_len ? EPOLLOUT : 0);

	if (m->ps_fd < 0)
		return;
	if (epoll_set(d, m->ps_fd, ev, m, !m->ps_armed) >= 0)
		m->ps_armed = true;
}

/* The guard of a lazy dump is told that it is no longer needed. */
static void guard_off(struct migration *m)
{
	static const char off = CKPT_LAZY_GUARD_OFF;

	if (m->guard_fd >= 0)
		(void)!write(m->guard_fd, &off, 1);
	closep(&m->guard_fd);
}

/* Source: CRIU's serving fails on a request it does not know, and the
 * job's tasks run on here (never an EOF: that would end it well, killing
 * them). */
static void relay_abort_criu(struct migration *m)
{
	static const unsigned char req[CKPT_LAZY_ABORT_LEN] = { [0 ... CKPT_LAZY_ABORT_LEN -
								 1] = 0xff };

	if (m->ps_fd >= 0 && !m->ps_eof)
		(void)loop_write(m->ps_fd, req, sizeof(req));
}

void mig_relay_close(struct daemon *d, struct migration *m)
{
	if (m->ps_listen >= 0) {
		(void)epoll_ctl(d->epfd, EPOLL_CTL_DEL, m->ps_listen, NULL);
		closep(&m->ps_listen);
	}
	if (m->ps_path) {
		(void)unlink(m->ps_path);
		free(m->ps_path);
		m->ps_path = NULL;
	}
	if (m->status_fd >= 0) {
		(void)epoll_ctl(d->epfd, EPOLL_CTL_DEL, m->status_fd, NULL);
		closep(&m->status_fd);
	}
	if (m->ps_fd >= 0) {
		/* (a source whose CRIU may still serve is told to stop first) */
		if (m->outgoing && !m->criu_ended)
			relay_abort_criu(m);
		(void)epoll_ctl(d->epfd, EPOLL_CTL_DEL, m->ps_fd, NULL);
		closep(&m->ps_fd);
	}
	if (m->tx_open && d->nodes)
		(void)nodes_stream_end(d->nodes, m->node);
	m->tx_open = m->pages_in = m->ps_armed = false;
	guard_off(m);
	free(m->rx);
	free(m->tx);
	m->rx = m->tx = NULL;
	m->rx_len = m->rx_cap = m->tx_len = m->tx_off = 0;
}

/* A socket in <run_dir>/pages (root's, 0700) for CRIU's side to reach. */
int mig_relay_listen(struct daemon *d, struct migration *m)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int run = open(d->cfg->run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int fd, r;

	if (run < 0)
		return -errno;
	if (mkdirat(run, PAGES_DIR, 0700) < 0 && errno != EEXIST)
		return -errno;
	free(m->ps_path);
	m->ps_path = xstrdup_printf("%s/" PAGES_DIR "/%.16s.%s", d->cfg->run_dir, m->id,
				    m->outgoing ? "src" : "dst");
	if (!m->ps_path)
		return -ENOMEM;
	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", m->ps_path) >=
	    (int)sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	(void)unlink(m->ps_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 2) < 0 ||
	    (r = daemon_epoll_add(d, fd, EPOLLIN, EP_MIGRATE, m)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	m->ps_listen = fd;
	return 0;
}

/* Take the other side's connection (root's only). Source: the shim hands
 * over the page socket and the status pipe and stays connected (its guard). */
void mig_relay_accept(struct daemon *d, struct migration *m)
{
	int fds[2] = { -EBADF, -EBADF };
	char cbuf[CMSG_SPACE(sizeof(fds))], one;
	struct iovec iov = { .iov_base = &one, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	_cleanup_close_ int c = accept4(m->ps_listen, NULL, NULL, SOCK_CLOEXEC);

	if (c < 0)
		return;
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cred.uid != 0) {
		log_warn("Job %s: refused a connection to its page relay from uid %u", m->id,
			 (unsigned)cred.uid);
		return;
	}
	if (!m->outgoing) {
		m->ps_fd = TAKE_FD(c);
	} else {
		struct timeval tv = { .tv_sec = 5 };

		(void)setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (recvmsg(c, &mh, MSG_CMSG_CLOEXEC) != 1 || !(cm = CMSG_FIRSTHDR(&mh)) ||
		    cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(fds))) {
			log_warn("Job %s: the CRIU shim sent no page socket", m->id);
			return;
		}
		memcpy(fds, CMSG_DATA(cm), sizeof(fds));
		m->ps_fd = fds[0];
		m->status_fd = fds[1];
		m->guard_fd = TAKE_FD(c);
		(void)fcntl(m->status_fd, F_SETFL, O_NONBLOCK);
		if (daemon_epoll_add(d, m->status_fd, EPOLLIN, EP_MIGRATE, m) < 0)
			closep(&m->status_fd);
	}
	(void)fcntl(m->ps_fd, F_SETFL, O_NONBLOCK);
	(void)epoll_ctl(d->epfd, EPOLL_CTL_DEL, m->ps_listen, NULL);
	closep(&m->ps_listen);
	(void)unlink(m->ps_path);
	m->t_page = mono_usec();
	relay_arm(d, m);
}

/* What came from the peer, into CRIU's socket as it takes it. */
void mig_relay_flush(struct daemon *d, struct migration *m)
{
	while (m->rx_len && m->ps_fd >= 0) {
		ssize_t w = send(m->ps_fd, m->rx, m->rx_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w < 0)
			return mig_relay_broken(d, m, "CRIU's page socket closed");
		memmove(m->rx, m->rx + w, m->rx_len - (size_t)w);
		m->rx_len -= (size_t)w;
	}
	relay_arm(d, m);
}

void mig_relay_take(struct daemon *d, struct migration *m, const void *data, size_t len)
{
	if (m->ps_fd < 0)
		return;
	m->pages_rx += len;
	if (!m->outgoing && m->phase == MP_PULL && m->pages_rx > (1u << 20) &&
	    fault_is("die-in-pull-in")) { /* tests: the target's xosd killed during the pull */
		log_warn("Job %s: xosd dies during the pull (XOS_MIGRATE_FAULT=die-in-pull-in)",
			 m->id);
		raise(SIGKILL);
	}
	if (!m->outgoing && m->phase == MP_PULL && m->pages_rx > (1u << 20) &&
	    fault_is("stall-pull-in")) { /* tests: the pull stalls (nothing taken, nothing asked) */
		if (!m->stalled)
			log_warn("Job %s: its pull stalls here (XOS_MIGRATE_FAULT=stall-pull-in)",
				 m->id);
		m->stalled = true;
		relay_arm(d, m);
		return;
	}
	if (m->rx_len + len > m->rx_cap) {
		size_t cap = m->rx_cap ? m->rx_cap : 65536;
		uint8_t *nb;

		while (cap < m->rx_len + len)
			cap *= 2;
		if (cap > RELAY_RX_MAX || !(nb = realloc(m->rx, cap)))
			return mig_relay_broken(d, m, "CRIU does not take its pages");
		m->rx = nb;
		m->rx_cap = cap;
	}
	memcpy(m->rx + m->rx_len, data, len);
	m->rx_len += len;
	m->t_page = mono_usec();
	mig_relay_flush(d, m);
}

/* What CRIU wrote, to the peer, one message at a time. */
/* The chunk to send, read from CRIU's page server where none is left:
 * 1: there is one; 0: none now; -1: the relay ended (m was dealt with) */
static int relay_fill(struct daemon *d, struct migration *m)
{
	ssize_t n;

	if (m->tx_len)
		return 1;
	if (m->ps_eof)
		return 0;
	if (!m->tx && !(m->tx = malloc(RELAY_CHUNK)))
		return mig_relay_broken(d, m, "out of memory"), -1;
	do
		n = read(m->ps_fd, m->tx, RELAY_CHUNK);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n <= 0) {
		m->ps_eof = true;
		if (!m->outgoing && m->phase == MP_PULL)
			return mig_tgt_pull_done(d, m), -1; /* the daemon has every page */
		return 0;
	}
	m->tx_len = (size_t)n;
	m->tx_off = 0;
	return 1;
}

/* Tests: xosd killed, or the link cut, during the pull (true: cut) */
static bool relay_fault(struct daemon *d, struct migration *m)
{
	if (!m->outgoing || !m->target_ok || m->pages_bytes <= (1u << 20))
		return false;
	if (fault_is("die-in-pull")) {
		log_warn("Job %s: xosd dies during the pull (XOS_MIGRATE_FAULT=die-in-pull)",
			 m->id);
		raise(SIGKILL);
	}
	if (!fault_is("cut-pull"))
		return false;
	log_warn("Job %s: the link to node %s is cut now (XOS_MIGRATE_FAULT=cut-pull)", m->id,
		 m->node);
	nodes_stream_abort(d->nodes, m->node);
	return true;
}

void mig_relay_pump(struct daemon *d, struct migration *m)
{
	struct job *j;
	char hdr[128];

	while (m->ps_fd >= 0 && m->phase != MP_DONE && !m->stalled) {
		int r = relay_fill(d, m);
		ssize_t w;

		if (r < 0)
			return;
		if (r == 0)
			break;
		if (!m->tx_open) {
			snprintf(hdr, sizeof(hdr),
				 "{\"type\":\"migrate-pages\",\"job\":\"%s\",\"payload\":true}",
				 m->id);
			r = nodes_stream_begin(d->nodes, m->node, hdr);
			if (r == -EBUSY || r == -ENOBUFS)
				break; /* (migrate_tick tries again) */
			if (r < 0)
				return mig_relay_broken(d, m,
							"the link to the other node was lost");
			m->tx_open = true;
		}
		w = nodes_stream_write(d->nodes, m->node, m->tx + m->tx_off, m->tx_len - m->tx_off);
		if (w < 0)
			return mig_relay_broken(d, m, "the link to the other node was lost");
		if (w == 0)
			break; /* (the writable hook goes on) */
		m->tx_off += (size_t)w;
		m->pages_bytes += (uint64_t)w;
		m->t_page = mono_usec();
		if (m->outgoing && (j = daemon_find_job(d, m->id)))
			j->migrate_bytes = m->bytes + m->pages_bytes; /* (xps) */
		if (relay_fault(d, m))
			return;
		if (m->tx_off == m->tx_len) {
			if (nodes_stream_end(d->nodes, m->node) < 0)
				return mig_relay_broken(d, m,
							"the link to the other node was lost");
			m->tx_open = false;
			m->tx_len = m->tx_off = 0;
		}
	}
	relay_arm(d, m);
}

bool mig_tgt_pulled(const struct migration *m)
{
	char c;

	/* (the lazy-pages daemon, having every page, closed its socket and
	 * nothing of it is left to relay) */
	return m->ps_eof || (m->ps_fd >= 0 && m->tx_len == 0 &&
			     recv(m->ps_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0);
}

bool mig_relay_pending(const struct migration *m)
{
	return m->ps_fd >= 0 && (m->tx_len || m->rx_len);
}

/* ---- post-copy, the source ---- */

/* A post-copy move fails: CRIU is told to stop serving (its tasks run on
 * here once it has: the dump's end, src_pull_ended, answers the client),
 * and the target kills what it restored. */
void mig_src_abort_pull(struct daemon *d, struct migration *m, struct job *j, const char *why)
{
	if (m->phase == MP_ABORT || m->phase == MP_DONE)
		return;
	free(m->failure);
	m->failure = xstrdup_printf("Migration of job %.12s to node %s failed: %s; the job runs "
				    "on here",
				    m->id, m->node, why);
	log_warn("%s", m->failure ? m->failure : why);
	if (m->phase == MP_SEND && nodes_stream_open(d->nodes, m->node))
		nodes_stream_abort(d->nodes, m->node);
	mig_child_stop(d, m);
	(void)mig_send_msg(d, m->node, "migrate-abort", m->id, NULL, NULL, false);
	m->aborting = true;
	m->phase = MP_ABORT;
	m->t_abort = mono_usec();
	if (m->ps_fd >= 0) {
		if (fault_is("deaf-abort")) /* tests: a CRIU that ignores the abort */
			log_warn("Job %s: CRIU is not told to stop serving "
				 "(XOS_MIGRATE_FAULT=deaf-abort)",
				 m->id);
		else
			relay_abort_criu(m);
		if (m->tx_open)
			(void)nodes_stream_end(d->nodes, m->node);
		m->tx_open = false;
		m->rx_len = m->tx_len = 0;
		(void)epoll_ctl(d->epfd, EPOLL_CTL_DEL, m->ps_fd, NULL);
		m->ps_armed = false;
	} else if (j && j->run) {
		/* (CRIU has not reached the relay yet: its run is aborted, the job
		 * thawed) */
		ckpt_abort(d->ckpt, j, 0);
	}
	if (j)
		mig_set_phase(d, j, NULL, NULL);
}

/* CRIU's status came: the images (but the memory) and the job's files are
 * written. The version is sealed and sent; the pages follow on demand. */
static void src_ready(struct daemon *d, struct migration *m, struct job *j)
{
	const char *why = NULL;
	char dir[PATH_MAX];
	int r;

	m->t_ready = mono_usec();
	if (m->aborting || !nodes_peer_up(d->nodes, m->node))
		return mig_src_abort_pull(d, m, j, "the link to it was lost during the dump");
	r = ckpt_lazy_ready(d->ckpt, j, dir, sizeof(dir));
	if (r < 0)
		return mig_src_abort_pull(d, m, j, "its version cannot be sealed");
	m->version = (unsigned)r;
	mig_set_phase(d, j, m->node, "send");
	if (mig_src_send(d, m, dir, &why) < 0)
		return mig_src_abort_pull(d, m, j, why);
}

void mig_src_status(struct daemon *d, struct migration *m)
{
	struct job *j = daemon_find_job(d, m->id);
	char c;
	ssize_t n = read(m->status_fd, &c, 1);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	(void)epoll_ctl(d->epfd, EPOLL_CTL_DEL, m->status_fd, NULL);
	closep(&m->status_fd);
	/* (an EOF: CRIU failed before its images were out; its run's end says why) */
	if (n == 1 && j && m->phase == MP_DUMP)
		src_ready(d, m, j);
}

/* CRIU's lazy dump ended: well (every page pulled, the tasks gone) or not
 * (the tasks run on here). */
void mig_src_pull_ended(struct daemon *d, struct migration *m, struct job *j)
{
	_cleanup_free_ char *msg = NULL;

	if (!m->run_error && j && j->state == JOB_CHECKPOINTED && !m->aborting) {
		m->pull_done = true;
		log_info("Job %s: node %s pulled every page (%llu bytes)", m->id, m->node,
			 (unsigned long long)m->pages_bytes);
		if (fault_is("die-after-pull")) { /* tests: killed before it lets go */
			log_warn(
				"Job %s: xosd dies after the pull (XOS_MIGRATE_FAULT=die-after-pull)",
				m->id);
			raise(SIGKILL);
		}
		if (m->target_ok)
			return mig_src_let_go(d, m, j);
		return; /* (its word comes: migrate-result) */
	}
	if (m->failure)
		msg = strdup(m->failure);
	else
		msg = xstrdup_printf("Migration of job %.12s to node %s failed: %s; the job runs "
				     "on here",
				     m->id, m->node,
				     m->run_error ? m->run_error : "its lazy dump failed");
	if (m->phase != MP_ABORT)
		(void)mig_send_msg(d, m->node, "migrate-abort", m->id, NULL, NULL, false);
	if (j && j->state != JOB_RUNNING && job_is_live(j))
		log_warn("Job %s: its move failed and it is %s here", m->id,
			 job_state_to_string(j->state));
	mig_src_done(d, m, j, msg ? msg : "Migration failed; the job runs on here");
}

/* Post-copy, the target: the copy of a job whose pages will not all come
 * is killed through its init, not by asking its loader (which may wait for
 * a page of its own that will never come). */
void mig_kill_half(struct daemon *d, struct job *j)
{
	if (!job_is_live(j))
		return;
	if (j->pidfd < 0 || syscall(SYS_pidfd_send_signal, j->pidfd, SIGKILL, NULL, 0) < 0)
		(void)container_signal(d, j, 0, SIGKILL);
}

/* Post-copy, the target: the version the job came with holds no memory
 * (its pages were pulled): it goes once the pull ended or failed. */
void mig_drop_version(struct daemon *d, struct migration *m, struct job *j)
{
	struct xerr err = XERR_INIT;

	if (ckpt_delete(d->ckpt, j, m->version, &err) < 0 && err.error != -ENOENT)
		log_warn("Job %s: its version %u from node %s stays: %s", j->id, m->version,
			 m->node, err.msg ? err.msg : "?");
	free(err.msg);
	if (j->ckpt_last == m->version)
		j->ckpt_last = 0;
	(void)daemon_persist_job(d, j);
}

/* Post-copy, the target: the lazy-pages daemon ended, having every page.
 * The version it came with (without its memory) goes. */
void mig_tgt_pull_done(struct daemon *d, struct migration *m)
{
	struct job *j = daemon_find_job(d, m->id);

	log_info("Job %s: every page came from node %s (%llu bytes)", m->id, m->node,
		 (unsigned long long)m->pages_bytes);
	if (j) {
		mig_set_phase(d, j, NULL, NULL);
		mig_drop_version(d, m, j);
	}
	m->phase = MP_DONE;
}

/* Post-copy, the target: the move is aborted while the job runs here on
 * pages it has not all got: it is killed (the source runs it on), its
 * record kept as an aborted arrival (a later move of it here replaces it). */
void mig_tgt_abort_pull(struct daemon *d, struct migration *m, const char *why)
{
	struct job *j = daemon_find_job(d, m->id);

	log_warn("Job %s from node %s: the move is aborted (%s): killed here, it runs on there",
		 m->id, m->node, why);
	mig_relay_close(d, m);
	if (j) {
		mig_set_phase(d, j, m->node, "aborted");
		free(j->reason);
		j->reason = xstrdup_printf(
			"its move here from node %s was aborted (%s); it runs on "
			"there",
			m->node, why);
		(void)daemon_persist_job(d, j);
		mig_kill_half(d, j);
		mig_drop_version(d, m, j);
	}
	m->phase = MP_DONE;
}

void mig_relay_broken(struct daemon *d, struct migration *m, const char *why)
{
	struct job *j = daemon_find_job(d, m->id);

	if (m->outgoing)
		return mig_src_abort_pull(d, m, j, why);
	if (m->phase == MP_PULL)
		return mig_tgt_abort_pull(d, m, why);
	mig_relay_close(d, m); /* (the restore fails without its pages: its end says so) */
}
