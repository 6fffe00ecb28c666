/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: a unit's end status, the <N>.status file and the notify
 * message xosd reads from a job's loader (loader_status_parse). A status it
 * accepts is formatted and parsed again: same fields, same text. */
#include "loader/loader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct loader_status st, st2;
	_cleanup_free_ char *out = NULL, *out2 = NULL;
	size_t len = 0, len2 = 0;

	if (loader_status_parse((const char *)data, size, &st) < 0)
		return 0;
	if (loader_status_format(&st, &out, &len) < 0)
		abort();
	if (loader_status_parse(out, len, &st2) < 0) {
		fprintf(stderr, "a formatted status is refused:\n%.*s\n", (int)len, out);
		abort();
	}
	if (loader_status_format(&st2, &out2, &len2) < 0 || len != len2 || memcmp(out, out2, len))
		abort();
	return 0;
}
