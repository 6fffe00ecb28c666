/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xos-loader: PID 1 of a job container. Usage: xos-loader [-d DIR] JOBID */
#include <getopt.h>

#include "loader/loader.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: xos-loader [-w] [-d DIR] JOBID\n"
		"Init process of an xos job container: starts the job's units from DIR/in,\n"
		"reaps them, forwards signals and reports each unit's end to the daemon.\n"
		"Started by xosd only.\n\n"
		"  -d, --dir DIR  request, spool and socket directory (default %s)\n"
		"  -w, --wait     with no unit request at start-up, wait for one\n"
		"                 (a container of xosd's pool)\n"
		"  -h, --help     show this help\n"
		"  -V, --version  show the version\n",
		LOADER_DEFAULT_DIR);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "wait", no_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct loader_options o = {
		.dir = LOADER_DEFAULT_DIR,
		.close_fds = true,
		.redirect_stdio = true,
		/* only as the init of its own namespaces: never mount over the
		 * host's /proc when started by hand */
		.container_setup = getpid() == 1,
	};
	int c, r;

	log_setup("xos-loader", LOG_LVL_INFO, true);
	while ((c = getopt_long(argc, argv, "d:whV", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (optarg[0] != '/') {
				fprintf(stderr, "xos-loader: -d needs an absolute path\n");
				return 2;
			}
			o.dir = optarg;
			break;
		case 'w':
			o.wait_first = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("xos-loader %s\n", XOS_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1 || !job_id_valid(argv[optind])) {
		fprintf(stderr, "xos-loader: expected one job id (16 lowercase hex digits)\n");
		usage(stderr);
		return 2;
	}
	o.job = argv[optind];
	r = loader_run(&o);
	return r < 0 ? 1 : 0;
}
