/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who holds a job's versions in a checkpoint store several nodes share
 * (DECISIONS.md (am)): the node that made the job, until another takes it
 * over (ckpt_claim); a node that does not hold them never deletes, restores
 * or counts them. And the holder record as recovery on another node uses it
 * (DECISIONS.md (aq)): it names the node and whether the job lives there,
 * the old format still reads, and of two nodes taking a job over from the
 * same holder only the first succeeds. Two records of one job stand for the
 * two nodes' (one store, as the nodes share it). No CRIU, no container. */
#include <fcntl.h>
#include <sys/stat.h>
#include <yajl/yajl_gen.h>

#include "ckpt/ckpt.h"
#include "runtime/runtime-internal.h"
#include "tests/unit/tap.h"

static int fake_persist(void *data, struct job *j)
{
	return 0;
}

static int fake_settle(void *data, struct job *j)
{
	return 0;
}

static void fake_versions_changed(void *data, struct job *j)
{
}

/* (only what these paths may reach; the others stay NULL) */
static const struct ckpt_host fake_host = {
	.persist = fake_persist,
	.settle = fake_settle,
	.versions_changed = fake_versions_changed,
};

static struct job *new_job(enum job_state s, unsigned id)
{
	struct job *j = job_new();

	if (j) {
		snprintf(j->id, sizeof(j->id), "%016x", id);
		j->state = s;
		j->owner_uid = 1000;
	}
	return j;
}

static bool exists(const char *dir, const char *id, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s%s%s", dir, id, name[0] ? "/" : "", name);
	return access(path, F_OK) == 0;
}

/* the claim survives the record's round trip (job.json) */
static void test_record(const struct job *j)
{
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	_cleanup_free_ char *text = NULL;
	struct job *back = NULL;

	job_to_json(j, g);
	text = json_gen_take(g, false);
	ok(text && job_from_json(text, &back) == 0 && back->store_claim &&
		   !strcmp(back->store_claim, j->store_claim),
	   "the claim is in the job's record and read back");
	job_free(back);
}

static void test_moved(struct ckpt *ck, const char *store, struct job *a, struct job *b)
{
	_cleanup_xerr_ struct xerr err = XERR_INIT;
	int r;

	ok(ckpt_holder(ck, a) == 1 && ckpt_has_versions(ck, a),
	   "no holder file: the node that made the job holds it");
	ok(ckpt_claim(ck, b, NULL, NULL) == 0 && b->store_claim && strlen(b->store_claim) == 16 &&
		   exists(store, a->id, "holder"),
	   "another node takes it over: its claim, in the store and its record");
	test_record(b);
	ok(ckpt_holder(ck, b) == 1 && ckpt_holder(ck, a) == 0, "the taker holds it, the maker not");
	ok(!ckpt_has_versions(ck, a) && ckpt_has_versions(ck, b),
	   "the versions count for the holder only (its slice of ids)");
	r = ckpt_delete(ck, a, 1, &err);
	ok(r == -EPERM && !strcmp(xerr_code(&err), "conflict") &&
		   strstr(xerr_message(&err), "taken over by another node") &&
		   exists(store, a->id, "1"),
	   "--delete where it is not held: refused, the version stays (%s)", xerr_message(&err));
	xerr_clear(&err);
	a->state = JOB_CHECKPOINTED;
	r = ckpt_restart(ck, a, 0, &err);
	ok(r == -EPERM && strstr(xerr_message(&err), "restart it there"),
	   "xrestart where it is not held: refused (%s)", xerr_message(&err));
	ckpt_forget(ck, a);
	ok(exists(store, a->id, "1"), "forgetting it where it is not held leaves the versions");
	ok(ckpt_claim(ck, a, NULL, NULL) == 0 && ckpt_holder(ck, a) == 1 && ckpt_holder(ck, b) == 0,
	   "back on the first node: it takes the job over afresh, the other holds it no more");
	ckpt_forget(ck, b);
	ok(exists(store, a->id, "1"), "the other node's forgetting leaves them too");
	ckpt_forget(ck, a);
	ok(!exists(store, a->id, ""), "the holder's forgetting removes the job's store");
}

static void write_holder(const char *store, const char *id, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/holder", store, id);
	f = fopen(path, "we");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_holder(struct ckpt *ck, const char *store, struct job *a, struct job *b)
{
	struct ckpt_holder_info h;
	char first[17];

	ok(ckpt_holder_read(ck, a->id, &h) == -ENOENT, "no holder record: none read");
	ok(ckpt_claim(ck, a, "n1", "") == 0 && ckpt_holder_read(ck, a->id, &h) == 0 &&
		   !strcmp(h.node, "n1") && h.live && !strcmp(h.claim, a->store_claim),
	   "the node that makes the first version claims it: its claim, its name, live");
	snprintf(first, sizeof(first), "%s", a->store_claim);
	ok(ckpt_claim(ck, b, "n3", "") == -EEXIST && !b->store_claim && ckpt_holder(ck, a) == 1,
	   "a claim from no holder, made again: refused, the first holds");
	ok(ckpt_holder_mark(ck, a, "n1", false) == 0 && ckpt_holder_read(ck, a->id, &h) == 0 &&
		   !h.live && !strcmp(h.claim, first),
	   "the job ends there: the record says ended, same claim");
	ok(ckpt_holder_mark(ck, b, "n3", true) == -EPERM,
	   "a node that does not hold it cannot mark it");
	ok(ckpt_holder_mark(ck, a, "n1", true) == 0 && ckpt_holder_read(ck, a->id, &h) == 0 &&
		   h.live,
	   "restarted there: live again");
	ok(ckpt_claim(ck, b, "n2", first) == 0 && ckpt_holder(ck, b) == 1 &&
		   ckpt_holder(ck, a) == 0,
	   "n2 takes it over from n1's claim: it holds it, n1 not");
	ok(ckpt_claim(ck, a, "n1", first) == -EEXIST && ckpt_holder(ck, b) == 1,
	   "a second takeover from the same claim (another node at the same instant): refused");
	ok(ckpt_holder_read(ck, a->id, &h) == 0 && !strcmp(h.node, "n2") && h.live,
	   "the record names n2, live");
	write_holder(store, a->id, "0123456789abcdef\n");
	ok(ckpt_holder_read(ck, a->id, &h) == 0 && !strcmp(h.claim, "0123456789abcdef") &&
		   h.node[0] == 0 && h.live,
	   "the format before (aq), a claim alone: read, no node");
	write_holder(store, a->id, "\n");
	ok(ckpt_holder_read(ck, a->id, &h) == -EBADMSG, "an empty claim: malformed");
}

int main(void)
{
	char dir[] = "/tmp/xos-test-ckpt-holder-XXXXXX";
	struct runtime_config cfg;
	struct job *jobs = NULL, *a = new_job(JOB_EXITED, 0xabc), *b = new_job(JOB_EXITED, 0xabc);
	struct job *c = new_job(JOB_RUNNING, 0xbeef), *d = new_job(JOB_RUNNING, 0xbeef);
	struct ckpt *ck = NULL;
	struct ckpt_setup s = {
		.cfg = &cfg, .host = &fake_host, .jobs = &jobs, .self_exe = "/usr/sbin/xosd"
	};
	char path[512];

	runtime_config_init(&cfg);
	if (!mkdtemp(dir) || !a || !b || !c || !d)
		return 1;
	snprintf(path, sizeof(path), "%s/checkpoints", dir);
	free(cfg.checkpoint_dir);
	cfg.checkpoint_dir = strdup(path);
	ok(ckpt_new(&s, &ck) == 0 && ck, "ckpt_new with the test's host");
	if (geteuid() != 0) {
		skip("not root", "the store is root's (0700): these need root");
	} else {
		ok(mkdir(cfg.checkpoint_dir, 0700) == 0 &&
			   (snprintf(path, sizeof(path), "%s/%s", cfg.checkpoint_dir, a->id),
			    mkdir(path, 0700) == 0) &&
			   (snprintf(path, sizeof(path), "%s/%s/1", cfg.checkpoint_dir, a->id),
			    mkdir(path, 0700) == 0),
		   "a store with one version of the job");
		test_moved(ck, cfg.checkpoint_dir, a, b);
		ok((snprintf(path, sizeof(path), "%s/%s", cfg.checkpoint_dir, c->id),
		    mkdir(path, 0700) == 0),
		   "the store with another job's directory");
		test_holder(ck, cfg.checkpoint_dir, c, d);
	}
	ckpt_free(ck);
	job_free(a);
	job_free(b);
	job_free(c);
	job_free(d);
	(void)rm_rf_at(AT_FDCWD, dir);
	runtime_config_free(&cfg);
	return tap_done();
}
