/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the node channel's pure parts: the frame parser (whole,
 * byte by byte, payload chunks, the bounds), node names, addresses, peer
 * lists, config keys, capacity messages from a hostile peer. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "common/common.h"
#include "nodes/nodes.h"
#include "tests/unit/tap.h"

/* A frame: header, then the chunks (NULL-terminated), then the end chunk. */
static size_t frame(uint8_t *buf, const char *header, const char *const *chunks)
{
	size_t n = 0, len = strlen(header);

	nodes_frame_len((uint32_t)len, buf);
	memcpy(buf + 4, header, len);
	n = 4 + len;
	if (!chunks)
		return n;
	for (size_t i = 0; chunks[i]; i++) {
		len = strlen(chunks[i]);
		nodes_frame_len((uint32_t)len, buf + n);
		memcpy(buf + n + 4, chunks[i], len);
		n += 4 + len;
	}
	nodes_frame_len(0, buf + n);
	return n + 4;
}

struct seen {
	unsigned headers, ends, keepalives;
	char last_header[256];
	char payload[256];
	size_t payload_len;
};

/* Feed len bytes in pieces of step; a header saying "payload" gets one.
 * Returns the first error or 0. */
static int feed_all(struct nodes_parser *p, const uint8_t *buf, size_t len, size_t step,
		    struct seen *s)
{
	size_t off = 0;

	while (off < len) {
		size_t piece = len - off < step ? len - off : step;
		size_t used_here = 0;

		while (used_here < piece) {
			enum nodes_frame_event ev;
			const char *data;
			size_t dlen;
			ssize_t r = nodes_parser_feed(p, buf + off + used_here, piece - used_here,
						      &ev, &data, &dlen);

			if (r < 0)
				return (int)r;
			used_here += (size_t)r;
			if (ev == NODES_FRAME_HEADER) {
				s->headers++;
				snprintf(s->last_header, sizeof(s->last_header), "%s", data);
				if (strstr(data, "\"payload\":true"))
					nodes_parser_expect_payload(p);
			} else if (ev == NODES_FRAME_CHUNK) {
				if (s->payload_len + dlen < sizeof(s->payload)) {
					memcpy(s->payload + s->payload_len, data, dlen);
					s->payload_len += dlen;
				}
			} else if (ev == NODES_FRAME_END) {
				s->ends++;
			} else if (ev == NODES_FRAME_KEEPALIVE) {
				s->keepalives++;
			} else if (r == 0) {
				return -EPROTO; /* no progress: a parser bug */
			}
		}
		off += piece;
	}
	return 0;
}

static void test_frames(void)
{
	/* (no empty chunk among them: an empty chunk ends the payload) */
	static const char *const chunks2[] = { "abc", "defgh", NULL };
	uint8_t buf[1024];
	size_t len;

	for (size_t step = 1; step <= 64; step *= 2) {
		struct nodes_parser p;
		struct seen s = { 0 };
		int r;

		len = frame(buf, "{\"type\":\"hello\"}", NULL);
		len += frame(buf + len, "{\"type\":\"data\",\"payload\":true}", chunks2);
		len += frame(buf + len, "{\"type\":\"status\"}", NULL);
		nodes_parser_init(&p, 0);
		r = feed_all(&p, buf, len, step, &s);
		ok(r == 0 && s.headers == 3 && s.ends == 1,
		   "three frames, one with a payload, in pieces of %zu (r=%d, %u headers)", step, r,
		   s.headers);
		ok(s.payload_len == 8 && !memcmp(s.payload, "abcdefgh", 8),
		   "the payload arrives whole in pieces of %zu", step);
		ok(!strcmp(s.last_header, "{\"type\":\"status\"}"), "the frame after a payload");
		nodes_parser_done(&p);
	}
}

static int feed_bytes(const uint8_t *buf, size_t len, size_t header_max, struct seen *s)
{
	struct nodes_parser p;
	int r;

	nodes_parser_init(&p, header_max);
	r = feed_all(&p, buf, len, len, s);
	nodes_parser_done(&p);
	return r;
}

static void test_frame_bounds(void)
{
	uint8_t buf[128] = { 0 };
	struct seen s = { 0 };
	struct nodes_parser p;
	enum nodes_frame_event ev;
	const char *data;
	size_t dlen;

	/* a header as long as allowed, and one byte longer, refused before it is read */
	nodes_frame_len(NODES_HEADER_MAX + 1, buf);
	ok(feed_bytes(buf, 4, 0, &s) == -EMSGSIZE, "a header over NODES_HEADER_MAX is refused");
	nodes_frame_len(0xffffffffu, buf);
	ok(feed_bytes(buf, 8, 0, &s) == -EMSGSIZE, "a header of 4 GiB is refused at its length");
	nodes_frame_len(17, buf);
	ok(feed_bytes(buf, 4, 16, &s) == -EMSGSIZE, "a smaller header_max is kept");
	nodes_frame_len(0, buf);
	ok(feed_bytes(buf, 4, 0, &s) == -EBADMSG, "a header of length 0 is malformed");
	nodes_frame_len(3, buf);
	memcpy(buf + 4, "a\0b", 3);
	ok(feed_bytes(buf, 7, 0, &s) == -EBADMSG, "a header holding a NUL is malformed");

	/* a chunk over NODES_CHUNK_MAX */
	nodes_parser_init(&p, 0);
	nodes_parser_expect_payload(&p);
	nodes_frame_len(NODES_CHUNK_MAX + 1, buf);
	ok(nodes_parser_feed(&p, buf, 4, &ev, &data, &dlen) == -EMSGSIZE,
	   "a chunk over NODES_CHUNK_MAX is refused");
	ok(nodes_parser_feed(&p, buf, 4, &ev, &data, &dlen) < 0,
	   "a parser that failed parses nothing more");
	nodes_parser_done(&p);

	/* a partial length and header: nothing yet, nothing held past the bound */
	nodes_parser_init(&p, 0);
	nodes_frame_len(5, buf);
	memcpy(buf + 4, "{\"a\":", 5);
	ok(nodes_parser_feed(&p, buf, 3, &ev, &data, &dlen) == 3 && ev == NODES_FRAME_NONE,
	   "three bytes of a length: no event");
	ok(nodes_parser_feed(&p, buf + 3, 4, &ev, &data, &dlen) == 4 && ev == NODES_FRAME_NONE,
	   "a header in part: no event");
	ok(nodes_parser_feed(&p, buf + 7, 2, &ev, &data, &dlen) == 2 && ev == NODES_FRAME_HEADER &&
		   dlen == 5,
	   "the rest of it: the header");
	nodes_parser_done(&p);
}

/* A stream's keepalives (a chunk length that is none) between its chunks, in
 * any pieces: no bytes of the payload, and the frames after it as before. */
static void test_keepalive(void)
{
	static const char hdr[] = "{\"type\":\"data\",\"payload\":true}";
	uint8_t buf[256];

	for (size_t step = 1; step <= 64; step *= 2) {
		struct nodes_parser p;
		struct seen s = { 0 };
		size_t len = 0;
		int r;

		nodes_frame_len(sizeof(hdr) - 1, buf);
		memcpy(buf + 4, hdr, sizeof(hdr) - 1);
		len = 4 + sizeof(hdr) - 1;
		nodes_frame_len(NODES_CHUNK_KEEPALIVE, buf + len); /* before any chunk */
		len += 4;
		nodes_frame_len(3, buf + len);
		memcpy(buf + len + 4, "abc", 3);
		len += 7;
		nodes_frame_len(NODES_CHUNK_KEEPALIVE, buf + len); /* two in a row */
		nodes_frame_len(NODES_CHUNK_KEEPALIVE, buf + len + 4);
		len += 8;
		nodes_frame_len(2, buf + len);
		memcpy(buf + len + 4, "de", 2);
		len += 6;
		nodes_frame_len(0, buf + len);
		len += 4;
		len += frame(buf + len, "{\"type\":\"status\"}", NULL);
		nodes_parser_init(&p, 0);
		r = feed_all(&p, buf, len, step, &s);
		ok(r == 0 && s.keepalives == 3 && s.ends == 1 && s.headers == 2,
		   "keepalives in a payload, in pieces of %zu (r=%d, %u keepalives)", step, r,
		   s.keepalives);
		ok(s.payload_len == 5 && !memcmp(s.payload, "abcde", 5),
		   "they add no byte to it (pieces of %zu)", step);
		ok(!strcmp(s.last_header, "{\"type\":\"status\"}"), "the frame after it is read");
		nodes_parser_done(&p);
	}
	/* outside a payload the same bytes are a header's length: refused */
	{
		struct seen s = { 0 };

		nodes_frame_len(NODES_CHUNK_KEEPALIVE, buf);
		ok(feed_bytes(buf, 4, 0, &s) == -EMSGSIZE,
		   "a keepalive outside a payload is refused");
	}
}

static void test_names_addrs(void)
{
	struct sockaddr_storage sa;
	unsigned len = 0;

	ok(nodes_name_valid("n1") && nodes_name_valid("node-2.site"), "node names");
	ok(!nodes_name_valid("") && !nodes_name_valid("-x") && !nodes_name_valid("a b") &&
		   !nodes_name_valid("a/b") && !nodes_name_valid("a_b"),
	   "bad node names");
	ok(!nodes_name_valid("a123456789012345678901234567890123456789012345678901234567890123"),
	   "a name of 64 characters is too long");
	ok(nodes_addr_parse("10.213.0.1:7390", NULL, &sa, &len) == 0 && sa.ss_family == AF_INET &&
		   len == sizeof(struct sockaddr_in) &&
		   ((struct sockaddr_in *)&sa)->sin_port == htons(7390),
	   "IPv4 address and port");
	ok(nodes_addr_parse("[fd00::1]:7390", NULL, &sa, &len) == 0 && sa.ss_family == AF_INET6,
	   "IPv6 address in brackets");
	ok(nodes_addr_parse("10.0.0.1", "7390", &sa, &len) == 0, "the default port");
	ok(nodes_addr_parse("10.0.0.1", NULL, &sa, &len) == -EINVAL, "no port and no default");
	ok(nodes_addr_parse("fd00::1:7390", NULL, &sa, &len) == -EINVAL,
	   "IPv6 without brackets is refused");
	ok(nodes_addr_parse("host.example:7390", NULL, &sa, &len) == -EINVAL,
	   "names are refused (no resolver in the event loop)");
	ok(nodes_addr_parse("10.0.0.1:0", NULL, &sa, &len) == -EINVAL &&
		   nodes_addr_parse("10.0.0.1:65536", NULL, &sa, &len) == -EINVAL &&
		   nodes_addr_parse("10.0.0.1:x", NULL, &sa, &len) == -EINVAL,
	   "bad ports");
}

static void test_peers(void)
{
	struct nodes_peer_spec *p = NULL;
	size_t n = 0;
	char err[256] = "";

	ok(nodes_peers_parse("n1 10.0.0.1:7390, n2 10.0.0.2:7390", &p, &n, err, sizeof(err)) == 0 &&
		   n == 2 && !strcmp(p[1].name, "n2") && !strcmp(p[1].addr, "10.0.0.2:7390"),
	   "an inline list");
	ok(nodes_peers_parse("# the site's nodes\n n3  10.0.0.3:7390 # rack 2\n\nn4 [fd00::4]:1\n",
			     &p, &n, err, sizeof(err)) == 0 &&
		   n == 4 && !strcmp(p[3].addr, "[fd00::4]:1"),
	   "a nodes file with comments, appended");
	ok(nodes_peers_parse("n1 10.0.0.9:7390", &p, &n, err, sizeof(err)) == -EINVAL &&
		   strstr(err, "twice"),
	   "a name listed twice is refused (%s)", err);
	ok(nodes_peers_parse("n9", &p, &n, err, sizeof(err)) == -EINVAL && strstr(err, "n9"),
	   "an entry without an address (%s)", err);
	ok(nodes_peers_parse("n9 10.0.0.9:7390 extra", &p, &n, err, sizeof(err)) == -EINVAL,
	   "an entry with more than two fields");
	ok(nodes_peers_parse("bad/name 10.0.0.9:7390", &p, &n, err, sizeof(err)) == -EINVAL,
	   "a bad name (%s)", err);
	free(p);
}

static void test_config(void)
{
	struct nodes_config c;

	nodes_config_init(&c);
	ok(!nodes_config_enabled(&c), "no channel by default");
	ok(nodes_config_set(&c, "node_name", "n1") == 0 && !strcmp(c.name, "n1"), "node_name");
	ok(nodes_config_set(&c, "node_name", "n 1") == -EINVAL, "a bad node_name");
	ok(nodes_config_set(&c, "node_key", "relative/key.pem") == -EINVAL,
	   "paths must be absolute");
	ok(nodes_config_set(&c, "node_listen", "10.0.0.1:7390") == 0 && nodes_config_enabled(&c),
	   "node_listen enables the channel");
	ok(nodes_config_set(&c, "node_listen", "nowhere") == -EINVAL, "a bad node_listen");
	ok(nodes_config_set(&c, "node_peers", "n2 10.0.0.2:7390,n3 10.0.0.3") == 0,
	   "node_peers (the default port)");
	ok(nodes_config_set(&c, "node_peers", "n2") == -EINVAL, "a bad node_peers");
	ok(nodes_config_set(&c, "node_heartbeat", "2s") == 0 && c.heartbeat_us == 2000000,
	   "node_heartbeat");
	ok(nodes_config_set(&c, "node_heartbeat", "1ms") == -EINVAL, "a heartbeat too short");
	ok(nodes_config_set(&c, "node_max_connections", "0") == -EINVAL, "no connections");
	ok(nodes_config_set(&c, "node_other", "x") == -ENOKEY, "an unknown node key");
	nodes_config_free(&c);
}

static void test_capacity(void)
{
	_cleanup_json_ yajl_val v = NULL, bad = NULL;
	struct nodes_capacity cap = { 0 }, back = { 0 };
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *buf;
	size_t len;
	_cleanup_free_ char *text = NULL;

	ok(nodes_capacity_local(&cap) == 0 && cap.mem_total > 0 && cap.cpus > 0 &&
		   cap.pids_max > 0 && cap.pids_free > 0 && cap.cpu_model[0] && cap.kernel[0],
	   "this host's capacity (%s, %u cpus, %llu pids free)", cap.cpu_model, cap.cpus,
	   (unsigned long long)cap.pids_free);
	cap.jobs = 3;
	nodes_capacity_to_json(&cap, g);
	yajl_gen_get_buf(g, &buf, &len);
	text = strndup((const char *)buf, len);
	ok(json_parse(text, 8, NULL, 0, &v) == 0 && nodes_capacity_from_json(v, &back) == 0 &&
		   back.mem_total == cap.mem_total && back.jobs == 3 &&
		   !strcmp(back.cpu_model, cap.cpu_model),
	   "capacity to JSON and back");
	ok(json_parse("{\"cpu_model\":\"\\u001b[2Jx\",\"cpus\":2}", 8, NULL, 0, &bad) == 0 &&
		   nodes_capacity_from_json(bad, &back) == 0 && !strcmp(back.cpu_model, "?[2Jx") &&
		   back.cpus == 2,
	   "a peer's control characters are cleaned (%s)", back.cpu_model);
	json_free(bad);
	bad = NULL;
	ok(json_parse("{\"cpus\":\"many\"}", 8, NULL, 0, &bad) == 0 &&
		   nodes_capacity_from_json(bad, &back) == -EBADMSG,
	   "a figure of the wrong type is refused");
	json_free(bad);
	bad = NULL;
	ok(json_parse("{\"cpus\":-1}", 8, NULL, 0, &bad) == 0 &&
		   nodes_capacity_from_json(bad, &back) == -EBADMSG,
	   "a negative figure is refused");
	ok(nodes_peer_state_from_string("refused") == NODES_PEER_REFUSED &&
		   !strcmp(nodes_peer_state_to_string(NODES_PEER_UP), "up") &&
		   nodes_peer_state_from_string("gone") == _NODES_PEER_STATE_INVALID,
	   "peer states to and from strings");
}

int main(void)
{
	test_frames();
	test_frame_bounds();
	test_keepalive();
	test_names_addrs();
	test_peers();
	test_config();
	test_capacity();
	return tap_done();
}
