/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The default seccomp profile of job units: allow by default, deny what a
 * job has no business doing inside its container, on every native ABI. */
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <linux/seccomp.h>

#include "loader/loader.h"

/* Denied with EPERM. Names libseccomp does not know, or that an ABI lacks, are
 * skipped for that ABI (the profile never fails because of them). */
static const char *const deny_eperm[] = {
	"kexec_load",
	"kexec_file_load",
	"init_module",
	"finit_module",
	"delete_module",
	"create_module",
	"add_key",
	"request_key",
	"keyctl",
	"bpf",
	"acct",
	"swapon",
	"swapoff",
	"reboot",
	"settimeofday",
	"clock_settime",
	"clock_adjtime",
	"adjtimex",
	"stime",
	"mount",
	"umount",
	"umount2",
	"pivot_root",
	"open_by_handle_at",
	"name_to_handle_at",
	"unshare",
	"setns",
	"syslog",
	"uselib",
	"ustat",
	"sysfs",
	"_sysctl",
	"quotactl",
	"nfsservctl",
	"lookup_dcookie",
	"vm86",
	"vm86old",
	"iopl",
	"ioperm",
	"perf_event_open",
	"userfaultfd",
	"fanotify_init",
};

/* Namespace-creating clone flags: clone() with any of them gets EPERM. */
static const uint64_t clone_ns_flags[] = {
	CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,    CLONE_NEWUSER,
	CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP,
};

/* ioctl(2) requests denied with EPERM: pushing input into a terminal
 * (TIOCSTI; a job's terminal is its own, but whatever a terminal it ever
 * reaches) and the virtual console's TIOCLINUX (selection paste). */
static const unsigned long deny_ioctls[] = { TIOCSTI, TIOCLINUX };

/* personality(2) values a job may use: PER_LINUX, PER_LINUX32, UNAME26,
 * PER_LINUX32|UNAME26 and the 0xffffffff query. */
#define PERS_ALLOWED_BITS ((1U << 3) | (1U << 17))

/* Other ABIs the native one runs, and where clone() keeps its flags. */
static const struct arch_info {
	uint32_t native;
	uint32_t extra[2];
	unsigned clone_flags_arg;
} arches[] = {
	{ SCMP_ARCH_X86_64, { SCMP_ARCH_X86, SCMP_ARCH_X32 }, 0 },
	{ SCMP_ARCH_AARCH64, { SCMP_ARCH_ARM, 0 }, 0 },
	{ SCMP_ARCH_PPC64LE, { 0, 0 }, 0 },
	{ SCMP_ARCH_S390X, { SCMP_ARCH_S390, 0 }, 1 },
	{ SCMP_ARCH_S390, { 0, 0 }, 1 },
};

static const struct arch_info *arch_info_native(void)
{
	uint32_t native = seccomp_arch_native();

	for (size_t i = 0; i < ELEMENTSOF(arches); i++)
		if (arches[i].native == native)
			return &arches[i];
	return NULL;
}

static int add_arches(scmp_filter_ctx ctx, const struct arch_info *ai)
{
	for (size_t i = 0; ai && i < ELEMENTSOF(ai->extra); i++) {
		int r;

		if (ai->extra[i] == 0)
			continue;
		r = seccomp_arch_add(ctx, ai->extra[i]);
		if (r < 0 && r != -EEXIST)
			return r;
	}
	return 0;
}

/* seccomp_rule_add, but a syscall unknown to libseccomp is not an error. */
static int rule_add(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
		    const struct scmp_arg_cmp *cmp)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR)
		return 0;
	return seccomp_rule_add_array(ctx, action, nr, n, cmp);
}

static int add_deny_list(scmp_filter_ctx ctx)
{
	for (size_t i = 0; i < ELEMENTSOF(deny_eperm); i++) {
		int r = rule_add(ctx, SCMP_ACT_ERRNO(EPERM), deny_eperm[i], 0, NULL);

		if (r < 0)
			return r;
	}
	return 0;
}

static int add_clone_rules(scmp_filter_ctx ctx, const struct arch_info *ai)
{
	unsigned arg = ai ? ai->clone_flags_arg : 0;
	int r;

	for (size_t i = 0; i < ELEMENTSOF(clone_ns_flags); i++) {
		struct scmp_arg_cmp c = SCMP_CMP(arg, SCMP_CMP_MASKED_EQ, clone_ns_flags[i],
						 clone_ns_flags[i]);

		r = rule_add(ctx, SCMP_ACT_ERRNO(EPERM), "clone", 1, &c);
		if (r < 0)
			return r;
	}
	/* no way to look into clone3's struct: make libc fall back to clone() */
	return rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL);
}

/* The kernel takes an ioctl request as an unsigned int: compare the low 32
 * bits only, or 0x100005412 would slip past a rule for TIOCSTI. */
static int add_ioctl_rules(scmp_filter_ctx ctx)
{
	for (size_t i = 0; i < ELEMENTSOF(deny_ioctls); i++) {
		struct scmp_arg_cmp c = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffULL, deny_ioctls[i]);
		int r = rule_add(ctx, SCMP_ACT_ERRNO(EPERM), "ioctl", 1, &c);

		if (r < 0)
			return r;
	}
	return 0;
}

/* personality(v) is denied unless v is one of the allowed values. libseccomp
 * takes one comparison per argument and rule, and rules are or'ed, so cover
 * the complement with rules "bit b set and bit c clear": a value other than
 * 0xffffffff with a bit outside PERS_ALLOWED_BITS has such a pair, and the
 * pairs chained b0->b1->...->b29->b0, b0->3 and b0->17 always contain one
 * (every bit is reachable from every b along the chain). Values above 32 bits
 * are denied by one more rule. */
static int add_personality_rules(scmp_filter_ctx ctx)
{
	unsigned bits[32], n = 0;
	struct scmp_arg_cmp c;
	int r;

	for (unsigned b = 0; b < 32; b++)
		if (!(PERS_ALLOWED_BITS & (1U << b)))
			bits[n++] = b;
	for (unsigned i = 0; i < n + 2; i++) {
		unsigned set = i < n ? bits[i] : bits[0];
		unsigned clear = i < n ? bits[(i + 1) % n] : (i == n ? 3 : 17);
		uint64_t mask = (1ULL << set) | (1ULL << clear);

		c = (struct scmp_arg_cmp)SCMP_A0(SCMP_CMP_MASKED_EQ, mask, 1ULL << set);
		r = rule_add(ctx, SCMP_ACT_ERRNO(EPERM), "personality", 1, &c);
		if (r < 0)
			return r;
	}
	c = (struct scmp_arg_cmp)SCMP_A0(SCMP_CMP_GT, 0xffffffffULL);
	return rule_add(ctx, SCMP_ACT_ERRNO(EPERM), "personality", 1, &c);
}

int loader_seccomp_build(scmp_filter_ctx *ret)
{
	_cleanup_seccomp_ scmp_filter_ctx ctx = NULL;
	const struct arch_info *ai = arch_info_native();
	int r;

	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return -ENOMEM;
	/* the loader sets no_new_privs itself, right before loading */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (r < 0)
		return r;
	r = add_arches(ctx, ai);
	if (r < 0)
		return r;
	r = add_deny_list(ctx);
	if (r < 0)
		return r;
	r = add_clone_rules(ctx, ai);
	if (r < 0)
		return r;
	r = add_personality_rules(ctx);
	if (r < 0)
		return r;
	r = add_ioctl_rules(ctx);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(ctx);
	return 0;
}

int loader_seccomp_export(scmp_filter_ctx ctx, struct sock_fprog *ret)
{
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ struct sock_filter *prog = NULL;
	struct stat st;
	ssize_t n;
	int r;

	fd = memfd_create("xos-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = seccomp_export_bpf(ctx, fd);
	if (r < 0)
		return r;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) ||
	    st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS)
		return -E2BIG;
	prog = malloc((size_t)st.st_size);
	if (!prog)
		return -ENOMEM;
	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	n = loop_read(fd, prog, (size_t)st.st_size);
	if (n < 0)
		return (int)n;
	if (n != st.st_size)
		return -EIO;
	ret->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
	ret->filter = TAKE_PTR(prog);
	return 0;
}

int loader_seccomp_apply(const struct sock_fprog *prog)
{
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0) < 0)
		return -errno;
	return 0;
}
