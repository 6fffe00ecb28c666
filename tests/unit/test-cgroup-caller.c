/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cgroup_parent = caller: the caller's cgroup read from /proc/PID/cgroup, the
 * Slurm step shapes accepted, the levels pruning may remove (DECISIONS (ag)). */
#include <unistd.h>

#include "common/common.h"
#include "runtime/runtime.h"
#include "tap.h"

/* what /proc/PID/cgroup says of a Slurm task on this machine (hybrid v1) */
static const char v1_task[] = "9:name=systemd:/\n"
			      "8:pids:/\n"
			      "6:freezer:/slurm_n3/uid_0/job_1/step_0\n"
			      "4:memory:/slurm_n3/uid_0/job_1/step_0/task_0\n"
			      "3:cpu,cpuacct:/slurm_n3/uid_0/job_1/step_0/task_2\n"
			      "0::/\n";

static void test_parse(void)
{
	_cleanup_free_ char *hier = NULL, *path = NULL;
	_cleanup_free_ char *h2 = NULL, *p2 = NULL;
	char *h = NULL, *p = NULL;

	ok(runtime_cgroup_caller_parse(v1_task, false, &hier, &path) == 0 &&
		   strcmp(hier, "cpu,cpuacct") == 0 &&
		   strcmp(path, "slurm_n3/uid_0/job_1/step_0/task_2") == 0,
	   "v1: the cpuacct hierarchy's path, without its leading slash");
	ok(runtime_cgroup_caller_parse(v1_task, true, &h, &p) == -ENOENT,
	   "v2 on a hybrid machine: the unified root holds nothing to nest under");
	ok(runtime_cgroup_caller_parse("0::/system.slice/slurmstepd.scope/job_4/step_0/user/"
				       "task_0\n",
				       true, &h2, &p2) == 0 &&
		   strcmp(h2, "") == 0 &&
		   strcmp(p2, "system.slice/slurmstepd.scope/job_4/step_0/user/task_0") == 0,
	   "v2: the unified hierarchy's path");
	ok(runtime_cgroup_caller_parse("3:cpuacct:/a/../b\n", false, &h, &p) == -ENOENT,
	   "a path with .. is refused");
	ok(runtime_cgroup_caller_parse("3:cpuacct:/\n", false, &h, &p) == -ENOENT,
	   "v1 root cgroup: nothing to nest under");
	ok(runtime_cgroup_caller_parse("garbage\n4:memory:/x\n", false, &h, &p) == -ENOENT,
	   "no cpuacct line: -ENOENT");
}

static void test_slurm_shape(void)
{
	ok(runtime_cgroup_is_slurm_step("slurm/uid_1000/job_7/step_0/task_0", false, 1000),
	   "v1 slurm/uid_U/job_J/step_S/task_T of uid U is a step");
	ok(runtime_cgroup_is_slurm_step("slurm_n1/uid_0/job_7/step_batch", false, 0),
	   "v1 with MULTIPLE_SLURMD (slurm_NODE), the batch step");
	ok(!runtime_cgroup_is_slurm_step("slurm/uid_1000/job_7/step_0/task_0", false, 1001),
	   "v1: another uid's step is not the caller's");
	ok(!runtime_cgroup_is_slurm_step("user.slice/uid_1000/job_7/step_0", false, 1000),
	   "v1: not below slurm or slurm_NODE");
	ok(!runtime_cgroup_is_slurm_step("x/slurm/uid_1000/job_7/step_0", false, 1000),
	   "v1: slurm must be at the hierarchy's root");
	ok(!runtime_cgroup_is_slurm_step("slurm/uid_1000/job_x/step_0", false, 1000),
	   "v1: job_ takes digits only");
	ok(runtime_cgroup_is_slurm_step("system.slice/slurmstepd.scope/job_4/step_0/user/task_0",
					true, 1000),
	   "v2: below slurmstepd.scope");
	ok(runtime_cgroup_is_slurm_step("system.slice/n1_slurmstepd.scope/job_4/step_extern", true,
					0),
	   "v2 with MULTIPLE_SLURMD (NODE_slurmstepd.scope)");
	ok(!runtime_cgroup_is_slurm_step("user.slice/x.scope/job_4/step_0", true, 0),
	   "v2: another scope is not slurmstepd's");
	ok(!runtime_cgroup_is_slurm_step("user.slice/fakeslurmstepd.scope/job_4/step_0", true, 0),
	   "v2: a scope merely ending in slurmstepd.scope is not");
}

static void test_prune_levels(void)
{
	struct runtime_cgroup_paths p = { .slurm_levels = 0 };

	ok(runtime_cgroup_paths("slurm_n1/uid_0/job_7/step_0/task_2", "xos-1", &p) == 0 &&
		   p.slurm_levels == 3 &&
		   strcmp(p.slurm, "slurm_n1/uid_0/job_7/step_0/task_2") == 0,
	   "a Slurm parent: job, step and task levels may be pruned");
	ok(runtime_cgroup_paths("xos.slice", "xos-1", &p) == 0 && p.slurm_levels == 0,
	   "another parent: none of it is pruned");
	ok(runtime_cgroup_paths(NULL, "xos-1", &p) == 0 && p.slurm_levels == 0,
	   "no parent: nothing more to prune");
}

static void test_self(void)
{
	char *parent = NULL;
	bool slurm = true;
	int r = runtime_cgroup_caller(getpid(), geteuid() + 1, false, &parent, &slurm);

	ok(r == -EPERM && !parent, "a pid that is not the caller's uid is refused (%d)", r);
	r = runtime_cgroup_caller(0, geteuid(), false, &parent, &slurm);
	ok(r < 0 && !parent, "pid 0 (a peer in no pid namespace of ours) is refused (%d)", r);
}

/* where LXC puts a container's cgroups in each hierarchy: below init's */
static void test_init_path(void)
{
	static const char init1[] = "12:cpuset:/\n"
				    "4:memory:/process_api/abc\n"
				    "3:cpu,cpuacct:/x/../y\n"
				    "1:name=systemd:/init.scope\n"
				    "0::/system.slice\n";
	char buf[64];

	runtime_cgroup_init_path(init1, "memory", buf, sizeof(buf));
	ok(!strcmp(buf, "process_api/abc"), "init's cgroup: memory:/process_api/abc (%s)", buf);
	runtime_cgroup_init_path(init1, "cpuset", buf, sizeof(buf));
	ok(!strcmp(buf, ""), "init's cgroup: the root is \"\"");
	runtime_cgroup_init_path(init1, "cpu,cpuacct", buf, sizeof(buf));
	ok(!strcmp(buf, ""), "init's cgroup: a path with .. is not taken");
	runtime_cgroup_init_path(init1, "systemd", buf, sizeof(buf));
	ok(!strcmp(buf, "init.scope"), "init's cgroup: name=systemd is the systemd hierarchy");
	runtime_cgroup_init_path(init1, NULL, buf, sizeof(buf));
	ok(!strcmp(buf, "system.slice"), "init's cgroup: pure cgroup2 (%s)", buf);
	runtime_cgroup_init_path(init1, "unified", buf, sizeof(buf));
	ok(!strcmp(buf, "system.slice"), "init's cgroup: the unified hierarchy of a hybrid");
	runtime_cgroup_init_path(init1, "pids", buf, sizeof(buf));
	ok(!strcmp(buf, ""), "init's cgroup: a hierarchy not listed");
	runtime_cgroup_init_path(init1, "memory", buf, 8);
	ok(!strcmp(buf, ""), "init's cgroup: one too long for the buffer is not cut");
	runtime_cgroup_init_path(NULL, "memory", buf, sizeof(buf));
	ok(!strcmp(buf, ""), "init's cgroup: /proc/1/cgroup unread");
	runtime_cgroup_init_path("4:memory", "memory", buf, sizeof(buf));
	ok(!strcmp(buf, ""), "init's cgroup: a line cut short");
}

int main(void)
{
	test_init_path();
	test_parse();
	test_slurm_shape();
	test_prune_levels();
	test_self();
	return tap_done();
}
