/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cgroup backends: limits as LXC config items, accounting read back at a job's end.
 * v1 is what the hybrid test machines have; v2 is what most production nodes run. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/vfs.h>

#include "common/common.h"
#include "runtime/runtime.h"

#define CPU_PERIOD_US 100000ULL

static int add_item(struct runtime_cg_item *items, size_t max, size_t *n, const char *key,
		    uint64_t a, uint64_t b)
{
	int r;

	if (*n >= max)
		return -E2BIG;
	r = snprintf(items[*n].key, sizeof(items[*n].key), "%s", key);
	if (r < 0 || (size_t)r >= sizeof(items[*n].key))
		return -ENAMETOOLONG;
	if (b)
		r = snprintf(items[*n].value, sizeof(items[*n].value), "%llu %llu",
			     (unsigned long long)a, (unsigned long long)b);
	else
		r = snprintf(items[*n].value, sizeof(items[*n].value), "%llu",
			     (unsigned long long)a);
	if (r < 0 || (size_t)r >= sizeof(items[*n].value))
		return -ENAMETOOLONG;
	(*n)++;
	return 0;
}

static int v1_limits(const struct runtime_limits *l, struct runtime_cg_item *items, size_t max)
{
	size_t n = 0;
	int r = 0;

	if (l->memory)
		r = add_item(items, max, &n, "lxc.cgroup.memory.limit_in_bytes", l->memory, 0);
	if (r >= 0 && l->millicpus) {
		r = add_item(items, max, &n, "lxc.cgroup.cpu.cfs_period_us", CPU_PERIOD_US, 0);
		if (r >= 0)
			r = add_item(items, max, &n, "lxc.cgroup.cpu.cfs_quota_us",
				     l->millicpus * CPU_PERIOD_US / 1000, 0);
	}
	if (r >= 0 && l->pids)
		r = add_item(items, max, &n, "lxc.cgroup.pids.max", l->pids, 0);
	return r < 0 ? r : (int)n;
}

static int v2_limits(const struct runtime_limits *l, struct runtime_cg_item *items, size_t max)
{
	size_t n = 0;
	int r = 0;

	if (l->memory) {
		r = add_item(items, max, &n, "lxc.cgroup2.memory.max", l->memory, 0);
		if (r >= 0)
			r = add_item(items, max, &n, "lxc.cgroup2.memory.swap.max", 0, 0);
	}
	if (r >= 0 && l->millicpus)
		r = add_item(items, max, &n, "lxc.cgroup2.cpu.max",
			     l->millicpus * CPU_PERIOD_US / 1000, CPU_PERIOD_US);
	if (r >= 0 && l->pids)
		r = add_item(items, max, &n, "lxc.cgroup2.pids.max", l->pids, 0);
	return r < 0 ? r : (int)n;
}

static int read_u64(runtime_cg_reader rd, void *ud, const char *file, uint64_t *ret)
{
	char buf[64];
	int r = rd(ud, file, buf, sizeof(buf));

	if (r < 0)
		return r;
	buf[strcspn(buf, "\n")] = 0;
	return parse_uint64(buf, ret);
}

/* Find "key N" in a flat-keyed file such as cpu.stat or memory.events. */
static int read_keyed(runtime_cg_reader rd, void *ud, const char *file, const char *key,
		      uint64_t *ret)
{
	char buf[4096];
	size_t klen = strlen(key);
	int r = rd(ud, file, buf, sizeof(buf));

	if (r < 0)
		return r;
	for (char *line = buf; line && *line;
	     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
			char num[32];
			size_t len = strcspn(line + klen + 1, "\n");

			if (len >= sizeof(num))
				return -EINVAL;
			memcpy(num, line + klen + 1, len);
			num[len] = 0;
			return parse_uint64(num, ret);
		}
	}
	return -ENOENT;
}

static int v1_accounting(runtime_cg_reader rd, void *ud, struct runtime_accounting *ret)
{
	struct runtime_accounting a = { 0 };
	uint64_t ns;

	if (read_u64(rd, ud, "cpuacct.usage_user", &ns) >= 0)
		a.cpu_user_us = ns / 1000;
	if (read_u64(rd, ud, "cpuacct.usage_sys", &ns) >= 0)
		a.cpu_system_us = ns / 1000;
	(void)read_u64(rd, ud, "memory.max_usage_in_bytes", &a.memory_peak);
	(void)read_keyed(rd, ud, "memory.oom_control", "oom_kill", &a.oom_kills);
	*ret = a;
	return 0;
}

static int v2_accounting(runtime_cg_reader rd, void *ud, struct runtime_accounting *ret)
{
	struct runtime_accounting a = { 0 };

	(void)read_keyed(rd, ud, "cpu.stat", "user_usec", &a.cpu_user_us);
	(void)read_keyed(rd, ud, "cpu.stat", "system_usec", &a.cpu_system_us);
	(void)read_u64(rd, ud, "memory.peak", &a.memory_peak);
	(void)read_keyed(rd, ud, "memory.events", "oom_kill", &a.oom_kills);
	*ret = a;
	return 0;
}

/* What a dump will write of memory: anonymous memory and shared memory, by
 * the keys of memory.stat that name them. */
static int dump_memory(runtime_cg_reader rd, void *ud, const char *anon_key, const char *shmem_key,
		       uint64_t *ret_anon, uint64_t *ret_shmem)
{
	uint64_t anon = 0, shmem = 0;
	int r = read_keyed(rd, ud, "memory.stat", anon_key, &anon);

	if (r < 0)
		return r;
	(void)read_keyed(rd, ud, "memory.stat", shmem_key, &shmem);
	*ret_anon = anon;
	*ret_shmem = shmem;
	return 0;
}

/* v1: total_rss is anonymous memory (and swap cache), with the children's */
static int v1_dump_memory(runtime_cg_reader rd, void *ud, uint64_t *ret_anon, uint64_t *ret_shmem)
{
	return dump_memory(rd, ud, "total_rss", "total_shmem", ret_anon, ret_shmem);
}

static int v2_dump_memory(runtime_cg_reader rd, void *ud, uint64_t *ret_anon, uint64_t *ret_shmem)
{
	return dump_memory(rd, ud, "anon", "shmem", ret_anon, ret_shmem);
}

const struct runtime_cgroup_ops runtime_cgroup_v1 = {
	.name = "v1",
	.limits = v1_limits,
	.accounting = v1_accounting,
	.dump_memory = v1_dump_memory,
};

const struct runtime_cgroup_ops runtime_cgroup_v2 = {
	.name = "v2",
	.limits = v2_limits,
	.accounting = v2_accounting,
	.dump_memory = v2_dump_memory,
};

const struct runtime_cgroup_ops *runtime_cgroup_detect(void)
{
	struct statfs fs;

	if (statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC)
		return &runtime_cgroup_v2;
	return &runtime_cgroup_v1;
}

/* The components of path from its first "job_J/step_S" pair on: 0 if none */
static unsigned slurm_levels(const char *path)
{
	unsigned n = 0;
	bool in_job = false;

	for (const char *p = path; *p;) {
		size_t len = strcspn(p, "/");

		if (!in_job && len > 4 && strncmp(p, "job_", 4) == 0 &&
		    strspn(p + 4, "0123456789") == len - 4 && strncmp(p + len, "/step_", 6) == 0)
			in_job = true;
		n += in_job && len;
		p += len;
		p += *p == '/';
	}
	return n;
}

int runtime_cgroup_paths(const char *parent, const char *name, struct runtime_cgroup_paths *ret)
{
	int a, b;

	if (parent && (parent[0] == '/' || strstr(parent, "..")))
		return -EINVAL;
	if (parent && parent[0]) {
		a = snprintf(ret->payload, sizeof(ret->payload), "%s/%s", parent, name);
		b = snprintf(ret->monitor, sizeof(ret->monitor), "%s/%s.monitor", parent, name);
	} else {
		a = snprintf(ret->payload, sizeof(ret->payload), "lxc.payload.%s", name);
		b = snprintf(ret->monitor, sizeof(ret->monitor), "lxc.monitor.%s", name);
	}
	if (a < 0 || b < 0 || (size_t)a >= sizeof(ret->payload) ||
	    (size_t)b >= sizeof(ret->monitor))
		return -ENAMETOOLONG;
	ret->slurm[0] = 0;
	ret->slurm_levels = parent && parent[0] ? slurm_levels(parent) : 0;
	if (ret->slurm_levels)
		snprintf(ret->slurm, sizeof(ret->slurm), "%s", parent);
	return 0;
}

static int prune_in(int hfd, const struct runtime_cgroup_paths *p)
{
	const char *dirs[] = { p->monitor, p->payload };
	int r = 0;

	for (size_t i = 0; i < ELEMENTSOF(dirs); i++)
		if (unlinkat(hfd, dirs[i], AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
			r = -errno;
	if (r == 0 && p->slurm_levels) {
		char dir[sizeof(p->slurm)];

		memcpy(dir, p->slurm, sizeof(dir));
		for (unsigned i = 0; i < p->slurm_levels; i++) {
			char *slash = strrchr(dir, '/');

			if (unlinkat(hfd, dir, AT_REMOVEDIR) < 0 || !slash)
				break; /* in use (Slurm's), or not empty: it stays */
			*slash = 0;
		}
	}
	return r;
}

/* The cgroup of PID 1 in the hierarchy mounted at /sys/fs/cgroup/<dir>
 * ("" for the root, or for cgroup2 at /sys/fs/cgroup itself), without the
 * leading '/', looked up in init1 (the text of /proc/1/cgroup): LXC makes a
 * container's cgroups below the cgroup of init, not below the hierarchy's
 * root (in a PID namespace, or under a manager that put init in a cgroup of
 * its own: seen on CI machines, memory:/process_api/..). */
void runtime_cgroup_init_path(const char *init1, const char *dir, char *buf, size_t len)
{
	buf[0] = 0;
	for (const char *line = init1; line && *line;) {
		const char *eol = strchrnul(line, '\n'),
			   *ctl = memchr(line, ':', (size_t)(eol - line));
		const char *path = ctl ? memchr(ctl + 1, ':', (size_t)(eol - ctl - 1)) : NULL;
		size_t clen;
		bool match;

		line = *eol ? eol + 1 : eol;
		if (!path)
			continue;
		ctl++;
		if (!strncmp(ctl, "name=", 5) && ctl + 5 <= path)
			ctl += 5;
		clen = (size_t)(path - ctl);
		path++;
		match = dir ? (strlen(dir) == clen && !strncmp(ctl, dir, clen)) ||
					(!clen && !strcmp(dir, "unified"))
			    : !clen;
		if (match && path[0] == '/' && path + 1 < eol && (size_t)(eol - path) < len &&
		    !memmem(path, (size_t)(eol - path), "..", 2)) {
			memcpy(buf, path + 1, (size_t)(eol - path - 1));
			buf[eol - path - 1] = 0;
			return;
		}
	}
}

typedef int (*cgroup_place_fn)(int dfd, const struct runtime_cgroup_paths *p);

/* fn in the hierarchy hfd (mounted at dir, NULL: /sys/fs/cgroup itself), at
 * its root and below init's cgroup there; the first error */
static int in_hierarchy(int hfd, const char *dir, const char *init1, cgroup_place_fn fn,
			const struct runtime_cgroup_paths *p)
{
	char base[512];
	int r = fn(hfd, p);

	runtime_cgroup_init_path(init1, dir, base, sizeof(base));
	if (base[0]) {
		_cleanup_close_ int b = open_dir_at(hfd, base);
		int q = b >= 0 ? fn(b, p) : 0;

		if (r == 0)
			r = q;
	}
	return r;
}

/* fn in every hierarchy: pure cgroup2 at /sys/fs/cgroup, and each one
 * mounted below it; the first error */
static int each_hierarchy(cgroup_place_fn fn, const struct runtime_cgroup_paths *p)
{
	_cleanup_close_ int root = open("/sys/fs/cgroup", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *init1 = NULL;
	DIR *d;
	struct dirent *de;
	int r;

	if (root < 0)
		return -errno;
	(void)read_file_at(AT_FDCWD, "/proc/1/cgroup", 1 << 16, &init1, NULL);
	r = in_hierarchy(root, NULL, init1, fn, p);
	d = opendir_dup(root);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		_cleanup_close_ int h = -EBADF;
		int q;

		if (de->d_name[0] == '.' || de->d_type != DT_DIR)
			continue;
		h = open_dir_at(dirfd(d), de->d_name);
		if (h < 0)
			continue;
		q = in_hierarchy(h, de->d_name, init1, fn, p);
		if (q < 0 && r == 0)
			r = q;
	}
	closedir(d);
	return r;
}

/* SIGKILL to pid if it is still in a cgroup named name (its last component):
 * the pidfd pins the process, and it is alive after /proc said where it is,
 * so /proc spoke of that process and not of another that took its pid. */
static void kill_if_in(pid_t pid, const char *name)
{
	_cleanup_close_ int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	_cleanup_free_ char *text = NULL;
	char path[64], pat[600];

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	snprintf(pat, sizeof(pat), "/%s\n", name);
	if (pfd < 0 || read_file_at(AT_FDCWD, path, 1 << 16, &text, NULL) < 0 ||
	    !strstr(text, pat) || syscall(SYS_pidfd_send_signal, pfd, 0, NULL, 0) < 0)
		return;
	(void)syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
}

static int kill_in(int hfd, const struct runtime_cgroup_paths *p)
{
	const char *dirs[] = { p->payload, p->monitor };

	for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
		_cleanup_close_ int dfd = open_dir_at(hfd, dirs[i]);
		_cleanup_free_ char *text = NULL;
		const char *name = strrchr(dirs[i], '/');

		if (dfd < 0 || read_file_at(dfd, "cgroup.procs", 1 << 20, &text, NULL) < 0)
			continue;
		for (char *line = text, *next; line && *line; line = next) {
			long pid = strtol(line, &next, 10);

			if (next == line)
				break;
			if (pid > 1)
				kill_if_in((pid_t)pid, name ? name + 1 : dirs[i]);
		}
	}
	return 0;
}

void runtime_cgroup_kill(const struct runtime_cgroup_paths *p)
{
	(void)each_hierarchy(kill_in, p);
}

int runtime_cgroup_prune(const struct runtime_cgroup_paths *p)
{
	return each_hierarchy(prune_in, p);
}
