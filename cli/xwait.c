/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xwait: wait until jobs have ended (op "wait") and exit with the exit code of
 * the last one named. */
#include "cli/cli.h"

static const struct option wait_options[] = {
	CLI_COMMON_OPTIONS,
	{},
};

static const struct cli_command wait_command = {
	.shortopts = ":",
	.options = wait_options,
	.synopsis = "JOB...",
	.help = "Wait until every job named (id, id prefix or name) has ended.\n"
		"\n",
	.help_end = "\n"
		    "Exit status: that of the last JOB, as xrun gives it: the job's own code,\n"
		    "128+N when killed by signal N, 125 when it failed or for an xos error,\n"
		    "or when it moved to another node (xmigrate: the message names the node).\n",
	.operand = "job",
};

/* The daemon answers in the order the jobs were named; a job that moved to
 * another node (MIGRATED) is said, with its node. */
static int wait_exit_code(const char *prog, yajl_val resp)
{
	yajl_val jobs = cli_json_get(resp, "jobs");
	yajl_val last;
	int64_t code;

	if (!YAJL_IS_ARRAY(jobs) || jobs->u.array.len == 0)
		return -EBADMSG;
	for (size_t i = 0; i < jobs->u.array.len; i++) {
		yajl_val j = jobs->u.array.values[i];
		const char *node = cli_json_string(j, "node"), *id = cli_json_string(j, "id");

		if (node)
			cli_errorf(prog, "Job %.12s moved to node %s: wait for it there",
				   id ? id : "?", node);
	}
	last = jobs->u.array.values[jobs->u.array.len - 1];
	if (cli_json_int(last, "exit_code", &code) < 0 || code < 0 || code > 255)
		return CLI_EXIT_XOS; /* ended without a code: failed */
	return (int)code;
}

int cli_xwait_main(const char *prog, int argc, char **argv)
{
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	const char *socket = NULL;
	int r;

	r = cli_parse_options(prog, &wait_command, argc, argv, &socket, NULL);
	if (r != 0)
		return r > 0 ? 0 : CLI_EXIT_XOS;
	r = cli_request_begin("wait", &g);
	if (r >= 0)
		r = cli_gen_strv(g, "jobs", argv + optind);
	if (cli_request_call(prog, socket, g, r, NULL, &resp) < 0)
		return CLI_EXIT_XOS;
	r = wait_exit_code(prog, resp);
	if (r < 0) {
		cli_report(prog, NULL, r);
		return CLI_EXIT_XOS;
	}
	return r;
}
