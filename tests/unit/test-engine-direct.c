/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of what the direct engine (runtime/engine-direct.c) takes of a
 * job's LXC configuration: a --net none job's keys, and nothing else (a
 * key it does not know fails the start, so a job never runs with less than
 * its configuration asks). */
#include <string.h>

#include "runtime/runtime-internal.h"
#include "tests/unit/tap.h"

/* What engine-lxc.c writes for a --net none job of the host template */
#define BASE                                                                  \
	"lxc.uts.name = 1cdf897889aa\n"                                       \
	"lxc.rootfs.path = dir:/s/volatile/jobs/1cdf897889aaccdc/rootfs\n"    \
	"lxc.rootfs.mount = /s/rootfs-mnt\n"                                  \
	"lxc.idmap = u 0 632898112 65534\n"                                   \
	"lxc.idmap = u 65534 65534 1\n"                                       \
	"lxc.idmap = g 0 632898112 65534\n"                                   \
	"lxc.net.0.type = empty\n"                                            \
	"lxc.tty.max = 0\n"                                                   \
	"lxc.pty.max = 256\n"                                                 \
	"lxc.console.path = none\n"                                           \
	"lxc.autodev = 1\n"                                                   \
	"lxc.mount.auto = proc:mixed sys:ro\n"                                \
	"lxc.mount.entry = /s/jobs/1cdf897889aaccdc/xos .xos none bind 0 0\n" \
	"lxc.mount.entry = /s/loader/2cdc .xos/loader none bind,ro 0 0\n"     \
	"lxc.log.file = /s/volatile/lxc/xos-1cdf897889aaccdc/lxc.log\n"       \
	"lxc.log.level = ERROR\n"

static void refused(const char *extra, const char *want)
{
	char text[4096], err[256] = "";
	int r;

	snprintf(text, sizeof(text), "%s%s", BASE, extra);
	r = container_direct_check(text, err, sizeof(err));
	ok(r < 0 && strstr(err, want), "refused: %.40s (%s)", extra, err);
}

int main(void)
{
	char err[256] = "";

	ok(container_direct_check(BASE, err, sizeof(err)) == 0, "a --net none job's configuration");
	ok(container_direct_check(BASE "lxc.cgroup.memory.limit_in_bytes = 67108864\n"
				       "lxc.cgroup.pids.max = 50\n",
				  err, sizeof(err)) == 0,
	   "with its limits");
	/* what it does not do: another network, sysctls, a cgroup place, an LSM */
	refused("lxc.net.0.type = veth\n", "does not take lxc.net.0.type");
	refused("lxc.sysctl.net.ipv4.ping_group_range = 1 1\n", "does not take lxc.sysctl");
	refused("lxc.cgroup.dir.container = slurm/job/xos-1\n", "does not take lxc.cgroup.dir");
	refused("lxc.apparmor.profile = unconfined\n", "does not take lxc.apparmor.profile");
	refused("lxc.mount.auto = proc:rw sys:rw\n", "does not take lxc.mount.auto");
	refused("lxc.tty.max = 4\n", "does not take lxc.tty.max");
	/* entries it would mount otherwise than asked */
	refused("lxc.mount.entry = /a /b none bind 0 0\n", "malformed lxc.mount.entry");
	refused("lxc.mount.entry = /a b tmpfs defaults 0 0\n", "malformed lxc.mount.entry");
	refused("lxc.mount.entry = /a b none bind,rw,nosuid 0 0\n", "malformed lxc.mount.entry");
	refused("lxc.mount.entry = a b none bind 0 0\n", "malformed lxc.mount.entry");
	refused("lxc.idmap = u 0 x 1\n", "malformed lxc.idmap");
	refused("lxc.cgroup.memory/../x = 1\n", "does not take");
	refused("not a line\n", "malformed line");
	ok(container_direct_check("lxc.uts.name = a\n", err, sizeof(err)) < 0 &&
		   strstr(err, "missing"),
	   "no root, no maps: refused (%s)", err);
	return tap_done();
}
