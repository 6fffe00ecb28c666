/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the checkpoint hardening's pure parts: the dump_timeout key
 * and the command line xosd's criu shim hands the real CRIU. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "runtime/runtime-internal.h"
#include "tests/unit/tap.h"

static int load(struct runtime_config *c, const char *text, char **ret_err)
{
	char path[] = "/tmp/xos-test-ckpt-conf-XXXXXX";
	int fd = mkstemp(path), r;

	if (fd < 0)
		return -1;
	r = write(fd, text, strlen(text)) == (ssize_t)strlen(text)
		    ? runtime_config_load(c, path, ret_err)
		    : -1;
	close(fd);
	unlink(path);
	return r;
}

static void test_dump_timeout(void)
{
	struct runtime_config c;
	char *err = NULL;

	runtime_config_init(&c);
	ok(c.dump_timeout_us == 120000000, "dump_timeout defaults to 120 s");
	ok(load(&c, "dump_timeout = 2s\n", &err) == 0 && c.dump_timeout_us == 2000000,
	   "dump_timeout = 2s");
	ok(load(&c, "dump_timeout = 1500ms\n", &err) == 0 && c.dump_timeout_us == 1500000,
	   "dump_timeout = 1500ms");
	ok(load(&c, "dump_timeout = 10m\n", &err) == 0 && c.dump_timeout_us == 600000000,
	   "dump_timeout = 10m");
	free(err);
	err = NULL;
	ok(load(&c, "dump_timeout = 0\n", &err) < 0 && err && strstr(err, ":1:"),
	   "dump_timeout = 0 is refused (%s)", err ? err : "");
	free(err);
	err = NULL;
	ok(load(&c, "dump_timeout = soon\n", &err) < 0, "dump_timeout = soon is refused");
	free(err);
	runtime_config_free(&c);
}

static void test_shim_argv(void)
{
	char *argv[] = { "/run/xos/criu-shim/criu",
			 "dump",
			 "-t",
			 "42",
			 "--freeze-cgroup",
			 "/sys/fs/cgroup/freezer//lxc.payload.xos-1",
			 "--freeze-cgroup=/x",
			 "--leave-running",
			 NULL };
	char *out[9];
	size_t n = ckpt_criu_shim_argv(8, argv, "/usr/local/sbin/criu", out);

	ok(n == 5 && !strcmp(out[0], "/usr/local/sbin/criu") && !strcmp(out[1], "dump") &&
		   !strcmp(out[2], "-t") && !strcmp(out[3], "42") &&
		   !strcmp(out[4], "--leave-running") && out[5] == NULL,
	   "the shim drops --freeze-cgroup and its value, keeps the rest in order");
	{
		char *last[] = { "criu", "dump", "--freeze-cgroup", NULL };
		char *o2[4];

		ok(ckpt_criu_shim_argv(3, last, "/c", o2) == 3 &&
			   !strcmp(o2[2], "--freeze-cgroup") && !o2[3],
		   "a trailing --freeze-cgroup without a value is passed on (CRIU refuses it)");
	}
	setenv("XOS_CRIU", "/usr/local/sbin/criu", 1);
	ok(ckpt_is_criu_shim("/run/xos/criu-shim/criu") && ckpt_is_criu_shim("criu") &&
		   !ckpt_is_criu_shim("/usr/local/sbin/xosd") && !ckpt_is_criu_shim("/x/notcriu"),
	   "xosd is the shim when started as criu with XOS_CRIU set");
	unsetenv("XOS_CRIU");
	ok(!ckpt_is_criu_shim("criu"), "not without XOS_CRIU");
}

int main(void)
{
	test_dump_timeout();
	test_shim_argv();
	return tap_done();
}
