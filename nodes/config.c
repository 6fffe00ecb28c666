/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The node_* keys of xosd.conf, node names, addresses and peer lists. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#include "common/common.h"
#include "nodes/nodes.h"

void nodes_config_init(struct nodes_config *c)
{
	*c = (struct nodes_config){
		.heartbeat_us = 5000000,
		.handshake_timeout_us = 10000000,
		.max_connections = 64,
	};
}

void nodes_config_free(struct nodes_config *c)
{
	free(c->name);
	free(c->key);
	free(c->cert);
	free(c->ca);
	free(c->crl);
	free(c->listen);
	free(c->peers);
	free(c->peers_file);
	*c = (struct nodes_config){ 0 };
}

bool nodes_config_enabled(const struct nodes_config *c)
{
	return c->listen || c->peers || c->peers_file;
}

bool nodes_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NODES_NAME_MAX || !isalnum((unsigned char)s[0]))
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n;
}

int nodes_addr_parse(const char *s, const char *default_port, struct sockaddr_storage *ret,
		     unsigned *ret_len)
{
	char host[64];
	const char *port = default_port, *end;
	size_t hlen;
	uint64_t p;

	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end || (end[1] && end[1] != ':'))
			return -EINVAL;
		hlen = (size_t)(end - s - 1);
		s++;
		if (end[1] == ':')
			port = end + 2;
	} else {
		end = strchr(s, ':');
		hlen = end ? (size_t)(end - s) : strlen(s);
		if (end)
			port = end + 1;
		if (end && strchr(end + 1, ':'))
			return -EINVAL; /* an IPv6 address goes in brackets */
	}
	if (!port || hlen == 0 || hlen >= sizeof(host) || parse_uint64(port, &p) < 0 || p < 1 ||
	    p > 65535)
		return -EINVAL;
	memcpy(host, s, hlen);
	host[hlen] = 0;
	memset(ret, 0, sizeof(*ret));
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ret)->sin_addr) == 1) {
		((struct sockaddr_in *)ret)->sin_family = AF_INET;
		((struct sockaddr_in *)ret)->sin_port = htons((uint16_t)p);
		*ret_len = sizeof(struct sockaddr_in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ret)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)ret)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ret)->sin6_port = htons((uint16_t)p);
		*ret_len = sizeof(struct sockaddr_in6);
		return 0;
	}
	return -EINVAL;
}

/* One "NAME ADDRESS:PORT" entry (trimmed, not empty). */
static int peer_entry(char *e, struct nodes_peer_spec *ret, char *err, size_t err_len)
{
	struct sockaddr_storage sa;
	unsigned salen;
	char *name = e, *addr = e + strcspn(e, " \t");

	if (*addr)
		*addr++ = 0;
	addr += strspn(addr, " \t");
	if (!nodes_name_valid(name)) {
		snprintf(err, err_len, "'%s' is not a valid node name", name);
		return -EINVAL;
	}
	if (!*addr || strcspn(addr, " \t") != strlen(addr) || strlen(addr) >= sizeof(ret->addr) ||
	    nodes_addr_parse(addr, NODES_DEFAULT_PORT, &sa, &salen) < 0) {
		snprintf(err, err_len, "node %s: '%s' is not ADDRESS:PORT (numeric)", name, addr);
		return -EINVAL;
	}
	memcpy(ret->name, name, strlen(name) + 1);
	memcpy(ret->addr, addr, strlen(addr) + 1);
	return 0;
}

static char *trim(char *s)
{
	char *e;

	s += strspn(s, " \t\r");
	e = s + strlen(s);
	while (e > s && strchr(" \t\r", e[-1]))
		*--e = 0;
	return s;
}

/* Append a parsed entry, refusing a name given twice. */
static int peer_add(struct nodes_peer_spec **peers, size_t *n, const struct nodes_peer_spec *p,
		    char *err, size_t err_len)
{
	struct nodes_peer_spec *m;

	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*peers)[i].name, p->name)) {
			snprintf(err, err_len, "node %s is listed twice", p->name);
			return -EINVAL;
		}
	if (*n >= NODES_PEERS_MAX) {
		snprintf(err, err_len, "more than %d peers", NODES_PEERS_MAX);
		return -E2BIG;
	}
	m = realloc(*peers, (*n + 1) * sizeof(**peers));
	if (!m)
		return -ENOMEM;
	m[(*n)++] = *p;
	*peers = m;
	return 0;
}

int nodes_peers_parse(const char *text, struct nodes_peer_spec **peers, size_t *n, char *ret_error,
		      size_t error_len)
{
	_cleanup_free_ char *copy = strdup(text);
	char *line, *save = NULL;

	if (!copy)
		return -ENOMEM;
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *entry, *save2 = NULL;

		line[strcspn(line, "#")] = 0;
		for (entry = strtok_r(line, ",", &save2); entry;
		     entry = strtok_r(NULL, ",", &save2)) {
			struct nodes_peer_spec p;
			char *e = trim(entry);
			int r;

			if (!*e)
				continue;
			r = peer_entry(e, &p, ret_error, error_len);
			if (r >= 0)
				r = peer_add(peers, n, &p, ret_error, error_len);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* ---- the key table ---- */
enum key_kind { K_PATH, K_NAME, K_ADDR, K_PEERS, K_DURATION, K_COUNT };

static const struct node_key {
	const char *key;
	enum key_kind kind;
	size_t offset;
} node_keys[] = {
	{ "node_name", K_NAME, offsetof(struct nodes_config, name) },
	{ "node_key", K_PATH, offsetof(struct nodes_config, key) },
	{ "node_cert", K_PATH, offsetof(struct nodes_config, cert) },
	{ "node_ca", K_PATH, offsetof(struct nodes_config, ca) },
	{ "node_crl", K_PATH, offsetof(struct nodes_config, crl) },
	{ "node_listen", K_ADDR, offsetof(struct nodes_config, listen) },
	{ "node_peers", K_PEERS, offsetof(struct nodes_config, peers) },
	{ "node_peers_file", K_PATH, offsetof(struct nodes_config, peers_file) },
	{ "node_heartbeat", K_DURATION, offsetof(struct nodes_config, heartbeat_us) },
	{ "node_handshake_timeout", K_DURATION,
	  offsetof(struct nodes_config, handshake_timeout_us) },
	{ "node_max_connections", K_COUNT, offsetof(struct nodes_config, max_connections) },
};

static int check_value(enum key_kind kind, const char *v)
{
	struct sockaddr_storage sa;
	struct nodes_peer_spec *p = NULL;
	size_t n = 0;
	unsigned salen;
	char err[160];
	int r;

	switch (kind) {
	case K_PATH:
		return v[0] == '/' ? 0 : -EINVAL;
	case K_NAME:
		return nodes_name_valid(v) ? 0 : -EINVAL;
	case K_ADDR:
		return nodes_addr_parse(v, NODES_DEFAULT_PORT, &sa, &salen);
	case K_PEERS:
		r = nodes_peers_parse(v, &p, &n, err, sizeof(err));
		free(p);
		return r;
	default:
		return 0;
	}
}

int nodes_config_set(struct nodes_config *c, const char *key, const char *value)
{
	for (size_t i = 0; i < ELEMENTSOF(node_keys); i++) {
		const struct node_key *k = &node_keys[i];
		void *field = (char *)c + k->offset;
		uint64_t *num = field;
		char **str = field, *s;
		int r;

		if (strcmp(k->key, key) != 0)
			continue;
		if (k->kind == K_DURATION)
			return parse_duration(value, num) < 0 || *num < 100000 ? -EINVAL : 0;
		if (k->kind == K_COUNT)
			return parse_uint64(value, num) < 0 || *num < 1 || *num > 4096 ? -EINVAL
										       : 0;
		if ((r = check_value(k->kind, value)) < 0)
			return r;
		if (!(s = strdup(value)))
			return -ENOMEM;
		free(*str);
		*str = s;
		return 0;
	}
	return -ENOKEY;
}
