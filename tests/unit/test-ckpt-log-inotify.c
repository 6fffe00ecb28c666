/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The reason read from CRIU's dump log for an inotify watch it cannot dump
 * (ckpt/log.c). */
#include "ckpt/ckpt-internal.h"
#include "tests/unit/tap.h"

static void test_watch(void)
{
	/* CRIU with xos's patch 0002 */
	char *why = ckpt_dump_log_reason(
		"(00.01) Warn  (criu/fsnotify.c:333): \tHandle 0x2d:0x1 cannot "
		"be opened\n(00.02) Error (criu/fsnotify.c:268): Can't dump "
		"watch on 0x2d:0x1: no path to it and not a ghost file\n",
		1);

	ok(why && strstr(why, "inotify watch on a file that the checkpoint cannot find by name"),
	   "says what the job holds: %s", why ? why : "(null)");
	ok(why && strstr(why, "/tmp, /var/tmp, /run, /home, /root, /srv, /opt and /var/lib"),
	   "and where watches are kept");
	ok(why && strstr(why, "and on deleted files it still holds open"), "deleted files too");
	ok(why && strstr(why, "remove the watch before checkpointing"), "and what to do");
	ok(why && !strstr(why, "build-criu.sh"), "no word of updating CRIU");
	free(why);

	/* CRIU without it */
	why = ckpt_dump_log_reason(
		"(00.02) Error (criu/fsnotify.c:284): \tCan't dump that handle\n", 1);
	ok(why && strstr(why, "cannot find by name"), "an older CRIU's words: %s",
	   why ? why : "(null)");
	ok(why && !strstr(why, "deleted files it still holds open") &&
		   strstr(why, "update it with scripts/build-criu.sh"),
	   "which keeps no watch on a deleted file: update it");
	free(why);

	why = ckpt_dump_log_reason("(00.01) Error (criu/files-reg.c:1031): Can't dump ghost file "
				   "/x of 2097152 size, increase limit\n"
				   "(00.02) Error: Can't dump watch on 0x2d:0x1: no path\n",
				   1 << 20);
	ok(why && strstr(why, "deleted file that is still open, /x"),
	   "a ghost file over the limit comes first");
	free(why);
}

int main(void)
{
	test_watch();
	return tap_done();
}
