/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xos SPANK plugin: `srun --xos[=TEMPLATE] CMD` runs every task of the step
 * as an xos job (xrun), on the node's xosd. docs/SLURM.md.
 *
 * The task's argv cannot grow through SPANK, so in each task (task_init, as
 * the user, just before Slurm execs it) argv[0] becomes the helper
 * xos-spank-exec, the command's own argv[0] and the template travel in the
 * task's environment, and the helper execs `xrun [--template T] -- CMD...`.
 * With xosd's cgroup_parent = caller, the container then sits in the task's
 * cgroup. With --xos-checkpoint=DIR the helper runs the task through
 * xos-slurm-job instead (checkpoint on Slurm's signal, requeue, restore).
 * plugstack.conf arguments: exec=PATH (the helper, default
 * LIBEXECDIR/xos-spank-exec), xrun=PATH (default: xrun from PATH) and
 * job=PATH (default LIBEXECDIR/xos-slurm-job). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slurm/spank.h>

SPANK_PLUGIN(xos, 1);

#ifndef XOS_LIBEXECDIR
#define XOS_LIBEXECDIR "/usr/libexec/xos"
#endif

static int opt_xos;
static char opt_template[256];
static char opt_checkpoint[4096];
static char exec_path[4096] = XOS_LIBEXECDIR "/xos-spank-exec";
static char xrun_path[4096] = "xrun";
static char job_path[4096] = XOS_LIBEXECDIR "/xos-slurm-job";

static int template_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= sizeof(opt_template))
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-:/") ==
	       n;
}

static int xos_opt(int val, const char *optarg, int remote)
{
	(void)val;
	(void)remote;
	if (optarg && optarg[0] && !template_valid(optarg)) {
		slurm_error("xos: Invalid template name '%s': use letters, digits and _ . - : /",
			    optarg);
		return -1;
	}
	opt_xos = 1;
	snprintf(opt_template, sizeof(opt_template), "%s", optarg ? optarg : "");
	return 0;
}

static int checkpoint_opt(int val, const char *optarg, int remote)
{
	(void)val;
	(void)remote;
	if (!optarg || optarg[0] != '/' ||
	    (size_t)snprintf(opt_checkpoint, sizeof(opt_checkpoint), "%s", optarg) >=
		    sizeof(opt_checkpoint)) {
		slurm_error("xos: --xos-checkpoint needs an absolute directory that every node "
			    "sees, e.g. --xos-checkpoint=/shared/xos/$SLURM_JOB_ID");
		return -1;
	}
	opt_xos = 1;
	return 0;
}

struct spank_option spank_options[] = {
	{ "xos", "[template]",
	  "Run each task in an xos container (xrun), on the node's default "
	  "template or TEMPLATE",
	  2, 0, xos_opt },
	{ "xos-checkpoint", "dir",
	  "Run each task in an xos container that is checkpointed on Slurm's "
	  "signal (USR1, TERM), the job requeued, and restored where it runs "
	  "next; DIR (seen by every node) keeps each task's job id",
	  1, 1, checkpoint_opt },
	SPANK_OPTIONS_TABLE_END
};

static int set_path(char *dst, size_t len, const char *arg, const char *key)
{
	size_t k = strlen(key);

	if (strncmp(arg, key, k) != 0 || arg[k] != '=')
		return 0;
	if (arg[k + 1] == 0 || (size_t)snprintf(dst, len, "%s", arg + k + 1) >= len) {
		slurm_error("xos: plugstack.conf argument '%s' needs a path (shorter than %zu)",
			    arg, len);
		return -1;
	}
	return 1;
}

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	(void)sp;
	for (int i = 0; i < ac; i++) {
		int r = set_path(exec_path, sizeof(exec_path), av[i], "exec");

		if (r == 0)
			r = set_path(xrun_path, sizeof(xrun_path), av[i], "xrun");
		if (r == 0)
			r = set_path(job_path, sizeof(job_path), av[i], "job");
		if (r < 0)
			return -1;
		if (r == 0) {
			slurm_error("xos: Unknown plugstack.conf argument '%s' (known: exec=PATH, "
				    "xrun=PATH, job=PATH)",
				    av[i]);
			return -1;
		}
	}
	return 0;
}

/* In the task, as the user, just before Slurm execs it. */
int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
	int argc = 0;
	char **argv = NULL;
	char *helper;

	(void)ac;
	(void)av;
	if (!opt_xos || !spank_remote(sp))
		return 0;
	if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) != ESPANK_SUCCESS || argc < 1 || !argv ||
	    !argv[0]) {
		slurm_error("xos: Cannot read the task's command line");
		return -1;
	}
	if (spank_setenv(sp, "XOS_SPANK_ARGV0", argv[0], 1) != ESPANK_SUCCESS ||
	    spank_setenv(sp, "XOS_SPANK_TEMPLATE", opt_template, 1) != ESPANK_SUCCESS ||
	    spank_setenv(sp, "XOS_SPANK_XRUN", xrun_path, 1) != ESPANK_SUCCESS ||
	    spank_setenv(sp, "XOS_SPANK_CHECKPOINT", opt_checkpoint, 1) != ESPANK_SUCCESS ||
	    spank_setenv(sp, "XOS_SPANK_JOB", job_path, 1) != ESPANK_SUCCESS) {
		slurm_error("xos: Cannot set the task's environment");
		return -1;
	}
	helper = strdup(exec_path);
	if (!helper) {
		slurm_error("xos: Out of memory");
		return -1;
	}
	argv[0] = helper; /* Slurm execs argv[0] with argv next */
	return 0;
}
