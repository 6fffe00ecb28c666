/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Job units: start one (clone, drop privileges, exec), end one (status file,
 * report), signal them. */
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "loader/loader-internal.h"

extern char **environ;

/* What the child was doing when it failed; reported through a CLOEXEC pipe. */
enum child_stage {
	STAGE_SETSID,
	STAGE_STDIO,
	STAGE_BOUNDING_SET,
	STAGE_AMBIENT,
	STAGE_CAPS,
	STAGE_SETGROUPS,
	STAGE_SETGID,
	STAGE_SETUID,
	STAGE_CHDIR,
	STAGE_NO_NEW_PRIVS,
	STAGE_SECCOMP,
	STAGE_CLOSE_FDS,
	STAGE_EXEC,
	_STAGE_MAX,
};

static const char *const stage_names[_STAGE_MAX] = {
	[STAGE_SETSID] = "setsid",
	[STAGE_STDIO] = "stdio",
	[STAGE_BOUNDING_SET] = "drop capability bounding set",
	[STAGE_AMBIENT] = "clear ambient capabilities",
	[STAGE_CAPS] = "set capabilities",
	[STAGE_SETGROUPS] = "setgroups",
	[STAGE_SETGID] = "setresgid",
	[STAGE_SETUID] = "setresuid",
	[STAGE_CHDIR] = "chdir",
	[STAGE_NO_NEW_PRIVS] = "no_new_privs",
	[STAGE_SECCOMP] = "seccomp",
	[STAGE_CLOSE_FDS] = "close fds",
	[STAGE_EXEC] = "exec",
};

struct child_error {
	int stage;
	int err;
};

struct child_args {
	const struct loader *l;
	const struct loader_spec *spec;
	int out_fd, err_fd, pipe_fd;
	int tty_fd; /* the terminal's slave, or -1 */
};

struct unit *loader_unit_find(struct loader *l, unsigned id)
{
	for (struct unit *u = l->units; u; u = u->next)
		if (u->id == id)
			return u;
	return NULL;
}

struct unit *loader_unit_find_pid(struct loader *l, pid_t pid)
{
	for (struct unit *u = l->units; u; u = u->next)
		if (u->pid == pid && pid > 0)
			return u;
	return NULL;
}

static struct unit *unit_new(struct loader *l, unsigned id)
{
	struct unit *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->id = id;
	loader_relay_init(&u->out);
	loader_relay_init(&u->err);
	u->next = l->units;
	l->units = u;
	return u;
}

static uint64_t tv_usec(const struct timeval *tv)
{
	return (uint64_t)tv->tv_sec * 1000000ULL + (uint64_t)tv->tv_usec;
}

/* Write the status file, then queue the report. */
static void unit_report(struct loader *l, struct loader_status *st, const struct rusage *ru)
{
	_cleanup_free_ char *text = NULL;
	char name[32];
	size_t len;
	int r;

	memcpy(st->job, l->job, sizeof(st->job));
	st->ended_us = now_usec();
	st->remaining = l->running;
	if (ru) {
		st->utime_us = tv_usec(&ru->ru_utime);
		st->stime_us = tv_usec(&ru->ru_stime);
		st->maxrss_kb = ru->ru_maxrss > 0 ? (uint64_t)ru->ru_maxrss : 0;
	}
	r = loader_status_format(st, &text, &len);
	if (r < 0) {
		log_error("Failed to format the status of unit %u: %s", st->unit, strerror(-r));
		return;
	}
	snprintf(name, sizeof(name), "%u.status", st->unit);
	/* not flushed to disk here: xosd makes its record durable once it has the
	 * report; only a report that cannot be delivered at once is flushed
	 * (notify.c), so that it survives a crash of the node meanwhile */
	r = write_file_atomic_at(l->spool_fd, name, text, len, 0600, false);
	if (r < 0)
		log_error("Failed to write spool/%s, reporting anyway: %s", name, strerror(-r));
	r = loader_notify_queue(&l->notify, st->unit, text, len);
	if (r < 0)
		log_error("Failed to queue the report for unit %u: %s", st->unit, strerror(-r));
}

static int open_output(const struct loader *l, unsigned id, const char *stream)
{
	char name[32];
	int fd;

	snprintf(name, sizeof(name), "%u.%s", id, stream);
	fd = openat(l->spool_fd, name,
		    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
	return fd < 0 ? -errno : fd;
}

/* "xos: <reason>" on the unit's stderr file, so an attached client sees it. */
static void write_err_line(int fd, const char *reason)
{
	_cleanup_free_ char *line = xstrdup_printf("xos: %s\n", reason);

	if (fd >= 0 && line)
		(void)loop_write(fd, line, strlen(line));
}

/* The same at the end of the unit's stderr stream (relay.c). */
static void unit_err_line(struct unit *u, const char *reason)
{
	_cleanup_free_ char *line = xstrdup_printf("xos: %s\n", reason);

	if (line)
		(void)loader_relay_write(&u->err, line, strlen(line));
}

void loader_unit_failed(struct loader *l, unsigned id, uint64_t started_us, const char *reason,
			const struct rusage *ru)
{
	struct loader_status st = { .unit = id, .state = LOADER_STATE_FAILED };
	_cleanup_close_ int err_fd = open_output(l, id, "err");

	log_error("Unit %u failed: %s", id, reason);
	write_err_line(err_fd, reason);
	snprintf(st.reason, sizeof(st.reason), "%s", reason);
	st.started_us = started_us;
	unit_report(l, &st, ru);
}

static _noreturn_ void child_fail(int fd, int stage)
{
	struct child_error e = { .stage = stage, .err = errno };

	if (write(fd, &e, sizeof(e)) < 0) {
		/* nothing left to tell anyone */
	}
	_exit(125);
}

/* Every fd but the error pipe (closed by exec) goes before the unit's
 * credentials and working directory are set: no fd of the loader is left
 * for a chdir("/proc/self/fd/N") to leave the job's root by (CVE-2024-21626). */
static void child_close_fds(int keep)
{
	if (keep > 3)
		close_range(3, (unsigned)keep - 1, 0);
	close_range((unsigned)keep + 1, ~0U, 0);
}

static void child_drop_caps(const struct child_args *a)
{
	for (int cap = 0; cap < 64; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			child_fail(a->pipe_fd, STAGE_BOUNDING_SET);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		child_fail(a->pipe_fd, STAGE_AMBIENT);
	/* inheritable empty; permitted/effective only CAP_SETUID and CAP_SETGID,
	 * which the kernel clears when the uid changes from 0 */
	if (cap_set_proc(a->l->child_caps) < 0)
		child_fail(a->pipe_fd, STAGE_CAPS);
}

/* The forked child: async-signal-safe calls only, leaves with exec or _exit. */
static _noreturn_ void child_run(const struct child_args *a)
{
	const struct loader_spec *s = a->spec;
	int r;

	if (setsid() < 0)
		child_fail(a->pipe_fd, STAGE_SETSID);
	if (a->tty_fd >= 0) {
		if (ioctl(a->tty_fd, TIOCSCTTY, 0) < 0 || dup2(a->tty_fd, STDIN_FILENO) < 0 ||
		    dup2(a->tty_fd, STDOUT_FILENO) < 0 || dup2(a->tty_fd, STDERR_FILENO) < 0)
			child_fail(a->pipe_fd, STAGE_STDIO);
	} else if (dup2(a->l->null_fd, STDIN_FILENO) < 0 || dup2(a->out_fd, STDOUT_FILENO) < 0 ||
		   dup2(a->err_fd, STDERR_FILENO) < 0) {
		child_fail(a->pipe_fd, STAGE_STDIO);
	}
	child_close_fds(a->pipe_fd);
	child_drop_caps(a);
	if (setgroups(s->n_groups, s->groups) < 0)
		child_fail(a->pipe_fd, STAGE_SETGROUPS);
	if (setresgid(s->gid, s->gid, s->gid) < 0)
		child_fail(a->pipe_fd, STAGE_SETGID);
	if (setresuid(s->uid, s->uid, s->uid) < 0)
		child_fail(a->pipe_fd, STAGE_SETUID);
	if (chdir(s->cwd) < 0)
		child_fail(a->pipe_fd, STAGE_CHDIR);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(a->pipe_fd, STAGE_NO_NEW_PRIVS);
	r = loader_seccomp_apply(&a->l->seccomp);
	if (r < 0) {
		errno = -r;
		child_fail(a->pipe_fd, STAGE_SECCOMP);
	}
	environ = s->env;
	loader_signals_reset_child(&a->l->handled);
	execvp(s->argv[0], s->argv);
	child_fail(a->pipe_fd, STAGE_EXEC);
}

#if defined(__SANITIZE_ADDRESS__)
#define UNIT_VFORK 0 /* (ASan keeps no track of a stack of our own) */
#else
#define UNIT_VFORK 1
#endif

#if UNIT_VFORK
static int child_entry(void *arg)
{
	child_run(arg);
}

/* The child's stack: what child_run and execvp need (execvp's path buffer is
 * bounded by PATH_MAX; its fallback for a script without "#!" takes argv's
 * length in pointers), above a guard page. */
static size_t child_stack_size(const struct loader_spec *s)
{
	size_t argc = 0, page = (size_t)sysconf(_SC_PAGESIZE);

	while (s->argv[argc])
		argc++;
	return ((64U << 10) + (argc + 3) * sizeof(char *) + page - 1) / page * page + page;
}
#endif

/* The unit's process. A clone with CLONE_VM | CLONE_VFORK, as posix_spawn
 * makes one (DECISIONS (bi)): the loader's page tables are not copied and
 * neither side takes copy-on-write faults; the loader waits until the child
 * has exec'd or died. The child has its own fds, cwd and signal handlers; of
 * the loader's memory it changes errno and environ only, which is put back,
 * and its credentials make that memory not dumpable, which is undone
 * (signals stay blocked in it until it has reset its handlers). */
static pid_t spawn_child(const struct child_args *a)
{
#if UNIT_VFORK
	size_t size = child_stack_size(a->spec), page = (size_t)sysconf(_SC_PAGESIZE);
	char **env = environ;
	int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	char *stack;
	pid_t pid;
	int e;

	stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
		     -1, 0);
	if (stack == MAP_FAILED)
		return -1;
	if (mprotect(stack, page, PROT_NONE) < 0) {
		e = errno;
		munmap(stack, size);
		errno = e;
		return -1;
	}
	pid = clone(child_entry, stack + size, CLONE_VM | CLONE_VFORK | SIGCHLD, (void *)a);
	e = errno;
	environ = env;
	/* the child's change of credentials made the memory it shared with the
	 * loader not dumpable (the kernel's commit_creds); CRIU could then not
	 * open a restored loader's namespaces, so it is put back */
	if (dumpable > 0)
		(void)prctl(PR_SET_DUMPABLE, dumpable, 0, 0, 0);
	munmap(stack, size);
	errno = e;
	return pid;
#else
	pid_t pid = fork();

	if (pid == 0)
		child_run(a);
	return pid;
#endif
}

/* The child failed before exec: reap it at once and report. */
static void unit_spawn_failed(struct loader *l, struct unit *u, const struct loader_spec *spec,
			      const struct child_error *ce)
{
	struct loader_status st = { .unit = u->id, .started_us = u->started_us };
	int stage = ce->stage >= 0 && ce->stage < _STAGE_MAX ? ce->stage : STAGE_EXEC;
	const char *arg = NULL;
	struct rusage ru = { 0 };
	char id[16];
	int ws;

	if (stage == STAGE_EXEC)
		arg = spec->argv[0];
	else if (stage == STAGE_CHDIR)
		arg = spec->cwd;
	else if (stage == STAGE_SETUID || stage == STAGE_SETGID) {
		snprintf(id, sizeof(id), "%u",
			 (unsigned)(stage == STAGE_SETUID ? spec->uid : spec->gid));
		arg = id;
	}

	while (wait4(u->pid, &ws, 0, &ru) < 0 && errno == EINTR)
		;
	u->pid = 0;
	snprintf(st.reason, sizeof(st.reason), "%s%s%s: %s", stage_names[stage], arg ? " " : "",
		 arg ? arg : "", strerror(ce->err));
	if (stage == STAGE_EXEC) {
		st.state = LOADER_STATE_EXITED;
		st.code = ce->err == ENOENT ? 127 : 126;
		log_warn("Unit %u: %s (exit code %d)", u->id, st.reason, st.code);
	} else {
		st.state = LOADER_STATE_FAILED;
		log_error("Unit %u failed: %s", u->id, st.reason);
	}
	unit_err_line(u, st.reason);
	unit_report(l, &st, &ru);
}

static void unit_log_started(const struct unit *u, const struct loader_spec *spec)
{
	log_info("Started unit %u as pid %d, uid %u, gid %u: %s%s", u->id, (int)u->pid,
		 (unsigned)spec->uid, (unsigned)spec->gid, spec->argv[0],
		 spec->argv[1] ? " ..." : "");
}

/* A new terminal in the container's devpts for the unit: the slave belongs to
 * the unit's user; the master goes to xosd (which passes it to xrun -t). */
static int unit_tty(struct loader *l, const struct loader_spec *spec, int *ret_slave)
{
	_cleanup_close_ int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	_cleanup_close_ int slave = -EBADF;
	int r;

	if (master < 0)
		master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return -errno;
	if (unlockpt(master) < 0)
		return -errno;
	slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return -errno;
	if (fchown(slave, spec->uid, (gid_t)-1) < 0 || fchmod(slave, 0620) < 0)
		return -errno;
	r = loader_notify_send_tty(&l->notify, l->job, spec->unit, master);
	if (r < 0)
		return r;
	*ret_slave = TAKE_FD(slave);
	return 0;
}

/* The unit's stdout and stderr: pipes to the loader, which writes the spool
 * files (relay.c). A unit on a terminal writes there instead; its files stay
 * empty but for the loader's own lines. */
static int unit_stdio(struct loader *l, struct unit *u, const struct loader_spec *spec,
		      int *ret_out, int *ret_err)
{
	char name[2][32];
	int r;

	snprintf(name[0], sizeof(name[0]), "%u.out", u->id);
	snprintf(name[1], sizeof(name[1]), "%u.err", u->id);
	if (spec->tty) {
		_cleanup_close_ int out = open_output(l, u->id, "out");

		if (out < 0)
			return out;
		u->err.file_fd = open_output(l, u->id, "err");
		return u->err.file_fd < 0 ? u->err.file_fd : 0;
	}
	if ((r = loader_relay_open(&u->out, l->spool_fd, name[0], spec->log_size, ret_out)) < 0)
		return r;
	r = loader_relay_open(&u->err, l->spool_fd, name[1], spec->log_size, ret_err);
	if (r < 0) {
		closep(ret_out);
		loader_relay_close(&u->out);
	}
	return r;
}

static int unit_spawn(struct loader *l, struct unit *u, const struct loader_spec *spec)
{
	_cleanup_close_ int out_fd = -EBADF, err_fd = -EBADF, tty_fd = -EBADF;
	_cleanup_close_ int pipe_r = -EBADF, pipe_w = -EBADF;
	struct child_error ce;
	int fds[2], r;
	ssize_t n;

	if ((r = unit_stdio(l, u, spec, &out_fd, &err_fd)) < 0)
		return r;
	if (spec->tty && (r = unit_tty(l, spec, &tty_fd)) < 0) {
		unit_err_line(u, "cannot give the unit a terminal");
		return r;
	}
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pipe_r = fds[0];
	pipe_w = fds[1];
	u->pid = spawn_child(&(struct child_args){
		.l = l,
		.spec = spec,
		.out_fd = out_fd,
		.err_fd = err_fd,
		.pipe_fd = pipe_w,
		.tty_fd = tty_fd,
	});
	if (u->pid < 0) {
		u->pid = 0;
		return -errno;
	}
	close(TAKE_FD(pipe_w));
	closep(&out_fd); /* the unit's ends of its pipes are the unit's alone */
	closep(&err_fd);
	/* EOF: exec succeeded (the pipe is close-on-exec) or the child died */
	n = loop_read(pipe_r, &ce, sizeof(ce));
	if (n == (ssize_t)sizeof(ce)) {
		unit_spawn_failed(l, u, spec, &ce);
		return 0;
	}
	l->running++;
	unit_log_started(u, spec);
	return 0;
}

int loader_unit_start(struct loader *l, unsigned id, const char *buf, size_t len, int read_error)
{
	_cleanup_loader_spec_ struct loader_spec *spec = NULL;
	_cleanup_free_ char *err = NULL, *reason = NULL;
	struct unit *u;
	int r;

	if (loader_unit_find(l, id)) {
		log_warn("Ignoring a second request for unit %u", id);
		return 0;
	}
	u = unit_new(l, id);
	if (!u)
		return -ENOMEM;
	u->started_us = now_usec();
	if (read_error < 0)
		reason = xstrdup_printf("cannot read unit spec: %s", strerror(-read_error));
	else if ((r = loader_spec_parse(buf, len, &spec, &err)) < 0)
		reason = xstrdup_printf("bad unit spec: %s", err ? err : strerror(-r));
	else if (spec->unit != id)
		reason = xstrdup_printf("bad unit spec: it is for unit %u, not %u", spec->unit, id);
	else if ((r = unit_spawn(l, u, spec)) < 0)
		reason = xstrdup_printf("cannot start unit: %s", strerror(-r));
	else
		return 0;
	loader_unit_failed(l, id, u->started_us, reason ? reason : "out of memory", NULL);
	return 0;
}

void loader_unit_ended(struct loader *l, struct unit *u, int wstatus, const struct rusage *ru)
{
	struct loader_status st = { .unit = u->id, .started_us = u->started_us };

	/* the unit ends with its leader; nothing of it may outlive it */
	if (kill(-u->pid, SIGKILL) < 0 && errno != ESRCH)
		log_warn("Failed to kill the rest of unit %u: %m", u->id);
	u->pid = 0;
	l->running--;
	/* what the unit wrote before it ended is in the files before its end is */
	loader_unit_drain(u);
	loader_status_set_wait(&st, wstatus);
	if (st.state == LOADER_STATE_KILLED)
		log_info("Unit %u killed by signal %d", u->id, st.signal);
	else
		log_info("Unit %u exited with code %d", u->id, st.code);
	unit_report(l, &st, ru);
}

/* Until the pipe is empty or closed (bounded: a process the unit left
 * behind may go on writing). */
static void relay_drain(struct relay *r)
{
	int avail = 1;

	for (int i = 0; i < 16 && avail > 0 && r->pipe_fd >= 0; i++)
		if (loader_relay_pump(r) != 0 || ioctl(r->pipe_fd, FIONREAD, &avail) < 0)
			break;
}

void loader_unit_drain(struct unit *u)
{
	relay_drain(&u->out);
	relay_drain(&u->err);
}

void loader_forward_signal(struct loader *l, unsigned id, int sig)
{
	bool found = false;

	for (struct unit *u = l->units; u; u = u->next) {
		if (u->pid <= 0 || (id && u->id != id))
			continue;
		found = true;
		if (kill(-u->pid, sig) < 0 && errno != ESRCH)
			log_warn("Failed to send signal %d to unit %u: %m", sig, u->id);
	}
	if (id && !found)
		log_info("Not sending signal %d to unit %u: it does not run", sig, id);
}
