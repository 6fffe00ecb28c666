/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of runtime's pure logic: cgroup v1/v2 translation, id maps,
 * completion reports, the job record, the config file. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#include "loader/loader.h"
#include "runtime/runtime-internal.h"
#include "tests/unit/tap.h"

static const char *find(struct runtime_cg_item *it, int n, const char *key)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(it[i].key, key))
			return it[i].value;
	return NULL;
}

static void test_cgroup_limits(void)
{
	struct runtime_cg_item it[8];
	struct runtime_limits l = { .memory = 64 << 20, .millicpus = 500, .pids = 32 };
	int n;

	n = runtime_cgroup_v2.limits(&l, it, 8);
	ok(n == 4, "v2 gives 4 items (%d)", n);
	ok(find(it, n, "lxc.cgroup2.memory.max") &&
		   !strcmp(find(it, n, "lxc.cgroup2.memory.max"), "67108864"),
	   "v2 memory.max");
	ok(find(it, n, "lxc.cgroup2.memory.swap.max") &&
		   !strcmp(find(it, n, "lxc.cgroup2.memory.swap.max"), "0"),
	   "v2 memory.swap.max 0");
	ok(find(it, n, "lxc.cgroup2.cpu.max") &&
		   !strcmp(find(it, n, "lxc.cgroup2.cpu.max"), "50000 100000"),
	   "v2 cpu.max is quota and period");
	ok(find(it, n, "lxc.cgroup2.pids.max") &&
		   !strcmp(find(it, n, "lxc.cgroup2.pids.max"), "32"),
	   "v2 pids.max");
	n = runtime_cgroup_v1.limits(&l, it, 8);
	ok(n == 4, "v1 gives 4 items (%d)", n);
	ok(find(it, n, "lxc.cgroup.memory.limit_in_bytes") &&
		   !strcmp(find(it, n, "lxc.cgroup.memory.limit_in_bytes"), "67108864"),
	   "v1 memory.limit_in_bytes");
	ok(find(it, n, "lxc.cgroup.cpu.cfs_quota_us") &&
		   !strcmp(find(it, n, "lxc.cgroup.cpu.cfs_quota_us"), "50000"),
	   "v1 cfs_quota_us");
	ok(find(it, n, "lxc.cgroup.cpu.cfs_period_us") &&
		   !strcmp(find(it, n, "lxc.cgroup.cpu.cfs_period_us"), "100000"),
	   "v1 cfs_period_us");
	l = (struct runtime_limits){ .millicpus = 2250 };
	n = runtime_cgroup_v2.limits(&l, it, 8);
	ok(n == 1 && !strcmp(it[0].value, "225000 100000"), "v2 2.25 cpus");
	l = (struct runtime_limits){ 0 };
	ok(runtime_cgroup_v2.limits(&l, it, 8) == 0 && runtime_cgroup_v1.limits(&l, it, 8) == 0,
	   "no limits, no items");
}

static int fake_v2(void *ud, const char *file, char *buf, size_t len)
{
	const char *v = NULL;

	if (!strcmp(file, "cpu.stat"))
		v = "usage_usec 3000\nuser_usec 2000\nsystem_usec 1000\n";
	else if (!strcmp(file, "memory.peak"))
		v = "1048576\n";
	else if (!strcmp(file, "memory.events"))
		v = "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n";
	if (!v)
		return -ENOENT;
	snprintf(buf, len, "%s", v);
	return 0;
}

static int fake_v1(void *ud, const char *file, char *buf, size_t len)
{
	const char *v = NULL;

	if (!strcmp(file, "cpuacct.usage_user"))
		v = "5000000\n";
	else if (!strcmp(file, "cpuacct.usage_sys"))
		v = "7000\n";
	else if (!strcmp(file, "memory.max_usage_in_bytes"))
		v = "4096\n";
	else if (!strcmp(file, "memory.oom_control"))
		v = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
	if (!v)
		return -ENOENT;
	snprintf(buf, len, "%s", v);
	return 0;
}

static void test_cgroup_accounting(void)
{
	struct runtime_accounting a;

	runtime_cgroup_v2.accounting(fake_v2, NULL, &a);
	ok(a.cpu_user_us == 2000 && a.cpu_system_us == 1000, "v2 cpu.stat user/system");
	ok(a.memory_peak == 1048576 && a.oom_kills == 1, "v2 memory.peak and oom_kill");
	runtime_cgroup_v1.accounting(fake_v1, NULL, &a);
	ok(a.cpu_user_us == 5000 && a.cpu_system_us == 7, "v1 cpuacct ns -> us");
	ok(a.memory_peak == 4096 && a.oom_kills == 2, "v1 max_usage and oom_kill");
}

static void test_cgroup_paths(void)
{
	struct runtime_cgroup_paths p;

	ok(runtime_cgroup_paths(NULL, "xos-1", &p) == 0 &&
		   !strcmp(p.payload, "lxc.payload.xos-1") &&
		   !strcmp(p.monitor, "lxc.monitor.xos-1"),
	   "default placement is LXC's");
	ok(runtime_cgroup_paths("slurm/uid_1000/job_7", "xos-1", &p) == 0 &&
		   !strcmp(p.payload, "slurm/uid_1000/job_7/xos-1") &&
		   !strcmp(p.monitor, "slurm/uid_1000/job_7/xos-1.monitor"),
	   "placement below a parent");
	ok(runtime_cgroup_paths("../x", "xos-1", &p) < 0 &&
		   runtime_cgroup_paths("/abs", "xos-1", &p) < 0,
	   "escaping or absolute parents refused");
}

static void test_idmap(void)
{
	struct runtime_idmap_entry e[16];
	size_t n = 0;
	uint32_t ids[] = { 1000 };
	uint32_t big[] = { 65534, 200000 };

	ok(runtime_idmap_build(100000, 65536, ids, 1, e, 16, &n) == 0 && n == 3,
	   "uid 1000: 3 lines");
	ok(e[0].inside == 0 && e[0].outside == 100000 && e[0].count == 1000, "root range below");
	ok(e[1].inside == 1000 && e[1].outside == 1000 && e[1].count == 1, "uid maps to itself");
	ok(e[2].inside == 1001 && e[2].outside == 101001 && e[2].count == 64535, "range above");
	ok(runtime_idmap_build(100000, 65536, big, 2, e, 16, &n) == 0 && n == 4,
	   "nobody and a uid beyond the range");
	ok(e[3].inside == 200000 && e[3].outside == 200000, "id beyond the range maps to itself");
	ids[0] = 100005;
	ok(runtime_idmap_build(100000, 65536, ids, 1, e, 16, &n) == -ERANGE,
	   "id inside the host range is refused");
	ids[0] = 0;
	ok(runtime_idmap_build(100000, 65536, ids, 1, e, 16, &n) == -ERANGE, "uid 0 is refused");
}

static void test_subid(void)
{
	char path[] = "/tmp/xos-test-subid-XXXXXX";
	int fd = mkstemp(path);
	uint32_t b = 0, s = 0;
	const char text[] = "alice:200000:65536\nbroken line\nroot:300000:1000000\n";

	ok(fd >= 0 && write(fd, text, sizeof(text) - 1) == (ssize_t)sizeof(text) - 1, "subid file");
	close(fd);
	ok(runtime_subid_lookup(path, "root", 0, &b, &s) == 0 && b == 300000 && s == 1000000,
	   "root's range, all of it (jobs get slices of it)");
	ok(runtime_subid_lookup(path, "bob", 1001, &b, &s) == -ENOENT, "no range for bob");
	unlink(path);
}

/* A valid report with one line replaced (key=value, or "" to drop it). */
static int parse_with(const char *key, const char *line)
{
	static const char *const lines[] = { "job=0123456789abcdef",
					     "unit=1",
					     "state=exited",
					     "code=0",
					     "signal=0",
					     "reason=",
					     "utime_us=0",
					     "stime_us=0",
					     "maxrss_kb=0",
					     "started_us=1",
					     "ended_us=2",
					     "remaining=0" };
	struct loader_status st;
	char text[1024] = "";

	for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
		const char *l = str_has_prefix(lines[i], key) ? line : lines[i];

		if (*l) {
			strncat(text, l, sizeof(text) - strlen(text) - 2);
			strncat(text, "\n", 2);
		}
	}
	return loader_status_parse(text, strlen(text), &st);
}

static void test_status(void)
{
	const char good[] = "job=0123456789abcdef\nunit=2\nstate=killed\ncode=0\nsignal=9\n"
			    "reason=\nutime_us=10\nstime_us=20\nmaxrss_kb=30\nstarted_us=1\n"
			    "ended_us=2\nremaining=0\n";
	struct loader_status st;
	struct job *j = job_new();

	ok(loader_status_parse(good, sizeof(good) - 1, &st) == 0, "valid status parses");
	ok(st.unit == 2 && st.state == LOADER_STATE_KILLED && st.signal == 9 && st.maxrss_kb == 30,
	   "status fields");
	job_add_unit(j, strv_copy((char *[]){ "a", NULL }));
	job_add_unit(j, strv_copy((char *[]){ "b", NULL }));
	ok(j && job_record_status(j, &st) && j->units[1].state == UNIT_KILLED &&
		   unit_exit_code(j->units[1].state, j->units[1].code, j->units[1].sig) == 137,
	   "killed by 9 is recorded and gives 137");
	job_free(j);
	ok(unit_exit_code(UNIT_EXITED, 7, 0) == 7 && unit_exit_code(UNIT_FAILED, 0, 0) == 125,
	   "exit codes of exited and failed units");
	ok(parse_with("unit=", "unit=1") == 0, "the report the tests vary parses");
	ok(parse_with("job=", "job=xyz") < 0, "bad job id refused");
	ok(parse_with("remaining=", "remaining=0\nbogus=1") < 0, "unknown key refused");
	ok(parse_with("unit=", "") < 0, "missing unit refused");
	ok(parse_with("code=", "code=300") < 0, "code out of range refused");
}

static void test_job_roundtrip(void)
{
	struct job *j = job_new(), *k = NULL;
	yajl_gen g = yajl_gen_alloc(NULL);
	char *text;
	struct loader_status st = {
		.job = "0123456789abcdef", .unit = 1, .state = LOADER_STATE_EXITED, .code = 7
	};

	memcpy(j->id, "0123456789abcdef", 17);
	j->state = JOB_RUNNING;
	j->user = strdup("nobody");
	j->limits.memory = 1 << 26;
	job_add_unit(j, strv_copy((char *[]){ "sh", "-c", "exit 7", NULL }));
	ok(job_record_status(j, &st), "status recorded");
	ok(!job_record_status(j, &st), "duplicate status ignored");
	job_finish(j);
	ok(j->state == JOB_EXITED && job_exit_code(j) == 7, "job exited 7");
	job_to_json(j, g);
	text = json_gen_take(g, false);
	ok(job_from_json(text, &k) == 0, "job.json parses back");
	ok(k && k->state == JOB_EXITED && k->n_units == 1 && k->units[0].code == 7 &&
		   !strcmp(k->units[0].argv[2], "exit 7") && k->limits.memory == 1 << 26,
	   "round trip keeps state, units and limits");
	{
		struct job *bad = NULL;
		ok(job_from_json("{\"id\":\"../x\",\"state\":\"RUNNING\"}", &bad) < 0,
		   "bad id refused");
	}
	free(text);
	yajl_gen_free(g);
	job_free(j);
	job_free(k);
}

static void test_config(void)
{
	char path[] = "/tmp/xos-test-conf-XXXXXX";
	int fd = mkstemp(path);
	struct runtime_config c;
	char *err = NULL;
	const char good[] = "# comment\nstate_dir = /srv/xos\nlayer_size = 2G\ndefault_cpus=1.5\n";
	const char bad[] = "state_dir = /srv/xos\nbogus = 1\n";

	runtime_config_init(&c);
	ok(write(fd, good, sizeof(good) - 1) > 0, "config written");
	ok(runtime_config_load(&c, path, &err) == 0, "config parses");
	ok(c.state_dir && !strcmp(c.state_dir, "/srv/xos") && c.layer_size == 2ULL << 30 &&
		   c.default_millicpus == 1500,
	   "config values");
	ok(c.checkpoint_bridge == CKPT_BRIDGE_AUTO, "checkpoint_bridge defaults to auto");
	/* a node keeps two prepared containers unless told otherwise (DECISIONS (bj)) */
	ok(c.pool_size == 2, "pool_size defaults to 2 (%llu)", (unsigned long long)c.pool_size);
	ok(ckpt_bridge_from_string("auto") == CKPT_BRIDGE_AUTO &&
		   ckpt_bridge_from_string("true") == CKPT_BRIDGE_YES &&
		   ckpt_bridge_from_string("no") == CKPT_BRIDGE_NO &&
		   ckpt_bridge_from_string("maybe") == _CKPT_BRIDGE_INVALID &&
		   !strcmp(ckpt_bridge_to_string(CKPT_BRIDGE_AUTO), "auto") &&
		   !ckpt_bridge_to_string(_CKPT_BRIDGE_MAX),
	   "checkpoint_bridge values");
	ok(ftruncate(fd, 0) == 0 && pwrite(fd, bad, sizeof(bad) - 1, 0) > 0, "bad config written");
	ok(runtime_config_load(&c, path, &err) < 0 && err && strstr(err, ":2: unknown key 'bogus'"),
	   "error names line 2 (%s)", err ? err : "");
	free(err);
	close(fd);
	unlink(path);
	runtime_config_free(&c);
}

static void test_common_parsers(void)
{
	uint64_t v;
	int s;

	ok(parse_size("64M", &v) == 0 && v == 64ULL << 20, "64M");
	ok(parse_size("12Q", &v) < 0, "12Q refused");
	ok(parse_size("-1", &v) < 0 && parse_size("", &v) < 0, "negative/empty refused");
	ok(parse_cpus("0.5", &v) == 0 && v == 500, "0.5 cpus");
	ok(parse_cpus("2", &v) == 0 && v == 2000, "2 cpus");
	ok(parse_cpus("0", &v) < 0 && parse_cpus("abc", &v) < 0 && parse_cpus("0.0001", &v) < 0,
	   "bad cpus refused");
	ok(parse_signal("KILL", &s) == 0 && s == 9 && parse_signal("SIGTERM", &s) == 0 && s == 15,
	   "signal names");
	ok(parse_signal("99", &s) < 0 && parse_signal("FOO", &s) < 0, "bad signals refused");
	ok(job_name_valid("web-1.a") && !job_name_valid("-x") && !job_name_valid("a/b"),
	   "job names");
}

/* Run /bin/sh -c script with stdout on the report pipe; its output and status. */
static int run_sh(const char *script, uint64_t timeout_us, char *out, size_t len, int *status)
{
	char *argv[] = { (char *)"sh", (char *)"-c", (char *)script, NULL };
	struct spawn_opts o = { .path = "/bin/sh",
				.argv = argv,
				.fds = { -EBADF, SPAWN_REPORT },
				.n_fds = 2,
				.flags = SPAWN_SETSID };
	int rd = -EBADF, r;
	size_t n = 0;
	pid_t pid;

	r = spawn_program(&o, &pid, &rd);
	if (r < 0)
		return r;
	r = spawn_wait(pid, timeout_us, status);
	for (ssize_t k; n < len - 1 && (k = read(rd, out + n, len - 1 - n)) > 0;)
		n += (size_t)k;
	out[n] = '\0';
	close(rd);
	return r;
}

static void test_spawn(void)
{
	char out[256];
	int status = 0,
	    leak = open("/dev/null", O_RDONLY); /* no CLOEXEC: must not reach the child */

	ok(run_sh("echo hi; exit 3", 5000000, out, sizeof(out), &status) == 0 &&
		   !strcmp(out, "hi\n") && WIFEXITED(status) && WEXITSTATUS(status) == 3,
	   "spawn: output on the report pipe, exit status 3 (%s)", out);
	ok(run_sh("ls /proc/self/fd | tr '\\n' ' '", 5000000, out, sizeof(out), &status) == 0 &&
		   !strcmp(out, "0 1 "),
	   "spawn: only the placed fds, nothing inherited above them (ls sees its dir as 0: %s)",
	   out);
	ok(run_sh("cat <&0 2>/dev/null && echo open || echo closed", 5000000, out, sizeof(out),
		  &status) == 0 &&
		   !strcmp(out, "closed\n"),
	   "spawn: an -EBADF slot is closed (%s)", out);
	ok(run_sh("sleep 5 & sleep 5", 100000, out, sizeof(out), &status) == -ETIME &&
		   WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	   "spawn: past its time limit the child is killed, with its process group");
	close(leak);
}

int main(void)
{
	test_cgroup_limits();
	test_cgroup_accounting();
	test_cgroup_paths();
	test_idmap();
	test_subid();
	test_status();
	test_job_roundtrip();
	test_config();
	test_common_parsers();
	test_spawn();
	return tap_done();
}
