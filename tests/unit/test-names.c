/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of how a caller's words name a job: job names that may not look
 * like ids, and daemon_lookup_job, which sees only the caller's jobs. */
#include <string.h>

#include "runtime/runtime-internal.h"
#include "tests/unit/tap.h"

static struct job *add(struct daemon *d, const char *id, const char *name, uid_t owner,
		       enum job_state st)
{
	struct job *j = job_new();

	snprintf(j->id, sizeof(j->id), "%s", id);
	j->name = name ? strdup(name) : NULL;
	j->owner_uid = owner;
	j->state = st;
	daemon_job_link(d, j);
	return j;
}

static const char *look(struct daemon *d, uid_t uid, const char *what)
{
	struct job *j = NULL;
	int r = daemon_lookup_job(d, uid, what, &j);

	return r == -ENOTUNIQ ? "ambiguous" : r < 0 ? "none" : j->id;
}

int main(void)
{
	struct daemon d = { 0 };
	const uid_t alice = 1001, bob = 1002;
	struct job *a1, *a2, *b1, *b2;

	ok(job_name_valid("web") && job_name_valid("job-1") && job_name_valid("cafe-2"),
	   "names with a non-hex character are fine");
	ok(!job_name_valid("cafe") && !job_name_valid("0123456789abcdef") &&
		   !job_name_valid("DEADBEEF") && !job_name_valid("1"),
	   "names of hex digits only are refused (they could be ids or prefixes)");
	ok(!job_name_valid("-x") && !job_name_valid("a/b") && !job_name_valid(""),
	   "and the old rules stand");

	a1 = add(&d, "aaaa000000000001", "web", alice, JOB_RUNNING);
	a2 = add(&d, "bbbb000000000002", NULL, alice, JOB_EXITED);
	b1 = add(&d, "aaaa000000000003", "web", bob, JOB_RUNNING);
	b2 = add(&d, "cccc000000000004", "old", bob, JOB_EXITED);

	ok(!strcmp(look(&d, alice, "web"), a1->id), "a name resolves among the caller's jobs");
	ok(!strcmp(look(&d, bob, "web"), b1->id), "another user's job of that name is Bob's own");
	ok(!strcmp(look(&d, 0, "web"), "ambiguous"), "root sees both: ambiguous");
	ok(!strcmp(look(&d, alice, "aaaa"), a1->id),
	   "a prefix shared with another user's job is unique among the caller's");
	ok(!strcmp(look(&d, 0, "aaaa"), "ambiguous"), "for root it is ambiguous");
	ok(!strcmp(look(&d, alice, b1->id), "none"), "another user's exact id is not found");
	ok(!strcmp(look(&d, 0, b1->id), b1->id), "root finds any exact id");
	ok(!strcmp(look(&d, bob, "bbbb"), "none") && !strcmp(look(&d, alice, "bbbb"), a2->id),
	   "an ended job's prefix, only for its owner");
	ok(!strcmp(look(&d, bob, "old"), b2->id) && !strcmp(look(&d, alice, "old"), "none"),
	   "an ended job's name, only for its owner");
	ok(!strcmp(look(&d, alice, ""), "none"), "nothing names no job");
	/* a record from before names were checked: a name equal to another job's id */
	{
		struct job *evil = add(&d, "dddd000000000005", b1->id, alice, JOB_RUNNING);

		ok(!strcmp(look(&d, 0, b1->id), b1->id),
		   "an exact id wins over a job named like it (root's xkill ID hits that job)");
		ok(!strcmp(look(&d, alice, b1->id), evil->id),
		   "the namer reaches its own job by that name");
	}
	while (d.jobs) {
		struct job *j = d.jobs;

		daemon_job_unlink(&d, j);
		job_free(j);
	}
	free(d.jtab); /* (the tables stay when their last job goes) */
	free(d.ntab);
	return tap_done();
}
