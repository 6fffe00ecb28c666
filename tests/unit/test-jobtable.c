/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the daemon's jobs by id (runtime/jobtable.c): every job
 * linked is found by its id through the table as the table grows, none
 * unlinked is, the list keeps the same jobs, and lookups by id agree. */
#include <string.h>

#include "runtime/runtime-internal.h"
#include "tests/unit/tap.h"

#define N 5000

static struct job *make(unsigned i)
{
	struct job *j = job_new();

	if (j)
		snprintf(j->id, sizeof(j->id), "%016x", i * 2654435761u);
	return j;
}

static size_t list_len(const struct daemon *d)
{
	size_t n = 0;

	for (const struct job *j = d->jobs; j; j = j->next)
		n++;
	return n;
}

int main(void)
{
	struct daemon d = { 0 };
	static struct job *jobs[N];
	bool all = true, gone = true, kept = true;
	struct job *found = NULL;

	ok(daemon_find_job(&d, "0123456789abcdef") == NULL, "an empty table finds nothing");
	for (unsigned i = 0; i < N; i++) {
		jobs[i] = make(i);
		if (!jobs[i])
			return 1;
		daemon_job_link(&d, jobs[i]);
	}
	ok(d.jobs == jobs[N - 1] && list_len(&d) == N && d.jtab_n == N,
	   "each job linked is at the head of the list, which holds them all");
	ok(d.jtab_size >= N / 2, "the table grew with the jobs (%zu buckets for %d)", d.jtab_size,
	   N);
	for (unsigned i = 0; i < N; i++)
		all = all && jobs[i]->hashed && daemon_find_job(&d, jobs[i]->id) == jobs[i];
	ok(all, "every job is found by its id");
	ok(daemon_find_job(&d, "ffffffffffffffff") == NULL && daemon_find_job(&d, "") == NULL,
	   "an id of no job finds nothing");
	for (unsigned i = 0; i < N; i += 3)
		daemon_job_unlink(&d, jobs[i]);
	for (unsigned i = 0; i < N; i++) {
		struct job *j = daemon_find_job(&d, jobs[i]->id);

		if (i % 3 == 0)
			gone = gone && !j && !jobs[i]->hashed && !jobs[i]->next;
		else
			kept = kept && j == jobs[i];
	}
	ok(gone, "an unlinked job is found no more, and is out of the list");
	ok(kept, "the others still are");
	ok(list_len(&d) == N - (N + 2) / 3 && d.jtab_n == list_len(&d),
	   "the list and the count agree after unlinking");
	daemon_job_unlink(&d, jobs[0]); /* (twice: nothing happens) */
	ok(d.jtab_n == list_len(&d), "unlinking a job that is not linked changes nothing");
	jobs[1]->owner_uid = 1001;
	ok(daemon_lookup_job(&d, 0, jobs[1]->id, &found) == 0 && found == jobs[1],
	   "root's lookup of an exact id finds the job through the table");
	ok(daemon_lookup_job(&d, 1002, jobs[1]->id, &found) == -ENOENT,
	   "another user's lookup of that id finds nothing");
	for (unsigned i = 0; i < N; i += 3) /* linked again, they are found again */
		daemon_job_link(&d, jobs[i]);
	all = true;
	for (unsigned i = 0; i < N; i++)
		all = all && daemon_find_job(&d, jobs[i]->id) == jobs[i];
	ok(all && list_len(&d) == N, "jobs linked again are found again");
	daemon_jobs_free(&d);
	ok(!d.jobs && !d.jtab && !d.jtab_size && !d.jtab_n, "everything freed");
	return tap_done();
}
