/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Job addresses reachable from every node (DECISIONS (ap)): each node
 * announces to its peers, over the node channel, the whole set of the
 * addresses of its bridge jobs ("routes" messages); each peer keeps a /32
 * route to every address another node announces, via that node (the newest
 * announcement of an address wins, an address of a job of its own never
 * gets one). A job that moves is announced by its new node and withdrawn by
 * the old one when that lets it go. Announcements are whole sets, sent
 * again to a peer whenever its channel begins, so each side reconciles by
 * itself; xosd's routes (protocol NETSETUP_RTPROT) are flushed at its start
 * and removed at its stop. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "nodes/nodes.h"
#include "runtime/runtime-internal.h"

#define ROUTES_ANNOUNCE_MAX 2048 /* addresses in one node's announcement */
#define ROUTES_RETRY_MS 200      /* a peer's channel busy with a stream */

struct route_peer {
	const char *name; /* (nodes/'s, lives as long as the channel) */
	uint32_t addr;    /* its IPv4 address (0: IPv6, no routes via it) */
	bool pending;     /* our set is to be sent to it */
};

struct route_kern { /* a route xosd installed */
	uint32_t addr, via;
};

struct routes {
	struct route_peer *peers;
	size_t n_peers;
	struct routes_table table; /* the peers' announcements */
	uint32_t *local;           /* the addresses announced now, sorted */
	size_t n_local;
	struct route_kern *kern;
	size_t n_kern, kern_cap;
	bool dirty; /* the kernel's routes to be brought in line */
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static struct route_peer *peer_find(struct routes *rt, const char *name, size_t *ret_i)
{
	for (size_t i = 0; i < rt->n_peers; i++)
		if (!strcmp(rt->peers[i].name, name)) {
			if (ret_i)
				*ret_i = i;
			return &rt->peers[i];
		}
	return NULL;
}

static bool is_local(const struct routes *rt, uint32_t a)
{
	return bsearch(&a, rt->local, rt->n_local, sizeof(a), cmp_u32) != NULL;
}

/* The addresses of this node's bridge jobs whose network is set up, sorted:
 * how many (at most max). */
static size_t local_addrs(struct daemon *d, uint32_t *out, size_t max)
{
	size_t n = 0;

	for (struct job *j = d->jobs; j && n < max; j = j->next)
		if (j->net.mode == NETSETUP_BRIDGE && j->net.active && j->net.addr)
			out[n++] = j->net.addr;
	qsort(out, n, sizeof(*out), cmp_u32);
	return n;
}

/* ---- announcements ---- */
static int send_set(struct daemon *d, const struct route_peer *p)
{
	struct routes *rt = d->routes;
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	_cleanup_free_ char *text = NULL;
	char a[16];

	if (!g)
		return -ENOMEM;
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "type", "routes");
	yajl_gen_string(g, (const unsigned char *)"addresses", strlen("addresses"));
	yajl_gen_array_open(g);
	for (size_t i = 0; i < rt->n_local; i++) {
		netsetup_addr_format(rt->local[i], a);
		yajl_gen_string(g, (const unsigned char *)a, strlen(a));
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	text = json_gen_take(g, false);
	return text ? nodes_send(d->nodes, p->name, text) : -ENOMEM;
}

/* Whether a peer may have a route to a: a unicast address that is not one
 * of the nodes' own (nor the pool's gateway here). */
static bool acceptable(struct daemon *d, uint32_t a)
{
	const struct netsetup_config *c = &d->cfg->net;
	struct routes *rt = d->routes;

	if ((a >> 24) == 0 || (a >> 24) == 127 || (a >> 28) >= 14 ||
	    a == netsetup_pool_gateway(c->pool, c->pool_prefix))
		return false;
	for (size_t i = 0; i < rt->n_peers; i++)
		if (rt->peers[i].addr == a)
			return false;
	return true;
}

/* ---- the announcements (pure) ---- */
static bool in_set(const uint32_t *addrs, size_t n, uint32_t a)
{
	for (size_t i = 0; i < n; i++)
		if (addrs[i] == a)
			return true;
	return false;
}

static bool announced(const struct routes_table *t, size_t peer, uint32_t a)
{
	for (const struct route_ann *r = t->anns; r; r = r->next)
		if (r->peer == peer && r->addr == a)
			return true;
	return false;
}

int routes_table_update(struct routes_table *t, size_t peer, const uint32_t *addrs, size_t n)
{
	int changed = 0;

	for (struct route_ann **pp = &t->anns; *pp;) {
		struct route_ann *r = *pp;

		if (r->peer == peer && !in_set(addrs, n, r->addr)) {
			*pp = r->next;
			free(r);
			changed = 1;
		} else
			pp = &r->next;
	}
	for (size_t i = 0; i < n; i++) {
		struct route_ann *r;

		if (announced(t, peer, addrs[i]))
			continue;
		if (!(r = calloc(1, sizeof(*r))))
			return -ENOMEM;
		*r = (struct route_ann){ .next = t->anns, .addr = addrs[i], .peer = peer };
		r->seq = ++t->seq;
		t->anns = r;
		changed = 1;
	}
	return changed;
}

ssize_t routes_table_winner(const struct routes_table *t, uint32_t a)
{
	const struct route_ann *best = NULL;

	for (const struct route_ann *r = t->anns; r; r = r->next)
		if (r->addr == a && (!best || r->seq > best->seq))
			best = r;
	return best ? (ssize_t)best->peer : -1;
}

void routes_table_clear(struct routes_table *t)
{
	while (t->anns) {
		struct route_ann *r = t->anns;

		t->anns = r->next;
		free(r);
	}
}

/* A peer's whole set (an IPv6 peer's is ignored: no route can go via it). */
static void on_routes(struct daemon *d, const char *node, yajl_val h)
{
	struct routes *rt = d->routes;
	yajl_val arr = json_get(h, "addresses");
	uint32_t addrs[ROUTES_ANNOUNCE_MAX];
	size_t pi, n = 0;

	if (!rt || !peer_find(rt, node, &pi) || !rt->peers[pi].addr || !YAJL_IS_ARRAY(arr))
		return;
	for (size_t i = 0; i < arr->u.array.len && n < ELEMENTSOF(addrs); i++) {
		const char *s = YAJL_GET_STRING(arr->u.array.values[i]);
		uint32_t a;

		if (s && netsetup_addr_parse(s, &a) >= 0 && acceptable(d, a))
			addrs[n++] = a;
	}
	if (routes_table_update(&rt->table, pi, addrs, n) != 0)
		rt->dirty = true; /* (out of memory too: tried again at the next change) */
}

/* ---- the kernel's routes ---- */
/* The gateway a should be routed via (0: none: no announcement, or a job
 * of this node has it). */
static uint32_t wanted_via(struct routes *rt, uint32_t a)
{
	ssize_t w = is_local(rt, a) ? -1 : routes_table_winner(&rt->table, a);

	return w >= 0 ? rt->peers[w].addr : 0;
}

static struct route_kern *kern_find(struct routes *rt, uint32_t a)
{
	for (size_t i = 0; i < rt->n_kern; i++)
		if (rt->kern[i].addr == a)
			return &rt->kern[i];
	return NULL;
}

static void route_log(const char *what, uint32_t a, uint32_t via, int r)
{
	char as[16], vs[16];

	netsetup_addr_format(a, as);
	netsetup_addr_format(via, vs);
	if (r < 0)
		log_warn("Failed to %s the route to job address %s via node %s: %s", what, as, vs,
			 strerror(-r));
	else
		log_debug("Route to job address %s via node %s: %s", as, vs, what);
}

static void sync_kernel(struct routes *rt)
{
	int r;

	for (size_t i = 0; i < rt->n_kern;) { /* routes no longer wanted, or via another */
		struct route_kern *k = &rt->kern[i];

		if (wanted_via(rt, k->addr) == k->via) {
			i++;
			continue;
		}
		r = netsetup_route_del(k->addr);
		route_log("remove", k->addr, k->via, r);
		*k = rt->kern[--rt->n_kern];
	}
	for (const struct route_ann *a = rt->table.anns; a; a = a->next) {
		uint32_t via = wanted_via(rt, a->addr);

		if (!via || kern_find(rt, a->addr))
			continue;
		if (rt->n_kern == rt->kern_cap) {
			size_t cap = rt->kern_cap ? rt->kern_cap * 2 : 16;
			struct route_kern *k = reallocarray(rt->kern, cap, sizeof(*k));

			if (!k)
				return; /* (tried again at the next change) */
			rt->kern = k;
			rt->kern_cap = cap;
		}
		r = netsetup_route_add(a->addr, via);
		route_log("add", a->addr, via, r);
		if (r >= 0)
			rt->kern[rt->n_kern++] = (struct route_kern){ a->addr, via };
	}
	rt->dirty = false;
}

/* ---- the daemon's side ---- */
static void hook_peer_up(void *userdata, const char *node)
{
	struct daemon *d = userdata;
	struct route_peer *p = d->routes ? peer_find(d->routes, node, NULL) : NULL;

	if (p)
		p->pending = true;
}

void routes_hooks(struct nodes_hooks *h)
{
	h->peer_up = hook_peer_up;
}

bool routes_message(struct daemon *d, const char *node, yajl_val h)
{
	const char *type = NULL;

	if (json_get_string(h, "type", &type) < 0 || strcmp(type, "routes") != 0)
		return false;
	on_routes(d, node, h);
	return true;
}

int routes_start(struct daemon *d)
{
	_cleanup_free_ uint32_t *addrs = NULL;
	struct routes *rt;
	const char *name;
	struct sockaddr_storage sa;
	size_t n = 0, k = 0;
	int r;

	if (!d->nodes)
		return 0;
	if ((r = netsetup_routes_flush()) > 0)
		log_info("Removed %d route(s) to other nodes' jobs that an earlier run left", r);
	if (!(rt = calloc(1, sizeof(*rt))))
		return -ENOMEM;
	d->routes = rt;
	while (nodes_peer_at(d->nodes, n, &name, &sa) >= 0)
		n++;
	rt->peers = calloc(n ? n : 1, sizeof(*rt->peers));
	rt->local = calloc(ROUTES_ANNOUNCE_MAX, sizeof(*rt->local));
	addrs = calloc(n ? n : 1, sizeof(*addrs));
	if (!rt->peers || !rt->local || !addrs) {
		routes_stop(d);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n && nodes_peer_at(d->nodes, i, &name, &sa) >= 0; i++) {
		struct route_peer *p = &rt->peers[rt->n_peers++];

		p->name = name;
		if (sa.ss_family == AF_INET)
			p->addr = ntohl(((struct sockaddr_in *)&sa)->sin_addr.s_addr);
		if (p->addr)
			addrs[k++] = p->addr;
	}
	if ((r = netsetup_set_peers(d->net, addrs, k)) < 0)
		routes_stop(d);
	return r;
}

int routes_tick(struct daemon *d)
{
	struct routes *rt = d->routes;
	uint32_t now[ROUTES_ANNOUNCE_MAX];
	size_t n;
	bool retry = false;

	if (!rt)
		return -1;
	n = local_addrs(d, now, ELEMENTSOF(now));
	if (n != rt->n_local || memcmp(now, rt->local, n * sizeof(*now)) != 0) {
		memcpy(rt->local, now, n * sizeof(*now));
		rt->n_local = n;
		rt->dirty = true;
		for (size_t i = 0; i < rt->n_peers; i++)
			rt->peers[i].pending = true;
	}
	for (size_t i = 0; i < rt->n_peers; i++) {
		struct route_peer *p = &rt->peers[i];

		if (!p->pending || !nodes_peer_up(d->nodes, p->name))
			continue;
		if (send_set(d, p) >= 0)
			p->pending = false;
		else
			retry = true; /* (a stream on its channel, or its queue full) */
	}
	if (rt->dirty)
		sync_kernel(rt);
	return retry ? ROUTES_RETRY_MS : -1;
}

void routes_stop(struct daemon *d)
{
	struct routes *rt = d->routes;

	if (!rt)
		return;
	for (size_t i = 0; i < rt->n_kern; i++)
		(void)netsetup_route_del(rt->kern[i].addr);
	routes_table_clear(&rt->table);
	free(rt->kern);
	free(rt->local);
	free(rt->peers);
	free(rt);
	d->routes = NULL;
}
