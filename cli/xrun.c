/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xrun: run a command as a job (op "run"); attached, stream its output,
 * forward signals and exit with its exit code. */
#include <signal.h>
#include <sys/signalfd.h>

#include "cli/cli.h"

enum {
	OPT_NAME = CLI_OPT_MAX,
	OPT_TEMPLATE,
	OPT_MEMORY,
	OPT_CPUS,
	OPT_PIDS,
	OPT_USER,
	OPT_JOB,
	OPT_NET,
	OPT_IP,
	OPT_GROUP,
};

static const struct option run_options[] = {
	{ "detach", no_argument, NULL, 'd' },
	{ "tty", no_argument, NULL, 't' },
	{ "env", required_argument, NULL, 'e' },
	{ "workdir", required_argument, NULL, 'w' },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "template", required_argument, NULL, OPT_TEMPLATE },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "pids", required_argument, NULL, OPT_PIDS },
	{ "user", required_argument, NULL, OPT_USER },
	{ "job", required_argument, NULL, OPT_JOB },
	{ "net", required_argument, NULL, OPT_NET },
	{ "ip", required_argument, NULL, OPT_IP },
	{ "publish", required_argument, NULL, 'p' },
	{ "group", required_argument, NULL, OPT_GROUP },
	CLI_COMMON_OPTIONS,
	{},
};

void cli_run_opts_done(struct cli_run_opts *o)
{
	strv_free(o->env);
	o->env = NULL;
	strv_free(o->ports);
	o->ports = NULL;
}

static int run_add_env(const char *prog, struct cli_run_opts *o, const char *arg)
{
	const char *val;
	char *item;

	if (!*arg || *arg == '=') {
		cli_errorf(prog, "Invalid --env value '%s': use NAME=VALUE or NAME", arg);
		return -EINVAL;
	}
	if (strchr(arg, '='))
		item = strdup(arg);
	else if ((val = getenv(arg)))
		item = xstrdup_printf("%s=%s", arg, val);
	else
		return 0; /* unset here: not passed, as docker does */
	if (!item)
		return -ENOMEM;
	return strv_push(&o->env, item);
}

static int run_limit(const char *prog, int opt, const char *arg, struct cli_run_opts *o)
{
	switch (opt) {
	case OPT_MEMORY:
		if (parse_size(arg, &o->memory) < 0) {
			cli_errorf(prog,
				   "Invalid --memory value '%s': use a number with an "
				   "optional K, M, G or T suffix",
				   arg);
			return -EINVAL;
		}
		o->has_memory = true;
		return 0;
	case OPT_CPUS:
		o->cpus = 0;
		if (strcmp(arg, "0") != 0 && parse_cpus(arg, &o->cpus) < 0) {
			cli_errorf(prog,
				   "Invalid --cpus value '%s': use a number of CPUs such as "
				   "0.5 or 2",
				   arg);
			return -EINVAL;
		}
		o->has_cpus = true;
		return 0;
	default:
		if (parse_uint64(arg, &o->pids) < 0) {
			cli_errorf(prog,
				   "Invalid --pids value '%s': use a whole number (0 for no "
				   "limit)",
				   arg);
			return -EINVAL;
		}
		o->has_pids = true;
		return 0;
	}
}

static int run_option(const char *prog, int opt, const char *arg, void *opts)
{
	struct cli_run_opts *o = opts;

	switch (opt) {
	case 'd':
		o->detach = true;
		return 0;
	case 't':
		o->tty = true;
		return 0;
	case 'e':
		return run_add_env(prog, o, arg);
	case 'w':
		o->workdir = arg;
		return 0;
	case OPT_NAME:
		o->name = arg;
		return 0;
	case OPT_TEMPLATE:
		o->template_name = arg;
		return 0;
	case OPT_USER:
		o->user = arg;
		return 0;
	case OPT_JOB:
		o->job = arg;
		return 0;
	case OPT_NET:
		o->net = arg;
		return 0;
	case OPT_IP:
		o->ip = arg;
		return 0;
	case OPT_GROUP:
		o->group = arg;
		return 0;
	case 'p': {
		char *s = strdup(arg);

		return s ? strv_push(&o->ports, s) : -ENOMEM;
	}
	default: /* --memory, --cpus, --pids */
		return run_limit(prog, opt, arg, o);
	}
}

static const struct cli_command run_command = {
	.shortopts = "+:dte:w:p:",
	.options = run_options,
	.synopsis = "[--] COMMAND [ARG...]",
	.help = "Run COMMAND as a job in its own container on this node.\n"
		"\n"
		"  -d, --detach         Run in the background and print the job id\n"
		"  -t, --tty            Give the job a terminal (needs a running xrun; not -d)\n"
		"  -e, --env NAME=VALUE Set an environment variable (repeatable); a bare\n"
		"                       NAME takes its value from this environment\n"
		"  -w, --workdir DIR    Working directory inside the job (default /)\n"
		"      --name NAME      Name the job (unique among live jobs)\n"
		"      --template NAME  Root filesystem template (default: the node's)\n"
		"      --memory SIZE    Memory limit, e.g. 512M or 2G (0: no limit)\n"
		"      --cpus N         CPU limit in CPUs, e.g. 0.5 or 2 (0: no limit)\n"
		"      --pids N         Limit on the number of tasks (0: no limit)\n"
		"      --user NAME      Local account to run as\n"
		"      --job JOB        Add COMMAND as a new unit to job JOB\n"
		"      --net MODE       Network: none (loopback only) or bridge (an address\n"
		"                       on the node bridge); default: the node's, or bridge\n"
		"                       with --ip, -p or --group\n"
		"      --ip ADDR        Ask for this address of the pool (--net bridge)\n"
		"  -p, --publish HOSTPORT:PORT[/tcp|/udp]\n"
		"                       Publish the job's PORT as the node's HOSTPORT\n"
		"                       (repeatable; below 1024 only for root)\n"
		"      --group NAME     Isolation group (default: default); jobs of other\n"
		"                       groups cannot reach this one\n",
	.help_pad = 3,
	.help_end = "\n"
		    "Options end at COMMAND. Attached, output and exit code are the job's and\n"
		    "SIGINT, SIGTERM, SIGHUP and SIGQUIT are forwarded to it.\n"
		    "Exit status: the job's own, 128+N when killed by signal N, 125 for an\n"
		    "xos error, 126 if COMMAND cannot be executed, 127 if it is not found.\n",
	.operand = "command",
	.option = run_option,
};

int cli_run_parse(const char *prog, int argc, char **argv, struct cli_run_opts *o)
{
	int r = cli_parse_options(prog, &run_command, argc, argv, &o->socket, o);

	if (r != 0)
		return r;
	o->argv = argv + optind;
	return 0;
}

static int run_gen_fields(yajl_gen g, const struct cli_run_opts *o)
{
	const struct {
		const char *key, *val;
	} strs[] = {
		{ "workdir", o->workdir }, { "name", o->name },   { "template", o->template_name },
		{ "user", o->user },       { "job", o->job },     { "net", o->net },
		{ "ip", o->ip },           { "group", o->group },
	};
	int r = cli_gen_strv(g, "argv", o->argv);

	if (r >= 0 && o->env && o->env[0])
		r = cli_gen_strv(g, "env", o->env);
	if (r >= 0 && o->ports && o->ports[0])
		r = cli_gen_strv(g, "ports", o->ports);
	for (size_t i = 0; r >= 0 && i < ELEMENTSOF(strs); i++)
		if (strs[i].val)
			r = cli_gen_str(g, strs[i].key, strs[i].val);
	if (r >= 0 && o->has_memory)
		r = cli_gen_int(g, "memory", (int64_t)o->memory);
	if (r >= 0 && o->has_cpus)
		r = cli_gen_int(g, "cpus", (int64_t)o->cpus);
	if (r >= 0 && o->has_pids)
		r = cli_gen_int(g, "pids", (int64_t)o->pids);
	if (r >= 0)
		r = cli_gen_bool(g, "attach", !o->detach);
	if (r >= 0 && o->tty)
		r = cli_gen_bool(g, "tty", true);
	return r;
}

int cli_run_request(const struct cli_run_opts *o, char **ret, size_t *ret_len)
{
	_cleanup_gen_ yajl_gen g = NULL;
	int r;

	if (!o->argv || !o->argv[0])
		return -EINVAL;
	if ((o->has_memory && o->memory > INT64_MAX) || (o->has_pids && o->pids > INT64_MAX))
		return -ERANGE;
	r = cli_request_begin("run", &g);
	if (r < 0)
		return r;
	r = run_gen_fields(g, o);
	if (r < 0)
		return r;
	return cli_request_end(g, ret, ret_len);
}

/* Signals to forward arrive on a signalfd; none of them kills xrun. */
static int run_signalfd(void)
{
	sigset_t mask;
	int fd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigaddset(&mask, SIGWINCH); /* -t: the job's terminal follows our size */
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	/* A closed reader of our output is the job's business (stream.c). */
	signal(SIGPIPE, SIG_IGN);
	return fd;
}

static int run_finish(const char *prog, const char *id, struct cli_stream *s)
{
	if (strcmp(s->state, "failed") == 0)
		cli_errorf(prog, "Job %.*s failed: %s", XOS_JOB_ID_SHORT, id,
			   s->reason ? s->reason : "no reason given");
	else if (strcmp(s->state, "killed") == 0 && s->reason)
		cli_errorf(prog, "Job %.*s was killed by SIG%s: %s", XOS_JOB_ID_SHORT, id,
			   signal_name(s->signal) ? signal_name(s->signal) : "?", s->reason);
	fflush(stdout);
	return s->exit_code;
}

static int run_attached(const char *prog, struct cli_conn *c, int sigfd, const char *req,
			size_t len)
{
	_cleanup_cli_stream_ struct cli_stream s = {
		.prog = prog,
		.sigfd = sigfd,
		.forward_sigpipe = true,
		.want_response = true,
	};
	enum cli_stream_end end;
	const char *id;
	int r;

	r = cli_conn_send(c, req, len);
	if (r >= 0)
		r = cli_stream_run(c, &s, &end);
	if (r < 0) {
		cli_report(prog, c, r);
		return CLI_EXIT_XOS;
	}
	id = cli_json_string(s.response, "job");
	if (!id || !job_id_valid(id)) {
		cli_report(prog, c, -EBADMSG);
		return CLI_EXIT_XOS;
	}
	r = cli_stream_run(c, &s, &end);
	if (r == -ECONNRESET) {
		cli_errorf(prog, "Lost connection to xosd; the job goes on: see 'xps %.*s'",
			   XOS_JOB_ID_SHORT, id);
		return CLI_EXIT_XOS;
	}
	if (r < 0 && s.write_error < 0) {
		cli_errorf(prog,
			   "Failed to write the job's output: %s; the job goes on: see "
			   "'xps %.*s'",
			   strerror(-s.write_error), XOS_JOB_ID_SHORT, id);
		return CLI_EXIT_XOS;
	}
	if (r < 0 || end != CLI_STREAM_EXIT) {
		cli_report(prog, c, r < 0 ? r : -EBADMSG);
		return CLI_EXIT_XOS;
	}
	return run_finish(prog, id, &s);
}

static int run_detached(const char *prog, struct cli_conn *c, const char *req, size_t len)
{
	_cleanup_json_ yajl_val resp = NULL;
	const char *id;

	if (cli_call(prog, c, req, len, &resp) < 0)
		return CLI_EXIT_XOS;
	id = cli_json_string(resp, "job");
	if (!id || !job_id_valid(id)) {
		cli_report(prog, c, -EBADMSG);
		return CLI_EXIT_XOS;
	}
	printf("%s\n", id);
	return fflush(stdout) == 0 ? 0 : CLI_EXIT_XOS;
}

int cli_xrun_main(const char *prog, int argc, char **argv)
{
	_cleanup_cli_run_opts_ struct cli_run_opts o = {};
	_cleanup_cli_conn_ struct cli_conn c = CLI_CONN_INIT;
	_cleanup_close_ int sigfd = -EBADF;
	_cleanup_free_ char *req = NULL;
	size_t len;
	int r;

	r = cli_run_parse(prog, argc, argv, &o);
	if (r != 0)
		return r > 0 ? 0 : CLI_EXIT_XOS;
	r = cli_run_request(&o, &req, &len);
	if (r < 0) {
		cli_report(prog, &c, r);
		return CLI_EXIT_XOS;
	}
	if (!o.detach) {
		sigfd = run_signalfd();
		if (sigfd < 0) {
			cli_errorf(prog, "Failed to set up signal forwarding: %s",
				   strerror(-sigfd));
			return CLI_EXIT_XOS;
		}
	}
	if (cli_open(prog, o.socket, &c) < 0)
		return CLI_EXIT_XOS;
	if (o.detach)
		return run_detached(prog, &c, req, len);
	return run_attached(prog, &c, sigfd, req, len);
}
