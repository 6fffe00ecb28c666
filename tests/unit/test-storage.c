/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of checkpoint storage and of the network defaults (issue 10,
 * section 3): copies that keep holes, the node's bounds on checkpoint
 * settings, the plan of versions removed before a periodic checkpoint, the
 * config keys, the memory a dump writes (cgroup v1/v2), the route to a
 * resolver and which resolvers a bridge-mode job gets. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/ckpt-internal.h"
#include "tests/unit/tap.h"

/* ---- copies keep holes ---- */

static int write_at(int fd, off_t off, const char *s)
{
	return pwrite(fd, s, strlen(s), off) == (ssize_t)strlen(s) ? 0 : -1;
}

static int read_at(int dfd, const char *name, off_t off, char *buf, size_t len)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? pread(fd, buf, len, off) : -1;

	if (fd >= 0)
		close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static bool all_zero_at(int dfd, const char *name, off_t off, size_t len)
{
	char buf[4096];

	if (len > sizeof(buf) || read_at(dfd, name, off, buf, len) < 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (buf[i])
			return false;
	return true;
}

static void test_copy_holes(const char *base)
{
	char tmpl[256], buf[8];
	struct stat st;
	uint64_t bytes = 0;
	int src, dir, dst, fd;

	snprintf(tmpl, sizeof(tmpl), "%s/xos-test-storage.XXXXXX", base);
	if (!mkdtemp(tmpl)) {
		ok(1, "copy on %s # skip cannot make a directory there", base);
		return;
	}
	dir = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	mkdirat(dir, "src", 0755);
	src = open_dir_at(dir, "src");
	/* 1 GiB apparent, data at 0 and at 512 MiB */
	fd = openat(src, "sparse", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ok(fd >= 0 && ftruncate(fd, 1LL << 30) == 0 && write_at(fd, 0, "world") == 0 &&
		   write_at(fd, 512LL << 20, "hello") == 0,
	   "%s: a sparse file of 1 GiB with two pieces of data", base);
	close(fd);
	/* only a hole */
	fd = openat(src, "hole", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ok(fd >= 0 && ftruncate(fd, 3LL << 30) == 0, "%s: a file of 3 GiB that is all hole", base);
	close(fd);
	/* data to the end, no hole */
	fd = openat(src, "dense", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ok(fd >= 0 && write_at(fd, 0, "0123456789") == 0, "%s: a dense file", base);
	close(fd);
	fd = openat(src, "empty", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	close(fd);

	ok(copy_tree_at(dir, "src", dir, "dst", &bytes) == 0, "%s: copy_tree_at", base);
	dst = open_dir_at(dir, "dst");
	ok(fstatat(dst, "sparse", &st, 0) == 0 && st.st_size == 1LL << 30,
	   "%s: the copy has the apparent size (1 GiB)", base);
	ok(st.st_blocks <= 256, "%s: the copy takes data blocks only (%lld blocks of 512)", base,
	   (long long)st.st_blocks);
	ok(read_at(dst, "sparse", 0, buf, 5) == 0 && !memcmp(buf, "world", 5) &&
		   read_at(dst, "sparse", 512LL << 20, buf, 5) == 0 && !memcmp(buf, "hello", 5),
	   "%s: the data is where it was", base);
	ok(all_zero_at(dst, "sparse", 100LL << 20, 4096) &&
		   all_zero_at(dst, "sparse", (1LL << 30) - 4096, 4096),
	   "%s: the holes read as zeros", base);
	ok(fstatat(dst, "hole", &st, 0) == 0 && st.st_size == 3LL << 30 && st.st_blocks == 0,
	   "%s: an all-hole file copies as a hole of its size (%lld blocks)", base,
	   (long long)st.st_blocks);
	ok(fstatat(dst, "dense", &st, 0) == 0 && st.st_size == 10 &&
		   read_at(dst, "dense", 0, buf, 8) == 0 && !memcmp(buf, "01234567", 8),
	   "%s: a dense file is copied whole", base);
	ok(fstatat(dst, "empty", &st, 0) == 0 && st.st_size == 0, "%s: an empty file stays empty",
	   base);
	ok(bytes >= 20 && bytes <= (1ULL << 20),
	   "%s: the bytes copied count data, not holes (%llu)", base, (unsigned long long)bytes);
	ok(ckpt_tree_disk(dst) < (4ULL << 20), "%s: ckpt_tree_disk of the copy: %llu bytes", base,
	   (unsigned long long)ckpt_tree_disk(dst));
	close(src);
	close(dst);
	rm_rf_at(AT_FDCWD, tmpl);
	close(dir);
}

/* ---- the node's bounds on a job's checkpoint settings ---- */

static void test_policy(void)
{
	struct runtime_config cfg;
	struct job_ckpt_policy p = { 0 };
	struct job j = { 0 };
	_cleanup_xerr_ struct xerr err = XERR_INIT;

	runtime_config_init(&cfg);
	ok(cfg.checkpoint_keep_max == 100 && cfg.checkpoint_every_min_us == 60000000 &&
		   cfg.checkpoint_quota == 0 && cfg.checkpoint_quota_root == 0,
	   "defaults: keep_max 100, interval_min 1m, no quota");
	p.every_us = 30000000;
	ok(ckpt_policy_check(&cfg, 1000, &p, &err) == -EINVAL && err.msg &&
		   strstr(err.msg, "at most every 1m on this node (checkpoint_interval_min)") &&
		   strstr(err.msg, "--checkpoint-every 1m") &&
		   !strcmp(xerr_code(&err), "invalid_argument"),
	   "a user's --checkpoint-every 30s under a 1m minimum: refused (%s)", xerr_message(&err));
	xerr_clear(&err);
	ok(ckpt_policy_check(&cfg, 0, &p, &err) == 0 && !xerr_is_set(&err), "root's: accepted");
	p.every_us = 60000000;
	ok(ckpt_policy_check(&cfg, 1000, &p, &err) == 0,
	   "a user's --checkpoint-every 1m: accepted");
	p.keep = 101;
	ok(ckpt_policy_check(&cfg, 1000, &p, &err) == -EINVAL && err.msg &&
		   strstr(err.msg, "at most 100 versions") && strstr(err.msg, "--keep 100"),
	   "a user's --keep 101: refused (%s)", xerr_message(&err));
	xerr_clear(&err);
	p.keep = 100;
	ok(ckpt_policy_check(&cfg, 1000, &p, &err) == 0, "--keep 100: accepted");

	j.owner_uid = 1000;
	cfg.checkpoint_keep = 0;
	ok(ckpt_keep_of(&cfg, &j) == 100, "a user's job on a node that keeps all: keep_max");
	j.ckpt.keep = 7;
	ok(ckpt_keep_of(&cfg, &j) == 7, "--keep 7: 7");
	cfg.checkpoint_keep_max = 3;
	ok(ckpt_keep_of(&cfg, &j) == 3, "--keep 7 after the node lowered keep_max to 3: 3");
	j.owner_uid = 0;
	ok(ckpt_keep_of(&cfg, &j) == 7, "root's job: its --keep");
	j.ckpt.keep = 0;
	ok(ckpt_keep_of(&cfg, &j) == 0, "root's job on a node that keeps all: all");
	j.owner_uid = 1000;
	j.ckpt.every_us = 2000000;
	ok(ckpt_every_of(&cfg, &j) == 60000000,
	   "a user's job made with --checkpoint-every 2s before the node's 1m minimum: 1m");
	j.owner_uid = 0;
	ok(ckpt_every_of(&cfg, &j) == 2000000, "root's: 2s");
	j.ckpt.every_us = 0;
	ok(ckpt_every_of(&cfg, &j) == 0, "none stays none");
	cfg.checkpoint_quota = 5;
	cfg.checkpoint_quota_root = 0;
	ok(ckpt_quota_of(&cfg, 1000) == 5 && ckpt_quota_of(&cfg, 0) == 0,
	   "quota: users have checkpoint_quota, root none unless checkpoint_quota_root");
	runtime_config_free(&cfg);
}

/* ---- versions removed before a periodic checkpoint ---- */

static void test_prune_plan(void)
{
	uint64_t sizes[] = { 10, 20, 30, 40 };
	size_t k = 99;

	ok(ckpt_prune_plan(sizes, 4, 2, 5, 5, &k) == 0 && k == 0, "it fits: nothing goes");
	ok(ckpt_prune_plan(sizes, 4, 2, 25, 5, &k) == 0 && k == 2,
	   "keep 2: the two oldest go until it fits (%zu)", k);
	ok(ckpt_prune_plan(sizes, 4, 2, 40, 5, &k) == 0 && k == 3,
	   "keep 2 of 4: at most the three that retention removes after it (%zu)", k);
	k = 99;
	ok(ckpt_prune_plan(sizes, 4, 2, 200, 5, &k) == -ENOSPC && k == 99,
	   "not enough even then: -ENOSPC, nothing goes");
	ok(ckpt_prune_plan(sizes, 4, 0, 15, 5, &k) == -ENOSPC, "keep all: nothing may go");
	ok(ckpt_prune_plan(sizes, 4, 5, 15, 5, &k) == -ENOSPC,
	   "fewer versions than keep: none goes");
	ok(ckpt_prune_plan(sizes, 1, 1, 15, 5, &k) == -ENOSPC, "never the only (newest) version");
	ok(ckpt_prune_plan(sizes, 4, 1, 60, 5, &k) == 0 && k == 3,
	   "keep 1: every older version may go, never the newest (%zu)", k);
	ok(ckpt_prune_plan(sizes, 0, 1, 15, 5, &k) == -ENOSPC, "no version: -ENOSPC");
}

/* ---- config keys ---- */

static int load_conf(const char *text, struct runtime_config *cfg)
{
	char path[] = "/tmp/xos-test-storage-conf.XXXXXX";
	int fd = mkstemp(path), r;
	char *err = NULL;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		r = -errno;
	close(fd);
	runtime_config_init(cfg);
	r = runtime_config_load(cfg, path, &err);
	free(err);
	unlink(path);
	return r;
}

static void test_config(void)
{
	struct runtime_config c;

	ok(load_conf("checkpoint_keep_max = 3\ncheckpoint_interval_min = 30s\n"
		     "checkpoint_quota = 2G\ncheckpoint_quota_root = 10G\n"
		     "net_ip_forward = leave\n",
		     &c) == 0 &&
		   c.checkpoint_keep_max == 3 && c.checkpoint_every_min_us == 30000000 &&
		   c.checkpoint_quota == 2ULL << 30 && c.checkpoint_quota_root == 10ULL << 30 &&
		   c.net.ip_forward_leave,
	   "the new keys are read");
	runtime_config_free(&c);
	ok(load_conf("", &c) == 0 && !c.net.ip_forward_leave, "net_ip_forward defaults to auto");
	runtime_config_free(&c);
	ok(load_conf("checkpoint_keep_max = 0\n", &c) == -EINVAL, "checkpoint_keep_max 0: invalid");
	runtime_config_free(&c);
	ok(load_conf("checkpoint_keep_max = 1001\n", &c) == -EINVAL, "above 1000: invalid");
	runtime_config_free(&c);
	ok(load_conf("net_ip_forward = always\n", &c) == -EINVAL,
	   "net_ip_forward = always: invalid");
	runtime_config_free(&c);
	ok(load_conf("checkpoint_quota = lots\n", &c) == -EINVAL,
	   "checkpoint_quota = lots: invalid");
	runtime_config_free(&c);
}

/* ---- the memory a dump writes, cgroup v1 and v2 ---- */

static int fake_read(void *ud, const char *file, char *buf, size_t len)
{
	if (strcmp(file, "memory.stat"))
		return -ENOENT;
	snprintf(buf, len, "%s", (const char *)ud);
	return 0;
}

static void test_dump_memory(void)
{
	uint64_t anon = 0, shmem = 0;

	ok(runtime_cgroup_v1.dump_memory(fake_read,
					 (void *)"cache 10\nrss 5\nshmem 1\ntotal_cache 100\n"
						 "total_rss 4096\ntotal_shmem 8192\n",
					 &anon, &shmem) == 0 &&
		   anon == 4096 && shmem == 8192,
	   "v1: total_rss and total_shmem (%llu, %llu)", (unsigned long long)anon,
	   (unsigned long long)shmem);
	ok(runtime_cgroup_v2.dump_memory(fake_read,
					 (void *)"anon 12288\nfile 999\nkernel 5\nshmem 4096\n",
					 &anon, &shmem) == 0 &&
		   anon == 12288 && shmem == 4096,
	   "v2: anon and shmem (%llu, %llu)", (unsigned long long)anon, (unsigned long long)shmem);
	ok(runtime_cgroup_v2.dump_memory(fake_read, (void *)"file 1\n", &anon, &shmem) < 0,
	   "v2 without anon: an error");
}

/* ---- the route to a resolver, and the resolvers a job gets ---- */

#define ROUTES                                                                                  \
	"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" \
	"eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"                          \
	"eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"                          \
	"lan1\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n"                          \
	"lan2\t0000000A\t00000000\t0001\t0\t0\t5\t000000FF\t0\t0\t0\n"                          \
	"down\t0000A8C0\t00000000\t0000\t0\t0\t0\t0000FFFF\t0\t0\t0\n"

static void test_route(void)
{
	char ifc[NETSETUP_IFNAME_MAX + 1] = "";
	uint32_t a;

	netsetup_addr_parse("192.0.2.53", &a);
	ok(netsetup_route_iface(ROUTES, a, ifc) == 0 && !strcmp(ifc, "eth0"),
	   "192.0.2.53: the connected /24 on eth0 (%s)", ifc);
	netsetup_addr_parse("10.255.255.53", &a);
	ok(netsetup_route_iface(ROUTES, a, ifc) == 0 && !strcmp(ifc, "lan1"),
	   "10.255.255.53: the /8, lowest metric: lan1 (%s)", ifc);
	netsetup_addr_parse("198.51.100.1", &a);
	ok(netsetup_route_iface(ROUTES, a, ifc) == 0 && !strcmp(ifc, "eth0"),
	   "elsewhere: the default route (%s)", ifc);
	netsetup_addr_parse("192.168.1.1", &a);
	ok(netsetup_route_iface(ROUTES, a, ifc) == 0 && !strcmp(ifc, "eth0"),
	   "a route that is down is not taken (%s)", ifc);
	ok(netsetup_route_iface("Iface\tDestination\n", a, ifc) == -ENOENT, "no route: -ENOENT");
}

static const char *only_lan(void *ud, uint32_t a)
{
	(void)ud;
	return (a >> 24) == 10 ? NULL : "not routed";
}

static void test_resolvers(void)
{
	char dropped[16];
	const char *why = NULL;
	uint32_t pool = 0;
	char *out;

	netsetup_addr_parse("10.88.0.0", &pool);
	out = netsetup_resolv_filter("search example\nnameserver 127.0.0.53\nnameserver "
				     "192.0.2.53\nnameserver 10.1.1.1\n",
				     false, pool, 16, only_lan, NULL, dropped, &why);
	ok(out && strstr(out, "nameserver 10.1.1.1\n") && !strstr(out, "192.0.2.53") &&
		   !strstr(out, "127.0.0.53"),
	   "resolv.conf: the reachable one kept, the unreachable and loopback ones not");
	ok(!strcmp(dropped, "192.0.2.53") && why && !strcmp(why, "not routed"),
	   "the one left out and why (%s: %s)", dropped, why ? why : "-");
	free(out);
	out = netsetup_resolv_filter("192.0.2.53, 198.51.100.9 10.88.0.53", true, pool, 16,
				     only_lan, NULL, dropped, &why);
	ok(out && strstr(out, "nameserver 10.88.0.53\n") && !strstr(out, "198.51.100.9") &&
		   !strcmp(dropped, "192.0.2.53"),
	   "net_dns: a resolver in the pool (on the bridge) is kept without forwarding");
	free(out);
	out = netsetup_resolv_filter("nameserver 10.2.2.2\n", false, pool, 16, only_lan, NULL,
				     dropped, &why);
	ok(out && strstr(out, "nameserver 10.2.2.2") && !dropped[0] && !why,
	   "all reachable: nothing left out");
	free(out);
	out = netsetup_resolv_filter(NULL, false, pool, 16, only_lan, NULL, dropped, &why);
	ok(out && !strstr(out, "nameserver"), "no resolv.conf on the node: none");
	free(out);
}

static void test_format(void)
{
	char b[32];

	ckpt_format_size(512, b, sizeof(b));
	ok(!strcmp(b, "512 bytes"), "512 bytes (%s)", b);
	ckpt_format_size(64ULL << 20, b, sizeof(b));
	ok(!strcmp(b, "64.0 MiB"), "64.0 MiB (%s)", b);
	ckpt_format_size(3ULL << 30 | 1ULL << 29, b, sizeof(b));
	ok(!strcmp(b, "3.5 GiB"), "3.5 GiB (%s)", b);
}

int main(void)
{
	test_copy_holes("/tmp");
	test_copy_holes("/dev/shm");
	test_policy();
	test_prune_plan();
	test_config();
	test_dump_memory();
	test_route();
	test_resolvers();
	test_format();
	return tap_done();
}
