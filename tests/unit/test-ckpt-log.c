/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reasons read from CRIU's dump log (ckpt/log.c). */
#include "ckpt/ckpt-internal.h"
#include "tests/unit/tap.h"

static void test_ghost(void)
{
	const char *log =
		"(00.01) Dumping ghost file for fd 5 id 0x1b\n"
		"(00.01) Error (criu/files-reg.c:1031): Can't dump ghost file "
		"/data/a of b (deleted) of 67108864 size, increase limit\n"
		"(00.02) Error (criu/cr-dump.c:1674): Dump files (pid: 7) failed with -1\n";
	char *why = ckpt_dump_log_reason(log, 32 << 20);

	ok(why && strstr(why, "/data/a of b (deleted) (64.0 MiB)"),
	   "names the file and its size: %s", why ? why : "(null)");
	ok(why && strstr(why, "--disk (32.0 MiB)"), "and the limit, the job's --disk");
	free(why);
	why = ckpt_dump_log_reason("(00.01) Error (criu/files-reg.c:1031): Can't dump ghost file "
				   "/x of 12 size",
				   1);
	ok(why && strstr(why, "/x (0.0 MiB)"), "a log cut short at the end of the line");
	free(why);
	ok(!ckpt_dump_log_reason("(00.01) Error: Can't dump ghost file without size\n", 1),
	   "an unparsable line gives no reason");
	ok(!ckpt_dump_log_reason("(00.03) Error (criu/cr-dump.c:1): Dumping FAILED.\n", 1),
	   "another error gives none");
	ok(!ckpt_dump_log_reason(NULL, 1), "no log, no reason");
}

int main(void)
{
	test_ghost();
	return tap_done();
}
