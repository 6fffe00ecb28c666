/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xkill: send a signal to jobs (op "kill", one request per job). */
#include <signal.h>

#include "cli/cli.h"

enum { OPT_UNIT = CLI_OPT_MAX };

static const struct option kill_options[] = {
	{ "signal", required_argument, NULL, 's' },
	{ "unit", required_argument, NULL, OPT_UNIT },
	CLI_COMMON_OPTIONS,
	{},
};

struct kill_opts {
	int signal;
	int unit; /* 0: every unit */
	const char *socket;
};

static int kill_option(const char *prog, int opt, const char *arg, void *opts)
{
	struct kill_opts *o = opts;

	if (opt == OPT_UNIT)
		return cli_parse_unit(prog, arg, &o->unit);
	if (parse_signal(arg, &o->signal) < 0) { /* -s */
		cli_errorf(prog,
			   "Invalid signal '%s': use a name such as TERM or KILL, "
			   "or a number",
			   arg);
		return -EINVAL;
	}
	return 0;
}

static const struct cli_command kill_command = {
	.shortopts = ":s:",
	.options = kill_options,
	.synopsis = "JOB...",
	.help = "Send a signal to every process of the jobs named (id, id prefix or name).\n"
		"\n"
		"  -s, --signal SIG  Signal to send: a name (TERM, SIGTERM) or number\n"
		"                    (default TERM)\n"
		"      --unit N      Signal unit N only (default: every unit)\n",
	.help_end = "\n"
		    "Exit status: 0 if every job was signalled, 1 otherwise, 2 for a usage\n"
		    "error.\n",
	.operand = "job",
	.option = kill_option,
};

static int kill_one(const char *prog, const struct kill_opts *o, const char *job)
{
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	int r;

	r = cli_request_begin("kill", &g);
	if (r >= 0)
		r = cli_gen_str(g, "job", job);
	if (r >= 0)
		r = cli_gen_int(g, "signal", o->signal);
	if (r >= 0 && o->unit > 0)
		r = cli_gen_int(g, "unit", o->unit);
	return cli_request_call(prog, o->socket, g, r, NULL, &resp);
}

int cli_xkill_main(const char *prog, int argc, char **argv)
{
	struct kill_opts o = { .signal = SIGTERM };
	int r, status = 0;

	r = cli_parse_options(prog, &kill_command, argc, argv, &o.socket, &o);
	if (r != 0)
		return r > 0 ? 0 : CLI_EXIT_USAGE;
	for (int i = optind; i < argc; i++) {
		r = kill_one(prog, &o, argv[i]);
		if (r < 0)
			status = CLI_EXIT_FAILURE;
		/* A refusal concerns one job; anything else (no daemon) all of them. */
		if (r < 0 && r != -EREMOTEIO)
			break;
	}
	return status;
}
