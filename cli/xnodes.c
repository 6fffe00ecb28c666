/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xnodes: the node's peers on the node channel (op "nodes"), as a table or JSON. */
#include <inttypes.h>

#include "cli/cli.h"

enum { OPT_JSON = CLI_OPT_MAX };
enum {
	COL_NAME,
	COL_ADDRESS,
	COL_STATE,
	COL_SEEN,
	COL_MEM,
	COL_CPUS,
	COL_JOBS,
	COL_PIDS,
	COL_MODEL,
	COL_REASON,
	COL_MAX
};

static const char *const col_titles[COL_MAX] = {
	"NAME", "ADDRESS", "STATE",     "LAST-SEEN", "MEM-FREE",
	"CPUS", "JOBS",    "PIDS-FREE", "CPU-MODEL", "REASON",
};

static const struct option nodes_options[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	CLI_COMMON_OPTIONS,
	{},
};

struct nodes_opts {
	bool json;
	const char *socket;
};

static int nodes_option(_unused_ const char *prog, int opt, _unused_ const char *arg, void *opts)
{
	((struct nodes_opts *)opts)->json = true; /* --json, the only one */
	return 0;
}

static const struct cli_command nodes_command = {
	.shortopts = ":",
	.options = nodes_options,
	.synopsis = "",
	.help = "List the peers of this node on the node channel: their state (up, down,\n"
		"connecting, refused and why), free capacity, CPU model and when they were\n"
		"last heard from; then the connections refused lately.\n"
		"\n"
		"      --json        Print the daemon's answer as JSON\n",
	.help_end = "\n"
		    "Exit status: 0 on success, 1 on error, 2 for a usage error.\n",
	.operand = NULL,
	.option = nodes_option,
};

/* Text from the daemon (partly from peers) with control characters as '?'. */
static char *clean(const char *s)
{
	char *out = strdup(s ? s : "-");

	for (char *p = out; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return out;
}

static char *cap_cell(yajl_val cap, const char *key, bool size)
{
	char buf[32];
	int64_t v;

	if (cli_json_int(cap, key, &v) < 0 || v < 0)
		return strdup("-");
	if (size && cli_format_size((uint64_t)v, buf, sizeof(buf)) >= 0)
		return strdup(buf);
	return xstrdup_printf("%" PRId64, v);
}

static char *nodes_cell(yajl_val p, int col, uint64_t now)
{
	yajl_val cap = cli_json_get(p, "capacity");
	char buf[64];
	int64_t t;

	switch (col) {
	case COL_NAME:
		return clean(cli_json_string(p, "name"));
	case COL_ADDRESS:
		return clean(cli_json_string(p, "address"));
	case COL_STATE:
		return clean(cli_json_string(p, "state"));
	case COL_SEEN:
		if (cli_json_int(p, "last_seen_us", &t) < 0 || t <= 0 ||
		    cli_format_relative(now, (uint64_t)t, buf, sizeof(buf)) < 0)
			return strdup("never");
		return strdup(buf);
	case COL_MEM:
		return cap_cell(cap, "mem_available", true);
	case COL_CPUS:
		return cap_cell(cap, "cpus", false);
	case COL_JOBS:
		return cap_cell(cap, "jobs", false);
	case COL_PIDS:
		return cap_cell(cap, "pids_free", false);
	case COL_MODEL:
		return clean(cli_json_string(cap, "cpu_model"));
	default:
		return clean(cli_json_string(p, "reason"));
	}
}

static int print_table(yajl_val peers)
{
	size_t rows = peers->u.array.len + 1, width[COL_MAX] = { 0 };
	uint64_t now = now_usec();
	char **cells = calloc(rows * COL_MAX, sizeof(char *));
	int r = 0;

	if (!cells)
		return -ENOMEM;
	for (size_t i = 0; i < rows * COL_MAX; i++) {
		size_t row = i / COL_MAX;
		int col = (int)(i % COL_MAX);

		cells[i] = row == 0 ? strdup(col_titles[col])
				    : nodes_cell(peers->u.array.values[row - 1], col, now);
		if (!cells[i])
			r = -ENOMEM;
		else if (strlen(cells[i]) > width[col])
			width[col] = strlen(cells[i]);
	}
	for (size_t i = 0; r >= 0 && i < rows * COL_MAX; i++) {
		if (i % COL_MAX == COL_MAX - 1)
			printf("%s\n", cells[i]);
		else
			printf("%-*s  ", (int)width[i % COL_MAX], cells[i]);
	}
	for (size_t i = 0; i < rows * COL_MAX; i++)
		free(cells[i]);
	free(cells);
	return r;
}

static void print_refused(yajl_val refused)
{
	uint64_t now = now_usec();

	if (!YAJL_IS_ARRAY(refused) || refused->u.array.len == 0)
		return;
	printf("\nRefused connections (newest first):\n");
	for (size_t i = 0; i < refused->u.array.len; i++) {
		yajl_val e = refused->u.array.values[i];
		_cleanup_free_ char *addr = clean(cli_json_string(e, "address"));
		_cleanup_free_ char *name = clean(cli_json_string(e, "name"));
		_cleanup_free_ char *why = clean(cli_json_string(e, "reason"));
		char ago[32] = "?";
		int64_t t;

		if (cli_json_int(e, "at_us", &t) >= 0 && t > 0)
			(void)cli_format_relative(now, (uint64_t)t, ago, sizeof(ago));
		printf("  %s  %s  %s  %s\n", ago, addr ? addr : "?", name ? name : "-",
		       why ? why : "?");
	}
}

int cli_xnodes_main(const char *prog, int argc, char **argv)
{
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	struct nodes_opts o = {};
	yajl_val peers;
	int r;

	r = cli_parse_options(prog, &nodes_command, argc, argv, &o.socket, &o);
	if (r != 0)
		return r > 0 ? 0 : CLI_EXIT_USAGE;
	if (optind < argc) {
		cli_errorf(prog, "Unexpected argument '%s'", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	r = cli_request_begin("nodes", &g);
	if (cli_request_call(prog, o.socket, g, r, NULL, &resp) < 0)
		return CLI_EXIT_FAILURE;
	if (o.json)
		return cli_json_print(stdout, resp) < 0 ? CLI_EXIT_FAILURE : 0;
	if (!cli_json_true(resp, "enabled")) {
		cli_errorf(prog, "This node has no node channel: set node_name, node_key, "
				 "node_cert, node_ca, node_listen and the peers in xosd.conf "
				 "(see docs/NODES.md)");
		return CLI_EXIT_FAILURE;
	}
	peers = cli_json_get(resp, "peers");
	if (!YAJL_IS_ARRAY(peers)) {
		cli_report(prog, NULL, -EBADMSG);
		return CLI_EXIT_FAILURE;
	}
	r = print_table(peers);
	if (r >= 0)
		print_refused(cli_json_get(resp, "refused"));
	if (r < 0 || fflush(stdout) != 0) {
		cli_errorf(prog, "Failed to print the node list: %s", strerror(r < 0 ? -r : errno));
		return CLI_EXIT_FAILURE;
	}
	return 0;
}
