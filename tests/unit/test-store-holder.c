/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The holder record of a job's versions in a shared checkpoint store, as
 * recovery on another node uses it (DECISIONS.md (aq)): it names the node and
 * whether the job lives there, the old format still reads, and of two nodes
 * taking a job over from the same holder only the first succeeds. Two
 * records of one job stand for two nodes' (one store). No CRIU, no container. */
#include <fcntl.h>
#include <sys/stat.h>

#include "ckpt/ckpt.h"
#include "runtime/runtime-internal.h"
#include "tests/unit/tap.h"

static int fake_persist(void *data, struct job *j)
{
	return 0;
}

static const struct ckpt_host fake_host = { .persist = fake_persist };

static struct job *new_job(void)
{
	struct job *j = job_new();

	if (j) {
		snprintf(j->id, sizeof(j->id), "%016x", 0xbeefu);
		j->state = JOB_RUNNING;
		j->owner_uid = 1000;
	}
	return j;
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
	char dir[] = "/tmp/xos-test-store-holder-XXXXXX";
	struct runtime_config cfg;
	struct job *jobs = NULL, *a = new_job(), *b = new_job();
	struct ckpt *ck = NULL;
	struct ckpt_setup s = {
		.cfg = &cfg, .host = &fake_host, .jobs = &jobs, .self_exe = "/usr/sbin/xosd"
	};
	char path[512];

	runtime_config_init(&cfg);
	if (!mkdtemp(dir) || !a || !b)
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
			    mkdir(path, 0700) == 0),
		   "a store with the job's directory");
		test_holder(ck, cfg.checkpoint_dir, a, b);
	}
	ckpt_free(ck);
	job_free(a);
	job_free(b);
	(void)rm_rf_at(AT_FDCWD, dir);
	runtime_config_free(&cfg);
	return tap_done();
}
