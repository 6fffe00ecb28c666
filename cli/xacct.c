/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xacct: cpu time, memory-hours, wall time and jobs per VO and user (op
 * "acct"); xvo: a VO's policy, shown or tightened by its administrators (op
 * "vo_policy"). DECISIONS (aj). */
#include <inttypes.h>
#include <time.h>

#include "cli/cli.h"

enum { OPT_VO = CLI_OPT_MAX, OPT_USER, OPT_SINCE, OPT_JSON, OPT_RESET };

static const struct option acct_options[] = {
	{ "vo", required_argument, NULL, OPT_VO },
	{ "user", required_argument, NULL, OPT_USER },
	{ "since", required_argument, NULL, OPT_SINCE },
	{ "json", no_argument, NULL, OPT_JSON },
	CLI_COMMON_OPTIONS,
	{},
};

struct acct_opts {
	const char *vo, *user, *socket;
	int64_t since; /* seconds since 1970; 0: all */
	bool json;
};

/* "2d" (that long ago), "2026-12-01" or "2026-12-01T10:00:00" (UTC), "@SECONDS" */
static int parse_since(const char *s, int64_t *ret)
{
	struct tm tm = { 0 };
	uint64_t us, v;
	const char *end;

	if (s[0] == '@')
		return parse_uint64(s + 1, &v) < 0 || v > INT64_MAX ? -EINVAL
								    : (*ret = (int64_t)v, 0);
	if (parse_duration(s, &us) >= 0) {
		*ret = (int64_t)time(NULL) - (int64_t)(us / 1000000);
		return *ret > 0 ? 0 : -EINVAL;
	}
	end = strptime(s, "%Y-%m-%d", &tm);
	if (end && *end == 'T')
		end = strptime(end + 1, "%H:%M:%S", &tm);
	if (!end || *end)
		return -EINVAL;
	*ret = (int64_t)timegm(&tm);
	return *ret > 0 ? 0 : -EINVAL;
}

static int acct_option(const char *prog, int opt, const char *arg, void *opts)
{
	struct acct_opts *o = opts;

	switch (opt) {
	case OPT_VO:
		o->vo = arg;
		return 0;
	case OPT_USER:
		o->user = arg;
		return 0;
	case OPT_JSON:
		o->json = true;
		return 0;
	default: /* --since */
		if (parse_since(arg, &o->since) < 0) {
			cli_errorf(prog,
				   "Invalid time '%s': use a duration back from now (7d, 12h), "
				   "a UTC date (2026-12-01, 2026-12-01T08:00:00) or @SECONDS",
				   arg);
			return -EINVAL;
		}
		return 0;
	}
}

static const struct cli_command acct_command = {
	.shortopts = ":",
	.options = acct_options,
	.synopsis = "",
	.help = "Sum the accounting of the jobs you may see, per VO and user: jobs, cpu time\n"
		"(user and system), memory-hours (peak memory times wall time) and wall\n"
		"time. A VO's administrators see its jobs, root every job, others their own.\n"
		"\n"
		"      --vo VO       Only jobs of VO VO\n"
		"      --user USER   Only jobs run as USER (a local or pool account)\n"
		"      --since T     Only jobs live or ended since T: a duration back from\n"
		"                    now (7d), a UTC date (2026-12-01[T08:00:00]) or @SECONDS\n"
		"      --json        Print the answer as JSON\n",
	.help_end = "\nExit status: 0, 1 if xosd refused, 2 for a usage error.\n",
	.option = acct_option,
};

static int print_rows(yajl_val rows)
{
	printf("%-24s %-20s %6s %12s %14s %12s\n", "VO", "USER", "JOBS", "CPU(s)", "MEM(MiB*h)",
	       "WALL(s)");
	for (size_t i = 0; i < rows->u.array.len; i++) {
		yajl_val r = rows->u.array.values[i];
		const char *vo = cli_json_string(r, "vo"), *user = cli_json_string(r, "user");
		int64_t jobs = 0, cpu = 0, wall = 0, mem = 0;

		(void)cli_json_int(r, "jobs", &jobs);
		(void)cli_json_int(r, "cpu_us", &cpu);
		(void)cli_json_int(r, "wall_us", &wall);
		(void)cli_json_int(r, "memory_mib_s", &mem);
		printf("%-24s %-20s %6" PRId64 " %12.2f %14.3f %12.1f\n", vo ? vo : "-",
		       user ? user : "?", jobs, (double)cpu / 1e6, (double)mem / 3600.0,
		       (double)wall / 1e6);
	}
	return 0;
}

int cli_xacct_main(const char *prog, int argc, char **argv)
{
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	struct acct_opts o = {};
	yajl_val rows;
	int r;

	r = cli_parse_options(prog, &acct_command, argc, argv, &o.socket, &o);
	if (r != 0)
		return r > 0 ? 0 : CLI_EXIT_USAGE;
	if (optind < argc) {
		cli_errorf(prog, "xacct takes no operands (see '%s --help')", prog);
		return CLI_EXIT_USAGE;
	}
	r = cli_request_begin("acct", &g);
	if (r >= 0 && o.vo)
		r = cli_gen_str(g, "vo", o.vo);
	if (r >= 0 && o.user)
		r = cli_gen_str(g, "user", o.user);
	if (r >= 0 && o.since)
		r = cli_gen_int(g, "since", o.since);
	if (cli_request_call(prog, o.socket, g, r, NULL, &resp) < 0)
		return CLI_EXIT_FAILURE;
	rows = cli_json_get(resp, "rows");
	if (!YAJL_IS_ARRAY(rows)) {
		cli_report(prog, NULL, -EBADMSG);
		return CLI_EXIT_FAILURE;
	}
	r = o.json ? cli_json_print(stdout, resp) : print_rows(rows);
	return r < 0 ? CLI_EXIT_FAILURE : 0;
}

/* ---- xvo */

static const struct option vo_options[] = {
	{ "vo", required_argument, NULL, OPT_VO },
	{ "reset", no_argument, NULL, OPT_RESET },
	CLI_COMMON_OPTIONS,
	{},
};

struct vo_opts {
	const char *vo, *socket;
	bool reset;
};

static int vo_option(const char *prog, int opt, const char *arg, void *opts)
{
	struct vo_opts *o = opts;

	if (opt == OPT_VO)
		o->vo = arg;
	else
		o->reset = true;
	return 0;
}

static const struct cli_command vo_command = {
	.shortopts = ":",
	.options = vo_options,
	.synopsis = "[KEY=VALUE...]",
	.help = "Show the policy in force for your VO's jobs on this node (the node owner's\n"
		"file, tightened by the VO's administrators). With KEY=VALUE operands, a VO\n"
		"administrator tightens it (keys of xos-vo.conf(5)); nothing may loosen the\n"
		"node owner's file.\n"
		"\n"
		"      --vo VO       The VO (default: the one of your xlogin; root names one)\n"
		"      --reset       Drop the administrators' changes\n",
	.help_end = "\nExit status: 0, 1 if xosd refused, 2 for a usage error.\n",
	.option = vo_option,
};

/* "k=v" operands as the lines of a policy file */
static char *vo_text(int argc, char **argv)
{
	size_t len = 1;
	char *s, *o;

	for (int i = optind; i < argc; i++)
		len += strlen(argv[i]) + 4;
	s = o = calloc(1, len);
	for (int i = optind; s && i < argc; i++) {
		const char *eq = strchr(argv[i], '=');

		if (!eq) {
			free(s);
			return NULL;
		}
		int w = snprintf(o, len - (size_t)(o - s), "%.*s = %s\n", (int)(eq - argv[i]),
				 argv[i], eq + 1);

		if (w < 0 || (size_t)w >= len - (size_t)(o - s)) {
			free(s);
			return NULL;
		}
		o += w;
	}
	return s;
}

int cli_xvo_main(const char *prog, int argc, char **argv)
{
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	_cleanup_free_ char *text = NULL;
	struct vo_opts o = {};
	const char *file, *admin, *policy;
	int r;

	r = cli_parse_options(prog, &vo_command, argc, argv, &o.socket, &o);
	if (r != 0)
		return r > 0 ? 0 : CLI_EXIT_USAGE;
	if (optind < argc && !(text = vo_text(argc, argv))) {
		cli_errorf(prog, "Operands are KEY=VALUE (see xos-vo.conf(5))");
		return CLI_EXIT_USAGE;
	}
	r = cli_request_begin("vo_policy", &g);
	if (r >= 0 && o.vo)
		r = cli_gen_str(g, "vo", o.vo);
	if (r >= 0 && text)
		r = cli_gen_str(g, "set", text);
	if (r >= 0 && o.reset)
		r = cli_gen_bool(g, "reset", true);
	if (cli_request_call(prog, o.socket, g, r, NULL, &resp) < 0)
		return CLI_EXIT_FAILURE;
	file = cli_json_string(resp, "file");
	admin = cli_json_string(resp, "admin_file");
	policy = cli_json_string(resp, "policy");
	printf("# VO %s: %s%s%s\n%s", cli_json_string(resp, "vo"), file ? file : "?",
	       admin ? ", tightened in " : "", admin ? admin : "", policy ? policy : "");
	return 0;
}
