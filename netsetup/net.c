/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A daemon instance's networking: the modes (backends), the job life cycle
 * (setup, adopt, release), the bridge on demand, reconciliation. */
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "netsetup/netsetup-internal.h"

static const struct netsetup_backend *const backends[_NETSETUP_MODE_MAX] = {
	[NETSETUP_NONE] = &netsetup_backend_none,
	[NETSETUP_BRIDGE] = &netsetup_backend_bridge,
};

static const struct netsetup_backend *backend(const struct netsetup_job *nj)
{
	return nj->mode >= 0 && nj->mode < _NETSETUP_MODE_MAX ? backends[nj->mode] : NULL;
}

int netsetup_new(const struct netsetup_config *cfg, int state_fd, struct netsetup **ret)
{
	struct netsetup *n = calloc(1, sizeof(*n));
	int r;

	if (!n)
		return -ENOMEM;
	n->cfg = cfg;
	n->net_fd = n->lease_fd = -EBADF;
	if ((mkdirat(state_fd, "net", 0700) < 0 && errno != EEXIST) ||
	    (n->net_fd = open_dir_at(state_fd, "net")) < 0 ||
	    (mkdirat(n->net_fd, "leases", 0700) < 0 && errno != EEXIST) ||
	    (n->lease_fd = open_dir_at(n->net_fd, "leases")) < 0) {
		r = n->net_fd < 0 ? n->net_fd : n->lease_fd < 0 ? n->lease_fd : -errno;
		netsetup_free(n);
		return r;
	}
	r = nftw_open(n);
	if (r < 0) {
		netsetup_free(n);
		return r;
	}
	*ret = n;
	return 0;
}

void netsetup_free(struct netsetup *n)
{
	if (!n)
		return;
	while (n->jobs) {
		struct nsjob *j = n->jobs;

		n->jobs = j->next;
		free(j); /* (the job's record, and its port fds, are the caller's) */
	}
	nftw_close(n);
	free(n->peers);
	closep(&n->lease_fd);
	closep(&n->net_fd);
	free(n);
}

int netsetup_set_peers(struct netsetup *n, const uint32_t *addrs, size_t count)
{
	uint32_t *p = NULL;

	if (count > 0) {
		p = calloc(count, sizeof(*p));
		if (!p)
			return -ENOMEM;
		memcpy(p, addrs, count * sizeof(*p));
	}
	free(n->peers);
	n->peers = p;
	n->n_peers = count;
	return 0;
}

size_t netsetup_bridge_jobs(const struct netsetup *n)
{
	return n->n_bridge_jobs;
}

static int do_register(struct netsetup *n, const char *id, struct netsetup_job *nj)
{
	struct nsjob *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	snprintf(j->id, sizeof(j->id), "%s", id);
	j->nj = nj;
	j->next = n->jobs;
	n->jobs = j;
	if (nj->mode == NETSETUP_BRIDGE)
		n->n_bridge_jobs++;
	nj->active = true;
	return 0;
}

static void do_unregister(struct netsetup *n, struct netsetup_job *nj)
{
	for (struct nsjob **p = &n->jobs; *p; p = &(*p)->next)
		if ((*p)->nj == nj) {
			struct nsjob *j = *p;

			*p = j->next;
			free(j);
			if (nj->mode == NETSETUP_BRIDGE)
				n->n_bridge_jobs--;
			break;
		}
	nj->active = false;
}

/* The protocol's code of a set-up that failed with r. */
static const char *setup_code(int r)
{
	if (r == -EADDRNOTAVAIL)
		return "invalid_argument";
	return r == -EADDRINUSE || r == -EBUSY ? "conflict" : "internal";
}

int netsetup_job_setup(struct netsetup *n, const char *job_id, struct netsetup_job *nj,
		       struct xerr *err)
{
	const struct netsetup_backend *b = backend(nj);
	_cleanup_free_ char *why = NULL;
	int r;

	if (!b)
		return xerr_set_msg(err, -EINVAL, NULL, NULL);
	r = b->setup(n, job_id, nj, &why);
	if (r >= 0 && (r = do_register(n, job_id, nj)) < 0)
		b->release(n, job_id, nj);
	if (r < 0)
		return xerr_set_msg(err, r, setup_code(r), why);
	return r;
}

int netsetup_job_adopt(struct netsetup *n, const char *job_id, struct netsetup_job *nj)
{
	const struct netsetup_backend *b = backend(nj);
	int r;

	if (!b)
		return -EINVAL;
	r = do_register(n, job_id, nj);
	return r < 0 ? r : b->adopt(n, job_id, nj);
}

void netsetup_job_release(struct netsetup *n, const char *job_id, struct netsetup_job *nj)
{
	const struct netsetup_backend *b = backend(nj);

	if (!n || !b || !nj->active)
		return;
	do_unregister(n, nj);
	b->release(n, job_id, nj);
}

int netsetup_job_lxc_config(struct netsetup *n, const char *job_id, const struct netsetup_job *nj,
			    netsetup_config_add_fn add, void *userdata)
{
	const struct netsetup_backend *b = backend(nj);

	return b ? b->lxc_config(n, job_id, nj, add, userdata) : -EINVAL;
}

/* ---- none: a network namespace with loopback only (the loader brings lo up) ---- */

static int none_setup(struct netsetup *n, const char *id, struct netsetup_job *nj, char **err)
{
	return 0;
}

static int none_adopt(struct netsetup *n, const char *id, struct netsetup_job *nj)
{
	return 0;
}

static void none_release(struct netsetup *n, const char *id, struct netsetup_job *nj)
{
}

static int none_lxc_config(struct netsetup *n, const char *id, const struct netsetup_job *nj,
			   netsetup_config_add_fn add, void *ud)
{
	return add(ud, "lxc.net.0.type", "empty");
}

const struct netsetup_backend netsetup_backend_none = {
	.name = "none",
	.setup = none_setup,
	.adopt = none_adopt,
	.release = none_release,
	.lxc_config = none_lxc_config,
};

/* ---- bridge ---- */

/* <state>/net/up names the bridge and tables this daemon made ("BRIDGE
 * TABLE"): only those are ever removed when no job needs them, never a
 * bridge or table of the same name that another daemon made. */
static int mark_up(struct netsetup *n)
{
	_cleanup_free_ char *s = xstrdup_printf("%s %s\n", n->cfg->bridge, n->cfg->table);

	return s ? write_file_atomic_at(n->net_fd, "up", s, strlen(s), 0600, false) : -ENOMEM;
}

static void take_down(struct netsetup *n, const char *bridge, const char *table)
{
	(void)nftw_tables_delete(n, table);
	(void)link_delete(bridge);
	unlinkat(n->net_fd, "up", 0);
}

/* The bridge with the gateway address, and fresh tables. */
static int bridge_up(struct netsetup *n)
{
	const char *br = n->cfg->bridge;
	bool made;
	int r;

	if (n->up)
		return 0;
	r = link_bridge_create(br);
	if (r < 0 && r != -EEXIST)
		return r;
	made = r >= 0;
	if ((r = link_addr_add(br, netsetup_pool_gateway(n->cfg->pool, n->cfg->pool_prefix),
			       n->cfg->pool_prefix)) < 0 ||
	    (r = link_set_up(br)) < 0)
		goto err_bridge;
	/* routed from the bridge (outbound, DNAT); 127.0.0.1 DNAT'ed to a job */
	(void)link_sysctl(br, "forwarding", n->cfg->outbound ? "1" : "0");
	/* the replies come in on the uplink: the node must forward (as Docker,
	 * xosd turns it on unless told to leave it) */
	if (n->cfg->outbound && !n->cfg->ip_forward_leave && link_ip_forward_on() > 0)
		n->fwd_turned_on = true;
	(void)link_sysctl(br, "route_localnet", "1");
	if ((r = nftw_tables_build(n)) < 0 || (r = mark_up(n)) < 0)
		goto err_bridge;
	n->up = true;
	return 0;
err_bridge:
	(void)nftw_tables_delete(n, n->cfg->table);
	if (made)
		(void)link_delete(br);
	return r;
}

static void bridge_down(struct netsetup *n)
{
	take_down(n, n->cfg->bridge, n->cfg->table);
	n->up = false;
}

static bool addr_taken(void *ud, uint32_t a)
{
	return lease_taken(ud, a) || link_addr_in_use(a);
}

static int lease_pick(struct netsetup *n, const char *id, struct netsetup_job *nj, char **err)
{
	const struct netsetup_config *c = n->cfg;
	char a[16], p[16];
	int r = 0;

	netsetup_addr_format(nj->addr, a);
	netsetup_addr_format(c->pool, p);
	if (nj->addr && !netsetup_pool_usable(c->pool, c->pool_prefix, nj->addr)) {
		*err = xstrdup_printf("Address %s is not a job address of the pool %s/%u "
				      "(network, gateway and broadcast addresses are not)",
				      a, p, c->pool_prefix);
		return -EADDRNOTAVAIL;
	}
	if (nj->addr) {
		r = link_addr_in_use(nj->addr) ? -EEXIST : lease_claim(n, nj->addr, id);
		if (r == -EEXIST)
			*err = xstrdup_printf("Address %s is taken on this node", a);
		return r == -EEXIST ? -EADDRINUSE : r;
	}
	for (int tries = 0; tries < 64; tries++) {
		uint64_t seed;

		if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
			return -errno;
		r = netsetup_pool_pick(c->pool, c->pool_prefix, seed, addr_taken, n, &nj->addr);
		if (r >= 0 && (r = lease_claim(n, nj->addr, id)) != -EEXIST)
			break;
	}
	if (r == -EADDRNOTAVAIL)
		*err = xstrdup_printf("The address pool %s/%u is full", p, c->pool_prefix);
	if (r < 0)
		nj->addr = 0;
	return r;
}

static int port_hold(const struct netsetup_port *p)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(p->host) };
	int fd = socket(AF_INET,
			(p->proto == IPPROTO_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

static void ports_close(struct netsetup_job *nj)
{
	for (size_t i = 0; i < nj->n_ports; i++)
		closep(&nj->port_fds[i]);
}

/* Hold each host port with a bound socket: a port a program (or another
 * job, of this daemon or another) holds is refused, and none can take it
 * while the job has it. */
static int ports_hold(struct netsetup_job *nj, char **err)
{
	for (size_t i = 0; i < nj->n_ports; i++) {
		char spec[32];
		int fd = port_hold(&nj->ports[i]);

		if (fd >= 0) {
			nj->port_fds[i] = fd;
			continue;
		}
		ports_close(nj);
		netsetup_port_format(&nj->ports[i], spec, sizeof(spec));
		*err = fd == -EADDRINUSE
			       ? xstrdup_printf("Port %u/%s of the node is taken "
						"(by a job or a program); choose another",
						nj->ports[i].host, strchr(spec, '/') + 1)
			       : xstrdup_printf("Cannot hold port %s: %s", spec, strerror(-fd));
		return fd == -EADDRINUSE ? -EBUSY : fd;
	}
	return 0;
}

static int bridge_setup(struct netsetup *n, const char *id, struct netsetup_job *nj, char **err)
{
	int r = lease_pick(n, id, nj, err);

	if (r < 0)
		return r;
	if ((r = ports_hold(nj, err)) < 0)
		goto err_lease;
	n->nft_error[0] = 0;
	if ((r = bridge_up(n)) < 0) {
		*err = xstrdup_printf("Cannot set up the bridge %s and its rules: %s",
				      n->cfg->bridge,
				      n->nft_error[0] ? n->nft_error : strerror(-r));
		goto err_ports;
	}
	if ((r = nftw_job(n, "add", id, nj)) < 0) {
		*err = xstrdup_printf("Cannot add the job's rules to table %s: %s", n->cfg->table,
				      n->nft_error);
		goto err_bridge;
	}
	return 0;
err_bridge:
	if (n->n_bridge_jobs == 0)
		bridge_down(n);
err_ports:
	ports_close(nj);
err_lease:
	lease_release(n, nj->addr, id);
	return r;
}

static int bridge_adopt(struct netsetup *n, const char *id, struct netsetup_job *nj)
{
	int r = 0;

	if (!lease_taken(n, nj->addr))
		(void)lease_claim(n, nj->addr, id);
	for (size_t i = 0; i < nj->n_ports; i++) {
		int fd = port_hold(&nj->ports[i]);

		if (fd >= 0)
			nj->port_fds[i] = fd;
		else if (r == 0)
			r = fd;
	}
	return r; /* rules: netsetup_reconcile() builds them for every adopted job */
}

static void bridge_release(struct netsetup *n, const char *id, struct netsetup_job *nj)
{
	char veth[NETSETUP_IFNAME_MAX + 1];

	if (n->up && n->n_bridge_jobs > 0)
		(void)nftw_job(n, "delete", id, nj);
	ports_close(nj);
	lease_release(n, nj->addr, id);
	if (netsetup_veth_name(id, veth) >= 0)
		(void)link_delete(veth); /* usually gone with the container's namespace */
	/* (before netsetup_reconcile, while jobs are being adopted, n->up is
	 * false: a job found dead then takes down nothing the next may use) */
	if (n->n_bridge_jobs == 0 && n->up)
		bridge_down(n);
}

static int bridge_lxc_config(struct netsetup *n, const char *id, const struct netsetup_job *nj,
			     netsetup_config_add_fn add, void *ud)
{
	char veth[NETSETUP_IFNAME_MAX + 1], a[16], v[32];
	int r = netsetup_veth_name(id, veth);

	netsetup_addr_format(nj->addr, a);
	snprintf(v, sizeof(v), "%s/%u", a, n->cfg->pool_prefix);
	r = r < 0 ? r : add(ud, "lxc.net.0.type", "veth");
	r = r < 0 ? r : add(ud, "lxc.net.0.link", n->cfg->bridge);
	r = r < 0 ? r : add(ud, "lxc.net.0.veth.pair", veth);
	r = r < 0 ? r : add(ud, "lxc.net.0.name", "eth0");
	r = r < 0 ? r : add(ud, "lxc.net.0.flags", "up");
	r = r < 0 ? r : add(ud, "lxc.net.0.ipv4.address", v);
	netsetup_addr_format(netsetup_pool_gateway(n->cfg->pool, n->cfg->pool_prefix), a);
	return r < 0 ? r : add(ud, "lxc.net.0.ipv4.gateway", a);
}

const struct netsetup_backend netsetup_backend_bridge = {
	.name = "bridge",
	.setup = bridge_setup,
	.adopt = bridge_adopt,
	.release = bridge_release,
	.lxc_config = bridge_lxc_config,
};

/* ---- reconciliation, shutdown ---- */

static void stray_port(void *ud, const char *port)
{
	struct netsetup *n = ud;
	char veth[NETSETUP_IFNAME_MAX + 1];

	for (struct nsjob *j = n->jobs; j; j = j->next)
		if (netsetup_veth_name(j->id, veth) >= 0 && !strcmp(veth, port))
			return;
	log_debug("Removing stray veth %s from bridge %s", port, n->cfg->bridge);
	(void)link_delete(port);
}

int netsetup_reconcile(struct netsetup *n)
{
	int r = lease_reconcile(n);

	if (r > 0)
		log_debug("Freed %d lease(s) of jobs that are gone", r);
	if (n->n_bridge_jobs == 0) {
		_cleanup_free_ char *up = NULL;
		char br[NETSETUP_IFNAME_MAX + 1], table[64];

		/* what an earlier run of this daemon left (it was killed, say) */
		if (read_file_at(n->net_fd, "up", 256, &up, NULL) >= 0 &&
		    sscanf(up, "%15s %63s", br, table) == 2)
			take_down(n, br, table);
		n->up = false;
		return 0;
	}
	(void)link_bridge_ports(n->cfg->bridge, stray_port, n);
	n->up = false;
	return bridge_up(n);
}

void netsetup_shutdown(struct netsetup *n)
{
	if (n && n->n_bridge_jobs == 0 && n->up)
		bridge_down(n);
}

static bool in_pool(uint32_t pool, unsigned prefix, uint32_t a)
{
	uint32_t mask = prefix ? ~0U << (32 - prefix) : 0;

	return (a & mask) == (pool & mask);
}

char *netsetup_resolv_filter(const char *resolv_text, bool plain, uint32_t pool,
			     unsigned pool_prefix, netsetup_reachable_fn reachable, void *userdata,
			     char ret_dropped[16], const char **ret_why)
{
	_cleanup_free_ char *src = strdup(resolv_text ? resolv_text : "");
	_cleanup_free_ char *out = strdup("# written by xosd for this job\n");
	const char *sep = plain ? " \t,\n" : "\n";
	char *save = NULL;

	ret_dropped[0] = '\0';
	*ret_why = NULL;
	if (!src || !out)
		return NULL;
	for (char *line = strtok_r(src, sep, &save); line; line = strtok_r(NULL, sep, &save)) {
		const char *why = NULL;
		char ns[64], *more;
		uint32_t a;

		if (!plain && sscanf(line, " nameserver %63s", ns) != 1)
			continue;
		if (plain)
			snprintf(ns, sizeof(ns), "%s", line);
		/* loopback resolvers of the node are not reachable from a job */
		if (netsetup_addr_parse(ns, &a) < 0 || (a >> 24) == 127)
			continue;
		if (!in_pool(pool, pool_prefix, a) && (why = reachable(userdata, a))) {
			if (!ret_dropped[0]) {
				netsetup_addr_format(a, ret_dropped);
				*ret_why = why;
			}
			continue;
		}
		more = xstrdup_printf("%snameserver %s\n", out, ns);
		free(out);
		out = more;
		if (!out)
			return NULL;
	}
	return TAKE_PTR(out);
}

/* Why the node does not route a job's traffic to a (NULL: it does). */
static const char *unreachable(void *userdata, uint32_t a)
{
	struct netsetup *n = userdata;
	_cleanup_free_ char *routes = NULL;
	char iface[NETSETUP_IFNAME_MAX + 1];

	if (!n->cfg->outbound)
		return "xosd does not route jobs' traffic off the node (net_outbound = false)";
	if (read_file_at(AT_FDCWD, "/proc/net/route", 1 << 20, &routes, NULL) < 0 ||
	    netsetup_route_iface(routes, a, iface) < 0)
		return "the node has no route to it";
	if (!link_forwards(iface))
		return n->cfg->ip_forward_leave
			       ? "IPv4 forwarding is off on the node's interface towards it and "
				 "xosd leaves it so (net_ip_forward = leave; the node's owner can "
				 "turn it on: sysctl net.ipv4.ip_forward=1)"
			       : "IPv4 forwarding is off on the node's interface towards it";
	return NULL;
}

char *netsetup_resolv_conf(struct netsetup *n, const struct netsetup_job *nj, char **ret_warning)
{
	_cleanup_free_ char *src = NULL;
	const char *why = NULL;
	char dropped[16];
	char *out;

	if (ret_warning)
		*ret_warning = NULL;
	if (nj->mode != NETSETUP_BRIDGE)
		return NULL;
	if (!n->cfg->dns)
		(void)read_file_at(AT_FDCWD, "/etc/resolv.conf", 65536, &src, NULL);
	out = netsetup_resolv_filter(n->cfg->dns ? n->cfg->dns : src, n->cfg->dns != NULL,
				     n->cfg->pool, n->cfg->pool_prefix, unreachable, n, dropped,
				     &why);
	/* (without net_outbound, jobs reach nothing off the node by the node
	 * owner's choice: no warning each time) */
	if (out && why && ret_warning && n->cfg->outbound)
		*ret_warning = xstrdup_printf("The job's DNS cannot work: the node's resolver %s "
					      "is not reachable from it, as %s; the job has no "
					      "nameserver, so names resolve only through "
					      "/etc/hosts",
					      dropped, why);
	return out;
}

bool netsetup_take_forwarding_turned_on(struct netsetup *n)
{
	bool v = n && n->fwd_turned_on;

	if (n)
		n->fwd_turned_on = false;
	return v;
}
