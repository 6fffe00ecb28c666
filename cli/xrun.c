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
	OPT_DISK,
	OPT_FILES,
	OPT_NO_HOME,
	OPT_NET,
	OPT_IP,
	OPT_GROUP,
	OPT_CKPT_EVERY,
	OPT_KEEP,
	OPT_CKPT_SIGNAL,
	OPT_CKPT_GRACE,
	OPT_RESTORE_SIGNAL,
	OPT_RESTART,
	OPT_LOG_SIZE,
	OPT_PRIORITY,
	OPT_HOLD,
	OPT_AFTER,
	OPT_TIME,
	OPT_PREEMPTIBLE,
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
	{ "volume", required_argument, NULL, 'v' },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "files", required_argument, NULL, OPT_FILES },
	{ "no-home", no_argument, NULL, OPT_NO_HOME },
	{ "net", required_argument, NULL, OPT_NET },
	{ "ip", required_argument, NULL, OPT_IP },
	{ "publish", required_argument, NULL, 'p' },
	{ "group", required_argument, NULL, OPT_GROUP },
	{ "checkpoint-every", required_argument, NULL, OPT_CKPT_EVERY },
	{ "keep", required_argument, NULL, OPT_KEEP },
	{ "checkpoint-signal", required_argument, NULL, OPT_CKPT_SIGNAL },
	{ "checkpoint-grace", required_argument, NULL, OPT_CKPT_GRACE },
	{ "restore-signal", required_argument, NULL, OPT_RESTORE_SIGNAL },
	{ "restart", required_argument, NULL, OPT_RESTART },
	{ "log-size", required_argument, NULL, OPT_LOG_SIZE },
	{ "priority", required_argument, NULL, OPT_PRIORITY },
	{ "hold", no_argument, NULL, OPT_HOLD },
	{ "preemptible", no_argument, NULL, OPT_PREEMPTIBLE },
	{ "after", required_argument, NULL, OPT_AFTER },
	{ "time", required_argument, NULL, OPT_TIME },
	CLI_COMMON_OPTIONS,
	{},
};

void cli_run_opts_done(struct cli_run_opts *o)
{
	strv_free(o->env);
	o->env = NULL;
	strv_free(o->ports);
	o->ports = NULL;
	strv_free(o->after);
	o->after = NULL;
	for (size_t i = 0; i < o->n_volumes; i++) {
		free(o->volumes[i].src);
		free(o->volumes[i].dst);
	}
	o->n_volumes = 0;
	free(o->cwd);
	o->cwd = NULL;
}

int cli_parse_volume(const char *spec, const char *cwd, struct cli_volume *ret)
{
	const char *c1 = strchr(spec, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	bool ro = false;

	if (!c1 || c1 == spec || c1[1] == 0 || c1[1] == ':')
		return -EINVAL;
	if (c2) {
		if (!strcmp(c2 + 1, "ro"))
			ro = true;
		else if (strcmp(c2 + 1, "rw") != 0)
			return -EINVAL;
	}
	if (spec[0] != '/' && (!cwd || cwd[0] != '/'))
		return -EINVAL;
	*ret = (struct cli_volume){
		.src = spec[0] == '/' ? strndup(spec, (size_t)(c1 - spec))
				      : xstrdup_printf("%s/%.*s", strcmp(cwd, "/") ? cwd : "",
						       (int)(c1 - spec), spec),
		.dst = c2 ? strndup(c1 + 1, (size_t)(c2 - c1 - 1)) : strdup(c1 + 1),
		.ro = ro,
	};
	if (!ret->src || !ret->dst) {
		free(ret->src);
		free(ret->dst);
		return -ENOMEM;
	}
	return 0;
}

static int run_add_volume(const char *prog, struct cli_run_opts *o, const char *arg)
{
	int r;

	if (o->n_volumes >= CLI_MAX_VOLUMES) {
		cli_errorf(prog, "At most %d volumes", CLI_MAX_VOLUMES);
		return -EINVAL;
	}
	r = cli_parse_volume(arg, o->cwd, &o->volumes[o->n_volumes]);
	if (r == -EINVAL)
		cli_errorf(prog,
			   "Invalid --volume '%s': use HOST_DIR:JOB_DIR, HOST_DIR:JOB_DIR:ro "
			   "or HOST_DIR:JOB_DIR:rw",
			   arg);
	if (r >= 0)
		o->n_volumes++;
	return r;
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
	case OPT_DISK:
		if (parse_size(arg, &o->disk) < 0 || o->disk == 0) {
			cli_errorf(prog, "Invalid --disk value '%s': use a size such as 64M or 2G",
				   arg);
			return -EINVAL;
		}
		return 0;
	case OPT_LOG_SIZE:
		if (parse_size(arg, &o->log_size) < 0 || o->log_size < (64 << 10)) {
			cli_errorf(prog,
				   "Invalid --log-size value '%s': use a size of at least 64K, "
				   "such as 1M or 100M",
				   arg);
			return -EINVAL;
		}
		return 0;
	case OPT_FILES:
		if (parse_uint64(arg, &o->files) < 0 || o->files == 0) {
			cli_errorf(prog, "Invalid --files value '%s': use a positive whole number",
				   arg);
			return -EINVAL;
		}
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

static int run_ckpt_option(const char *prog, int opt, const char *arg, struct cli_run_opts *o)
{
	int r = 0;

	switch (opt) {
	case OPT_CKPT_EVERY:
		r = parse_duration(arg, &o->ckpt_every_us);
		if (r >= 0 && o->ckpt_every_us < 1000000)
			r = -ERANGE;
		break;
	case OPT_CKPT_GRACE:
		r = parse_duration(arg, &o->ckpt_grace_us);
		o->has_grace = true;
		break;
	case OPT_KEEP:
		r = parse_uint64(arg, &o->ckpt_keep);
		if (r >= 0 && (o->ckpt_keep == 0 || o->ckpt_keep > 1000))
			r = -ERANGE;
		break;
	case OPT_CKPT_SIGNAL:
		r = parse_signal(arg, &o->ckpt_signal);
		break;
	case OPT_RESTORE_SIGNAL:
		r = parse_signal(arg, &o->restore_signal);
		break;
	default: /* --restart */
		if (strcmp(arg, "on-failure") && strcmp(arg, "no"))
			r = -EINVAL;
		o->restart_on_failure = !strcmp(arg, "on-failure");
	}
	if (r < 0)
		cli_errorf(prog,
			   "Invalid value '%s' (durations: 30s, 10m, 1h, at least 1s for "
			   "--checkpoint-every; signals: USR1, TERM, 10; --keep: 1 to 1000; "
			   "--restart: on-failure or no)",
			   arg);
	return r < 0 ? -EINVAL : 0;
}

/* --priority, --hold, --after, --time */
static int run_sched_option(const char *prog, int opt, const char *arg, struct cli_run_opts *o)
{
	char *s;

	switch (opt) {
	case OPT_PRIORITY:
		if (parse_uint64(arg, &o->priority) < 0 || o->priority > CLI_PRIORITY_MAX) {
			cli_errorf(prog,
				   "Invalid --priority value '%s': use a whole number from 0 to "
				   "%d (default %d; above it only for root)",
				   arg, CLI_PRIORITY_MAX, CLI_PRIORITY_DEFAULT);
			return -EINVAL;
		}
		o->has_priority = true;
		return 0;
	case OPT_HOLD:
		o->hold = true;
		return 0;
	case OPT_PREEMPTIBLE:
		o->preemptible = true;
		return 0;
	case OPT_TIME:
		if (parse_duration(arg, &o->time_us) < 0 || o->time_us < 1000000 ||
		    o->time_us > INT64_MAX) {
			cli_errorf(prog,
				   "Invalid --time value '%s': use a duration of at least 1s, "
				   "such as 90s, 30m, 2h or 1d",
				   arg);
			return -EINVAL;
		}
		return 0;
	default: /* --after */
		s = strdup(arg);
		return s ? strv_push(&o->after, s) : -ENOMEM;
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
	case 'v':
		return run_add_volume(prog, o, arg);
	case OPT_NO_HOME:
		o->no_home = true;
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
	case OPT_CKPT_EVERY:
	case OPT_KEEP:
	case OPT_CKPT_SIGNAL:
	case OPT_CKPT_GRACE:
	case OPT_RESTORE_SIGNAL:
	case OPT_RESTART:
		return run_ckpt_option(prog, opt, arg, o);
	case OPT_PRIORITY:
	case OPT_HOLD:
	case OPT_PREEMPTIBLE:
	case OPT_AFTER:
	case OPT_TIME:
		return run_sched_option(prog, opt, arg, o);
	default: /* --memory, --cpus, --pids, --disk, --files, --log-size */
		return run_limit(prog, opt, arg, o);
	}
}

static const struct cli_command run_command = {
	.shortopts = "+:dte:w:v:p:",
	.options = run_options,
	.synopsis = "[--] COMMAND [ARG...]",
	.help = "Run COMMAND as a job in its own container on this node.\n"
		"\n"
		"  -d, --detach         Run in the background and print the job id\n"
		"  -t, --tty            Give the job a terminal (needs a running xrun; not -d)\n"
		"  -e, --env NAME=VALUE Set an environment variable (repeatable); a bare\n"
		"                       NAME takes its value from this environment\n"
		"  -w, --workdir DIR    Working directory inside the job (default: this\n"
		"                       directory when it is mounted in the job, else the\n"
		"                       template's, else /)\n"
		"  -v, --volume SRC:DST[:ro]\n"
		"                       Mount host directory SRC at DST in the job\n"
		"                       (repeatable; SRC must be yours to access)\n"
		"      --no-home        Do not mount your home directory in the job\n"
		"      --name NAME      Name the job (unique among your live jobs; not hex only)\n"
		"      --template NAME  Root filesystem template (default: the node's)\n"
		"      --memory SIZE    Memory limit, e.g. 512M or 2G (0: no limit)\n"
		"      --cpus N         CPU limit in CPUs, e.g. 0.5 or 2 (0: no limit)\n"
		"      --pids N         Limit on the number of tasks (0: no limit)\n"
		"      --disk SIZE      Size of the job's writable layer, e.g. 64M\n"
		"      --files N        Files the job may create in its writable layer\n"
		"      --log-size SIZE  Output kept of each unit's stdout and of its stderr,\n"
		"                       the newest (default and maximum: the node's)\n"
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
		"                       groups cannot reach this one\n"
		"      --checkpoint-every DURATION  Checkpoint the job periodically (30s, 10m, 1h;\n"
		"                       the node sets a minimum, checkpoint_interval_min)\n"
		"      --keep N         Keep the newest N versions (default: the node's; at\n"
		"                       most its checkpoint_keep_max)\n"
		"      --checkpoint-signal SIG  Signal the job before each checkpoint\n"
		"      --checkpoint-grace DURATION  Then wait at most this long (default 5s) for\n"
		"                       it to create the file $XOS_CHECKPOINT_READY\n"
		"      --restore-signal SIG  Signal the job after each restart\n"
		"      --restart on-failure  Restore it from its newest version when its\n"
		"                       container was lost with the node or xosd\n"
		"      --priority N     Queue priority, 0 to 1000000 (default 1000; higher\n"
		"                       starts first; above 1000 only for root)\n"
		"      --hold           Queue the job held: it starts after 'xrelease JOB'\n"
		"      --after JOB[:ok|:fail|:any]\n"
		"                       Start once JOB has ended (ok: with exit code 0, the\n"
		"                       default; fail: otherwise; any); repeatable\n"
		"      --time DURATION  Time limit (90s, 30m, 2h, 1d): then SIGTERM, SIGKILL\n"
		"                       10s later, and the job ends as TIMEOUT\n"
		"      --preemptible    A job of higher priority may stop it at a checkpoint\n"
		"                       (PREEMPTED); it is restored when there is room again\n",
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
	int r;

	o->cwd = getcwd(NULL, 0); /* (NULL if it is gone: then none is sent) */
	r = cli_parse_options(prog, &run_command, argc, argv, &o->socket, o);

	if (r != 0)
		return r;
	o->argv = argv + optind;
	return 0;
}

static int run_gen_volumes(yajl_gen g, const struct cli_run_opts *o)
{
	int r = yajl_gen_string(g, (const unsigned char *)"volumes", 7) == yajl_gen_status_ok &&
				yajl_gen_array_open(g) == yajl_gen_status_ok
			? 0
			: -EINVAL;

	for (size_t i = 0; r >= 0 && i < o->n_volumes; i++) {
		r = yajl_gen_map_open(g) == yajl_gen_status_ok ? 0 : -EINVAL;
		r = r < 0 ? r : cli_gen_str(g, "src", o->volumes[i].src);
		r = r < 0 ? r : cli_gen_str(g, "dst", o->volumes[i].dst);
		r = r < 0 ? r : cli_gen_bool(g, "ro", o->volumes[i].ro);
		if (r >= 0 && yajl_gen_map_close(g) != yajl_gen_status_ok)
			r = -EINVAL;
	}
	if (r >= 0 && yajl_gen_array_close(g) != yajl_gen_status_ok)
		r = -EINVAL;
	return r;
}

static int run_gen_ckpt(yajl_gen g, const struct cli_run_opts *o)
{
	int r = 0;

	if (o->ckpt_every_us)
		r = cli_gen_int(g, "checkpoint_every", (int64_t)o->ckpt_every_us);
	if (r >= 0 && o->ckpt_keep)
		r = cli_gen_int(g, "checkpoint_keep", (int64_t)o->ckpt_keep);
	if (r >= 0 && o->ckpt_signal)
		r = cli_gen_int(g, "checkpoint_signal", o->ckpt_signal);
	if (r >= 0 && o->has_grace)
		r = cli_gen_int(g, "checkpoint_grace", (int64_t)o->ckpt_grace_us);
	if (r >= 0 && o->restore_signal)
		r = cli_gen_int(g, "restore_signal", o->restore_signal);
	if (r >= 0 && o->restart_on_failure)
		r = cli_gen_str(g, "restart", "on-failure");
	return r;
}

static int run_gen_sched(yajl_gen g, const struct cli_run_opts *o)
{
	int r = 0;

	if (o->has_priority)
		r = cli_gen_int(g, "priority", (int64_t)o->priority);
	if (r >= 0 && o->hold)
		r = cli_gen_bool(g, "hold", true);
	if (r >= 0 && o->preemptible)
		r = cli_gen_bool(g, "preemptible", true);
	if (r >= 0 && o->after && o->after[0])
		r = cli_gen_strv(g, "after", o->after);
	if (r >= 0 && o->time_us)
		r = cli_gen_int(g, "time", (int64_t)o->time_us);
	return r;
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
	if (r >= 0 && o->disk)
		r = cli_gen_int(g, "disk", (int64_t)o->disk);
	if (r >= 0 && o->files)
		r = cli_gen_int(g, "files", (int64_t)o->files);
	if (r >= 0 && o->log_size)
		r = cli_gen_int(g, "log_size", (int64_t)o->log_size);
	if (r >= 0 && o->cwd)
		r = cli_gen_str(g, "cwd", o->cwd);
	if (r >= 0 && o->no_home)
		r = cli_gen_bool(g, "no_home", true);
	if (r >= 0 && o->n_volumes)
		r = run_gen_volumes(g, o);
	if (r >= 0)
		r = cli_gen_bool(g, "attach", !o->detach);
	if (r >= 0 && o->tty)
		r = cli_gen_bool(g, "tty", true);
	if (r >= 0)
		r = run_gen_sched(g, o);
	return r < 0 ? r : run_gen_ckpt(g, o);
}

int cli_run_request(const struct cli_run_opts *o, char **ret, size_t *ret_len)
{
	_cleanup_gen_ yajl_gen g = NULL;
	int r;

	if (!o->argv || !o->argv[0])
		return -EINVAL;
	if ((o->has_memory && o->memory > INT64_MAX) || (o->has_pids && o->pids > INT64_MAX) ||
	    o->disk > INT64_MAX || o->files > INT64_MAX || o->log_size > INT64_MAX)
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

/* What xosd says the user should know about the new job (its DNS cannot work). */
static void print_warning(const char *prog, yajl_val resp)
{
	const char *w = cli_json_string(resp, "warning");
	const char *state = cli_json_string(resp, "state"), *id = cli_json_string(resp, "job");
	const char *reason = cli_json_string(resp, "reason");

	if (w)
		fprintf(stderr, "%s: warning: %s\n", prog, w);
	if (state && id && !strcmp(state, "QUEUED")) /* it starts when the node has room */
		fprintf(stderr, "%s: job %.*s is queued: %s\n", prog, XOS_JOB_ID_SHORT, id,
			reason ? reason : "waiting");
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
	print_warning(prog, s.response);
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
	print_warning(prog, resp);
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
