/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the CRIU shim's lazy restore (DECISIONS (ar)): the options
 * it reads from liblxc's restore command line and the command line of CRIU's
 * lazy-pages daemon. */
#include <string.h>

#include "ckpt/ckpt.h"
#include "tests/unit/tap.h"

static void test_option(void)
{
	char *a[] = { "criu", "restore", "-o", "restore.log", "-D", "/s/1/images", "-v4", NULL };
	char *b[] = { "criu", "restore", "--images-dir=/s/2/images", "--work-dir", "/w", NULL };
	char *c[] = { "criu", "restore", "-D", NULL };

	ok(!strcmp(ckpt_criu_option(7, a, "-D", "--images-dir"), "/s/1/images"), "-D DIR");
	ok(!ckpt_criu_option(7, a, "-W", "--work-dir"),
	   "no -W: NULL (the images directory serves)");
	ok(!strcmp(ckpt_criu_option(5, b, "-D", "--images-dir"), "/s/2/images"),
	   "--images-dir=DIR");
	ok(!strcmp(ckpt_criu_option(5, b, "-W", "--work-dir"), "/w"), "--work-dir DIR");
	ok(!ckpt_criu_option(3, c, "-D", "--images-dir"), "a trailing -D without a value: NULL");
}

static void test_lazy_argv(void)
{
	char *out[CKPT_LAZY_ARGS_MAX];
	size_t n = ckpt_criu_lazy_argv("/usr/local/sbin/criu", "/s/1/images", "/w", NULL, out);
	const char *want[] = {
		"/usr/local/sbin/criu", "lazy-pages", "-D", "/s/1/images", "-W", "/w", "-o",
		"lazy-pages.log",       "-v4"
	};
	bool same = n == sizeof(want) / sizeof(want[0]) && n < CKPT_LAZY_ARGS_MAX && !out[n];

	for (size_t i = 0; same && i < n; i++)
		same = !strcmp(out[i], want[i]);
	ok(same,
	   "the lazy-pages daemon serves the images' pages, its socket in the work directory");
}

static void test_lazy_argv_ps(void)
{
	char *out[CKPT_LAZY_ARGS_MAX];
	size_t n = ckpt_criu_lazy_argv("/c", "/i", "/w", "7", out);
	const char *want[] = {
		"/c",  "lazy-pages",    "-D",          "/i", "-W", "/w", "-o", "lazy-pages.log",
		"-v4", "--page-server", "--ps-socket", "7"
	};
	bool same = n == sizeof(want) / sizeof(want[0]) && n < CKPT_LAZY_ARGS_MAX && !out[n];

	for (size_t i = 0; same && i < n; i++)
		same = !strcmp(out[i], want[i]);
	ok(same, "post-copy: the daemon's pages come from a page server on the relay's descriptor");
}

int main(void)
{
	test_option();
	test_lazy_argv();
	test_lazy_argv_ps();
	return tap_done();
}
