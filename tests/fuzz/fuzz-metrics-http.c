/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the request head a metrics client sends
 * (metrics_http_request, runtime/metrics-format.c), as xosd reads it: at most
 * 4 KiB, in pieces. Whatever the pieces, the status is the same as for the
 * whole, and the response to it is well formed. */
#include "runtime/runtime-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct metrics_buf b = { 0 };
	bool head = false, head2 = false;
	int whole, part = -EAGAIN;

	if (size > 4096)
		return 0;
	whole = metrics_http_request((const char *)data, size, &head);
	/* read in two pieces: the first answer (if any) is the whole's */
	for (size_t cut = 1; cut < size && part == -EAGAIN; cut += 97)
		part = metrics_http_request((const char *)data, cut, &head2);
	if (part != -EAGAIN && whole != part)
		abort();
	if (whole != -EAGAIN && whole != 200 && whole != 400 && whole != 404 && whole != 405)
		abort();
	if (whole == -EAGAIN)
		return 0;
	metrics_http_response(&b, whole, "x 1\n", 4, head);
	if (b.oom)
		return 0;
	if (!b.p || strncmp(b.p, "HTTP/1.0 ", 9) != 0 || !strstr(b.p, "\r\n\r\n"))
		abort();
	metrics_buf_free(&b);
	return 0;
}
