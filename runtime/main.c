/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xosd(8): argument parsing; the daemon lives in libruntime. */
#include <getopt.h>

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

int main(int argc, char **argv)
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
	struct runtime_config cfg, cli;
	const char *config = XOS_SYSCONFDIR "/xos/xosd.conf";
	bool config_given = false, foreground = false, debug = false;
	_cleanup_free_ char *err = NULL;
	int c, r;

	runtime_config_init(&cfg);
	memset(&cli, 0, sizeof(cli));
	while ((c = getopt_long(argc, argv, "c:fhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			config_given = true;
			break;
		case 's':
			r = set(&cli.state_dir, optarg);
			break;
		case 'r':
			r = set(&cli.run_dir, optarg);
			break;
		case 'S':
			r = set(&cli.socket_path, optarg);
			break;
		case 'L':
			r = set(&cli.loader_path, optarg);
			break;
		case 'f':
			foreground = true;
			break;
		case 'd':
			debug = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("xosd %s\n", XOS_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "xosd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "xosd: must run as root (it creates containers and mounts)\n");
		return 1;
	}
	r = runtime_config_load(&cfg, config, &err);
	if (r < 0 && (r != -ENOENT || config_given)) {
		if (err)
			fprintf(stderr, "xosd: %s\n", err);
		else
			fprintf(stderr, "xosd: Cannot read %s: %s\n", config, strerror(-r));
		return 1;
	}
	/* command line wins over the file */
	if (cli.state_dir)
		set(&cfg.state_dir, cli.state_dir);
	if (cli.run_dir)
		set(&cfg.run_dir, cli.run_dir);
	if (cli.socket_path)
		set(&cfg.socket_path, cli.socket_path);
	if (cli.loader_path)
		set(&cfg.loader_path, cli.loader_path);
	runtime_config_free(&cli);
	if (runtime_config_finish(&cfg) < 0)
		return 1;
	if (access(cfg.loader_path, X_OK) < 0) {
		fprintf(stderr, "xosd: loader %s: %s\n", cfg.loader_path, strerror(errno));
		return 1;
	}
	log_setup("xosd", debug ? LOG_LVL_DEBUG : (enum log_level)cfg.log_level, !foreground);
	cfg.detach = !foreground;
	r = runtime_run(&cfg);
	runtime_config_free(&cfg);
	return r < 0 ? 1 : 0;
}
