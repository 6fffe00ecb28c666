/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The CRIU that liblxc runs for a dump: xosd itself, through a link named
 * criu first on the dump's PATH, which runs the real CRIU without liblxc's
 * --freeze-cgroup. CRIU seizes a frozen cgroup's tasks with PTRACE_SEIZE; on
 * a cgroup v1 freezer (kernel 6.1 and later) a task that was already stopped
 * (SIGSTOP) never leaves the freezer to take the trap, so the seize waits
 * forever in ptrace_attach (state D) until the cgroup is thawed. Without
 * --freeze-cgroup CRIU seizes the tree from the container's init, as its own
 * zdtm runner does, stopped tasks included (they are restored stopped), and
 * the tasks are just as still: ptrace-stopped from the seize to the end. */
#include <fcntl.h>
#include <sys/stat.h>

#include "ckpt/ckpt-internal.h"

#define SHIM_ENV "XOS_CRIU"
#define SHIM_DIR "criu-shim"

bool ckpt_is_criu_shim(const char *argv0)
{
	const char *base = argv0 ? strrchr(argv0, '/') : NULL;

	base = base ? base + 1 : argv0; /* (liblxc runs "criu --version" by name) */
	return base && !strcmp(base, "criu") && getenv(SHIM_ENV);
}

size_t ckpt_criu_shim_argv(int argc, char **argv, const char *real, char **ret_args)
{
	size_t n = 0;

	ret_args[n++] = (char *)real;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--freeze-cgroup") && i + 1 < argc) {
			i++;
			continue;
		}
		if (!strncmp(argv[i], "--freeze-cgroup=", 16))
			continue;
		ret_args[n++] = argv[i];
	}
	ret_args[n] = NULL;
	return n;
}

int ckpt_criu_shim(int argc, char **argv)
{
	const char *real = getenv(SHIM_ENV);
	_cleanup_free_ char **args = calloc((size_t)argc + 1, sizeof(char *));

	if (!real || real[0] != '/' || !args) {
		fprintf(stderr, "xosd: No CRIU to run (" SHIM_ENV " is not an absolute path)\n");
		return 127;
	}
	ckpt_criu_shim_argv(argc, argv, real, args);
	unsetenv(SHIM_ENV);
	execv(real, args);
	fprintf(stderr, "xosd: Cannot run %s: %s\n", real, strerror(errno));
	return 127;
}

/* The first executable criu on PATH that is not the shim. */
static int find_criu(const char *shim_dir, char *buf, size_t len)
{
	const char *path = getenv("PATH");

	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		bool shim = n == strlen(shim_dir) && !strncmp(p, shim_dir, n);

		/* (a copy and a suffix: GCC's sanitizer build calls "%.*s" of p null) */
		if (n && p[0] == '/' && !shim && n + sizeof("/criu") <= len) {
			memcpy(buf, p, n);
			memcpy(buf + n, "/criu", sizeof("/criu"));
			if (access(buf, X_OK) == 0)
				return 0;
		}
		p += n;
		if (*p == ':')
			p++;
	}
	return -ENOENT;
}

/* In a dump's child, before liblxc runs CRIU: <run_dir>/criu-shim/criu is
 * a link to xosd, first on PATH; XOS_CRIU names the real CRIU. */
int ckpt_criu_shim_setup(struct ckpt *ck)
{
	_cleanup_close_ int run = open(ck->cfg->run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int dir = -EBADF;
	_cleanup_free_ char *path = NULL;
	char shim[4096], real[4096], tmp[64];
	int r = snprintf(shim, sizeof(shim), "%s/" SHIM_DIR, ck->cfg->run_dir);

	if (r < 0 || (size_t)r >= sizeof(shim))
		return -ENAMETOOLONG;
	if (run < 0)
		return -errno;
	if ((r = find_criu(shim, real, sizeof(real))) < 0)
		return r;
	if (mkdirat(run, SHIM_DIR, 0700) < 0 && errno != EEXIST)
		return -errno;
	dir = open_dir_at(run, SHIM_DIR);
	if (dir < 0)
		return dir;
	/* (several dumps may set it up at once: each renames its own link over) */
	snprintf(tmp, sizeof(tmp), ".criu.%d", (int)getpid());
	(void)unlinkat(dir, tmp, 0);
	if (symlinkat(ck->self_exe, dir, tmp) < 0 || renameat(dir, tmp, dir, "criu") < 0)
		return -errno;
	path = xstrdup_printf("%s:%s", shim, getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	if (!path || setenv(SHIM_ENV, real, 1) < 0 || setenv("PATH", path, 1) < 0)
		return -ENOMEM;
	return 0;
}
