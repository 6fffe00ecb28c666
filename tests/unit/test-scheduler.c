/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the scheduling policy (scheduler/): each rule and formula of
 * docs/SCHEDULING.md on its own. TAP output. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "runtime/runtime-internal.h"
#include "scheduler/scheduler.h"
#include "tests/unit/tap.h"

#define S 1000000ULL /* a second in us */
#define NOW (1000 * S)

static struct scheduler_node node2(const struct scheduler_queued *q, size_t n)
{
	return (struct scheduler_node){
		.capacity = { 2000, SCHEDULER_UNLIMITED, SCHEDULER_UNLIMITED },
		.now_us = NOW,
		.queue = q,
		.n_queue = n,
	};
}

static struct scheduler_queued job(const char *id, uint32_t uid, uint64_t submit, uint64_t mcpu)
{
	return (struct scheduler_queued){
		.id = id, .uid = uid, .submit_us = submit, .req = { .millicpus = mcpu }
	};
}

static struct scheduler_decision *decide(const struct scheduler_node *n)
{
	struct scheduler_decision *d = NULL;

	if (scheduler_decide(n, &d) < 0)
		abort();
	return d;
}

static const char *id_at(const struct scheduler_node *n, const struct scheduler_decision *d,
			 size_t k)
{
	return n->queue[d[k].index].id;
}

/* capacity: two of five 1-cpu jobs start, the others wait with reasons */
static void test_admission(void)
{
	struct scheduler_queued q[5];
	static const char *ids[] = { "a", "b", "c", "d", "e" };
	struct scheduler_node n;
	struct scheduler_decision *d;

	for (size_t i = 0; i < 5; i++)
		q[i] = job(ids[i], 1000, i + 1, 1000);
	n = node2(q, 5);
	d = decide(&n);
	ok(d[0].action == SCHEDULER_START && d[1].action == SCHEDULER_START,
	   "admission: the first two start");
	ok(d[2].action == SCHEDULER_WAIT && d[3].action == SCHEDULER_WAIT &&
		   d[4].action == SCHEDULER_WAIT,
	   "admission: three wait");
	ok(!strcmp(d[2].reason, "waiting for 1 cpu"), "reason of the first waiting: '%s'",
	   d[2].reason);
	ok(!strcmp(d[4].reason, "waiting for 1 cpu; 2 jobs ahead"), "reason with jobs ahead: '%s'",
	   d[4].reason);
	ok(d[4].position == 5 && d[4].ahead == 2, "position 5, 2 ahead");
	ok(d[2].est_start_us == 0, "no estimate without time limits");
	free(d);
}

/* the reason of a waiting job, made without a pass (xosd's fast path for a
 * submission that can only wait), is the pass's own */
static void test_reason_alone(void)
{
	struct scheduler_queued q[5];
	static const char *ids[] = { "a", "b", "c", "d", "e" };
	struct scheduler_resources left = { 0, SCHEDULER_UNLIMITED, SCHEDULER_UNLIMITED };
	struct scheduler_resources big = { 1000, 3ULL << 30, 1 };
	struct scheduler_resources some = { 2000, 1ULL << 30, SCHEDULER_UNLIMITED };
	struct scheduler_node n;
	struct scheduler_decision *d;
	char why[SCHEDULER_REASON_MAX];

	for (size_t i = 0; i < 5; i++)
		q[i] = job(ids[i], 1000, i + 1, 1000);
	n = node2(q, 5);
	d = decide(&n);
	for (size_t k = 2; k < 5; k++) {
		scheduler_reason_resources(&q[d[k].index].req, &left, d[k].ahead, why, sizeof(why));
		ok(!strcmp(why, d[k].reason), "reason without a pass: '%s' (the pass's: '%s')", why,
		   d[k].reason);
	}
	free(d);
	scheduler_reason_resources(&big, &some, 0, why, sizeof(why));
	ok(!strcmp(why, "waiting for 3 GiB of memory"), "memory only: '%s'", why);
	some.jobs = 0;
	scheduler_reason_resources(&big, &some, 1, why, sizeof(why));
	ok(!strcmp(why, "waiting for 3 GiB of memory and a free job slot; 1 job ahead"),
	   "memory and a slot, 1 ahead: '%s'", why);
}

/* a request counted against what the running jobs hold */
static void test_running_hold(void)
{
	struct scheduler_running run[] = { { .req = { 1500, 0, 0 } } };
	struct scheduler_queued q[] = { job("a", 1, 1, 1000), job("b", 1, 2, 500) };
	struct scheduler_node n = node2(q, 2);
	struct scheduler_decision *d;

	n.running = run;
	n.n_running = 1;
	d = decide(&n);
	ok(d[0].action == SCHEDULER_WAIT && !strcmp(d[0].reason, "waiting for 1 cpu"),
	   "running jobs hold their request: '%s'", d[0].reason);
	ok(d[1].action == SCHEDULER_WAIT && d[1].backfilled == false,
	   "no backfill without a known start of the first (no --time anywhere)");
	free(d);
}

static void test_memory_and_slots(void)
{
	struct scheduler_queued q[] = { job("a", 1, 1, 0), job("b", 1, 2, 0) };
	struct scheduler_node n = node2(q, 2);
	struct scheduler_decision *d;
	char buf[64];

	n.capacity.memory = 1ULL << 30;
	n.capacity.jobs = 1;
	q[0].req.memory = 512ULL << 20;
	q[1].req.memory = 768ULL << 20;
	d = decide(&n);
	ok(d[0].action == SCHEDULER_START && d[1].action == SCHEDULER_WAIT, "one job slot");
	ok(!strcmp(d[1].reason, "waiting for 768 MiB of memory and a free job slot"),
	   "memory and slot reason: '%s'", d[1].reason);
	free(d);
	scheduler_format_cpus(1500, buf, sizeof(buf));
	ok(!strcmp(buf, "1.5 cpus"), "1500 millicpus are '%s'", buf);
	scheduler_format_memory(2ULL << 30, buf, sizeof(buf));
	ok(!strcmp(buf, "2 GiB of memory"), "2 GiB: '%s'", buf);
}

static void test_priority(void)
{
	struct scheduler_queued q[] = { job("low", 1, 1, 2000), job("high", 1, 2, 2000),
					job("neg", 1, 0, 2000) };
	struct scheduler_node n = node2(q, 3);
	struct scheduler_decision *d;

	q[1].priority = 10;
	q[2].priority = -5;
	d = decide(&n);
	ok(!strcmp(id_at(&n, d, 0), "high") && d[0].action == SCHEDULER_START,
	   "the higher priority starts first though submitted later");
	ok(!strcmp(id_at(&n, d, 1), "low") && !strcmp(id_at(&n, d, 2), "neg"),
	   "then default priority, then negative");
	free(d);
}

static void test_fcfs(void)
{
	struct scheduler_queued q[] = { job("b", 1, 20, 2000), job("a", 2, 10, 2000),
					job("c", 3, 30, 2000) };
	struct scheduler_node n = node2(q, 3);
	struct scheduler_decision *d = decide(&n);

	ok(!strcmp(id_at(&n, d, 0), "a") && !strcmp(id_at(&n, d, 1), "b") &&
		   !strcmp(id_at(&n, d, 2), "c"),
	   "equal priority and usage: first come first served");
	free(d);
}

/* fair share between groups (VOs): the group's usage first, then the
 * user's within it */
static void test_group_share(void)
{
	struct scheduler_queued q[] = { job("a1", 1, 1, 2000), job("b1", 2, 2, 2000),
					job("b2", 3, 3, 2000) };
	struct scheduler_usage u[] = { { 1, false, 0.0 },
				       { 2, false, 5.0 },
				       { 3, false, 1.0 },
				       { 1, true, 10.0 },
				       { 2, true, 2.0 } };
	struct scheduler_node n = node2(q, 3);
	struct scheduler_decision *d;
	struct scheduler_share sa, sb;

	q[0].group = 1;
	q[1].group = q[2].group = 2;
	n.usage = u;
	n.n_usage = 5;
	d = decide(&n);
	ok(!strcmp(id_at(&n, d, 0), "b2") && !strcmp(id_at(&n, d, 1), "b1") &&
		   !strcmp(id_at(&n, d, 2), "a1"),
	   "the group that used less first, though its users used more; within it by user");
	free(d);
	u[3].usage = u[4].usage = 4.0; /* (groups tie: the users decide) */
	d = decide(&n);
	ok(!strcmp(id_at(&n, d, 0), "a1") && !strcmp(id_at(&n, d, 1), "b2"),
	   "groups with equal usage: the users' usage orders");
	free(d);
	q[0].priority = 2000; /* (priority before fair share) */
	u[3].usage = 100.0;
	d = decide(&n);
	ok(!strcmp(id_at(&n, d, 0), "a1"), "priority comes before the group's usage");
	free(d);
	q[0].priority = 0;
	sa = scheduler_share_of(u, 5, &q[1]);
	sb = scheduler_share_of(u, 5, &(struct scheduler_queued){ .uid = 9, .group = 7 });
	ok(sa.group == 4.0 && sa.user == 5.0 && sb.group == 0.0 && sb.user == 0.0,
	   "share_of: a job's group and user usage; 0 for those not listed");
}

/* a VO of three users against a VO of one, one job at a time, each run
 * charged to user and group: the VOs alternate (the bigger VO does not get
 * three starts for one), and within the bigger VO its users take turns */
static void test_group_alternation(void)
{
	struct scheduler_queued q[24];
	char ids[24][8];
	struct scheduler_usage u[6] = { { 1, false, 0 }, { 2, false, 0 }, { 3, false, 0 },
					{ 4, false, 0 }, { 1, true, 0 },  { 2, true, 0 } };
	bool done[24] = { false };
	unsigned starts[2] = { 0, 0 }, per_user[4] = { 0 };
	bool alternate = true;
	int last_group = -1;

	for (size_t i = 0; i < 24; i++) { /* VO 1: users 1-3 (6 jobs each); VO 2: user 4 */
		uint32_t uid = i < 18 ? 1 + (uint32_t)(i % 3) : 4;

		snprintf(ids[i], sizeof(ids[i]), "j%02zu", i);
		q[i] = job(ids[i], uid, i, 1000);
		q[i].group = uid < 4 ? 1 : 2;
	}
	for (unsigned round = 0; round < 12; round++) {
		struct scheduler_queued left[24];
		size_t map[24], n_left = 0, first;
		struct scheduler_node n;
		struct scheduler_decision *d;

		for (size_t i = 0; i < 24; i++)
			if (!done[i]) {
				map[n_left] = i;
				left[n_left++] = q[i];
			}
		n = node2(left, n_left);
		n.capacity.millicpus = 1000;
		n.usage = u;
		n.n_usage = 6;
		d = decide(&n);
		first = map[d[0].index];
		free(d);
		done[first] = true;
		alternate = alternate && (int)q[first].group != last_group;
		last_group = (int)q[first].group;
		starts[q[first].group - 1]++;
		per_user[q[first].uid - 1]++;
		u[q[first].uid - 1].usage += 1.0; /* (its run: user and group) */
		u[4 + q[first].group - 1].usage += 1.0;
	}
	ok(alternate && starts[0] == 6 && starts[1] == 6,
	   "a VO of three users and a VO of one alternate (6 and 6 of 12 starts)");
	ok(per_user[0] == 2 && per_user[1] == 2 && per_user[2] == 2 && per_user[3] == 6,
	   "within the VO of three each user had 2 starts; the lone user 6");
}

/* fair share: the user with less decayed usage goes first; alternation */
static void test_fair_share(void)
{
	struct scheduler_queued q[] = { job("a2", 1, 2, 2000), job("a3", 1, 3, 2000),
					job("b1", 2, 4, 2000), job("b2", 2, 5, 2000) };
	struct scheduler_usage u[] = { { 1, false, 10.0 }, { 2, false, 0.0 } };
	struct scheduler_node n = node2(q, 4);
	struct scheduler_decision *d;

	n.usage = u;
	n.n_usage = 2;
	d = decide(&n);
	ok(!strcmp(id_at(&n, d, 0), "b1"), "user with less usage first though later");
	free(d);
	/* after b1 has run as long as a1 did, earlier: a's usage decayed more */
	u[1].usage = 10.0;
	u[0].usage = scheduler_decay(10.0, 5 * S, 3600 * S);
	d = decide(&n);
	ok(!strcmp(id_at(&n, d, 0), "a2"), "then user a again (alternation)");
	free(d);
	u[0].usage = u[1].usage = 3.0;
	d = decide(&n);
	ok(!strcmp(id_at(&n, d, 0), "a2") && !strcmp(id_at(&n, d, 1), "a3"),
	   "equal usage: submission order");
	free(d);
}

static void test_formulas(void)
{
	ok(fabs(scheduler_decay(8.0, 3600 * S, 3600 * S) - 4.0) < 1e-9, "one half-life halves");
	ok(fabs(scheduler_decay(8.0, 7200 * S, 3600 * S) - 2.0) < 1e-9, "two quarter");
	ok(scheduler_decay(8.0, 7200 * S, 0) == 8.0, "half-life 0: no decay");
	ok(scheduler_charge(0, 1) == 1.0, "a job charges at least one cpu-second");
	ok(scheduler_charge(2000, 2500000) == 6.0, "2 cpus x 3 s (rounded up) = 6");
	ok(scheduler_charge(500, 10 * S) == 10.0, "half a cpu counts as one");
}

/* EASY backfill: the first blocked job's start is known from --time ends */
static void test_backfill(void)
{
	struct scheduler_running run[] = { { .req = { 1000, 0, 0 }, .end_us = NOW + 100 * S } };
	struct scheduler_queued q[] = { job("big", 1, 1, 2000), job("short", 1, 2, 1000),
					job("long", 1, 3, 1000), job("nolimit", 1, 4, 1000) };
	struct scheduler_node n = node2(q, 4);
	struct scheduler_decision *d;

	n.running = run;
	n.n_running = 1;
	q[1].time_us = 50 * S;
	q[2].time_us = 200 * S;
	d = decide(&n);
	ok(d[0].action == SCHEDULER_WAIT && d[0].est_start_us == NOW + 100 * S,
	   "the big job waits, estimated at the running job's end");
	ok(d[1].action == SCHEDULER_START && d[1].backfilled,
	   "a short job that ends before goes ahead");
	ok(d[2].action == SCHEDULER_WAIT, "a long one does not (it would delay the big one)");
	ok(d[3].action == SCHEDULER_WAIT, "nor one without --time");
	free(d);
	n.no_backfill = true;
	d = decide(&n);
	ok(d[1].action == SCHEDULER_WAIT, "backfill off: strict order");
	free(d);
}

/* backfill into what the reserved job leaves over */
static void test_backfill_extra(void)
{
	struct scheduler_running run[] = { { .req = { 2000, 0, 0 }, .end_us = NOW + 10 * S } };
	struct scheduler_queued q[] = { job("one", 1, 1, 1000), job("other", 1, 2, 0) };
	struct scheduler_node n = node2(q, 2);
	struct scheduler_decision *d;

	n.capacity.millicpus = 3000;
	n.running = run;
	n.n_running = 1;
	q[0].req.millicpus = 2000;
	d = decide(&n);
	ok(d[0].action == SCHEDULER_WAIT && d[1].action == SCHEDULER_START && d[1].backfilled,
	   "a job that fits beside the reserved one at its start goes ahead");
	free(d);
}

static void test_estimates(void)
{
	struct scheduler_running run[] = { { .req = { 2000, 0, 0 }, .end_us = NOW + 10 * S } };
	struct scheduler_queued q[] = { job("a", 1, 1, 2000), job("b", 1, 2, 2000),
					job("c", 1, 3, 2000) };
	struct scheduler_node n = node2(q, 3);
	struct scheduler_decision *d;

	n.running = run;
	n.n_running = 1;
	q[0].time_us = 20 * S;
	d = decide(&n);
	ok(d[0].est_start_us == NOW + 10 * S, "a at the running job's end");
	ok(d[1].est_start_us == NOW + 30 * S, "b after a's --time");
	ok(d[2].est_start_us == 0, "c unknown (b has no --time)");
	free(d);
}

static void test_hold(void)
{
	struct scheduler_queued q[] = { job("h", 1, 1, 1000), job("x", 1, 2, 1000) };
	struct scheduler_node n = node2(q, 2);
	struct scheduler_decision *d;

	q[0].held = true;
	d = decide(&n);
	ok(d[0].action == SCHEDULER_WAIT && strstr(d[0].reason, "held"), "held: '%s'", d[0].reason);
	ok(d[1].action == SCHEDULER_START, "a held job holds nothing back");
	free(d);
}

static void test_deps(void)
{
	struct scheduler_dep dep = { "p", SCHEDULER_DEP_OK, SCHEDULER_DEP_PENDING, NULL };
	struct scheduler_queued q[] = { job("c", 1, 1, 1000) };
	struct scheduler_node n = node2(q, 1);
	struct scheduler_decision *d;
	static const struct {
		enum scheduler_dep_mode m;
		enum scheduler_dep_state s;
		enum scheduler_action a;
	} cases[] = {
		{ SCHEDULER_DEP_OK, SCHEDULER_DEP_PENDING, SCHEDULER_WAIT },
		{ SCHEDULER_DEP_OK, SCHEDULER_DEP_SUCCEEDED, SCHEDULER_START },
		{ SCHEDULER_DEP_OK, SCHEDULER_DEP_FAILED, SCHEDULER_NEVER },
		{ SCHEDULER_DEP_FAIL, SCHEDULER_DEP_FAILED, SCHEDULER_START },
		{ SCHEDULER_DEP_FAIL, SCHEDULER_DEP_SUCCEEDED, SCHEDULER_NEVER },
		{ SCHEDULER_DEP_ANY, SCHEDULER_DEP_FAILED, SCHEDULER_START },
		{ SCHEDULER_DEP_ANY, SCHEDULER_DEP_SUCCEEDED, SCHEDULER_START },
		{ SCHEDULER_DEP_ANY, SCHEDULER_DEP_GONE, SCHEDULER_NEVER },
	};

	q[0].deps = &dep;
	q[0].n_deps = 1;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dep.mode = cases[i].m;
		dep.state = cases[i].s;
		dep.ended_as = "EXITED";
		d = decide(&n);
		ok(d[0].action == cases[i].a, "--after p:%s, dependency state %d: %s (%s)",
		   scheduler_dep_mode_to_string(cases[i].m), cases[i].s,
		   scheduler_action_to_string(d[0].action), d[0].reason);
		if (cases[i].a == SCHEDULER_NEVER)
			ok(d[0].dependency, "  marked as a dependency's");
		free(d);
	}
}

static void test_parse_dep(void)
{
	size_t len = 0;
	enum scheduler_dep_mode m = _SCHEDULER_DEP_MODE_INVALID;

	ok(scheduler_parse_dep("abc", &len, &m) == 0 && len == 3 && m == SCHEDULER_DEP_OK,
	   "JOB alone: ok");
	ok(scheduler_parse_dep("abc:fail", &len, &m) == 0 && len == 3 && m == SCHEDULER_DEP_FAIL,
	   "JOB:fail");
	ok(scheduler_parse_dep("x:any", &len, &m) == 0 && len == 1 && m == SCHEDULER_DEP_ANY,
	   "JOB:any");
	ok(scheduler_parse_dep("x:maybe", &len, &m) == -EINVAL, "unknown mode refused");
	ok(scheduler_parse_dep(":ok", &len, &m) == -EINVAL, "no job refused");
}

static void test_too_big(void)
{
	struct scheduler_queued q[] = { job("huge", 1, 1, 4000) };
	struct scheduler_node n = node2(q, 1);
	struct scheduler_decision *d = decide(&n);

	ok(d[0].action == SCHEDULER_NEVER && !d[0].dependency,
	   "larger than the node: never (runtime refuses it at submit)");
	free(d);
}

/* runtime/queue-job.c: what a queued job's record keeps survives a restart */
static void test_record(void)
{
	struct job *j = job_new(), *k = NULL;
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	_cleanup_free_ char *text = NULL;
	struct job_dep dep[2] = {
		{ strdup("0123456789abcdef"), strdup("build"), SCHEDULER_DEP_FAIL },
		{ strdup("fedcba9876543210"), strdup("fedc"), SCHEDULER_DEP_ANY }
	};

	if (!j || !g || random_job_id(j->id) < 0)
		abort();
	j->state = JOB_QUEUED;
	j->sched = (struct job_sched){ .millicpus = 1500,
				       .memory = 1ULL << 30,
				       .priority = 7,
				       .held = true,
				       .time_us = 90 * S,
				       .n_deps = 2 };
	j->sched.deps = calloc(2, sizeof(*j->sched.deps));
	memcpy(j->sched.deps, dep, sizeof(dep));
	j->sched.start_env = calloc(2, sizeof(char *));
	j->sched.start_env[0] = strdup("A=b");
	j->sched.start_cwd = strdup("/work");
	job_to_json(j, g);
	text = json_gen_take(g, false);
	ok(text && job_from_json(text, &k) == 0, "a queued job's record parses back");
	ok(k && k->state == JOB_QUEUED && k->sched.millicpus == 1500 &&
		   k->sched.memory == (1ULL << 30) && k->sched.priority == 7 && k->sched.held &&
		   k->sched.time_us == 90 * S,
	   "request, priority, hold and time limit kept");
	ok(k && k->sched.n_deps == 2 && !strcmp(k->sched.deps[0].id, "0123456789abcdef") &&
		   !strcmp(k->sched.deps[0].as, "build") &&
		   k->sched.deps[0].mode == SCHEDULER_DEP_FAIL &&
		   k->sched.deps[1].mode == SCHEDULER_DEP_ANY,
	   "dependencies kept, with their modes");
	ok(k && k->sched.start_env && !strcmp(k->sched.start_env[0], "A=b") &&
		   !k->sched.start_env[1] && k->sched.start_cwd &&
		   !strcmp(k->sched.start_cwd, "/work"),
	   "the first unit's environment and working directory kept");
	ok(job_state_from_string("DEPENDENCY_NEVER_SATISFIED") == JOB_DEPENDENCY_NEVER_SATISFIED &&
		   job_state_is_final(JOB_TIMEOUT) &&
		   job_state_is_final(JOB_DEPENDENCY_NEVER_SATISFIED),
	   "TIMEOUT and DEPENDENCY_NEVER_SATISFIED are final states");
	job_free(j);
	job_free(k);
	ok(job_from_json("{\"id\":\"0123456789abcdef\",\"state\":\"RUNNING\"}", &k) == 0 &&
		   k->sched.priority == SCHEDULER_PRIORITY_DEFAULT && k->sched.n_deps == 0,
	   "a record from before the scheduler: default priority, no request");
	job_free(k);
}

int main(void)
{
	test_admission();
	test_reason_alone();
	test_running_hold();
	test_memory_and_slots();
	test_priority();
	test_fcfs();
	test_fair_share();
	test_group_share();
	test_group_alternation();
	test_formulas();
	test_backfill();
	test_backfill_extra();
	test_estimates();
	test_hold();
	test_deps();
	test_parse_dep();
	test_too_big();
	test_record();
	return tap_done();
}
