/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xtemplate: the node's template catalogue (ops template_*). The archive of
 * an import is opened here, as the caller, and passed to xosd as an open fd
 * (a directory becomes a tar stream written into a pipe): xosd never opens a
 * path a client names. */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "templates/templates.h"

enum { OPT_JSON = CLI_OPT_MAX, OPT_ALLOW_DEVICES, OPT_FORCE };

struct tpl_opts {
	const char *socket;
	bool json, force, allow_devices;
	char **env;
	const char *workdir, *user;
};

static const struct option import_options[] = {
	{ "allow-devices", no_argument, NULL, OPT_ALLOW_DEVICES },
	{ "env", required_argument, NULL, 'e' },
	{ "workdir", required_argument, NULL, 'w' },
	{ "user", required_argument, NULL, 'u' },
	CLI_COMMON_OPTIONS,
	{},
};
static const struct option json_options[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	CLI_COMMON_OPTIONS,
	{},
};
static const struct option remove_options[] = {
	{ "force", no_argument, NULL, OPT_FORCE },
	CLI_COMMON_OPTIONS,
	{},
};
static const struct option plain_options[] = {
	CLI_COMMON_OPTIONS,
	{},
};

static int tpl_option(const char *prog, int opt, const char *arg, void *opts)
{
	struct tpl_opts *o = opts;

	switch (opt) {
	case OPT_JSON:
		o->json = true;
		return 0;
	case OPT_FORCE:
		o->force = true;
		return 0;
	case OPT_ALLOW_DEVICES:
		o->allow_devices = true;
		return 0;
	case 'w':
		if (arg[0] != '/') {
			cli_errorf(prog, "The working directory '%s' must be absolute", arg);
			return -EINVAL;
		}
		o->workdir = arg;
		return 0;
	case 'u':
		o->user = arg;
		return 0;
	default: /* -e */
		if (!strchr(arg, '=') || arg[0] == '=') {
			cli_errorf(prog, "Environment item '%s' is not K=V", arg);
			return -EINVAL;
		}
		return strv_push(&o->env, strdup(arg));
	}
}

#define EXIT_HELP "\nExit status: 0 on success, 1 on error, 2 for a usage error.\n"

static const struct cli_command cmd_import = {
	.shortopts = ":e:w:u:",
	.options = import_options,
	.synopsis = "NAME FILE|DIR",
	.help = "Import a root filesystem as template NAME (root only): a tar archive\n"
		"(optionally gzip, xz, bzip2 or zstd compressed; '-' reads standard input)\n"
		"or a directory. Nothing is written outside the template; entries with '..',\n"
		"absolute names, links that lead outside, or device nodes are refused.\n"
		"\n"
		"      --allow-devices  Keep device nodes and fifos of the archive\n"
		"  -e, --env K=V        Default environment of jobs on the template\n"
		"  -w, --workdir DIR    Default working directory of its jobs\n"
		"  -u, --user USER      The account of the template its jobs run as\n",
	.help_pad = 3,
	.help_end = EXIT_HELP,
	.option = tpl_option,
};
static const struct cli_command cmd_list = {
	.shortopts = ":",
	.options = json_options,
	.synopsis = "",
	.help = "List the templates: name, default mark, size, files, age, jobs using it.\n"
		"\n"
		"      --json        Print the templates as a JSON array\n",
	.help_end = EXIT_HELP,
	.option = tpl_option,
};
static const struct cli_command cmd_show = {
	.shortopts = ":",
	.options = json_options,
	.synopsis = "NAME",
	.help = "Show a template's metadata (xos-template(5)).\n"
		"\n"
		"      --json        Print it as a JSON object\n",
	.help_end = EXIT_HELP,
	.operand = "template",
	.single = true,
	.option = tpl_option,
};
static const struct cli_command cmd_default = {
	.shortopts = ":",
	.options = plain_options,
	.synopsis = "NAME",
	.help = "Make NAME the template of jobs that name none (root only); 'host' is the\n"
		"built-in one.\n\n",
	.help_end = EXIT_HELP,
	.operand = "template",
	.single = true,
	.option = tpl_option,
};
static const struct cli_command cmd_remove = {
	.shortopts = ":",
	.options = remove_options,
	.synopsis = "NAME",
	.help = "Remove a template (root only). Refused while a job uses it.\n"
		"\n"
		"      --force       Remove it anyway: the jobs using it keep running, and\n"
		"                    its files are deleted once they have ended\n",
	.help_end = EXIT_HELP,
	.operand = "template",
	.single = true,
	.option = tpl_option,
};

static void format_size(uint64_t b, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	size_t u = 0;

	while (v >= 1024 && u + 1 < ELEMENTSOF(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%" PRIu64 " B", b);
	else
		snprintf(buf, size, "%.1f %s", v, units[u]);
}

/* ---- import ---- */

static void show_progress(const char *name, yajl_val ev)
{
	int64_t rd = 0, total = 0, entries = 0;
	char a[32], b[32];

	(void)cli_json_int(ev, "read", &rd);
	(void)cli_json_int(ev, "total", &total);
	(void)cli_json_int(ev, "entries", &entries);
	format_size((uint64_t)rd, a, sizeof(a));
	format_size((uint64_t)total, b, sizeof(b));
	if (total > 0)
		fprintf(stderr, "\rImporting %s: %s of %s (%d%%), %" PRId64 " entries\033[K", name,
			a, b, (int)(rd * 100 / total), entries);
	else
		fprintf(stderr, "\rImporting %s: %s read, %" PRId64 " entries\033[K", name, a,
			entries);
}

/* A directory as a tar stream, written into a pipe by a thread of ours. */
struct packer {
	pthread_t thread;
	bool running;
	const char *dir;
	int fd; /* the pipe's write end */
	int r;
	char *err;
};

static void *packer_main(void *arg)
{
	struct packer *p = arg;

	p->r = template_pack_dir(p->dir, p->fd, &p->err);
	closep(&p->fd); /* the end of the stream */
	return NULL;
}

static int pack_dir(const char *dir, struct packer *p)
{
	int fds[2], r;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN); /* xosd stopping to read is EPIPE */
	*p = (struct packer){ .dir = dir, .fd = fds[1] };
	r = -pthread_create(&p->thread, NULL, packer_main, p);
	if (r < 0) {
		close(fds[0]);
		close(fds[1]);
		return r;
	}
	p->running = true;
	return fds[0];
}

/* Wait for the packer; its error is said unless xosd stopped reading (EPIPE:
 * xosd says why). */
static int packer_done(const char *prog, struct packer *p)
{
	if (!p->running)
		return 0;
	pthread_join(p->thread, NULL);
	p->running = false;
	if (p->r < 0 && p->r != -EPIPE)
		cli_errorf(prog, "Failed to read %s: %s", p->dir,
			   p->err ? p->err : strerror(-p->r));
	free(p->err);
	p->err = NULL;
	return p->r;
}

static int open_source(const char *prog, const char *path, struct packer *packer)
{
	struct stat st;
	int fd;

	if (!strcmp(path, "-"))
		return fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
	if (stat(path, &st) < 0) {
		cli_errorf(prog, "Cannot read %s: %m", path);
		return -errno;
	}
	if (S_ISDIR(st.st_mode)) {
		fd = pack_dir(path, packer);
		if (fd < 0)
			cli_errorf(prog, "Cannot pack %s: %s", path, strerror(-fd));
		return fd;
	}
	if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
		cli_errorf(prog, "%s is not an archive file, a pipe or a directory", path);
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		cli_errorf(prog, "Cannot open %s: %m", path);
	return fd < 0 ? -errno : fd;
}

static int import_request(const struct tpl_opts *o, const char *name, char **ret, size_t *len)
{
	_cleanup_gen_ yajl_gen g = NULL;
	int r = cli_request_begin("template_import", &g);

	if (r >= 0)
		r = cli_gen_str(g, "name", name);
	if (r >= 0 && o->env)
		r = cli_gen_strv(g, "env", o->env);
	if (r >= 0 && o->workdir)
		r = cli_gen_str(g, "workdir", o->workdir);
	if (r >= 0 && o->user)
		r = cli_gen_str(g, "user", o->user);
	if (r >= 0 && o->allow_devices)
		r = cli_gen_bool(g, "allow_devices", true);
	if (r >= 0)
		r = cli_request_end(g, ret, len);
	return r;
}

/* Send the request with the archive's fd, then show progress until the response. */
static int import_call(const char *prog, struct cli_conn *c, const char *req, size_t len, int src,
		       const char *name, yajl_val *ret)
{
	bool tty = isatty(STDERR_FILENO), shown = false;
	ssize_t n = send_with_fd(c->fd, req, len, src);
	int r = n < 0 ? -errno : cli_conn_send(c, req + n, len - (size_t)n);

	while (r >= 0) {
		_cleanup_json_ yajl_val msg = NULL;
		const char *ev;

		r = cli_conn_recv(c, &msg);
		if (r < 0)
			break;
		ev = cli_json_string(msg, "ev");
		if (ev && !strcmp(ev, "progress")) {
			if (tty)
				show_progress(name, msg);
			shown = shown || tty;
			continue;
		}
		if (ev)
			continue;
		r = cli_conn_check(c, msg);
		if (r >= 0)
			*ret = TAKE_PTR(msg);
		break;
	}
	if (shown)
		fputs("\r\033[K", stderr);
	if (r < 0)
		cli_report(prog, c, r);
	return r;
}

static int do_import(const char *prog, struct tpl_opts *o, int argc, char **argv)
{
	_cleanup_cli_conn_ struct cli_conn c = CLI_CONN_INIT;
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_free_ char *req = NULL;
	_cleanup_close_ int src = -EBADF;
	yajl_val t;
	size_t len;
	struct packer packer = { .fd = -EBADF };
	int64_t files = 0, size = 0;
	char sz[32];
	int r;

	if (argc - optind != 2) {
		cli_errorf(prog, "Give a template NAME and a FILE or DIR to import");
		fprintf(stderr, "Usage: %s [OPTIONS] %s\n", prog, cmd_import.synopsis);
		return CLI_EXIT_USAGE;
	}
	if ((r = import_request(o, argv[optind], &req, &len)) < 0) {
		cli_report(prog, NULL, r);
		return CLI_EXIT_FAILURE;
	}
	src = open_source(prog, argv[optind + 1], &packer);
	if (src < 0)
		return CLI_EXIT_FAILURE;
	r = cli_open(prog, o->socket, &c);
	if (r >= 0)
		r = import_call(prog, &c, req, len, src, argv[optind], &resp);
	closep(&src);
	cli_conn_done(&c); /* a packer still writing gets EPIPE */
	if (packer_done(prog, &packer) < 0 || r < 0)
		return CLI_EXIT_FAILURE;
	t = cli_json_get(resp, "template");
	(void)cli_json_int(t, "files", &files);
	(void)cli_json_int(t, "size", &size);
	format_size((uint64_t)size, sz, sizeof(sz));
	printf("Imported template %s: %" PRId64 " files, %s\n", argv[optind], files, sz);
	return 0;
}

/* ---- list, show, default, remove ---- */

static int call_simple(const char *prog, const struct tpl_opts *o, const char *op, const char *name,
		       yajl_val *ret)
{
	_cleanup_gen_ yajl_gen g = NULL;
	int r = cli_request_begin(op, &g);

	if (r >= 0 && name)
		r = cli_gen_str(g, "name", name);
	if (r >= 0 && o->force)
		r = cli_gen_bool(g, "force", true);
	return cli_request_call(prog, o->socket, g, r, NULL, ret);
}

static void print_row(yajl_val t, uint64_t now)
{
	int64_t size = -1, files = -1, created = -1, jobs = 0;
	const char *name = cli_json_string(t, "name");
	char sz[32] = "-", fl[32] = "-", age[32] = "-";

	(void)cli_json_int(t, "jobs", &jobs);
	if (cli_json_int(t, "size", &size) >= 0)
		format_size((uint64_t)size, sz, sizeof(sz));
	if (cli_json_int(t, "files", &files) >= 0)
		snprintf(fl, sizeof(fl), "%" PRId64, files);
	if (cli_json_int(t, "created", &created) >= 0 && created >= 0)
		(void)cli_format_relative(now, (uint64_t)created * 1000000, age, sizeof(age));
	if (cli_json_true(t, "builtin"))
		snprintf(sz, sizeof(sz), "(built-in)");
	printf("%-20s %-7s %-10s %-7s %-9s %" PRId64 "%s%s\n", name ? name : "?",
	       cli_json_true(t, "default") ? "*" : "", sz, fl, age, jobs,
	       cli_json_string(t, "error") ? "  error: " : "",
	       cli_json_string(t, "error") ? cli_json_string(t, "error") : "");
}

static int do_list(const char *prog, const struct tpl_opts *o)
{
	_cleanup_json_ yajl_val resp = NULL;
	yajl_val all;

	if (call_simple(prog, o, "template_list", NULL, &resp) < 0)
		return CLI_EXIT_FAILURE;
	all = cli_json_get(resp, "templates");
	if (!YAJL_IS_ARRAY(all)) {
		cli_report(prog, NULL, -EBADMSG);
		return CLI_EXIT_FAILURE;
	}
	if (o->json)
		return cli_json_print(stdout, all) < 0 ? CLI_EXIT_FAILURE : 0;
	printf("%-20s %-7s %-10s %-7s %-9s %s\n", "NAME", "DEFAULT", "SIZE", "FILES", "CREATED",
	       "JOBS");
	for (size_t i = 0; i < all->u.array.len; i++)
		print_row(all->u.array.values[i], now_usec());
	return fflush(stdout) == 0 ? 0 : CLI_EXIT_FAILURE;
}

static void print_strv(const char *label, yajl_val v)
{
	printf("%-10s", label);
	for (size_t i = 0; YAJL_IS_ARRAY(v) && i < v->u.array.len; i++)
		printf("%s%s", i ? " " : "", YAJL_GET_STRING(v->u.array.values[i]));
	printf("\n");
}

static int do_show(const char *prog, const struct tpl_opts *o, const char *name)
{
	_cleanup_json_ yajl_val resp = NULL;
	static const char *const keys[] = { "name",     "checksum", "workdir", "user", "uid_base",
					    "gid_base", "created",  "error",   NULL };
	yajl_val t;
	int64_t size, files;
	char sz[32];

	if (call_simple(prog, o, "template_show", name, &resp) < 0)
		return CLI_EXIT_FAILURE;
	t = cli_json_get(resp, "template");
	if (o->json)
		return cli_json_print(stdout, t) < 0 ? CLI_EXIT_FAILURE : 0;
	for (size_t i = 0; keys[i]; i++) {
		yajl_val v = cli_json_get(t, keys[i]);

		if (YAJL_IS_STRING(v))
			printf("%-10s%s\n", keys[i], YAJL_GET_STRING(v));
		else if (YAJL_IS_INTEGER(v))
			printf("%-10s%lld\n", keys[i], YAJL_GET_INTEGER(v));
	}
	if (cli_json_int(t, "size", &size) >= 0 && cli_json_int(t, "files", &files) >= 0) {
		format_size((uint64_t)size, sz, sizeof(sz));
		printf("%-10s%s (%" PRId64 " bytes) in %" PRId64 " files\n", "size", sz, size,
		       files);
	}
	if (cli_json_true(t, "builtin"))
		printf("%-10s%s\n", "builtin", "yes: the host's /usr in a skeleton root");
	printf("%-10s%s\n", "default", cli_json_true(t, "default") ? "yes" : "no");
	if (cli_json_get(t, "env"))
		print_strv("env", cli_json_get(t, "env"));
	print_strv("jobs", cli_json_get(t, "job_ids"));
	return fflush(stdout) == 0 ? 0 : CLI_EXIT_FAILURE;
}

static int do_default(const char *prog, const struct tpl_opts *o, const char *name)
{
	_cleanup_json_ yajl_val resp = NULL;

	if (call_simple(prog, o, "template_default", name, &resp) < 0)
		return CLI_EXIT_FAILURE;
	printf("Default template: %s\n", name);
	return 0;
}

static int do_remove(const char *prog, const struct tpl_opts *o, const char *name)
{
	_cleanup_json_ yajl_val resp = NULL;
	int64_t jobs = 0;
	yajl_val ids;

	if (call_simple(prog, o, "template_remove", name, &resp) < 0)
		return CLI_EXIT_FAILURE;
	(void)cli_json_int(resp, "jobs", &jobs);
	ids = cli_json_get(resp, "job_ids");
	printf("Removed template %s\n", name);
	if (jobs > 0) {
		printf("Still used by %" PRId64 " job%s:", jobs, jobs == 1 ? "" : "s");
		for (size_t i = 0; YAJL_IS_ARRAY(ids) && i < ids->u.array.len; i++)
			printf(" %s", YAJL_GET_STRING(ids->u.array.values[i]));
		printf("\nThey keep running on it; its files are deleted once they have ended.\n");
	}
	if (cli_json_true(resp, "was_default"))
		printf("It was the default template: the default is now host.\n");
	return 0;
}

/* ---- dispatch ---- */

static const struct sub {
	const char *name;
	const struct cli_command *cmd;
	const char *summary;
} subs[] = {
	{ "import", &cmd_import, "Import an archive or directory as a template (root)" },
	{ "list", &cmd_list, "List the templates" },
	{ "show", &cmd_show, "Show a template" },
	{ "default", &cmd_default, "Make a template the default (root)" },
	{ "remove", &cmd_remove, "Remove a template (root)" },
};

static void usage(const char *prog, FILE *f)
{
	fprintf(f,
		"Usage: %s COMMAND [OPTIONS] [ARG...]\n"
		"Manage the node's container templates.\n\nCommands:\n",
		prog);
	for (size_t i = 0; i < ELEMENTSOF(subs); i++)
		fprintf(f, "  %-8s %s\n", subs[i].name, subs[i].summary);
	fprintf(f, "\nRun '%s COMMAND --help' for the options of a command.\n", prog);
}

static int run_sub(const char *prog, const struct sub *s, struct tpl_opts *o, int argc, char **argv)
{
	int r = cli_parse_options(prog, s->cmd, argc, argv, &o->socket, o);

	if (r != 0)
		return r > 0 ? 0 : r == -ENOMEM ? CLI_EXIT_FAILURE : CLI_EXIT_USAGE;
	if (s->cmd == &cmd_import)
		return do_import(prog, o, argc, argv);
	if (s->cmd == &cmd_list) {
		if (optind < argc) {
			cli_errorf(prog, "Unexpected argument '%s'", argv[optind]);
			return CLI_EXIT_USAGE;
		}
		return do_list(prog, o);
	}
	if (s->cmd == &cmd_show)
		return do_show(prog, o, argv[optind]);
	if (s->cmd == &cmd_default)
		return do_default(prog, o, argv[optind]);
	return do_remove(prog, o, argv[optind]);
}

int cli_xtemplate_main(const char *prog, int argc, char **argv)
{
	struct tpl_opts o = {};
	char sub_prog[64];
	int r;

	if (argc < 2) {
		usage(prog, stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(prog, stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		cli_print_version(prog);
		return 0;
	}
	for (size_t i = 0; i < ELEMENTSOF(subs); i++) {
		if (strcmp(argv[1], subs[i].name) != 0)
			continue;
		snprintf(sub_prog, sizeof(sub_prog), "%s %s", prog, subs[i].name);
		r = run_sub(sub_prog, &subs[i], &o, argc - 1, argv + 1);
		strv_free(o.env);
		return r;
	}
	cli_errorf(prog, "Unknown command '%s'", argv[1]);
	fprintf(stderr, "See '%s --help'.\n", prog);
	return CLI_EXIT_USAGE;
}
