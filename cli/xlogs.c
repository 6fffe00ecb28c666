/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xlogs: print (or follow) a job unit's output (op "logs"). */
#include "cli/cli.h"

enum { OPT_UNIT = CLI_OPT_MAX };

static const struct option logs_options[] = {
	{ "follow", no_argument, NULL, 'f' },
	{ "unit", required_argument, NULL, OPT_UNIT },
	CLI_COMMON_OPTIONS,
	{},
};

struct logs_opts {
	bool follow;
	int unit; /* 0: the daemon's default, unit 1 */
	const char *socket;
};

static int logs_option(const char *prog, int opt, const char *arg, void *opts)
{
	struct logs_opts *o = opts;

	if (opt == OPT_UNIT)
		return cli_parse_unit(prog, arg, &o->unit);
	o->follow = true; /* -f */
	return 0;
}

static const struct cli_command logs_command = {
	.shortopts = ":f",
	.options = logs_options,
	.synopsis = "JOB",
	.help = "Print the output of a job (id, id prefix or name): stdout to stdout,\n"
		"stderr to stderr.\n"
		"\n"
		"  -f, --follow      Keep printing new output until the unit ends\n"
		"      --unit N      Show unit N of the job (default 1)\n",
	.help_end = "\n"
		    "Exit status: 0 on success, 1 on error, 2 for a usage error.\n",
	.operand = "job",
	.single = true,
	.option = logs_option,
};

int cli_xlogs_main(const char *prog, int argc, char **argv)
{
	_cleanup_cli_conn_ struct cli_conn c = CLI_CONN_INIT;
	_cleanup_cli_stream_ struct cli_stream s = { .prog = prog, .sigfd = -EBADF };
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	struct logs_opts o = {};
	enum cli_stream_end end;
	int r;

	r = cli_parse_options(prog, &logs_command, argc, argv, &o.socket, &o);
	if (r != 0)
		return r > 0 ? 0 : CLI_EXIT_USAGE;
	r = cli_request_begin("logs", &g);
	if (r >= 0)
		r = cli_gen_str(g, "job", argv[optind]);
	if (r >= 0 && o.unit > 0)
		r = cli_gen_int(g, "unit", o.unit);
	if (r >= 0)
		r = cli_gen_bool(g, "follow", o.follow);
	if (cli_request_call(prog, o.socket, g, r, &c, &resp) < 0)
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
