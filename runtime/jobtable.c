/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's jobs by id: d->jobs (a list, newest first) and a hash table
 * of the same jobs, so that finding one by its id does not walk them all
 * (a scheduling pass looks up each queued job's dependencies); a second
 * table of the same size chains them by name (a submission checks that its
 * name is free, xrelease NAME finds its job: neither walks 10,000 jobs). */
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

static void name_put(struct job **ntab, size_t size, struct job *j)
{
	size_t b = id_hash(j->name ? j->name : "") & (size - 1);

	j->nnext = ntab[b];
	ntab[b] = j;
}

/* Twice the buckets once there are more jobs than buckets (the first table:
 * every job of the list); out of memory, the table stays as it is (longer
 * chains, still right), or there is none (the list is walked). */
static void table_grow(struct daemon *d)
{
	size_t size = d->jtab_size ? 2 * d->jtab_size : JOBTABLE_MIN;
	struct job **tab, **ntab;

	if (d->jtab_size && d->jtab_n < d->jtab_size)
		return;
	tab = calloc(size, sizeof(*tab));
	ntab = calloc(size, sizeof(*ntab));
	if (!tab || !ntab) {
		free(tab);
		free(ntab);
		return;
	}
	for (struct job *j = d->jobs; j; j = j->next) { /* (every job: hashed now) */
		table_put(tab, size, j);
		name_put(ntab, size, j);
		j->hashed = true;
	}
	free(d->jtab);
	free(d->ntab);
	d->jtab = tab;
	d->ntab = ntab;
	d->jtab_size = size;
}

void daemon_job_link(struct daemon *d, struct job *j)
{
	table_grow(d);
	j->next = d->jobs;
	d->jobs = j;
	d->jtab_n++;
	d->jobs_gen++;
	queue_job_linked(d, j);
	if (j->sched.time_us) /* (only so does one come: it is known at its link) */
		d->timed_jobs = true;
	if (j->state == JOB_CHECKPOINTED)
		d->checkpointed_jobs = true;
	if (d->ckpt) /* (NULL while the records load: its first tick walks) */
		ckpt_job_linked(d->ckpt, j);
	if (d->jtab_size) {
		table_put(d->jtab, d->jtab_size, j);
		name_put(d->ntab, d->jtab_size, j);
		j->hashed = true;
	}
}

void daemon_job_unlink(struct daemon *d, struct job *j)
{
	d->jobs_gen++;
	queue_job_unlinked(d, j);
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
	for (struct job **p = &d->ntab[id_hash(j->name ? j->name : "") & (d->jtab_size - 1)]; *p;
	     p = &(*p)->nnext)
		if (*p == j) {
			*p = j->nnext;
			break;
		}
	j->hnext = j->nnext = NULL;
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

static struct job *named_from(struct job *j, const char *name, bool chain)
{
	for (; j; j = chain ? j->nnext : j->next)
		if (j->name && !strcmp(j->name, name))
			return j;
	return NULL;
}

struct job *daemon_named_first(struct daemon *d, const char *name)
{
	if (!d->jtab_size) /* (no table: the list) */
		return named_from(d->jobs, name, false);
	return named_from(d->ntab[id_hash(name) & (d->jtab_size - 1)], name, true);
}

struct job *daemon_named_next(struct daemon *d, const struct job *j, const char *name)
{
	return d->jtab_size ? named_from(j->nnext, name, true) : named_from(j->next, name, false);
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
	free(d->ntab);
	d->jtab = d->ntab = NULL;
	d->jtab_size = d->jtab_n = 0;
}
