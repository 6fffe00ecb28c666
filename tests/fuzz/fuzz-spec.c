/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: a unit spec as xos-loader reads it from in/unit.<N>
 * (loader_spec_parse). A spec it accepts is formatted (loader_spec_format) and
 * parsed again: the second parse must accept it and format the same bytes. */
#include "loader/loader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_loader_spec_ struct loader_spec *s = NULL, *s2 = NULL;
	_cleanup_free_ char *err = NULL, *out = NULL, *out2 = NULL, *err2 = NULL;
	size_t len = 0, len2 = 0;
	int r;

	if (loader_spec_parse((const char *)data, size, &s, &err) < 0)
		return 0;
	r = loader_spec_format(s, &out, &len);
	if (r == -E2BIG)
		return 0;
	if (r < 0)
		abort(); /* a parsed spec must format */
	if (loader_spec_parse(out, len, &s2, &err2) < 0) {
		fprintf(stderr, "a formatted spec is refused: %s\n", err2 ? err2 : "?");
		abort();
	}
	if (loader_spec_format(s2, &out2, &len2) < 0 || len != len2 || memcmp(out, out2, len))
		abort();
	return 0;
}
