/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xrestart: restart a job from one of its versions (op "restart"). */
#include "cli/cli.h"

static const struct option restart_options[] = {
	CLI_COMMON_OPTIONS,
	{},
};

static const struct cli_command restart_command = {
	.shortopts = ":",
	.options = restart_options,
	.synopsis = "JOB [VERSION]",
	.help = "Restart a job from a version made by xcheckpoint (the newest by default):\n"
		"its files, then every unit, under the same job id, limits and owner.\n"
		"Refused while the job runs. A full job id this node does not know, whose\n"
		"versions are in a checkpoint_dir shared with the node that made them:\n"
		"the job is taken over and restored here (refused while the node that runs\n"
		"it is up, or its lease in the store is fresh: node_recover_after).\n"
		"\n",
	.help_end = "\n"
		    "Exit status: 0 once the job runs again, 1 on failure, 2 for a usage error.\n",
	.operand = "job",
};

int cli_xrestart_main(const char *prog, int argc, char **argv)
{
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	const char *socket = NULL;
	uint64_t version = 0;
	int64_t got = 0;
	int r;

	r = cli_parse_options(prog, &restart_command, argc, argv, &socket, NULL);
	if (r != 0)
		return r > 0 ? 0 : CLI_EXIT_USAGE;
	if (argc - optind > 2) {
		cli_errorf(prog, "Give a job and at most one version");
		return CLI_EXIT_USAGE;
	}
	if (argc - optind == 2 && (parse_uint64(argv[optind + 1], &version) < 0 || version == 0 ||
				   version > 1000000000)) {
		cli_errorf(prog, "Invalid version '%s': give a number from xcheckpoint --list",
			   argv[optind + 1]);
		return CLI_EXIT_USAGE;
	}
	r = cli_request_begin("restart", &g);
	if (r >= 0)
		r = cli_gen_str(g, "job", argv[optind]);
	if (r >= 0 && version)
		r = cli_gen_int(g, "version", (int64_t)version);
	if (cli_request_call(prog, socket, g, r, NULL, &resp) < 0)
		return CLI_EXIT_FAILURE;
	(void)cli_json_int(resp, "version", &got);
	printf("%.12s: restarted from version %lld\n",
	       cli_json_string(resp, "job") ? cli_json_string(resp, "job") : "?", (long long)got);
	return 0;
}
