/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xps: list jobs (op "ps") as a table, ids only, or JSON. */
#include <inttypes.h>

#include "cli/cli.h"

enum { OPT_JSON = CLI_OPT_MAX };
enum {
	COL_ID,
	COL_NAME,
	COL_USER,
	COL_VO, /* VO and IDENTITY: only when a job listed came from a grid login */
	COL_IDENTITY,
	COL_STATE,
	COL_UNITS,
	COL_DISK,
	COL_CREATED,
	COL_ADDRESS,
	COL_PORTS,
	COL_COMMAND,
	COL_MAX
};

static const char *const col_titles[COL_MAX] = {
	"ID",    "NAME", "USER",    "VO",      "IDENTITY", "STATE",
	"UNITS", "DISK", "CREATED", "ADDRESS", "PORTS",    "COMMAND",
};

/* "used/size" of the job's writable layer while it runs, else "-". */
static char *ps_disk(yajl_val job)
{
	char used[32], size[32];
	int64_t u, s;

	if (cli_json_int(cli_json_get(job, "usage"), "disk", &u) < 0 ||
	    cli_json_int(cli_json_get(job, "limits"), "disk", &s) < 0 || u < 0 || s <= 0 ||
	    cli_format_size((uint64_t)u, used, sizeof(used)) < 0 ||
	    cli_format_size((uint64_t)s, size, sizeof(size)) < 0)
		return strdup("-");
	return xstrdup_printf("%s/%s", used, size);
}

static const struct option ps_options[] = {
	{ "all", no_argument, NULL, 'a' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "quiet", no_argument, NULL, 'q' },
	CLI_COMMON_OPTIONS,
	{},
};

struct ps_opts {
	bool all, json, quiet;
	const char *socket;
};

static int ps_option(_unused_ const char *prog, int opt, _unused_ const char *arg, void *opts)
{
	struct ps_opts *o = opts;

	if (opt == 'a')
		o->all = true;
	else if (opt == 'q')
		o->quiet = true;
	else /* --json */
		o->json = true;
	return 0;
}

static const struct cli_command ps_command = {
	.shortopts = ":aq",
	.options = ps_options,
	.synopsis = "[JOB...]",
	.help = "List jobs: the live ones, all of them, or those named (id, id prefix or name).\n"
		"\n"
		"  -a, --all         Also list jobs that have ended\n"
		"      --json        Print the jobs as a JSON array\n"
		"  -q, --quiet       Print job ids only\n",
	.help_end = "\n"
		    "Exit status: 0 on success, 1 on error, 2 for a usage error.\n",
	.option = ps_option,
};

/* The table's cells: strings of the reply as they are, the others copied
 * into a few large blocks, all let go at once (10,000 jobs are 120,000
 * cells: a malloc each was a good part of `xps` on a full queue). */
struct cell_pool {
	char *blocks[64];
	size_t n, used, size;
};

static const char *pool_add(struct cell_pool *p, const char *s, size_t len)
{
	char *at;

	if (!s)
		return NULL;
	if (p->n == 0 || p->size - p->used < len + 1) {
		size_t size = p->size ? p->size * 2 : 65536;

		while (size < len + 1)
			size *= 2;
		if (p->n == ELEMENTSOF(p->blocks) || !(p->blocks[p->n] = malloc(size)))
			return NULL;
		p->n++;
		p->used = 0;
		p->size = size;
	}
	at = p->blocks[p->n - 1] + p->used;
	memcpy(at, s, len);
	at[len] = 0;
	p->used += len + 1;
	return at;
}

/* s, which pool_add copies and free()s */
static const char *pool_take(struct cell_pool *p, char *s)
{
	const char *r = s ? pool_add(p, s, strlen(s)) : NULL;

	free(s);
	return r;
}

static void pool_free(struct cell_pool *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->blocks[i]);
}

/* "18080:8080/tcp,5353:53/udp", or "-" */
static char *ps_ports(yajl_val net)
{
	yajl_val p = cli_json_get(net, "ports");
	char *s = NULL;

	for (size_t i = 0; YAJL_IS_ARRAY(p) && i < p->u.array.len; i++) {
		const char *spec = YAJL_GET_STRING(p->u.array.values[i]);
		char *more = xstrdup_printf("%s%s%s", s ? s : "", s ? "," : "", spec ? spec : "?");

		free(s);
		if (!(s = more))
			return NULL;
	}
	return s ? s : strdup("-");
}

static const char *str_or(const char *s, const char *dflt)
{
	return s ? s : dflt;
}

/* A cell: a string of the reply, a constant, or one in the pool; NULL when
 * out of memory. */
static const char *ps_cell(struct cell_pool *p, yajl_val job, int col, uint64_t now)
{
	char buf[128];
	const char *s;
	int64_t t;

	switch (col) {
	case COL_ID:
		s = str_or(cli_json_string(job, "id"), "?");
		return pool_add(p, s, strnlen(s, XOS_JOB_ID_SHORT));
	case COL_NAME:
		return str_or(cli_json_string(job, "name"), "-");
	case COL_USER:
		return str_or(cli_json_string(job, "user"), "?");
	case COL_VO:
		return str_or(cli_json_string(cli_json_get(job, "grid"), "vo"), "-");
	case COL_IDENTITY:
		return str_or(cli_json_string(cli_json_get(job, "grid"), "dn"), "-");
	case COL_STATE:
		if (cli_format_job_state(job, buf, sizeof(buf)) < 0)
			return "?";
		return pool_add(p, buf, strlen(buf));
	case COL_UNITS: {
		yajl_val u = cli_json_get(job, "units");
		int n = snprintf(buf, sizeof(buf), "%zu",
				 YAJL_IS_ARRAY(u) ? u->u.array.len : (size_t)0);

		return pool_add(p, buf, (size_t)n);
	}
	case COL_DISK:
		if (!cli_json_get(job, "usage"))
			return "-";
		return pool_take(p, ps_disk(job));
	case COL_CREATED:
		if (cli_json_int(job, "created_us", &t) < 0 || t < 0 ||
		    cli_format_relative(now, (uint64_t)t, buf, sizeof(buf)) < 0)
			return "?";
		return pool_add(p, buf, strlen(buf));
	case COL_ADDRESS:
		return str_or(cli_json_string(cli_json_get(job, "net"), "address"), "-");
	case COL_PORTS:
		if (!cli_json_get(cli_json_get(job, "net"), "ports"))
			return "-";
		return pool_take(p, ps_ports(cli_json_get(job, "net")));
	default: {
		yajl_val u = cli_json_get(job, "units");
		yajl_val first = YAJL_IS_ARRAY(u) && u->u.array.len > 0 ? u->u.array.values[0]
									: NULL;
		return pool_take(
			p, cli_format_command(cli_json_get(first, "argv"), CLI_COMMAND_WIDTH));
	}
	}
}

/* Each row built in one buffer (cells padded to their column's width, two
 * spaces apart), written with one large stdio buffer. */
static int ps_table_print(const char **cells, size_t rows, bool grid)
{
	static char out[1 << 16];
	size_t width[COL_MAX] = { 0 }, line_max = 0;
	_cleanup_free_ char *line = NULL;

	for (size_t i = 0; i < rows * COL_MAX; i++) {
		size_t n = strlen(cells[i]);

		if (n > width[i % COL_MAX])
			width[i % COL_MAX] = n;
	}
	for (int col = 0; col < COL_MAX; col++)
		line_max += width[col] + 2;
	line = malloc(line_max + 1);
	if (!line)
		return -ENOMEM;
	(void)setvbuf(stdout, out, _IOFBF, sizeof(out));
	for (size_t row = 0; row < rows; row++) {
		size_t len = 0;

		for (int col = 0; col < COL_MAX; col++) {
			const char *cell = cells[row * COL_MAX + col];
			size_t n = strlen(cell);

			if (!grid && (col == COL_VO || col == COL_IDENTITY))
				continue;
			memcpy(line + len, cell, n);
			len += n;
			if (col == COL_MAX - 1)
				break;
			memset(line + len, ' ', width[col] - n + 2);
			len += width[col] - n + 2;
		}
		line[len++] = '\n';
		if (fwrite(line, 1, len, stdout) != len)
			break;
	}
	return fflush(stdout) == 0 ? 0 : -errno;
}

static int ps_print_table(yajl_val jobs)
{
	size_t rows = jobs->u.array.len + 1;
	uint64_t now = now_usec();
	struct cell_pool pool = { 0 };
	bool grid = false;
	_cleanup_free_ const char **cells = NULL;
	int r = 0;

	for (size_t i = 0; i < jobs->u.array.len; i++)
		grid = grid || cli_json_get(jobs->u.array.values[i], "grid");

	cells = calloc(rows * COL_MAX, sizeof(char *));
	if (!cells)
		return -ENOMEM;
	for (int col = 0; col < COL_MAX; col++)
		cells[col] = col_titles[col];
	for (size_t row = 1; row < rows && r == 0; row++)
		for (int col = 0; col < COL_MAX; col++) {
			cells[row * COL_MAX + col] = ps_cell(&pool, jobs->u.array.values[row - 1],
							     col, now);
			if (!cells[row * COL_MAX + col])
				r = -ENOMEM;
		}
	if (r == 0)
		r = ps_table_print(cells, rows, grid);
	pool_free(&pool);
	return r;
}

static int ps_print(const struct ps_opts *o, yajl_val jobs)
{
	if (o->quiet) {
		for (size_t i = 0; i < jobs->u.array.len; i++) {
			const char *id = cli_json_string(jobs->u.array.values[i], "id");

			if (id)
				printf("%s\n", id);
		}
		return fflush(stdout) == 0 ? 0 : -errno;
	}
	return ps_print_table(jobs);
}

/* --json: the listing printed from the response's text; 10,000 jobs are
 * no tree made and generated again (cli_json_print_member). */
static int ps_json(const char *prog, const struct ps_opts *o, yajl_gen g, int build)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r;

	if (cli_request_call_text(prog, o->socket, g, build, &text, &len) < 0)
		return CLI_EXIT_FAILURE;
	r = cli_json_print_member(stdout, text, len, "jobs");
	if (r == -ENOENT || r == -EBADMSG) {
		cli_report(prog, NULL, -EBADMSG);
		return CLI_EXIT_FAILURE;
	}
	if (r < 0) {
		cli_errorf(prog, "Failed to print the job list: %s", strerror(-r));
		return CLI_EXIT_FAILURE;
	}
	return 0;
}

int cli_xps_main(const char *prog, int argc, char **argv)
{
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	struct ps_opts o = {};
	yajl_val jobs;
	int r;

	r = cli_parse_options(prog, &ps_command, argc, argv, &o.socket, &o);
	if (r != 0)
		return r > 0 ? 0 : CLI_EXIT_USAGE;
	r = cli_request_begin("ps", &g);
	if (r >= 0)
		r = cli_gen_strv(g, "jobs", argv + optind);
	if (r >= 0)
		r = cli_gen_bool(g, "all", o.all);
	if (o.json)
		return ps_json(prog, &o, g, r);
	if (r >= 0) /* (the table and -q: the short form is enough) */
		r = cli_gen_bool(g, "brief", true);
	if (cli_request_call(prog, o.socket, g, r, NULL, &resp) < 0)
		return CLI_EXIT_FAILURE;
	jobs = cli_json_get(resp, "jobs");
	if (!YAJL_IS_ARRAY(jobs)) {
		cli_report(prog, NULL, -EBADMSG);
		return CLI_EXIT_FAILURE;
	}
	r = ps_print(&o, jobs);
	if (r < 0) {
		cli_errorf(prog, "Failed to print the job list: %s", strerror(-r));
		return CLI_EXIT_FAILURE;
	}
	return 0;
}
