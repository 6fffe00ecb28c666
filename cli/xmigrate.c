/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xmigrate: move a running job to another node (op "migrate"), stop and
 * copy; the answer comes when the job runs there, or the move failed and it
 * runs on here (docs/MIGRATION.md). */
#include <inttypes.h>

#include "cli/cli.h"

enum { OPT_JSON = CLI_OPT_MAX };

static const struct option migrate_options[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	CLI_COMMON_OPTIONS,
	{},
};

struct migrate_opts {
	bool json;
	const char *socket;
};

static int migrate_option(_unused_ const char *prog, int opt, _unused_ const char *arg, void *opts)
{
	((struct migrate_opts *)opts)->json = true; /* --json, the only one */
	return 0;
}

static const struct cli_command migrate_command = {
	.shortopts = ":",
	.options = migrate_options,
	.synopsis = "JOB NODE",
	.help = "Move a running job to NODE, a peer on the node channel (see xnodes): the\n"
		"node checks that it can run the job (capacity, template, owner account,\n"
		"volumes, CPU), then the job is checkpointed, its version sent over the\n"
		"channel and restored there under the same id. The job stays here, stopped,\n"
		"until NODE reports it running; if the move fails it runs on here.\n"
		"\n"
		"      --json        Print the figures of the move as JSON\n",
	.help_end = "\n"
		    "Exit status: 0 when the job runs on NODE, 1 when it was not moved (it\n"
		    "runs on here, or the message says where it is), 2 for a usage error.\n",
	.operand = "job",
	.option = migrate_option,
};

static double ms_of(yajl_val o, const char *k)
{
	int64_t v = 0;

	(void)cli_json_int(o, k, &v);
	return (double)v / 1000.0;
}

int cli_xmigrate_main(const char *prog, int argc, char **argv)
{
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	struct migrate_opts o = { 0 };
	char size[32] = "?";
	int64_t bytes = 0;
	int r;

	r = cli_parse_options(prog, &migrate_command, argc, argv, &o.socket, &o);
	if (r != 0)
		return r > 0 ? 0 : CLI_EXIT_USAGE;
	if (argc - optind != 2) {
		cli_errorf(prog, "Give a job and a node (see xmigrate --help)");
		return CLI_EXIT_USAGE;
	}
	if (!o.json && isatty(STDERR_FILENO))
		fprintf(stderr, "Moving job %s to node %s...\n", argv[optind], argv[optind + 1]);
	r = cli_request_begin("migrate", &g);
	if (r >= 0)
		r = cli_gen_str(g, "job", argv[optind]);
	if (r >= 0)
		r = cli_gen_str(g, "node", argv[optind + 1]);
	if (cli_request_call(prog, o.socket, g, r, NULL, &resp) < 0)
		return CLI_EXIT_FAILURE;
	if (o.json) {
		cli_json_print(stdout, resp);
		return 0;
	}
	(void)cli_json_int(resp, "bytes", &bytes);
	(void)cli_format_size(bytes > 0 ? (uint64_t)bytes : 0, size, sizeof(size));
	printf("%.12s: runs on node %s (frozen %.0f ms, transfer %.0f ms, downtime %.0f ms, "
	       "%s sent)\n",
	       cli_json_string(resp, "job") ? cli_json_string(resp, "job") : "?",
	       cli_json_string(resp, "node") ? cli_json_string(resp, "node") : "?",
	       ms_of(resp, "frozen_us"), ms_of(resp, "transfer_us"), ms_of(resp, "downtime_us"),
	       size);
	return 0;
}
