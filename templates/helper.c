/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The process xosd runs for a template import or removal (templates.h):
 * xos-template-helper, a binary of its own, so that xosd itself does not link
 * the archive and crypto libraries (every fork of xosd, i.e. every job start,
 * would copy their mappings). It reports over the pipe at
 * TEMPLATE_HELPER_FD_REPORT. */
#include <locale.h>
#include <stdio.h>

#include "templates/templates-internal.h"

static void helper_progress(void *userdata, const struct template_progress *p)
{
	(void)userdata;
	dprintf(TEMPLATE_HELPER_FD_REPORT, "progress %llu %llu %llu %llu\n",
		(unsigned long long)p->read, (unsigned long long)p->total,
		(unsigned long long)p->entries, (unsigned long long)p->bytes);
}

static int helper_error(const char *err, int r)
{
	_cleanup_free_ char *msg = err ? strdup(err) : NULL;

	for (char *p = msg; p && *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	dprintf(TEMPLATE_HELPER_FD_REPORT, "error %s\n", msg ? msg : strerror(r < 0 ? -r : r));
	return 1;
}

static int helper_import(int argc, char **argv)
{
	uint64_t ub, gb, count, max;
	struct template_import_opts o = { .progress = helper_progress };
	_cleanup_free_ char *err = NULL;
	int r;

	if (argc < 10 || parse_uint64(argv[3], &ub) < 0 || parse_uint64(argv[4], &gb) < 0 ||
	    parse_uint64(argv[5], &count) < 0 || parse_uint64(argv[6], &max) < 0 || count == 0 ||
	    count > UINT32_MAX || ub + count > UINT32_MAX || gb + count > UINT32_MAX)
		return helper_error("bad helper arguments", -EINVAL);
	o.uid_base = (uid_t)ub;
	o.gid_base = (gid_t)gb;
	o.id_count = (uint32_t)count;
	o.max_bytes = max;
	o.allow_devices = !strcmp(argv[7], "1");
	o.workdir = argv[8][0] ? argv[8] : NULL;
	o.user = argv[9][0] ? argv[9] : NULL;
	o.env = argv + 10;
	r = template_import(TEMPLATE_HELPER_FD_CATALOG, argv[1], argv[2], TEMPLATE_HELPER_FD_SRC,
			    &o, &err);
	if (r < 0)
		return helper_error(err, r);
	dprintf(TEMPLATE_HELPER_FD_REPORT, "ok\n");
	return 0;
}

int template_helper_main(int argc, char **argv)
{
	int r;

	/* pax headers carry UTF-8 names: read them as such */
	setlocale(LC_CTYPE, "C.UTF-8");
	if (argc >= 1 && !strcmp(argv[0], "import"))
		return helper_import(argc, argv);
	if (argc == 2 && !strcmp(argv[0], "remove")) {
		r = template_rm_tree(TEMPLATE_HELPER_FD_CATALOG, argv[1]);
		return r < 0 ? helper_error(NULL, r) : 0;
	}
	return helper_error("bad helper arguments", -EINVAL);
}
