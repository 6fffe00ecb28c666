/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The queue kept in order between passes (scheduler_kept_*, DECISIONS (az))
 * against a full pass: long random sequences of events (submissions, held
 * or not, with dependencies and time limits; releases; ends, which charge
 * usage to the user and the job's group (a user's jobs in several groups);
 * preemptions; priority changes; time passing, so that usage decays, to
 * zero at times, and users and groups tie), and after each event the decisions of a
 * pass over the kept queue (held jobs left out) must be those of a full pass
 * over every queued job in no order. TAP output. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/scheduler.h"
#include "tests/unit/tap.h"

#define S 1000000ULL
#define JOBS_MAX 400
#define USERS 4
#define GROUPS 3
#define DEPS_MAX 2

enum mstate { M_QUEUED, M_RUNNING, M_ENDED_OK, M_ENDED_FAIL, M_GONE };

struct mjob {
	char id[16];
	enum mstate st;
	uint32_t uid, group;
	int64_t prio;
	uint64_t submit, started, time_us;
	uint64_t mcpu;
	bool held, resume, preemptible;
	size_t dep_of[DEPS_MAX];
	enum scheduler_dep_mode dep_mode[DEPS_MAX];
	size_t n_deps;
	struct scheduler_dep deps[DEPS_MAX];
	/* in the kept queue, under this key */
	bool kept;
	struct scheduler_queued key;
};

struct model {
	unsigned starts, preempts, nevers, backfills;
	unsigned lazy_stops; /* lazy passes that stopped before the last job */
	bool plain;          /* no holds, no dependencies (a lazy pass may stop) */
	struct mjob j[JOBS_MAX];
	size_t n;
	uint64_t now, half_life;
	double usage[USERS + GROUPS]; /* the users', then the groups' */
	uint64_t stamp[USERS + GROUPS];
	uint64_t rng;
	bool no_backfill;
};

static uint64_t rnd(struct model *m, uint64_t below)
{
	m->rng ^= m->rng << 13;
	m->rng ^= m->rng >> 7;
	m->rng ^= m->rng << 17;
	return below ? m->rng % below : 0;
}

static bool in_queue(const struct mjob *j)
{
	return j->st == M_QUEUED;
}

/* what the kept queue holds: the queue but held jobs */
static bool kept_member(const struct mjob *j)
{
	return in_queue(j) && (j->resume || !j->held);
}

static struct scheduler_queued queued_of(struct mjob *j)
{
	size_t n = j->resume ? 0 : j->n_deps;

	return (struct scheduler_queued){
		.id = j->id,
		.uid = j->uid,
		.group = j->group,
		.priority = j->prio,
		.submit_us = j->submit,
		.req = { j->mcpu, 0, 1 },
		.time_us = j->time_us,
		.held = !j->resume && j->held,
		.deps = j->deps,
		.n_deps = n,
	};
}

static void dep_states(struct model *m)
{
	for (size_t i = 0; i < m->n; i++)
		for (size_t k = 0; k < m->j[i].n_deps; k++) {
			const struct mjob *d = &m->j[m->j[i].dep_of[k]];
			struct scheduler_dep *sd = &m->j[i].deps[k];

			sd->id = d->id;
			sd->mode = m->j[i].dep_mode[k];
			sd->ended_as = d->st == M_ENDED_FAIL ? "FAILED" : NULL;
			sd->state = d->st == M_ENDED_OK     ? SCHEDULER_DEP_SUCCEEDED
				    : d->st == M_ENDED_FAIL ? SCHEDULER_DEP_FAILED
				    : d->st == M_GONE       ? SCHEDULER_DEP_GONE
							    : SCHEDULER_DEP_PENDING;
		}
}

static void usage_now(const struct model *m, struct scheduler_usage *u, size_t *n)
{
	*n = 0;
	for (uint32_t i = 0; i < USERS + GROUPS; i++)
		if (m->stamp[i]) /* (users and groups never charged are not listed: 0) */
			u[(*n)++] = (struct scheduler_usage){
				i < USERS ? 1000 + i : i - USERS, i >= USERS,
				scheduler_decay(m->usage[i], m->now - m->stamp[i], m->half_life)
			};
}

static void submit(struct model *m)
{
	static const int64_t prios[] = { 500, 1000, 1000, 1000, 2000 };
	struct mjob *j;

	if (m->n == JOBS_MAX)
		return;
	j = &m->j[m->n];
	*j = (struct mjob){ .st = M_QUEUED,
			    .uid = 1000 + (uint32_t)rnd(m, USERS),
			    .group = (uint32_t)rnd(m, GROUPS),
			    .prio = prios[rnd(m, 5)],
			    .submit = m->now - rnd(m, 2) * S, /* (equal times: by id) */
			    .time_us = rnd(m, 3) ? (1 + rnd(m, 60)) * S : 0,
			    .mcpu = 500 * rnd(m, 5),
			    .held = !m->plain && rnd(m, 3) == 0,
			    .preemptible = rnd(m, 2) == 0 };
	snprintf(j->id, sizeof(j->id), "j%03zu", m->n);
	for (size_t k = 0; !m->plain && m->n && k < DEPS_MAX && rnd(m, 5) == 0; k++) {
		j->dep_of[j->n_deps] = (size_t)rnd(m, m->n);
		j->dep_mode[j->n_deps++] = (enum scheduler_dep_mode)rnd(m, 3);
	}
	m->n++;
}

static struct mjob *pick(struct model *m, bool (*ok_)(const struct mjob *))
{
	size_t start = m->n ? (size_t)rnd(m, m->n) : 0;

	for (size_t i = 0; i < m->n; i++)
		if (ok_(&m->j[(start + i) % m->n]))
			return &m->j[(start + i) % m->n];
	return NULL;
}

static bool is_held(const struct mjob *j)
{
	return j->st == M_QUEUED && j->held && !j->resume;
}
static bool is_running(const struct mjob *j)
{
	return j->st == M_RUNNING;
}
static bool is_ended(const struct mjob *j)
{
	return j->st == M_ENDED_OK || j->st == M_ENDED_FAIL;
}
static bool is_queued(const struct mjob *j)
{
	return j->st == M_QUEUED;
}

static void charge1(struct model *m, uint32_t u, double amount)
{
	m->usage[u] = (m->stamp[u]
			       ? scheduler_decay(m->usage[u], m->now - m->stamp[u], m->half_life)
			       : 0.0) +
		      amount;
	m->stamp[u] = m->now;
}

/* a job's run charged to its user and its group */
static void charge(struct model *m, const struct mjob *j, double amount)
{
	charge1(m, j->uid - 1000, amount);
	charge1(m, USERS + j->group, amount);
}

static void event(struct model *m)
{
	struct mjob *j;

	switch (rnd(m, 8)) {
	case 0:
	case 1:
		submit(m);
		break;
	case 2:
		if ((j = pick(m, is_held)))
			j->held = false;
		break;
	case 3:
	case 4: /* an end: its user is charged (whole seconds: users tie) */
		if ((j = pick(m, is_running))) {
			j->st = rnd(m, 2) ? M_ENDED_OK : M_ENDED_FAIL;
			charge(m, j, scheduler_charge(j->mcpu, m->now - j->started));
		}
		break;
	case 5: /* time passes (decay; at times to nothing) */
		m->now += rnd(m, 4) == 0 ? rnd(m, 2000) * S : rnd(m, 30) * S + rnd(m, 1000);
		break;
	case 6:
		if ((j = pick(m, is_queued)))
			j->prio = j->prio == 1000 ? 2000 : 1000;
		else if ((j = pick(m, is_ended)))
			j->st = M_GONE;
		break;
	default:
		if ((j = pick(m, is_ended)))
			j->st = M_GONE;
		break;
	}
}

/* the running jobs as a node gives them, and their model jobs */
static size_t running(struct model *m, struct scheduler_running *r, struct mjob **rj)
{
	size_t n = 0;

	for (size_t i = 0; i < m->n; i++) {
		struct mjob *j = &m->j[i];

		if (j->st != M_RUNNING)
			continue;
		rj[n] = j;
		r[n++] = (struct scheduler_running){
			.req = { j->mcpu, 0, 1 },
			.end_us = j->time_us ? j->started + j->time_us : 0,
			.preemptible = j->preemptible,
			.priority = j->prio,
			.work_us = m->now - j->started,
		};
	}
	return n;
}

/* The kept queue brought up to date: every job whose membership or key
 * changed is dropped and added again (as xosd does for the jobs an event
 * touched) */
static int kept_update(struct model *m, struct scheduler_kept *k, const struct scheduler_usage *u,
		       size_t n_u)
{
	size_t drop[JOBS_MAX], n_drop = 0, n_add = 0;
	struct scheduler_queued add[JOBS_MAX];
	void *data[JOBS_MAX];

	if (scheduler_kept_usage(k, u, n_u) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < m->n; i++) {
		struct mjob *j = &m->j[i];
		struct scheduler_queued now = queued_of(j);
		bool member = kept_member(j);

		if (j->kept &&
		    (!member || now.priority != j->key.priority || now.n_deps != j->key.n_deps)) {
			size_t at = scheduler_kept_find(k, &j->key, j);

			if (at == SIZE_MAX)
				return -ENOENT;
			drop[n_drop++] = at;
			j->kept = false;
		}
		if (member && !j->kept) {
			j->key = now;
			j->kept = true;
			add[n_add] = now;
			data[n_add++] = j;
		}
	}
	scheduler_kept_drop(k, drop, n_drop);
	return scheduler_kept_add(k, u, n_u, add, data, n_add);
}

static bool same_decision(const struct scheduler_decision *a, const struct scheduler_decision *b)
{
	return a->action == b->action && a->ahead == b->ahead &&
	       a->est_start_us == b->est_start_us && a->backfilled == b->backfilled &&
	       a->dependency == b->dependency && a->n_victims == b->n_victims &&
	       !memcmp(a->victims, b->victims, a->n_victims * sizeof(a->victims[0])) &&
	       !strcmp(a->reason, b->reason);
}

/* The lazy pass over the kept queue (reasons only for one place, at
 * times) against kd, the kept queue's pass with every reason: the same
 * decisions where it decided, the wanted one's reason and estimate too,
 * and each job after where it stopped waits behind as many */
static bool lazy_same(struct model *m, struct scheduler_kept *k, const struct scheduler_node *kn,
		      const struct scheduler_decision *kd, char *why, size_t len)
{
	struct scheduler_node ln = *kn;
	struct scheduler_bounds b;
	struct scheduler_stop stop;
	struct scheduler_decision *ld = calloc(k->n + 1, sizeof(*ld));
	size_t want = k->n && rnd(m, 2) ? (size_t)rnd(m, k->n) : SIZE_MAX;
	bool same = ld != NULL;

	ln.only_wanted_reasons = true;
	scheduler_kept_bounds(k, &b);
	b.last_wanted = want;
	if (want != SIZE_MAX)
		k->q[k->off + want].want_reason = true;
	if (same && scheduler_decide_lazy(&ln, &b, ld, &stop) < 0)
		same = false;
	if (want != SIZE_MAX)
		k->q[k->off + want].want_reason = false;
	m->lazy_stops += same && stop.n < k->n;
	for (size_t i = 0; i < k->n && same; i++) {
		struct scheduler_decision rest, *l = &ld[i];

		if (i >= stop.n)
			scheduler_rest(&stop, i, l = &rest);
		same = l->index == kd[i].index && l->action == kd[i].action &&
		       l->ahead == kd[i].ahead && l->backfilled == kd[i].backfilled &&
		       l->dependency == kd[i].dependency && l->n_victims == kd[i].n_victims &&
		       !memcmp(l->victims, kd[i].victims, l->n_victims * sizeof(l->victims[0])) &&
		       (i != want || (l->est_start_us == kd[i].est_start_us &&
				      !strcmp(l->reason, kd[i].reason)));
		snprintf(
			why, len,
			"lazy #%zu (stopped at %zu of %zu%s): %s '%s' ahead %u; kept %s '%s' ahead %u",
			i, stop.n, k->n, i == want ? ", wanted" : "",
			scheduler_action_to_string(l->action), l->reason, l->ahead,
			scheduler_action_to_string(kd[i].action), kd[i].reason, kd[i].ahead);
	}
	if (!ld)
		snprintf(why, len, "the lazy pass failed");
	free(ld);
	return same;
}

/* One pass both ways; the full pass's decisions applied to the model.
 * false (and why) at the first difference. */
static bool pass(struct model *m, struct scheduler_kept *k, char *why, size_t len)
{
	struct scheduler_running run[JOBS_MAX];
	struct mjob *rj[JOBS_MAX], *qj[JOBS_MAX];
	struct scheduler_queued q[JOBS_MAX];
	struct scheduler_usage u[USERS + GROUPS];
	struct scheduler_decision *full = NULL, *kd = NULL;
	struct scheduler_node fn, kn;
	size_t n_u, n_q = 0, n_run, next = 0;
	bool same = true;

	dep_states(m);
	usage_now(m, u, &n_u);
	n_run = running(m, run, rj);
	for (size_t i = 0; i < m->n; i++) /* (the full pass: a shuffled queue) */
		if (in_queue(&m->j[i])) {
			size_t at = (size_t)rnd(m, n_q + 1);

			q[n_q] = q[at];
			qj[n_q++] = qj[at];
			q[at] = queued_of(&m->j[i]);
			qj[at] = &m->j[i];
		}
	fn = (struct scheduler_node){ .capacity = { 2000, SCHEDULER_UNLIMITED, 4 },
				      .now_us = m->now,
				      .running = run,
				      .n_running = n_run,
				      .queue = q,
				      .n_queue = n_q,
				      .usage = u,
				      .n_usage = n_u,
				      .no_backfill = m->no_backfill };
	kn = fn;
	if (kept_update(m, k, u, n_u) < 0 || scheduler_decide(&fn, &full) < 0) {
		snprintf(why, len, "kept_update or the full pass failed");
		return false;
	}
	scheduler_kept_node(k, &kn);
	if (scheduler_decide(&kn, &kd) < 0) {
		free(full);
		snprintf(why, len, "the kept pass failed");
		return false;
	}
	/* the full pass in order: held jobs wait; the others are the kept
	 * queue's, in its order, with the same decisions */
	for (size_t i = 0; i < n_q && same; i++) {
		const struct scheduler_decision *f = &full[i];
		struct mjob *j = qj[f->index];

		if (!kept_member(j)) {
			same = f->action == SCHEDULER_WAIT;
			snprintf(why, len, "held %s: %s", j->id, f->reason);
			continue;
		}
		same = next < k->n && k->data[k->off + kd[next].index] == j &&
		       same_decision(f, &kd[next]);
		snprintf(why, len, "%s: full %s '%s' ahead %u est %" PRIu64 "; kept #%zu %s '%s'",
			 j->id, scheduler_action_to_string(f->action), f->reason, f->ahead,
			 f->est_start_us, next < k->n ? next : 0,
			 next < k->n ? scheduler_action_to_string(kd[next].action) : "-",
			 next < k->n ? kd[next].reason : "-");
		next++;
	}
	same = same && next == k->n && lazy_same(m, k, &kn, kd, why, len);
	for (size_t i = 0; i < n_q && same; i++) { /* the full pass's decisions applied */
		const struct scheduler_decision *f = &full[i];
		struct mjob *j = qj[f->index];

		m->backfills += f->backfilled;
		if (f->action == SCHEDULER_START) {
			m->starts++;
			j->st = M_RUNNING;
			j->resume = false;
			j->started = m->now;
		} else if (f->action == SCHEDULER_NEVER) {
			m->nevers++;
			j->st = M_ENDED_FAIL;
		} else if (f->action == SCHEDULER_PREEMPT) {
			m->preempts++;
			for (unsigned v = 0; v < f->n_victims; v++) {
				struct mjob *vj = rj[f->victims[v]];

				vj->st = M_QUEUED;
				vj->resume = true;
				charge(m, vj, scheduler_charge(vj->mcpu, m->now - vj->started));
			}
		}
	}
	free(full);
	free(kd);
	return same;
}

static void run_sequence(uint64_t seed, uint64_t half_life, bool no_backfill, bool plain,
			 unsigned steps)
{
	static struct model m;
	struct scheduler_kept k = { 0 };
	char why[512] = "";
	unsigned i;
	bool same = true;

	m = (struct model){ .now = 100000 * S,
			    .half_life = half_life,
			    .rng = seed,
			    .no_backfill = no_backfill,
			    .plain = plain };
	for (i = 0; i < steps && same; i++) {
		event(&m);
		same = pass(&m, &k, why, sizeof(why));
	}
	ok(same,
	   "seed %" PRIu64 ", half-life %" PRIu64 " s%s%s: %u events, %zu jobs (%u starts, %u "
	   "backfilled, %u preemptions, %u never), %" PRIu64
	   " resorts, %u lazy passes stopped early: kept and lazy decisions are the full "
	   "pass's%s%s",
	   seed, (uint64_t)(half_life / S), no_backfill ? ", no backfill" : "",
	   plain ? ", no holds or dependencies" : "", i, m.n, m.starts, m.backfills, m.preempts,
	   m.nevers, k.resorts, m.lazy_stops, same ? "" : "; first difference: ", same ? "" : why);
	if (plain) /* (else the test of lazy passes could pass without one stop) */
		ok(m.lazy_stops > 100, "seed %" PRIu64 ": lazy passes stopped early (%u)", seed,
		   m.lazy_stops);
	scheduler_kept_free(&k);
}

/* find, drop and add on their own: the order and the entries' places */
static void test_kept_ops(void)
{
	struct scheduler_kept k = { 0 };
	struct scheduler_queued q[6], key[6];
	void *data[6];
	static const char *ids[] = { "a", "b", "c", "d", "e", "f" };
	struct scheduler_usage u[] = { { 1, false, 5.0 }, { 2, false, 1.0 } };
	size_t idx[2];
	bool order = true;

	for (size_t i = 0; i < 6; i++) {
		q[i] = (struct scheduler_queued){
			.id = ids[i], .uid = 1 + (uint32_t)(i % 2), .priority = 1000, .submit_us = i
		};
		data[i] = (void *)ids[i];
		key[i] = q[i];
	}
	ok(scheduler_kept_usage(&k, u, 2) == 0 && scheduler_kept_add(&k, u, 2, q, data, 6) == 0 &&
		   k.n == 6,
	   "six entries added");
	/* user 2 (usage 1) first: b d f a c e */
	for (size_t i = 0; i < 6; i++)
		order = order && !strcmp(k.q[k.off + i].id, ids[i < 3 ? 2 * i + 1 : 2 * (i - 3)]);
	ok(order, "in order: priority, then the user's usage, then submission");
	ok(scheduler_kept_find(&k, &key[0], ids[0]) != SIZE_MAX, "an entry is found by its key");
	u[1].usage = 9.0; /* user 2 now used more: a c e b d f */
	ok(scheduler_kept_usage(&k, u, 2) == 1 && !strcmp(k.q[k.off].id, "a") &&
		   !strcmp(k.q[k.off + 5].id, "f"),
	   "a change of the users' order sorts again");
	u[1].usage = 7.0; /* (the same order of users) */
	ok(scheduler_kept_usage(&k, u, 2) == 0, "a change that keeps the users' order does not");
	idx[0] = 0;
	idx[1] = 1;
	scheduler_kept_drop(&k, idx, 2);
	ok(k.n == 4 && !strcmp(k.q[k.off].id, "e"), "the first two dropped (the rest moves up)");
	idx[0] = 3;
	scheduler_kept_drop(&k, idx, 1);
	ok(k.n == 3 && !strcmp(k.q[k.off + 2].id, "d") &&
		   scheduler_kept_find(&k, &key[5], ids[5]) == SIZE_MAX,
	   "the last dropped, and found no more");
	scheduler_kept_free(&k);
}

/* groups: one user's jobs in two groups are two slots; a change of the
 * groups' order sorts again though no user's usage moved */
static void test_kept_groups(void)
{
	struct scheduler_kept k = { 0 };
	struct scheduler_queued q[4], key[4];
	void *data[4];
	static const char *ids[] = { "a", "b", "c", "d" };
	struct scheduler_usage u[] = {
		{ 1, false, 1.0 }, { 2, false, 1.0 }, { 1, true, 3.0 }, { 2, true, 1.0 }
	};

	for (size_t i = 0; i < 4; i++) { /* a: 1/g1, b: 1/g2, c: 2/g1, d: 2/g2 */
		q[i] = (struct scheduler_queued){ .id = ids[i],
						  .uid = 1 + (uint32_t)(i / 2),
						  .group = 1 + (uint32_t)(i % 2),
						  .priority = 1000,
						  .submit_us = i };
		data[i] = (void *)ids[i];
		key[i] = q[i];
	}
	ok(scheduler_kept_usage(&k, u, 4) == 0 && scheduler_kept_add(&k, u, 4, q, data, 4) == 0 &&
		   !strcmp(k.q[k.off].id, "b") && !strcmp(k.q[k.off + 1].id, "d") &&
		   !strcmp(k.q[k.off + 2].id, "a"),
	   "group 2 (less usage) first: b d a c");
	ok(scheduler_kept_find(&k, &key[1], ids[1]) == 0 &&
		   scheduler_kept_find(&k, &key[2], ids[2]) == 3,
	   "entries found by their key (uid and group)");
	u[2].usage = 0.5; /* group 1 now used less; the users' usage stands */
	ok(scheduler_kept_usage(&k, u, 4) == 1 && !strcmp(k.q[k.off].id, "a") &&
		   !strcmp(k.q[k.off + 1].id, "c"),
	   "a change of the groups' order alone sorts again: a c b d");
	u[0].usage = 2.0; /* user 1 used more: within group 1, c before a */
	ok(scheduler_kept_usage(&k, u, 4) == 1 && !strcmp(k.q[k.off].id, "c") &&
		   !strcmp(k.q[k.off + 1].id, "a"),
	   "a change of the users' order within a group sorts again: c a d b");
	u[3].usage = 0.7; /* (groups' order unchanged: 0.5 < 0.7) */
	ok(scheduler_kept_usage(&k, u, 4) == 0, "a change that keeps every pair's order does not");
	scheduler_kept_free(&k);
}

int main(void)
{
	test_kept_ops();
	test_kept_groups();
	run_sequence(0x9e3779b97f4a7c15ULL, 30 * S, false, false, 4000);
	run_sequence(0x2545f4914f6cdd1dULL, 1 * S, false, false, 4000);
	run_sequence(0xd1b54a32d192ed03ULL, 600 * S, false, false, 4000);
	run_sequence(0x8cb92ba72f3d8dd7ULL, 30 * S, true, false, 3000);
	run_sequence(0x5851f42d4c957f2dULL, 0, false, false, 3000);
	run_sequence(0x94d049bb133111ebULL, 30 * S, false, true, 4000);
	run_sequence(0xbf58476d1ce4e5b9ULL, 0, true, true, 3000);
	return tap_done();
}
