/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xevents: stream job events as they happen (op "events"): one line each,
 * JSON lines with --json. With --job, until that job has ended. */
#include <time.h>

#include "cli/cli.h"

enum { OPT_JSON = CLI_OPT_MAX, OPT_JOB, OPT_SINCE };

static const struct option events_options[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "job", required_argument, NULL, OPT_JOB },
	{ "since", required_argument, NULL, OPT_SINCE },
	CLI_COMMON_OPTIONS,
	{},
};

struct events_opts {
	bool json;
	const char *job;
	uint64_t since_us; /* 0: only what comes */
	const char *socket;
};

static int events_option(const char *prog, int opt, const char *arg, void *opts)
{
	struct events_opts *o = opts;
	uint64_t d, now = now_usec();

	switch (opt) {
	case OPT_JSON:
		o->json = true;
		return 0;
	case OPT_JOB:
		o->job = arg;
		return 0;
	default: /* --since */
		if (parse_duration(arg, &d) < 0 || d == 0) {
			cli_errorf(
				prog,
				"Invalid --since value '%s': give a duration such as 90s, 10m or 2h",
				arg);
			return -EINVAL;
		}
		o->since_us = d < now ? now - d : 1;
		return 0;
	}
}

static const struct cli_command events_command = {
	.shortopts = ":",
	.options = events_options,
	.synopsis = "",
	.help = "Print job events as they happen, one line each: submitted, queued,\n"
		"started, checkpointed, checkpoint_failed, restored, restore_failed,\n"
		"migrated, ended. You see the events of your own jobs; root sees all.\n"
		"\n"
		"      --json        Print each event as a JSON object on one line\n"
		"      --job JOB     Only the events of JOB (id, id prefix or name), those\n"
		"                    xosd still keeps first; exit once it has ended\n"
		"      --since DUR   First the events of the last DUR (90s, 10m, 2h) that\n"
		"                    xosd still keeps (the last 1024)\n",
	.help_end = "\n"
		    "Without --job, xevents runs until interrupted (Ctrl-C).\n"
		    "Exit status: 0 when the job of --job has ended, 1 on error, 2 for a\n"
		    "usage error.\n",
	.option = events_option,
};

/* 2026-12-05T21:30:00.123Z */
static void format_time(uint64_t us, char *buf, size_t len)
{
	time_t s = (time_t)(us / 1000000);
	struct tm tm;
	char t[32];

	if (!gmtime_r(&s, &tm) || !strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm))
		snprintf(t, sizeof(t), "?");
	snprintf(buf, len, "%s.%03uZ", t, (unsigned)(us / 1000 % 1000));
}

/* The event as a JSON line: its time, then the daemon's fields but the
 * protocol's own (v, ev). */
static int print_json(yajl_val ev, const char *time)
{
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *buf;
	size_t len;

	if (!g)
		return -ENOMEM;
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "time", time);
	for (size_t i = 0; i < ev->u.object.len; i++) {
		const char *k = ev->u.object.keys[i];

		if (!strcmp(k, "v") || !strcmp(k, "ev"))
			continue;
		json_gen_key(g, k);
		if (cli_json_gen_value(g, ev->u.object.values[i]) < 0)
			return -EBADMSG;
	}
	yajl_gen_map_close(g);
	if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
		return -ENOMEM;
	printf("%.*s\n", (int)len, (const char *)buf);
	return 0;
}

/* The figures an event carries, as " key=value" (durations in seconds). */
static void print_figures(yajl_val ev)
{
	static const char *const keys[] = {
		"version",          "exit_code",           "checkpoint_duration_us",
		"checkpoint_bytes", "restore_duration_us", "cpu_us",
		"wall_us",          "memory_peak",         NULL
	};
	const char *reason = cli_json_string(ev, "reason");
	int64_t v;

	for (const char *const *k = keys; *k; k++) {
		size_t kl = strlen(*k);

		if (cli_json_int(ev, *k, &v) < 0)
			continue;
		if (kl > 3 && !strcmp(*k + kl - 3, "_us"))
			printf(" %.*s=%.3fs", (int)(kl - 3), *k, (double)v / 1e6);
		else
			printf(" %s=%lld", *k, (long long)v);
	}
	if (reason)
		printf(" reason=\"%s\"", reason);
}

static void print_plain(yajl_val ev, const char *time)
{
	const char *id = cli_json_string(ev, "job"), *name = cli_json_string(ev, "name");
	const char *user = cli_json_string(ev, "user"), *what = cli_json_string(ev, "event");
	const char *state = cli_json_string(ev, "state");

	printf("%s  %.12s  %-10s %-16s %-17s %s", time, id ? id : "?", user ? user : "?",
	       name ? name : "-", what ? what : "?", state ? state : "?");
	print_figures(ev);
	printf("\n");
}

static int print_event(const char *prog, const struct events_opts *o, yajl_val ev)
{
	const char *kind = cli_json_string(ev, "ev"), *what;
	char time[64];
	int64_t t = 0, n = 0;
	int r;

	if (kind && !strcmp(kind, "missed")) {
		(void)cli_json_int(ev, "count", &n);
		if (o->json)
			printf("{\"event\":\"missed\",\"count\":%lld}\n", (long long)n);
		cli_errorf(prog,
			   "Missed %lld events: this reader was too slow (xosd holds a bounded "
			   "buffer for each reader)",
			   (long long)n);
		return 0;
	}
	if (!kind || strcmp(kind, "job") != 0)
		return 0; /* (an event of a later protocol) */
	(void)cli_json_int(ev, "time_us", &t);
	format_time(t > 0 ? (uint64_t)t : 0, time, sizeof(time));
	if (o->json && (r = print_json(ev, time)) < 0)
		return r;
	if (!o->json)
		print_plain(ev, time);
	what = cli_json_string(ev, "event");
	return what && !strcmp(what, "ended"); /* (with --job, that job's end) */
}

int cli_xevents_main(const char *prog, int argc, char **argv)
{
	_cleanup_cli_conn_ struct cli_conn c = CLI_CONN_INIT;
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	struct events_opts o = {};
	bool ended = false;
	int r;

	r = cli_parse_options(prog, &events_command, argc, argv, &o.socket, &o);
	if (r != 0)
		return r > 0 ? 0 : CLI_EXIT_USAGE;
	if (optind < argc) {
		cli_errorf(prog, "Unexpected argument '%s': name a job with --job", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	setvbuf(stdout, NULL, _IOLBF, 0); /* each event as it comes, also into a pipe */
	r = cli_request_begin("events", &g);
	if (r >= 0 && o.job)
		r = cli_gen_str(g, "job", o.job);
	if (r >= 0 && o.since_us)
		r = cli_gen_int(g, "since", (int64_t)o.since_us);
	if (cli_request_call(prog, o.socket, g, r, &c, &resp) < 0)
		return CLI_EXIT_FAILURE;
	for (;;) {
		_cleanup_json_ yajl_val ev = NULL;

		r = cli_conn_recv(&c, &ev);
		if (r == -ECONNRESET && ended)
			return 0; /* xosd closes the stream once the job has ended */
		if (r < 0) {
			if (r == -ECONNRESET)
				cli_errorf(prog, "xosd closed the event stream (did it stop?)");
			else
				cli_report(prog, &c, r);
			return CLI_EXIT_FAILURE;
		}
		if ((r = print_event(prog, &o, ev)) < 0) {
			cli_report(prog, &c, r);
			return CLI_EXIT_FAILURE;
		}
		ended = ended || (o.job && r > 0);
	}
}
