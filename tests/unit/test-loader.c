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

#include <sys/resource.h>
#include <linux/audit.h>
#include <linux/seccomp.h>

#include "loader/loader.h"
#include "tests/unit/tap.h"

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

/* What a classic BPF program answers for one system call: enough of an
 * interpreter for what libseccomp emits. An instruction it does not know, or
 * running off the end, gives BPF_RUN_UNKNOWN, which no check accepts. */
#define BPF_RUN_UNKNOWN 0xffffffffU

static bool bpf_alu(uint16_t code, uint32_t src, uint32_t *a)
{
	switch (BPF_OP(code)) {
	case BPF_ADD:
		*a += src;
		return true;
	case BPF_SUB:
		*a -= src;
		return true;
	case BPF_AND:
		*a &= src;
		return true;
	case BPF_OR:
		*a |= src;
		return true;
	case BPF_XOR:
		*a ^= src;
		return true;
	case BPF_LSH:
		*a = src < 32 ? *a << src : 0;
		return true;
	case BPF_RSH:
		*a = src < 32 ? *a >> src : 0;
		return true;
	case BPF_NEG:
		*a = -*a;
		return true;
	default:
		return false;
	}
}

/* 1 taken, 0 not, -1 an unknown jump */
static int bpf_jump_taken(uint16_t code, uint32_t a, uint32_t src)
{
	switch (BPF_OP(code)) {
	case BPF_JEQ:
		return a == src;
	case BPF_JGT:
		return a > src;
	case BPF_JGE:
		return a >= src;
	case BPF_JSET:
		return (a & src) != 0;
	default:
		return -1;
	}
}

static bool bpf_load(uint16_t code, uint32_t k, const struct seccomp_data *d, const uint32_t *mem,
		     uint32_t *reg)
{
	if (BPF_MODE(code) == BPF_ABS && BPF_SIZE(code) == BPF_W && k % 4 == 0 &&
	    k + 4 <= sizeof(*d))
		memcpy(reg, (const char *)d + k, 4);
	else if (BPF_MODE(code) == BPF_IMM)
		*reg = k;
	else if (BPF_MODE(code) == BPF_MEM && k < BPF_MEMWORDS)
		*reg = mem[k];
	else
		return false;
	return true;
}

static uint32_t bpf_run(const struct sock_fprog *prog, const struct seccomp_data *d)
{
	uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = { 0 };

	for (unsigned pc = 0; pc < prog->len; pc++) {
		const struct sock_filter *f = &prog->filter[pc];
		uint32_t src = BPF_SRC(f->code) == BPF_X ? x : f->k;
		int taken;

		switch (BPF_CLASS(f->code)) {
		case BPF_LD:
		case BPF_LDX:
			if (!bpf_load(f->code, f->k, d, mem,
				      BPF_CLASS(f->code) == BPF_LD ? &a : &x))
				return BPF_RUN_UNKNOWN;
			break;
		case BPF_ST:
		case BPF_STX:
			if (f->k >= BPF_MEMWORDS)
				return BPF_RUN_UNKNOWN;
			mem[f->k] = BPF_CLASS(f->code) == BPF_ST ? a : x;
			break;
		case BPF_ALU:
			if (!bpf_alu(f->code, src, &a))
				return BPF_RUN_UNKNOWN;
			break;
		case BPF_JMP:
			taken = BPF_OP(f->code) == BPF_JA ? 1 : bpf_jump_taken(f->code, a, src);
			if (taken < 0)
				return BPF_RUN_UNKNOWN;
			pc += BPF_OP(f->code) == BPF_JA ? f->k : taken ? f->jt : f->jf;
			break;
		case BPF_RET:
			return BPF_RVAL(f->code) == BPF_A ? a : f->k;
		case BPF_MISC:
			if (BPF_MISCOP(f->code) == BPF_TAX)
				x = a;
			else
				a = x;
			break;
		default:
			return BPF_RUN_UNKNOWN;
		}
	}
	return BPF_RUN_UNKNOWN;
}

#if defined(__x86_64__)
#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif
#define RET_EPERM (SECCOMP_RET_ERRNO | EPERM)

/* System calls as the kernel sees them on each ABI (numbers from the kernel's
 * tables, not from libseccomp, which made the filter). */
static const struct bpf_case {
	const char *abi;
	uint32_t arch;
	int nr;
	uint64_t arg0;
	uint32_t want;
} bpf_cases[] = {
	{ "x86_64", AUDIT_ARCH_X86_64, 39 /* getpid */, 0, SECCOMP_RET_ALLOW },
	{ "x86_64", AUDIT_ARCH_X86_64, 272 /* unshare */, CLONE_NEWUTS, RET_EPERM },
	{ "x86_64", AUDIT_ARCH_X86_64, 56 /* clone */, CLONE_NEWUSER, RET_EPERM },
	{ "i386", AUDIT_ARCH_I386, 20 /* getpid */, 0, SECCOMP_RET_ALLOW },
	{ "i386", AUDIT_ARCH_I386, 310 /* unshare */, CLONE_NEWUTS, RET_EPERM },
	{ "i386", AUDIT_ARCH_I386, 88 /* reboot */, 0, RET_EPERM },
	{ "i386", AUDIT_ARCH_I386, 120 /* clone */, CLONE_NEWUSER, RET_EPERM },
	{ "i386", AUDIT_ARCH_I386, 136 /* personality */, ADDR_NO_RANDOMIZE, RET_EPERM },
	{ "i386", AUDIT_ARCH_I386, 136 /* personality */, 0xffffffff, SECCOMP_RET_ALLOW },
	{ "x32", AUDIT_ARCH_X86_64, __X32_SYSCALL_BIT | 39, 0, SECCOMP_RET_ALLOW },
	{ "x32", AUDIT_ARCH_X86_64, __X32_SYSCALL_BIT | 272, CLONE_NEWUTS, RET_EPERM },
	{ "x32", AUDIT_ARCH_X86_64, __X32_SYSCALL_BIT | 169 /* reboot */, 0, RET_EPERM },
	{ "x32", AUDIT_ARCH_X86_64, __X32_SYSCALL_BIT | 56, CLONE_NEWUSER, RET_EPERM },
	{ "x32", AUDIT_ARCH_X86_64, __X32_SYSCALL_BIT | 135, ADDR_NO_RANDOMIZE, RET_EPERM },
	{ "x32", AUDIT_ARCH_X86_64, __X32_SYSCALL_BIT | 135, 0xffffffff, SECCOMP_RET_ALLOW },
};

/* The exported filter, run here rather than by the kernel: it answers each ABI
 * by rules of its own, whether or not this kernel runs that ABI. */
static void test_seccomp_bpf(const struct sock_fprog *prog)
{
	static const char *const abis[] = { "x86_64", "i386", "x32" };
	struct seccomp_data other = { .nr = 172, .arch = AUDIT_ARCH_AARCH64 };
	uint32_t act = bpf_run(prog, &other) & SECCOMP_RET_ACTION_FULL;

	for (size_t i = 0; i < ELEMENTSOF(abis); i++) {
		char wrong[256] = "";
		size_t len = 0;

		for (size_t c = 0; c < ELEMENTSOF(bpf_cases); c++) {
			const struct bpf_case *t = &bpf_cases[c];
			struct seccomp_data d = { .nr = t->nr,
						  .arch = t->arch,
						  .args = { t->arg0 } };
			uint32_t got = bpf_run(prog, &d);

			if (strcmp(t->abi, abis[i]) == 0 && got != t->want && len < sizeof(wrong))
				len += (size_t)snprintf(wrong + len, sizeof(wrong) - len,
							" nr %#x arg %#llx: %#x, not %#x;", t->nr,
							(unsigned long long)t->arg0, got, t->want);
		}
		ok(!wrong[0], "seccomp (filter run offline): the %s ABI has its own rules%s",
		   abis[i], wrong);
	}
	ok(act == SECCOMP_RET_KILL_PROCESS || act == SECCOMP_RET_KILL_THREAD,
	   "seccomp (filter run offline): an ABI it does not cover is killed (%#x), so the "
	   "rules above are needed",
	   act);
}

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

/* a syscall through the x32 ABI: x86_64's numbers with __X32_SYSCALL_BIT */
static long x32_call(long nr, long a)
{
	long ret = syscall(nr | __X32_SYSCALL_BIT, a);

	return ret < 0 ? -errno : ret;
}

/* The default action for a signal, set by the system call itself: a
 * sanitizer's interceptors neither see nor refuse it, so a fault in the child
 * ends it with no report. */
static void signal_default_raw(int sig)
{
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		uint64_t mask;
	} sa = { 0 };

	(void)syscall(SYS_rt_sigaction, sig, &sa, NULL, sizeof(sa.mask));
}

/* Does this kernel run an ABI? getpid through it, in a child without the
 * filter (where i386 emulation is off, int $0x80 is SIGSEGV). Returns true
 * if it does; if not, or if the probe failed, *ret_why says why. */
static bool abi_probe(const char *abi, long (*call)(long, long), long getpid_nr, char *why,
		      size_t len, bool *ret_understood)
{
	pid_t pid = fork();
	int ws = 0;

	if (pid == 0) {
		struct rlimit no_core = { 0, 0 };
		long r;

		(void)setrlimit(RLIMIT_CORE, &no_core);
		signal_default_raw(SIGSEGV);
		signal_default_raw(SIGBUS);
		signal_default_raw(SIGILL);
		r = call(getpid_nr, 0);
		_exit(r == getpid() ? 0 : r == -ENOSYS ? 2 : 1);
	}
	*ret_understood = false;
	if (pid < 0 || waitpid(pid, &ws, 0) != pid) {
		snprintf(why, len, "the probe of the %s ABI did not run: %s", abi, strerror(errno));
		return false;
	}
	*ret_understood = (WIFEXITED(ws) && WEXITSTATUS(ws) != 1) ||
			  (WIFSIGNALED(ws) && WTERMSIG(ws) == SIGSEGV);
	if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
		snprintf(why, len, "the kernel runs the %s ABI", abi);
	else if (WIFEXITED(ws) && WEXITSTATUS(ws) == 2)
		snprintf(why, len, "this kernel does not run the %s ABI (getpid is ENOSYS)", abi);
	else if (WIFSIGNALED(ws) && WTERMSIG(ws) == SIGSEGV)
		snprintf(why, len, "this kernel does not run the %s ABI (a system call is SIGSEGV)",
			 abi);
	else if (WIFSIGNALED(ws))
		snprintf(why, len, "the probe of the %s ABI was killed by signal %d", abi,
			 WTERMSIG(ws));
	else
		snprintf(why, len, "getpid through the %s ABI did not give the pid", abi);
	return WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
}
#endif

struct abi_gates {
	bool i386, x32;
	char i386_why[128], x32_why[128];
};

enum {
	CHK_UNSHARE,
	CHK_CLONE3,
	CHK_PERS_ALLOWED,
	CHK_PERS_DENIED,
	CHK_REBOOT,
	CHK_FORK,
	CHK_I386_UNSHARE,
	CHK_I386_PERS,
	CHK_X32_UNSHARE,
	CHK_X32_PERS,
	_CHK_MAX,
};

static const char *const check_names[_CHK_MAX] = {
	[CHK_UNSHARE] = "unshare(CLONE_NEWUTS) is EPERM",
	[CHK_CLONE3] = "clone3 is ENOSYS (libc falls back to clone)",
	[CHK_PERS_ALLOWED] = "personality: the query, PER_LINUX32 and PER_LINUX are allowed",
	[CHK_PERS_DENIED] = "personality: ADDR_NO_RANDOMIZE, other values and values above 32 "
			    "bits are EPERM",
	[CHK_REBOOT] = "reboot is EPERM",
	[CHK_FORK] = "fork works",
	[CHK_I386_UNSHARE] = "i386 ABI: unshare is EPERM",
	[CHK_I386_PERS] = "i386 ABI: personality(ADDR_NO_RANDOMIZE) is EPERM, the query allowed",
	[CHK_X32_UNSHARE] = "x32 ABI: unshare is EPERM",
	[CHK_X32_PERS] = "x32 ABI: personality(ADDR_NO_RANDOMIZE) is EPERM, the query allowed",
};

/* In a child with the profile applied: a bit mask of the failed checks. */
static uint32_t seccomp_child_checks(const struct abi_gates *g)
{
	uint32_t bad = 0;

	if (unshare(CLONE_NEWUTS) == 0 || errno != EPERM)
		bad |= 1U << CHK_UNSHARE;
	if (syscall(SYS_clone3, NULL, 0) == 0 || errno != ENOSYS)
		bad |= 1U << CHK_CLONE3;
	if (personality(0xffffffff) < 0 || personality(PER_LINUX32) < 0 || personality(0) < 0)
		bad |= 1U << CHK_PERS_ALLOWED;
	if (personality(ADDR_NO_RANDOMIZE) != -1 || errno != EPERM ||
	    personality(0x7fffffff) != -1 || personality(PER_LINUX32 | 1) != -1 ||
	    syscall(SYS_personality, 0x100000000ULL) != -1)
		bad |= 1U << CHK_PERS_DENIED;
	if (syscall(SYS_reboot, 0, 0, 0, NULL) == 0 || errno != EPERM)
		bad |= 1U << CHK_REBOOT;
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	if (p < 0 || waitpid(p, NULL, 0) != p)
		bad |= 1U << CHK_FORK;
#if defined(__x86_64__)
	if (g->i386 && int80(310 /* unshare */, CLONE_NEWUTS) != -EPERM)
		bad |= 1U << CHK_I386_UNSHARE;
	if (g->i386 && (int80(136 /* personality */, ADDR_NO_RANDOMIZE) != -EPERM ||
			int80(136, 0xffffffff) < 0))
		bad |= 1U << CHK_I386_PERS;
	if (g->x32 && x32_call(272 /* unshare */, CLONE_NEWUTS) != -EPERM)
		bad |= 1U << CHK_X32_UNSHARE;
	if (g->x32 && (x32_call(135 /* personality */, ADDR_NO_RANDOMIZE) != -EPERM ||
		       x32_call(135, 0xffffffff) < 0))
		bad |= 1U << CHK_X32_PERS;
#else
	(void)g;
#endif
	return bad;
}

/* Why a check was not run, or NULL if it was. */
static const char *check_skipped(unsigned c, const struct abi_gates *g)
{
	if ((c == CHK_I386_UNSHARE || c == CHK_I386_PERS) && !g->i386)
		return g->i386_why;
	if ((c == CHK_X32_UNSHARE || c == CHK_X32_PERS) && !g->x32)
		return g->x32_why;
	return NULL;
}

/* The filter applied in a child; each check is a test of its own. */
static void test_seccomp_live(const struct sock_fprog *prog, const struct abi_gates *g)
{
	_cleanup_close_ int rd = -EBADF;
	int p[2], ws = 0;
	uint32_t bad = ~0U;
	ssize_t n = -1;
	char how[64] = "not started";
	bool whole;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return (void)ok(false, "seccomp: pipe: %s", strerror(errno));
	rd = p[0];
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || loader_seccomp_apply(prog) < 0)
			_exit(255);
		bad = seccomp_child_checks(g);
		_exit(write(p[1], &bad, sizeof(bad)) == (ssize_t)sizeof(bad) ? 0 : 254);
	}
	close(p[1]);
	if (pid > 0) {
		n = loop_read(rd, &bad, sizeof(bad));
		if (waitpid(pid, &ws, 0) != pid)
			snprintf(how, sizeof(how), "waitpid: %s", strerror(errno));
		else if (WIFEXITED(ws))
			snprintf(how, sizeof(how), "exit status %d", WEXITSTATUS(ws));
		else
			snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(ws));
	}
	whole = n == (ssize_t)sizeof(bad) && WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
	ok(whole, "seccomp: a child with the filter applied ran every check (%s)", how);
	for (unsigned c = 0; c < _CHK_MAX; c++) {
		const char *why = check_skipped(c, g);

		if (why)
			skip(why, "seccomp: %s", check_names[c]);
		else
			ok(whole && !(bad & (1U << c)), "seccomp: %s", check_names[c]);
	}
}

static void test_seccomp(void)
{
	_cleanup_seccomp_ scmp_filter_ctx ctx = NULL;
	struct sock_fprog prog = { 0 };
	struct abi_gates g = { .i386_why = "not x86_64", .x32_why = "not x86_64" };
	int r = loader_seccomp_build(&ctx);

	ok(r == 0 && ctx, "seccomp: profile builds (%s)", r < 0 ? strerror(-r) : "ok");
	if (!ctx)
		return;
#if defined(__x86_64__)
	ok(seccomp_arch_exist(ctx, SCMP_ARCH_X86_64) == 0 &&
		   seccomp_arch_exist(ctx, SCMP_ARCH_X86) == 0 &&
		   seccomp_arch_exist(ctx, SCMP_ARCH_X32) == 0,
	   "seccomp: x86_64, x86 and x32 are all covered");
#else
	skip("not x86_64", "seccomp: x86_64, x86 and x32 are all covered");
#endif
	r = loader_seccomp_export(ctx, &prog);
	ok(r == 0 && prog.len > 0 && prog.len <= BPF_MAXINSNS, "seccomp: exports %u instructions",
	   prog.len);
	if (r < 0)
		return;
#if defined(__x86_64__)
	test_seccomp_bpf(&prog);
	{
		bool understood;

		g.i386 = abi_probe("i386", int80, 20, g.i386_why, sizeof(g.i386_why), &understood);
		ok(understood, "seccomp: probe of the i386 ABI without the filter: %s", g.i386_why);
		g.x32 = abi_probe("x32", x32_call, 39, g.x32_why, sizeof(g.x32_why), &understood);
		ok(understood, "seccomp: probe of the x32 ABI without the filter: %s", g.x32_why);
	}
#endif
	test_seccomp_live(&prog, &g);
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
		skip("needs root", "loader: a run with five units");
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
	return tap_done();
}
