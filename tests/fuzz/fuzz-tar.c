/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: template archive extraction (template_extract_all behind
 * the reader xos-template-helper opens: tar, optionally gzip, xz, lzma, bzip2
 * or zstd compressed). The input is the archive; it is extracted into a fresh
 * directory under a sandbox in /tmp (a private tmpfs when we may mount one),
 * emptied after every run. Anything that shows up in the sandbox beside that
 * directory was written outside it: that aborts, as a crash would. Inputs of
 * odd length take the component walk instead of openat2. */
#include <archive.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "templates/templates-internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char sandbox[] = "/tmp/xos-fuzz-tar.XXXXXX";
static int sandbox_fd = -EBADF;

static void sandbox_remove(void)
{
	closep(&sandbox_fd);
	if (chdir("/") == 0 && umount2(sandbox, MNT_DETACH) < 0)
		(void)template_rm_tree(AT_FDCWD, sandbox);
	(void)rmdir(sandbox);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (!mkdtemp(sandbox))
		abort();
	/* a tmpfs of our own in a mount namespace of our own: gone with us */
	if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
		(void)mount("xos-fuzz-tar", sandbox, "tmpfs", MS_NOSUID | MS_NODEV,
			    "size=64m,nr_inodes=65536,mode=0700");
	sandbox_fd = open(sandbox, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* relative escapes would land in the sandbox, where they are seen */
	if (sandbox_fd < 0 || fchdir(sandbox_fd) < 0)
		abort();
	atexit(sandbox_remove);
	return 0;
}

/* Nothing but "root" may be in the sandbox. */
static void check_sandbox(void)
{
	DIR *dir = opendir_dup(sandbox_fd);
	struct dirent *de;

	if (!dir)
		abort();
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strcmp(de->d_name, "root")) {
			fprintf(stderr, "extraction wrote outside its root: %s/%s\n", sandbox,
				de->d_name);
			abort();
		}
	closedir(dir);
}

static struct archive *reader_new(const uint8_t *data, size_t size)
{
	/* (the reader an import uses: the same formats and filters) */
	struct archive *a = template_archive_reader();

	if (!a)
		abort();
	if (archive_read_open_memory(a, data, size) != ARCHIVE_OK) {
		archive_read_free(a);
		return NULL;
	}
	return a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct template_import_opts o = {
		.uid_base = 100000, .gid_base = 100000, .id_count = 65536, .max_bytes = 16 << 20
	};
	struct template_progress p = { .total = size };
	_cleanup_free_ char *err = NULL;
	_cleanup_close_ int root = -EBADF;
	struct archive *a;

	if (mkdirat(sandbox_fd, "root", 0755) < 0 || (root = open_dir_at(sandbox_fd, "root")) < 0)
		abort();
	a = reader_new(data, size);
	if (a) {
		template_extract_force_fallback(size % 2);
		(void)template_extract_all(a, root, &o, &p, &err);
		archive_read_free(a);
	}
	closep(&root);
	check_sandbox();
	if (template_rm_tree(sandbox_fd, "root") < 0)
		abort();
	return 0;
}
