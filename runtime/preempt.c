/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Lossless preemption (docs/SCHEDULING.md, "Preemption"): the victims the
 * scheduler chose are stopped at a checkpoint (xcheckpoint --stop's path
 * through ckpt/), wait in the queue as PREEMPTED, and are restored from that
 * version when their turn comes. */
#include "runtime/runtime-internal.h"

static void persist(struct daemon *d, struct job *j)
{
	int r = daemon_persist_job(d, j);

	if (r < 0)
		log_warn("Failed to persist job %s: %s", j->id, strerror(-r));
}

static void set_reason(struct job *j, char *reason)
{
	if (!reason)
		return;
	free(j->reason);
	j->reason = reason;
}

const char *queue_job_state_name(const struct job *j)
{
	if (j->state == JOB_CHECKPOINTED && j->sched.preempted)
		return "PREEMPTED";
	return job_state_to_string(j->state);
}

/* The checkpoint of victim v failed (or was refused): it runs on, and the
 * job it was for waits, saying why. */
static void preempt_failed(struct daemon *d, struct job *v, const char *why)
{
	struct job *pj = v->sched.preempted_by ? daemon_find_job(d, v->sched.preempted_by) : NULL;

	log_warn("Preemption of job %s failed; it runs on: %s", v->id, why);
	v->sched.preempt_failed_us = now_usec();
	if (pj) {
		free(pj->sched.preempt_note);
		pj->sched.preempt_note = xstrdup_printf("preempting job %.12s failed, it runs on "
							"(%s)",
							v->id, why);
	}
	free(v->sched.preempted_by);
	v->sched.preempted_by = NULL;
	queue_changed(d);
}

void preempt_jobs(struct daemon *d, struct job *j, struct job **victims, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		_cleanup_xerr_ struct xerr err = XERR_INIT;
		struct job *v = victims[i];

		if (v->state != JOB_RUNNING || v->run || v->sched.preempting)
			continue;
		log_info("Preempting job %s (priority %lld) for job %s (priority %lld): "
			 "checkpoint and stop",
			 v->id, (long long)v->sched.priority, j->id, (long long)j->sched.priority);
		free(v->sched.preempted_by);
		v->sched.preempted_by = strdup(j->id);
		v->sched.preempting = true;
		if (ckpt_checkpoint(d->ckpt, v, true, &err) < 0 && v->sched.preempting) {
			v->sched.preempting = false;
			preempt_failed(d, v, xerr_message(&err));
		}
	}
	free(j->sched.preempt_note);
	j->sched.preempt_note = NULL;
}

static void resume_failed(struct daemon *d, struct job *j, const char *why)
{
	log_error("Restore of preempted job %s failed: %s", j->id, why);
	j->sched.resume = j->sched.preempted = false;
	set_reason(j, xstrdup_printf("its restore after preemption failed (%s); xrestart %.12s "
				     "tries again",
				     why, j->id));
	persist(d, j);
	queue_changed(d);
}

void preempt_resume(struct daemon *d, struct job *j)
{
	_cleanup_xerr_ struct xerr err = XERR_INIT;

	log_info("Restoring job %s from version %u: there is room for it again", j->id,
		 j->sched.resume_version);
	j->sched.resuming = true;
	if (ckpt_restart(d->ckpt, j, j->sched.resume_version, &err) < 0 && j->sched.resuming) {
		j->sched.resuming = false;
		resume_failed(d, j, xerr_message(&err));
	}
}

/* Its checkpoint for a preemption ended: stopped (PREEMPTED, in the
 * queue), or it runs on. (dump_done persists the record after this.) */
static void dump_ended(struct daemon *d, struct job *j, const struct xerr *err)
{
	struct job *pj = j->sched.preempted_by ? daemon_find_job(d, j->sched.preempted_by) : NULL;

	j->sched.preempting = false;
	if (xerr_is_set(err) || j->state != JOB_CHECKPOINTED) {
		preempt_failed(d, j, xerr_is_set(err) ? xerr_message(err) : "it did not stop");
		return;
	}
	j->sched.resume = j->sched.preempted = true;
	j->sched.resume_version = j->ckpt_last;
	set_reason(j, xstrdup_printf("preempted by job %.12s (priority %lld); restored when "
				     "there is room",
				     j->sched.preempted_by ? j->sched.preempted_by : "?",
				     pj ? (long long)pj->sched.priority : 0LL));
	log_info("Job %s is preempted (version %u)", j->id, j->ckpt_last);
	queue_changed(d);
}

void queue_ckpt_done(struct daemon *d, struct job *j, const struct xerr *err)
{
	if (j->sched.preempting) {
		dump_ended(d, j, err);
		return;
	}
	if (j->sched.resuming) {
		j->sched.resuming = false;
		if (xerr_is_set(err)) {
			resume_failed(d, j, xerr_message(err));
			return;
		}
	}
	if (!xerr_is_set(err) && j->sched.resume && j->state == JOB_RUNNING) {
		/* restored (from the queue, or by its owner's xrestart) */
		j->sched.resume = j->sched.preempted = false;
		free(j->sched.preempted_by);
		j->sched.preempted_by = NULL;
		persist(d, j);
		queue_changed(d);
	}
}
