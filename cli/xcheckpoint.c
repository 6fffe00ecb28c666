/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xcheckpoint: make a version of a whole job (op "checkpoint"), list its
 * versions ("checkpoints") or delete one ("checkpoint_delete"). */
#include "cli/cli.h"

enum { OPT_STOP = CLI_OPT_MAX, OPT_JSON, OPT_LIST, OPT_DELETE };

static const struct option ckpt_options[] = {
	{ "stop", no_argument, NULL, OPT_STOP },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "list", no_argument, NULL, OPT_LIST },
	{ "delete", required_argument, NULL, OPT_DELETE },
	CLI_COMMON_OPTIONS,
	{},
};

struct ckpt_opts {
	bool stop, json, list;
	uint64_t delete;
	const char *socket;
};

static int ckpt_option(const char *prog, int opt, const char *arg, void *opts)
{
	struct ckpt_opts *o = opts;

	switch (opt) {
	case OPT_STOP:
		o->stop = true;
		return 0;
	case OPT_JSON:
		o->json = true;
		return 0;
	case OPT_LIST:
		o->list = true;
		return 0;
	default: /* --delete */
		if (parse_uint64(arg, &o->delete) < 0 || o->delete == 0 || o->delete > 1000000000) {
			cli_errorf(prog, "Invalid version '%s': give a number from --list", arg);
			return -EINVAL;
		}
		return 0;
	}
}

static const struct cli_command ckpt_command = {
	.shortopts = ":",
	.options = ckpt_options,
	.synopsis = "JOB",
	.help = "Checkpoint a whole job (every unit, its files and output) as a new\n"
		"numbered version; the job keeps running unless --stop.\n"
		"\n"
		"      --stop            Stop the job once checkpointed (xrestart resumes it)\n"
		"      --json            Print the version's statistics (or the list) as JSON\n"
		"      --list            List the job's versions\n"
		"      --delete VERSION  Delete a version\n",
	.help_pad = 8,
	.help_end = "\n"
		    "Exit status: 0 on success, 1 on failure, 2 for a usage error.\n",
	.operand = "job",
	.single = true,
	.option = ckpt_option,
};

static double ms(yajl_val o, const char *k)
{
	int64_t v = 0;

	(void)cli_json_int(o, k, &v);
	return (double)v / 1000.0;
}

static double mib(yajl_val o, const char *k)
{
	int64_t v = 0;

	(void)cli_json_int(o, k, &v);
	return (double)v / 1048576.0;
}

static void size_of(yajl_val o, const char *k, char *buf, size_t len)
{
	int64_t v = 0;

	(void)cli_json_int(o, k, &v);
	(void)cli_format_size(v > 0 ? (uint64_t)v : 0, buf, len);
}

/* After the list: the owner's quota, and why periodic checkpoints are skipped. */
static void print_storage(yajl_val resp)
{
	yajl_val st = cli_json_get(resp, "storage");
	const char *skipped = cli_json_string(resp, "skipped");
	char job[16], user[16], quota[16], avail[16], when[32] = "-";
	int64_t q = 0, t = 0;

	(void)cli_json_int(st, "quota", &q);
	if (q > 0) {
		size_of(st, "job", job, sizeof(job));
		size_of(st, "user", user, sizeof(user));
		size_of(st, "quota", quota, sizeof(quota));
		size_of(st, "free", avail, sizeof(avail));
		printf("Storage: %s for this job; its owner's checkpoints take %s of a %s quota; "
		       "%s free in the store\n",
		       job, user, quota, avail);
	}
	if (skipped) {
		if (cli_json_int(resp, "skipped_us", &t) >= 0)
			cli_format_relative(now_usec(), (uint64_t)t, when, sizeof(when));
		printf("Last periodic checkpoint skipped (%s): %s\n", when, skipped);
	}
}

static void print_list(yajl_val versions)
{
	uint64_t now = now_usec();

	printf("%-8s %-10s %-8s %10s %10s %10s %10s\n", "VERSION", "CREATED", "STOPPED", "IMAGES",
	       "LAYER", "FROZEN", "DISK");
	for (size_t i = 0; YAJL_IS_ARRAY(versions) && i < versions->u.array.len; i++) {
		yajl_val v = versions->u.array.values[i];
		yajl_val sz = cli_json_get(v, "sizes"), st = cli_json_get(v, "criu_statistics");
		int64_t n = 0, t = 0;
		char when[32] = "-";

		(void)cli_json_int(v, "version", &n);
		if (cli_json_true(v, "damaged")) {
			printf("%-8lld (damaged: delete it)\n", (long long)n);
			continue;
		}
		if (cli_json_int(v, "time_us", &t) >= 0)
			cli_format_relative(now, (uint64_t)t, when, sizeof(when));
		printf("%-8lld %-10s %-8s %9.1fM %9.1fM %8.0fms %9.1fM\n", (long long)n, when,
		       cli_json_true(v, "stopped") ? "yes" : "no", mib(sz, "images"),
		       mib(sz, "layer"), ms(st, "frozen_time"), mib(sz, "disk"));
	}
}

static void print_made(yajl_val resp)
{
	yajl_val ck = cli_json_get(resp, "checkpoint");
	yajl_val sz = cli_json_get(ck, "sizes"), st = cli_json_get(ck, "criu_statistics");
	int64_t n = 0;

	(void)cli_json_int(ck, "version", &n);
	printf("%.12s: version %lld%s (images %.1f MiB, layer %.1f MiB; frozen %.0f ms, "
	       "total %.0f ms)\n",
	       cli_json_string(resp, "job") ? cli_json_string(resp, "job") : "?", (long long)n,
	       cli_json_true(ck, "stopped") ? ", job stopped" : "", mib(sz, "images"),
	       mib(sz, "layer"), ms(st, "frozen_time"), ms(ck, "checkpoint_duration"));
}

int cli_xcheckpoint_main(const char *prog, int argc, char **argv)
{
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	struct ckpt_opts o = { 0 };
	int r;

	r = cli_parse_options(prog, &ckpt_command, argc, argv, &o.socket, &o);
	if (r != 0)
		return r > 0 ? 0 : CLI_EXIT_USAGE;
	if ((o.list + (o.delete > 0) + o.stop) > 1) {
		cli_errorf(prog, "--list, --delete and --stop exclude each other");
		return CLI_EXIT_USAGE;
	}
	r = cli_request_begin(o.list     ? "checkpoints"
			      : o.delete ? "checkpoint_delete"
					 : "checkpoint",
			      &g);
	if (r >= 0)
		r = cli_gen_str(g, "job", argv[optind]);
	if (r >= 0 && o.delete)
		r = cli_gen_int(g, "version", (int64_t)o.delete);
	if (r >= 0 && o.stop)
		r = cli_gen_bool(g, "stop", true);
	if (cli_request_call(prog, o.socket, g, r, NULL, &resp) < 0)
		return CLI_EXIT_FAILURE;
	if (o.delete)
		return 0;
	if (o.json) {
		cli_json_print(stdout, cli_json_get(resp, o.list ? "versions" : "checkpoint"));
	} else if (o.list) {
		print_list(cli_json_get(resp, "versions"));
		print_storage(resp);
	} else {
		print_made(resp);
	}
	return 0;
}
