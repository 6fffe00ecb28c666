/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* hooks: the node owner's programs run at job lifecycle events. The one
 * public header of hooks/. Every executable regular file in DIR/EVENT/ runs,
 * in name order, with the job's JSON on stdin and XOS_HOOK_EVENT and
 * XOS_JOB_ID in its environment; each has a time limit (killed after it). */
#ifndef XOS_HOOKS_H
#define XOS_HOOKS_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum hook_event {
	HOOK_PRESTART,
	HOOK_POSTSTOP,
	HOOK_PRECHECKPOINT,
	HOOK_POSTCHECKPOINT,
	HOOK_POSTRESTORE,
	_HOOK_EVENT_MAX,
	_HOOK_EVENT_INVALID = -EINVAL,
};
const char *hook_event_to_string(enum hook_event e);
enum hook_event hook_event_from_string(const char *s);

/* Run the hooks of event e one after the other, stopping at the first that
 * fails (exits non-zero, is killed, or outlives timeout_us): -EPERM (failed)
 * or -ETIME (timed out) and, in err (struct xerr, common/error.h; may be
 * NULL), "NAME: " and the first line of its standard error (or how it
 * ended). 0 when all succeeded or there are none.
 * Blocks: call it from a child of xosd, never from its event loop. */
struct xerr;
int hook_run(const char *dir, enum hook_event e, const char *job_id, const char *input, size_t len,
	     uint64_t timeout_us, struct xerr *err);

/* Whether DIR/EVENT may hold hooks: false only when DIR or DIR/EVENT is
 * not there (hook_run would run none). Cheap: two syscalls. */
bool hook_event_has_dir(const char *dir, enum hook_event e);

/* The same in a detached grandchild, for events whose outcome changes
 * nothing (post*): returns once it is on its way; no process at all when
 * the event has no directory. */
int hook_run_detached(const char *dir, enum hook_event e, const char *job_id, const char *input,
		      size_t len, uint64_t timeout_us);

#endif
