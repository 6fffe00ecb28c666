/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cgroup_parent = caller: a job's cgroups nest under the cgroup of the process
 * that asked for it (a Slurm step's task), so the batch system's accounting,
 * limits and kill cover the container. DECISIONS.md (ag) gives the rule. */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/common.h"
#include "runtime/runtime.h"

#define CALLER_CGROUP_MAX 65536

/* s is PREFIX followed by at least one character of [a-z0-9_]; with digits,
 * only digits */
static bool comp_is(const char *s, size_t len, const char *prefix, bool digits)
{
	size_t p = strlen(prefix);

	if (len <= p || strncmp(s, prefix, p) != 0)
		return false;
	for (size_t i = p; i < len; i++) {
		char ch = s[i];

		if (!(ch >= '0' && ch <= '9') &&
		    (digits || !((ch >= 'a' && ch <= 'z') || ch == '_')))
			return false;
	}
	return true;
}

struct comps {
	const char *s[64];
	size_t len[64];
	size_t n;
};

static int split(const char *path, struct comps *ret)
{
	struct comps c = { .n = 0 };

	for (const char *p = path; *p;) {
		size_t len = strcspn(p, "/");

		if (len) {
			if (c.n >= ELEMENTSOF(c.s))
				return -E2BIG;
			c.s[c.n] = p;
			c.len[c.n++] = len;
		}
		p += len;
		if (*p == '/')
			p++;
	}
	*ret = c;
	return 0;
}

static bool comp_eq(const struct comps *c, size_t i, const char *s)
{
	return c->len[i] == strlen(s) && strncmp(c->s[i], s, c->len[i]) == 0;
}

/* v1: slurm[_NODE]/uid_U/job_J/step_S[/...], U the caller's uid.
 * v2: .../[NODE_]slurmstepd.scope/job_J/step_S[/...] (slurmstepd's scope is
 * the daemon's own: a user cannot make one). */
bool runtime_cgroup_is_slurm_step(const char *path, bool v2, uid_t uid)
{
	struct comps c;
	char uidc[32];

	if (split(path, &c) < 0)
		return false;
	for (size_t i = 1; i + 1 < c.n; i++) {
		if (!comp_is(c.s[i], c.len[i], "job_", true) ||
		    !comp_is(c.s[i + 1], c.len[i + 1], "step_", false))
			continue;
		if (v2) {
			const char *sc = "slurmstepd.scope";
			size_t l = c.len[i - 1], n = strlen(sc);

			if (l >= n && strncmp(c.s[i - 1] + l - n, sc, n) == 0 &&
			    (l == n || c.s[i - 1][l - n - 1] == '_'))
				return true;
			continue;
		}
		snprintf(uidc, sizeof(uidc), "uid_%u", (unsigned)uid);
		/* slurm_NODE: NODE is a node name, any characters of one */
		if (i == 2 && comp_eq(&c, 1, uidc) &&
		    (comp_eq(&c, 0, "slurm") ||
		     (c.len[0] > 6 && strncmp(c.s[0], "slurm_", 6) == 0)))
			return true;
	}
	return false;
}

/* The caller's cgroup in the reference hierarchy from the text of its
 * /proc/PID/cgroup: v2 the unified one ("0::PATH"), v1 the one holding the
 * cpuacct controller (Slurm's per-task accounting reads it). ret_path has no
 * leading '/', ret_hier is the controller list ("" for v2). */
int runtime_cgroup_caller_parse(const char *text, bool v2, char **ret_hier, char **ret_path)
{
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		const char *c1 = memchr(line, ':', len);
		const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
		const char *start = line;

		line = nl ? nl + 1 : NULL;
		if (!c2)
			continue;
		_cleanup_free_ char *ctrl = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
		if (!ctrl)
			return -ENOMEM;
		bool match = false;
		if (v2)
			match = ctrl[0] == 0 && c1 == start + 1 && start[0] == '0';
		else
			for (char *save = NULL, *t = strtok_r(ctrl, ",", &save); t;
			     t = strtok_r(NULL, ",", &save))
				match = match || strcmp(t, "cpuacct") == 0;
		if (!match)
			continue;
		const char *p = c2 + 1;
		const char *end = p + strcspn(p, "\n");
		while (*p == '/')
			p++;
		if (end <= p || memmem(p, (size_t)(end - p), "..", 2))
			return -ENOENT; /* the root cgroup: nothing to nest under */
		_cleanup_free_ char *path = strndup(p, (size_t)(end - p));
		_cleanup_free_ char *hier = v2 ? strdup("")
					       : strndup(c1 + 1, (size_t)(c2 - c1 - 1));
		if (!path || !hier)
			return -ENOMEM;
		*ret_hier = TAKE_PTR(hier);
		*ret_path = TAKE_PTR(path);
		return 0;
	}
	return -ENOENT;
}

/* The cgroup directory hier/path is delegated to uid: owned by it. */
static int cgroup_owned_by(const char *hier, const char *path, uid_t uid)
{
	_cleanup_close_ int root = open("/sys/fs/cgroup", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *rel = xstrdup_printf("%s%s%s", hier, hier[0] ? "/" : "", path);
	struct stat st;

	if (root < 0)
		return -errno;
	if (!rel)
		return -ENOMEM;
	if (fstatat(root, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	return st.st_uid == uid ? 0 : -EPERM;
}

/* The effective uid in the text of /proc/PID/status */
static int status_euid(const char *text, uid_t *ret)
{
	const char *p = strstr(text, "\nUid:");
	unsigned long r, e;

	if (!p || sscanf(p + 5, "%lu %lu", &r, &e) != 2)
		return -EINVAL;
	*ret = (uid_t)e;
	return 0;
}

/* Read the cgroup file of pid, checking that pid is still the process of uid
 * it was when read (a pidfd pins it across the reads). */
static int read_caller(pid_t pid, uid_t uid, char **ret_text)
{
	_cleanup_close_ int pidfd = -EBADF, dir = -EBADF;
	_cleanup_free_ char *status = NULL, *text = NULL;
	char name[32];
	uid_t euid;
	int r;

	if (pid <= 0)
		return -ESRCH;
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -errno;
	snprintf(name, sizeof(name), "/proc/%d", (int)pid);
	dir = open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -errno;
	r = read_file_at(dir, "status", 1 << 16, &status, NULL);
	if (r >= 0)
		r = read_file_at(dir, "cgroup", CALLER_CGROUP_MAX, &text, NULL);
	if (r < 0)
		return r;
	if (status_euid(status, &euid) < 0 || euid != uid)
		return -EPERM; /* not the caller any more: its pid was reused */
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
		return -errno; /* gone: what was read may be another's */
	*ret_text = TAKE_PTR(text);
	return 0;
}

int runtime_cgroup_caller(pid_t pid, uid_t uid, bool v2, char **ret_parent, bool *ret_slurm)
{
	_cleanup_free_ char *text = NULL, *hier = NULL, *path = NULL;
	bool slurm;
	int r;

	r = read_caller(pid, uid, &text);
	if (r < 0)
		return r;
	r = runtime_cgroup_caller_parse(text, v2, &hier, &path);
	if (r < 0)
		return r;
	slurm = runtime_cgroup_is_slurm_step(path, v2, uid);
	if (!slurm) {
		r = cgroup_owned_by(hier, path, uid);
		if (r < 0)
			return r;
	}
	*ret_parent = TAKE_PTR(path);
	*ret_slurm = slurm;
	return 0;
}
