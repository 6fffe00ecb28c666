/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ckpt/ driven by a host of the test's own (struct ckpt_host), as runtime
 * drives it: refusals come back as -errno and a struct xerr (code and
 * message), never as an answer to a client; a run's outcome alone goes to
 * host->answer. No CRIU, no container: only the paths that refuse or read
 * the store. */
#include <fcntl.h>
#include <sys/stat.h>
#include <yajl/yajl_gen.h>

#include "ckpt/ckpt.h"
#include "runtime/runtime-internal.h"
#include "tests/unit/tap.h"

struct fake {
	unsigned persisted, answered, dump_memory, watched;
	uint64_t anon; /* what the container's memory is said to be */
};

static int fake_persist(void *data, struct job *j)
{
	((struct fake *)data)->persisted++;
	return 0;
}

static int fake_dump_memory(void *data, struct job *j, uint64_t *ret_anon, uint64_t *ret_shmem)
{
	struct fake *f = data;

	f->dump_memory++;
	*ret_anon = f->anon;
	*ret_shmem = 0;
	return 0;
}

static int fake_layer_usage(void *data, struct job *j, uint64_t *ret_bytes, uint64_t *ret_files)
{
	*ret_bytes = *ret_files = 0;
	return 0;
}

static void fake_answer(void *data, struct job *j, const struct xerr *err, struct yajl_gen_t *g)
{
	((struct fake *)data)->answered++;
}

static int fake_settle(void *data, struct job *j)
{
	return 0;
}

static void fake_versions_changed(void *data, struct job *j)
{
}

/* (only what the refusing paths may reach; the others stay NULL, so that
 * reaching one crashes the test) */
static const struct ckpt_host fake_host = {
	.persist = fake_persist,
	.dump_memory = fake_dump_memory,
	.layer_usage = fake_layer_usage,
	.answer = fake_answer,
	.settle = fake_settle,
	.versions_changed = fake_versions_changed,
};

static struct job *new_job(unsigned n, enum job_state s)
{
	struct job *j = job_new();

	if (j) {
		snprintf(j->id, sizeof(j->id), "%016x", n);
		j->state = s;
		j->owner_uid = 1000;
	}
	return j;
}

static void test_refusals(struct ckpt *ck, struct fake *f, struct runtime_config *cfg,
			  struct job *j)
{
	_cleanup_xerr_ struct xerr err = XERR_INIT;
	int r;

	j->state = JOB_EXITED;
	r = ckpt_checkpoint(ck, j, false, &err);
	ok(r == -EBUSY && !strcmp(xerr_code(&err), "conflict") &&
		   strstr(xerr_message(&err), "only a running job can be checkpointed"),
	   "an ended job: -EBUSY, conflict (%s)", xerr_message(&err));
	j->state = JOB_RUNNING;
	j->tty = true;
	r = ckpt_checkpoint(ck, j, false, &err);
	ok(r == -EOPNOTSUPP && !strcmp(xerr_code(&err), "not_supported") &&
		   strstr(xerr_message(&err), "run it without -t"),
	   "a job with terminals: not_supported (%s)", xerr_message(&err));
	j->tty = false;
	cfg->checkpoint_quota = 1 << 20;
	f->anon = 64 << 20;
	r = ckpt_checkpoint(ck, j, false, &err);
	ok(r == -EDQUOT && !strcmp(xerr_code(&err), "quota_exceeded") &&
		   strstr(xerr_message(&err), "failed before the job was frozen") &&
		   f->dump_memory == 1,
	   "over its owner's quota: quota_exceeded, measured through the host (%s)",
	   xerr_message(&err));
	ok(f->answered == 0 && f->persisted == 0 && !j->run,
	   "a refusal answers nobody and changes nothing");
	cfg->checkpoint_quota = 0;
	r = ckpt_restart(ck, j, 0, &err);
	ok(r == -EBUSY && !strcmp(xerr_code(&err), "conflict") &&
		   strstr(xerr_message(&err), "xrestart is refused while it runs"),
	   "xrestart of a running job: conflict");
	j->state = JOB_EXITED;
	r = ckpt_restart(ck, j, 0, &err);
	ok(r == -ENOENT && !strcmp(xerr_code(&err), "not_found") &&
		   strstr(xerr_message(&err), "has no checkpoint"),
	   "xrestart of a job without versions: not_found (%s)", xerr_message(&err));
	r = ckpt_delete(ck, j, 3, &err);
	ok(r == -ENOENT && !strcmp(xerr_code(&err), "not_found") &&
		   !strcmp(xerr_message(&err), "Job 000000000000 has no version 3"),
	   "--delete of a version that is not there: not_found (%s)", xerr_message(&err));
}

static void test_store(struct ckpt *ck, struct runtime_config *cfg, struct job *j)
{
	_cleanup_xerr_ struct xerr err = XERR_INIT;
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	_cleanup_free_ char *text = NULL;
	char path[512];
	int r;

	if (geteuid() != 0) {
		skip("not root", "the store is root's (0700): these need root");
		return;
	}
	snprintf(path, sizeof(path), "%s/%s", cfg->checkpoint_dir, j->id);
	(void)mkdir(cfg->checkpoint_dir, 0700);
	ok(mkdir(path, 0700) == 0 && !ckpt_has_versions(ck, j), "an empty job store: no versions");
	snprintf(path, sizeof(path), "%s/%s/1", cfg->checkpoint_dir, j->id);
	ok(mkdir(path, 0700) == 0 && ckpt_has_versions(ck, j), "a version directory: a version");
	yajl_gen_map_open(g);
	ok(ckpt_list(ck, j, g, &err) == 0, "--list of it");
	yajl_gen_map_close(g);
	text = json_gen_take(g, true);
	ok(text && strstr(text, "\"versions\":[{\"version\":1,\"damaged\":true}]"),
	   "a version without its manifest is listed as damaged: %s", text ? text : "(null)");
	j->state = JOB_EXITED;
	r = ckpt_restart(ck, j, 1, &err);
	ok(r == -EBADMSG && !strcmp(xerr_code(&err), "damaged") &&
		   strstr(xerr_message(&err), "Version 1 of job 000000000000 is damaged"),
	   "xrestart of it: damaged (%s)", xerr_message(&err));
	r = ckpt_delete(ck, j, 1, &err);
	ok(r == 0 && !ckpt_has_versions(ck, j), "--delete removes it");
	ckpt_forget(ck, j);
	ok(access(cfg->checkpoint_dir, F_OK) == 0 &&
		   (snprintf(path, sizeof(path), "%s/%s", cfg->checkpoint_dir, j->id),
		    access(path, F_OK) < 0),
	   "ckpt_forget removes the job's store");
}

static void test_adopt(struct ckpt *ck, struct job *j)
{
	j->state = JOB_CHECKPOINTED;
	ok(ckpt_adopt(ck, j), "a job stopped at a checkpoint is ckpt's at start-up");
	j->state = JOB_RESTORING;
	ok(!ckpt_adopt(ck, j) && j->state == JOB_RUNNING,
	   "one found in the middle of a restore runs on (RUNNING)");
}

int main(void)
{
	char dir[] = "/tmp/xos-test-ckpt-host-XXXXXX";
	struct runtime_config cfg;
	struct fake f = { 0 };
	struct job *jobs = NULL, *j = new_job(0, JOB_RUNNING);
	struct ckpt *ck = NULL;
	struct ckpt_setup s = { .cfg = &cfg,
				.host = &fake_host,
				.data = &f,
				.jobs = &jobs,
				.self_exe = "/usr/sbin/xosd" };
	char path[256];

	runtime_config_init(&cfg);
	if (!mkdtemp(dir) || !j)
		return 1;
	snprintf(path, sizeof(path), "%s/checkpoints", dir);
	free(cfg.checkpoint_dir);
	cfg.checkpoint_dir = strdup(path);
	jobs = j;
	ok(ckpt_new(&s, &ck) == 0 && ck, "ckpt_new with the test's host");
	test_refusals(ck, &f, &cfg, j);
	test_store(ck, &cfg, j);
	test_adopt(ck, j);
	ckpt_free(ck);
	job_free(j);
	(void)rm_rf_at(AT_FDCWD, dir);
	runtime_config_free(&cfg);
	return tap_done();
}
