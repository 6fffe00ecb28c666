/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What CRIU's dump log says went wrong, in words for the job's owner. */
#include "ckpt/ckpt-internal.h"

#define GHOST_ERR "Can't dump ghost file "
/* CRIU with xos's patch level 2 (scripts/criu-patches/0002-...), and before */
#define WATCH_ERR "Can't dump watch on "
#define WATCH_ERR_OLD "Can't dump that handle"

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

/* An inotify or fanotify watch on a file CRIU finds no name for (its irmap
 * scan paths are in checkpoint.c's criu.conf). */
static char *watch_reason(const char *log)
{
	bool old = strstr(log, WATCH_ERR_OLD) != NULL;

	if (!old && !strstr(log, WATCH_ERR))
		return NULL;
	return xstrdup_printf(
		"the job holds an inotify watch on a file that the checkpoint cannot "
		"find by name; watches are kept on files under /tmp, /var/tmp, /run, "
		"/home, /root, /srv, /opt and /var/lib of the job, on its volumes%s: "
		"move the watched file there or remove the watch before checkpointing%s",
		old ? "" : " and on deleted files it still holds open",
		old ? " (this node's CRIU keeps no watch on a deleted file either: "
		      "update it with scripts/build-criu.sh)"
		    : "");
}

char *ckpt_dump_log_reason(const char *log, uint64_t ghost_limit)
{
	char *why;

	if (!log)
		return NULL;
	why = ghost_reason(log, ghost_limit);
	return why ? why : watch_reason(log);
}
