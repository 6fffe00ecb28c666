/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* loader: xos-loader, PID 1 of every job container. The one public header of
 * loader/. The pure parts (unit specs, status texts) are usable by the daemon
 * too: spec.c and status.c need neither libseccomp nor libcap. */
#ifndef XOS_LOADER_H
#define XOS_LOADER_H

#include <linux/filter.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"

#define LOADER_DEFAULT_DIR "/.xos"
#define LOADER_SPEC_MAX (1024 * 1024) /* bytes, one unit.<N> request */
#define LOADER_UNIT_MAX 2147483647U   /* unit numbers are 1..LOADER_UNIT_MAX */
#define LOADER_REASON_MAX 512         /* bytes, with the NUL */
#define LOADER_NOTIFY_TIMEOUT_USEC (2 * 1000000ULL)
#define LOADER_BACKOFF_MIN_USEC (10 * 1000ULL)
#define LOADER_BACKOFF_MAX_USEC (1000 * 1000ULL)

/* ---- unit spec: NUL-terminated strings, alternating key and value ---- */
struct loader_spec {
	unsigned unit; /* >= 1 */
	uid_t uid;     /* never 0 */
	gid_t gid;
	gid_t *groups; /* supplementary groups, n_groups of them (may be 0) */
	size_t n_groups;
	char *cwd;         /* absolute */
	char **argv;       /* NULL-terminated, at least one non-empty item */
	char **env;        /* NULL-terminated "K=V" items, may be empty */
	bool tty;          /* stdio on a new terminal whose master goes to xosd */
	uint64_t log_size; /* newest bytes of stdout and of stderr kept (0: all) */
};

/* Parse a spec. On a bad spec returns -EINVAL and, if ret_error is not NULL,
 * a malloc'd one-line message naming the problem ("missing key argv"). */
int loader_spec_parse(const char *buf, size_t len, struct loader_spec **ret, char **ret_error);
/* Serialise a spec (the daemon writes this into in/unit.<N>). Fails with
 * -EINVAL for a spec loader_spec_parse() would refuse, -E2BIG above
 * LOADER_SPEC_MAX. */
int loader_spec_format(const struct loader_spec *spec, char **ret, size_t *ret_len);
struct loader_spec *loader_spec_free(struct loader_spec *spec);
static inline void loader_spec_freep(struct loader_spec **spec)
{
	int saved = errno;
	loader_spec_free(*spec);
	errno = saved;
}
#define _cleanup_loader_spec_ _cleanup_(loader_spec_freep)

/* ---- unit end status (the <N>.status file and the notify message) ---- */
enum loader_state {
	LOADER_STATE_EXITED,
	LOADER_STATE_KILLED,
	LOADER_STATE_FAILED,
	_LOADER_STATE_MAX,
	_LOADER_STATE_INVALID = -EINVAL,
};
const char *loader_state_to_string(enum loader_state s); /* NULL if invalid */
enum loader_state loader_state_from_string(const char *s);

struct loader_status {
	char job[XOS_JOB_ID_HEX + 1];
	unsigned unit;
	enum loader_state state;
	int code;   /* exit code, 0 unless exited */
	int signal; /* 0 unless killed */
	char reason[LOADER_REASON_MAX];
	uint64_t utime_us;
	uint64_t stime_us;
	uint64_t maxrss_kb;
	uint64_t started_us;
	uint64_t ended_us;
	unsigned remaining; /* units still running */
};

/* "job=...\nunit=...\n...remaining=N\n" in the order of PROTOCOL.md section 2.
 * Control characters in reason become spaces (it stays one line). */
int loader_status_format(const struct loader_status *st, char **ret, size_t *ret_len);
/* The inverse, strict: every key once, in order; one trailing empty line (the
 * notify message terminator) is accepted. -EINVAL on anything else. */
int loader_status_parse(const char *text, size_t len, struct loader_status *ret);
/* Fill in state/code/signal from a wait status. */
void loader_status_set_wait(struct loader_status *st, int wstatus);

/* ---- seccomp: the default profile ---- */
/* Build the default profile (default allow, deny list, namespace-creating
 * clone flags, personality allow-list) for the native ABI and every other ABI
 * the kernel runs natively (x86_64: also x86 and x32). */
int loader_seccomp_build(scmp_filter_ctx *ret);
/* Compile ctx to a BPF program (ret->filter is malloc'd; free it). */
int loader_seccomp_export(scmp_filter_ctx ctx, struct sock_fprog *ret);
/* Install a program from loader_seccomp_export(): one prctl(), safe in a forked
 * child. The caller must have set no_new_privs (or hold CAP_SYS_ADMIN). */
int loader_seccomp_apply(const struct sock_fprog *prog);
static inline void loader_seccomp_releasep(scmp_filter_ctx *ctx)
{
	int saved = errno;
	if (*ctx)
		seccomp_release(*ctx);
	errno = saved;
}
#define _cleanup_seccomp_ _cleanup_(loader_seccomp_releasep)

/* ---- the loader itself ---- */
struct loader_options {
	const char *job;      /* 16 lowercase hex */
	const char *dir;      /* default LOADER_DEFAULT_DIR */
	bool container_setup; /* bring lo up, mask /proc and /sys paths */
	bool close_fds;       /* close every inherited fd above 2 */
	bool redirect_stdio;  /* stdin from /dev/null, stdout/stderr to loader.log */
	bool wait_first;      /* no unit request yet: wait for one (a pooled container) */
};
/* Run until no unit runs, no unit request is pending and every report is
 * acknowledged. Returns 0 then, -errno if the loader could not start. */
int loader_run(const struct loader_options *opts);

#endif
