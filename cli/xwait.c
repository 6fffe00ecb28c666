/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xwait: wait until jobs have ended (op "wait") and exit with the exit code of
 * the last one named. */
#include <getopt.h>

#include "cli/cli.h"

enum { OPT_SOCKET = 0x100, OPT_HELP, OPT_VERSION };

static const struct option wait_options[] = {
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{},
};

static void wait_usage(const char *prog)
{
	printf("Usage: %s [OPTIONS] JOB...\n"
	       "Wait until every job named (id, id prefix or name) has ended.\n"
	       "\n"
	       "      --socket PATH Talk to xosd at PATH (default: $XOS_SOCKET, else\n"
	       "                    " XOS_DEFAULT_SOCKET ")\n"
	       "      --help        Show this help and exit\n"
	       "      --version     Show the version and exit\n"
	       "\n"
	       "Exit status: that of the last JOB, as xrun gives it: the job's own code,\n"
	       "128+N when killed by signal N, 125 when it failed or for an xos error.\n",
	       prog);
}

static int wait_parse(const char *prog, int argc, char **argv, const char **ret_socket)
{
	int opt;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", wait_options, NULL)) != -1) {
		switch (opt) {
		case OPT_SOCKET:
			*ret_socket = optarg;
			break;
		case OPT_HELP:
			wait_usage(prog);
			return 1;
		case OPT_VERSION:
			cli_print_version(prog);
			return 1;
		default:
			cli_bad_option(prog, opt, argv);
			return -EINVAL;
		}
	}
	if (optind >= argc) {
		cli_errorf(prog, "No job given");
		fprintf(stderr, "Usage: %s [OPTIONS] JOB...\n", prog);
		return -EINVAL;
	}
	return 0;
}

/* The daemon answers in the order the jobs were named. */
static int wait_exit_code(yajl_val resp)
{
	yajl_val jobs = cli_json_get(resp, "jobs");
	yajl_val last;
	int64_t code;

	if (!YAJL_IS_ARRAY(jobs) || jobs->u.array.len == 0)
		return -EBADMSG;
	last = jobs->u.array.values[jobs->u.array.len - 1];
	if (cli_json_int(last, "exit_code", &code) < 0 || code < 0 || code > 255)
		return CLI_EXIT_XOS; /* ended without a code: failed */
	return (int)code;
}

int cli_xwait_main(const char *prog, int argc, char **argv)
{
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	_cleanup_free_ char *req = NULL;
	const char *socket = NULL;
	size_t len;
	int r;

	r = wait_parse(prog, argc, argv, &socket);
	if (r != 0)
		return r > 0 ? 0 : CLI_EXIT_XOS;
	r = cli_request_begin("wait", &g);
	if (r >= 0)
		r = cli_gen_strv(g, "jobs", argv + optind);
	if (r >= 0)
		r = cli_request_end(g, &req, &len);
	if (r < 0) {
		cli_report(prog, NULL, r);
		return CLI_EXIT_XOS;
	}
	if (cli_call_once(prog, socket, req, len, &resp) < 0)
		return CLI_EXIT_XOS;
	r = wait_exit_code(resp);
	if (r < 0) {
		cli_report(prog, NULL, r);
		return CLI_EXIT_XOS;
	}
	return r;
}
