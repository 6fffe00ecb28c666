/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of loader/: spec parser, status text, seccomp profile, and (as
 * root) one run of the loader outside a container. TAP output. */
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "loader/loader.h"

static unsigned n_tests, n_failed;

_printf_(2, 3) static void ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	n_tests++;
	if (!cond)
		n_failed++;
	printf("%sok %u - ", cond ? "" : "not ", n_tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void skip(const char *what, const char *why)
{
	n_tests++;
	printf("ok %u - %s # SKIP %s\n", n_tests, what, why);
	fflush(stdout);
}

/* ---- spec parser ---- */

static int parse(const char *buf, size_t len, struct loader_spec **ret, char **ret_error)
{
	*ret_error = NULL;
	return loader_spec_parse(buf, len, ret, ret_error);
}

/* a spec from a literal with embedded NULs (sizeof includes the final NUL) */
#define SPEC(lit) lit, sizeof(lit)

static void expect_bad(const char *buf, size_t len, const char *needle, const char *what)
{
	_cleanup_loader_spec_ struct loader_spec *s = NULL;
	_cleanup_free_ char *err = NULL;
	int r = parse(buf, len, &s, &err);

	ok(r == -EINVAL && !s && err && strstr(err, needle), "spec: %s -> error \"%s\"", what,
	   err ? err : "(none)");
}

static void test_spec_valid(void)
{
	_cleanup_loader_spec_ struct loader_spec *s = NULL;
	_cleanup_free_ char *err = NULL;
	int r = parse(SPEC("unit\0003\0uid\0001000\0gid\000100\0groups\00010,20\0cwd\0/home/u\0"
			   "argv\0sh\0argv\0-c\0argv\0\0env\0PATH=/bin\0env\0A=b=c"),
		      &s, &err);

	ok(r == 0 && s && !err, "spec: valid spec parses (%s)", err ? err : "no error");
	if (!s)
		return;
	ok(s->unit == 3 && s->uid == 1000 && s->gid == 100, "spec: unit, uid, gid");
	ok(s->n_groups == 2 && s->groups[0] == 10 && s->groups[1] == 20, "spec: groups");
	ok(strcmp(s->cwd, "/home/u") == 0, "spec: cwd");
	ok(strv_length(s->argv) == 3 && strcmp(s->argv[0], "sh") == 0 &&
		   strcmp(s->argv[1], "-c") == 0 && s->argv[2][0] == 0,
	   "spec: argv in order, empty later items kept");
	ok(strv_length(s->env) == 2 && strcmp(s->env[1], "A=b=c") == 0, "spec: env");
}

static void test_spec_groups_env(void)
{
	_cleanup_loader_spec_ struct loader_spec *s = NULL, *t = NULL;
	_cleanup_free_ char *err = NULL, *err2 = NULL;

	parse(SPEC("unit\0001\0uid\0001\0gid\0001\0groups\0\0cwd\0/\0argv\0true"), &s, &err);
	ok(s && s->n_groups == 0 && s->env && !s->env[0], "spec: empty groups, no env");
	parse(SPEC("unit\0001\0uid\0001\0gid\0001\0cwd\0/\0argv\0true"), &t, &err2);
	ok(t && t->n_groups == 0, "spec: groups may be left out");
}

static void test_spec_bad(void)
{
	expect_bad(SPEC("unit\0001\0uid\0001\0gid\0001\0groups\0\0cwd\0/"), "missing key argv",
		   "missing argv");
	expect_bad(SPEC("unit\0001\0uid\0001\0gid\0001\0cwd\0/\0argv\0x\0colour\0red"),
		   "unknown key \"colour\"", "unknown key");
	expect_bad(SPEC("unit\0001\0uid\0001\0gid\0001\0cwd\0/\0argv\0x\0env"), "odd number",
		   "odd field count");
	expect_bad(SPEC("unit\0001\0uid\0abc\0gid\0001\0cwd\0/\0argv\0x"), "bad uid", "bad uid");
	expect_bad(SPEC("unit\0001\0uid\0-1\0gid\0001\0cwd\0/\0argv\0x"), "bad uid",
		   "negative uid");
	expect_bad(SPEC("unit\0001\0uid\0004294967295\0gid\0001\0cwd\0/\0argv\0x"), "bad uid",
		   "uid -1");
	expect_bad(SPEC("unit\0001\0uid\0000\0gid\0001\0cwd\0/\0argv\0x"), "uid 0",
		   "uid 0 refused");
	expect_bad(SPEC("unit\0001\0uid\0001\0gid\0001\0cwd\0tmp\0argv\0x"), "not absolute",
		   "relative cwd");
	expect_bad(SPEC("unit\0001\0uid\0001\0gid\0001\0groups\0001,,2\0cwd\0/\0argv\0x"),
		   "bad groups", "empty group item");
	expect_bad(SPEC("unit\0001\0uid\0001\0gid\0001\0groups\0001,\0cwd\0/\0argv\0x"),
		   "bad groups", "trailing comma in groups");
	expect_bad(SPEC("unit\0000\0uid\0001\0gid\0001\0cwd\0/\0argv\0x"), "bad unit", "unit 0");
	expect_bad(SPEC("uid\0001\0gid\0001\0cwd\0/\0argv\0x"), "missing key unit", "missing unit");
	expect_bad(SPEC("unit\0001\0uid\0001\0uid\0002\0gid\0001\0cwd\0/\0argv\0x"), "duplicate",
		   "duplicate uid");
	expect_bad(SPEC("unit\0001\0uid\0001\0gid\0001\0cwd\0/\0argv\0"), "argv[0] is empty",
		   "empty argv[0]");
	expect_bad(SPEC("unit\0001\0uid\0001\0gid\0001\0cwd\0/\0argv\0x\0env\0NOEQUALS"), "bad env",
		   "env item without =");
	expect_bad("unit\0001\0uid", sizeof("unit\0001\0uid") - 1, "not NUL-terminated",
		   "unterminated last field");
	expect_bad("", 0, "empty", "empty spec");
}

static void test_spec_format(void)
{
	_cleanup_loader_spec_ struct loader_spec *s = NULL;
	_cleanup_free_ char *err = NULL, *buf = NULL;
	static const char in[] = "unit\0007\0uid\0001000\0gid\0001000\0groups\0005,6\0cwd\0/w\0"
				 "argv\0a\0argv\0b c\0env\0X=1";
	size_t len = 0;

	parse(in, sizeof(in), &s, &err);
	ok(s && loader_spec_format(s, &buf, &len) == 0 && len == sizeof(in) &&
		   memcmp(buf, in, len) == 0,
	   "spec: format gives back the parsed spec byte for byte");
	if (s) {
		s->uid = 0;
		free(buf);
		buf = NULL;
		ok(loader_spec_format(s, &buf, &len) == -EINVAL, "spec: format refuses uid 0");
	}
}

/* ---- status ---- */

static void test_status_format(void)
{
	struct loader_status st = {
		.job = "0123456789abcdef",
		.unit = 2,
		.state = LOADER_STATE_KILLED,
		.signal = 9,
		.reason = "line one\nline two",
		.utime_us = 1500,
		.stime_us = 20,
		.maxrss_kb = 1024,
		.started_us = 1700000000000000ULL,
		.ended_us = 1700000001000000ULL,
		.remaining = 1,
	};
	static const char want[] = "job=0123456789abcdef\nunit=2\nstate=killed\ncode=0\nsignal=9\n"
				   "reason=line one line two\nutime_us=1500\nstime_us=20\n"
				   "maxrss_kb=1024\nstarted_us=1700000000000000\n"
				   "ended_us=1700000001000000\nremaining=1\n";
	_cleanup_free_ char *text = NULL;
	struct loader_status back;
	size_t len = 0;
	int r = loader_status_format(&st, &text, &len);

	ok(r == 0 && len == strlen(want) && strcmp(text, want) == 0,
	   "status: formatted exactly, reason kept on one line");
	ok(text && loader_status_parse(text, len, &back) == 0 && back.unit == 2 &&
		   back.state == LOADER_STATE_KILLED && back.signal == 9 && back.remaining == 1 &&
		   back.started_us == st.started_us && strcmp(back.job, st.job) == 0,
	   "status: parse gives the values back");
	ok(loader_status_parse(SPEC("job=0123456789abcdef\nunit=1\n"), &back) == -EINVAL,
	   "status: parse refuses a truncated text");
	st.state = _LOADER_STATE_INVALID;
	free(text);
	text = NULL;
	ok(loader_status_format(&st, &text, &len) == -EINVAL, "status: invalid state refused");
	st.state = LOADER_STATE_EXITED;
	memcpy(st.job, "XYZ", 4);
	ok(loader_status_format(&st, &text, &len) == -EINVAL, "status: bad job id refused");
}

static void test_status_notify_message(void)
{
	struct loader_status st = { .job = "fedcba9876543210", .unit = 1 }, back;
	_cleanup_free_ char *text = NULL, *msg = NULL;
	size_t len = 0;

	loader_status_set_wait(&st, 3 << 8);
	ok(st.state == LOADER_STATE_EXITED && st.code == 3 && st.signal == 0,
	   "status: wait status of exit(3)");
	loader_status_set_wait(&st, SIGKILL);
	ok(st.state == LOADER_STATE_KILLED && st.code == 0 && st.signal == SIGKILL,
	   "status: wait status of SIGKILL");
	ok(loader_status_format(&st, &text, &len) == 0, "status: format for the notify message");
	msg = xstrdup_printf("%s\n", text ? text : "");
	ok(msg && loader_status_parse(msg, len + 1, &back) == 0 && back.signal == SIGKILL,
	   "status: parse accepts the message's final empty line");
	ok(loader_state_from_string("failed") == LOADER_STATE_FAILED &&
		   loader_state_from_string("FAILED") == _LOADER_STATE_INVALID &&
		   strcmp(loader_state_to_string(LOADER_STATE_EXITED), "exited") == 0,
	   "status: state names");
}

/* ---- seccomp ---- */

#if defined(__x86_64__)
/* a syscall through the i386 ABI from this 64-bit process */
static long int80(long nr, long a)
{
	long ret;

	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(nr), "b"(a)
			 : "memory", "rcx", "r8", "r9", "r10", "r11");
	return ret;
}
#endif

/* In a child with the profile applied: exit code = a bit mask of failures. */
static int seccomp_child_checks(void)
{
	int bad = 0;

	if (unshare(CLONE_NEWUTS) == 0 || errno != EPERM)
		bad |= 1;
	if (syscall(SYS_clone3, NULL, 0) == 0 || errno != ENOSYS)
		bad |= 2;
	if (personality(0xffffffff) < 0 || personality(PER_LINUX32) < 0 || personality(0) < 0)
		bad |= 4;
	if (personality(ADDR_NO_RANDOMIZE) != -1 || errno != EPERM ||
	    personality(0x7fffffff) != -1 || personality(PER_LINUX32 | 1) != -1 ||
	    syscall(SYS_personality, 0x100000000ULL) != -1)
		bad |= 8;
	if (syscall(SYS_reboot, 0, 0, 0, NULL) == 0 || errno != EPERM)
		bad |= 16;
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	if (p < 0 || waitpid(p, NULL, 0) != p)
		bad |= 32;
#if defined(__x86_64__)
	if (int80(20 /* getpid */, 0) == getpid()) {
		if (int80(310 /* unshare */, CLONE_NEWUTS) != -EPERM)
			bad |= 64;
		if (int80(136 /* personality */, ADDR_NO_RANDOMIZE) != -EPERM ||
		    int80(136, 0xffffffff) < 0)
			bad |= 128;
	}
#endif
	return bad;
}

static void test_seccomp(void)
{
	_cleanup_seccomp_ scmp_filter_ctx ctx = NULL;
	struct sock_fprog prog = { 0 };
	int r = loader_seccomp_build(&ctx), ws = 0;
	pid_t pid;

	ok(r == 0 && ctx, "seccomp: profile builds (%s)", r < 0 ? strerror(-r) : "ok");
	if (!ctx)
		return;
#if defined(__x86_64__)
	ok(seccomp_arch_exist(ctx, SCMP_ARCH_X86_64) == 0 &&
		   seccomp_arch_exist(ctx, SCMP_ARCH_X86) == 0 &&
		   seccomp_arch_exist(ctx, SCMP_ARCH_X32) == 0,
	   "seccomp: x86_64, x86 and x32 are all covered");
#else
	skip("seccomp: x86_64, x86 and x32 are all covered", "not x86_64");
#endif
	r = loader_seccomp_export(ctx, &prog);
	ok(r == 0 && prog.len > 0 && prog.len <= BPF_MAXINSNS, "seccomp: exports %u instructions",
	   prog.len);
	if (r < 0)
		return;
	pid = fork();
	if (pid == 0) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || loader_seccomp_apply(&prog) < 0)
			_exit(255);
		_exit(seccomp_child_checks());
	}
	ok(pid > 0 && waitpid(pid, &ws, 0) == pid && WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
	   "seccomp: denies unshare/reboot/odd personalities, clone3 is ENOSYS, fork works, "
	   "i386 ABI covered (child status %d)",
	   WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
	free(prog.filter);
}

/* ---- the loader, run outside a container (needs root for setresuid) ---- */

struct fake_daemon {
	char dir[64];
	int listen_fd;
	int dir_fd;
	unsigned connections;
	char *reports[8]; /* by unit */
};

static int write_request(struct fake_daemon *d, const char *name, const char *data, size_t len)
{
	char tmp[80];
	_cleanup_close_ int in = open_dir_at(d->dir_fd, "in");
	int r;

	if (in < 0)
		return in;
	snprintf(tmp, sizeof(tmp), ".%s", name);
	r = write_file_atomic_at(in, tmp, data, len, 0600, false);
	if (r < 0)
		return r;
	return renameat(in, tmp, in, name) < 0 ? -errno : 0;
}

static int write_unit(struct fake_daemon *d, unsigned n, const char *cwd, char **argv)
{
	char *env[] = { (char *)"PATH=/usr/bin:/bin", (char *)"HOME=/", NULL };
	gid_t groups[] = { 100, 200 };
	struct loader_spec s = {
		.unit = n,
		.uid = 65534,
		.gid = 65534,
		.groups = groups,
		.n_groups = 2,
		.cwd = (char *)cwd,
		.argv = argv,
		.env = env,
	};
	_cleanup_free_ char *buf = NULL;
	char name[32];
	size_t len;
	int r = loader_spec_format(&s, &buf, &len);

	if (r < 0)
		return r;
	snprintf(name, sizeof(name), "unit.%u", n);
	return write_request(d, name, buf, len);
}

/* Serve one connection: answer "ok", "err ..." or nothing. Returns the unit. */
static int serve_one(struct fake_daemon *d, const char *answer)
{
	struct pollfd p = { .fd = d->listen_fd, .events = POLLIN };
	_cleanup_close_ int c = -EBADF;
	char buf[4096];
	size_t len = 0;
	struct loader_status st;

	if (poll(&p, 1, 10000) != 1)
		return -ETIMEDOUT;
	c = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return -errno;
	d->connections++;
	if (!answer)
		return 0;
	while (len < sizeof(buf) - 1 && !(len >= 2 && memcmp(buf + len - 2, "\n\n", 2) == 0)) {
		ssize_t k = read(c, buf + len, sizeof(buf) - 1 - len);

		if (k <= 0)
			return -EIO;
		len += (size_t)k;
	}
	buf[len] = 0;
	if (loader_status_parse(buf, len, &st) < 0 || st.unit >= ELEMENTSOF(d->reports))
		return -EINVAL;
	(void)loop_write(c, answer, strlen(answer));
	free(d->reports[st.unit]);
	d->reports[st.unit] = strndup(buf, len - 1);
	return (int)st.unit;
}

static char *spool_read(struct fake_daemon *d, const char *name)
{
	_cleanup_close_ int spool = open_dir_at(d->dir_fd, "spool");
	char *s = NULL;

	if (spool < 0 || read_file_at(spool, name, 65536, &s, NULL) < 0)
		return NULL;
	return s;
}

static bool has(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle);
}

static int fake_daemon_start(struct fake_daemon *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(d->dir, sizeof(d->dir), "/tmp/xos-test-loader.XXXXXX");
	if (!mkdtemp(d->dir))
		return -errno;
	d->dir_fd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dir_fd < 0 || mkdirat(d->dir_fd, "in", 0700) < 0 ||
	    mkdirat(d->dir_fd, "spool", 0700) < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify.sock", d->dir);
	d->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (d->listen_fd < 0 || bind(d->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(d->listen_fd, 16) < 0)
		return -errno;
	return 0;
}

static pid_t loader_start(struct fake_daemon *d)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct loader_options o = {
			.job = "00112233aabbccdd",
			.dir = d->dir,
			.close_fds = true,
			.redirect_stdio = true,
		};
		_exit(loader_run(&o) < 0 ? 1 : 0);
	}
	return pid;
}

static void check_run_results(struct fake_daemon *d)
{
	_cleanup_free_ char *out1 = spool_read(d, "1.out"), *err1 = spool_read(d, "1.err");
	_cleanup_free_ char *err2 = spool_read(d, "2.err"), *err5 = spool_read(d, "5.err");
	_cleanup_free_ char *st1 = spool_read(d, "1.status");

	ok(has(d->reports[1], "state=exited\ncode=3\n") &&
		   has(d->reports[1], "job=00112233aabbccdd"),
	   "loader: unit 1 exited with code 3");
	ok(has(out1, "Uid:\t65534\t65534\t65534\t65534") && has(out1, "Groups:\t100 200") &&
		   has(out1, "CapEff:\t0000000000000000") &&
		   has(out1, "CapBnd:\t0000000000000000") &&
		   has(out1, "CapInh:\t0000000000000000") && has(out1, "NoNewPrivs:\t1") &&
		   has(out1, "Seccomp:\t2") && has(err1, "to stderr"),
	   "loader: unit 1 ran as 65534 with groups, no caps, no_new_privs, seccomp");
	ok(st1 && d->reports[1] && strcmp(st1, d->reports[1]) == 0,
	   "loader: spool/1.status is what was reported");
	ok(has(d->reports[2], "state=exited\ncode=127\n") &&
		   has(err2, "xos: exec /nonexistent/prog: No such file or directory"),
	   "loader: exec of a missing program -> exited 127, message on stderr");
	ok(has(d->reports[3], "state=failed\n") && has(d->reports[3], "missing key argv"),
	   "loader: bad spec -> failed with the reason");
	ok(has(d->reports[4], "state=killed\ncode=0\nsignal=15\n") &&
		   has(d->reports[4], "remaining=0\n"),
	   "loader: signal request reaches the unit's process group");
	ok(has(d->reports[5], "state=failed\n") &&
		   has(err5, "xos: chdir /nonexistent: No such file or directory"),
	   "loader: chdir failure -> failed, message on stderr");
}

static int run_loader_scenario(struct fake_daemon *d, pid_t *ret_pid)
{
	static const char script[] =
		"grep -E '^(Uid|Groups|Cap...|NoNewPrivs|Seccomp):' /proc/self/status;"
		"echo to stderr >&2; exit 3";
	char *argv1[] = { (char *)"sh", (char *)"-c", (char *)script, NULL };
	char *argv2[] = { (char *)"/nonexistent/prog", NULL };
	char *argv4[] = { (char *)"sleep", (char *)"60", NULL };
	int r = 0, seen = 0;

	if (write_unit(d, 1, "/", argv1) < 0 || write_unit(d, 2, "/", argv2) < 0 ||
	    write_request(d, "unit.3", SPEC("unit\0003\0uid\0001\0gid\0001\0cwd\0/")) < 0 ||
	    write_unit(d, 4, "/", argv4) < 0 || write_unit(d, 5, "/nonexistent", argv4) < 0)
		return -EIO;
	*ret_pid = loader_start(d);
	if (*ret_pid < 0)
		return -errno;
	/* first connection: hang up without answering; the loader must retry */
	if (serve_one(d, NULL) < 0)
		return -EIO;
	/* units 1, 2, 3 and 5 end by themselves; 3 is rejected (and must not
	 * come again); reports are in order, so 3 follows 2 */
	while (seen != ((1 << 1) | (1 << 2) | (1 << 3) | (1 << 5))) {
		bool next_is_3 = (seen & (1 << 2)) && !(seen & (1 << 3));

		r = serve_one(d, next_is_3 ? "err rejected by the test\n" : "ok\n");
		if (r < 0)
			return r;
		if (seen & (1 << r) || (r == 3) != next_is_3)
			return -EPROTO;
		seen |= 1 << r;
	}
	if (write_request(d, "signal.4.TERM.1", "", 0) < 0 || kill(*ret_pid, SIGUSR1) < 0)
		return -EIO;
	r = serve_one(d, "ok\n");
	return r == 4 ? 0 : -EPROTO;
}

static void test_loader_run(void)
{
	struct fake_daemon d = { .listen_fd = -EBADF, .dir_fd = -EBADF };
	pid_t pid = -1;
	int r, ws = 0;

	if (geteuid() != 0) {
		skip("loader: a run with five units", "needs root");
		return;
	}
	r = fake_daemon_start(&d);
	ok(r == 0, "loader: fake daemon in %s", d.dir);
	if (r < 0)
		return;
	r = run_loader_scenario(&d, &pid);
	ok(r == 0, "loader: served every report (%s)", r < 0 ? strerror(-r) : "ok");
	if (r < 0 && pid > 0)
		kill(pid, SIGKILL);
	ok(pid > 0 && waitpid(pid, &ws, 0) == pid && WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
	   "loader: exits 0 when no unit runs and every report is acknowledged");
	ok(d.connections == 6, "loader: 6 connections (1 retried, 1 rejected not retried), got %u",
	   d.connections);
	check_run_results(&d);
	close(d.listen_fd);
	if (rm_rf_at(AT_FDCWD, d.dir) < 0)
		printf("# failed to remove %s\n", d.dir);
	close(d.dir_fd);
	for (size_t i = 0; i < ELEMENTSOF(d.reports); i++)
		free(d.reports[i]);
}

int main(void)
{
	alarm(120);
	test_spec_valid();
	test_spec_groups_env();
	test_spec_bad();
	test_spec_format();
	test_status_format();
	test_status_notify_message();
	test_seccomp();
	test_loader_run();
	printf("1..%u\n", n_tests);
	return n_failed ? 1 : 0;
}
