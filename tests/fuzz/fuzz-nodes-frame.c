/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: bytes a peer sends on the node channel, after TLS
 * (nodes_parser_feed), fed in pieces whose size the first byte picks; each
 * header is parsed as xosd parses it (json_parse, 8 levels) and a capacity
 * in it read (nodes_capacity_from_json). The events must keep the bounds. */
#include <yajl/yajl_tree.h>

#include "common/common.h"
#include "nodes/nodes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void header(struct nodes_parser *p, const char *text, size_t len)
{
	_cleanup_json_ yajl_val h = NULL;
	struct nodes_capacity cap;
	bool payload = false;

	if (len == 0 || len > NODES_HEADER_MAX || strlen(text) != len)
		abort();
	if (json_parse(text, 8, NULL, 0, &h) < 0 || !YAJL_IS_OBJECT(h))
		return;
	if (nodes_capacity_from_json(json_get(h, "capacity"), &cap) == 0 &&
	    (strlen(cap.cpu_model) >= sizeof(cap.cpu_model) ||
	     strlen(cap.kernel) >= sizeof(cap.kernel)))
		abort();
	if (json_get_bool(h, "payload", &payload) == 0 && payload)
		nodes_parser_expect_payload(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nodes_parser p;
	size_t step, off = 1;

	if (size < 1)
		return 0;
	step = data[0] ? data[0] : 4096;
	nodes_parser_init(&p, 0);
	while (off < size) {
		size_t n = size - off < step ? size - off : step;
		enum nodes_frame_event ev;
		const char *d;
		size_t dlen;
		ssize_t r = nodes_parser_feed(&p, data + off, n, &ev, &d, &dlen);

		if (r < 0)
			break;
		if (r == 0 || (size_t)r > n)
			abort(); /* no progress, or more than it was given */
		off += (size_t)r;
		if (ev == NODES_FRAME_HEADER)
			header(&p, d, dlen);
		else if (ev == NODES_FRAME_CHUNK && (dlen == 0 || dlen > NODES_CHUNK_MAX))
			abort();
	}
	nodes_parser_done(&p);
	return 0;
}
