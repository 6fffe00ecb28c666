/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xqueue: the node's queue in order, with each job's reason and estimated
 * start (op "queue"); xrelease: let held jobs start (op "release"). */
#include <time.h>

#include "cli/cli.h"

enum { OPT_JSON = CLI_OPT_MAX };

static const struct option queue_options[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	CLI_COMMON_OPTIONS,
	{},
};

struct queue_opts {
	bool json;
	const char *socket;
};

static int queue_option(_unused_ const char *prog, int opt, _unused_ const char *arg, void *opts)
{
	((struct queue_opts *)opts)->json = true; /* --json */
	return 0;
}

static const struct cli_command queue_command = {
	.shortopts = ":",
	.options = queue_options,
	.synopsis = "",
	.help = "List the queued jobs you may see in the order they will start, with why\n"
		"each waits and when it is estimated to start.\n"
		"\n"
		"      --json        Print the answer as JSON (capacity, jobs)\n",
	.help_end = "\n"
		    "Exit status: 0 on success, 1 on error, 2 for a usage error.\n",
	.option = queue_option,
};

/* "in 5m", "in 2h", "now", or "-" when unknown */
static void format_start(yajl_val job, uint64_t now, char *buf, size_t len)
{
	int64_t at = 0;
	uint64_t s;

	if (cli_json_int(job, "estimated_start_us", &at) < 0 || at <= 0) {
		snprintf(buf, len, "-");
		return;
	}
	s = (uint64_t)at > now ? ((uint64_t)at - now) / 1000000 : 0;
	if (s == 0)
		snprintf(buf, len, "now");
	else if (s < 120)
		snprintf(buf, len, "in %llus", (unsigned long long)s);
	else if (s < 7200)
		snprintf(buf, len, "in %llum", (unsigned long long)(s / 60));
	else if (s < 172800)
		snprintf(buf, len, "in %lluh", (unsigned long long)(s / 3600));
	else
		snprintf(buf, len, "in %llud", (unsigned long long)(s / 86400));
}

static int queue_print_table(yajl_val jobs)
{
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	printf("%-4s %-12s %-16s %-10s %8s %-8s %s\n", "POS", "ID", "NAME", "USER", "PRIORITY",
	       "START", "REASON");
	for (size_t i = 0; i < jobs->u.array.len; i++) {
		yajl_val j = jobs->u.array.values[i];
		const char *id = cli_json_string(j, "id"), *name = cli_json_string(j, "name");
		const char *user = cli_json_string(j, "user"),
			   *reason = cli_json_string(j, "reason");
		int64_t pos = 0, prio = 0;
		char start[32];

		(void)cli_json_int(j, "position", &pos);
		(void)cli_json_int(j, "priority", &prio);
		format_start(j, now, start, sizeof(start));
		printf("%-4lld %-12.12s %-16.16s %-10.10s %8lld %-8s %s\n", (long long)pos,
		       id ? id : "?", name ? name : "-", user ? user : "?", (long long)prio, start,
		       reason ? reason : "");
	}
	return fflush(stdout) == 0 ? 0 : -errno;
}

int cli_xqueue_main(const char *prog, int argc, char **argv)
{
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	struct queue_opts o = {};
	yajl_val jobs;
	int r;

	r = cli_parse_options(prog, &queue_command, argc, argv, &o.socket, &o);
	if (r != 0)
		return r > 0 ? 0 : CLI_EXIT_USAGE;
	if (optind < argc) {
		cli_errorf(prog, "xqueue takes no operands (see '%s --help')", prog);
		return CLI_EXIT_USAGE;
	}
	r = cli_request_begin("queue", &g);
	if (cli_request_call(prog, o.socket, g, r, NULL, &resp) < 0)
		return CLI_EXIT_FAILURE;
	jobs = cli_json_get(resp, "jobs");
	if (!YAJL_IS_ARRAY(jobs)) {
		cli_report(prog, NULL, -EBADMSG);
		return CLI_EXIT_FAILURE;
	}
	r = o.json ? cli_json_print(stdout, resp) : queue_print_table(jobs);
	if (r < 0) {
		cli_errorf(prog, "Failed to print the queue: %s", strerror(-r));
		return CLI_EXIT_FAILURE;
	}
	return 0;
}

static const struct option release_options[] = {
	CLI_COMMON_OPTIONS,
	{},
};

static int release_option(_unused_ const char *prog, _unused_ int opt, _unused_ const char *arg,
			  _unused_ void *opts)
{
	return 0;
}

static const struct cli_command release_command = {
	.shortopts = ":",
	.options = release_options,
	.synopsis = "JOB...",
	.help = "Release held jobs (xrun --hold): they start when the scheduler lets them.\n"
		"\n",
	.help_end = "\n"
		    "Exit status: 0 if every job was released, 1 otherwise, 2 for a usage\n"
		    "error.\n",
	.operand = "job",
	.option = release_option,
};

int cli_xrelease_main(const char *prog, int argc, char **argv)
{
	const char *socket = NULL;
	int r, status = 0;

	r = cli_parse_options(prog, &release_command, argc, argv, &socket, NULL);
	if (r != 0)
		return r > 0 ? 0 : CLI_EXIT_USAGE;
	for (int i = optind; i < argc; i++) {
		_cleanup_json_ yajl_val resp = NULL;
		_cleanup_gen_ yajl_gen g = NULL;

		r = cli_request_begin("release", &g);
		if (r >= 0)
			r = cli_gen_str(g, "job", argv[i]);
		r = cli_request_call(prog, socket, g, r, NULL, &resp);
		if (r < 0)
			status = CLI_EXIT_FAILURE;
		if (r < 0 && r != -EREMOTEIO) /* no daemon: none can be released */
			break;
	}
	return status;
}
