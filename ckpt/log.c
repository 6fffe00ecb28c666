/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What CRIU's dump log says went wrong, in words for the job's owner. */
#include "ckpt/ckpt-internal.h"

#define GHOST_ERR "Can't dump ghost file "

static double mib(uint64_t b)
{
	return (double)b / (1024.0 * 1024.0);
}

/* "Can't dump ghost file PATH of SIZE size, increase limit": a deleted file
 * still open in the job, over the ghost limit (the job's --disk). */
static char *ghost_reason(const char *log, uint64_t limit)
{
	const char *p = strstr(log, GHOST_ERR), *end, *of;
	unsigned long long size = 0;

	if (!p)
		return NULL;
	p += strlen(GHOST_ERR);
	end = strchr(p, '\n');
	if (!end)
		end = p + strlen(p);
	/* (the path may hold " of " itself: the last one ends it) */
	of = NULL;
	for (const char *q = p; (q = strstr(q, " of ")) && q < end; q++)
		of = q;
	if (!of || sscanf(of, " of %llu size", &size) != 1)
		return NULL;
	return xstrdup_printf("the job holds a deleted file that is still open, %.*s (%.1f MiB), "
			      "larger than the job's --disk (%.1f MiB), the most a checkpoint "
			      "keeps of such a file; close it before checkpointing, or run the "
			      "job with a larger --disk",
			      (int)(of - p > 512 ? 512 : of - p), p, mib(size), mib(limit));
}

char *ckpt_dump_log_reason(const char *log, uint64_t ghost_limit)
{
	if (!log)
		return NULL;
	return ghost_reason(log, ghost_limit);
}
