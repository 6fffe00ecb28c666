/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of common/fs.c's resolution below a directory that a container or
 * a user controls (openat_beneath, mkdirat_beneath): with openat2 and with the
 * component walk used where it is missing, on a real tree in a temporary
 * directory. */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "tests/unit/tap.h"

static char top[PATH_MAX];

/* top/root: the directory resolved below; top/outside: where links point. */
static int make_tree(void)
{
	char p[PATH_MAX + 64];
	int root;

	snprintf(top, sizeof(top), "/tmp/xos-test-fs.XXXXXX");
	if (!mkdtemp(top))
		return -1;
	snprintf(p, sizeof(p), "%s/outside", top);
	if (mkdir(p, 0755) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/root", top);
	if (mkdir(p, 0755) < 0)
		return -1;
	root = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/outside", top);
	if (mkdirat(root, "a", 0755) < 0 || mkdirat(root, "a/b", 0755) < 0 ||
	    close(openat(root, "a/b/f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0 ||
	    symlinkat(p, root, "abs") < 0 ||        /* out of the tree */
	    symlinkat("a/b", root, "rel") < 0 ||    /* inside, but a link all the same */
	    symlinkat("../..", root, "a/up") < 0 || /* climbs out */
	    symlinkat("/proc/self/cwd", root, "magic") < 0 || symlinkat("f", root, "a/b/lf") < 0)
		return -1;
	return root;
}

static bool outside_empty(void)
{
	char p[PATH_MAX + 64];

	snprintf(p, sizeof(p), "%s/outside", top);
	return rmdir(p) == 0 && mkdir(p, 0755) == 0; /* rmdir works only when empty */
}

static bool is_type(int fd, mode_t type)
{
	struct stat st;

	return fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == type;
}

static void test_open(int root, const char *how)
{
	int fd;

	fd = openat_beneath(root, "a/b/f", O_RDONLY, 0);
	ok(is_type(fd, S_IFREG), "%s: a file below the root opens", how);
	closep(&fd);
	fd = openat_beneath(root, "a//b/./f", O_RDONLY, 0);
	ok(is_type(fd, S_IFREG), "%s: repeated slashes and '.' are fine", how);
	closep(&fd);
	fd = openat_beneath(root, "a/b", O_PATH | O_DIRECTORY, 0);
	ok(is_type(fd, S_IFDIR), "%s: a directory opens O_PATH", how);
	closep(&fd);
	ok(openat_beneath(root, "abs/x", O_RDONLY, 0) == -ELOOP,
	   "%s: an absolute symlink on the way is -ELOOP", how);
	ok(openat_beneath(root, "rel/f", O_RDONLY, 0) == -ELOOP,
	   "%s: a relative symlink on the way is -ELOOP too", how);
	ok(openat_beneath(root, "a/up/outside", O_PATH, 0) == -ELOOP,
	   "%s: a link climbing out is -ELOOP", how);
	ok(openat_beneath(root, "magic/a", O_PATH, 0) == -ELOOP,
	   "%s: a link to a magic link is -ELOOP", how);
	ok(openat_beneath(root, "a/b/lf", O_RDONLY, 0) == -ELOOP, "%s: a final symlink is -ELOOP",
	   how);
	ok(openat_beneath(root, "a/b/lf", O_PATH, 0) == -ELOOP,
	   "%s: a final symlink is -ELOOP with O_PATH", how);
	fd = openat_beneath(root, "a/b/lf", O_PATH | O_NOFOLLOW, 0);
	ok(is_type(fd, S_IFLNK), "%s: O_PATH|O_NOFOLLOW opens the link itself", how);
	closep(&fd);
	ok(openat_beneath(root, "abs", O_PATH | O_DIRECTORY, 0) == -ELOOP,
	   "%s: a final symlink to a directory, O_DIRECTORY, is -ELOOP (not -ENOTDIR)", how);
	ok(openat_beneath(root, "a/b/f/x", O_RDONLY, 0) == -ENOTDIR,
	   "%s: a file on the way is -ENOTDIR", how);
	ok(openat_beneath(root, "a/../a/b/f", O_RDONLY, 0) == -EINVAL, "%s: '..' is refused", how);
	ok(openat_beneath(root, "/etc/passwd", O_RDONLY, 0) == -EINVAL,
	   "%s: an absolute path is refused", how);
	ok(openat_beneath(root, "", O_RDONLY, 0) == -EINVAL, "%s: an empty path is refused", how);
	ok(openat_beneath(root, "abs/new", O_WRONLY | O_CREAT, 0644) == -ELOOP && outside_empty(),
	   "%s: O_CREAT through a link creates nothing outside", how);
	ok(openat_beneath(root, "abs", O_WRONLY | O_CREAT, 0644) == -ELOOP,
	   "%s: O_CREAT on a final link is -ELOOP", how);
	fd = openat_beneath(root, "a/new", O_WRONLY | O_CREAT | O_EXCL, 0600);
	ok(is_type(fd, S_IFREG), "%s: O_CREAT below the root creates", how);
	closep(&fd);
	unlinkat(root, "a/new", 0);
}

static void test_mkdir(int root, const char *how)
{
	struct stat st;
	int fd;

	fd = mkdirat_beneath(root, "a/b", 0755, (uid_t)-1, (gid_t)-1);
	ok(is_type(fd, S_IFDIR), "%s: mkdirat_beneath of an existing directory opens it", how);
	closep(&fd);
	fd = mkdirat_beneath(root, "a/n1/n2", 0750, 1234, 4321);
	ok(is_type(fd, S_IFDIR), "%s: missing directories are made", how);
	closep(&fd);
	ok(fstatat(root, "a/n1/n2", &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_uid == 1234 &&
		   st.st_gid == 4321,
	   "%s: and given to the owner asked for", how);
	ok(fstatat(root, "a", &st, 0) == 0 && st.st_uid == getuid(),
	   "%s: what existed keeps its owner", how);
	ok(mkdirat_beneath(root, "abs/pwn", 0755, (uid_t)-1, (gid_t)-1) == -ELOOP &&
		   outside_empty(),
	   "%s: a symlink on the way: -ELOOP, nothing made outside", how);
	ok(mkdirat_beneath(root, "a/up/outside/pwn", 0755, (uid_t)-1, (gid_t)-1) == -ELOOP &&
		   outside_empty(),
	   "%s: a climbing link on the way: -ELOOP, nothing made outside", how);
	ok(mkdirat_beneath(root, "a/b/lf", 0755, (uid_t)-1, (gid_t)-1) == -ELOOP,
	   "%s: a final symlink is -ELOOP", how);
	ok(mkdirat_beneath(root, "a/b/f/x", 0755, (uid_t)-1, (gid_t)-1) == -ENOTDIR,
	   "%s: a file on the way is -ENOTDIR", how);
	ok(mkdirat_beneath(root, "../x", 0755, (uid_t)-1, (gid_t)-1) == -EINVAL,
	   "%s: '..' is refused", how);
	rm_rf_at(root, "a/n1");
}

/* A directory swapped for a symlink while another process makes paths below
 * it: nothing ever appears outside (the race that CVE-2021-30465 won). Runs
 * until both outcomes were seen 20 times, 3 s at most. */
static void test_race(int root, const char *how)
{
	char p[PATH_MAX + 64], c;
	uint64_t end = mono_usec() + 3000000;
	int made = 0, refused = 0, status, ready[2];
	pid_t pid;

	snprintf(p, sizeof(p), "%s/outside", top);
	if (mkdirat(root, "t", 0755) < 0 || symlinkat(p, root, "l") < 0 || pipe(ready) < 0) {
		ok(false, "%s: the race's directory and link", how);
		return;
	}
	pid = fork();
	if (pid == 0) {
		alarm(10);
		close(ready[0]);
		for (int i = 0;; i++) { /* t: a directory, a symlink, never missing */
			renameat2(root, "t", root, "l", RENAME_EXCHANGE);
			if (i == 0)
				close(ready[1]);
		}
	}
	close(ready[1]);
	(void)!read(ready[0], &c, 1); /* (EOF: it runs) */
	close(ready[0]);
	while ((made < 20 || refused < 20) && mono_usec() < end) {
		int fd = mkdirat_beneath(root, "t/x", 0755, (uid_t)-1, (gid_t)-1);

		if (fd >= 0)
			made++;
		else
			refused++;
		closep(&fd);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	ok(made >= 20 && refused >= 20, "%s: the race ran (%d made, %d refused)", how, made,
	   refused);
	ok(outside_empty(), "%s: and nothing was made outside", how);
	rm_rf_at(root, "t");
	rm_rf_at(root, "l");
}

/* The lowest free descriptor: what a leaked one would move up. */
static int lowest_free_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd >= 0)
		close(fd);
	return fd;
}

static void test_opendir_dup(int root)
{
	int file = openat(root, "opendir-dup.file", O_RDWR | O_CREAT | O_CLOEXEC, 0600), before;
	struct dirent *de;
	DIR *dir;
	bool dot = false;

	ok(file >= 0, "opendir_dup: a plain file to fail on");
	before = lowest_free_fd();
	errno = 0;
	dir = opendir_dup(file);
	ok(!dir && errno == ENOTDIR, "opendir_dup of a file fails with ENOTDIR (errno %d)", errno);
	ok(lowest_free_fd() == before, "... and leaks no descriptor (lowest free %d, was %d)",
	   lowest_free_fd(), before);
	close(file);
	(void)unlinkat(root, "opendir-dup.file", 0);
	dir = opendir_dup(root);
	ok(dir && dirfd(dir) != root, "opendir_dup of a directory: a stream on a duplicate");
	while (dir && (de = readdir(dir)))
		dot = dot || !strcmp(de->d_name, ".");
	if (dir)
		closedir(dir);
	ok(dot && fcntl(root, F_GETFD) >= 0, "it lists the directory; the caller's fd stays open");
}

/* files of /proc say size 0 and a sysctl answers only a read at offset 0:
 * read_file_at must read them whole (it once got their first byte) */
static void test_read_proc(void)
{
	_cleanup_free_ char *v = NULL, *m = NULL;
	char want[64] = "";
	int fd = open("/proc/sys/kernel/pid_max", O_RDONLY | O_CLOEXEC);
	ssize_t k = fd >= 0 ? read(fd, want, sizeof(want) - 1) : -1;
	size_t len = 0;
	int r;

	if (fd >= 0)
		close(fd);
	ok(k > 2, "pid_max read by hand: %s", want);
	r = read_file_at(AT_FDCWD, "/proc/sys/kernel/pid_max", 64, &v, &len);
	ok(r == 0 && v && !strcmp(v, want), "read_file_at reads a sysctl whole (%zu bytes: %s)",
	   len, v ? v : "(none)");
	ok(read_file_at(AT_FDCWD, "/proc/self/status", 1 << 20, &m, NULL) == 0 && m &&
		   strstr(m, "\nVmRSS:"),
	   "read_file_at reads /proc/self/status past its first page");
	free(v);
	v = NULL;
	ok(read_file_at(AT_FDCWD, "/proc/self/status", 16, &v, NULL) == -EFBIG,
	   "a size-0 file longer than max is refused with -EFBIG");
}

int main(void)
{
	int root = make_tree();

	ok(root >= 0, "a test tree in %s", top);
	if (root < 0)
		return tap_done();
	for (int walk = 0; walk < 2; walk++) {
		const char *how = walk ? "component walk" : "openat2";

		fs_beneath_force_walk(walk);
		test_open(root, how);
		test_mkdir(root, how);
		test_race(root, how);
	}
	fs_beneath_force_walk(false);
	test_opendir_dup(root);
	test_read_proc();
	close(root);
	{
		int t = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		rm_rf_at(t, top + 5);
		close(t);
	}
	return tap_done();
}
