/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* netsetup: container networking of a node. Network modes are backends
 * (none, bridge); the bridge mode puts each job's veth on the node bridge,
 * leases it an address from the pool (random, clash-free, recorded under the
 * state directory), masquerades its traffic to the outside (outbound),
 * publishes ports (DNAT) and keeps isolation groups apart (nftables, in
 * tables of the daemon instance's own). The one public header of netsetup/. */
#ifndef XOS_NETSETUP_H
#define XOS_NETSETUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NETSETUP_GROUP_MAX 63 /* characters of a group name */
#define NETSETUP_PORTS_MAX 16 /* published ports per job */
#define NETSETUP_IFNAME_MAX 15

enum netsetup_mode {
	NETSETUP_NONE,   /* own network namespace, loopback only */
	NETSETUP_BRIDGE, /* a veth on the node bridge, an address from the pool */
	_NETSETUP_MODE_MAX,
	_NETSETUP_MODE_INVALID = -22, /* -EINVAL */
};
const char *netsetup_mode_to_string(enum netsetup_mode m);
enum netsetup_mode netsetup_mode_from_string(const char *s);

/* ---- configuration (the net keys of xosd.conf(5)) ---- */
struct netsetup_config {
	enum netsetup_mode default_mode; /* net_default: none */
	char *bridge;                    /* net_bridge: xosbr0 */
	char *table;                     /* net_table: xos (nftables, inet and bridge) */
	uint32_t pool;                   /* net_pool: 10.88.0.0/16 (host byte order) */
	unsigned pool_prefix;
	bool outbound;         /* net_outbound: masquerade jobs' traffic to the outside */
	char *dns;             /* net_dns: nameservers, space separated; NULL: the host's */
	bool ip_forward_leave; /* net_ip_forward = leave: never turn on net.ipv4.ip_forward */
};
void netsetup_config_init(struct netsetup_config *c);
void netsetup_config_free(struct netsetup_config *c);
/* Apply one "key = value" of xosd.conf: -ENOKEY if key is not netsetup's,
 * -EINVAL for a bad value. */
int netsetup_config_set(struct netsetup_config *c, const char *key, const char *value);
int netsetup_config_finish(struct netsetup_config *c);

/* ---- pure helpers (unit-tested) ---- */
struct netsetup_port {
	uint16_t host, job;
	uint8_t proto; /* IPPROTO_TCP or IPPROTO_UDP */
};
/* "HOSTPORT:PORT[/tcp|/udp]" (ports 1..65535); -EINVAL. */
int netsetup_port_parse(const char *spec, struct netsetup_port *ret);
/* "18080:8080/tcp" */
int netsetup_port_format(const struct netsetup_port *p, char *buf, size_t len);
/* "10.88.1.2" -> host byte order; -EINVAL. */
int netsetup_addr_parse(const char *s, uint32_t *ret);
void netsetup_addr_format(uint32_t a, char buf[16]);
/* "10.88.0.0/16": the network (host bits must be 0) and prefix 8..30. */
int netsetup_cidr_parse(const char *s, uint32_t *ret_net, unsigned *ret_prefix);
/* The gateway of a pool: its first address (the bridge's). */
uint32_t netsetup_pool_gateway(uint32_t net, unsigned prefix);
/* Whether a may be leased to a job: in the pool, not network, broadcast or gateway. */
bool netsetup_pool_usable(uint32_t net, unsigned prefix, uint32_t a);
/* Pick a usable address of the pool, starting at a random one (seed) and
 * probing with a random odd stride, skipping those taken() says are taken;
 * -EADDRNOTAVAIL when the pool is full. */
typedef bool (*netsetup_taken_fn)(void *userdata, uint32_t a);
int netsetup_pool_pick(uint32_t net, unsigned prefix, uint64_t seed, netsetup_taken_fn taken,
		       void *userdata, uint32_t *ret);
/* [A-Za-z0-9][A-Za-z0-9_.-]{0,62} */
bool netsetup_group_valid(const char *s);
/* The group's number in nftables (a packet mark): a hash, never 0. */
uint32_t netsetup_group_mark(const char *group);
/* The host side of a job's veth: "xv" + the first 12 hex digits of its id. */
int netsetup_veth_name(const char *job_id, char ret[NETSETUP_IFNAME_MAX + 1]);
/* The interfaces of the IPv4 default routes in route_text (the format of
 * /proc/net/route), space-separated into ret; how many (0: none), or
 * -ENAMETOOLONG if ret is too small. */
int netsetup_default_route_ifaces(const char *route_text, char *ret, size_t len);
/* The node's default-route interfaces that do not forward IPv4, space-
 * separated into ret: the replies to bridge-mode jobs' outbound traffic are
 * forwarded from them. How many (0: all forward, or no default route). */
int netsetup_uplinks_not_forwarding(char *ret, size_t len);
/* The interface of the best route to addr (host byte order) in route_text
 * (the format of /proc/net/route): the longest prefix, then the lowest
 * metric. 0, or -ENOENT when no route leads there. */
int netsetup_route_iface(const char *route_text, uint32_t addr, char ret[NETSETUP_IFNAME_MAX + 1]);
/* Which of the nameservers in resolv_text ("nameserver A" lines; with
 * plain false, a list of addresses separated by blanks or commas) a
 * bridge-mode job can reach: those in the pool (on the bridge), and the
 * others only if reachable(addr) says the node routes the job's traffic
 * there and the replies back; loopback ones never. Returns the job's
 * resolv.conf text; *ret_dropped (may be NULL) gets the first address
 * left out (or ""), *ret_why why (static text, or NULL). NULL on OOM. */
typedef const char *(*netsetup_reachable_fn)(void *userdata, uint32_t addr);
char *netsetup_resolv_filter(const char *resolv_text, bool plain, uint32_t pool,
			     unsigned pool_prefix, netsetup_reachable_fn reachable, void *userdata,
			     char ret_dropped[16], const char **ret_why);

/* ---- a job's network (part of its record) ---- */
struct netsetup_job {
	enum netsetup_mode mode;
	char group[NETSETUP_GROUP_MAX + 1];
	uint32_t addr; /* bridge: the leased address (0: none yet) */
	struct netsetup_port ports[NETSETUP_PORTS_MAX];
	size_t n_ports;
	bool no_outbound; /* bridge: nothing out of the node but replies (a VO's policy) */
	/* runtime only */
	int port_fds[NETSETUP_PORTS_MAX]; /* sockets holding the host ports */
	bool active;                      /* set up: lease, ports and rules in place */
};
void netsetup_job_init(struct netsetup_job *nj);

/* ---- a daemon instance's networking ---- */
struct netsetup;
/* state_fd: the daemon's state directory (leases go to <state>/net). */
int netsetup_new(const struct netsetup_config *cfg, int state_fd, struct netsetup **ret);
/* Frees memory and fds only; the bridge and tables stay while jobs use them. */
void netsetup_free(struct netsetup *n);

/* Set up a new job's network before its container starts: the lease (nj->addr,
 * or a random free one if 0), the host ports, the bridge and rules. On failure
 * nothing is left set up, and err (struct xerr, common/error.h; may be NULL)
 * says why for the user, with the protocol's code:
 *   -EADDRNOTAVAIL  address outside the pool, or the pool is full (invalid_argument)
 *   -EADDRINUSE     address taken (lease or a local interface) (conflict)
 *   -EBUSY          a host port is taken (by a job or a program of the node) (conflict)
 * Other errors: the system's (internal). */
struct xerr;
int netsetup_job_setup(struct netsetup *n, const char *job_id, struct netsetup_job *nj,
		       struct xerr *err);
/* (A job keeps its network while it is stopped at a checkpoint. Should a
 * restore find it released, it calls this again with the recorded nj: that
 * claims the same address and host ports, or fails with -EADDRINUSE/-EBUSY
 * and leaves nothing set up.) */
/* Take over the network of a job that is still live after a daemon restart
 * (its lease and rules; the host ports are held again). */
int netsetup_job_adopt(struct netsetup *n, const char *job_id, struct netsetup_job *nj);
/* The job's container is gone: its lease, ports, rules and veth go; the
 * bridge and tables too once no job uses them. */
void netsetup_job_release(struct netsetup *n, const char *job_id, struct netsetup_job *nj);
/* Delete the network lock CRIU left in a job's network namespace (the
 * process of pidfd, or of pid when pidfd < 0) when it was killed between
 * locking and unlocking: its nftables tables "inet CRIU-<run id>", which
 * drop every packet but CRIU's own. How many it deleted, or -errno. */
int netsetup_drop_criu_lock(struct netsetup *n, int pidfd, pid_t pid);
/* After every live job was adopted: leases of other jobs, stray veths on the
 * bridge and the tables are brought in line with the adopted jobs. */
int netsetup_reconcile(struct netsetup *n);
/* Daemon stop: with no job left on the bridge, the bridge and tables go. */
void netsetup_shutdown(struct netsetup *n);

/* The LXC config lines of the job's network. */
typedef int (*netsetup_config_add_fn)(void *userdata, const char *key, const char *value);
int netsetup_job_lxc_config(struct netsetup *n, const char *job_id, const struct netsetup_job *nj,
			    netsetup_config_add_fn add, void *userdata);
/* The resolv.conf for a bridge-mode job (NULL for other modes or on OOM):
 * only resolvers the job can reach. *ret_warning (may be NULL) says, for
 * the user, why a resolver was left out (else NULL; also with net_outbound
 * false, where that is the node owner's choice). */
char *netsetup_resolv_conf(struct netsetup *n, const struct netsetup_job *nj, char **ret_warning);
/* Whether the bridge's set-up turned on the node's IPv4 forwarding
 * (net_ip_forward = auto with net_outbound, as Docker does); the flag is
 * cleared by asking. */
bool netsetup_take_forwarding_turned_on(struct netsetup *n);

/* ---- routes to jobs on other nodes (DECISIONS (ap)) ----
 * A /32 route in the main table with protocol NETSETUP_RTPROT ("ip route
 * show proto 88") for a job address that another node hosts, via that
 * node's address. */
#define NETSETUP_RTPROT 88
#define NETSETUP_ROUTES_MAX 65536 /* routes of xosd's a flush removes at once */
/* Add or replace the route to addr (host byte order) via the gateway via. */
int netsetup_route_add(uint32_t addr, uint32_t via);
/* Remove xosd's route to addr (none there: 0). */
int netsetup_route_del(uint32_t addr);
/* Remove every route of xosd's (an earlier run's): how many, or -errno. */
int netsetup_routes_flush(void);
/* The addresses of the peer nodes: their traffic may reach the jobs on the
 * bridge (not only published ports), and the jobs' traffic to them is not
 * masqueraded (a connection keeps its addresses when its job moves). Set
 * before the first job's network; a copy is kept. */
int netsetup_set_peers(struct netsetup *n, const uint32_t *addrs, size_t count);

/* How many jobs use the bridge now (for tests and xosd's log). */
size_t netsetup_bridge_jobs(const struct netsetup *n);

#endif
