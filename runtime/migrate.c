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

#include "nodes/nodes.h"
#include "runtime/runtime-internal.h"
#include "templates/templates.h"

#define CPUINFO_MAX 65536
#define PUMP_BUF (256u << 10)
#define RELAY_CHUNK (256u << 10) /* post-copy: bytes read from CRIU's socket at once */
#define RELAY_RX_MAX (64u << 20) /* ...and the most kept for it from the peer */
#define PAGES_DIR "pages"        /* the relays' sockets, in the run directory (0700) */

enum phase {
	MP_CHECK,   /* source: asked the target; target: checked, awaiting the data */
	MP_DUMP,    /* source: the dump (--stop) runs */
	MP_SEND,    /* source: the version streams; target: it arrives */
	MP_DOUBT,   /* source: all sent, the target's word awaited */
	MP_LOCAL,   /* source: restoring here after a failure */
	MP_EXTRACT, /* target: unpacking the version */
	MP_RESTORE, /* target: the restore runs */
	MP_PULL,    /* post-copy: the job runs on the target, its pages are pulled */
	MP_ABORT,   /* post-copy, source: CRIU told to stop serving; the job runs on here */
	MP_DONE,    /* to be freed */
};

struct migration {
	struct migration *next;
	char id[XOS_JOB_ID_HEX + 1];
	char node[NODES_NAME_MAX + 1];
	bool outgoing;
	enum phase phase;
	unsigned version;
	bool run_ended; /* the dump or restore ended (ckpt's answer came) */
	char *run_error;
	char *failure; /* source: why the move failed (the client's answer) */
	bool query_sent;
	uint64_t t0, t_stop, t_dumped, t_sent, bytes;
	/* the tar child (source: creating; target: extracting) */
	pid_t pid;
	int pidfd, pipe_fd, file_fd;
	bool tar_eof;
	uint8_t *buf;
	size_t buf_len, buf_off;
	/* target: the most its data may take, and what sets it (incoming_cap) */
	uint64_t cap;
	const char *cap_why;
	bool held; /* target, tests: the data unpacked, not restored (XOS_MIGRATE_FAULT=hold) */
	/* target: tar ended before the payload did (its status; -1: not yet).
	 * tar stops reading at the archive's end marker, before the padding
	 * after it: that is no failure, the rest is dropped */
	int tar_status;
	bool store_failed; /* target: the data could not be handed to tar */
	/* post-copy (DECISIONS (ar)): CRIU's page socket relayed over the
	 * channel as migrate-pages messages */
	bool postcopy;
	int ps_listen; /* the socket the shim (source) or lazy-pages daemon (target) reaches */
	char *ps_path;
	int ps_fd;     /* the relay's end of CRIU's page socket */
	int status_fd; /* source: CRIU's status pipe (its images are out) */
	int guard_fd;  /* source: the connection the shim's guard waits on */
	uint8_t *rx;   /* from the peer, for ps_fd */
	size_t rx_len, rx_cap;
	uint8_t *tx; /* from ps_fd, for the peer */
	size_t tx_len, tx_off;
	bool tx_open;    /* a migrate-pages message of ours is open on the channel */
	bool pages_in;   /* one of the peer's is being read */
	bool ps_eof;     /* ps_fd's other end closed */
	bool ps_armed;   /* ps_fd is in the event loop */
	bool target_ok;  /* source: the target said the job runs there */
	bool pull_done;  /* source: CRIU ended well (every page was pulled) */
	bool aborting;   /* give up at the first chance (the link went) */
	bool criu_ended; /* source: the lazy dump ended (CRIU serves no more) */
	uint64_t t_ready, t_resumed, t_page, pages_bytes;
	uint64_t t_abort; /* source: when CRIU was told to stop serving */
};

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

static void child_stop(struct daemon *d, struct migration *m)
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

static void relay_close(struct daemon *d, struct migration *m);

static void mig_free_done(struct daemon *d)
{
	for (struct migration **pp = &d->migrations; *pp;) {
		struct migration *m = *pp;

		if (m->phase != MP_DONE) {
			pp = &m->next;
			continue;
		}
		*pp = m->next;
		child_stop(d, m);
		relay_close(d, m);
		free(m->run_error);
		free(m->failure);
		free(m);
	}
}

/* The job's migration phase, written (durably) before it is acted on. */
static void set_phase(struct daemon *d, struct job *j, const char *node, const char *phase)
{
	int r;

	free(j->migrate_node);
	free(j->migrate_phase);
	j->migrate_node = node ? strdup(node) : NULL;
	j->migrate_phase = phase ? strdup(phase) : NULL;
	if (!phase || !strcmp(phase, "migrated"))
		j->migrate_bytes = 0;
	r = daemon_persist_job_durably(d, j);
	if (r < 0)
		log_warn("Failed to persist job %s: %s", j->id, strerror(-r));
}

/* ---- messages ---- */
static int send_msg(struct daemon *d, const char *node, const char *type, const char *id,
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

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[2 * n] = 0;
}

static int hex_decode(const char *in, uint8_t *out, size_t max, size_t *ret_n)
{
	size_t n = strlen(in);

	if (n % 2 || n / 2 > max)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;

		if (sscanf(in + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	*ret_n = n / 2;
	return 0;
}

/* ---- running criu and tar ---- */
static int run_wait(char *const *argv, const char *what, struct xerr *err)
{
	/* (its output goes to xosd's log) */
	struct spawn_opts o = { .path = argv[0],
				.argv = argv,
				.first_fd = 1,
				.fds = { STDERR_FILENO, STDERR_FILENO },
				.n_fds = 2 };
	_cleanup_close_ int report = -EBADF;
	pid_t pid;
	int status = 0, r;

	r = spawn_program(&o, &pid, &report);
	if (r < 0)
		return xerr_set(err, r, "internal", "Cannot run %s: %s", argv[0], strerror(-r));
	r = spawn_wait(pid, 10000000, &status);
	if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return xerr_set(err, -EIO, "refused", "%s", what);
	return 0;
}

static const char *criu_path(void)
{
	return access("/usr/local/sbin/criu", X_OK) == 0 ? "/usr/local/sbin/criu"
							 : "/usr/sbin/criu";
}

/* This node's CPU as CRIU describes it (cpuinfo.img), hex-encoded. */
static int cpuinfo_dump(struct daemon *d, char **ret, struct xerr *err)
{
	char dir[PATH_MAX];
	_cleanup_free_ char *img = NULL;
	_cleanup_close_ int dfd = -EBADF;
	const char *forged = getenv("XOS_MIGRATE_CPUINFO");
	size_t len = 0;
	int r;

	/* tests: the image of a CPU of another kind, sent instead of this one's */
	if (forged && forged[0] == '/') {
		r = read_file_at(AT_FDCWD, forged, CPUINFO_MAX, &img, &len);
		if (r < 0)
			return xerr_set(err, r, "internal", "Cannot read %s: %s", forged,
					strerror(-r));
		goto encode;
	}
	snprintf(dir, sizeof(dir), "%s/migrate-cpu.XXXXXX", d->cfg->run_dir);
	if (!mkdtemp(dir))
		return xerr_set(err, -errno, "internal", "Cannot make a directory in %s: %m",
				d->cfg->run_dir);
	{
		char *const argv[] = { (char *)criu_path(), "cpuinfo", "dump", "-D", dir, NULL };

		r = run_wait(argv, "criu cpuinfo dump failed on this node", err);
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r >= 0 && (r = read_file_at(dfd, "cpuinfo.img", CPUINFO_MAX, &img, &len)) < 0)
		xerr_set(err, r, "internal", "Cannot read CRIU's cpuinfo.img: %s", strerror(-r));
	(void)rm_rf_at(AT_FDCWD, dir);
	if (r < 0)
		return r;
encode:
	*ret = malloc(2 * len + 1);
	if (!*ret)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	hex_encode((const uint8_t *)img, len, *ret);
	return 0;
}

/* Whether this node's CPU runs what the source's dumped (criu cpuinfo check). */
static int cpuinfo_check(struct daemon *d, const char *hex, struct xerr *err)
{
	char dir[PATH_MAX];
	_cleanup_free_ uint8_t *img = malloc(CPUINFO_MAX);
	_cleanup_close_ int dfd = -EBADF;
	size_t n = 0;
	int r;

	if (!img || hex_decode(hex, img, CPUINFO_MAX, &n) < 0)
		return xerr_set(err, -EINVAL, "refused", "its CPU description is malformed");
	snprintf(dir, sizeof(dir), "%s/migrate-cpu.XXXXXX", d->cfg->run_dir);
	if (!mkdtemp(dir))
		return xerr_set(err, -errno, "internal", "cannot make a directory: %m");
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = dfd < 0 ? -errno : write_file_atomic_at(dfd, "cpuinfo.img", img, n, 0600, false);
	if (r >= 0) {
		char *const argv[] = { (char *)criu_path(), "cpuinfo", "check", "-D", dir, NULL };

		r = run_wait(argv,
			     "its CPU is not compatible with the job's source node's (criu "
			     "cpuinfo check failed): the job's code may use instructions this "
			     "CPU lacks",
			     err);
	} else {
		xerr_set(err, r, "internal", "cannot write the CPU description: %s", strerror(-r));
	}
	(void)rm_rf_at(AT_FDCWD, dir);
	return r;
}

/* tar of dir (c: create to a pipe; x: extract from a file) as a child
 * watched in the event loop. */
static int tar_start(struct daemon *d, struct migration *m, const char *dir, int in_fd)
{
	/* (a lazy dump's CRIU goes on writing its log while it serves) */
	char *const cargv[] = { "/bin/tar",
				"--xattrs",
				"--xattrs-include=*",
				"--numeric-owner",
				"--exclude=./images/dump.log",
				"-C",
				(char *)dir,
				"-cf",
				"-",
				".",
				NULL };
	char *const xargv[] = { "/bin/tar", "--xattrs", "--xattrs-include=*", "--numeric-owner",
				"-p",       "-C",       (char *)dir,          "-xf",
				"-",        NULL };
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
	m->pidfd = (int)syscall(SYS_pidfd_open, m->pid, 0);
	if (m->pidfd < 0)
		return -errno;
	r = daemon_epoll_add(d, m->pidfd, EPOLLIN, EP_MIGRATE, m);
	if (r >= 0 && m->pipe_fd >= 0)
		r = daemon_epoll_add(d, m->pipe_fd, EPOLLIN, EP_MIGRATE, m);
	return r;
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
	uint32_t ev = (m->tx_len == 0 && !m->ps_eof ? EPOLLIN : 0) | (m->rx_len ? EPOLLOUT : 0);

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

static void relay_close(struct daemon *d, struct migration *m)
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
static int relay_listen(struct daemon *d, struct migration *m)
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
static void relay_accept(struct daemon *d, struct migration *m)
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

static void relay_broken(struct daemon *d, struct migration *m, const char *why);
static void tgt_pull_done(struct daemon *d, struct migration *m);
static void tgt_abort_pull(struct daemon *d, struct migration *m, const char *why);
static void drop_version(struct daemon *d, struct migration *m, struct job *j);

/* What came from the peer, into CRIU's socket as it takes it. */
static void relay_flush(struct daemon *d, struct migration *m)
{
	while (m->rx_len && m->ps_fd >= 0) {
		ssize_t w = send(m->ps_fd, m->rx, m->rx_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w < 0)
			return relay_broken(d, m, "CRIU's page socket closed");
		memmove(m->rx, m->rx + w, m->rx_len - (size_t)w);
		m->rx_len -= (size_t)w;
	}
	relay_arm(d, m);
}

static void relay_take(struct daemon *d, struct migration *m, const void *data, size_t len)
{
	if (m->ps_fd < 0)
		return;
	if (m->rx_len + len > m->rx_cap) {
		size_t cap = m->rx_cap ? m->rx_cap : 65536;
		uint8_t *nb;

		while (cap < m->rx_len + len)
			cap *= 2;
		if (cap > RELAY_RX_MAX || !(nb = realloc(m->rx, cap)))
			return relay_broken(d, m, "CRIU does not take its pages");
		m->rx = nb;
		m->rx_cap = cap;
	}
	memcpy(m->rx + m->rx_len, data, len);
	m->rx_len += len;
	m->t_page = mono_usec();
	relay_flush(d, m);
}

/* What CRIU wrote, to the peer, one message at a time. */
static void relay_pump(struct daemon *d, struct migration *m)
{
	struct job *j;
	char hdr[128];

	while (m->ps_fd >= 0 && m->phase != MP_DONE) {
		if (m->tx_len == 0) {
			ssize_t n;

			if (m->ps_eof)
				break;
			if (!m->tx && !(m->tx = malloc(RELAY_CHUNK)))
				return relay_broken(d, m, "out of memory");
			n = read(m->ps_fd, m->tx, RELAY_CHUNK);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				break;
			if (n <= 0) {
				m->ps_eof = true;
				if (!m->outgoing && m->phase == MP_PULL)
					return tgt_pull_done(d, m); /* the daemon has every page */
				break;
			}
			m->tx_len = (size_t)n;
			m->tx_off = 0;
		}
		if (!m->tx_open) {
			int r;

			snprintf(hdr, sizeof(hdr),
				 "{\"type\":\"migrate-pages\",\"job\":\"%s\",\"payload\":true}",
				 m->id);
			r = nodes_stream_begin(d->nodes, m->node, hdr);
			if (r == -EBUSY || r == -ENOBUFS)
				break; /* (migrate_tick tries again) */
			if (r < 0)
				return relay_broken(d, m, "the link to the other node was lost");
			m->tx_open = true;
		}
		{
			ssize_t w = nodes_stream_write(d->nodes, m->node, m->tx + m->tx_off,
						       m->tx_len - m->tx_off);

			if (w < 0)
				return relay_broken(d, m, "the link to the other node was lost");
			if (w == 0)
				break; /* (the writable hook goes on) */
			m->tx_off += (size_t)w;
			m->pages_bytes += (uint64_t)w;
			m->t_page = mono_usec();
			if (m->outgoing && (j = daemon_find_job(d, m->id)))
				j->migrate_bytes = m->bytes + m->pages_bytes; /* (xps) */
		}
		if (m->outgoing && m->target_ok && m->pages_bytes > (1u << 20) &&
		    fault_is("die-in-pull")) { /* tests: xosd killed during the pull */
			log_warn(
				"Job %s: xosd dies during the pull (XOS_MIGRATE_FAULT=die-in-pull)",
				m->id);
			raise(SIGKILL);
		}
		if (m->outgoing && m->target_ok && m->pages_bytes > (1u << 20) &&
		    fault_is("cut-pull")) { /* tests: the link cut during the pull */
			log_warn(
				"Job %s: the link to node %s is cut now (XOS_MIGRATE_FAULT=cut-pull)",
				m->id, m->node);
			nodes_stream_abort(d->nodes, m->node);
			return;
		}
		if (m->tx_off == m->tx_len) {
			if (nodes_stream_end(d->nodes, m->node) < 0)
				return relay_broken(d, m, "the link to the other node was lost");
			m->tx_open = false;
			m->tx_len = m->tx_off = 0;
		}
	}
	relay_arm(d, m);
}

static bool relay_pending(const struct migration *m)
{
	return m->ps_fd >= 0 && (m->tx_len || m->rx_len);
}

/* ---- the source ---- */
static void answer_fail(struct daemon *d, struct job *j, const char *code, const char *msg)
{
	struct xerr err = XERR_INIT;

	xerr_set(&err, -EIO, code, "%s", msg);
	daemon_ckpt_answer(d, j, &err, NULL);
	free(err.msg);
}

static void src_done(struct daemon *d, struct migration *m, struct job *j, const char *msg)
{
	if (j) {
		set_phase(d, j, NULL, NULL);
		if (msg)
			answer_fail(d, j, "migrate_failed", msg);
	}
	child_stop(d, m);
	m->phase = MP_DONE;
}

/* The move failed after the job stopped: it is restored here. */
static void src_restore_local(struct daemon *d, struct migration *m, struct job *j, const char *why)
{
	struct xerr err = XERR_INIT;
	_cleanup_free_ char *msg = NULL;

	child_stop(d, m);
	free(m->failure);
	m->failure = xstrdup_printf("Migration of job %.12s to node %s failed: %s; the job runs "
				    "on here",
				    m->id, m->node, why);
	log_warn("%s", m->failure);
	set_phase(d, j, NULL, NULL);
	m->run_ended = false;
	m->phase = MP_LOCAL;
	if (ckpt_restart(d->ckpt, j, m->version, &err) >= 0)
		return;
	msg = xstrdup_printf("Migration of job %.12s to node %s failed: %s; its restart here "
			     "failed too (%s): xrestart it",
			     m->id, m->node, why, err.msg ? err.msg : "?");
	free(err.msg);
	src_done(d, m, j, msg);
}

/* The target runs the job: this node lets go of it. */
static void src_let_go(struct daemon *d, struct migration *m, struct job *j)
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
	set_phase(d, j, m->node, "migrated");
	slice_job_check(d, j);
	log_info("Job %s moved to node %s (downtime %llu ms%s)", j->id, m->node,
		 (unsigned long long)(((m->postcopy ? m->t_resumed : now) - m->t_stop) / 1000),
		 m->postcopy ? ", post-copy" : "");
	if (g && m->postcopy) { /* (downtime: until the target ran it) */
		json_gen_kv_str(g, "job", j->id);
		json_gen_kv_str(g, "node", m->node);
		json_gen_kv_uint(g, "version", m->version);
		json_gen_kv_bool(g, "postcopy", true);
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
		json_gen_kv_uint(g, "frozen_us", m->t_dumped - m->t_stop);
		json_gen_kv_uint(g, "transfer_us", m->t_sent - m->t_dumped);
		json_gen_kv_uint(g, "downtime_us", now - m->t_stop);
		json_gen_kv_uint(g, "total_us", now - m->t0);
		json_gen_kv_uint(g, "bytes", m->bytes);
		daemon_ckpt_answer(d, j, NULL, g);
	}
	conns_job_ended(d, j);
	child_stop(d, m);
	m->phase = MP_DONE;
	d->prune_ended = true;
}

static void src_abort_pull(struct daemon *d, struct migration *m, struct job *j, const char *why);

static void src_finish_send(struct daemon *d, struct migration *m, struct job *j)
{
	if (m->postcopy) { /* the target restores; its pages come from here */
		set_phase(d, j, m->node, "pull");
		if (nodes_stream_end(d->nodes, m->node) < 0)
			return src_abort_pull(d, m, j, "the link to it was lost mid-transfer");
		m->t_sent = mono_usec();
		m->phase = MP_PULL;
		child_stop(d, m);
		return;
	}
	set_phase(d, j, m->node, "doubt"); /* durable before the end goes out */
	if (nodes_stream_end(d->nodes, m->node) < 0)
		return src_restore_local(d, m, j, "the link to it was lost mid-transfer");
	m->t_sent = mono_usec();
	m->phase = MP_DOUBT;
	/* Asked at once, behind the end on the same connection: a target that
	 * unpacks or restores answers when it knows; one that has nothing of the
	 * job (it lost the check while the job was dumped) says so. */
	m->query_sent = false;
	child_stop(d, m);
}

/* tests: the stream stops after its first bytes (a transfer cut mid-way) */
static bool stalled(struct daemon *d, struct migration *m)
{
	const char *fault = getenv("XOS_MIGRATE_FAULT");

	if (!fault || strcmp(fault, "stall-send") != 0 || m->bytes == 0)
		return false;
	if (m->pipe_fd >= 0)
		(void)epoll_ctl(d->epfd, EPOLL_CTL_DEL, m->pipe_fd, NULL);
	return true;
}

static void src_pump(struct daemon *d, struct migration *m)
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
				return m->postcopy ? src_abort_pull(d, m, j,
								    "the link to it was lost "
								    "mid-transfer")
						   : src_restore_local(d, m, j,
								       "the link to it was lost "
								       "mid-transfer");
			if (w == 0) { /* the channel is full: read on when it has room */
				(void)epoll_ctl(d->epfd, EPOLL_CTL_DEL, m->pipe_fd, NULL);
				return;
			}
			m->buf_off += (size_t)w;
			m->bytes += (uint64_t)w;
			j->migrate_bytes = m->bytes; /* (xps: xmigrate's progress) */
			continue;
		}
		{
			int st = child_reap(d, m);

			if (st == -EAGAIN)
				return;
			if (st != 0)
				return m->postcopy ? src_abort_pull(d, m, j,
								    "reading its version "
								    "failed (tar)")
						   : src_restore_local(d, m, j,
								       "reading its version failed "
								       "(tar)");
			return src_finish_send(d, m, j);
		}
	}
}

static void src_dumped(struct daemon *d, struct migration *m, struct job *j)
{
	char dir[PATH_MAX], vs[16];
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	_cleanup_free_ char *text = NULL;
	int r;

	if (m->run_error) {
		_cleanup_free_ char *msg = xstrdup_printf(
			"Migration of job %.12s to node %s failed: %s; the job runs on here", m->id,
			m->node, m->run_error);

		(void)send_msg(d, m->node, "migrate-abort", m->id, NULL, NULL, false);
		return src_done(d, m, j, msg);
	}
	m->version = j->ckpt_last;
	m->t_dumped = mono_usec();
	if (j->state != JOB_CHECKPOINTED)
		return src_restore_local(d, m, j, "the job did not stop at its checkpoint");
	if (!nodes_peer_up(d->nodes, m->node))
		return src_restore_local(d, m, j, "the link to it was lost during the dump");
	set_phase(d, j, m->node, "send");
	snprintf(vs, sizeof(vs), "%u", m->version);
	version_path(d, j->id, vs, dir, sizeof(dir));
	m->buf = malloc(PUMP_BUF);
	if (!g || !m->buf || (r = tar_start(d, m, dir, -EBADF)) < 0)
		return src_restore_local(d, m, j, "its version cannot be read (tar)");
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "type", "migrate-data");
	json_gen_kv_str(g, "job", j->id);
	json_gen_kv_uint(g, "version", m->version);
	json_gen_kv_bool(g, "payload", true);
	yajl_gen_map_close(g);
	text = json_gen_take(g, false);
	if (!text || nodes_stream_begin(d->nodes, m->node, text) < 0)
		return src_restore_local(d, m, j, "the link to it was lost");
	m->phase = MP_SEND;
	src_pump(d, m);
}

/* ---- post-copy, the source ---- */

/* A post-copy move fails: CRIU is told to stop serving (its tasks run on
 * here once it has: the dump's end, src_pull_ended, answers the client),
 * and the target kills what it restored. */
static void src_abort_pull(struct daemon *d, struct migration *m, struct job *j, const char *why)
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
	child_stop(d, m);
	(void)send_msg(d, m->node, "migrate-abort", m->id, NULL, NULL, false);
	m->aborting = true;
	m->phase = MP_ABORT;
	m->t_abort = mono_usec();
	if (m->ps_fd >= 0) {
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
		set_phase(d, j, NULL, NULL);
}

/* CRIU's status came: the images (but the memory) and the job's files are
 * written. The version is sealed and sent; the pages follow on demand. */
static void src_ready(struct daemon *d, struct migration *m, struct job *j)
{
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	_cleanup_free_ char *text = NULL;
	char dir[PATH_MAX];
	int r;

	m->t_ready = mono_usec();
	if (m->aborting || !nodes_peer_up(d->nodes, m->node))
		return src_abort_pull(d, m, j, "the link to it was lost during the dump");
	r = ckpt_lazy_ready(d->ckpt, j, dir, sizeof(dir));
	if (r < 0)
		return src_abort_pull(d, m, j, "its version cannot be sealed");
	m->version = (unsigned)r;
	set_phase(d, j, m->node, "send");
	m->buf = malloc(PUMP_BUF);
	if (!g || !m->buf || tar_start(d, m, dir, -EBADF) < 0)
		return src_abort_pull(d, m, j, "its version cannot be read (tar)");
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "type", "migrate-data");
	json_gen_kv_str(g, "job", j->id);
	json_gen_kv_uint(g, "version", m->version);
	json_gen_kv_bool(g, "postcopy", true);
	json_gen_kv_bool(g, "payload", true);
	yajl_gen_map_close(g);
	text = json_gen_take(g, false);
	if (!text || nodes_stream_begin(d->nodes, m->node, text) < 0)
		return src_abort_pull(d, m, j, "the link to it was lost");
	m->phase = MP_SEND;
	src_pump(d, m);
}

static void src_status(struct daemon *d, struct migration *m)
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
static void src_pull_ended(struct daemon *d, struct migration *m, struct job *j)
{
	_cleanup_free_ char *msg = NULL;

	if (!m->run_error && j && j->state == JOB_CHECKPOINTED && !m->aborting) {
		m->pull_done = true;
		log_info("Job %s: node %s pulled every page (%llu bytes)", m->id, m->node,
			 (unsigned long long)m->pages_bytes);
		if (m->target_ok)
			return src_let_go(d, m, j);
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
		(void)send_msg(d, m->node, "migrate-abort", m->id, NULL, NULL, false);
	if (j && j->state != JOB_RUNNING && job_is_live(j))
		log_warn("Job %s: its move failed and it is %s here", m->id,
			 job_state_to_string(j->state));
	src_done(d, m, j, msg ? msg : "Migration failed; the job runs on here");
}

static void src_checked(struct daemon *d, struct migration *m, struct job *j, bool ok,
			const char *reason)
{
	struct xerr err = XERR_INIT;
	_cleanup_free_ char *msg = NULL;

	if (!ok) {
		msg = xstrdup_printf("Node %s refused job %.12s: %s; the job runs on here", m->node,
				     m->id, reason ? reason : "no reason given");
		return src_done(d, m, j, msg);
	}
	set_phase(d, j, m->node, "dump");
	m->t_stop = mono_usec();
	m->phase = MP_DUMP;
	m->run_ended = false;
	if (m->postcopy) {
		int r = relay_listen(d, m);

		if (r < 0)
			xerr_set(&err, r, "internal", "its page relay cannot listen: %s",
				 strerror(-r));
		else if (ckpt_checkpoint_lazy(d->ckpt, j, m->ps_path, &err) >= 0)
			return;
	} else if (ckpt_checkpoint(d->ckpt, j, true, &err) >= 0) {
		return;
	}
	msg = xstrdup_printf("Migration of job %.12s to node %s failed: %s; the job runs on here",
			     m->id, m->node, err.msg ? err.msg : "its checkpoint cannot begin");
	free(err.msg);
	(void)send_msg(d, m->node, "migrate-abort", m->id, NULL, NULL, false);
	src_done(d, m, j, msg);
}

/* The check asked of the target: the job's record and what it must find. */
static char *check_text(struct daemon *d, struct job *j, const char *cpu, bool postcopy)
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

int ops_migrate(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	const char *name = NULL, *node = NULL, *why = NULL;
	_cleanup_free_ char *cpu = NULL, *text = NULL;
	struct migration *m;
	bool postcopy = false;
	struct job *j;
	int r;

	if (json_get_string(t, "job", &name) < 0 || json_get_string(t, "node", &node) < 0)
		return xerr_set(err, -EINVAL, "bad_request",
				"Fields 'job' and 'node' are required");
	if (json_get(t, "postcopy") && json_get_bool(t, "postcopy", &postcopy) < 0)
		return xerr_set(err, -EINVAL, "bad_request", "Field 'postcopy' must be a boolean");
	if ((r = ops_lookup(d, c, name, &j, err)) < 0 || (r = vo_check(d, c, j, node, err)) < 0)
		return r;
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
	if ((r = cpuinfo_dump(d, &cpu, err)) < 0)
		return r;
	text = check_text(d, j, cpu, postcopy);
	if (!text)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	if ((r = nodes_send(d->nodes, node, text)) < 0)
		return xerr_set(err, r, "internal", "Cannot reach node %s: %s", node,
				r == -EMSGSIZE ? "the job's record is too large" : strerror(-r));
	m = mig_new(d, j->id, node, true);
	if (!m)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	m->phase = MP_CHECK;
	m->postcopy = postcopy;
	c->mode = CONN_CKPT; /* answered when the move ends (daemon_ckpt_answer) */
	c->job = j;
	log_info("Job %s: moving to node %s%s (asked by uid %u)", j->id, node,
		 postcopy ? " with post-copy" : "", (unsigned)c->uid);
	return 0;
}

/* ---- the target ---- */
static int send_verdict(struct daemon *d, const char *node, const char *type, const char *id,
			const char *reason)
{
	return send_msg(d, node, type, id, reason ? "reason" : NULL, reason, reason == NULL);
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
	bool postcopy = false;

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
	return cpuinfo_check(d, cpu, err);
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

static void tgt_check(struct daemon *d, const char *node, yajl_val h)
{
	_cleanup_xerr_ struct xerr err = XERR_INIT;
	const char *id = NULL, *record = NULL;
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
		log_info("Refused job %s from node %s: %s", id, node, err.msg);
		(void)send_verdict(d, node, "migrate-checked", id, err.msg);
		return;
	}
	if (!(m = mig_new(d, id, node, false))) {
		job_free(j);
		(void)send_verdict(d, node, "migrate-checked", id, "out of memory");
		return;
	}
	job_cap(d, m, j);
	job_free(j);
	(void)json_get_bool(h, "postcopy", &m->postcopy);
	log_info("Job %s from node %s passed the pre-flight checks%s", id, node,
		 m->postcopy ? " (post-copy)" : "");
	(void)send_verdict(d, node, "migrate-checked", id, NULL);
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
	child_stop(d, m);
	relay_close(d, m);
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
	r = tar_start(d, m, path, p[0]);
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
		return relay_take(d, m, data, len);
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
	for (struct job **p = &d->jobs; *p; p = &(*p)->next) {
		struct job *j = *p;

		if (strcmp(j->id, id) != 0)
			continue;
		if (!departed(j) || j->run || j->pidfd >= 0)
			return -EEXIST;
		for (struct conn *c = d->conns; c; c = c->next)
			if (c->job == j)
				return -EEXIST; /* (a client follows it: rare, and refused) */
		*p = j->next;
		(void)rm_rf_at(d->jobs_fd, j->id);
		slice_release(d, j);
		job_free(j);
		log_info("Job %s comes back to this node: its record of the move away gives way",
			 id);
		return 0;
	}
	return 0;
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
	set_phase(d, j, m->node, "incoming");
	m->phase = MP_RESTORE;
	m->run_ended = false;
	if (m->postcopy) {
		r = relay_listen(d, m);
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
		return tgt_abort_pull(d, m, "its source node gave it up during the restore");
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
		set_phase(d, j, m->node, "pull-in");
		log_info("Job %s from node %s runs here; its pages come from there", j->id,
			 m->node);
		(void)send_verdict(d, m->node, "migrate-result", m->id, NULL);
		m->phase = MP_PULL;
		return;
	}
	set_phase(d, j, NULL, NULL);
	(void)daemon_persist_job(d, j);
	log_info("Job %s from node %s runs here", j->id, m->node);
	(void)send_verdict(d, m->node, "migrate-result", m->id, NULL);
	if (m->postcopy)
		drop_version(d, m, j);
	m->phase = MP_DONE;
}

/* Post-copy, the target: the copy of a job whose pages will not all come
 * is killed through its init, not by asking its loader (which may wait for
 * a page of its own that will never come). */
static void kill_half(struct daemon *d, struct job *j)
{
	if (!job_is_live(j))
		return;
	if (j->pidfd < 0 || syscall(SYS_pidfd_send_signal, j->pidfd, SIGKILL, NULL, 0) < 0)
		(void)container_signal(d, j, 0, SIGKILL);
}

/* Post-copy, the target: the version the job came with holds no memory
 * (its pages were pulled): it goes once the pull ended or failed. */
static void drop_version(struct daemon *d, struct migration *m, struct job *j)
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
static void tgt_pull_done(struct daemon *d, struct migration *m)
{
	struct job *j = daemon_find_job(d, m->id);

	log_info("Job %s: every page came from node %s (%llu bytes)", m->id, m->node,
		 (unsigned long long)m->pages_bytes);
	if (j) {
		set_phase(d, j, NULL, NULL);
		drop_version(d, m, j);
	}
	m->phase = MP_DONE;
}

/* Post-copy, the target: the move is aborted while the job runs here on
 * pages it has not all got: it is killed (the source runs it on), its
 * record kept as an aborted arrival (a later move of it here replaces it). */
static void tgt_abort_pull(struct daemon *d, struct migration *m, const char *why)
{
	struct job *j = daemon_find_job(d, m->id);

	log_warn("Job %s from node %s: the move is aborted (%s): killed here, it runs on there",
		 m->id, m->node, why);
	relay_close(d, m);
	if (j) {
		set_phase(d, j, m->node, "aborted");
		free(j->reason);
		j->reason = xstrdup_printf(
			"its move here from node %s was aborted (%s); it runs on "
			"there",
			m->node, why);
		(void)daemon_persist_job(d, j);
		kill_half(d, j);
		drop_version(d, m, j);
	}
	m->phase = MP_DONE;
}

static void relay_broken(struct daemon *d, struct migration *m, const char *why)
{
	struct job *j = daemon_find_job(d, m->id);

	if (m->outgoing)
		return src_abort_pull(d, m, j, why);
	if (m->phase == MP_PULL)
		return tgt_abort_pull(d, m, why);
	relay_close(d, m); /* (the restore fails without its pages: its end says so) */
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
static void hook_message(void *userdata, const char *node, yajl_val h, bool payload)
{
	struct daemon *d = userdata;
	const char *type = NULL, *id = NULL, *reason = NULL;
	bool ok = false;
	struct migration *m;
	struct job *j;

	(void)payload;
	if (routes_message(d, node, h))
		return;
	if (json_get_string(h, "type", &type) < 0 || json_get_string(h, "job", &id) < 0 ||
	    !job_id_valid(id))
		return;
	(void)json_get_bool(h, "ok", &ok);
	(void)json_get_string(h, "reason", &reason);
	if (!strcmp(type, "migrate-check"))
		return tgt_check(d, node, h);
	if (!strcmp(type, "migrate-data"))
		return tgt_data(d, node, h);
	if (!strcmp(type, "migrate-query"))
		return tgt_query(d, node, id);
	if (!strcmp(type, "migrate-pages")) {
		m = find(d, id, true);
		if (!m)
			m = find(d, id, false);
		if (m && m->postcopy && payload && !strcmp(m->node, node))
			m->pages_in = true; /* (else its chunks are dropped) */
		return;
	}
	if (!strcmp(type, "migrate-abort")) {
		if (!(m = find(d, id, false)) || strcmp(m->node, node) != 0)
			return;
		if (m->phase == MP_PULL)
			tgt_abort_pull(d, m, "its source node gave it up");
		else if (m->phase == MP_RESTORE)
			m->aborting = true; /* (acted on when the restore ends) */
		else if (m->phase == MP_CHECK || m->phase == MP_SEND)
			tgt_drop(d, m);
		return;
	}
	m = find(d, id, true);
	j = daemon_find_job(d, id);
	if (!m || !j || strcmp(m->node, node) != 0)
		return;
	if (!strcmp(type, "migrate-checked") && m->phase == MP_CHECK)
		return src_checked(d, m, j, ok, reason);
	if (m->postcopy && !strcmp(type, "migrate-result") &&
	    (m->phase == MP_SEND || m->phase == MP_PULL)) {
		if (!ok)
			return src_abort_pull(d, m, j, reason ? reason : "it did not say why");
		m->target_ok = true;
		m->t_resumed = mono_usec();
		log_info("Job %s runs on node %s (downtime %llu ms); its pages are pulled", id,
			 node, (unsigned long long)((m->t_resumed - m->t_stop) / 1000));
		if (m->pull_done)
			src_let_go(d, m, j);
		return;
	}
	if (!strcmp(type, "migrate-result") && !ok && m->phase == MP_SEND) {
		/* the target dropped what came: the stream goes (after the phase
		 * changed, so that the channel's loss is not a second failure) */
		src_restore_local(d, m, j, reason ? reason : "it did not say why");
		nodes_stream_abort(d->nodes, node);
		return;
	}
	if (!strcmp(type, "migrate-result") && m->phase == MP_DOUBT) {
		const char *fault = getenv("XOS_MIGRATE_FAULT");

		if (ok && fault && !strcmp(fault, "die-before-let-go")) { /* tests */
			log_warn("Job %s runs on node %s: xosd dies now (XOS_MIGRATE_FAULT)", id,
				 node);
			raise(SIGKILL);
		}
		if (ok)
			return src_let_go(d, m, j);
		if (m->postcopy) { /* (its memory went there: nothing to restore here) */
			log_error("Job %s: node %s does not run it, and its memory went there: "
				  "the job is lost",
				  id, node);
			return src_done(d, m, j, "The job was lost in its post-copy move");
		}
		return src_restore_local(d, m, j, reason ? reason : "it did not say why");
	}
}

static void hook_lost(void *userdata, const char *node)
{
	struct daemon *d = userdata;

	for (struct migration *m = d->migrations; m; m = m->next) {
		struct job *j = daemon_find_job(d, m->id);

		if (strcmp(m->node, node) != 0 || m->phase == MP_DONE)
			continue;
		if (!m->outgoing) { /* (another connection of the peer may have closed) */
			if (m->postcopy && m->phase == MP_PULL) /* (a message may be lost) */
				tgt_abort_pull(d, m, "the link to its source node was lost");
			else if (m->postcopy && m->phase == MP_RESTORE)
				m->aborting = true;
			else if (m->phase == MP_CHECK ||
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
			src_abort_pull(d, m, j, "the link to it was lost");
			continue;
		}
		if (m->phase == MP_CHECK)
			src_done(d, m, j,
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
			relay_pump(d, m);
	for (struct migration *m = d->migrations; m; m = m->next)
		if (m->outgoing && m->phase == MP_SEND && !strcmp(m->node, node) &&
		    m->pipe_fd >= 0 && !m->tar_eof) {
			(void)daemon_epoll_add(d, m->pipe_fd, EPOLLIN, EP_MIGRATE, m);
			src_pump(d, m);
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
	if (m && m->outgoing && m->postcopy && m->phase != MP_CHECK) {
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

	if (m->postcopy) {
		if (m->ps_listen >= 0)
			relay_accept(d, m);
		if (m->status_fd >= 0)
			src_status(d, m);
		if (m->ps_fd >= 0 && m->rx_len)
			relay_flush(d, m);
		if (m->ps_fd >= 0 && m->phase != MP_ABORT)
			relay_pump(d, m);
		if (m->phase == MP_DONE || m->phase == MP_ABORT || m->phase == MP_PULL)
			return;
	}
	if (m->outgoing && m->phase == MP_SEND)
		return src_pump(d, m);
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

int migrate_tick(struct daemon *d)
{
	for (struct migration *m = d->migrations; m; m = m->next) {
		struct job *j = daemon_find_job(d, m->id);

		if (m->run_ended && (!j || !j->run)) {
			m->run_ended = false;
			if (m->outgoing && m->postcopy)
				src_pull_ended(d, m, j);
			else if (m->phase == MP_DUMP && j)
				src_dumped(d, m, j);
			else if (m->phase == MP_RESTORE)
				tgt_restored(d, m, j);
		}
		if (m->postcopy && relay_pending(m) && m->phase != MP_ABORT)
			relay_pump(d, m); /* (a message that could not begin: another was open) */
		if (m->postcopy && m->outgoing && m->phase == MP_PULL && !m->pull_done &&
		    mono_usec() - m->t_page > d->cfg->dump_timeout_us && j)
			src_abort_pull(d, m, j,
				       "its pull stalled (no page moved for dump_timeout)");
		/* (a CRIU that does not take the abort is killed: the tasks run on) */
		if (m->postcopy && m->phase == MP_ABORT && j && j->run && m->t_abort &&
		    mono_usec() - m->t_abort > 10000000) {
			log_warn("Job %s: CRIU did not stop serving its pages: killed", m->id);
			m->t_abort = 0;
			ckpt_abort(d->ckpt, j, 0);
		}
		if (m->outgoing && m->phase == MP_DOUBT && !m->query_sent && d->nodes &&
		    nodes_peer_up(d->nodes, m->node) &&
		    send_msg(d, m->node, "migrate-query", m->id, NULL, NULL, false) >= 0)
			m->query_sent = true;
	}
	mig_free_done(d);
	for (struct migration *m = d->migrations; m; m = m->next) {
		if (m->run_ended || (m->postcopy && relay_pending(m)))
			return 10;
		if ((m->outgoing && m->phase == MP_DOUBT && !m->query_sent) ||
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

/* At start-up: what a migration under way when xosd stopped leaves. */
void migrate_startup(struct daemon *d)
{
	remove_incoming(d);
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
			set_phase(d, j, j->migrate_node, "aborted");
			kill_half(d, j);
			ckpt_forget(d->ckpt, j);
			continue;
		}
		if (!strcmp(ph, "incoming")) { /* target: not running yet: the source has it */
			if (j->state == JOB_RUNNING) {
				set_phase(d, j, NULL, NULL);
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
		set_phase(d, j, NULL, NULL);
	}
}
