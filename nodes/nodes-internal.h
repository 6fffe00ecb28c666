/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef XOS_NODES_INTERNAL_H
#define XOS_NODES_INTERNAL_H

#include <sys/socket.h>

#include "common/common.h"
#include "nodes/nodes.h"

struct ssl_ctx_st;
struct ssl_st;

#define NODES_OUT_MAX (4u << 20)     /* bytes queued for one connection */
#define NODES_LATER_MAX (256u << 10) /* bytes of headers kept until a stream ends */
#define NODES_REFUSALS_KEPT 16       /* refused strangers xnodes shows */
#define NODES_REASON_MAX 256
#define NODES_UNVERIFIED_PER_ADDR 8 /* connections of one address not yet verified */

struct nodes_conn;

struct nodes_peer {
	struct nodes_peer_spec spec;
	struct sockaddr_storage sa;
	unsigned salen;
	enum nodes_peer_state state;
	char reason[NODES_REASON_MAX];
	uint64_t since_us, last_seen_us; /* realtime */
	char version[32];
	bool have_cap;
	struct nodes_capacity cap;
	struct nodes_conn *dial; /* our connection to it, while there is one */
	uint64_t next_dial;      /* monotonic */
	uint64_t backoff_us;
};

struct nodes_refusal {
	char addr[64];
	char name[NODES_NAME_MAX + 1]; /* what its certificate said, if anything */
	char reason[NODES_REASON_MAX];
	uint64_t at_us;
};

enum conn_state { NC_CONNECTING, NC_HANDSHAKE, NC_OPEN, NC_CLOSED };

struct nodes_conn {
	struct nodes *n;
	int fd;
	struct ssl_st *ssl;
	bool outbound;
	enum conn_state st;
	struct nodes_peer *peer;    /* outbound: from the start; inbound: once verified */
	char addr[64];              /* the other end, for messages */
	struct sockaddr_storage sa; /* ... accepted: its address */
	char cert_name[NODES_NAME_MAX + 1];
	char verify_reason[NODES_REASON_MAX]; /* why this end refused the certificate */
	struct nodes_parser parser;
	uint8_t *out;
	size_t out_len, out_off, out_cap; /* queued bytes: [out_off, out_len) of out_cap */
	uint64_t deadline;                /* monotonic: handshake and hello, then silence */
	bool hello_seen;
	bool want_write; /* TLS wants the socket writable */
	bool streaming;  /* this node's stream is open on it (nothing else goes) */
	/* headers sent while the stream was open, in order, for after it */
	char **later;
	size_t n_later, later_bytes;
	bool in_payload;  /* the other end's payload is being read (for the hooks) */
	bool in_writable; /* the writable hook runs */
	uint32_t events;  /* in the epoll set */
	struct nodes_conn *next;
};

struct nodes {
	const struct nodes_config *cfg;
	struct nodes_hooks hooks;
	char version[32];
	struct ssl_ctx_st *ctx;
	int epfd, listen_fd;
	struct nodes_peer *peers;
	size_t n_peers;
	struct nodes_conn *conns, *closed;
	size_t n_inbound;
	uint64_t next_status; /* monotonic */
	struct nodes_refusal refusals[NODES_REFUSALS_KEPT];
	size_t n_refusals, refusal_next;
	uint64_t log_window; /* refusals logged in this 10 s window (rate limit) */
	unsigned log_count, log_dropped;
};

void nodes_log(struct nodes *n, int level, const char *fmt, ...) _printf_(3, 4);

/* tls.c */
int nodes_tls_ctx(const struct nodes_config *cfg, struct ssl_ctx_st **ret, char **ret_error);
void nodes_tls_ctx_free(struct ssl_ctx_st *ctx);
/* An SSL object for c on its fd (verification against the peers). */
int nodes_tls_conn(struct nodes *n, struct nodes_conn *c);
/* The reason of the last TLS error of this thread ("" if none). */
const char *nodes_tls_error(void);
void nodes_tls_clear(void);

#endif
