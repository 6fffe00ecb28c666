/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xos-template-helper: what xosd runs to import or remove a template
 * (templates/helper.c). Not a command: xosd alone runs it. */
#include <stdio.h>
#include <string.h>

#include "templates/templates.h"

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], TEMPLATE_HELPER_ARG) != 0) {
		fprintf(stderr, "xos-template-helper: run by xosd only\n");
		return 2;
	}
	return template_helper_main(argc - 2, argv + 2);
}
