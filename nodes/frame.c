/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Frames of the node channel: a length-prefixed JSON header, then optionally
 * a payload in length-prefixed chunks ended by an empty one. The parser is
 * incremental, bounded and pure: it takes bytes as TLS gives them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "nodes/nodes.h"

enum {
	P_HEADER_LEN, /* reading a header's length */
	P_HEADER,     /* reading a header */
	P_CHUNK_LEN,  /* reading a chunk's length */
	P_CHUNK,      /* passing a chunk's bytes on */
	P_BROKEN,     /* an error was returned: nothing more is parsed */
};

void nodes_parser_init(struct nodes_parser *p, size_t header_max)
{
	*p = (struct nodes_parser){ .state = P_HEADER_LEN,
				    .header_max = header_max && header_max < NODES_HEADER_MAX
							  ? header_max
							  : NODES_HEADER_MAX };
}

void nodes_parser_done(struct nodes_parser *p)
{
	free(p->buf);
	p->buf = NULL;
}

void nodes_frame_len(uint32_t len, uint8_t buf[4])
{
	buf[0] = (uint8_t)(len >> 24);
	buf[1] = (uint8_t)(len >> 16);
	buf[2] = (uint8_t)(len >> 8);
	buf[3] = (uint8_t)len;
}

void nodes_parser_expect_payload(struct nodes_parser *p)
{
	if (p->state == P_HEADER_LEN && p->lenhave == 0) {
		p->state = P_CHUNK_LEN;
		p->payload_bytes = 0;
	}
}

/* Gather the 4 bytes of a length; true once they are all there. */
static bool take_len(struct nodes_parser *p, const uint8_t *d, size_t len, size_t *used)
{
	while (p->lenhave < 4 && *used < len)
		p->lenbuf[p->lenhave++] = d[(*used)++];
	if (p->lenhave < 4)
		return false;
	p->need = (uint32_t)p->lenbuf[0] << 24 | (uint32_t)p->lenbuf[1] << 16 |
		  (uint32_t)p->lenbuf[2] << 8 | p->lenbuf[3];
	p->lenhave = 0;
	return true;
}

static int fail(struct nodes_parser *p, int err)
{
	p->state = P_BROKEN;
	free(p->buf);
	p->buf = NULL;
	return err;
}

static int header_start(struct nodes_parser *p)
{
	if (p->need == 0)
		return fail(p, -EBADMSG);
	if (p->need > p->header_max)
		return fail(p, -EMSGSIZE); /* refused before a byte of it is held */
	free(p->buf);
	p->buf = malloc((size_t)p->need + 1);
	if (!p->buf)
		return fail(p, -ENOMEM);
	p->have = 0;
	p->state = P_HEADER;
	return 0;
}

ssize_t nodes_parser_feed(struct nodes_parser *p, const void *data, size_t len,
			  enum nodes_frame_event *ret_event, const char **ret_data, size_t *ret_len)
{
	const uint8_t *d = data;
	size_t used = 0, n;
	int r;

	*ret_event = NODES_FRAME_NONE;
	*ret_data = NULL;
	*ret_len = 0;
	while (used < len) {
		switch (p->state) {
		case P_HEADER_LEN:
			if (!take_len(p, d, len, &used))
				break;
			if ((r = header_start(p)) < 0)
				return r;
			continue;
		case P_HEADER:
			n = len - used < p->need ? len - used : p->need;
			memcpy(p->buf + p->have, d + used, n);
			p->have += n;
			p->need -= (uint32_t)n;
			used += n;
			if (p->need > 0)
				break;
			p->buf[p->have] = 0;
			if (strlen(p->buf) != p->have)
				return fail(p, -EBADMSG);
			p->state = P_HEADER_LEN;
			*ret_event = NODES_FRAME_HEADER;
			*ret_data = p->buf;
			*ret_len = p->have;
			return (ssize_t)used;
		case P_CHUNK_LEN:
			if (!take_len(p, d, len, &used))
				break;
			if (p->need == NODES_CHUNK_KEEPALIVE) { /* no bytes: the stream lives */
				*ret_event = NODES_FRAME_KEEPALIVE;
				return (ssize_t)used;
			}
			if (p->need > NODES_CHUNK_MAX)
				return fail(p, -EMSGSIZE);
			if (p->need == 0) {
				p->state = P_HEADER_LEN;
				*ret_event = NODES_FRAME_END;
				return (ssize_t)used;
			}
			p->state = P_CHUNK;
			continue;
		case P_CHUNK:
			n = len - used < p->need ? len - used : p->need;
			p->need -= (uint32_t)n;
			p->payload_bytes += n;
			if (p->need == 0)
				p->state = P_CHUNK_LEN;
			*ret_event = NODES_FRAME_CHUNK;
			*ret_data = (const char *)d + used;
			*ret_len = n;
			return (ssize_t)(used + n);
		default:
			return -EBADMSG;
		}
		break;
	}
	return (ssize_t)used;
}
