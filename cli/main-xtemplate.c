/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xtemplate: a binary of its own (it alone links libarchive and libcrypto). */
#include "cli/cli.h"

int main(int argc, char **argv)
{
	return cli_xtemplate_main("xtemplate", argc, argv);
}
