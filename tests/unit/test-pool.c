/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the pool's rule (pool.c, DECISIONS.md (as)): which new job may
 * take a container prepared for the next job of an owner with the node's
 * defaults; every other one starts cold. And its owners (DECISIONS (bk)):
 * which of them keep a share of the pool when another one comes. */
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime-internal.h"
#include "templates/templates.h"
#include "tests/unit/tap.h"

static struct runtime_config cfg;

/* A job of uid 1000 with the node's defaults and its home as a volume. */
static struct job *plain_job(void)
{
	struct job *j = job_new();

	if (!j)
		abort();
	j->owner_uid = j->uid = 1000;
	j->gid = 1000;
	j->groups = calloc(2, sizeof(gid_t));
	j->groups[0] = 1000;
	j->groups[1] = 27;
	j->n_groups = 2;
	j->user = strdup("alice");
	j->home = strdup("/home/alice");
	j->template = strdup(TEMPLATE_HOST);
	j->limits = (struct runtime_limits){ cfg.default_memory, cfg.default_millicpus,
					     cfg.default_pids };
	j->disk = cfg.layer_size;
	j->files = cfg.layer_inodes;
	j->log_size = cfg.log_size_default;
	j->net.mode = NETSETUP_NONE;
	if (job_add_volume(j, "/home/alice", "/home/alice", false, true) < 0)
		abort();
	return j;
}

/* Whether j, changed by what, still fits an owner of plain_job's. */
static bool fits_after(void (*what)(struct job *))
{
	struct job *o = plain_job(), *j = plain_job();
	bool r;

	what(j);
	r = pool_job_fits(&cfg, j, o);
	job_free(o);
	job_free(j);
	return r;
}

static void nothing(struct job *j)
{
	(void)j;
}
static void name(struct job *j)
{
	j->name = strdup("web");
}
static void memory(struct job *j)
{
	j->limits.memory = 64 << 20;
}
static void cpus(struct job *j)
{
	j->limits.millicpus = 500;
}
static void pids(struct job *j)
{
	j->limits.pids = 10;
}
static void disk(struct job *j)
{
	j->disk *= 2;
}
static void files(struct job *j)
{
	j->files /= 2;
}
static void log_size(struct job *j)
{
	j->log_size /= 2;
}
static void bridge(struct job *j)
{
	j->net.mode = NETSETUP_BRIDGE;
}
static void port(struct job *j)
{
	j->net.n_ports = 1;
}
static void template(struct job *j)
{
	free(j->template);
	j->template = strdup("debian");
}
static void grid(struct job *j)
{
	j->grid_dn = strdup("/CN=alice");
}
static void shifted(struct job *j)
{
	j->shifted_user = true;
}
static void caller_cgroup(struct job *j)
{
	j->cg_caller = true;
}
static void other_uid(struct job *j)
{
	j->uid = 1001;
}
static void other_submitter(struct job *j)
{
	j->owner_uid = 0;
}
static void other_group(struct job *j)
{
	j->groups[1] = 100;
}
static void fewer_groups(struct job *j)
{
	j->n_groups = 1;
}
static void other_home(struct job *j)
{
	free(j->home);
	j->home = strdup("/srv/alice");
}
static void read_only_home(struct job *j)
{
	j->volumes[0].ro = true;
}
static void another_volume(struct job *j)
{
	if (job_add_volume(j, "/data", "/data", false, false) < 0)
		abort();
}
static void no_home(struct job *j)
{
	free(j->volumes[0].src);
	free(j->volumes[0].dst);
	j->n_volumes = 0;
}
static void cgroup_parent(struct job *j)
{
	j->cgroup_parent = strdup("xos.slice");
}

/* A job of the defaults of the account uid (plain_job's, another uid). */
static struct job *job_of(uid_t uid)
{
	struct job *j = plain_job();

	j->owner_uid = j->uid = j->gid = uid;
	return j;
}

/* A job of uid's comes to d, whose pool has no ready container: it starts
 * cold, and its owner becomes the latest. */
static void job_comes(struct daemon *d, uid_t uid)
{
	struct job *j = job_of(uid);

	if (pool_claim(d, j))
		abort();
	job_free(j);
}

/* d's owners, the latest first, are these uids (0-terminated). */
static bool owners_are(const struct daemon *d, const uid_t *uids)
{
	size_t n = 0;

	while (uids[n])
		n++;
	if (d->n_pool_owners != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (d->pool_owners[i]->uid != uids[i])
			return false;
	return true;
}

/* The pool shared among the latest owners (DECISIONS (bk)): with pool_size
 * 2, a third owner's job puts out the owner seen longest ago, and that
 * owner's pooled containers go; the other owner keeps its own. */
static void test_owners(void)
{
	struct daemon d = { .cfg = &cfg, .epfd = -EBADF };
	struct job *pooled[2];

	cfg.pool_size = 2;
	free(cfg.hooks_dir); /* (a prestart hook voids the pool) */
	cfg.hooks_dir = strdup("/nonexistent/xos-test-pool-hooks");
	job_comes(&d, 1000);
	ok(owners_are(&d, (uid_t[]){ 1000, 0 }), "the first owner's job: one owner");
	job_comes(&d, 1001);
	ok(owners_are(&d, (uid_t[]){ 1001, 1000, 0 }), "another owner's: first, the other kept");
	job_comes(&d, 1000);
	ok(owners_are(&d, (uid_t[]){ 1000, 1001, 0 }), "an owner's next job puts it first");
	/* each owner has its share being made (starting) */
	for (size_t i = 0; i < ELEMENTSOF(pooled); i++) {
		pooled[i] = job_of(1000 + (uid_t)i);
		pooled[i]->pooled = true;
		pooled[i]->state = JOB_STARTING;
		pooled[i]->next = d.pool;
		d.pool = pooled[i];
	}
	job_comes(&d, 1002);
	ok(owners_are(&d, (uid_t[]){ 1002, 1000, 0 }),
	   "a third owner with pool_size 2: the one seen longest ago gives way");
	ok(pooled[1]->closing, "the evicted owner's pooled container goes");
	ok(!pooled[0]->closing, "the other owner keeps its share");
	job_comes(&d, 1001);
	ok(owners_are(&d, (uid_t[]){ 1001, 1002, 0 }),
	   "the evicted owner comes back: now the oldest of the others gives way");
	ok(pooled[0]->closing, "and its pooled container goes");
	while (d.pool) {
		struct job *p = d.pool;

		d.pool = p->next;
		job_free(p);
	}
	while (d.n_pool_owners)
		job_free(d.pool_owners[--d.n_pool_owners]);
}

int main(void)
{
	static const struct {
		void (*what)(struct job *);
		const char *why;
	} cold[] = {
		{ name, "a --name" },
		{ memory, "a memory limit" },
		{ cpus, "a cpu limit" },
		{ pids, "a pids limit" },
		{ disk, "a --disk" },
		{ files, "a --files" },
		{ log_size, "a --log-size" },
		{ bridge, "--net bridge" },
		{ port, "a published port" },
		{ template, "another template" },
		{ grid, "a grid login" },
		{ shifted, "a template's user" },
		{ caller_cgroup, "its caller's cgroup" },
		{ other_uid, "another uid inside" },
		{ other_submitter, "another submitter" },
		{ other_group, "another group" },
		{ fewer_groups, "fewer groups" },
		{ other_home, "another home" },
		{ read_only_home, "a read-only home" },
		{ another_volume, "one more volume" },
		{ no_home, "no home volume" },
		{ cgroup_parent, "another cgroup parent" },
	};
	struct job *o;

	runtime_config_init(&cfg);
	ok(fits_after(nothing),
	   "a job of the owner with the node's defaults takes a pooled container");
	o = plain_job();
	ok(!pool_job_fits(&cfg, o, NULL), "no owner yet: cold");
	job_free(o);
	cfg.default_memory = 1 << 30; /* the node's default limit is a default too */
	ok(fits_after(nothing), "a node default limit is the pool's too");
	cfg.default_memory = 0;
	for (size_t i = 0; i < ELEMENTSOF(cold); i++)
		ok(!fits_after(cold[i].what), "%s: cold", cold[i].why);
	test_owners();
	runtime_config_free(&cfg);
	return tap_done();
}
