/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef XOS_NETSETUP_INTERNAL_H
#define XOS_NETSETUP_INTERNAL_H

#include "common/common.h"
#include "netsetup/netsetup.h"

struct nft_ctx;

/* a job registered with the instance (its record is the runtime's) */
struct nsjob {
	char id[XOS_JOB_ID_HEX + 1];
	struct netsetup_job *nj;
	struct nsjob *next;
};

struct netsetup {
	const struct netsetup_config *cfg;
	int net_fd;   /* <state>/net */
	int lease_fd; /* <state>/net/leases: one file per leased address */
	struct nft_ctx *nft;
	char nft_error[256]; /* the first line of nft's last error */
	bool up;             /* bridge and tables are in place */
	bool fwd_turned_on;  /* bridge_up turned on net.ipv4.ip_forward */
	struct nsjob *jobs;
	size_t n_bridge_jobs;
	uint32_t *peers; /* the peer nodes' addresses (netsetup_set_peers) */
	size_t n_peers;
};

/* a network mode */
struct netsetup_backend {
	const char *name;
	int (*setup)(struct netsetup *n, const char *id, struct netsetup_job *nj, char **ret_error);
	int (*adopt)(struct netsetup *n, const char *id, struct netsetup_job *nj);
	void (*release)(struct netsetup *n, const char *id, struct netsetup_job *nj);
	int (*lxc_config)(struct netsetup *n, const char *id, const struct netsetup_job *nj,
			  netsetup_config_add_fn add, void *userdata);
};
extern const struct netsetup_backend netsetup_backend_none, netsetup_backend_bridge;

/* link.c */
int link_bridge_create(const char *name);
int link_set_up(const char *name);
int link_addr_add(const char *name, uint32_t addr, unsigned prefix);
int link_delete(const char *name);
int link_sysctl(const char *ifname, const char *key, const char *value);
/* net.ipv4.ip_forward on: 1 if it was off (turned on now), 0, -errno. */
int link_ip_forward_on(void);
/* Whether the interface forwards IPv4 (conf/IFACE/forwarding). */
bool link_forwards(const char *ifname);
bool link_addr_in_use(uint32_t addr);
int link_bridge_ports(const char *bridge, void (*fn)(void *ud, const char *port), void *ud);

/* nft.c */
int nftw_open(struct netsetup *n);
void nftw_close(struct netsetup *n);
int nftw_tables_build(struct netsetup *n); /* fresh tables with every registered job */
int nftw_tables_delete(struct netsetup *n, const char *table);
int nftw_job(struct netsetup *n, const char *verb, const char *job_id,
	     const struct netsetup_job *nj);

/* lease.c */
int lease_claim(struct netsetup *n, uint32_t addr, const char *job_id);
void lease_release(struct netsetup *n, uint32_t addr, const char *job_id);
bool lease_taken(struct netsetup *n, uint32_t addr);
int lease_reconcile(struct netsetup *n);

#endif
