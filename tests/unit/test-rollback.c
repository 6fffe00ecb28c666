/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of runtime/rollback.c's rollback_tree: a layer made its
 * version's copy in place, on a real tree in a temporary directory (no
 * overlay: the layer's upper directory serves as its root too, which is
 * what the overlay shows of an upper-only tree). */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "runtime/runtime-internal.h"
#include "tests/unit/tap.h"

static int put(int dir, const char *name, const char *text)
{
	int fd = openat(dir, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static char *get(int dir, const char *name)
{
	static char buf[256];
	int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	if (n < 0)
		return NULL;
	buf[n] = 0;
	return buf;
}

static ino_t ino(int dir, const char *name)
{
	struct stat st;

	return fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ? 0 : st.st_ino;
}

int main(void)
{
	char top[] = "/tmp/xos-test-rollback.XXXXXX", links[256], t[64];
	int v, l, n;
	ino_t keep, changed, a, oldlink;
	struct stat st;

	if (!mkdtemp(top))
		return 1;
	v = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (v < 0 || mkdirat(v, "v", 0755) < 0 || mkdirat(v, "l", 0755) < 0)
		return 1;
	l = openat(v, "l", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	n = openat(v, "v", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(v);
	v = n;
	/* the layer as it was at the checkpoint, and its copy (links become copies) */
	if (put(l, "keep", "keep\n") < 0 || put(v, "keep", "keep\n") < 0 ||
	    put(l, "changed", "one\n") < 0 || put(v, "changed", "one\n") < 0 ||
	    put(l, "a", "linked\n") < 0 || put(v, "a", "linked\n") < 0 ||
	    put(v, "link_remap.1", "linked\n") < 0 || mkdirat(l, "d", 0755) < 0 ||
	    mkdirat(v, "d", 0755) < 0 || put(v, "d/gone", "gone\n") < 0 ||
	    symlinkat("keep", l, "s") < 0 || symlinkat("keep", v, "s") < 0 ||
	    symlinkat("a", v, "s2") < 0 || put(l, "b", "b\n") < 0 || put(v, "b", "b\n") < 0 ||
	    fchmodat(v, "b", 0600, 0) < 0)
		return 1;
	keep = ino(l, "keep"), changed = ino(l, "changed"), a = ino(l, "a");
	n = snprintf(links, sizeof(links), "%llu a%c%llu link_remap.1%c", (unsigned long long)a, 0,
		     (unsigned long long)a, 0);
	/* after it: written, made, removed, a link that is gone, a mode */
	if (put(l, "changed", "two\n") < 0 || put(l, "new", "new\n") < 0 ||
	    mkdirat(l, "newdir", 0755) < 0 || put(l, "newdir/x", "x\n") < 0 ||
	    symlinkat("changed", l, "s2") < 0 || fchmodat(l, "b", 0644, 0) < 0)
		return 1;
	oldlink = ino(l, "b");

	ok(rollback_tree(v, l, l, NULL, 0, links, (size_t)n) == 0, "the layer is rolled back");
	ok(ino(l, "keep") == keep, "an unchanged file keeps its inode");
	ok(ino(l, "changed") == changed && get(l, "changed") && !strcmp(get(l, "changed"), "one\n"),
	   "a file written after the checkpoint has its checkpoint bytes, in the same inode");
	ok(ino(l, "new") == 0 && ino(l, "newdir") == 0, "what was made after it is gone");
	ok(get(l, "d/gone") && !strcmp(get(l, "d/gone"), "gone\n"),
	   "what was removed after it is back");
	ok(ino(l, "link_remap.1") == a && ino(l, "a") == a,
	   "a name the version links to another (CRIU's link_remap) links to the same inode");
	ok(readlinkat(l, "s2", t, sizeof(t)) == 1 && t[0] == 'a', "a symlink points where it did");
	ok(ino(l, "s") != 0, "an unchanged symlink stays");
	ok(fstatat(l, "b", &st, 0) == 0 && (st.st_mode & 07777) == 0600 && st.st_ino == oldlink,
	   "a mode changed after it is the version's again, in the same inode");

	/* with a lower layer: a directory of it copied up after the checkpoint
	 * stays, emptied of what was put in it; a file of it copied up cannot be
	 * undone through an overlay (-EXDEV: the caller copies instead) */
	{
		int lo = -EBADF, l2 = -EBADF, v2 = -EBADF,
		    top2 = openat(l, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (top2 < 0 || mkdirat(top2, "lo", 0755) < 0 || mkdirat(top2, "l2", 0755) < 0 ||
		    mkdirat(top2, "v2", 0755) < 0 ||
		    (lo = openat(top2, "lo", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
		    (l2 = openat(top2, "l2", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
		    (v2 = openat(top2, "v2", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
		    mkdirat(lo, "var", 0755) < 0 || mkdirat(lo, "var/tmp", 01777) < 0 ||
		    put(lo, "lowfile", "low\n") < 0 || mkdirat(l2, "var", 0755) < 0 ||
		    mkdirat(l2, "var/tmp", 01777) < 0 || put(l2, "var/tmp/x", "x\n") < 0)
			return 1;
		ok(rollback_tree(v2, l2, l2, &lo, 1, NULL, 0) == 0 && ino(l2, "var/tmp") != 0 &&
			   ino(l2, "var/tmp/x") == 0,
		   "a lower directory copied up after the checkpoint stays, what was put in it goes");
		ok(put(l2, "lowfile", "changed\n") == 0 &&
			   rollback_tree(v2, l2, l2, &lo, 1, NULL, 0) == -EXDEV,
		   "a lower file copied up after the checkpoint: -EXDEV");
		if (unlinkat(l2, "lowfile", 0) < 0 ||
		    mknodat(l2, "lowfile", S_IFCHR | 0, makedev(0, 0)) < 0)
			skip("no mknod here", "a lower file removed after the checkpoint: -EXDEV");
		else
			ok(rollback_tree(v2, l2, l2, &lo, 1, NULL, 0) == -EXDEV,
			   "a lower file removed after the checkpoint (a whiteout): -EXDEV");
		close(lo), close(l2), close(v2), close(top2);
	}

	/* a links list that names a path out of the tree is refused */
	ok(rollback_tree(v, l, l, NULL, 0, "1 ../x", 7) == -EBADMSG,
	   "a links list with .. is refused");
	ok(rollback_tree(v, l, l, NULL, 0, "1 /x", 5) == -EBADMSG,
	   "a links list with an absolute path is refused");
	{
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
		(void)!system(cmd);
	}
	return tap_done();
}
