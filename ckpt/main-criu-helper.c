/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xos-criu-helper: the two programs a dump runs besides CRIU, as a small
 * binary (libc only) instead of xosd with its libraries, which took about
 * 20 ms of CPU to start, several times a dump (DECISIONS (au)): the criu
 * liblxc runs (criu-shim.c) and CRIU's action script (the copy of the
 * job's files while it is frozen). Not a command: xosd's dumps alone run it. */
#include <stdio.h>
#include <stdlib.h>

#include "ckpt/ckpt.h"

int main(int argc, char **argv)
{
	if (getenv("CRTOOLS_SCRIPT_ACTION"))
		return ckpt_action();
	if (ckpt_is_criu_shim(argv[0]))
		return ckpt_criu_shim(argc, argv);
	fprintf(stderr, "xos-criu-helper: run by xosd's checkpoints only\n");
	return 2;
}
