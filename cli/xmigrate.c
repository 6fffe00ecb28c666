/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xmigrate: move a running job to another node (op "migrate"), stop and
 * copy; the answer comes when the job runs there, or the move failed and it
 * runs on here (docs/MIGRATION.md). */
#include <inttypes.h>
#include <poll.h>
#include <time.h>

#include "cli/cli.h"

enum { OPT_JSON = CLI_OPT_MAX, OPT_POSTCOPY, OPT_COMPRESS };

static const struct option migrate_options[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "postcopy", no_argument, NULL, OPT_POSTCOPY },
	{ "compress", no_argument, NULL, OPT_COMPRESS },
	CLI_COMMON_OPTIONS,
	{},
};

struct migrate_opts {
	bool json, postcopy, compress;
	const char *socket;
};

static int migrate_option(_unused_ const char *prog, int opt, _unused_ const char *arg, void *opts)
{
	struct migrate_opts *o = opts;

	if (opt == OPT_POSTCOPY)
		o->postcopy = true;
	else if (opt == OPT_COMPRESS)
		o->compress = true;
	else
		o->json = true;
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
		"until NODE reports it running; if the move fails it runs on here. On a\n"
		"terminal, a line shows the move's phase, the bytes sent and the rate.\n"
		"\n"
		"      --postcopy    Resume the job on NODE before its memory has moved: its\n"
		"                    pages follow on demand and in the background, pulled\n"
		"                    from here (a shorter stop; CRIU with xos's patches on\n"
		"                    both nodes). The answer comes when every page moved\n"
		"      --compress    Compress the version on the wire with zstd (both nodes need\n"
		"                    the zstd program): fewer bytes on a slow link, more CPU;\n"
		"                    the pages pulled by --postcopy are not compressed\n"
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

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct progress {
	uint64_t t0, last_t, last_bytes;
	bool shown;
};

/* One line on stderr: the move's phase, bytes sent and rate, as xps has
 * them now (silent if it cannot ask). */
static void progress_show(const char *sock, const char *job, struct progress *p)
{
	_cleanup_cli_conn_ struct cli_conn c = CLI_CONN_INIT;
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	_cleanup_free_ char *req = NULL;
	char *const names[] = { (char *)job, NULL };
	char size[32] = "0 B";
	const char *phase = "check";
	yajl_val jobs, mig;
	int64_t bytes = 0;
	uint64_t now = mono_ms();
	double rate = 0;
	size_t len;

	if (cli_request_begin("ps", &g) < 0 || cli_gen_strv(g, "jobs", names) < 0 ||
	    cli_request_end(g, &req, &len) < 0 || cli_conn_open(cli_socket_path(sock), &c) < 0 ||
	    cli_conn_call(&c, req, len, &resp) < 0)
		return;
	jobs = cli_json_get(resp, "jobs");
	mig = YAJL_IS_ARRAY(jobs) && jobs->u.array.len
		      ? cli_json_get(jobs->u.array.values[0], "migration")
		      : NULL;
	if (mig) {
		phase = cli_json_string(mig, "phase") ? cli_json_string(mig, "phase") : "?";
		(void)cli_json_int(mig, "bytes", &bytes);
	}
	if (bytes > 0 && (uint64_t)bytes >= p->last_bytes && now > p->last_t)
		rate = (double)((uint64_t)bytes - p->last_bytes) * 1000.0 /
		       (double)(now - p->last_t);
	(void)cli_format_size(bytes > 0 ? (uint64_t)bytes : 0, size, sizeof(size));
	fprintf(stderr, "\r\033[K%5.1f s  %-6s %s sent, %.1f MiB/s", (double)(now - p->t0) / 1000.0,
		phase, size, rate / 1048576.0);
	p->last_bytes = bytes > 0 ? (uint64_t)bytes : 0;
	p->last_t = now;
	p->shown = true;
}

/* cli_call, and on a terminal the move's progress every half second while
 * the answer has not come. */
static int call_with_progress(const char *prog, const char *sock, const char *job, const char *req,
			      size_t len, yajl_val *ret)
{
	_cleanup_cli_conn_ struct cli_conn c = CLI_CONN_INIT;
	struct progress p = { .t0 = mono_ms() };
	yajl_val v = NULL;
	int r = cli_open(prog, sock, &c);

	p.last_t = p.t0;
	if (r >= 0)
		r = cli_conn_send(&c, req, len);
	while (r >= 0 && (r = cli_conn_next(&c, &v)) == 0) {
		struct pollfd pf = { .fd = c.fd, .events = POLLIN };
		int n = poll(&pf, 1, 500);

		if (n < 0 && errno != EINTR)
			r = -errno;
		else if (n > 0 && (r = cli_conn_fill(&c)) == 0)
			r = -ECONNRESET;
		else if (n == 0)
			progress_show(sock, job, &p);
	}
	if (p.shown)
		fputs("\r\033[K", stderr);
	if (r >= 0 && (r = cli_conn_check(&c, v)) >= 0) {
		*ret = v;
		return 0;
	}
	if (v)
		json_free(v);
	cli_report(prog, &c, r);
	return r;
}

int cli_xmigrate_main(const char *prog, int argc, char **argv)
{
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	struct migrate_opts o = { 0 };
	_cleanup_free_ char *req = NULL;
	char size[32] = "?";
	int64_t bytes = 0;
	size_t len = 0;
	bool tty;
	int r;

	r = cli_parse_options(prog, &migrate_command, argc, argv, &o.socket, &o);
	if (r != 0)
		return r > 0 ? 0 : CLI_EXIT_USAGE;
	if (argc - optind != 2) {
		cli_errorf(prog, "Give a job and a node (see xmigrate --help)");
		return CLI_EXIT_USAGE;
	}
	tty = !o.json && isatty(STDERR_FILENO);
	if (tty)
		fprintf(stderr, "Moving job %s to node %s...\n", argv[optind], argv[optind + 1]);
	r = cli_request_begin("migrate", &g);
	if (r >= 0)
		r = cli_gen_str(g, "job", argv[optind]);
	if (r >= 0)
		r = cli_gen_str(g, "node", argv[optind + 1]);
	if (r >= 0 && o.postcopy)
		r = cli_gen_bool(g, "postcopy", true);
	if (r >= 0 && o.compress)
		r = cli_gen_bool(g, "compress", true);
	if (!tty) {
		if (cli_request_call(prog, o.socket, g, r, NULL, &resp) < 0)
			return CLI_EXIT_FAILURE;
	} else {
		if (r >= 0)
			r = cli_request_end(g, &req, &len);
		if (r < 0) {
			cli_report(prog, NULL, r);
			return CLI_EXIT_FAILURE;
		}
		if (call_with_progress(prog, o.socket, argv[optind], req, len, &resp) < 0)
			return CLI_EXIT_FAILURE;
	}
	if (o.json) {
		cli_json_print(stdout, resp);
		return 0;
	}
	(void)cli_json_int(resp, "bytes", &bytes);
	(void)cli_format_size(bytes > 0 ? (uint64_t)bytes : 0, size, sizeof(size));
	if (o.postcopy) {
		printf("%.12s: runs on node %s (frozen %.0f ms, transfer %.0f ms, downtime %.0f ms, "
		       "then every page pulled in %.0f ms; %s sent)\n",
		       cli_json_string(resp, "job") ? cli_json_string(resp, "job") : "?",
		       cli_json_string(resp, "node") ? cli_json_string(resp, "node") : "?",
		       ms_of(resp, "frozen_us"), ms_of(resp, "transfer_us"),
		       ms_of(resp, "downtime_us"), ms_of(resp, "pull_us"), size);
		return 0;
	}
	printf("%.12s: runs on node %s (frozen %.0f ms, transfer %.0f ms, downtime %.0f ms, "
	       "%s sent)\n",
	       cli_json_string(resp, "job") ? cli_json_string(resp, "job") : "?",
	       cli_json_string(resp, "node") ? cli_json_string(resp, "node") : "?",
	       ms_of(resp, "frozen_us"), ms_of(resp, "transfer_us"), ms_of(resp, "downtime_us"),
	       size);
	return 0;
}
