/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xlogin (and xlogout, a link to it): a binary of its own, with libcrypto. */
#include <libgen.h>

#include "cli/cli.h"
#include "cli/login-internal.h"

int main(int argc, char **argv)
{
	const char *name = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;

	name = name ? name + 1 : argc > 0 && argv[0] ? argv[0] : "xlogin";
	return cli_xlogin_main(!strcmp(name, "xlogout") ? "xlogout" : "xlogin", argc, argv);
}
