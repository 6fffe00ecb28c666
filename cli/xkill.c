/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xkill: send a signal to jobs (op "kill", one request per job). */
#include <getopt.h>
#include <signal.h>

#include "cli/cli.h"

enum { OPT_UNIT = 0x100, OPT_SOCKET, OPT_HELP, OPT_VERSION };

static const struct option kill_options[] = {
	{ "signal", required_argument, NULL, 's' },
	{ "unit", required_argument, NULL, OPT_UNIT },
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{},
};

struct kill_opts {
	int signal;
	int unit; /* 0: every unit */
	const char *socket;
};

static void kill_usage(const char *prog)
{
	printf("Usage: %s [OPTIONS] JOB...\n"
	       "Send a signal to every process of the jobs named (id, id prefix or name).\n"
	       "\n"
	       "  -s, --signal SIG  Signal to send: a name (TERM, SIGTERM) or number\n"
	       "                    (default TERM)\n"
	       "      --unit N      Signal unit N only (default: every unit)\n"
	       "      --socket PATH Talk to xosd at PATH (default: $XOS_SOCKET, else\n"
	       "                    " XOS_DEFAULT_SOCKET ")\n"
	       "      --help        Show this help and exit\n"
	       "      --version     Show the version and exit\n"
	       "\n"
	       "Exit status: 0 if every job was signalled, 1 otherwise, 2 for a usage\n"
	       "error.\n",
	       prog);
}

static int kill_option(const char *prog, int opt, char **argv, struct kill_opts *o)
{
	switch (opt) {
	case 's':
		if (parse_signal(optarg, &o->signal) < 0) {
			cli_errorf(prog,
				   "Invalid signal '%s': use a name such as TERM or KILL, "
				   "or a number",
				   optarg);
			return -EINVAL;
		}
		return 0;
	case OPT_UNIT:
		if (parse_int(optarg, &o->unit) < 0 || o->unit < 1) {
			cli_errorf(prog, "Invalid --unit value '%s': use a unit number, 1 or more",
				   optarg);
			return -EINVAL;
		}
		return 0;
	case OPT_SOCKET:
		o->socket = optarg;
		return 0;
	case OPT_HELP:
		kill_usage(prog);
		return 1;
	case OPT_VERSION:
		cli_print_version(prog);
		return 1;
	default:
		cli_bad_option(prog, opt, argv);
		return -EINVAL;
	}
}

static int kill_parse(const char *prog, int argc, char **argv, struct kill_opts *o)
{
	int opt, r;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":s:", kill_options, NULL)) != -1) {
		r = kill_option(prog, opt, argv, o);
		if (r != 0)
			return r;
	}
	if (optind >= argc) {
		cli_errorf(prog, "No job given");
		fprintf(stderr, "Usage: %s [OPTIONS] JOB...\n", prog);
		return -EINVAL;
	}
	return 0;
}

static int kill_one(const char *prog, const struct kill_opts *o, const char *job)
{
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	_cleanup_free_ char *req = NULL;
	size_t len;
	int r;

	r = cli_request_begin("kill", &g);
	if (r >= 0)
		r = cli_gen_str(g, "job", job);
	if (r >= 0)
		r = cli_gen_int(g, "signal", o->signal);
	if (r >= 0 && o->unit > 0)
		r = cli_gen_int(g, "unit", o->unit);
	if (r >= 0)
		r = cli_request_end(g, &req, &len);
	if (r < 0) {
		cli_report(prog, NULL, r);
		return r;
	}
	return cli_call_once(prog, o->socket, req, len, &resp);
}

int cli_xkill_main(const char *prog, int argc, char **argv)
{
	struct kill_opts o = { .signal = SIGTERM };
	int r, status = 0;

	r = kill_parse(prog, argc, argv, &o);
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
