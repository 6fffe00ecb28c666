/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of each job's own slice of root's subordinate ids: the maps of a
 * slice and of idmapped template mounts (pure), and, as root, the lease store
 * (slice.c) and idmapped mounts (idmount.c) on scratch directories. */
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/runtime-internal.h"
#include "tests/unit/tap.h"

static void test_slice_map(void)
{
	struct runtime_idmap_entry e[8], m[8];
	uint32_t ids[] = { 1000 }, host = 0;
	size_t n = 0;

	/* slice 1 of root:1000000:1000000000 */
	ok(runtime_idmap_build(1065536, 65536, ids, 1, e, 8, &n) == 0 && n == 3,
	   "a slice with uid 1000 mapped to itself: 3 lines");
	ok(e[0].inside == 0 && e[0].outside == 1065536 && e[0].count == 1000 &&
		   e[2].inside == 1001 && e[2].outside == 1066537 && e[2].count == 64535,
	   "the slice's ids around it");
	ok(runtime_idmap_lookup(e, n, 0, &host) == 0 && host == 1065536,
	   "container root: the slice's first id");
	ok(runtime_idmap_lookup(e, n, 1000, &host) == 0 && host == 1000, "the job's uid: itself");
	ok(runtime_idmap_lookup(e, n, 65535, &host) == 0 && host == 1131071, "the slice's last id");
	ok(runtime_idmap_lookup(e, n, 65536, &host) == -ENOENT, "beyond the slice: not mapped");
	/* a template stored on the shared slice (from 1000000) */
	ok(runtime_idmap_shift(e, n, 1000000, m) == 0, "a template mount's map");
	ok(m[0].inside == 1000000 && m[0].outside == 1065536 && m[1].inside == 1001000 &&
		   m[1].outside == 1000,
	   "stored id 1000000+N shows as the job's container id N");
	ok(runtime_idmap_lookup(m, n, 1000000, &host) == 0 && host == 1065536,
	   "the template's root is the job's root");
	ok(runtime_idmap_lookup(m, n, 0, &host) == -ENOENT, "host root is not mapped through it");
	ok(runtime_idmap_shift(e, n, UINT32_MAX - 10, m) == -ERANGE, "a shift past 32 bits");
	ok(runtime_idmap_shift(e, n, 0, m) == 0 && m[0].inside == 0 && m[0].outside == 1065536,
	   "host files (shift 0): the job's own map");
}

static void test_slice_count(void)
{
	ok(runtime_idmap_slices(1000000000, 1000000000, 65536) == 15258,
	   "setup.sh's range: 15258 slices");
	ok(runtime_idmap_slices(65536, 65536, 65536) == 1, "65536 ids: the shared slice only");
	ok(runtime_idmap_slices(1000000000, 131072, 65536) == 2,
	   "the smaller of the two ranges counts");
	ok(runtime_idmap_slices(131071, 131071, 65536) == 1, "a part slice does not count");
	ok(runtime_idmap_slices(1000, 1000, 0) == 0, "no slice size: none");
}

static void test_subid(void)
{
	char path[] = "/tmp/xos-test-idmap-XXXXXX";
	int fd = mkstemp(path);
	uint32_t b = 0, s = 0;
	const char text[] = "root:100000:65536\nalice:165536:65536\nroot:1000000:1000000000\n";

	ok(fd >= 0 && write(fd, text, sizeof(text) - 1) == (ssize_t)sizeof(text) - 1, "subid file");
	close(fd);
	ok(runtime_subid_lookup(path, "root", 0, &b, &s) == 0 && b == 1000000 && s == 1000000000,
	   "root's largest range, whole");
	unlink(path);
}

static void test_config(void)
{
	struct runtime_config c;
	char path[] = "/tmp/xos-test-idmap-conf-XXXXXX";
	char *err = NULL;
	int fd = mkstemp(path);
	static const char *const bad[] = { "idmap_slice = 65535\n", "idmap_slice = 4294967296\n",
					   "idmap_slice = x\n" };

	runtime_config_init(&c);
	ok(c.idmap_slice == 65536, "idmap_slice: 65536 by default");
	ok(fd >= 0 && write(fd, "idmap_slice = 131072\n", 21) == 21, "config file");
	close(fd);
	ok(runtime_config_load(&c, path, &err) == 0 && c.idmap_slice == 131072, "idmap_slice set");
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
		ok(fd >= 0 && write(fd, bad[i], strlen(bad[i])) == (ssize_t)strlen(bad[i]),
		   "config file");
		close(fd);
		free(err);
		err = NULL;
		ok(runtime_config_load(&c, path, &err) == -EINVAL && err &&
			   strstr(err, "invalid value"),
		   "refused: %.*s", (int)strlen(bad[i]) - 1, bad[i]);
	}
	free(err);
	unlink(path);
	runtime_config_free(&c);
}

/* As root: a daemon of 4 slices (1 shared, 3 for jobs) over scratch dirs. */
struct scratch {
	char dir[64];
	struct runtime_config cfg;
	struct daemon d;
	struct job j[4];
};

static int scratch_open(struct scratch *s)
{
	char p[128];

	snprintf(s->dir, sizeof(s->dir), "/tmp/xos-test-idmap-XXXXXX");
	if (!mkdtemp(s->dir))
		return -errno;
	runtime_config_init(&s->cfg);
	snprintf(p, sizeof(p), "%s/ckpt", s->dir);
	s->cfg.checkpoint_dir = strdup(p);
	snprintf(p, sizeof(p), "%s/jobs", s->dir);
	mkdir(p, 0711);
	s->d = (struct daemon){ .cfg = &s->cfg, .idmap_fd = -EBADF };
	s->d.jobs_fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	s->d.volatile_dir = s->dir;
	s->d.subuid_base = s->d.subgid_base = 2000000;
	s->d.subuid_size = s->d.subgid_size = 65536;
	for (size_t i = 0; i < ELEMENTSOF(s->j); i++) {
		s->j[i] = (struct job){ .pidfd = -EBADF, .state = JOB_RUNNING };
		snprintf(s->j[i].id, sizeof(s->j[i].id), "%016zx", i + 1);
	}
	return slice_setup(&s->d, 4 * 65536, 4 * 65536 + 5);
}

static void scratch_close(struct scratch *s)
{
	slice_free_all(&s->d);
	close(s->d.jobs_fd);
	runtime_config_free(&s->cfg);
	(void)rm_rf_at(AT_FDCWD, s->dir);
}

static bool lease_is(struct scratch *s, const struct job *j)
{
	char name[16], *owner = NULL;
	bool r;

	snprintf(name, sizeof(name), "%u", j->idmap_base);
	r = read_file_at(s->d.idmap_fd, name, 64, &owner, NULL) >= 0 && !strcmp(owner, j->id);
	free(owner);
	return r;
}

static void test_leases(void)
{
	struct scratch s;
	struct daemon *d = &s.d;
	uint32_t seen = 0;
	int fd;

	ok(scratch_open(&s) == 0 && d->n_slices == 4, "4 slices (1 shared)");
	for (int i = 0; i < 3; i++) {
		s.j[i].next = i ? &s.j[i - 1] : NULL;
		ok(slice_claim(d, &s.j[i]) == 0 && s.j[i].slice_held && lease_is(&s, &s.j[i]),
		   "job %d: a slice, leased", i + 1);
		ok(s.j[i].idmap_base >= 2065536 && (s.j[i].idmap_base - 2000000) % 65536 == 0 &&
			   s.j[i].idmap_gid_base == s.j[i].idmap_base && s.j[i].idmap_size == 65536,
		   "job %d: slice %u, not the shared one", i + 1,
		   (s.j[i].idmap_base - 2000000) / 65536);
		seen |= 1u << ((s.j[i].idmap_base - 2000000) / 65536);
	}
	d->jobs = &s.j[2];
	ok(seen == 0xe, "three jobs, three different slices");
	ok(slice_claim(d, &s.j[3]) == -ENOSPC && !s.j[3].slice_held, "a fourth: none free");
	/* a job that ended without versions gives its slice back; its xos/ goes to root */
	mkdirat(d->jobs_fd, s.j[1].id, 0711);
	fd = open_dir_at(d->jobs_fd, s.j[1].id);
	ok(fd >= 0 && mkdirat(fd, "xos", 0700) == 0 &&
		   fchownat(fd, "xos", s.j[1].idmap_base, s.j[1].idmap_base, 0) == 0,
	   "job 2's xos/, its root's");
	s.j[1].state = JOB_EXITED;
	slice_job_check(d, &s.j[0]); /* (running: keeps it) */
	slice_job_check(d, &s.j[1]);
	ok(s.j[0].slice_held && lease_is(&s, &s.j[0]), "a running job keeps its slice");
	ok(!s.j[1].slice_held && !lease_is(&s, &s.j[1]), "an ended job's slice is free again");
	{
		struct stat st;

		ok(fstatat(fd, "xos", &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_uid == 0 &&
			   st.st_gid == 0 && (st.st_mode & 07777) == 0700,
		   "its xos/ is host root's, 0700");
	}
	close(fd);
	ok(slice_claim(d, &s.j[3]) == 0 && s.j[3].idmap_base == s.j[1].idmap_base,
	   "the freed slice is the one left for the next job");
	/* a restart: leases of unknown jobs go, lost ones come back */
	s.j[3].next = NULL;
	s.j[0].next = &s.j[3];
	d->jobs = &s.j[2]; /* 3 -> 1 -> 4 */
	unlinkat(d->idmap_fd, "2000000", 0);
	fd = openat(d->idmap_fd, "7", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ok(fd >= 0 && write(fd, "ffffffffffffffff", 16) == 16, "a stale lease");
	close(fd);
	{
		char name[16];

		snprintf(name, sizeof(name), "%u", s.j[0].idmap_base);
		unlinkat(d->idmap_fd, name, 0);
	}
	for (struct job *j = d->jobs; j; j = j->next)
		slice_adopt(d, j);
	ok(slice_reconcile(d) == 1, "the reconcile deletes the stale lease");
	ok(lease_is(&s, &s.j[0]) && lease_is(&s, &s.j[2]) && lease_is(&s, &s.j[3]),
	   "and makes the lost one again");
	ok(faccessat(d->idmap_fd, "7", F_OK, 0) < 0 && slice_free_count(d) == 0,
	   "no other lease; no slice free");
	scratch_close(&s);
}

/* The uid_map of the user namespace userns, as a child that joined it reads it. */
static int read_ns_map(int userns, char *buf, size_t len)
{
	int p[2], status = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid == 0) {
		int fd = setns(userns, CLONE_NEWUSER) == 0
				 ? open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC)
				 : -1;
		char b[512];
		ssize_t k = fd >= 0 ? read(fd, b, sizeof(b)) : -1;

		_exit(k > 0 && write(p[1], b, (size_t)k) == k ? 0 : 1);
	}
	close(p[1]);
	n = read(p[0], buf, len - 1);
	close(p[0]);
	waitpid(pid, &status, 0);
	buf[n > 0 ? n : 0] = 0;
	return n > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static void test_idmount(void)
{
	struct runtime_idmap_entry u[] = { { 0, 3000000, 1000 },
					   { 1000, 1000, 1 },
					   { 1001, 3001001, 64535 } };
	char dir[] = "/tmp/xos-test-idmount-XXXXXX", map[512], p[128];
	int ns, fd;
	struct stat st;

	ns = idmount_userns(u, ELEMENTSOF(u), u, ELEMENTSOF(u));
	ok(ns >= 0, "a user namespace for a job's map");
	ok(ns >= 0 && read_ns_map(ns, map, sizeof(map)) == 0 && strstr(map, "3000000") &&
		   strstr(map, "      1000       1000          1"),
	   "it has the map: %s", strtok(map, "\n") ? map : "");
	ok(mkdtemp(dir) != NULL, "a directory of files of host root and of uid 1000");
	snprintf(p, sizeof(p), "%s/f", dir);
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	close(fd);
	snprintf(p, sizeof(p), "%s/g", dir);
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	close(fd);
	ok(chown(p, 1000, 1000) == 0, "g is uid 1000's");
	snprintf(p, sizeof(p), "%s/h", dir);
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	close(fd);
	ok(chown(p, 70000, 70000) == 0, "h is uid 70000's (beyond the map)");
	fd = ns >= 0 ? idmount_clone(dir, ns) : -EBADF;
	ok(fd >= 0, "an idmapped clone of it");
	ok(fd >= 0 && fstatat(fd, "f", &st, 0) == 0 && st.st_uid == 3000000 && st.st_gid == 3000000,
	   "host root's file shows as the slice's root");
	ok(fd >= 0 && fstatat(fd, "g", &st, 0) == 0 && st.st_uid == 1000,
	   "uid 1000's stays uid 1000's");
	ok(fd >= 0 && fstatat(fd, "h", &st, 0) == 0 && st.st_uid == 65534,
	   "an unmapped owner shows as the overflow id");
	ok(stat(dir, &st) == 0 && st.st_uid == 0, "the directory itself is unchanged");
	if (fd >= 0)
		close(fd);
	if (ns >= 0)
		close(ns);
	for (const char *f = "fgh"; *f; f++) {
		snprintf(p, sizeof(p), "%s/%c", dir, *f);
		unlink(p);
	}
	rmdir(dir);
}

int main(void)
{
	test_slice_map();
	test_slice_count();
	test_subid();
	test_config();
	if (geteuid() == 0) {
		test_leases();
		test_idmount();
	} else {
		ok(1, "leases and idmapped mounts # skip needs root");
	}
	return tap_done();
}
