/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Minimal TAP output for the C unit tests.
 *   ok(cond, fmt, ...)       "ok N - desc" or "not ok N - desc"; returns cond
 *   skip(reason, fmt, ...)   "ok N - desc # skip reason": counted, neither
 *                            passed nor failed
 *   tap_done()               "# N skipped" (if any), the plan "1..N";
 *                            returns the exit status (1 if a test failed)
 * A description is kept on one line (newlines become spaces), and every line
 * is flushed at once: a forked child or a crash never repeats or loses one. */
#ifndef XOS_TAP_H
#define XOS_TAP_H
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

static int tap_n, tap_failed, tap_skipped;

__attribute__((format(printf, 1, 0))) static void tap_desc_(const char *fmt, va_list ap)
{
	char buf[1024];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);

	if (n < 0)
		n = 0;
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	fputs(buf, stdout);
	if ((size_t)n >= sizeof(buf))
		fputs("...", stdout);
}

__attribute__((format(printf, 4, 5), unused)) static bool tap_ok_(bool cond, const char *file,
								  int line, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	tap_desc_(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!cond)
		printf("#   failed at %s:%d\n", file, line);
	fflush(stdout);
	return cond;
}

__attribute__((format(printf, 2, 3), unused)) static void tap_skip_(const char *reason,
								    const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	tap_skipped++;
	printf("ok %d - ", tap_n);
	va_start(ap, fmt);
	tap_desc_(fmt, ap);
	va_end(ap);
	printf(" # skip %s\n", reason);
	fflush(stdout);
}

__attribute__((unused)) static int tap_done(void)
{
	if (tap_skipped)
		printf("# %d skipped\n", tap_skipped);
	printf("1..%d\n", tap_n);
	fflush(stdout);
	return tap_failed ? 1 : 0;
}

#define ok(cond, ...) tap_ok_(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define skip(reason, ...) tap_skip_((reason), __VA_ARGS__)
#endif
