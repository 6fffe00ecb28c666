/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xmigrate: a running job moved to another node over the node channel,
 * stop-and-copy, two-phase (docs/MIGRATION.md, DECISIONS (ah)).
 * Source: pre-flight on the target, a dump with --stop (ckpt/), the version
 * streamed (tar of its directory) as one payload, then in doubt until the
 * target says the job runs there (MIGRATED here) or failed (restored here).
 * Target: the checks, the payload into its checkpoint store, the job taken
 * over from it and restored under the same id; it answers the result. Each
 * side writes its phase in the job record before it acts on it. */
#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "runtime/migrate-internal.h"
#include "templates/templates.h"

#define CPU_RUN_MAX_S 30 /* the most a CRIU cpuinfo may take (tests: XOS_MIGRATE_CPU_MAX_S) */

static struct migration *find(struct daemon *d, const char *id, bool outgoing)
{
	for (struct migration *m = d->migrations; m; m = m->next)
		if (m->outgoing == outgoing && !strcmp(m->id, id) && m->phase != MP_DONE)
			return m;
	return NULL;
}

static struct migration *mig_new(struct daemon *d, const char *id, const char *node, bool out)
{
	struct migration *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	snprintf(m->id, sizeof(m->id), "%s", id);
	snprintf(m->node, sizeof(m->node), "%s", node);
	m->outgoing = out;
	m->pidfd = m->pipe_fd = m->file_fd = -EBADF;
	m->ps_listen = m->ps_fd = m->status_fd = m->guard_fd = -EBADF;
	m->tar_status = -1;
	m->t0 = mono_usec();
	m->next = d->migrations;
	d->migrations = m;
	return m;
}

void mig_child_stop(struct daemon *d, struct migration *m)
{
	if (m->pipe_fd >= 0)
		(void)epoll_ctl(d->epfd, EPOLL_CTL_DEL, m->pipe_fd, NULL);
	if (m->pidfd >= 0)
		(void)epoll_ctl(d->epfd, EPOLL_CTL_DEL, m->pidfd, NULL);
	if (m->pid > 0) {
		kill(m->pid, SIGKILL);
		(void)waitpid(m->pid, NULL, 0);
		m->pid = 0;
	}
	closep(&m->pipe_fd);
	closep(&m->pidfd);
	closep(&m->file_fd);
	free(m->buf);
	m->buf = NULL;
}

static void mig_free_done(struct daemon *d)
{
	for (struct migration **pp = &d->migrations; *pp;) {
		struct migration *m = *pp;

		if (m->phase != MP_DONE) {
			pp = &m->next;
			continue;
		}
		*pp = m->next;
		mig_child_stop(d, m);
		mig_cpu_clear(m);
		mig_relay_close(d, m);
		free(m->run_error);
		free(m->failure);
		free(m);
	}
}

/* The job's migration phase, written (durably) before it is acted on. */
void mig_set_phase(struct daemon *d, struct job *j, const char *node, const char *phase)
{
	/* (copied first: node may be the job's own migrate_node) */
	char *n = node ? strdup(node) : NULL, *p = phase ? strdup(phase) : NULL;
	int r;

	free(j->migrate_node);
	free(j->migrate_phase);
	j->migrate_node = n;
	j->migrate_phase = p;
	if (!phase || !strcmp(phase, "migrated"))
		j->migrate_bytes = 0;
	r = daemon_persist_job_durably(d, j);
	if (r < 0)
		log_warn("Failed to persist job %s: %s", j->id, strerror(-r));
}

/* ---- messages ---- */
int mig_send_msg(struct daemon *d, const char *node, const char *type, const char *id,
		 const char *key, const char *val, bool ok)
{
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	_cleanup_free_ char *text = NULL;

	if (!g)
		return -ENOMEM;
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "type", type);
	json_gen_kv_str(g, "job", id);
	if (key)
		json_gen_kv_str(g, key, val);
	if (!strcmp(type, "migrate-result") || !strcmp(type, "migrate-checked"))
		json_gen_kv_bool(g, "ok", ok);
	yajl_gen_map_close(g);
	text = json_gen_take(g, false);
	return text ? nodes_send(d->nodes, node, text) : -ENOMEM;
}

/* --compress: the zstd program, on both nodes (tests: XOS_MIGRATE_FAULT=no-zstd,
 * a node without it) */
static bool have_zstd(void)
{
	const char *fault = getenv("XOS_MIGRATE_FAULT");

	return !(fault && !strcmp(fault, "no-zstd")) && access(ZSTD_PATH, X_OK) == 0;
}

/* The child's end (the tar's, CRIU's cpuinfo), and its output (m->pipe_fd,
 * if any), watched in the event loop. */
int mig_child_watch(struct daemon *d, struct migration *m)
{
	int r;

	m->pidfd = (int)syscall(SYS_pidfd_open, m->pid, 0);
	if (m->pidfd < 0)
		return -errno;
	r = daemon_epoll_add(d, m->pidfd, EPOLLIN, EP_MIGRATE, m);
	if (r >= 0 && m->pipe_fd >= 0)
		r = daemon_epoll_add(d, m->pipe_fd, EPOLLIN, EP_MIGRATE, m);
	return r;
}

/* tar of dir (c: create to a pipe; x: extract from a file) as a child
 * watched in the event loop. */
int mig_tar_start(struct daemon *d, struct migration *m, const char *dir, int in_fd)
{
	char *cargv[16];
	size_t k = 0;

	cargv[k++] = "/bin/tar";
	cargv[k++] = "--xattrs";
	cargv[k++] = "--xattrs-include=*";
	cargv[k++] = "--numeric-owner";
	/* (a lazy dump's CRIU goes on writing its log while it serves) */
	cargv[k++] = "--exclude=./images/dump.log";
	cargv[k++] = "--exclude=./" CKPT_UNSYNCED; /* (this node's, DECISIONS (bn)) */
	if (m->loader_skip) /* (the target has that copy: tgt_extracted puts it in) */
		cargv[k++] = "--exclude=./loader";
	cargv[k++] = "--blocking-factor=512"; /* (256 KiB records) */
	/* --compress: zstd's fastest level, one thread (the stream and the
	 * other end's tar have the other CPUs) */
	if (m->compress)
		cargv[k++] = "--use-compress-program=" ZSTD_PATH " -1 -T1";
	cargv[k++] = "-C";
	cargv[k++] = (char *)dir;
	cargv[k++] = "-cf";
	cargv[k++] = "-";
	cargv[k++] = ".";
	cargv[k] = NULL;
	char *xargv[] = { "/bin/tar",
			  "--xattrs",
			  "--xattrs-include=*",
			  "--numeric-owner",
			  "-p",
			  "-C",
			  (char *)dir,
			  "-xf",
			  "-",
			  NULL,
			  NULL };

	if (m->compress)
		xargv[9] = "--use-compress-program=" ZSTD_PATH;
	struct spawn_opts o = {
		.path = "/bin/tar", .argv = in_fd < 0 ? cargv : xargv, .first_fd = 0, .n_fds = 3
	};
	int p[2] = { -EBADF, -EBADF }, r, report = -EBADF;

	/* (only this end is non-blocking: tar's writes must not fail) */
	if (in_fd < 0 && (pipe2(p, O_CLOEXEC) < 0 || fcntl(p[0], F_SETFL, O_NONBLOCK) < 0)) {
		closep(&p[0]);
		closep(&p[1]);
		return -errno;
	}
	/* (a pipe that holds what xosd reads at once: fewer wakeups both sides) */
	if (in_fd < 0)
		(void)fcntl(p[0], F_SETPIPE_SZ, PUMP_BUF);
	o.fds[0] = in_fd >= 0 ? in_fd : -EBADF;
	o.fds[1] = in_fd >= 0 ? -EBADF : p[1];
	o.fds[2] = STDERR_FILENO; /* (tar's complaints go to xosd's log) */
	r = spawn_program(&o, &m->pid, &report);
	closep(&report);
	closep(&p[1]);
	if (r < 0) {
		closep(&p[0]);
		return r;
	}
	m->pipe_fd = p[0];
	return mig_child_watch(d, m);
}

/* The child ended: its exit status (-EAGAIN: not yet). */
static int child_reap(struct daemon *d, struct migration *m)
{
	int status = 0;
	pid_t r;

	if (m->pid <= 0)
		return -ECHILD;
	r = waitpid(m->pid, &status, WNOHANG);
	if (r == 0)
		return -EAGAIN;
	(void)epoll_ctl(d->epfd, EPOLL_CTL_DEL, m->pidfd, NULL);
	closep(&m->pidfd);
	m->pid = 0;
	return r < 0 ? -errno : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void version_path(struct daemon *d, const char *id, const char *v, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s/%s", d->cfg->checkpoint_dir, id, v);
}

/* ---- the source ---- */
static void answer_fail(struct daemon *d, struct job *j, const char *code, const char *msg)
{
	struct xerr err = XERR_INIT;

	xerr_set(&err, -EIO, code, "%s", msg);
	daemon_ckpt_answer(d, j, &err, NULL);
	free(err.msg);
}

void mig_src_done(struct daemon *d, struct migration *m, struct job *j, const char *msg)
{
	if (j) {
		mig_set_phase(d, j, NULL, NULL);
		if (msg)
			answer_fail(d, j, "migrate_failed", msg);
	}
	mig_child_stop(d, m);
	m->phase = MP_DONE;
}

/* The move failed after the job stopped: it is restored here. */
static void src_restore_local(struct daemon *d, struct migration *m, struct job *j, const char *why)
{
	struct xerr err = XERR_INIT;
	_cleanup_free_ char *msg = NULL;

	mig_child_stop(d, m);
	free(m->failure);
	m->failure = xstrdup_printf("Migration of job %.12s to node %s failed: %s; the job runs "
				    "on here",
				    m->id, m->node, why);
	log_warn("%s", m->failure);
	mig_set_phase(d, j, NULL, NULL);
	m->run_ended = false;
	m->phase = MP_LOCAL;
	if (ckpt_restart(d->ckpt, j, m->version, &err) >= 0)
		return;
	msg = xstrdup_printf("Migration of job %.12s to node %s failed: %s; its restart here "
			     "failed too (%s): xrestart it",
			     m->id, m->node, why, err.msg ? err.msg : "?");
	free(err.msg);
	mig_src_done(d, m, j, msg);
}

/* The target runs the job: this node lets go of it. */
void mig_src_let_go(struct daemon *d, struct migration *m, struct job *j)
{
	_cleanup_gen_ yajl_gen g = ops_reply_begin();
	uint64_t now = mono_usec();

	j->state = JOB_MIGRATED;
	j->ended_us = now_usec();
	free(j->reason);
	j->reason = xstrdup_printf("moved to node %s", m->node);
	netsetup_job_release(d->net, j->id, &j->net);
	rootfs_job_umount(d, j);
	unlinkat(d->vjobs_fd, j->id, AT_REMOVEDIR);
	j->parked = 0;
	rootfs_job_unkeep(j); /* (its versions go: nothing left to roll back to) */
	ckpt_forget(d->ckpt, j);
	mig_set_phase(d, j, m->node, "migrated");
	slice_job_check(d, j);
	log_info("Job %s moved to node %s (downtime %llu ms%s)", j->id, m->node,
		 (unsigned long long)(((m->postcopy ? m->t_resumed : now) - m->t_stop) / 1000),
		 m->postcopy ? ", post-copy" : "");
	if (g && m->postcopy) { /* (downtime: until the target ran it) */
		json_gen_kv_str(g, "job", j->id);
		json_gen_kv_str(g, "node", m->node);
		json_gen_kv_uint(g, "version", m->version);
		json_gen_kv_bool(g, "postcopy", true);
		if (m->compress)
			json_gen_kv_bool(g, "compress", true);
		json_gen_kv_uint(g, "check_us", m->t_stop - m->t0);
		json_gen_kv_uint(g, "frozen_us", m->t_ready - m->t_stop);
		json_gen_kv_uint(g, "transfer_us", m->t_sent - m->t_ready);
		json_gen_kv_uint(g, "downtime_us", m->t_resumed - m->t_stop);
		json_gen_kv_uint(g, "pull_us", now - m->t_resumed);
		json_gen_kv_uint(g, "total_us", now - m->t0);
		json_gen_kv_uint(g, "bytes", m->bytes + m->pages_bytes);
		json_gen_kv_uint(g, "pages_bytes", m->pages_bytes);
		daemon_ckpt_answer(d, j, NULL, g);
	} else if (g) {
		json_gen_kv_str(g, "job", j->id);
		json_gen_kv_str(g, "node", m->node);
		json_gen_kv_uint(g, "version", m->version);
		if (m->compress)
			json_gen_kv_bool(g, "compress", true);
		json_gen_kv_uint(g, "check_us", m->t_stop - m->t0);
		json_gen_kv_uint(g, "frozen_us", m->t_dumped - m->t_stop);
		json_gen_kv_uint(g, "transfer_us", m->t_sent - m->t_dumped);
		json_gen_kv_uint(g, "downtime_us", now - m->t_stop);
		json_gen_kv_uint(g, "total_us", now - m->t0);
		json_gen_kv_uint(g, "bytes", m->bytes);
		daemon_ckpt_answer(d, j, NULL, g);
	}
	conns_job_ended(d, j);
	mig_child_stop(d, m);
	m->phase = MP_DONE;
	d->prune_ended = true;
}

static void src_finish_send(struct daemon *d, struct migration *m, struct job *j)
{
	if (m->postcopy) { /* the target restores; its pages come from here */
		mig_set_phase(d, j, m->node, "pull");
		if (nodes_stream_end(d->nodes, m->node) < 0)
			return mig_src_abort_pull(d, m, j, "the link to it was lost mid-transfer");
		m->t_sent = mono_usec();
		m->phase = MP_PULL;
		mig_child_stop(d, m);
		return;
	}
	mig_set_phase(d, j, m->node, "doubt"); /* durable before the end goes out */
	if (nodes_stream_end(d->nodes, m->node) < 0)
		return src_restore_local(d, m, j, "the link to it was lost mid-transfer");
	m->t_sent = mono_usec();
	m->phase = MP_DOUBT;
	/* Asked at once, behind the end on the same connection: a target that
	 * unpacks or restores answers when it knows; one that has nothing of the
	 * job (it lost the check while the job was dumped) says so. */
	m->query_sent = false;
	mig_child_stop(d, m);
}

/* tests: the stream stops after its first bytes (a transfer cut mid-way),
 * until the file XOS_MIGRATE_STALL_UNTIL names exists, if it names one
 * (stall_release) */
static bool stalled(struct daemon *d, struct migration *m)
{
	const char *fault = getenv("XOS_MIGRATE_FAULT"), *until = getenv("XOS_MIGRATE_STALL_UNTIL");

	if (!fault || strcmp(fault, "stall-send") != 0 || m->bytes == 0)
		return false;
	if (until && access(until, F_OK) == 0)
		return false;
	if (m->pipe_fd >= 0)
		(void)epoll_ctl(d->epfd, EPOLL_CTL_DEL, m->pipe_fd, NULL);
	m->send_stalled = true;
	return true;
}

/* tests: a stalled stream goes on once its file exists (1: still stalled) */
static bool stall_release(struct daemon *d, struct migration *m)
{
	const char *until = getenv("XOS_MIGRATE_STALL_UNTIL");

	if (!m->send_stalled || m->phase != MP_SEND)
		return false;
	if (!until || access(until, F_OK) != 0)
		return true;
	m->send_stalled = false;
	if (m->pipe_fd >= 0)
		(void)daemon_epoll_add(d, m->pipe_fd, EPOLLIN, EP_MIGRATE, m);
	mig_src_pump(d, m);
	return false;
}

/* The version could not be sent: a stopped job is restored here; a lazy
 * dump's CRIU is told to stop serving (its tasks never stopped). A stream
 * still open goes (after the phase changed: its channel's loss is not a
 * second failure), else the channel would carry nothing else again. */
static void send_failed(struct daemon *d, struct migration *m, struct job *j, const char *why)
{
	if (m->postcopy)
		return mig_src_abort_pull(d, m, j, why);
	src_restore_local(d, m, j, why);
	if (nodes_stream_open(d->nodes, m->node))
		nodes_stream_abort(d->nodes, m->node);
}

void mig_src_pump(struct daemon *d, struct migration *m)
{
	struct job *j = daemon_find_job(d, m->id);

	while (j && m->phase == MP_SEND && !stalled(d, m)) {
		if (m->buf_off == m->buf_len && !m->tar_eof) {
			ssize_t n = read(m->pipe_fd, m->buf, PUMP_BUF);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				return;
			if (n <= 0) {
				m->tar_eof = true;
				(void)epoll_ctl(d->epfd, EPOLL_CTL_DEL, m->pipe_fd, NULL);
				continue;
			}
			m->buf_off = 0;
			m->buf_len = (size_t)n;
		}
		if (m->buf_off < m->buf_len) {
			ssize_t w = nodes_stream_write(d->nodes, m->node, m->buf + m->buf_off,
						       m->buf_len - m->buf_off);

			if (w < 0)
				return send_failed(d, m, j, "the link to it was lost mid-transfer");
			if (w == 0) { /* the channel is full: read on when it has room */
				(void)epoll_ctl(d->epfd, EPOLL_CTL_DEL, m->pipe_fd, NULL);
				return;
			}
			m->buf_off += (size_t)w;
			m->bytes += (uint64_t)w;
			m->t_byte = mono_usec();
			j->migrate_bytes = m->bytes; /* (xps: xmigrate's progress) */
			continue;
		}
		{
			int st = child_reap(d, m);

			if (st == -EAGAIN)
				return;
			if (st != 0)
				return send_failed(d, m, j, "reading its version failed (tar)");
			return src_finish_send(d, m, j);
		}
	}
}

static void src_dumped(struct daemon *d, struct migration *m, struct job *j)
{
	char dir[PATH_MAX], vs[16];
	const char *why = NULL;

	if (m->run_error) {
		_cleanup_free_ char *msg = xstrdup_printf(
			"Migration of job %.12s to node %s failed: %s; the job runs on here", m->id,
			m->node, m->run_error);

		(void)mig_send_msg(d, m->node, "migrate-abort", m->id, NULL, NULL, false);
		return mig_src_done(d, m, j, msg);
	}
	m->version = j->ckpt_last;
	m->t_dumped = mono_usec();
	if (j->state != JOB_CHECKPOINTED)
		return src_restore_local(d, m, j, "the job did not stop at its checkpoint");
	if (!nodes_peer_up(d->nodes, m->node))
		return src_restore_local(d, m, j, "the link to it was lost during the dump");
	mig_set_phase(d, j, m->node, "send");
	snprintf(vs, sizeof(vs), "%u", m->version);
	version_path(d, j->id, vs, dir, sizeof(dir));
	if (mig_src_send(d, m, dir, &why) < 0)
		return src_restore_local(d, m, j, why);
}

int mig_src_send(struct daemon *d, struct migration *m, const char *dir, const char **ret_why)
{
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	_cleanup_free_ char *text = NULL;

	m->buf = malloc(PUMP_BUF);
	if (!g || !m->buf || mig_tar_start(d, m, dir, -EBADF) < 0) {
		*ret_why = "its version cannot be read (tar)";
		return -EIO;
	}
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "type", "migrate-data");
	json_gen_kv_str(g, "job", m->id);
	json_gen_kv_uint(g, "version", m->version);
	if (m->postcopy)
		json_gen_kv_bool(g, "postcopy", true);
	json_gen_kv_bool(g, "payload", true);
	yajl_gen_map_close(g);
	text = json_gen_take(g, false);
	if (!text || nodes_stream_begin(d->nodes, m->node, text) < 0) {
		*ret_why = "the link to it was lost";
		return -ENOTCONN;
	}
	m->phase = MP_SEND;
	m->t_byte = mono_usec();
	mig_src_pump(d, m);
	return 0;
}

/* Whether another move to m's node is stopping its job or streaming, or a
 * post-copy move between the two nodes (either way) pulls its pages: the
 * node channel carries one version's stream at a time (its payload), and a
 * version would hold a running job's page faults behind it; so m's job runs
 * on until that one is sent or pulled (src_next). */
static const struct migration *stream_busy(struct daemon *d, const struct migration *m)
{
	for (struct migration *o = d->migrations; o; o = o->next)
		if (o != m && !strcmp(o->node, m->node) &&
		    ((o->outgoing && (o->phase == MP_DUMP || o->phase == MP_SEND)) ||
		     o->phase == MP_PULL))
			return o;
	return NULL;
}

/* Source: the target said yes: the job stops (its dump begins). */
static void src_stop(struct daemon *d, struct migration *m, struct job *j)
{
	struct xerr err = XERR_INIT;
	_cleanup_free_ char *msg = NULL;

	m->waiting = false;
	mig_set_phase(d, j, m->node, "dump");
	m->t_stop = mono_usec();
	m->phase = MP_DUMP;
	m->run_ended = false;
	if (m->postcopy) {
		int r = mig_relay_listen(d, m);

		if (r < 0)
			xerr_set(&err, r, "internal", "its page relay cannot listen: %s",
				 strerror(-r));
		else if (ckpt_checkpoint_lazy(d->ckpt, j, m->ps_path, &err) >= 0)
			return;
	} else if (ckpt_checkpoint_move(d->ckpt, j, &err) >= 0) {
		return;
	}
	msg = xstrdup_printf("Migration of job %.12s to node %s failed: %s; the job runs on here",
			     m->id, m->node, err.msg ? err.msg : "its checkpoint cannot begin");
	free(err.msg);
	(void)mig_send_msg(d, m->node, "migrate-abort", m->id, NULL, NULL, false);
	mig_src_done(d, m, j, msg);
}

static void src_checked(struct daemon *d, struct migration *m, struct job *j, bool ok,
			const char *reason)
{
	_cleanup_free_ char *msg = NULL;
	const struct migration *busy;

	if (!ok) {
		msg = xstrdup_printf("Node %s refused job %.12s: %s; the job runs on here", m->node,
				     m->id, reason ? reason : "no reason given");
		return mig_src_done(d, m, j, msg);
	}
	if ((busy = stream_busy(d, m))) {
		if (busy->phase == MP_PULL)
			log_info("Job %s: its move to node %s waits for the page pull of job %s "
				 "between the two nodes to end",
				 m->id, m->node, busy->id);
		else
			log_info("Job %s: its move to node %s waits for job %s's version to be "
				 "sent there",
				 m->id, m->node, busy->id);
		m->waiting = true;
		return;
	}
	src_stop(d, m, j);
}

/* Source: moves that waited for the channel go on, one per node at a time. */
static void src_next(struct daemon *d)
{
	for (struct migration *m = d->migrations; m; m = m->next) {
		struct job *j;

		if (!m->outgoing || m->phase != MP_CHECK || !m->waiting || stream_busy(d, m))
			continue;
		if ((j = daemon_find_job(d, m->id)))
			src_stop(d, m, j);
		else
			mig_src_done(d, m, NULL, NULL);
	}
}

/* The check asked of the target: the job's record and what it must find. */
static char *check_text(struct daemon *d, struct job *j, const char *cpu, bool postcopy,
			bool compress)
{
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL), rg = yajl_gen_alloc(NULL);
	_cleanup_free_ char *record = NULL;
	_cleanup_template_info_ struct template_info *t = NULL;
	_cleanup_free_ char *terr = NULL;
	struct passwd *pw = getpwuid(j->owner_uid);

	if (!g || !rg)
		return NULL;
	job_to_json(j, rg);
	record = json_gen_take(rg, false);
	if (!record)
		return NULL;
	if (j->template && strcmp(j->template, TEMPLATE_HOST) != 0)
		(void)template_load(d->catalog_fd, j->template, &t, &terr);
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "type", "migrate-check");
	json_gen_kv_str(g, "job", j->id);
	json_gen_kv_str(g, "record", record);
	json_gen_kv_str(g, "owner_name", pw ? pw->pw_name : NULL);
	json_gen_kv_str(g, "template_checksum", t ? t->checksum : NULL);
	json_gen_kv_str(g, "cpuinfo", cpu);
	if (postcopy)
		json_gen_kv_bool(g, "postcopy", true);
	if (compress)
		json_gen_kv_bool(g, "compress", true);
	yajl_gen_map_close(g);
	return json_gen_take(g, false);
}

/* A grid job moves only where its VO's policy lets it (migrate,
 * migrate_nodes), asked by a credential that still holds. */
static int vo_check(struct daemon *d, struct conn *c, struct job *j, const char *node,
		    struct xerr *err)
{
	const struct credstore_vo_policy *p = NULL;
	_cleanup_free_ char *why = NULL;
	int r;

	if (!j->grid_vo)
		return 0;
	if (c->grid && (r = grid_recheck(d, c, err)) < 0)
		return r;
	if ((r = vo_policy(d, j->grid_vo, &p, err)) < 0 || !p)
		return r;
	if (credstore_vo_check_migrate(p, j->grid_vo, node, &why) < 0)
		return xerr_set(err, -EACCES, "permission_denied", "%s",
				why ? why : "Refused by the VO's policy");
	return 0;
}

/* Whether job j can be moved from here to node, as asked (-errno in err) */
static int move_allowed(struct daemon *d, struct job *j, const char *node, bool postcopy,
			bool compress, struct xerr *err)
{
	const char *why = NULL;

	if (!d->nodes)
		return xerr_set(err, -EOPNOTSUPP, "invalid_argument",
				"This node has no node channel: set node_name, node_listen and "
				"the peers in xosd.conf (see docs/NODES.md)");
	if (!strcmp(node, d->cfg->nodes.name))
		return xerr_set(err, -EINVAL, "invalid_argument",
				"Job %.12s already runs on node %s", j->id, node);
	if (!nodes_peer_up(d->nodes, node))
		return xerr_set(err, -EHOSTUNREACH, "invalid_argument",
				"Node %s is not a peer that is up (see xnodes)", node);
	if (j->state != JOB_RUNNING || j->run || find(d, j->id, true))
		return xerr_set(err, -EBUSY, "conflict",
				"Job %.12s is %s: only a running job can be moved", j->id,
				find(d, j->id, true) ? "being moved already"
						     : job_state_to_string(j->state));
	if (j->net.mode == NETSETUP_BRIDGE && ckpt_bridge_allowed(d->ckpt, &why) < 0)
		return xerr_set(err, -EOPNOTSUPP, "invalid_argument",
				"Job %.12s cannot be moved: %s", j->id, why);
	if (postcopy && ckpt_criu_level(d->ckpt) < CKPT_LAZY_DUMP_LEVEL)
		return xerr_set(
			err, -EOPNOTSUPP, "invalid_argument",
			"Job %.12s cannot be moved with --postcopy from this node: its CRIU "
			"cannot serve lazy pages (xos patch level %u, %u needed; "
			"scripts/setup.sh builds it); move it without --postcopy",
			j->id, ckpt_criu_level(d->ckpt), CKPT_LAZY_DUMP_LEVEL);
	if (compress && !have_zstd())
		return xerr_set(err, -EOPNOTSUPP, "invalid_argument",
				"Job %.12s cannot be moved with --compress from this node: it has "
				"no %s (install zstd); move it without --compress",
				j->id, ZSTD_PATH);
	return 0;
}

/* Source: the target is asked to check the job, with this node's CPU
 * description (MP_CHECK). */
static int src_ask(struct daemon *d, struct migration *m, struct job *j, const char *cpu,
		   struct xerr *err)
{
	_cleanup_free_ char *text = check_text(d, j, cpu, m->postcopy, m->compress);
	int r;

	if (!text)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	if ((r = nodes_send(d->nodes, m->node, text)) < 0)
		return xerr_set(err, r, "internal", "Cannot reach node %s: %s", m->node,
				r == -EMSGSIZE ? "the job's record is too large" : strerror(-r));
	m->phase = MP_CHECK;
	return 0;
}

/* Whether a CRIU cpuinfo run of this daemon is under way. One at a time:
 * moves asked meanwhile (a user's many jobs at once, say) wait in MP_CPU
 * without a child, and most take the answer it leaves (cpu_next). */
static bool cpu_running(struct daemon *d)
{
	for (struct migration *m = d->migrations; m; m = m->next)
		if (m->phase == MP_CPU && m->pid > 0)
			return true;
	return false;
}

static void src_cpu_failed(struct daemon *d, struct migration *m, struct job *j,
			   const struct xerr *err)
{
	_cleanup_free_ char *msg = xstrdup_printf(
		"Job %.12s cannot be moved to node %s: %s; it runs on here", m->id, m->node,
		err->msg ? err->msg : "it is gone");

	mig_src_done(d, m, j, msg);
}

/* Source, MP_CPU: the target is asked, with this node's description if it
 * is kept now; else CRIU makes it, unless a run is under way (then m waits). */
static int src_cpu_go(struct daemon *d, struct migration *m, struct job *j, struct xerr *err)
{
	_cleanup_free_ char *cpu = NULL;
	int r = mig_cpu_describe_kept(d, &cpu, err);

	if (r > 0)
		return src_ask(d, m, j, cpu, err);
	if (r == 0 && !cpu_running(d))
		return mig_cpu_start(d, m, false, err);
	return r;
}

static void cpu_next(struct daemon *d);

/* Source: CRIU described this node's CPU (its exit status): the target is asked. */
static void src_cpu_ended(struct daemon *d, struct migration *m, struct job *j, int status)
{
	_cleanup_xerr_ struct xerr err = XERR_INIT;
	_cleanup_free_ char *cpu = NULL;

	if (mig_cpu_end(d, m, status, &cpu, &err) >= 0 && j && src_ask(d, m, j, cpu, &err) >= 0)
		return cpu_next(d);
	src_cpu_failed(d, m, j, &err);
	cpu_next(d);
}

int ops_migrate(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	const char *name = NULL, *node = NULL;
	struct migration *m;
	bool postcopy = false, compress = false;
	uint64_t t0 = mono_usec(); /* (the pre-flight counts in the move's time) */
	struct job *j;
	int r;

	if (json_get_string(t, "job", &name) < 0 || json_get_string(t, "node", &node) < 0)
		return xerr_set(err, -EINVAL, "bad_request",
				"Fields 'job' and 'node' are required");
	if (json_get(t, "postcopy") && json_get_bool(t, "postcopy", &postcopy) < 0)
		return xerr_set(err, -EINVAL, "bad_request", "Field 'postcopy' must be a boolean");
	if (json_get(t, "compress") && json_get_bool(t, "compress", &compress) < 0)
		return xerr_set(err, -EINVAL, "bad_request", "Field 'compress' must be a boolean");
	if ((r = ops_lookup(d, c, name, &j, err)) < 0 || (r = vo_check(d, c, j, node, err)) < 0)
		return r;
	if ((r = move_allowed(d, j, node, postcopy, compress, err)) < 0)
		return r;
	m = mig_new(d, j->id, node, true);
	if (!m)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	m->t0 = t0;
	m->postcopy = postcopy;
	m->compress = compress;
	/* (not kept: CRIU describes the CPU first, as a child; src_cpu_ended) */
	m->phase = MP_CPU;
	r = src_cpu_go(d, m, j, err);
	if (r < 0) {
		m->phase = MP_DONE; /* (its child, if any, is stopped with it) */
		return r;
	}
	c->mode = CONN_CKPT; /* answered when the move ends (daemon_ckpt_answer) */
	c->job = j;
	log_info("Job %s: moving to node %s%s%s (asked by uid %u)", j->id, node,
		 postcopy ? " with post-copy" : "", compress ? ", compressed" : "",
		 (unsigned)c->uid);
	return 0;
}

/* ---- the target ---- */
static int send_verdict(struct daemon *d, const char *node, const char *type, const char *id,
			const char *reason)
{
	return mig_send_msg(d, node, type, id, reason ? "reason" : NULL, reason, reason == NULL);
}

/* A record here of a job that left: moved away, or a post-copy move here
 * that was aborted (its half killed; the source ran it on). */
static bool departed(const struct job *j)
{
	return j->state == JOB_MIGRATED || (job_state_is_final(j->state) && j->migrate_phase &&
					    !strcmp(j->migrate_phase, "aborted"));
}

static int check_job(struct daemon *d, struct job *j, yajl_val h, struct xerr *err)
{
	/* (one that left this node may come back: its record here gives way) */
	struct job *known = daemon_find_job(d, j->id);
	const char *owner = NULL, *sum = NULL, *cpu = NULL;
	struct passwd *pw = getpwuid(j->owner_uid);
	_cleanup_template_info_ struct template_info *t = NULL;
	_cleanup_free_ char *terr = NULL;
	char why[256] = "";
	struct stat st;
	bool postcopy = false, compress = false;

	(void)json_get_string(h, "owner_name", &owner);
	(void)json_get_string(h, "template_checksum", &sum);
	if ((known && !departed(known)) || find(d, j->id, false))
		return xerr_set(err, -EEXIST, "refused", "a job with its id is there already");
	if (!pw || (owner && strcmp(owner, pw->pw_name) != 0))
		return xerr_set(err, -ENOENT, "refused", "it has no account '%s' with uid %u",
				owner ? owner : "?", (unsigned)j->owner_uid);
	if (j->template && strcmp(j->template, TEMPLATE_HOST) != 0) {
		if (template_load(d->catalog_fd, j->template, &t, &terr) < 0)
			return xerr_set(err, -ENOENT, "refused",
					"it has no template '%s' (import it there with xtemplate "
					"import)",
					j->template);
		if (!sum || !t->checksum || strcmp(sum, t->checksum) != 0)
			return xerr_set(err, -ESTALE, "refused",
					"its template '%s' has other content (checksum %s, the "
					"job's %s)",
					j->template, t->checksum ? t->checksum : "none",
					sum ? sum : "none");
	}
	for (size_t i = 0; i < j->n_volumes; i++)
		if (stat(j->volumes[i].src, &st) < 0 || !S_ISDIR(st.st_mode))
			return xerr_set(err, -ENOENT, "refused",
					"it has no directory %s (a volume of the job)",
					j->volumes[i].src);
	if (queue_fits_now(d, &j->sched, why, sizeof(why)) < 0)
		return xerr_set(err, -E2BIG, "refused", "it has no room for the job: %s", why);
	if (slice_free_count(d) == 0)
		return xerr_set(err, -E2BIG, "refused", "it has no free container id slice");
	if (json_get_string(h, "cpuinfo", &cpu) < 0)
		return xerr_set(err, -EINVAL, "refused", "no CPU description came with the job");
	if (json_get_bool(h, "postcopy", &postcopy) >= 0 && postcopy &&
	    ckpt_criu_level(d->ckpt) < CKPT_LAZY_RESTORE_LEVEL)
		return xerr_set(err, -EOPNOTSUPP, "refused",
				"its CRIU cannot restore a job with lazy pages (xos patch level "
				"%u, %u needed; scripts/setup.sh builds it)",
				ckpt_criu_level(d->ckpt), CKPT_LAZY_RESTORE_LEVEL);
	if (json_get_bool(h, "compress", &compress) >= 0 && compress && !have_zstd())
		return xerr_set(err, -EOPNOTSUPP, "refused",
				"it has no %s to unpack a compressed move (install zstd there, "
				"or move the job without --compress)",
				ZSTD_PATH);
	return 0; /* (the CPU: tgt_cpu_go, once the move is made) */
}

/* What a job's version can hold: its memory (the limit), its writable layer
 * (--disk), each unit's kept output, and room for CRIU's other images. No
 * memory limit: no bound from the job. */
static void job_cap(struct daemon *d, struct migration *m, const struct job *j)
{
	uint64_t logs = j->log_size ? j->log_size : d->cfg->log_size_default;
	uint64_t node = d->cfg->migrate_max_incoming;

	m->cap = UINT64_MAX;
	if (j->limits.memory && j->disk) {
		m->cap = j->limits.memory + j->disk + 2 * (j->n_units + 1) * logs + (64ULL << 20);
		m->cap_why = "the job's memory limit, its --disk and its output";
	}
	if (node && node < m->cap) {
		m->cap = node;
		m->cap_why = "migrate_max_incoming";
	}
}

/* At the data's start: half the store's free space at most (the stream is
 * kept, then unpacked beside it). */
static void space_cap(struct daemon *d, struct migration *m)
{
	struct statvfs st;
	uint64_t half;

	if (statvfs(d->cfg->checkpoint_dir, &st) < 0)
		return;
	half = (uint64_t)st.f_bavail * st.f_frsize / 2;
	if (half < m->cap) {
		m->cap = half;
		m->cap_why = "half the free space of its checkpoint store";
	}
}

static void tgt_drop(struct daemon *d, struct migration *m);

/* Target: every check passed; the source may stop the job. */
static void tgt_checked(struct daemon *d, struct migration *m)
{
	log_info("Job %s from node %s passed the pre-flight checks%s%s", m->id, m->node,
		 m->postcopy ? " (post-copy)" : "", m->compress ? " (compressed)" : "");
	m->phase = MP_CHECK;
	/* (the loader copy it has: the source need not send it) */
	(void)mig_send_msg(d, m->node, "migrate-checked", m->id,
			   m->loader_here[0] ? "loader" : NULL,
			   m->loader_here[0] ? m->loader_here : NULL, true);
}

static void tgt_refuse(struct daemon *d, const char *node, const char *id, const char *why)
{
	log_info("Refused job %s from node %s: %s", id, node, why);
	(void)send_verdict(d, node, "migrate-checked", id, why);
}

/* Target, MP_CPU: the kept answer about the source's description, if there
 * is one now; else CRIU checks it, unless a run is under way (m waits). */
static void tgt_cpu_go(struct daemon *d, struct migration *m)
{
	_cleanup_xerr_ struct xerr err = XERR_INIT;
	int r = mig_cpu_check_kept(d, m, &err);

	if (r > 0)
		return tgt_checked(d, m);
	if (r == 0 && cpu_running(d)) {
		log_info("Job %s from node %s: its CPU check waits for the one under way", m->id,
			 m->node);
		return;
	}
	if (r == 0 && mig_cpu_start(d, m, true, &err) >= 0)
		return;
	tgt_refuse(d, m->node, m->id, err.msg ? err.msg : "its CPU cannot be checked");
	tgt_drop(d, m);
}

/* Target: CRIU checked the source's CPU description (its exit status). */
static void tgt_cpu_ended(struct daemon *d, struct migration *m, int status)
{
	_cleanup_xerr_ struct xerr err = XERR_INIT;

	if (mig_cpu_end(d, m, status, NULL, &err) >= 0) {
		tgt_checked(d, m);
	} else {
		tgt_refuse(d, m->node, m->id, err.msg ? err.msg : "its CPU check failed");
		tgt_drop(d, m);
	}
	cpu_next(d);
}

/* A CRIU cpuinfo run ended: the moves that waited for it go on. */
static void cpu_next(struct daemon *d)
{
	for (struct migration *m = d->migrations; m; m = m->next) {
		_cleanup_xerr_ struct xerr err = XERR_INIT;
		struct job *j;

		if (m->phase != MP_CPU || m->pid > 0)
			continue;
		if (!m->outgoing) {
			tgt_cpu_go(d, m);
			continue;
		}
		j = daemon_find_job(d, m->id);
		if (!j)
			xerr_set(&err, -ENOENT, "internal", "the job is gone");
		if (j && src_cpu_go(d, m, j, &err) >= 0)
			continue;
		src_cpu_failed(d, m, j, &err);
	}
}

static void tgt_check(struct daemon *d, const char *node, yajl_val h)
{
	_cleanup_xerr_ struct xerr err = XERR_INIT;
	const char *id = NULL, *record = NULL, *cpu = NULL;
	struct migration *m;
	struct job *j = NULL;

	if (json_get_string(h, "job", &id) < 0 || !job_id_valid(id))
		return;
	if (json_get_string(h, "record", &record) < 0 || job_from_json(record, &j) < 0 ||
	    strcmp(j->id, id) != 0)
		xerr_set(&err, -EINVAL, "refused", "the job's record is malformed");
	else
		(void)check_job(d, j, h, &err);
	if (xerr_is_set(&err)) {
		job_free(j);
		return tgt_refuse(d, node, id, err.msg);
	}
	if (!(m = mig_new(d, id, node, false))) {
		job_free(j);
		return tgt_refuse(d, node, id, "out of memory");
	}
	job_cap(d, m, j);
	if (j->loader && loader_copy_have(d, j->loader))
		snprintf(m->loader_here, sizeof(m->loader_here), "%s", j->loader);
	job_free(j);
	(void)json_get_bool(h, "postcopy", &m->postcopy);
	(void)json_get_bool(h, "compress", &m->compress);
	/* the CPU: a kept answer, or CRIU's check as a child (tgt_cpu_ended),
	 * or after the run under way (cpu_next) */
	m->phase = MP_CPU;
	(void)json_get_string(h, "cpuinfo", &cpu);
	if (mig_cpu_take(m, cpu, &err) < 0) {
		tgt_refuse(d, node, id, err.msg);
		return tgt_drop(d, m);
	}
	tgt_cpu_go(d, m);
}

/* What an incoming move left in the store: its version being unpacked
 * (.new-V), and the job's directory if nothing else is in it. */
static void remove_unpacked(struct daemon *d, const char *id, unsigned version)
{
	char path[PATH_MAX], vs[32];

	if (version) {
		snprintf(vs, sizeof(vs), ".new-%u", version);
		version_path(d, id, vs, path, sizeof(path));
		(void)rm_rf_at(AT_FDCWD, path);
	}
	version_path(d, id, "", path, sizeof(path));
	(void)rmdir(path); /* (not if it holds versions: a job that comes back, say) */
}

static void tgt_drop(struct daemon *d, struct migration *m)
{
	mig_child_stop(d, m);
	mig_relay_close(d, m);
	if (m->phase == MP_SEND || m->phase == MP_EXTRACT)
		remove_unpacked(d, m->id, m->version);
	m->phase = MP_DONE;
}

/* A job that came and could not be restored is forgotten here (its source has it). */
static void tgt_forget_job(struct daemon *d, struct job *j)
{
	daemon_job_unlink(d, j);
	ckpt_forget(d->ckpt, j);
	/* a failed restore keeps the job's network (for a retry): a bridge
	 * job's lease, ports and rules go here, and the bridge if no other
	 * job uses it (else netsetup kept a pointer into the freed job) */
	netsetup_job_release(d->net, j->id, &j->net);
	rootfs_job_umount(d, j);
	(void)rm_rf_at(d->jobs_fd, j->id);
	slice_release(d, j);
	job_free(j);
}

static void tgt_data(struct daemon *d, const char *node, yajl_val h)
{
	const char *id = NULL;
	struct migration *m;
	char path[PATH_MAX], vs[32];
	int p[2] = { -EBADF, -EBADF }, r;
	uint64_t v = 0;

	if (json_get_string(h, "job", &id) < 0 || !(m = find(d, id, false)) ||
	    strcmp(m->node, node) != 0 || m->phase != MP_CHECK)
		return;
	if (json_get_uint(h, "version", &v) < 0 || v == 0 || v > 1000000000)
		return tgt_drop(d, m);
	m->version = (unsigned)v;
	m->phase = MP_SEND; /* (from here on, a drop removes what was unpacked) */
	snprintf(vs, sizeof(vs), ".new-%u", m->version);
	version_path(d, m->id, vs, path, sizeof(path));
	(void)rm_rf_at(AT_FDCWD, path);
	if (mkdir_p_at(AT_FDCWD, path, 0700) < 0 || pipe2(p, O_CLOEXEC) < 0)
		return tgt_drop(d, m);
	/* unpacked as it comes: the version is written once, where it stays */
	(void)fcntl(p[1], F_SETPIPE_SZ, NODES_CHUNK_MAX);
	r = mig_tar_start(d, m, path, p[0]);
	closep(&p[0]);
	if (r < 0) {
		closep(&p[1]);
		return tgt_drop(d, m);
	}
	m->file_fd = p[1];
	space_cap(d, m);
}

static struct migration *receiving(struct daemon *d, const char *node)
{
	for (struct migration *m = d->migrations; m; m = m->next)
		if (!m->outgoing && m->phase == MP_SEND && !strcmp(m->node, node))
			return m;
	return NULL;
}

static void tgt_fail(struct daemon *d, struct migration *m, const char *why)
{
	log_warn("Job %s from node %s cannot run here: %s", m->id, m->node, why);
	(void)send_verdict(d, m->node, "migrate-result", m->id, why);
	tgt_drop(d, m);
}

/* The migration a migrate-pages payload from node is being read for. */
static struct migration *pages_in(struct daemon *d, const char *node)
{
	for (struct migration *m = d->migrations; m; m = m->next)
		if (m->pages_in && !strcmp(m->node, node))
			return m;
	return NULL;
}

static void hook_chunk(void *userdata, const char *node, const void *data, size_t len)
{
	struct daemon *d = userdata;
	struct migration *m = pages_in(d, node);
	ssize_t w;

	if (m)
		return mig_relay_take(d, m, data, len);
	m = receiving(d, node);
	if (!m)
		return;
	if (m->bytes + len > m->cap) {
		_cleanup_free_ char *why = xstrdup_printf(
			"its data passed %llu MiB, the most this node takes for it (%s)",
			(unsigned long long)(m->cap >> 20), m->cap_why ? m->cap_why : "?");

		closep(&m->file_fd);
		tgt_fail(d, m, why ? why : "its data is too large");
		return;
	}
	/* (a blocking write: tar takes what the pipe holds as fast as the disk
	 * does; the pipe holds a whole chunk) */
	w = m->file_fd >= 0 ? loop_write(m->file_fd, data, len) : 0;
	if (w < 0) {
		if (w != -EPIPE) { /* (EPIPE: tar is at the archive's end) */
			log_warn("Failed to unpack job %s from node %s: %s", m->id, node,
				 strerror((int)-w));
			m->store_failed = true; /* (the end reports it) */
		}
		closep(&m->file_fd);
	}
	m->bytes += len;
}

static void tgt_extracted(struct daemon *d, struct migration *m, int status);

static void hook_payload_end(void *userdata, const char *node)
{
	struct daemon *d = userdata;
	struct migration *m = pages_in(d, node);
	const char *fault = getenv("XOS_MIGRATE_FAULT");

	if (m) {
		m->pages_in = false;
		return;
	}
	m = receiving(d, node);
	if (!m)
		return;
	if (m->store_failed || m->tar_status > 0)
		return tgt_fail(d, m, "its data could not be stored");
	closep(&m->file_fd); /* (tar sees the end, finishes and exits: tgt_extracted) */
	m->phase = MP_EXTRACT;
	if (fault && !strcmp(fault, "hold")) { /* tests: killed before the restore */
		log_info("Job %s from node %s: held (XOS_MIGRATE_FAULT=hold)", m->id, node);
		m->held = true;
		return;
	}
	if (m->tar_status == 0) /* (it ended already) */
		tgt_extracted(d, m, 0);
}

/* The record of a job that moved away from here (MIGRATED) and comes back:
 * it gives way to the one that comes (its versions here went when it left). */
static int drop_departed(struct daemon *d, const char *id)
{
	struct job *j = daemon_find_job(d, id);

	if (!j)
		return 0;
	if (!departed(j) || j->run || j->pidfd >= 0)
		return -EEXIST;
	for (struct conn *c = d->conns; c; c = c->next)
		if (c->job == j)
			return -EEXIST; /* (a client follows it: rare, and refused) */
	/* (out of the list and of the id and name tables: a record left in a
	 * table after its free was read by the next lookup in its bucket) */
	daemon_job_unlink(d, j);
	(void)rm_rf_at(d->jobs_fd, j->id);
	slice_release(d, j);
	job_free(j);
	log_info("Job %s comes back to this node: its record of the move away gives way", id);
	return 0;
}

/* The version unpacked in dir without the job's loader (the source left it
 * out: this node has the copy): that copy put in, as every version holds
 * the loader its job ran. */
static int put_loader_here(struct daemon *d, struct migration *m, const char *dir)
{
	_cleanup_close_ int vfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int r;

	if (vfd < 0)
		return -errno;
	if (!m->loader_here[0] || faccessat(vfd, "loader", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	r = loader_copy_put(d, m->loader_here, vfd);
	if (r >= 0)
		log_info("Job %s from node %s: its loader is this node's copy (not sent)", m->id,
			 m->node);
	return r;
}

static void tgt_extracted(struct daemon *d, struct migration *m, int status)
{
	char from[PATH_MAX], to[PATH_MAX], vs[32];
	struct xerr err = XERR_INIT;
	struct job *j = NULL;
	int r;

	snprintf(vs, sizeof(vs), ".new-%u", m->version);
	version_path(d, m->id, vs, from, sizeof(from));
	snprintf(vs, sizeof(vs), "%u", m->version);
	version_path(d, m->id, vs, to, sizeof(to));
	if (status == 0 && put_loader_here(d, m, from) < 0) {
		(void)rm_rf_at(AT_FDCWD, from);
		return tgt_fail(d, m, "the copy of its loader this node had is gone");
	}
	if (status != 0 || rename(from, to) < 0) {
		(void)rm_rf_at(AT_FDCWD, from);
		return tgt_fail(d, m, "its version cannot be unpacked (tar)");
	}
	snprintf(from, sizeof(from), "%s/.migrate-%s.tar", d->cfg->checkpoint_dir, m->id);
	(void)unlink(from);
	r = drop_departed(d, m->id);
	if (r >= 0)
		r = daemon_adopt_migrated(d, m->id, &j);
	if (r < 0) {
		snprintf(from, sizeof(from), "%s/%s", d->cfg->checkpoint_dir, m->id);
		(void)rm_rf_at(AT_FDCWD, from);
		return tgt_fail(d, m,
				r == -EBUSY    ? "its container ids are in use there"
				: r == -EEXIST ? "a job with its id is there already"
					       : "it cannot be taken over");
	}
	mig_set_phase(d, j, m->node, "incoming");
	m->phase = MP_RESTORE;
	m->run_ended = false;
	if (m->postcopy) {
		r = mig_relay_listen(d, m);
		if (r >= 0 && ckpt_restart_lazy(d->ckpt, j, m->version, m->ps_path, &err) >= 0)
			return;
		if (r < 0)
			xerr_set(&err, r, "internal", "its page relay cannot listen: %s",
				 strerror(-r));
	} else if (ckpt_restart(d->ckpt, j, m->version, &err) >= 0) {
		return;
	}
	tgt_forget_job(d, j);
	tgt_fail(d, m, err.msg ? err.msg : "its restore cannot begin");
	free(err.msg);
}

static void tgt_restored(struct daemon *d, struct migration *m, struct job *j)
{
	if (m->aborting && !m->run_error && j && j->state == JOB_RUNNING) {
		m->phase = MP_PULL; /* (restored after its source gave it up) */
		return mig_tgt_abort_pull(d, m, "its source node gave it up during the restore");
	}
	if (m->run_error || !j || j->state != JOB_RUNNING) {
		_cleanup_free_ char *why = xstrdup_printf(
			"its restore failed: %s", m->run_error ? m->run_error : "it did not run");

		if (j)
			tgt_forget_job(d, j);
		return tgt_fail(d, m, why);
	}
	free(j->reason);
	j->reason = xstrdup_printf("moved here from node %s", m->node);
	if (m->postcopy && !m->ps_eof) { /* its pages still come from there */
		mig_set_phase(d, j, m->node, "pull-in");
		log_info("Job %s from node %s runs here; its pages come from there", j->id,
			 m->node);
		(void)send_verdict(d, m->node, "migrate-result", m->id, NULL);
		m->phase = MP_PULL;
		return;
	}
	mig_set_phase(d, j, NULL, NULL);
	(void)daemon_persist_job(d, j);
	log_info("Job %s from node %s runs here", j->id, m->node);
	(void)send_verdict(d, m->node, "migrate-result", m->id, NULL);
	if (m->postcopy)
		mig_drop_version(d, m, j);
	m->phase = MP_DONE;
}

static void tgt_query(struct daemon *d, const char *node, const char *id)
{
	struct migration *m = find(d, id, false);
	struct job *j = daemon_find_job(d, id);

	if (m && (m->phase == MP_EXTRACT || m->phase == MP_RESTORE))
		return; /* (its result goes when it is known) */
	if (j && job_is_live(j) && j->state != JOB_CHECKPOINTED &&
	    (!j->migrate_phase || !strcmp(j->migrate_phase, "pull-in")))
		(void)send_verdict(d, node, "migrate-result", id, NULL);
	else
		(void)send_verdict(d, node, "migrate-result", id, "the job is not here");
}

/* ---- the channel's hooks ---- */
/* A message for the target's side of a move (false: not one) */
static bool tgt_message(struct daemon *d, const char *node, const char *type, const char *id,
			yajl_val h, bool payload)
{
	struct migration *m;

	if (!strcmp(type, "migrate-check"))
		return tgt_check(d, node, h), true;
	if (!strcmp(type, "migrate-data"))
		return tgt_data(d, node, h), true;
	if (!strcmp(type, "migrate-query"))
		return tgt_query(d, node, id), true;
	if (!strcmp(type, "migrate-pages")) {
		m = find(d, id, true);
		if (!m)
			m = find(d, id, false);
		if (m && m->postcopy && payload && !strcmp(m->node, node))
			m->pages_in = true; /* (else its chunks are dropped) */
		return true;
	}
	if (strcmp(type, "migrate-abort") != 0)
		return false;
	if (!(m = find(d, id, false)) || strcmp(m->node, node) != 0)
		return true;
	if (m->phase == MP_PULL)
		mig_tgt_abort_pull(d, m, "its source node gave it up");
	else if (m->phase == MP_RESTORE)
		m->aborting = true; /* (acted on when the restore ends) */
	else if (m->phase == MP_CHECK || m->phase == MP_CPU || m->phase == MP_SEND)
		tgt_drop(d, m);
	return true;
}

/* The target's result for move m of job j (id): it runs the job, or why not */
static void src_result(struct daemon *d, const char *node, const char *id, struct migration *m,
		       struct job *j, bool ok, const char *reason)
{
	const char *fault = getenv("XOS_MIGRATE_FAULT");

	if (!reason)
		reason = "it did not say why";
	if (m->postcopy && (m->phase == MP_SEND || m->phase == MP_PULL)) {
		if (!ok)
			return mig_src_abort_pull(d, m, j, reason);
		m->target_ok = true;
		m->t_resumed = mono_usec();
		log_info("Job %s runs on node %s (downtime %llu ms); its pages are pulled", id,
			 node, (unsigned long long)((m->t_resumed - m->t_stop) / 1000));
		if (m->pull_done)
			mig_src_let_go(d, m, j);
		return;
	}
	if (!ok && m->phase == MP_SEND) {
		/* the target dropped what came: the stream goes (after the phase
		 * changed, so that the channel's loss is not a second failure) */
		src_restore_local(d, m, j, reason);
		nodes_stream_abort(d->nodes, node);
		return;
	}
	if (m->phase != MP_DOUBT)
		return;
	if (ok && fault && !strcmp(fault, "die-before-let-go")) { /* tests */
		log_warn("Job %s runs on node %s: xosd dies now (XOS_MIGRATE_FAULT)", id, node);
		raise(SIGKILL);
	}
	if (ok)
		return mig_src_let_go(d, m, j);
	if (m->postcopy) { /* (its memory went there: nothing to restore here) */
		log_error("Job %s: node %s does not run it, and its memory went there: "
			  "the job is lost",
			  id, node);
		return mig_src_done(d, m, j, "The job was lost in its post-copy move");
	}
	src_restore_local(d, m, j, reason);
}

static void hook_message(void *userdata, const char *node, yajl_val h, bool payload)
{
	struct daemon *d = userdata;
	const char *type = NULL, *id = NULL, *reason = NULL;
	bool ok = false;
	struct migration *m;
	struct job *j;

	if (routes_message(d, node, h))
		return;
	if (json_get_string(h, "type", &type) < 0 || json_get_string(h, "job", &id) < 0 ||
	    !job_id_valid(id))
		return;
	(void)json_get_bool(h, "ok", &ok);
	(void)json_get_string(h, "reason", &reason);
	if (tgt_message(d, node, type, id, h, payload))
		return;
	m = find(d, id, true);
	j = daemon_find_job(d, id);
	if (!m || !j || strcmp(m->node, node) != 0)
		return;
	if (!strcmp(type, "migrate-checked") && m->phase == MP_CHECK) {
		const char *loader = NULL;

		(void)json_get_string(h, "loader", &loader);
		m->loader_skip = ok && loader && j->loader && !strcmp(loader, j->loader);
		if (m->loader_skip)
			log_info("Job %s: node %s has its loader: the version goes without it",
				 m->id, m->node);
		return src_checked(d, m, j, ok, reason);
	}
	if (!strcmp(type, "migrate-result"))
		src_result(d, node, id, m, j, ok, reason);
}

static void hook_lost(void *userdata, const char *node)
{
	struct daemon *d = userdata;

	for (struct migration *m = d->migrations; m; m = m->next) {
		struct job *j = daemon_find_job(d, m->id);

		if (strcmp(m->node, node) != 0 || m->phase == MP_DONE)
			continue;
		if (!m->outgoing) { /* (another connection of the peer may have closed) */
			if (m->postcopy && m->phase == MP_PULL && mig_tgt_pulled(m))
				mig_tgt_pull_done(d, m); /* (every page came just before) */
			else if (m->postcopy && m->phase == MP_PULL) /* (a message may be lost) */
				mig_tgt_abort_pull(d, m, "the link to its source node was lost");
			else if (m->postcopy && m->phase == MP_RESTORE)
				m->aborting = true;
			else if (m->phase == MP_CHECK || m->phase == MP_CPU ||
				 (m->phase == MP_SEND && !nodes_receiving(d->nodes, node)))
				tgt_drop(d, m);
			continue;
		}
		if (!j)
			continue;
		if (m->postcopy && m->phase == MP_DUMP) {
			m->aborting = true; /* (when CRIU's status comes) */
			continue;
		}
		if (m->postcopy && (m->phase == MP_SEND || m->phase == MP_PULL) && !m->pull_done) {
			mig_src_abort_pull(d, m, j, "the link to it was lost");
			continue;
		}
		if (m->phase == MP_CHECK || m->phase == MP_CPU)
			mig_src_done(d, m, j,
				     "The node was lost before the job stopped; it runs on here");
		else if (m->phase == MP_SEND && !nodes_stream_open(d->nodes, node))
			src_restore_local(d, m, j, "the link to it was lost mid-transfer");
		else if (m->phase == MP_DOUBT)
			m->query_sent = false;
	}
}

static void hook_writable(void *userdata, const char *node)
{
	struct daemon *d = userdata;

	for (struct migration *m = d->migrations; m; m = m->next)
		if (m->postcopy && m->ps_fd >= 0 && m->tx_len && !strcmp(m->node, node))
			mig_relay_pump(d, m);
	for (struct migration *m = d->migrations; m; m = m->next)
		if (m->outgoing && m->phase == MP_SEND && !strcmp(m->node, node) &&
		    m->pipe_fd >= 0 && !m->tar_eof) {
			(void)daemon_epoll_add(d, m->pipe_fd, EPOLLIN, EP_MIGRATE, m);
			mig_src_pump(d, m);
		}
}

void migrate_hooks(struct nodes_hooks *h)
{
	h->message = hook_message;
	h->chunk = hook_chunk;
	h->payload_end = hook_payload_end;
	h->peer_lost = hook_lost;
	h->writable = hook_writable;
}

/* ---- the daemon's side ---- */
bool migrate_answer(struct daemon *d, struct job *j, const struct xerr *err)
{
	struct migration *m = find(d, j->id, true);

	if (!m)
		m = find(d, j->id, false);
	if (m && m->outgoing && m->postcopy && m->phase != MP_CHECK && m->phase != MP_CPU) {
		m->run_ended = m->criu_ended = true; /* (the lazy dump's end: src_pull_ended) */
		free(m->run_error);
		m->run_error = xerr_is_set(err) && err->msg ? strdup(err->msg) : NULL;
		return true;
	}
	if (!m || (m->phase != MP_DUMP && m->phase != MP_LOCAL && m->phase != MP_RESTORE))
		return false;
	if (m->phase == MP_LOCAL) { /* the client hears why the move failed */
		_cleanup_free_ char *msg = NULL;

		if (xerr_is_set(err))
			msg = xstrdup_printf(
				"%s, but its restart here failed too (%s): xrestart it", m->failure,
				err->msg);
		answer_fail(d, j, "migrate_failed", msg ? msg : m->failure);
		m->phase = MP_DONE;
		return true;
	}
	m->run_ended = true; /* (acted on in migrate_tick: the run is not over yet) */
	free(m->run_error);
	m->run_error = xerr_is_set(err) && err->msg ? strdup(err->msg) : NULL;
	return true;
}

void migrate_event(struct daemon *d, void *ptr)
{
	struct migration *m = ptr;
	int st;

	if (m->phase == MP_CPU) {
		if ((st = child_reap(d, m)) == -EAGAIN)
			return;
		if (m->outgoing)
			return src_cpu_ended(d, m, daemon_find_job(d, m->id), st < 0 ? 255 : st);
		return tgt_cpu_ended(d, m, st < 0 ? 255 : st);
	}
	if (m->postcopy) {
		if (m->ps_listen >= 0)
			mig_relay_accept(d, m);
		if (m->status_fd >= 0)
			mig_src_status(d, m);
		if (m->ps_fd >= 0 && m->rx_len)
			mig_relay_flush(d, m);
		if (m->ps_fd >= 0 && m->phase != MP_ABORT)
			mig_relay_pump(d, m);
		if (m->phase == MP_DONE || m->phase == MP_ABORT || m->phase == MP_PULL)
			return;
	}
	if (m->outgoing && m->phase == MP_SEND)
		return mig_src_pump(d, m);
	if (!m->outgoing && m->phase == MP_SEND && (st = child_reap(d, m)) != -EAGAIN) {
		m->tar_status = st < 0 ? 1 : st; /* (the payload's end acts on it) */
		if (st != 0)
			log_warn("Unpacking job %s from node %s failed (tar: %d)", m->id, m->node,
				 st);
		closep(&m->file_fd);
		return;
	}
	if (!m->outgoing && m->phase == MP_EXTRACT && (st = child_reap(d, m)) != -EAGAIN &&
	    !m->held)
		tgt_extracted(d, m, st);
}

/* The most a CRIU cpuinfo run may take, in seconds */
static unsigned cpu_run_max_s(void)
{
	const char *s = getenv("XOS_MIGRATE_CPU_MAX_S");
	unsigned v;

	return s && sscanf(s, "%u", &v) == 1 && v > 0 ? v : CPU_RUN_MAX_S;
}

int migrate_tick(struct daemon *d)
{
	bool stalls = false;

	for (struct migration *m = d->migrations; m; m = m->next) {
		struct job *j = daemon_find_job(d, m->id);

		if (m->run_ended && (!j || !j->run)) {
			m->run_ended = false;
			if (m->outgoing && m->postcopy)
				mig_src_pull_ended(d, m, j);
			else if (m->phase == MP_DUMP && j)
				src_dumped(d, m, j);
			else if (m->phase == MP_RESTORE)
				tgt_restored(d, m, j);
		}
		if (m->postcopy && mig_relay_pending(m) && m->phase != MP_ABORT)
			mig_relay_pump(d,
				       m); /* (a message that could not begin: another was open) */
		if (m->outgoing && stall_release(d, m))
			stalls = true;
		/* a stream that stays still (a tar that reads nothing, a target
		 * that takes nothing) keeps its channel alive with keepalives:
		 * bounded here */
		if (m->outgoing && m->phase == MP_SEND && j &&
		    mono_usec() - m->t_byte > d->cfg->dump_timeout_us)
			send_failed(d, m, j,
				    "its version's stream stalled (no byte went for "
				    "dump_timeout)");
		if (m->postcopy && m->outgoing && m->phase == MP_PULL && !m->pull_done &&
		    mono_usec() - m->t_page > d->cfg->dump_timeout_us && j)
			mig_src_abort_pull(d, m, j,
					   "its pull stalled (no page moved for dump_timeout)");
		/* (a CRIU that does not take the abort is killed: the tasks run on) */
		if (m->postcopy && m->phase == MP_ABORT && j && j->run && m->t_abort &&
		    mono_usec() - m->t_abort > 10000000) {
			log_warn("Job %s: CRIU did not stop serving its pages: killed", m->id);
			m->t_abort = 0;
			ckpt_abort(d->ckpt, j, 0);
		}
		if (m->phase == MP_CPU && m->pid > 0 &&
		    mono_usec() - m->t_cpu > cpu_run_max_s() * 1000000ULL) {
			log_warn("Job %s: CRIU's cpuinfo ran for over %u s: killed", m->id,
				 cpu_run_max_s());
			mig_child_stop(d, m);
			if (m->outgoing)
				src_cpu_ended(d, m, j, MIG_CPU_TIMED_OUT);
			else
				tgt_cpu_ended(d, m, MIG_CPU_TIMED_OUT);
		}
		if (m->outgoing && m->phase == MP_DOUBT && !m->query_sent && d->nodes &&
		    nodes_peer_up(d->nodes, m->node) &&
		    mig_send_msg(d, m->node, "migrate-query", m->id, NULL, NULL, false) >= 0)
			m->query_sent = true;
	}
	src_next(d);
	mig_free_done(d);
	for (struct migration *m = d->migrations; m; m = m->next) {
		if (m->run_ended || (m->postcopy && mig_relay_pending(m)))
			return 10;
		if (stalls || (m->outgoing && m->phase == MP_DOUBT && !m->query_sent) ||
		    (m->outgoing && m->phase == MP_SEND) || m->phase == MP_CPU ||
		    (m->postcopy && m->outgoing && (m->phase == MP_PULL || m->phase == MP_ABORT)))
			return 1000;
	}
	return -1;
}

/* A version an incoming move was unpacking when xosd stopped (.new-V),
 * and the job's directory with it if nothing else is left there. */
static void remove_new_versions(struct daemon *d, int sfd, const char *id)
{
	_cleanup_close_ int jfd = open_dir_at(sfd, id);
	DIR *dir = jfd >= 0 ? opendir_dup(jfd) : NULL;
	struct dirent *de;
	bool removed = false;

	if (!dir)
		return;
	while ((de = readdir(dir)))
		if (str_has_prefix(de->d_name, ".new-")) {
			log_info(
				"Removed %s/%s/%s, what a move to this node left when xosd stopped",
				d->cfg->checkpoint_dir, id, de->d_name);
			(void)rm_rf_at(jfd, de->d_name);
			removed = true;
		}
	closedir(dir);
	if (removed)
		(void)unlinkat(sfd, id, AT_REMOVEDIR); /* (only if empty) */
}

/* Incoming data of moves that were cut off ("<checkpoint_dir>/.migrate-ID.tar"). */
static void remove_incoming(struct daemon *d)
{
	_cleanup_close_ int fd = open(d->cfg->checkpoint_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? opendir_dup(fd) : NULL;
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir)))
		if (str_has_prefix(de->d_name, ".migrate-")) { /* (an xosd before 2026-12) */
			log_info("Removed %s/%s, what a move to this node left when xosd stopped",
				 d->cfg->checkpoint_dir, de->d_name);
			(void)unlinkat(fd, de->d_name, 0);
		} else if (job_id_valid(de->d_name)) {
			remove_new_versions(d, fd, de->d_name);
		}
	closedir(dir);
}

/* xosd stops: no CRIU of a CPU check outlives it. The other moves' children
 * and CRIU's sockets are left as they are (xosd's exit closes its ends;
 * migrate_startup picks their state up at the next start). */
void migrate_stop(struct daemon *d)
{
	while (d->migrations) {
		struct migration *m = d->migrations;

		d->migrations = m->next;
		if (m->phase == MP_CPU)
			mig_child_stop(d, m);
		mig_cpu_clear(m);
		free(m->buf);
		free(m->rx);
		free(m->tx);
		free(m->ps_path);
		free(m->run_error);
		free(m->failure);
		free(m);
	}
}

/* The directories of CPU checks a killed xosd left in the run directory. */
static void remove_cpu_dirs(struct daemon *d)
{
	_cleanup_close_ int fd = open(d->cfg->run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? opendir_dup(fd) : NULL;
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir)))
		if (str_has_prefix(de->d_name, "migrate-cpu."))
			(void)rm_rf_at(fd, de->d_name);
	closedir(dir);
}

/* At start-up: what a migration under way when xosd stopped leaves. */
void migrate_startup(struct daemon *d)
{
	remove_incoming(d);
	remove_cpu_dirs(d);
	for (struct job *j = d->jobs, *next; j; j = next) {
		const char *ph = j->migrate_phase;
		struct migration *m;

		next = j->next;
		if (!ph || !strcmp(ph, "migrated") || !strcmp(ph, "aborted"))
			continue;
		if (!strcmp(ph, "pull-in")) { /* target: its pages' relay is gone */
			log_warn("Job %s from node %s had not all its pages when xosd stopped: "
				 "killed here (its source node runs it on)",
				 j->id, j->migrate_node ? j->migrate_node : "?");
			mig_set_phase(d, j, j->migrate_node, "aborted");
			mig_kill_half(d, j);
			ckpt_forget(d->ckpt, j);
			continue;
		}
		if (!strcmp(ph, "incoming")) { /* target: not running yet: the source has it */
			if (j->state == JOB_RUNNING) {
				mig_set_phase(d, j, NULL, NULL);
				continue;
			}
			log_warn("Job %s from node %s was not restored here before xosd stopped: "
				 "dropped (its source node has it)",
				 j->id, j->migrate_node ? j->migrate_node : "?");
			tgt_forget_job(d, j);
			continue;
		}
		m = d->nodes && j->migrate_node ? mig_new(d, j->id, j->migrate_node, true) : NULL;
		if (!strcmp(ph, "pull") && m && j->state == JOB_CHECKPOINTED) {
			/* (every page went before xosd stopped: the target has it) */
			log_info("Job %s: its post-copy move to node %s was pulled whole when "
				 "xosd stopped: asking that node",
				 j->id, m->node);
			m->postcopy = m->pull_done = m->criu_ended = true;
			m->t_stop = m->t_ready = m->t_sent = m->t_resumed = mono_usec();
			m->phase = MP_DOUBT;
			continue;
		}
		if (!strcmp(ph, "doubt") && m && j->state == JOB_CHECKPOINTED) {
			log_info("Job %s: its move to node %s was in doubt when xosd stopped: "
				 "asking that node",
				 j->id, m->node);
			m->version = j->ckpt_last;
			m->phase = MP_DOUBT;
			continue;
		}
		if (m && j->state == JOB_CHECKPOINTED && strcmp(ph, "check") != 0) {
			m->version = j->ckpt_last;
			src_restore_local(d, m, j, "xosd stopped during the move");
			continue;
		}
		if (m)
			m->phase = MP_DONE;
		mig_set_phase(d, j, NULL, NULL);
	}
}
