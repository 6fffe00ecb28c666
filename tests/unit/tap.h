/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Minimal TAP output for the C unit tests. */
#ifndef XOS_TAP_H
#define XOS_TAP_H
#include <stdio.h>

static int tap_n, tap_failed;
#define ok(cond, ...)                                                        \
	do {                                                                 \
		int tap_c_ = !!(cond);                                       \
		tap_n++;                                                     \
		if (tap_c_) {                                                \
			printf("ok %d - ", tap_n);                           \
		} else {                                                     \
			tap_failed++;                                        \
			printf("not ok %d - ", tap_n);                       \
		}                                                            \
		printf(__VA_ARGS__);                                         \
		printf("\n");                                                \
		if (!tap_c_)                                                 \
			printf("#   failed at %s:%d\n", __FILE__, __LINE__); \
	} while (0)
#define tap_done() (printf("1..%d\n", tap_n), tap_failed ? 1 : 0)
#endif
