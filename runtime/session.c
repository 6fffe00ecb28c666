/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Login sessions of grid accounts in their VO's cgroup (pam_xos's session
 * part): root's PAM stack asks xosd to move the process opening the session
 * into <session_cgroup>/vo-<VO>, a cgroup carrying the VO's limits, in each
 * hierarchy a limit needs (v1: memory, cpu, pids; v2: the unified one). The
 * shell the PAM application then starts is born there. The VO cgroups stay
 * while xosd runs and go, when empty, at its stop. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "common/common.h"
#include "credstore/credstore.h"
#include "runtime/runtime-internal.h"

#define CPU_PERIOD_US 100000ULL

struct cg_file {
	const char *hierarchy; /* v1: the controller's mount below /sys/fs/cgroup */
	const char *file;
	uint64_t value, period; /* period: "value period" (v2 cpu.max) */
};

static const char *const v1_hierarchies[] = { "memory", "cpu", "pids" };

/* The VO's limits for its sessions as a whole: its policy's vo_memory,
 * vo_cpus, vo_pids (none without policies; a VO whose policy is missing or
 * damaged gets no session, as it gets no job). */
static int session_limits(struct daemon *d, const char *vo, struct runtime_limits *ret,
			  struct xerr *err)
{
	const struct credstore_vo_policy *p = NULL;
	int r = vo_policy(d, vo, &p, err);

	*ret = (struct runtime_limits){ 0 };
	if (r < 0 || !p)
		return r;
	ret->memory = p->vo.memory;
	ret->millicpus = p->vo.millicpus;
	ret->pids = p->vo.pids;
	return 0;
}

static size_t limit_files(bool v2, const struct runtime_limits *l, struct cg_file *f)
{
	size_t n = 0;

	if (l->memory)
		f[n++] = (struct cg_file){ v2 ? "" : "memory",
					   v2 ? "memory.max" : "memory.limit_in_bytes", l->memory,
					   0 };
	if (l->millicpus && v2)
		f[n++] = (struct cg_file){ "", "cpu.max", l->millicpus * CPU_PERIOD_US / 1000,
					   CPU_PERIOD_US };
	if (l->millicpus && !v2) {
		f[n++] = (struct cg_file){ "cpu", "cpu.cfs_period_us", CPU_PERIOD_US, 0 };
		f[n++] = (struct cg_file){ "cpu", "cpu.cfs_quota_us",
					   l->millicpus * CPU_PERIOD_US / 1000, 0 };
	}
	if (l->pids)
		f[n++] = (struct cg_file){ v2 ? "" : "pids", "pids.max", l->pids, 0 };
	return n;
}

static int write_at(int dirfd, const char *file, const char *text)
{
	_cleanup_close_ int fd = openat(dirfd, file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	size_t len = strlen(text);

	if (fd < 0)
		return -errno;
	return write(fd, text, len) == (ssize_t)len ? 0 : -errno;
}

/* Open (making it) <hierarchy>/<base>/vo-<vo>; v2 enables the controllers
 * the limits need in the levels above. */
static int open_vo_cgroup(struct daemon *d, const char *hierarchy, const char *vo, bool v2)
{
	_cleanup_close_ int root = open("/sys/fs/cgroup", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int h = -EBADF, base = -EBADF;
	char name[CREDSTORE_VO_NAME_MAX + 8];
	int r;

	if (root < 0)
		return -errno;
	h = *hierarchy ? openat(root, hierarchy, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
		       : dup(root);
	if (h < 0)
		return -errno;
	if (v2)
		(void)write_at(h, "cgroup.subtree_control", "+memory +cpu +pids");
	r = mkdir_p_at(h, d->cfg->session_cgroup, 0755);
	if (r < 0)
		return r;
	base = openat(h, d->cfg->session_cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (base < 0)
		return -errno;
	if (v2)
		(void)write_at(base, "cgroup.subtree_control", "+memory +cpu +pids");
	snprintf(name, sizeof(name), "vo-%s", vo);
	if (mkdirat(base, name, 0755) < 0 && errno != EEXIST)
		return -errno;
	r = openat(base, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	return r < 0 ? -errno : r;
}

/* Put pid in the VO's cgroup of one hierarchy, its limits set first. */
static int place_in(struct daemon *d, const char *hierarchy, const char *vo, bool v2,
		    const struct cg_file *f, size_t n, pid_t pid, struct xerr *err)
{
	_cleanup_close_ int cg = open_vo_cgroup(d, hierarchy, vo, v2);
	char text[64];
	int r;

	if (cg < 0)
		return xerr_set(err, cg, "internal", "Cannot make the VO's cgroup %s/vo-%s%s%s: %s",
				d->cfg->session_cgroup, vo, *hierarchy ? " in " : "", hierarchy,
				strerror(-cg));
	for (size_t i = 0; i < n; i++) {
		if (strcmp(f[i].hierarchy, hierarchy) != 0)
			continue;
		if (f[i].period)
			snprintf(text, sizeof(text), "%llu %llu", (unsigned long long)f[i].value,
				 (unsigned long long)f[i].period);
		else
			snprintf(text, sizeof(text), "%llu", (unsigned long long)f[i].value);
		r = write_at(cg, f[i].file, text);
		if (r < 0)
			return xerr_set(err, r, "internal", "Cannot set %s of VO %s's cgroup: %s",
					f[i].file, vo, strerror(-r));
	}
	snprintf(text, sizeof(text), "%d", (int)pid);
	r = write_at(cg, "cgroup.procs", text);
	if (r < 0)
		return xerr_set(err, r, "internal", "Cannot move pid %d into VO %s's cgroup: %s",
				(int)pid, vo, strerror(-r));
	return 0;
}

/* The VO of a session's account: a pool account's lease says; a grid-map
 * account's VO is root's word (it must be one this node serves). */
static int session_vo(struct daemon *d, const char *user, const char *vo, const char **ret,
		      struct xerr *err)
{
	const struct credstore_account *acc = credstore_accounts_by_name(d->accounts, user);

	if (acc) {
		if (vo && strcmp(vo, acc->vo) != 0)
			return xerr_set(err, -EINVAL, "bad_request",
					"Account %s belongs to VO %s, not %s", user, acc->vo, vo);
		*ret = acc->vo;
		return 0;
	}
	if (!vo)
		return xerr_set(err, -ENOENT, "not_found",
				"%s is no pool account of this node; name the VO of a grid-map "
				"account (pam_xos does after its own authentication)",
				user);
	for (char **v = d->cfg->cred.vos; v && *v; v++)
		if (!strcmp(*v, vo)) {
			*ret = *v;
			return 0;
		}
	return xerr_set(err, -EACCES, "permission_denied", "This node does not serve VO %s", vo);
}

int ops_session_open(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	_cleanup_gen_ yajl_gen g = NULL;
	const char *user = NULL, *vo = NULL, *the_vo = NULL;
	struct runtime_limits l;
	struct cg_file f[4];
	bool v2 = d->cg == &runtime_cgroup_v2;
	size_t n;
	int r;

	if (c->uid != 0 || c->grid)
		return xerr_set(err, -EPERM, "permission_denied",
				"Only root's PAM stack (pam_xos) opens sessions");
	if (!d->trust || !d->cfg->session_cgroup)
		return xerr_set(err, -EOPNOTSUPP, "not_supported",
				"This node places no login sessions (xosd.conf: credential_vos "
				"and session_cgroup)");
	if (json_get_string(t, "user", &user) < 0 ||
	    (json_get_string(t, "vo", &vo) < 0 &&
	     yajl_tree_get(t, (const char *[]){ "vo", NULL }, yajl_t_any)))
		return xerr_set(err, -EINVAL, "bad_request",
				"Field 'user' (a string) is required; 'vo' is a string");
	if ((r = session_vo(d, user, vo, &the_vo, err)) < 0)
		return r;
	if ((r = session_limits(d, the_vo, &l, err)) < 0)
		return r;
	n = limit_files(v2, &l, f);
	if (v2)
		r = place_in(d, "", the_vo, true, f, n, c->pid, err);
	else
		for (size_t i = 0; i < ELEMENTSOF(v1_hierarchies) && r >= 0; i++)
			r = place_in(d, v1_hierarchies[i], the_vo, false, f, n, c->pid, err);
	if (r < 0)
		return r;
	log_info("Session of %s (VO %s) in cgroup %s/vo-%s: pid %d", user, the_vo,
		 d->cfg->session_cgroup, the_vo, (int)c->pid);
	g = ops_reply_begin();
	if (!g)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	json_gen_kv_str(g, "vo", the_vo);
	json_gen_kv_str(g, "cgroup", d->cfg->session_cgroup);
	conn_send_map(c, g);
	return 0;
}

static void prune_base(int h, const char *base)
{
	_cleanup_close_ int fd = openat(h, base, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	DIR *dir = NULL;
	struct dirent *e;

	if (fd < 0 || !(dir = fdopendir(fd)))
		return;
	fd = -EBADF; /* dir owns it */
	while ((e = readdir(dir)))
		if (e->d_type == DT_DIR && !strncmp(e->d_name, "vo-", 3))
			(void)unlinkat(dirfd(dir), e->d_name, AT_REMOVEDIR);
	closedir(dir);
	(void)unlinkat(h, base, AT_REMOVEDIR);
}

/* At xosd's stop: the VO cgroups no session is in any more. */
void session_cgroups_prune(struct daemon *d)
{
	_cleanup_close_ int root = -EBADF;
	bool v2 = d->cg == &runtime_cgroup_v2;

	if (!d->cfg->session_cgroup)
		return;
	root = open("/sys/fs/cgroup", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return;
	if (v2) {
		prune_base(root, d->cfg->session_cgroup);
		return;
	}
	for (size_t i = 0; i < ELEMENTSOF(v1_hierarchies); i++) {
		_cleanup_close_ int h = openat(root, v1_hierarchies[i],
					       O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

		if (h >= 0)
			prune_base(h, d->cfg->session_cgroup);
	}
}
