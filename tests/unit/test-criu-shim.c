/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The criu shim's answer to "criu --version" (ckpt/criu-shim.c): the CRIU it
 * stands for runs once, its answer is kept in the shim's directory and given
 * from there, and a new CRIU binary is asked again. The CRIU here is a shell
 * script that counts its runs (the shim's only part under test is its cache). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "common/common.h"
#include "tests/unit/tap.h"

static char dir[64], fake[128], count[128];

/* The shim run as "criu --version" in a child; its output (up to len - 1 bytes) and status. */
static int run_shim(char *out, size_t len)
{
	int p[2], status = -1;
	size_t n = 0;
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		char *argv[] = { (char *)"criu", (char *)"--version", NULL };

		dup2(p[1], STDOUT_FILENO);
		close(p[0]);
		fflush(stdout);
		_exit(ckpt_criu_shim(2, argv));
	}
	close(p[1]);
	for (ssize_t k; n + 1 < len && (k = read(p[0], out + n, len - 1 - n)) > 0;)
		n += (size_t)k;
	out[n] = 0;
	close(p[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int runs(void)
{
	_cleanup_free_ char *text = NULL;

	if (read_file_at(AT_FDCWD, count, 4096, &text, NULL) < 0)
		return 0;
	return (int)strlen(text);
}

static void write_fake(const char *version)
{
	FILE *f = fopen(fake, "we");

	fprintf(f,
		"#!/bin/sh\n[ \"$1\" = --version ] || exit 3\nprintf x >>%s\n"
		"printf 'Version: %s\\nGitID: v%s\\n'\n",
		count, version, version);
	fclose(f);
	chmod(fake, 0755);
}

int main(void)
{
	char out[256];
	int r;

	snprintf(dir, sizeof(dir), "/tmp/xos-test-shim.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(fake, sizeof(fake), "%s/real-criu", dir);
	snprintf(count, sizeof(count), "%s/runs", dir);
	write_fake("9.8.7");
	setenv("XOS_CRIU", fake, 1);
	setenv("XOS_CRIU_CACHE", dir, 1);

	r = run_shim(out, sizeof(out));
	ok(r == 0 && !strcmp(out, "Version: 9.8.7\nGitID: v9.8.7\n") && runs() == 1,
	   "first --version runs CRIU and passes its answer on (status %d, %d runs)", r, runs());
	r = run_shim(out, sizeof(out));
	ok(r == 0 && !strcmp(out, "Version: 9.8.7\nGitID: v9.8.7\n") && runs() == 1,
	   "the second is answered from the cache, CRIU not run again (%d runs)", runs());

	/* a new binary (another size and mtime): asked again */
	write_fake("10.0");
	r = run_shim(out, sizeof(out));
	ok(r == 0 && !strcmp(out, "Version: 10.0\nGitID: v10.0\n") && runs() == 2,
	   "a new CRIU binary is asked again (%d runs)", runs());

	/* a CRIU that fails is not cached: its status passes through */
	{
		FILE *f = fopen(fake, "we");

		fprintf(f, "#!/bin/sh\nprintf x >>%s\nexit 4\n", count);
		fclose(f);
	}
	r = run_shim(out, sizeof(out));
	ok(r == 4 && runs() == 3, "a failing CRIU's status passes through (status %d)", r);
	r = run_shim(out, sizeof(out));
	ok(r == 4 && runs() == 4, "and is not cached (%d runs)", runs());

	/* without the cache directory every --version runs CRIU */
	write_fake("9.8.7");
	unsetenv("XOS_CRIU_CACHE");
	r = run_shim(out, sizeof(out));
	ok(r == 0 && runs() == 5 && !strncmp(out, "Version: 9.8.7\n", 15),
	   "no cache directory: CRIU runs (%d runs)", runs());

	{
		pid_t pid = fork();

		if (pid == 0) {
			execl("/bin/rm", "rm", "-rf", dir, (char *)NULL);
			_exit(127);
		}
		waitpid(pid, NULL, 0);
	}
	return tap_done();
}
