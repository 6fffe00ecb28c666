/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of issue 14's second part: the capacity keys' new and old names
 * (xosd.conf), preemption's choice of victims, decisions without reasons
 * (scheduler/). TAP output. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/runtime-internal.h"
#include "scheduler/scheduler.h"
#include "tests/unit/tap.h"

static int load(struct runtime_config *c, const char *text, char **err)
{
	char path[] = "/tmp/xos-test-preempt-conf-XXXXXX";
	int fd = mkstemp(path), r;

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	runtime_config_init(c);
	r = runtime_config_load(c, path, err);
	close(fd);
	unlink(path);
	return r;
}

static void test_capacity_keys(void)
{
	struct runtime_config c;
	char *err = NULL;

	ok(load(&c, "capacity_cpus = 2\ncapacity_memory = 1G\ncapacity_jobs = 3\n", &err) == 0 &&
		   c.capacity_millicpus == 2000 && c.capacity_memory == 1ULL << 30 &&
		   c.capacity_jobs == 3 && c.capacity_old_keys == 0,
	   "capacity_cpus, capacity_memory, capacity_jobs");
	runtime_config_free(&c);
	ok(load(&c, "node_cpus = 1.5\nnode_memory = 2G\nnode_jobs = 4\n", &err) == 0 &&
		   c.capacity_millicpus == 1500 && c.capacity_memory == 2ULL << 30 &&
		   c.capacity_jobs == 4 && c.capacity_old_keys == 7,
	   "the old names node_cpus, node_memory, node_jobs still set them (and are noted)");
	ok(!strcmp(runtime_capacity_old_keys[0][0], "node_cpus") &&
		   !strcmp(runtime_capacity_old_keys[0][1], "capacity_cpus"),
	   "old and new names for the warning");
	runtime_config_free(&c);
	ok(load(&c, "cpus = 2\n", &err) < 0 && err && strstr(err, "unknown key 'cpus'"),
	   "a bare 'cpus' is no key");
	free(err);
	runtime_config_free(&c);
}

#define S 1000000ULL
#define NOW (1000 * S)

static struct scheduler_running run(uint64_t mcpu, int64_t prio, bool preemptible, uint64_t work)
{
	return (struct scheduler_running){ .req = { .millicpus = mcpu },
					   .priority = prio,
					   .preemptible = preemptible,
					   .work_us = work };
}

static struct scheduler_decision *decide(const struct scheduler_running *r, size_t n_r,
					 const struct scheduler_queued *q, size_t n_q, bool lazy)
{
	struct scheduler_node n = {
		.capacity = { 4000, SCHEDULER_UNLIMITED, SCHEDULER_UNLIMITED },
		.now_us = NOW,
		.running = r,
		.n_running = n_r,
		.queue = q,
		.n_queue = n_q,
		.only_wanted_reasons = lazy,
	};
	struct scheduler_decision *d = NULL;

	if (scheduler_decide(&n, &d) < 0)
		abort();
	return d;
}

static void test_victims(void)
{
	/* a full node of 4 cpus: A and B (priority 10), C (500), D (not preemptible) */
	struct scheduler_running r[] = { run(1000, 10, true, 100 * S), run(1000, 10, true, 5 * S),
					 run(1000, 500, true, 1 * S), run(1000, 10, false, 1 * S) };
	struct scheduler_queued q = { .id = "high",
				      .priority = 2000,
				      .req = { .millicpus = 1000 } };
	struct scheduler_decision *d = decide(r, 4, &q, 1, false);

	ok(d[0].action == SCHEDULER_PREEMPT && d[0].n_victims == 1 && d[0].victims[0] == 1,
	   "one victim: the lowest priority, then the least work done (B, not A or C)");
	ok(strstr(d[0].reason, "preempting 1 job of lower priority") != NULL, "reason: %s",
	   d[0].reason);
	free(d);
	q.req.millicpus = 3000;
	d = decide(r, 4, &q, 1, false);
	ok(d[0].action == SCHEDULER_PREEMPT && d[0].n_victims == 3 && d[0].victims[0] == 1 &&
		   d[0].victims[1] == 0 && d[0].victims[2] == 2,
	   "three cpus: B, A, then C (priority 500); never D (not preemptible)");
	free(d);
	q.req.millicpus = 4000;
	d = decide(r, 4, &q, 1, false);
	ok(d[0].action == SCHEDULER_WAIT && d[0].n_victims == 0,
	   "no preemption when the victims cannot make room (D stays)");
	free(d);
	q.priority = 10;
	q.req.millicpus = 1000;
	d = decide(r, 4, &q, 1, false);
	ok(d[0].action == SCHEDULER_WAIT, "equal priority: no preemption");
	free(d);
}

static void test_fewest(void)
{
	/* X (1 cpu, priority 1) comes first, but Y (2 cpus) alone is enough */
	struct scheduler_running r[] = { run(1000, 1, true, 0), run(2000, 2, true, 0),
					 run(1000, 5000, false, 0) };
	struct scheduler_queued q = { .id = "high",
				      .priority = 2000,
				      .req = { .millicpus = 2000 } };
	struct scheduler_decision *d = decide(r, 3, &q, 1, false);

	ok(d[0].action == SCHEDULER_PREEMPT && d[0].n_victims == 1 && d[0].victims[0] == 1,
	   "victims not needed are given back: Y alone, not X and Y");
	free(d);
}

static void test_stopping(void)
{
	struct scheduler_running r[] = { run(2000, 1, true, 0), run(2000, 1, true, 0) };
	struct scheduler_queued q[] = {
		{ .id = "high", .priority = 2000, .req = { .millicpus = 2000 } },
		{ .id = "next", .priority = 2000, .submit_us = 1, .req = { .millicpus = 2000 } },
	};
	struct scheduler_decision *d;

	r[0].preemptible = false;
	r[0].stopping = true;
	d = decide(r, 2, q, 2, false);
	ok(d[0].action == SCHEDULER_WAIT && !strcmp(d[0].reason, "waiting for preempted jobs to "
								 "stop at a checkpoint"),
	   "a job stopping for it: it waits, no second victim (%s)", d[0].reason);
	ok(d[1].action == SCHEDULER_WAIT && d[1].n_victims == 0,
	   "only the first job that waits preempts");
	free(d);
}

static void test_lazy_reasons(void)
{
	struct scheduler_running r[] = { run(4000, 1, false, 0) };
	struct scheduler_queued q[] = {
		{ .id = "a", .req = { .millicpus = 1000 }, .held = true },
		{ .id = "b", .submit_us = 1, .req = { .millicpus = 1000 } },
		{ .id = "c", .submit_us = 2, .req = { .millicpus = 1000 }, .want_reason = true },
	};
	struct scheduler_decision *d = decide(r, 1, q, 3, true);

	ok(d[0].reason[0] == 0 && d[1].reason[0] == 0,
	   "only_wanted_reasons: no reason where none is wanted");
	ok(!strcmp(d[2].reason, "waiting for 1 cpu; 1 job ahead"), "the wanted one has it (%s)",
	   d[2].reason);
	ok(d[1].action == SCHEDULER_WAIT && d[2].position == 3, "decisions are the same");
	free(d);
	d = decide(r, 1, q, 3, false);
	ok(!strcmp(d[0].reason, "held (xrelease a lets it start)") &&
		   !strcmp(d[1].reason, "waiting for 1 cpu"),
	   "every reason otherwise");
	free(d);
}

static void test_sorted(void)
{
	struct scheduler_queued q[] = {
		{ .id = "b", .priority = 1, .req = { .millicpus = 1000 } },
		{ .id = "a", .priority = 9, .req = { .millicpus = 1000 } },
	};
	struct scheduler_node n = { .capacity = { 1000, SCHEDULER_UNLIMITED, SCHEDULER_UNLIMITED },
				    .queue = q,
				    .n_queue = 2,
				    .sorted = true };
	struct scheduler_decision d[2];

	ok(scheduler_decide_into(&n, d) == 0 && d[0].index == 0 && d[0].action == SCHEDULER_START &&
		   d[1].action == SCHEDULER_WAIT,
	   "sorted: the queue is taken in the order given");
	ok(scheduler_compare(&q[1], &(struct scheduler_share){ 0 }, &q[0],
			     &(struct scheduler_share){ 0 }) < 0,
	   "scheduler_compare: priority first");
}

int main(void)
{
	test_capacity_keys();
	test_victims();
	test_fewest();
	test_stopping();
	test_lazy_reasons();
	test_sorted();
	return tap_done();
}
