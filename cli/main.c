/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xos: one binary for every command. Called as xrun, xps, ... (symlinks) it is
 * that command; called as xos, its first argument names one: xos run ... */
#include <libgen.h>

#include "cli/cli.h"

struct command {
	const char *name; /* as a symlink */
	const char *verb; /* after "xos" */
	int (*main)(const char *prog, int argc, char **argv);
	const char *summary;
};

/* "xos template": the xtemplate binary next to this one (it is separate so
 * that the other commands do not load libarchive and libcrypto). */
static int exec_xtemplate(const char *prog, int argc, char **argv)
{
	char self[4096], path[4096 + 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	(void)argc;
	if (n < 0) {
		cli_errorf(prog, "Cannot find xtemplate: %s", strerror(errno));
		return CLI_EXIT_XOS;
	}
	self[n] = 0;
	snprintf(path, sizeof(path), "%s/xtemplate", dirname(self));
	argv[0] = (char *)"xtemplate";
	execv(path, argv);
	cli_errorf(prog, "Cannot run %s: %s", path, strerror(errno));
	return CLI_EXIT_XOS;
}

static const struct command commands[] = {
	{ "xrun", "run", cli_xrun_main, "Run a command as a job" },
	{ "xps", "ps", cli_xps_main, "List jobs" },
	{ "xlogs", "logs", cli_xlogs_main, "Print the output of a job" },
	{ "xwait", "wait", cli_xwait_main, "Wait until jobs have ended" },
	{ "xkill", "kill", cli_xkill_main, "Send a signal to jobs" },
	{ "xtemplate", "template", exec_xtemplate, "Manage the node's templates" },
	{ "xcheckpoint", "checkpoint", cli_xcheckpoint_main, "Checkpoint a job, list versions" },
	{ "xrestart", "restart", cli_xrestart_main, "Restart a job from a version" },
	{ "xnodes", "nodes", cli_xnodes_main, "List the peers of this node" },
	{ "xmigrate", "migrate", cli_xmigrate_main, "Move a running job to another node" },
	{ "xqueue", "queue", cli_xqueue_main, "Show the queue: order, reasons, estimated starts" },
	{ "xrelease", "release", cli_xrelease_main, "Let held jobs start" },
	{ "xacct", "acct", cli_xacct_main, "Sum jobs' accounting per VO and user" },
	{ "xvo", "vo", cli_xvo_main, "Show or tighten a VO's policy" },
	{ "xevents", "events", cli_xevents_main, "Stream job events as they happen" },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: xos COMMAND [ARG...]\n"
		   "       xos --help | --version\n"
		   "\nCommands (also installed as xrun, xps, ...):\n");
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].verb, commands[i].summary);
	fprintf(f, "\nRun 'xos COMMAND --help' for the options of a command.\n");
}

static int xos_main(int argc, char **argv)
{
	char prog[32];

	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		cli_print_version("xos");
		return 0;
	}
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		if (strcmp(argv[1], commands[i].verb) == 0 ||
		    strcmp(argv[1], commands[i].name) == 0) {
			snprintf(prog, sizeof(prog), "xos %s", commands[i].verb);
			return commands[i].main(prog, argc - 1, argv + 1);
		}
	cli_errorf("xos", "Unknown command '%s'", argv[1]);
	fprintf(stderr, "See 'xos --help'.\n");
	return CLI_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	_cleanup_free_ char *copy = NULL;
	const char *name;

	if (argc < 1 || !argv[0])
		return CLI_EXIT_USAGE;
	copy = strdup(argv[0]);
	if (!copy) {
		fputs("xos: Out of memory\n", stderr);
		return CLI_EXIT_XOS;
	}
	name = basename(copy);
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		if (strcmp(name, commands[i].name) == 0)
			return commands[i].main(commands[i].name, argc, argv);
	return xos_main(argc, argv);
}
