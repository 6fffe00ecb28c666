/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The node channel: a listener, one connection dialled to each peer that is
 * not up, connections accepted from peers; hello and status messages; peer
 * states. Everything non-blocking, in an epoll set of the module's own. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "nodes/nodes-internal.h"

#define DIAL_BACKOFF_MIN_US 1000000ULL
#define HEADER_DEPTH_MAX 8     /* JSON nesting of a header */
#define READ_BUDGET (1u << 20) /* bytes read from one connection per event */
#define CORK_MIN (64u << 10)   /* bytes queued that are flushed corked */

static const char *const peer_state_names[_NODES_PEER_STATE_MAX] = {
	[NODES_PEER_DOWN] = "down",
	[NODES_PEER_CONNECTING] = "connecting",
	[NODES_PEER_UP] = "up",
	[NODES_PEER_REFUSED] = "refused",
};

const char *nodes_peer_state_to_string(enum nodes_peer_state s)
{
	return s >= 0 && s < _NODES_PEER_STATE_MAX ? peer_state_names[s] : NULL;
}

enum nodes_peer_state nodes_peer_state_from_string(const char *s)
{
	for (int i = 0; i < _NODES_PEER_STATE_MAX; i++)
		if (!strcmp(peer_state_names[i], s))
			return (enum nodes_peer_state)i;
	return _NODES_PEER_STATE_INVALID;
}

void nodes_log(struct nodes *n, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!n->hooks.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n->hooks.log(n->hooks.userdata, level, msg);
}

static void addr_format(const struct sockaddr_storage *sa, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%u", host, ntohs(s4->sin_port));
	}
}

/* ---- peer states ---- */
static void peer_set(struct nodes *n, struct nodes_peer *p, enum nodes_peer_state s,
		     const char *reason)
{
	bool changed = p->state != s || strcmp(p->reason, reason ? reason : "") != 0;

	snprintf(p->reason, sizeof(p->reason), "%s", reason ? reason : "");
	if (p->state == s) {
		if (changed && s == NODES_PEER_REFUSED)
			nodes_log(n, LOG_LVL_WARN, "Node %s refused: %s", p->spec.name, p->reason);
		return;
	}
	p->state = s;
	p->since_us = now_usec();
	if (s == NODES_PEER_UP)
		nodes_log(n, LOG_LVL_INFO, "Node %s (%s) is up", p->spec.name, p->spec.addr);
	else if (s == NODES_PEER_REFUSED)
		nodes_log(n, LOG_LVL_WARN, "Node %s refused: %s", p->spec.name, p->reason);
	else if (s == NODES_PEER_DOWN)
		nodes_log(n, LOG_LVL_WARN, "Node %s is down: %s", p->spec.name, p->reason);
}

static bool peer_has_channel(struct nodes *n, struct nodes_peer *p, struct nodes_conn *except)
{
	for (struct nodes_conn *c = n->conns; c; c = c->next)
		if (c != except && c->peer == p && c->st == NC_OPEN && c->hello_seen)
			return true;
	return false;
}

/* A refused stranger (or a peer's refused connection), kept for xnodes and
 * logged, at most 10 logs in 10 s: a hostile network cannot fill the log. */
static void note_refusal(struct nodes *n, struct nodes_conn *c, const char *reason)
{
	struct nodes_refusal *r = &n->refusals[n->refusal_next];
	uint64_t now = mono_usec();

	snprintf(r->addr, sizeof(r->addr), "%s", c->addr);
	snprintf(r->name, sizeof(r->name), "%s", c->cert_name);
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	r->at_us = now_usec();
	n->refusal_next = (n->refusal_next + 1) % NODES_REFUSALS_KEPT;
	if (n->n_refusals < NODES_REFUSALS_KEPT)
		n->n_refusals++;
	if (now >= n->log_window + 10000000) {
		if (n->log_dropped)
			nodes_log(n, LOG_LVL_WARN, "%u more node connections were refused",
				  n->log_dropped);
		n->log_window = now;
		n->log_count = n->log_dropped = 0;
	}
	if (n->log_count++ < 10)
		nodes_log(n, LOG_LVL_WARN, "Refused node connection from %s%s%s%s: %s", c->addr,
			  c->cert_name[0] ? " (certificate '" : "", c->cert_name,
			  c->cert_name[0] ? "')" : "", reason);
	else
		n->log_dropped++;
}

/* ---- connections ---- */
static int conn_events(struct nodes_conn *c)
{
	uint32_t want = EPOLLIN;
	struct epoll_event ev;

	if (c->st == NC_CONNECTING || c->want_write || c->out_off < c->out_len)
		want |= EPOLLOUT;
	if (want == c->events)
		return 0;
	ev = (struct epoll_event){ .events = want, .data.ptr = c };
	if (epoll_ctl(c->n->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		return -errno;
	c->events = want;
	return 0;
}

/* The end of a connection: refused says the certificates (or the hello)
 * were refused, by either end. */
static void conn_close(struct nodes_conn *c, bool refused, const char *fmt, ...) _printf_(3, 4);
static void conn_close(struct nodes_conn *c, bool refused, const char *fmt, ...)
{
	struct nodes *n = c->n;
	struct nodes_peer *p = c->peer;
	char why[NODES_REASON_MAX];
	va_list ap;

	if (c->st == NC_CLOSED)
		return;
	if (!p && refused && c->cert_name[0]) /* a refused certificate claiming a peer's name */
		for (size_t i = 0; i < n->n_peers; i++)
			if (!strcmp(n->peers[i].spec.name, c->cert_name))
				p = &n->peers[i];
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (!c->outbound && (refused || !p))
		note_refusal(n, c, why);
	else
		nodes_log(n, LOG_LVL_DEBUG, "Node connection %s %s closed: %s",
			  c->outbound ? "to" : "from", c->addr, why);
	c->st = NC_CLOSED;
	epoll_ctl(n->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (!c->outbound)
		n->n_inbound--;
	if (p && p->dial == c) {
		p->dial = NULL;
		p->next_dial = mono_usec() + p->backoff_us;
		p->backoff_us = p->backoff_us * 2 < n->cfg->heartbeat_us ? p->backoff_us * 2
									 : n->cfg->heartbeat_us;
	}
	if (p && !peer_has_channel(n, p, c)) {
		if (!c->outbound && refused) /* (its name, unverified: say from where) */
			snprintf(why + strlen(why), sizeof(why) - strlen(why), " (from %s)",
				 c->addr);
		peer_set(n, p, refused ? NODES_PEER_REFUSED : NODES_PEER_DOWN, why);
	}
	/* unlinked now, freed after this batch of events (which may name it) */
	for (struct nodes_conn **pp = &n->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	c->next = n->closed;
	n->closed = c;
	if (p && c->hello_seen && n->hooks.peer_lost)
		n->hooks.peer_lost(n->hooks.userdata, p->spec.name);
}

/* The other end broke the protocol (a verified peer: a bug, or a hostile
 * node): said at warning level, once per connection. */
static void conn_violation(struct nodes_conn *c, const char *why)
{
	nodes_log(c->n, LOG_LVL_WARN, "Closed the node connection %s %s (node %s): %s",
		  c->outbound ? "to" : "from", c->addr, c->peer ? c->peer->spec.name : "?", why);
	conn_close(c, false, "%s", why);
}

static void conn_free(struct nodes_conn *c)
{
	if (c->ssl)
		SSL_free(c->ssl);
	closep(&c->fd);
	nodes_parser_done(&c->parser);
	free(c->out);
	for (size_t i = 0; i < c->n_later; i++)
		free(c->later[i]);
	free(c->later);
	free(c);
}

static void reap_closed(struct nodes *n)
{
	while (n->closed) {
		struct nodes_conn *c = n->closed;

		n->closed = c->next;
		conn_free(c);
	}
}

static struct nodes_conn *conn_new(struct nodes *n, int fd, bool outbound)
{
	struct nodes_conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev;

	if (!c)
		return NULL;
	c->n = n;
	c->fd = fd;
	c->outbound = outbound;
	/* small messages (a page asked for, an answer) go at once; a stream's
	 * bytes are corked into full segments while they are flushed */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	c->st = outbound ? NC_CONNECTING : NC_HANDSHAKE;
	c->deadline = mono_usec() + n->cfg->handshake_timeout_us;
	nodes_parser_init(&c->parser, NODES_HEADER_MAX);
	c->events = EPOLLIN | (outbound ? EPOLLOUT : 0);
	ev = (struct epoll_event){ .events = c->events, .data.ptr = c };
	if (nodes_tls_conn(n, c) < 0 || epoll_ctl(n->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		c->fd = -EBADF; /* the caller closes it */
		conn_free(c);
		return NULL;
	}
	c->next = n->conns;
	n->conns = c;
	return c;
}

/* Queue one chunk's length and bytes (len 0: the end). The queue moves to
 * the buffer's front only when its tail would pass the buffer's end, and the
 * buffer grows to twice what is queued: a stream's bytes are moved at most
 * once on their way, whatever the chunks' sizes. */
static int queue_chunk(struct nodes_conn *c, const void *data, size_t len)
{
	size_t need = len + 4;

	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + need > c->out_cap && c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + need > c->out_cap) {
		size_t cap = 2 * (c->out_len + need);
		uint8_t *m = realloc(c->out, cap);

		if (!m)
			return -ENOMEM;
		c->out = m;
		c->out_cap = cap;
	}
	nodes_frame_len((uint32_t)len, c->out + c->out_len);
	if (len)
		memcpy(c->out + c->out_len + 4, data, len);
	c->out_len += need;
	return 0;
}

/* Queue a stream's keepalive: a chunk length that is none (no bytes). */
static int queue_keepalive(struct nodes_conn *c)
{
	int r = queue_chunk(c, NULL, 0);

	if (r == 0)
		nodes_frame_len(NODES_CHUNK_KEEPALIVE, c->out + c->out_len - 4);
	return r;
}

/* Queue a frame: the header (a JSON object) and no payload. -ENOBUFS when
 * the other end does not take what is queued (back-pressure). */
static int conn_queue(struct nodes_conn *c, const char *header, size_t len)
{
	if (len == 0 || len > NODES_HEADER_MAX)
		return -EMSGSIZE;
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len - c->out_off + len + 4 > NODES_OUT_MAX)
		return -ENOBUFS;
	return queue_chunk(c, header, len);
}

/* ---- headers sent while a stream is open: they go after it, in order ---- */
static int later_add(struct nodes_conn *c, const char *header)
{
	size_t len = strlen(header);
	char **v;

	if (len == 0 || len > NODES_HEADER_MAX)
		return -EMSGSIZE;
	if (c->later_bytes + len > NODES_LATER_MAX)
		return -EBUSY;
	v = realloc(c->later, (c->n_later + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	c->later = v;
	if (!(v[c->n_later] = strdup(header)))
		return -ENOMEM;
	c->n_later++;
	c->later_bytes += len;
	return 0;
}

/* As many of the kept headers as the queue takes, queued (-ENOBUFS: some are
 * left, for the next flush). */
static int later_queue(struct nodes_conn *c)
{
	size_t i = 0;
	int r = 0;

	for (; i < c->n_later; i++) {
		size_t len = strlen(c->later[i]);

		if ((r = conn_queue(c, c->later[i], len)) < 0)
			break;
		c->later_bytes -= len;
		free(c->later[i]);
	}
	memmove(c->later, c->later + i, (c->n_later - i) * sizeof(*c->later));
	c->n_later -= i;
	return r;
}

static void conn_cork(struct nodes_conn *c, int on)
{
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

static void conn_flush(struct nodes_conn *c)
{
	bool corked, blocked = false;

	if (!c->streaming && c->n_later)
		(void)later_queue(c);
	corked = c->out_len - c->out_off > CORK_MIN;
	c->want_write = false;
	if (corked)
		conn_cork(c, 1);
	while (c->st == NC_OPEN && c->out_off < c->out_len) {
		size_t left = c->out_len - c->out_off;
		int r;

		nodes_tls_clear();
		r = SSL_write(c->ssl, c->out + c->out_off,
			      left > INT32_MAX ? INT32_MAX : (int)left);
		if (r > 0) {
			c->out_off += (size_t)r;
			continue;
		}
		r = SSL_get_error(c->ssl, r);
		if (r != SSL_ERROR_WANT_WRITE && r != SSL_ERROR_WANT_READ) {
			conn_close(c, false, "write failed: %s",
				   *nodes_tls_error() ? nodes_tls_error() : strerror(errno));
			return;
		}
		c->want_write = r == SSL_ERROR_WANT_WRITE;
		blocked = true;
		break;
	}
	if (c->st != NC_OPEN)
		return;
	if (corked)
		conn_cork(c, 0); /* (what is left of a segment goes now) */
	if (blocked) {
		(void)conn_events(c);
		return;
	}
	/* headers kept during a stream, which the queue had no room for then
	 * (it was full of the stream's end): they fit in it now (again only
	 * if some went: out of memory, say, they wait for the next flush) */
	if (!c->streaming && c->n_later) {
		size_t kept = c->n_later;

		(void)later_queue(c);
		if (c->n_later < kept)
			return conn_flush(c);
	}
	/* (a stream's buffer is not kept for the heartbeats after it) */
	if (c->out_off == c->out_len && !c->streaming && c->out_cap > (256u << 10)) {
		free(c->out);
		c->out = NULL;
		c->out_cap = c->out_len = c->out_off = 0;
	}
	(void)conn_events(c);
	/* a stream's producer is told when half the queue is free */
	if (c->streaming && !c->in_writable && c->out_len - c->out_off < NODES_OUT_MAX / 2 &&
	    c->n->hooks.writable) {
		c->in_writable = true;
		c->n->hooks.writable(c->n->hooks.userdata, c->peer->spec.name);
		c->in_writable = false;
	}
}

/* ---- messages ---- */
/* A hello or status header with this node's figures (NULL: out of memory). */
static char *message_text(struct nodes *n, const char *type)
{
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	struct nodes_capacity cap = { 0 };

	if (!g)
		return NULL;
	(void)nodes_capacity_local(&cap);
	if (n->hooks.capacity)
		n->hooks.capacity(n->hooks.userdata, &cap);
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "type", type);
	if (!strcmp(type, "hello")) {
		json_gen_kv_str(g, "node", n->cfg->name);
		json_gen_kv_str(g, "version", n->version);
		json_gen_kv_int(g, "proto", NODES_PROTO_VERSION);
	}
	json_gen_key(g, "capacity");
	nodes_capacity_to_json(&cap, g);
	yajl_gen_map_close(g);
	return json_gen_take(g, false);
}

static int send_message(struct nodes *n, struct nodes_conn *c, const char *type)
{
	_cleanup_free_ char *text = message_text(n, type);

	return text ? conn_queue(c, text, strlen(text)) : -ENOMEM;
}

static void on_hello(struct nodes_conn *c, yajl_val h)
{
	static const char *const keys[] = { "type", "node", "version", "proto", "capacity", NULL };
	struct nodes_peer *p = c->peer;
	const char *node = NULL, *version = NULL, *bad = NULL;
	struct nodes_capacity cap;
	int64_t proto = 0;

	if (json_check_keys(h, keys, &bad) < 0 || json_get_string(h, "node", &node) < 0 ||
	    json_get_string(h, "version", &version) < 0 || json_get_int(h, "proto", &proto) < 0 ||
	    nodes_capacity_from_json(json_get(h, "capacity"), &cap) < 0)
		return conn_violation(c, "malformed hello");
	if (strcmp(node, p->spec.name) != 0)
		return conn_close(c, true, "its hello names another node than its certificate");
	if (proto != NODES_PROTO_VERSION)
		return conn_close(c, true, "it speaks node protocol %lld, this node %d",
				  (long long)proto, NODES_PROTO_VERSION);
	if (c->outbound && send_message(c->n, c, "hello") < 0)
		return conn_close(c, false, "cannot send hello");
	c->hello_seen = true;
	for (size_t i = 0; version[i] && i + 1 < sizeof(p->version); i++)
		p->version[i] = version[i] > 0x20 && version[i] < 0x7f ? version[i] : '?';
	p->version[strnlen(version, sizeof(p->version) - 1)] = 0;
	p->cap = cap;
	p->have_cap = true;
	p->last_seen_us = now_usec();
	p->backoff_us = DIAL_BACKOFF_MIN_US;
	peer_set(c->n, p, NODES_PEER_UP, NULL);
	conn_flush(c);
	if (c->st == NC_OPEN && c->n->hooks.peer_up)
		c->n->hooks.peer_up(c->n->hooks.userdata, p->spec.name);
}

static void on_status(struct nodes_conn *c, yajl_val h)
{
	static const char *const keys[] = { "type", "capacity", NULL };
	const char *bad = NULL;
	struct nodes_capacity cap;

	if (json_check_keys(h, keys, &bad) < 0 ||
	    nodes_capacity_from_json(json_get(h, "capacity"), &cap) < 0)
		return conn_violation(c, "malformed status message");
	c->peer->cap = cap;
	c->peer->last_seen_us = now_usec();
}

/* The other end spoke (a header, a chunk, a keepalive): its silence timer
 * starts again */
static void conn_heard(struct nodes_conn *c)
{
	c->deadline = mono_usec() + 3 * c->n->cfg->heartbeat_us;
}

/* One header, parsed whole and checked before anything in it is used. */
static void on_header(struct nodes_conn *c, const char *text)
{
	_cleanup_json_ yajl_val h = NULL;
	const char *type = NULL;
	bool payload = false;

	if (json_parse(text, HEADER_DEPTH_MAX, NULL, 0, &h) < 0 || !YAJL_IS_OBJECT(h) ||
	    json_get_string(h, "type", &type) < 0 ||
	    json_get_bool(h, "payload", &payload) == -EINVAL)
		return conn_violation(c, "malformed message header");
	conn_heard(c);
	if (payload) /* (hello and status have none: read and dropped) */
		nodes_parser_expect_payload(&c->parser);
	if (!strcmp(type, "hello"))
		return c->hello_seen ? conn_violation(c, "a second hello") : on_hello(c, h);
	if (!c->hello_seen)
		return conn_violation(c, "a message before hello");
	if (!strcmp(type, "status"))
		return on_status(c, h);
	if (c->n->hooks.message) {
		c->in_payload = payload;
		c->n->hooks.message(c->n->hooks.userdata, c->peer->spec.name, h, payload);
		return;
	}
	nodes_log(c->n, LOG_LVL_DEBUG, "Ignored a '%.32s' message from node %s", type,
		  c->peer->spec.name);
}

/* A piece of a payload: a stream's bytes keep the channel alive as messages do. */
static void on_chunk(struct nodes_conn *c, const char *data, size_t len)
{
	conn_heard(c);
	if (c->in_payload && c->n->hooks.chunk)
		c->n->hooks.chunk(c->n->hooks.userdata, c->peer->spec.name, data, len);
}

static void feed(struct nodes_conn *c, const char *buf, size_t len)
{
	while (len > 0 && c->st == NC_OPEN) {
		enum nodes_frame_event ev;
		const char *data;
		size_t dlen;
		ssize_t used = nodes_parser_feed(&c->parser, buf, len, &ev, &data, &dlen);

		if (used < 0)
			return conn_violation(
				c, used == -EMSGSIZE
					   ? "a message header or chunk larger than allowed"
					   : "a malformed frame");
		buf += used;
		len -= (size_t)used;
		if (ev == NODES_FRAME_HEADER)
			on_header(c, data);
		else if (ev == NODES_FRAME_CHUNK)
			on_chunk(c, data, dlen);
		else if (ev == NODES_FRAME_KEEPALIVE)
			conn_heard(c);
		else if (ev == NODES_FRAME_END && c->in_payload) {
			c->in_payload = false;
			if (c->n->hooks.payload_end)
				c->n->hooks.payload_end(c->n->hooks.userdata, c->peer->spec.name);
		}
	}
}

static void conn_read(struct nodes_conn *c)
{
	char buf[16384];
	size_t budget = READ_BUDGET;

	/* (past the budget only what TLS holds already: no event would come
	 * for it, the socket being drained) */
	while (c->st == NC_OPEN && (budget > 0 || SSL_has_pending(c->ssl))) {
		int r;

		nodes_tls_clear();
		r = SSL_read(c->ssl, buf, sizeof(buf));
		if (r > 0) {
			feed(c, buf, (size_t)r);
			budget -= (size_t)r < budget ? (size_t)r : budget;
			continue;
		}
		switch (SSL_get_error(c->ssl, r)) {
		case SSL_ERROR_WANT_READ:
			return;
		case SSL_ERROR_WANT_WRITE:
			c->want_write = true;
			(void)conn_events(c);
			return;
		case SSL_ERROR_ZERO_RETURN:
			return conn_close(c, false, "the connection was closed");
		case SSL_ERROR_SSL:
			/* a peer whose process ended without its close_notify */
			if (ERR_GET_REASON(ERR_peek_last_error()) ==
				    SSL_R_UNEXPECTED_EOF_WHILE_READING &&
			    c->hello_seen)
				return conn_close(c, false, "the connection was closed");
			/* before its hello: the other end refused this node's certificate */
			if (!c->hello_seen)
				return conn_close(c, true,
						  "it refused this node's certificate (%s)",
						  nodes_tls_error());
			return conn_close(c, false, "TLS error: %s", nodes_tls_error());
		default:
			return conn_close(c, false, "the connection was lost%s%s",
					  errno ? ": " : "", errno ? strerror(errno) : "");
		}
	}
}

static void conn_handshake(struct nodes_conn *c)
{
	int r;

	nodes_tls_clear();
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->st = NC_OPEN;
		c->want_write = false;
		nodes_log(c->n, LOG_LVL_DEBUG, "TLS with node %s (%s) established",
			  c->peer->spec.name, c->addr);
		/* The accepting end speaks first: the dialling end's certificate is
		 * verified after its side of the handshake is done (TLS 1.3), and it
		 * reads the verdict (a hello, or an alert) before it writes. */
		if (!c->outbound && send_message(c->n, c, "hello") < 0)
			return conn_close(c, false, "cannot send hello");
		conn_flush(c);
		if (c->st == NC_OPEN)
			conn_read(c);
		return;
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		c->want_write = false;
		(void)conn_events(c);
		return;
	case SSL_ERROR_WANT_WRITE:
		c->want_write = true;
		(void)conn_events(c);
		return;
	case SSL_ERROR_SSL:
		if (c->verify_reason[0])
			return conn_close(c, true, "%s", c->verify_reason);
		if (strstr(nodes_tls_error(), "alert"))
			return conn_close(c, true, "it refused this node's certificate (%s)",
					  nodes_tls_error());
		return conn_close(c, true, "TLS handshake failed: %s", nodes_tls_error());
	default:
		return conn_close(c, false, "the connection was lost during the TLS handshake");
	}
}

static void conn_connected(struct nodes_conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err)
		return conn_close(c, false, "cannot connect: %s", strerror(err));
	c->st = NC_HANDSHAKE;
	conn_handshake(c);
}

static void conn_event(struct nodes_conn *c, uint32_t events)
{
	switch (c->st) {
	case NC_CONNECTING:
		return conn_connected(c);
	case NC_HANDSHAKE:
		return conn_handshake(c);
	case NC_OPEN:
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			conn_read(c);
		if (c->st == NC_OPEN && (events & EPOLLOUT))
			conn_flush(c);
		return;
	default:
		return;
	}
}

/* ---- listening and dialling ---- */
static bool same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr,
			       sizeof(struct in6_addr));
	return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
	       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
}

/* Connections from this address whose certificate is not verified yet: one
 * host cannot take every slot of node_max_connections by itself. */
static size_t unverified_from(struct nodes *n, const struct sockaddr_storage *sa)
{
	size_t k = 0;

	for (struct nodes_conn *c = n->conns; c; c = c->next)
		k += !c->outbound && !c->hello_seen && same_host(&c->sa, sa);
	return k;
}

static void handle_listen(struct nodes *n)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage sa;
		socklen_t salen = sizeof(sa);
		int fd = accept4(n->listen_fd, (struct sockaddr *)&sa, &salen,
				 SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct nodes_conn *c;

		if (fd < 0)
			return;
		if (n->n_inbound >= n->cfg->max_connections ||
		    unverified_from(n, &sa) >= NODES_UNVERIFIED_PER_ADDR) {
			nodes_log(n, LOG_LVL_DEBUG, "Node connection refused: %zu already open",
				  n->n_inbound);
			close(fd);
			continue;
		}
		c = conn_new(n, fd, false);
		if (!c) {
			close(fd);
			continue;
		}
		n->n_inbound++;
		c->sa = sa;
		addr_format(&sa, c->addr, sizeof(c->addr));
	}
}

static void dial(struct nodes *n, struct nodes_peer *p)
{
	int fd = socket(p->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct nodes_conn *c;

	p->next_dial = mono_usec() + p->backoff_us;
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&p->sa, p->salen) < 0 && errno != EINPROGRESS) {
		char why[128];

		snprintf(why, sizeof(why), "cannot connect: %s", strerror(errno));
		close(fd);
		if (p->state != NODES_PEER_REFUSED && p->state != NODES_PEER_UP)
			peer_set(n, p, NODES_PEER_DOWN, why);
		return;
	}
	c = conn_new(n, fd, true);
	if (!c) {
		close(fd);
		return;
	}
	c->peer = p;
	snprintf(c->addr, sizeof(c->addr), "%s", p->spec.addr);
	p->dial = c;
}

static int setup_listen(struct nodes *n, char **ret_error)
{
	struct sockaddr_storage sa;
	unsigned salen;
	int one = 1, r;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	if (nodes_addr_parse(n->cfg->listen, NODES_DEFAULT_PORT, &sa, &salen) < 0)
		return -EINVAL;
	n->listen_fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (n->listen_fd < 0)
		return -errno;
	(void)setsockopt(n->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(n->listen_fd, (struct sockaddr *)&sa, salen) < 0 || listen(n->listen_fd, 64) < 0) {
		r = -errno;
		*ret_error = xstrdup_printf("Cannot listen on node_listen %s: %s", n->cfg->listen,
					    strerror(errno));
		return r;
	}
	return epoll_ctl(n->epfd, EPOLL_CTL_ADD, n->listen_fd, &ev) < 0 ? -errno : 0;
}

/* ---- the module's interface ---- */
/* node_peers and node_peers_file together; this node's own entry (one nodes
 * file can serve every node) is skipped. */
static int load_peers(struct nodes *n, char **ret_error)
{
	_cleanup_free_ struct nodes_peer_spec *specs = NULL;
	_cleanup_free_ char *file = NULL;
	char err[256] = "";
	size_t count = 0;
	int r = 0;

	if (n->cfg->peers)
		r = nodes_peers_parse(n->cfg->peers, &specs, &count, err, sizeof(err));
	if (r >= 0 && n->cfg->peers_file) {
		r = read_file_at(AT_FDCWD, n->cfg->peers_file, 1 << 20, &file, NULL);
		if (r < 0) {
			*ret_error = xstrdup_printf("Cannot read node_peers_file %s: %s",
						    n->cfg->peers_file, strerror(-r));
			return r;
		}
		r = nodes_peers_parse(file, &specs, &count, err, sizeof(err));
	}
	if (r < 0) {
		*ret_error = xstrdup_printf("Bad peers list: %s", err[0] ? err : strerror(-r));
		return r;
	}
	n->peers = calloc(count ? count : 1, sizeof(*n->peers));
	if (!n->peers)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		struct nodes_peer *p = &n->peers[n->n_peers];

		if (!strcmp(specs[i].name, n->cfg->name))
			continue;
		p->spec = specs[i];
		(void)nodes_addr_parse(p->spec.addr, NODES_DEFAULT_PORT, &p->sa, &p->salen);
		p->state = NODES_PEER_CONNECTING;
		p->backoff_us = DIAL_BACKOFF_MIN_US;
		n->n_peers++;
	}
	return 0;
}

static int check_config(const struct nodes_config *cfg, char **ret_error)
{
	const char *missing = !cfg->name   ? "node_name"
			      : !cfg->key  ? "node_key"
			      : !cfg->cert ? "node_cert"
			      : !cfg->ca   ? "node_ca"
					   : NULL;

	if (missing) {
		*ret_error = xstrdup_printf("The node channel needs %s in xosd.conf (see "
					    "docs/NODES.md, or remove node_listen and the peers)",
					    missing);
		return -EINVAL;
	}
	return 0;
}

int nodes_new(const struct nodes_config *cfg, const char *version, const struct nodes_hooks *hooks,
	      struct nodes **ret, char **ret_error)
{
	struct nodes *n;
	int r;

	if ((r = check_config(cfg, ret_error)) < 0)
		return r;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->cfg = cfg;
	n->hooks = *hooks;
	n->listen_fd = -EBADF;
	snprintf(n->version, sizeof(n->version), "%s", version);
	n->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (n->epfd < 0)
		r = -errno;
	else if ((r = load_peers(n, ret_error)) < 0)
		;
	else if ((r = nodes_tls_ctx(cfg, &n->ctx, ret_error)) < 0)
		;
	else if (cfg->listen)
		r = setup_listen(n, ret_error);
	if (r < 0) {
		nodes_free(n);
		return r;
	}
	n->next_status = mono_usec() + cfg->heartbeat_us;
	*ret = n;
	return 0;
}

void nodes_free(struct nodes *n)
{
	if (!n)
		return;
	while (n->conns) {
		struct nodes_conn *c = n->conns;

		n->conns = c->next;
		/* a node going away says so (TLS close_notify, not waited for):
		 * its peers log "closed", not a TLS error */
		if (c->ssl && SSL_is_init_finished(c->ssl))
			(void)SSL_shutdown(c->ssl);
		conn_free(c);
	}
	reap_closed(n);
	closep(&n->listen_fd);
	closep(&n->epfd);
	if (n->ctx)
		nodes_tls_ctx_free(n->ctx);
	free(n->peers);
	free(n);
}

int nodes_fd(const struct nodes *n)
{
	return n->epfd;
}

void nodes_process(struct nodes *n)
{
	struct epoll_event evs[32];
	int k = epoll_wait(n->epfd, evs, ELEMENTSOF(evs), 0);

	for (int i = 0; i < k; i++) {
		struct nodes_conn *c = evs[i].data.ptr;

		if (!c)
			handle_listen(n);
		else if (c->st != NC_CLOSED)
			conn_event(c, evs[i].events);
	}
	reap_closed(n);
}

/* Status to every peer that has had our hello, every heartbeat (the host's
 * figures read once for all of them); where this node's stream is open and
 * has nothing queued (its producer waits), a keepalive in the stream, so
 * that a stream that pauses does not look like a node that is gone. */
static void send_status(struct nodes *n)
{
	_cleanup_free_ char *text = NULL;

	for (struct nodes_conn *c = n->conns, *next; c; c = next) {
		next = c->next; /* (a failed flush moves c to the closed list) */
		if (c->st != NC_OPEN || !c->hello_seen)
			continue;
		if (c->streaming) {
			/* (a queue with bytes in it is moving them, or the
			 * other end takes nothing: either way no keepalive) */
			if (c->out_off == c->out_len && queue_keepalive(c) == 0)
				conn_flush(c);
			continue;
		}
		if (!text && !(text = message_text(n, "status")))
			return;
		if (conn_queue(c, text, strlen(text)) < 0)
			nodes_log(n, LOG_LVL_DEBUG, "Node %s takes no more messages for now",
				  c->peer->spec.name);
		conn_flush(c);
	}
}

static void expire(struct nodes *n, uint64_t now)
{
	for (struct nodes_conn *c = n->conns, *next; c; c = next) {
		next = c->next;
		if (now < c->deadline)
			continue;
		/* what arrived while this node was busy counts (a long turn of
		 * xosd's loop must not make a peer that spoke look silent) */
		if (c->st == NC_OPEN && c->hello_seen)
			conn_read(c);
		if (c->st == NC_CLOSED || now < c->deadline)
			continue;
		if (c->st == NC_OPEN && c->hello_seen)
			conn_close(c, false, "no message for %llu s",
				   (unsigned long long)(3 * n->cfg->heartbeat_us / 1000000));
		else if (c->st == NC_CONNECTING)
			conn_close(c, false, "cannot connect: timed out");
		else
			conn_close(c, false, "no TLS handshake and hello within %llu s",
				   (unsigned long long)(n->cfg->handshake_timeout_us / 1000000));
	}
}

static uint64_t earlier(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

int nodes_tick(struct nodes *n)
{
	uint64_t now = mono_usec(), next;

	expire(n, now);
	if (now >= n->next_status) {
		send_status(n);
		n->next_status = now + n->cfg->heartbeat_us;
	}
	for (size_t i = 0; i < n->n_peers; i++) {
		struct nodes_peer *p = &n->peers[i];

		if (!p->dial && p->state != NODES_PEER_UP && now >= p->next_dial)
			dial(n, p);
	}
	reap_closed(n);
	next = n->next_status;
	for (struct nodes_conn *c = n->conns; c; c = c->next)
		next = earlier(next, c->deadline);
	for (size_t i = 0; i < n->n_peers; i++)
		if (!n->peers[i].dial && n->peers[i].state != NODES_PEER_UP)
			next = earlier(next, n->peers[i].next_dial);
	return next <= now ? 0 : (int)((next - now + 999) / 1000);
}

static void peer_to_json(const struct nodes_peer *p, yajl_gen g)
{
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "name", p->spec.name);
	json_gen_kv_str(g, "address", p->spec.addr);
	json_gen_kv_str(g, "state", nodes_peer_state_to_string(p->state));
	json_gen_kv_str(g, "reason", p->reason[0] ? p->reason : NULL);
	json_gen_kv_uint(g, "since_us", p->since_us);
	if (p->last_seen_us)
		json_gen_kv_uint(g, "last_seen_us", p->last_seen_us);
	else
		json_gen_kv_null(g, "last_seen_us");
	json_gen_kv_str(g, "version", p->version[0] ? p->version : NULL);
	json_gen_key(g, "capacity");
	if (p->have_cap)
		nodes_capacity_to_json(&p->cap, g);
	else
		yajl_gen_null(g);
	yajl_gen_map_close(g);
}

void nodes_list_json(const struct nodes *n, yajl_gen g)
{
	json_gen_kv_str(g, "node", n->cfg->name);
	json_gen_kv_str(g, "listen", n->cfg->listen);
	json_gen_key(g, "peers");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n->n_peers; i++)
		peer_to_json(&n->peers[i], g);
	yajl_gen_array_close(g);
	json_gen_key(g, "refused");
	yajl_gen_array_open(g);
	for (size_t k = 0; k < n->n_refusals; k++) { /* newest first */
		size_t i = (n->refusal_next + NODES_REFUSALS_KEPT - 1 - k) % NODES_REFUSALS_KEPT;
		const struct nodes_refusal *r = &n->refusals[i];

		yajl_gen_map_open(g);
		json_gen_kv_str(g, "address", r->addr);
		json_gen_kv_str(g, "name", r->name[0] ? r->name : NULL);
		json_gen_kv_str(g, "reason", r->reason);
		json_gen_kv_uint(g, "at_us", r->at_us);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
}

/* ---- messages and streams for the channel's users ---- */
static struct nodes_peer *peer_by_name(const struct nodes *n, const char *name)
{
	for (size_t i = 0; i < n->n_peers; i++)
		if (!strcmp(n->peers[i].spec.name, name))
			return &n->peers[i];
	return NULL;
}

/* The channel to peer: the connection this node dialled, else an accepted one. */
static struct nodes_conn *peer_conn(const struct nodes *n, const char *name)
{
	struct nodes_peer *p = peer_by_name(n, name);
	struct nodes_conn *found = NULL;

	if (!p)
		return NULL;
	if (p->dial && p->dial->st == NC_OPEN && p->dial->hello_seen)
		return p->dial;
	for (struct nodes_conn *c = n->conns; c; c = c->next)
		if (c->peer == p && c->st == NC_OPEN && c->hello_seen && !found)
			found = c;
	return found;
}

bool nodes_peer_up(const struct nodes *n, const char *peer)
{
	return peer_conn(n, peer) != NULL;
}

int nodes_peer_at(const struct nodes *n, size_t i, const char **ret_name,
		  struct sockaddr_storage *ret_addr)
{
	if (i >= n->n_peers)
		return -ENOENT;
	*ret_name = n->peers[i].spec.name;
	memset(ret_addr, 0, sizeof(*ret_addr));
	memcpy(ret_addr, &n->peers[i].sa, n->peers[i].salen);
	return 0;
}

size_t nodes_peers_down(const struct nodes *n)
{
	size_t down = 0;

	for (size_t i = 0; i < n->n_peers; i++)
		down += peer_conn(n, n->peers[i].spec.name) == NULL;
	return down;
}

bool nodes_stream_open(const struct nodes *n, const char *peer)
{
	struct nodes_conn *c = peer_conn(n, peer);

	return c && c->streaming;
}

bool nodes_receiving(const struct nodes *n, const char *peer)
{
	for (struct nodes_conn *c = n->conns; c; c = c->next)
		if (c->peer && !strcmp(c->peer->spec.name, peer) && c->st == NC_OPEN &&
		    c->in_payload)
			return true;
	return false;
}

int nodes_peer_capacity(const struct nodes *n, const char *peer, struct nodes_capacity *ret)
{
	struct nodes_peer *p = peer_by_name(n, peer);

	if (!p)
		return -ENOENT;
	if (!p->have_cap)
		return -EAGAIN;
	*ret = p->cap;
	return 0;
}

/* Queue a header to peer's connection (*ret), or, while a stream holds it
 * (or headers kept during one still wait), keep it for after the stream
 * (*ret NULL). A stream's own header is never kept: -EBUSY. */
static int queue_header(struct nodes *n, const char *peer, const char *header, bool stream,
			struct nodes_conn **ret)
{
	struct nodes_conn *c = peer_conn(n, peer);
	int r;

	*ret = NULL;
	if (!c)
		return -ENOTCONN;
	if (stream && c->streaming)
		return -EBUSY;
	if (stream && c->n_later && (r = later_queue(c)) < 0)
		return r;
	if (!stream && (c->streaming || c->n_later))
		return later_add(c, header);
	*ret = c;
	return conn_queue(c, header, strlen(header));
}

int nodes_send(struct nodes *n, const char *peer, const char *header)
{
	struct nodes_conn *c = NULL;
	int r = queue_header(n, peer, header, false, &c);

	if (r >= 0 && c)
		conn_flush(c);
	return r;
}

int nodes_stream_begin(struct nodes *n, const char *peer, const char *header)
{
	struct nodes_conn *c = NULL;
	int r = queue_header(n, peer, header, true, &c);

	if (r < 0)
		return r;
	c->streaming = true;
	(void)conn_events(c);
	return 0;
}

static struct nodes_conn *stream_conn(const struct nodes *n, const char *peer)
{
	struct nodes_conn *c = peer_conn(n, peer);

	return c && c->streaming ? c : NULL;
}

ssize_t nodes_stream_write(struct nodes *n, const char *peer, const void *data, size_t len)
{
	struct nodes_conn *c = stream_conn(n, peer);
	size_t queued, room;
	int r;

	if (!c)
		return -ENOTCONN;
	queued = c->out_len - c->out_off;
	if (queued + 4 >= NODES_OUT_MAX)
		return 0;
	room = NODES_OUT_MAX - queued - 4;
	if (len > room)
		len = room;
	if (len > NODES_CHUNK_MAX)
		len = NODES_CHUNK_MAX;
	if (len == 0)
		return 0;
	r = queue_chunk(c, data, len);
	if (r < 0)
		return r;
	(void)conn_events(c); /* (flushed when the socket is writable) */
	return (ssize_t)len;
}

int nodes_stream_end(struct nodes *n, const char *peer)
{
	struct nodes_conn *c = stream_conn(n, peer);
	int r;

	if (!c)
		return -ENOTCONN;
	r = queue_chunk(c, NULL, 0);
	if (r < 0)
		return r;
	c->streaming = false;
	conn_flush(c);
	return 0;
}

void nodes_stream_abort(struct nodes *n, const char *peer)
{
	struct nodes_conn *c = stream_conn(n, peer);

	if (c)
		conn_close(c, false, "its stream was given up"); /* (freed after this batch) */
}
