/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xosd(8): argument parsing; the daemon lives in libruntime. */
#include <getopt.h>

#include "ckpt/ckpt.h"
#include "runtime/runtime.h"
#include "common/common.h"

static void usage(FILE *f)
{
	fputs("Usage: xosd [OPTIONS]\n"
	      "The xos node daemon: runs jobs in containers for xrun, xps, xlogs, xwait, xkill.\n\n"
	      "  -c, --config FILE     configuration file (default " XOS_SYSCONFDIR
	      "/xos/xosd.conf)\n"
	      "      --state-dir DIR   job table, job directories, containers (default /var/lib/xos)\n"
	      "      --run-dir DIR     runtime files and the client socket (default /run/xos)\n"
	      "      --socket PATH     client socket (default RUN-DIR/xosd.sock)\n"
	      "      --loader PATH     the xos-loader binary\n"
	      "  -f, --foreground      stay in the foreground, log to stderr (else, once\n"
	      "                        set up, detach and log to STATE-DIR/xosd.log)\n"
	      "      --debug           log at debug level\n"
	      "  -h, --help            show this help\n"
	      "  -V, --version         show the version\n\n"
	      "Stopping xosd (SIGTERM) leaves jobs running; starting it again re-adopts them.\n",
	      f);
}

static int set(char **field, const char *v)
{
	free(*field);
	*field = strdup(v);
	return *field ? 0 : -ENOMEM;
}

struct args {
	struct runtime_config cli; /* what the command line says (wins over the file) */
	const char *config;
	bool config_given, foreground, debug;
};

/* > 0: exit with that status minus one (help, version, usage error: 0, 0, 2). */
static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "socket", required_argument, NULL, 'S' },
		{ "loader", required_argument, NULL, 'L' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c, r = 0;

	while (r >= 0 && (c = getopt_long(argc, argv, "c:fhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a->config = optarg;
			a->config_given = true;
			break;
		case 's':
			r = set(&a->cli.state_dir, optarg);
			break;
		case 'r':
			r = set(&a->cli.run_dir, optarg);
			break;
		case 'S':
			r = set(&a->cli.socket_path, optarg);
			break;
		case 'L':
			r = set(&a->cli.loader_path, optarg);
			break;
		case 'f':
			a->foreground = true;
			break;
		case 'd':
			a->debug = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'V':
			printf("xosd %s\n", XOS_VERSION);
			return 1;
		default:
			usage(stderr);
			return 3;
		}
	}
	if (r < 0)
		return 2;
	if (optind < argc) {
		fprintf(stderr, "xosd: unexpected argument '%s'\n", argv[optind]);
		return 3;
	}
	return 0;
}

static int load_config(struct args *a, struct runtime_config *cfg)
{
	_cleanup_free_ char *err = NULL;
	int r = runtime_config_load(cfg, a->config, &err);

	if (r < 0 && (r != -ENOENT || a->config_given)) {
		if (err)
			fprintf(stderr, "xosd: %s\n", err);
		else
			fprintf(stderr, "xosd: Cannot read %s: %s\n", a->config, strerror(-r));
		return r;
	}
	if ((a->cli.state_dir && set(&cfg->state_dir, a->cli.state_dir) < 0) ||
	    (a->cli.run_dir && set(&cfg->run_dir, a->cli.run_dir) < 0) ||
	    (a->cli.socket_path && set(&cfg->socket_path, a->cli.socket_path) < 0) ||
	    (a->cli.loader_path && set(&cfg->loader_path, a->cli.loader_path) < 0) ||
	    runtime_config_finish(cfg) < 0)
		return -ENOMEM;
	if (access(cfg->loader_path, X_OK) < 0) {
		fprintf(stderr, "xosd: loader %s: %s\n", cfg->loader_path, strerror(errno));
		return -errno;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct args a = { .config = XOS_SYSCONFDIR "/xos/xosd.conf" };
	struct runtime_config cfg;
	int r;

	if (getenv("CRTOOLS_SCRIPT_ACTION") && getenv("XOS_CKPT_DEST"))
		return ckpt_action(); /* CRIU runs xosd as its action script */
	if (ckpt_is_criu_shim(argv[0]))
		return ckpt_criu_shim(argc, argv); /* liblxc runs xosd as CRIU */
	runtime_config_init(&cfg);
	r = parse_args(argc, argv, &a);
	if (r > 0)
		return r - 1;
	if (geteuid() != 0) {
		fprintf(stderr, "xosd: must run as root (it creates containers and mounts)\n");
		return 1;
	}
	r = load_config(&a, &cfg);
	runtime_config_free(&a.cli);
	if (r < 0) {
		runtime_config_free(&cfg);
		return 1;
	}
	log_setup("xosd", a.debug ? LOG_LVL_DEBUG : (enum log_level)cfg.log_level, !a.foreground);
	cfg.detach = !a.foreground;
	r = runtime_run(&cfg);
	runtime_config_free(&cfg);
	return r < 0 ? 1 : 0;
}
