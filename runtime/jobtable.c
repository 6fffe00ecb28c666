/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's jobs by id: d->jobs (a list, newest first) and a hash table
 * of the same jobs, so that finding one by its id does not walk them all
 * (a scheduling pass looks up each queued job's dependencies). */
#include "runtime/runtime-internal.h"

#define JOBTABLE_MIN 64

/* FNV-1a of the id */
static size_t id_hash(const char *id)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 32));
}

static void table_put(struct job **tab, size_t size, struct job *j)
{
	size_t b = id_hash(j->id) & (size - 1);

	j->hnext = tab[b];
	tab[b] = j;
}

/* Twice the buckets once there are more jobs than buckets (the first table:
 * every job of the list); out of memory, the table stays as it is (longer
 * chains, still right), or there is none (the list is walked). */
static void table_grow(struct daemon *d)
{
	size_t size = d->jtab_size ? 2 * d->jtab_size : JOBTABLE_MIN;
	struct job **tab;

	if (d->jtab_size && d->jtab_n < d->jtab_size)
		return;
	tab = calloc(size, sizeof(*tab));
	if (!tab)
		return;
	if (!d->jtab_size) {
		for (struct job *j = d->jobs; j; j = j->next) {
			table_put(tab, size, j);
			j->hashed = true;
		}
	} else {
		for (size_t b = 0; b < d->jtab_size; b++)
			for (struct job *j = d->jtab[b], *next; j; j = next) {
				next = j->hnext;
				table_put(tab, size, j);
			}
	}
	free(d->jtab);
	d->jtab = tab;
	d->jtab_size = size;
}

void daemon_job_link(struct daemon *d, struct job *j)
{
	table_grow(d);
	j->next = d->jobs;
	d->jobs = j;
	d->jtab_n++;
	if (d->jtab_size) {
		table_put(d->jtab, d->jtab_size, j);
		j->hashed = true;
	}
}

void daemon_job_unlink(struct daemon *d, struct job *j)
{
	for (struct job **p = &d->jobs; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			d->jtab_n--;
			break;
		}
	j->next = NULL;
	if (!j->hashed)
		return;
	for (struct job **p = &d->jtab[id_hash(j->id) & (d->jtab_size - 1)]; *p; p = &(*p)->hnext)
		if (*p == j) {
			*p = j->hnext;
			break;
		}
	j->hnext = NULL;
	j->hashed = false;
}

struct job *daemon_find_job(struct daemon *d, const char *id)
{
	/* no table (out of memory at the first job, or a test that made the
	 * list by hand): the list */
	if (!d->jtab_size) {
		for (struct job *j = d->jobs; j; j = j->next)
			if (!strcmp(j->id, id))
				return j;
		return NULL;
	}
	for (struct job *j = d->jtab[id_hash(id) & (d->jtab_size - 1)]; j; j = j->hnext)
		if (!strcmp(j->id, id))
			return j;
	return NULL;
}

void daemon_jobs_free(struct daemon *d)
{
	for (struct job *j = d->jobs, *next; j; j = next) {
		next = j->next;
		container_release(j);
		job_free(j);
	}
	d->jobs = NULL;
	free(d->jtab);
	d->jtab = NULL;
	d->jtab_size = d->jtab_n = 0;
}
