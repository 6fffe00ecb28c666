/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xlogs: print (or follow) a job unit's output (op "logs"). */
#include <getopt.h>

#include "cli/cli.h"

enum { OPT_UNIT = 0x100, OPT_SOCKET, OPT_HELP, OPT_VERSION };

static const struct option logs_options[] = {
	{ "follow", no_argument, NULL, 'f' },
	{ "unit", required_argument, NULL, OPT_UNIT },
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{},
};

struct logs_opts {
	bool follow;
	int unit; /* 0: the daemon's default, unit 1 */
	const char *socket;
};

static void logs_usage(const char *prog)
{
	printf("Usage: %s [OPTIONS] JOB\n"
	       "Print the output of a job (id, id prefix or name): stdout to stdout,\n"
	       "stderr to stderr.\n"
	       "\n"
	       "  -f, --follow      Keep printing new output until the unit ends\n"
	       "      --unit N      Show unit N of the job (default 1)\n"
	       "      --socket PATH Talk to xosd at PATH (default: $XOS_SOCKET, else\n"
	       "                    " XOS_DEFAULT_SOCKET ")\n"
	       "      --help        Show this help and exit\n"
	       "      --version     Show the version and exit\n"
	       "\n"
	       "Exit status: 0 on success, 1 on error, 2 for a usage error.\n",
	       prog);
}

static int logs_option(const char *prog, int opt, char **argv, struct logs_opts *o)
{
	switch (opt) {
	case 'f':
		o->follow = true;
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
		logs_usage(prog);
		return 1;
	case OPT_VERSION:
		cli_print_version(prog);
		return 1;
	default:
		cli_bad_option(prog, opt, argv);
		return -EINVAL;
	}
}

static int logs_parse(const char *prog, int argc, char **argv, struct logs_opts *o)
{
	int opt, r;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":f", logs_options, NULL)) != -1) {
		r = logs_option(prog, opt, argv, o);
		if (r != 0)
			return r;
	}
	if (argc - optind != 1) {
		cli_errorf(prog, argc == optind ? "No job given" : "Give exactly one job");
		fprintf(stderr, "Usage: %s [OPTIONS] JOB\n", prog);
		return -EINVAL;
	}
	return 0;
}

static int logs_request(const struct logs_opts *o, const char *job, char **ret, size_t *ret_len)
{
	_cleanup_gen_ yajl_gen g = NULL;
	int r;

	r = cli_request_begin("logs", &g);
	if (r >= 0)
		r = cli_gen_str(g, "job", job);
	if (r >= 0 && o->unit > 0)
		r = cli_gen_int(g, "unit", o->unit);
	if (r >= 0)
		r = cli_gen_bool(g, "follow", o->follow);
	if (r >= 0)
		r = cli_request_end(g, ret, ret_len);
	return r;
}

int cli_xlogs_main(const char *prog, int argc, char **argv)
{
	_cleanup_cli_conn_ struct cli_conn c = CLI_CONN_INIT;
	_cleanup_cli_stream_ struct cli_stream s = { .prog = prog, .sigfd = -EBADF };
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_free_ char *req = NULL;
	struct logs_opts o = {};
	enum cli_stream_end end;
	size_t len;
	int r;

	r = logs_parse(prog, argc, argv, &o);
	if (r != 0)
		return r > 0 ? 0 : CLI_EXIT_USAGE;
	r = logs_request(&o, argv[optind], &req, &len);
	if (r < 0) {
		cli_report(prog, NULL, r);
		return CLI_EXIT_FAILURE;
	}
	if (cli_open(prog, o.socket, &c) < 0 || cli_call(prog, &c, req, len, &resp) < 0)
		return CLI_EXIT_FAILURE;
	/* A reader that goes away (xlogs JOB | head) ends us by SIGPIPE, as cat. */
	r = cli_stream_run(&c, &s, &end);
	if (r < 0 && s.write_error < 0)
		cli_errorf(prog, "Failed to write the output: %s", strerror(-s.write_error));
	else if (r < 0)
		cli_report(prog, &c, r);
	if (r < 0)
		return CLI_EXIT_FAILURE;
	return 0;
}
