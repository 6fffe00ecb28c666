/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to the queue part of runtime/: queue.c (capacity, admission, the
 * passes of the scheduler, time limits, usage, xqueue and xrelease),
 * queue-job.c (what a run request asks of the scheduler, the record's
 * "sched" object) and queue-kept.c (the queue kept between passes and its
 * lazy pass; DECISIONS (az)). */
#ifndef XOS_QUEUE_INTERNAL_H
#define XOS_QUEUE_INTERNAL_H

#include "runtime/runtime-internal.h"
#include "scheduler/scheduler.h"

/* A user's recent usage (id: a uid), or a group's (of_group; id: a group,
 * queue_job_group) */
struct usage_entry {
	uint32_t id;
	bool of_group;
	double usage;      /* cpu-seconds, as of stamp_us */
	uint64_t stamp_us; /* wall clock */
};

/* a dependency's end, in words (as job_sched's kept_ended) */
#define ENDED_MAX 48
#define USAGE_DELAY_US 10000 /* a charge to usage.json written after (queue.c) */

/* What scheduler_decide is given and gives back; its buffers are kept from
 * pass to pass (a queue of 10,000 would allocate megabytes at each event). */
struct view {
	struct scheduler_node node;
	struct scheduler_running *running;
	struct job **run_jobs; /* the job of each running entry */
	struct scheduler_queued *queue;
	struct job **jobs; /* the job of each queue entry */
	struct scheduler_decision *decs;
	struct scheduler_dep *deps;
	char (*ended)[ENDED_MAX]; /* each dependency's end, in words */
	struct scheduler_usage *usage;
	size_t *hint, *slot; /* the last pass's order (node.order_hint), and its making */
	/* the last pass's order, kept here rather than in each job's position
	 * (which a lazy pass leaves: writing every job's page costs a
	 * copy-on-write fault each while xosd has a child); its pointers are
	 * only compared, never followed (a job may have gone since) */
	struct job **order;
	size_t n_order;
	size_t *ptab; /* open addressing: view index + 1 of a job pointer (0: free) */
	size_t cap_run, cap_run_jobs, cap_queue, cap_jobs, cap_decs, cap_deps, cap_ended, cap_usage;
	size_t cap_hint, cap_slot, cap_order, cap_ptab;
};

/* What admit_wait_fast needs of the queue and the running jobs, kept
 * between submissions while d->jobs_gen has not moved (DECISIONS (ay)) */
struct wait_summary {
	bool valid;
	uint64_t gen;                     /* the d->jobs_gen it was made at */
	struct scheduler_resources free_; /* what the running jobs leave */
	bool preempt;                     /* a running job is preemptible or stopping */
	bool deps;                        /* a QUEUED job has dependencies */
	bool untimed;                     /* a job that waits has no --time */
	unsigned n_queue;                 /* jobs in the queue */
	unsigned ahead;                   /* of them, neither held nor with dependencies */
	const struct job *last;           /* the last in the order (NULL: none) */
	/* a submission decided by it, until its link (then counted in) */
	const struct job *pending;
	uint64_t pending_gen;
};

/* The queue kept between passes (DECISIONS (az)): the jobs that may start
 * (queued and not held, or stopped at a checkpoint and waiting for their
 * restore) in the scheduler's order, and the running jobs, changed by the
 * jobs an event touched (their record written, linked, unlinked) */
struct kept {
	bool valid;
	uint64_t gen; /* moves at each rebuild (see job_sched's touched_gen) */
	struct scheduler_kept k;
	struct view v;                       /* a pass's running jobs and decisions */
	struct job **touched, **run, **ckpt; /* run: in d->jobs's order */
	struct job **fresh;                  /* added with want_reason set: wanted in this pass */
	size_t n_touched, cap_touched, n_run, cap_run, n_ckpt, cap_ckpt, n_fresh, cap_fresh;
	size_t n_deps;          /* entries with dependencies */
	bool deps_dirty;        /* a job not queued was touched: their states again */
	uint64_t passes, walks; /* passes over it; walks of every job for it */
	uint64_t stopped;       /* passes that stopped early (scheduler_decide_lazy) */
};

struct queue_state {
	struct scheduler_resources capacity; /* for jobs: the node's minus the reserve */
	bool dirty;                          /* decide again */
	/* places, reasons and estimates may have moved since the last full
	 * pass (a job was queued, or passes made them only where wanted) */
	bool stale;
	struct usage_entry *usage;
	size_t n_usage;
	/* fair-share groups: group g > 0 is the VO groups[g - 1]; 0 is the
	 * node's local accounts (jobs not submitted by a grid login) */
	char **groups;
	size_t n_groups;
	struct view view;
	/* passes of the scheduler (xqueue --json "passes"; tests/bench/scheduler.sh) */
	uint64_t passes, pass_us_total, pass_us_max, pass_us_last, fast_admits, fast_waits;
	uint64_t summary_walks; /* admit_wait_fast's walks to make the summary */
	bool selfcheck;         /* XOS_SCHED_SELFCHECK=1: a kept summary checked by a walk */
	struct wait_summary sum;
	uint64_t pass_cpu_us_total; /* xosd's own CPU time in them (the machine's load aside) */
	uint64_t pass_cpu_us_last;
	/* of them, the full passes made for xps and xqueue (stale reasons) */
	uint64_t refreshes, refresh_us_total, refresh_cpu_us_total;
	struct kept kept;
	/* group commit of queued jobs' records (queue_submit, group_commit) */
	bool sync_pending;
	uint64_t commits, committed;
	uint64_t usage_due_us; /* monotonic: usage.json to be written then (0: written) */
};

/* When a pass began: the monotonic clock and this thread's CPU time */
struct pass_clock {
	uint64_t mono_us, cpu_us;
};

/* ---- queue.c ---- */
/* *buf holds at least n + 1 elements of size, mapped apart (MADV_DONTFORK). */
int queue_grow(void *buf, size_t *cap, size_t n, size_t size);
void queue_view_free(struct view *v);
/* Holds its resources: starting, running, or being checkpointed, restored or moved. */
bool queue_holds_resources(const struct job *j);
/* The state of dependency jd (ended: where its end is put in words). */
/* What the scheduler is told of a queued job j (its reason not wanted). */
struct scheduler_queued queue_entry(struct daemon *d, const struct job *j, bool held,
				    const struct scheduler_dep *deps, size_t n_deps);
/* j's fair-share group (its VO's, made at its first use; 0: local accounts) */
uint32_t queue_job_group(struct daemon *d, const struct job *j);
/* The users' and groups' usage decayed to now into *buf (its room *cap,
 * queue_grow), as the scheduler is given it; their count. -ENOMEM. */
int queue_usage_now(struct daemon *d, uint64_t now, struct scheduler_usage **buf, size_t *cap,
		    size_t *ret_n);
void queue_dep_state(struct daemon *d, const struct job_dep *jd, struct scheduler_dep *ret,
		     char *ended);
/* Running job j as v's next running entry. */
void queue_add_running(struct view *v, struct job *j, uint64_t now);
/* The node as the scheduler sees it, in d->queue->view, at now. */
int queue_view_build_at(struct daemon *d, struct job *extra, bool lazy, uint64_t now,
			struct view **ret);
/* Decision dec of job j (want: its reason was wanted) of a pass over v's running jobs. */
void queue_apply_to(struct daemon *d, const struct view *v, struct job *j, bool want,
		    const struct scheduler_decision *dec);
/* A pass begun at begun counted in q's figures. */
void queue_pass_timed(struct queue_state *q, struct pass_clock begun);

/* ---- queue-kept.c ---- */
void queue_kept_free(struct kept *kp);
/* A lazy pass over the kept queue: 0, or -EAGAIN: a pass that walks every
 * job must be made. */
int queue_kept_schedule(struct daemon *d, struct pass_clock begun);

#endif
