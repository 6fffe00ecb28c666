/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* scheduler: which queued jobs of a node start now, and why the others wait.
 *
 * Pure policy, no dependency on runtime/ (nor on anything but libc): xosd
 * hands it the node's state (capacity, the running jobs' requests and ends,
 * the queue with priorities, submit times and dependencies' states, the
 * groups' and users' decayed usage) and gets back a decision for every queued job. The
 * policy and its formulas are in docs/SCHEDULING.md. */
#ifndef XOS_SCHEDULER_H
#define XOS_SCHEDULER_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* No limit on a resource of the node. */
#define SCHEDULER_UNLIMITED UINT64_MAX
/* Priorities a job may have (xrun --priority); higher goes first. */
#define SCHEDULER_PRIORITY_MIN 0
#define SCHEDULER_PRIORITY_MAX 1000000
#define SCHEDULER_PRIORITY_DEFAULT 1000
/* A reason's length, with its NUL. */
#define SCHEDULER_REASON_MAX 192

/* What a job asks for, and what a node has (after its reserve). */
struct scheduler_resources {
	uint64_t millicpus; /* 1000 = one cpu */
	uint64_t memory;    /* bytes */
	uint64_t jobs;      /* job slots (a job asks for 1) */
};

/* --after JOB:MODE */
enum scheduler_dep_mode {
	SCHEDULER_DEP_OK,   /* JOB ended with exit code 0 */
	SCHEDULER_DEP_FAIL, /* JOB ended otherwise (code, signal, failure) */
	SCHEDULER_DEP_ANY,  /* JOB ended */
	_SCHEDULER_DEP_MODE_MAX,
	_SCHEDULER_DEP_MODE_INVALID = -EINVAL,
};
const char *scheduler_dep_mode_to_string(enum scheduler_dep_mode m);
enum scheduler_dep_mode scheduler_dep_mode_from_string(const char *s);

/* What became of the job a dependency names. */
enum scheduler_dep_state {
	SCHEDULER_DEP_PENDING,   /* not ended yet (queued, running, checkpointed...) */
	SCHEDULER_DEP_SUCCEEDED, /* ended with exit code 0 */
	SCHEDULER_DEP_FAILED,    /* ended otherwise */
	SCHEDULER_DEP_GONE,      /* no record of it is left */
	_SCHEDULER_DEP_STATE_MAX,
	_SCHEDULER_DEP_STATE_INVALID = -EINVAL,
};

struct scheduler_dep {
	const char *id; /* as the user named it (for reasons) */
	enum scheduler_dep_mode mode;
	enum scheduler_dep_state state;
	const char *ended_as; /* e.g. "FAILED", for the reason (may be NULL) */
};

/* Most victims one preemption stops. */
#define SCHEDULER_VICTIMS_MAX 8

/* A job that holds resources now (starting, running, checkpointing...). */
struct scheduler_running {
	struct scheduler_resources req;
	uint64_t end_us; /* when its --time ends it; 0: no time limit */
	/* xrun --preemptible, and running now (a victim may be chosen) */
	bool preemptible;
	/* being stopped at a checkpoint for a preemption: its resources are
	 * the preempting job's once it has stopped */
	bool stopping;
	int64_t priority;
	uint64_t work_us; /* how long it has run since its start or restore */
};

struct scheduler_queued {
	const char *id; /* for reasons and a stable order */
	uint32_t uid;   /* the owner: fair share is per user, */
	uint32_t group; /* within its group (a VO; 0: the node's local accounts) */
	int64_t priority;
	uint64_t submit_us;
	struct scheduler_resources req; /* req.jobs is taken as 1 */
	uint64_t time_us;               /* --time (0: none): backfill needs it */
	bool held;                      /* xrun --hold, until xrelease */
	const struct scheduler_dep *deps;
	size_t n_deps;
	bool want_reason; /* its reason is wanted even with node->only_wanted_reasons */
};

/* Recent usage (cpu-seconds), decayed to now (scheduler_decay): a user's
 * (id: a uid) or, with of_group, a group's (id: scheduler_queued.group),
 * divided by the group's share where groups have weights. */
struct scheduler_usage {
	uint32_t id;
	bool of_group;
	double usage;
};

/* What fair share orders a queued job by: its group's usage, then its
 * user's (each 0 where not listed) */
struct scheduler_share {
	double group, user;
};

struct scheduler_node {
	struct scheduler_resources capacity; /* SCHEDULER_UNLIMITED where none */
	uint64_t now_us;
	const struct scheduler_running *running;
	size_t n_running;
	const struct scheduler_queued *queue;
	size_t n_queue;
	const struct scheduler_usage *usage; /* users and groups not listed: 0 */
	size_t n_usage;
	bool no_backfill; /* strict order only */
	/* The queue is already in order (priority, fair share of groups and
	 * of users, submission):
	 * scheduler_decide does not sort it. */
	bool sorted;
	/* Else a likely order (indexes into queue, each once: the last pass's
	 * order), or NULL: a queue nearly in order is sorted in O(n). */
	const size_t *order_hint;
	/* Reasons and estimated starts only for the queued jobs with
	 * want_reason set (else for every job: xps, xqueue). */
	bool only_wanted_reasons;
};

enum scheduler_action {
	SCHEDULER_WAIT,  /* stays queued, for the reason given */
	SCHEDULER_START, /* start it now */
	SCHEDULER_NEVER, /* it can never start: end it (DEPENDENCY_NEVER_SATISFIED...) */
	/* it waits, and the victims (running preemptible jobs of lower
	 * priority) are to be stopped at a checkpoint to make room for it */
	SCHEDULER_PREEMPT,
	_SCHEDULER_ACTION_MAX,
	_SCHEDULER_ACTION_INVALID = -EINVAL,
};
const char *scheduler_action_to_string(enum scheduler_action a);

struct scheduler_decision {
	size_t index; /* into node->queue */
	enum scheduler_action action;
	unsigned position;                       /* 1-based place in the queue's order */
	unsigned ahead;                          /* eligible jobs ahead of it that wait too */
	uint64_t est_start_us;                   /* estimated start (now for START); 0: unknown */
	bool backfilled;                         /* START ahead of a job that waits (backfill) */
	bool dependency;                         /* NEVER: because of a dependency */
	unsigned n_victims;                      /* PREEMPT: the jobs to stop, */
	uint32_t victims[SCHEDULER_VICTIMS_MAX]; /* indexes into node->running */
	/* WAIT, PREEMPT and NEVER: why, for people ("" where not wanted) */
	char reason[SCHEDULER_REASON_MAX];
};

/* One decision per queued job, in the queue's order (priority, fair share
 * of groups then users, submission). ret: an array of n_queue decisions (free() it). -ENOMEM. */
int scheduler_decide(const struct scheduler_node *node, struct scheduler_decision **ret);
/* The same into decs, room for node->n_queue decisions (the caller's,
 * reused from pass to pass). -ENOMEM. */
int scheduler_decide_into(const struct scheduler_node *node, struct scheduler_decision *decs);
/* What a queue kept between passes knows of its jobs without a walk; the
 * bounds may be loose (a job that asked for the least has left since). */
struct scheduler_bounds {
	struct scheduler_resources min_req; /* each job asks for at least this */
	struct scheduler_resources max_req; /* and for at most this */
	bool held, deps;                    /* a job may be held, or have dependencies */
	size_t last_wanted; /* the last place (0: first) whose reason is wanted; SIZE_MAX: none */
};

/* Where a lazy pass stopped: decisions for the first n jobs in order; each
 * job after them waits (scheduler_rest). */
struct scheduler_stop {
	size_t n;
	unsigned waiting; /* eligible jobs found waiting in the first n */
};

/* scheduler_decide_into over a sorted queue with only_wanted_reasons that
 * stops once the first job that waits is decided, no job left can start in
 * what is free (b's min_req does not fit it), none of them may be held,
 * have a dependency or ask for more than the node has, and no reason is
 * wanted of one: each of them would only wait, behind one more job than
 * the one before it. Its decisions, made, are the walk's (DECISIONS (bc)).
 * -EINVAL (a queue not sorted, or reasons wanted for all), -ENOMEM. */
int scheduler_decide_lazy(const struct scheduler_node *node, const struct scheduler_bounds *b,
			  struct scheduler_decision *decs, struct scheduler_stop *ret);
/* The decision a lazy pass that stopped at stop left for the job at place
 * k (>= stop->n): it waits (no reason). */
void scheduler_rest(const struct scheduler_stop *stop, size_t k, struct scheduler_decision *dec);
/* The order of two queued jobs (<0: a first), their shares given:
 * priority, their groups' usage, their users' usage, submission, id. For a
 * queue kept sorted. */
int scheduler_compare(const struct scheduler_queued *a, const struct scheduler_share *share_a,
		      const struct scheduler_queued *b, const struct scheduler_share *share_b);
/* The share of q (its group's and its user's usage in usage, 0 where not
 * listed; the first entry of each) */
struct scheduler_share scheduler_share_of(const struct scheduler_usage *usage, size_t n_usage,
					  const struct scheduler_queued *q);

/* usage decayed over elapsed_us with a half-life: usage * 2^(-elapsed/half_life)
 * (half_life 0: no decay). */
double scheduler_decay(double usage, uint64_t elapsed_us, uint64_t half_life_us);
/* What a job that ran wall_us with millicpus asked for adds to its user's
 * and its group's usage: cpus (at least 1) times whole seconds (at least 1, rounded up). */
double scheduler_charge(uint64_t millicpus, uint64_t wall_us);
/* Parse a dependency "JOB[:ok|:fail|:any]" (default ok): the job part (a
 * pointer into s, its length) and the mode. -EINVAL. */
int scheduler_parse_dep(const char *s, size_t *ret_id_len, enum scheduler_dep_mode *ret_mode);
/* Why a job that asks for req waits while free_ is left, with n_ahead
 * eligible jobs waiting ahead of it, as a pass says it: "waiting for 2 cpus
 * and 1 GiB of memory; 3 jobs ahead" (buf, len). */
void scheduler_reason_resources(const struct scheduler_resources *req,
				const struct scheduler_resources *free_, unsigned n_ahead,
				char *buf, size_t len);
/* A request in words: "2 cpus", "1.5 cpus", "512 MiB of memory" (buf, len). */
void scheduler_format_cpus(uint64_t millicpus, char *buf, size_t len);
void scheduler_format_memory(uint64_t bytes, char *buf, size_t len);

/* A queue kept in the scheduler's order between passes and changed by
 * events (DECISIONS (az)): entries (a job's scheduler_queued and the
 * caller's pointer) are added and dropped; before each pass the users' and
 * groups' usage is given again, and where the order of the (group, user)
 * pairs it makes is not the order the queue was kept in (a charge, or
 * decay rounding two usages to the same value), the whole queue is sorted
 * again. A pass over
 * it (scheduler_kept_node, sorted) decides as a pass over the same jobs
 * given in any order. The caller keeps what an entry points to (id, deps)
 * alive while it is in the queue. */
struct scheduler_kept_user {
	uint32_t uid, group;
	unsigned count;               /* its entries (0: a free slot) */
	struct scheduler_share share; /* its usage as last given */
};

struct scheduler_kept {
	struct scheduler_queued *q; /* the order: q[off] ... q[off + n - 1] */
	void **data;                /* the caller's pointer of each entry */
	uint32_t *user;             /* each entry's index into users (a group's user) */
	size_t off, n, cap;
	struct scheduler_kept_user *users;
	size_t n_users, cap_users;
	uint64_t resorts; /* sorts of the whole queue (the users' order changed) */
	/* bounds of the entries' requests: loose after drops, exact again
	 * once the queue is empty or sorted again */
	struct scheduler_resources min_req, max_req;
	size_t n_held, n_deps; /* entries held, and with dependencies */
};

void scheduler_kept_free(struct scheduler_kept *k);
/* The users' and groups' usage now (those not listed: 0). 1 if the queue was sorted
 * again, 0 if its order stands, -ENOMEM. Before adds and finds of a pass. */
int scheduler_kept_usage(struct scheduler_kept *k, const struct scheduler_usage *usage,
			 size_t n_usage);
/* Add n entries (q and data are reordered); their shares from usage
 * (as scheduler_kept_usage was last given it). -ENOMEM (nothing added). */
int scheduler_kept_add(struct scheduler_kept *k, const struct scheduler_usage *usage,
		       size_t n_usage, struct scheduler_queued *q, void **data, size_t n);
/* The index (0: first in order) of the entry of data, whose key (priority,
 * uid, group, submit_us, id) was key's when it was added; SIZE_MAX: none. */
size_t scheduler_kept_find(const struct scheduler_kept *k, const struct scheduler_queued *key,
			   const void *data);
/* Drop the entries at these indexes (idx is sorted; repeats allowed). */
void scheduler_kept_drop(struct scheduler_kept *k, size_t *idx, size_t n_idx);
/* node's queue: the kept one, in order (sorted) */
void scheduler_kept_node(const struct scheduler_kept *k, struct scheduler_node *node);
/* What the kept queue holds (last_wanted: SIZE_MAX, for the caller) */
void scheduler_kept_bounds(const struct scheduler_kept *k, struct scheduler_bounds *b);

#endif
