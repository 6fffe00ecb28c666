/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nodes: the node channel between xosd daemons. TCP with mutual TLS 1.3
 * (OpenSSL): each node holds a key and a certificate of the site's CA, and
 * talks only to the peers xosd.conf names. On the channel: framed messages,
 * a JSON header of bounded size and an optional binary payload in chunks
 * (docs/NODES.md). The module runs its own epoll set, which xosd watches as
 * one fd of its event loop. The one public header of nodes/. */
#ifndef XOS_NODES_H
#define XOS_NODES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct yajl_gen_t;

#define NODES_NAME_MAX 63       /* characters of a node name */
#define NODES_PEERS_MAX 256     /* peers a node knows */
#define NODES_HEADER_MAX 65536  /* bytes of a frame's JSON header */
#define NODES_CHUNK_MAX 1048576 /* bytes of one payload chunk */
#define NODES_PROTO_VERSION 2   /* the channel's protocol ("proto" of hello) */
/* A payload's "chunk length" that is none: the sender's stream is open and
 * has nothing to send yet (its heartbeat: no header can go meanwhile) */
#define NODES_CHUNK_KEEPALIVE 0xffffffffu
#define NODES_DEFAULT_PORT "7390" /* node_listen without a port */

/* ---- configuration (the node_* keys of xosd.conf(5)) ---- */
struct nodes_config {
	char *name;            /* node_name: this node's name, as in its certificate */
	char *key;             /* node_key: its private key (PEM), mode 0600 */
	char *cert;            /* node_cert: its certificate (PEM) */
	char *ca;              /* node_ca: the site's CA certificate(s) (PEM) */
	char *crl;             /* node_crl: revoked certificates (PEM), optional */
	char *listen;          /* node_listen: ADDRESS:PORT ([V6]:PORT) */
	char *peers;           /* node_peers: "NAME ADDRESS:PORT, ..." */
	char *peers_file;      /* node_peers_file: lines of NAME ADDRESS:PORT */
	uint64_t heartbeat_us; /* node_heartbeat: 5 s; a peer silent for 3 of them is down */
	uint64_t handshake_timeout_us; /* node_handshake_timeout: 10 s, TLS and hello */
	uint64_t max_connections;      /* node_max_connections: 64 at once, both ways */
};
void nodes_config_init(struct nodes_config *c);
void nodes_config_free(struct nodes_config *c);
/* Apply one "key = value" of xosd.conf: -ENOKEY if key is not a node key,
 * -EINVAL for a bad value. */
int nodes_config_set(struct nodes_config *c, const char *key, const char *value);
/* Whether the channel is wanted (node_listen or peers set). */
bool nodes_config_enabled(const struct nodes_config *c);

/* ---- pure helpers (unit-tested) ---- */
/* [A-Za-z0-9][A-Za-z0-9.-]{0,62}: a node name (a host name's characters). */
bool nodes_name_valid(const char *s);
/* "10.0.0.1:7390", "[fd00::1]:7390", numeric only (no resolver in the
 * event loop); default_port when the text has none (NULL: required). */
struct sockaddr_storage;
int nodes_addr_parse(const char *s, const char *default_port, struct sockaddr_storage *ret,
		     unsigned *ret_len);
struct nodes_peer_spec {
	char name[NODES_NAME_MAX + 1];
	char addr[64];
};
/* Peers as node_peers gives them (entries separated by ',' or newlines,
 * each "NAME ADDRESS:PORT", '#' starting a comment to the end of its line),
 * appended to *peers (*n of them, at most NODES_PEERS_MAX). -EINVAL with the
 * offending entry (or why) in ret_error (at least 128 bytes), -E2BIG. */
int nodes_peers_parse(const char *text, struct nodes_peer_spec **peers, size_t *n, char *ret_error,
		      size_t error_len);

/* Frames (docs/NODES.md): a 4-byte big-endian length (1..NODES_HEADER_MAX)
 * and that many bytes of a JSON object; if the header says "payload": true,
 * chunks follow, each a 4-byte big-endian length (0..NODES_CHUNK_MAX) and
 * its bytes, and a chunk of length 0 ends the payload; a length of
 * NODES_CHUNK_KEEPALIVE, with no bytes after it, only says the stream lives. */
enum nodes_frame_event {
	NODES_FRAME_NONE,      /* more bytes needed */
	NODES_FRAME_HEADER,    /* data: the header, NUL-terminated, len bytes */
	NODES_FRAME_CHUNK,     /* data: a piece of a payload chunk (not copied) */
	NODES_FRAME_END,       /* the payload ended */
	NODES_FRAME_KEEPALIVE, /* a payload's keepalive (no data) */
};
struct nodes_parser {
	int state;
	uint8_t lenbuf[4];
	size_t lenhave;
	uint32_t need; /* bytes left of the header or chunk */
	char *buf;     /* the header being read */
	size_t have;
	size_t header_max; /* 0: NODES_HEADER_MAX */
	uint64_t payload_bytes;
};
void nodes_parser_init(struct nodes_parser *p, size_t header_max);
void nodes_parser_done(struct nodes_parser *p);
/* Consume bytes until an event completes or they run out: how many were
 * consumed (*ret_event and its data set), or -EMSGSIZE (a header or chunk
 * longer than allowed), -EBADMSG (a header of length 0, or one that holds a
 * NUL), -ENOMEM. After a NODES_FRAME_HEADER event the caller, having parsed
 * the header, calls nodes_parser_expect_payload if it announced one. */
ssize_t nodes_parser_feed(struct nodes_parser *p, const void *data, size_t len,
			  enum nodes_frame_event *ret_event, const char **ret_data,
			  size_t *ret_len);
void nodes_parser_expect_payload(struct nodes_parser *p);
/* Bytes of a frame's length prefix (header or chunk) into buf[4]. */
void nodes_frame_len(uint32_t len, uint8_t buf[4]);

/* ---- free capacity, as hello and status messages carry it ---- */
struct nodes_capacity {
	uint64_t mem_total, mem_available; /* bytes (MemAvailable) */
	uint32_t cpus;                     /* online CPUs */
	uint64_t pids_max, pids_free;      /* kernel.pid_max, minus the tasks there are */
	uint64_t jobs;                     /* live jobs on the node */
	uint64_t job_slots;                /* jobs it can still start (free id slices) */
	char cpu_model[128];
	char kernel[96];
	char arch[32];
};
/* The host's figures (jobs and job_slots left as they are). */
int nodes_capacity_local(struct nodes_capacity *cap);
void nodes_capacity_to_json(const struct nodes_capacity *cap, struct yajl_gen_t *g);
/* From a parsed JSON object (a hostile peer's: strings are cut to their
 * fields and anything but printable ASCII becomes '?'). */
struct yajl_val_s;
int nodes_capacity_from_json(struct yajl_val_s *obj, struct nodes_capacity *ret);

/* ---- the channel ---- */
enum nodes_peer_state {
	NODES_PEER_DOWN,       /* no channel (never reached, or lost) */
	NODES_PEER_CONNECTING, /* dialled, handshake under way */
	NODES_PEER_UP,         /* hello received, heartbeats arriving */
	NODES_PEER_REFUSED,    /* its certificate, or it ours, was refused */
	_NODES_PEER_STATE_MAX,
	_NODES_PEER_STATE_INVALID = -22, /* -EINVAL */
};
const char *nodes_peer_state_to_string(enum nodes_peer_state s);
enum nodes_peer_state nodes_peer_state_from_string(const char *s);

/* What the channel asks of xosd: where its messages go (it logs nothing
 * itself but debug lines), and the node's job figures for its capacity. */
struct nodes_hooks {
	void *userdata;
	void (*log)(void *userdata, int level, const char *msg); /* enum log_level */
	void (*capacity)(void *userdata, struct nodes_capacity *cap);
	/* A message of a type the channel does not handle itself (hello and
	 * status are its own), from peer; payload: chunks follow, then the end. */
	void (*message)(void *userdata, const char *peer, struct yajl_val_s *header, bool payload);
	void (*chunk)(void *userdata, const char *peer, const void *data, size_t len);
	void (*payload_end)(void *userdata, const char *peer);
	/* A channel with peer closed (a message or stream in flight may be lost). */
	void (*peer_lost)(void *userdata, const char *peer);
	/* The stream to peer has room again (see nodes_stream_write). */
	void (*writable)(void *userdata, const char *peer);
	/* A channel with peer began (its hello came): for every new channel,
	 * also when the peer was up already (it may have restarted). */
	void (*peer_up)(void *userdata, const char *peer);
};

struct nodes;
/* Load the keys, certificates and peers, listen and start dialling. On
 * failure *ret_error says what to fix. */
int nodes_new(const struct nodes_config *cfg, const char *version, const struct nodes_hooks *hooks,
	      struct nodes **ret, char **ret_error);
void nodes_free(struct nodes *n);
/* The fd to watch for EPOLLIN in the daemon's loop (an epoll fd). */
int nodes_fd(const struct nodes *n);
/* Handle what is ready on the channel's fds (never blocks). */
void nodes_process(struct nodes *n);
/* Run the due timers (dials, heartbeats, timeouts): ms to the next, or -1. */
int nodes_tick(struct nodes *n);
/* {"node":..., "listen":..., "peers":[...], "refused":[...]} fields into an open map. */
void nodes_list_json(const struct nodes *n, struct yajl_gen_t *g);

/* ---- messages and streams to a peer (docs/NODES.md, "Messages") ----
 * A message is a JSON object with a "type" (header is its text); it goes on
 * the peer's channel (the connection this node dialled, else one it
 * accepted). A stream is one message with "payload": true and its bytes in
 * chunks; while it is open, that channel carries nothing else of this node's:
 * a header sent meanwhile is kept and goes after the stream's end, in order
 * (at most NODES_LATER_MAX bytes of them; lost with the connection, as
 * anything queued is). Nothing blocks: bytes are queued (at most
 * NODES_OUT_MAX per connection). */
/* -ENOTCONN: no channel to peer; -EBUSY: a stream is open on it and keeps
 * NODES_LATER_MAX bytes of headers already; -ENOBUFS: its queue is full;
 * -EMSGSIZE. */
int nodes_send(struct nodes *n, const char *peer, const char *header);
/* Begin a stream (header holds "payload": true): as nodes_send, but -EBUSY
 * while another stream of this node's is open on the channel. */
int nodes_stream_begin(struct nodes *n, const char *peer, const char *header);
/* Queue data of the open stream: the bytes taken (0: the queue is full, the
 * writable hook says when it has room), -ENOTCONN (the stream is gone). */
ssize_t nodes_stream_write(struct nodes *n, const char *peer, const void *data, size_t len);
/* End the stream (its empty chunk). */
int nodes_stream_end(struct nodes *n, const char *peer);
/* Give up a stream that cannot end well: its connection is closed, and the
 * other end sees a payload without its end. */
void nodes_stream_abort(struct nodes *n, const char *peer);
/* Whether peer is up (a channel with its hello). */
bool nodes_peer_up(const struct nodes *n, const char *peer);
/* How many peers are not up (this node is not one of its peers). */
size_t nodes_peers_down(const struct nodes *n);
/* Whether this node's stream to peer is still open (after a peer_lost hook:
 * whether the connection that closed was another one). */
bool nodes_stream_open(const struct nodes *n, const char *peer);
/* Whether a payload from peer is being read. */
bool nodes_receiving(const struct nodes *n, const char *peer);
/* Peer number i (0 up to the peers' count) by name and its address as the
 * peers list gives it: 0, or -ENOENT past the last. */
struct sockaddr_storage;
int nodes_peer_at(const struct nodes *n, size_t i, const char **ret_name,
		  struct sockaddr_storage *ret_addr);
/* The figures of peer's last hello or status (-ENOENT: unknown, -EAGAIN: none yet). */
int nodes_peer_capacity(const struct nodes *n, const char *peer, struct nodes_capacity *ret);

#endif
