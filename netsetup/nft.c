/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon instance's nftables tables (libnftables): an inet table for
 * published ports (DNAT), outbound masquerading, the node's input from jobs
 * and routed traffic between jobs, and a bridge table that keeps isolation
 * groups apart on the bridge itself. Per-job state is only set and map
 * elements, so a job comes and goes without touching a rule. */
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <nftables/libnftables.h>

#include "netsetup/netsetup-internal.h"

#define SCRIPT_MAX 8192
/* libnftables is loaded when the tables are first needed (a bridge-mode job,
 * or tables an earlier run left), not linked: with what it pulls in
 * (libxtables, jansson, gmp, libnftnl, libmnl) it added a third to xosd's
 * mappings, which every fork of xosd copies (each job start forks several
 * times), and many nodes only run --net none jobs. */
#define NFT_SONAME "libnftables.so.1"

static struct {
	void *handle;
	__typeof__(nft_ctx_new) *ctx_new;
	__typeof__(nft_ctx_free) *ctx_free;
	__typeof__(nft_ctx_buffer_output) *ctx_buffer_output;
	__typeof__(nft_ctx_buffer_error) *ctx_buffer_error;
	__typeof__(nft_ctx_get_error_buffer) *ctx_get_error_buffer;
	__typeof__(nft_ctx_get_output_buffer) *ctx_get_output_buffer;
	__typeof__(nft_run_cmd_from_buffer) *run_cmd_from_buffer;
} lib;

static int load_lib(struct netsetup *n)
{
	void *h;

	if (lib.handle)
		return 0;
	h = dlopen(NFT_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (h) {
		lib.ctx_new = dlsym(h, "nft_ctx_new");
		lib.ctx_free = dlsym(h, "nft_ctx_free");
		lib.ctx_buffer_output = dlsym(h, "nft_ctx_buffer_output");
		lib.ctx_buffer_error = dlsym(h, "nft_ctx_buffer_error");
		lib.ctx_get_error_buffer = dlsym(h, "nft_ctx_get_error_buffer");
		lib.ctx_get_output_buffer = dlsym(h, "nft_ctx_get_output_buffer");
		lib.run_cmd_from_buffer = dlsym(h, "nft_run_cmd_from_buffer");
	}
	if (!h || !lib.ctx_new || !lib.ctx_free || !lib.ctx_buffer_output ||
	    !lib.ctx_buffer_error || !lib.ctx_get_error_buffer || !lib.ctx_get_output_buffer ||
	    !lib.run_cmd_from_buffer) {
		snprintf(n->nft_error, sizeof(n->nft_error), "Cannot load %s: %s", NFT_SONAME,
			 dlerror() ?: "a function is missing");
		if (h)
			dlclose(h);
		return -ENOPKG;
	}
	lib.handle = h;
	return 0;
}

/* The context, made on first use. */
static int nft_ctx(struct netsetup *n)
{
	int r;

	if (n->nft)
		return 0;
	if ((r = load_lib(n)) < 0)
		return r;
	n->nft = lib.ctx_new(NFT_CTX_DEFAULT);
	if (!n->nft)
		return -ENOMEM;
	if (lib.ctx_buffer_output(n->nft) < 0 || lib.ctx_buffer_error(n->nft) < 0) {
		nftw_close(n);
		return -ENOMEM;
	}
	return 0;
}

int nftw_open(struct netsetup *n)
{
	n->nft = NULL; /* (made when first needed: nft_ctx) */
	return 0;
}

void nftw_close(struct netsetup *n)
{
	if (n->nft)
		lib.ctx_free(n->nft);
	n->nft = NULL;
}

static int nft_run(struct netsetup *n, const char *script)
{
	const char *err;
	int r = nft_ctx(n);

	if (r < 0) {
		if (r == -ENOMEM)
			snprintf(n->nft_error, sizeof(n->nft_error), "%s", strerror(-r));
		return -EIO;
	}
	r = lib.run_cmd_from_buffer(n->nft, script);
	err = lib.ctx_get_error_buffer(n->nft);
	if (r != 0) {
		log_debug("nft failed: %s (script: %s)", err ? err : "", script);
		snprintf(n->nft_error, sizeof(n->nft_error), "%.*s",
			 (int)strcspn(err ? err : "", "\n"), err ? err : "");
		return -EIO;
	}
	return 0;
}

static int append(char *buf, size_t *off, const char *fmt, ...) _printf_(3, 4);
static int append(char *buf, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(buf + *off, SCRIPT_MAX - *off, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= SCRIPT_MAX - *off)
		return -E2BIG;
	*off += (size_t)r;
	return 0;
}

static int inet_table(struct netsetup *n, char *s, size_t *o)
{
	const char *t = n->cfg->table, *br = n->cfg->bridge;
	char pool[16];
	int r;

	netsetup_addr_format(n->cfg->pool, pool);
	r = append(
		s, o,
		"table inet %s {\n"
		" map addr_group { type ipv4_addr : mark; }\n"
		" set member { type ipv4_addr . mark; }\n"
		" set no_out { type ipv4_addr; }\n"
		" set nodes { type ipv4_addr; }\n"
		" map tcp_ports { type inet_service : ipv4_addr . inet_service; }\n"
		" map udp_ports { type inet_service : ipv4_addr . inet_service; }\n"
		" chain prerouting { type nat hook prerouting priority dstnat; policy accept;\n"
		"  fib daddr type local dnat ip to tcp dport map @tcp_ports\n"
		"  fib daddr type local dnat ip to udp dport map @udp_ports\n }\n"
		" chain output { type nat hook output priority -100; policy accept;\n"
		"  fib daddr type local dnat ip to tcp dport map @tcp_ports\n"
		"  fib daddr type local dnat ip to udp dport map @udp_ports\n }\n"
		" chain postrouting { type nat hook postrouting priority srcnat; policy accept;\n"
		"  ip saddr 127.0.0.0/8 oifname \"%s\" masquerade\n",
		t, br);
	if (r >= 0 && n->cfg->outbound)
		r = append(s, o,
			   "  ip saddr %s/%u oifname != \"%s\" ip daddr != @nodes masquerade\n",
			   pool, n->cfg->pool_prefix, br);
	if (r >= 0)
		r = append(
			s, o,
			" }\n"
			" chain forward { type filter hook forward priority filter; policy accept;\n"
			"  iifname \"%s\" oifname \"%s\" ct status dnat accept\n"
			"  iifname \"%s\" oifname \"%s\" meta mark set ip saddr map @addr_group\n"
			"  iifname \"%s\" oifname \"%s\" ip daddr . meta mark @member accept\n"
			"  iifname \"%s\" oifname \"%s\" drop\n"
			"  iifname \"%s\" ip saddr @no_out ct status & dnat == 0 drop\n"
			"  iifname \"%s\" %s\n"
			"  oifname \"%s\" ct state established,related accept\n"
			"  oifname \"%s\" ip saddr @nodes accept\n"
			"  oifname \"%s\" ct status dnat accept\n"
			"  oifname \"%s\" drop\n }\n"
			" chain input { type filter hook input priority filter; policy accept;\n"
			"  iifname \"%s\" ip daddr 127.0.0.0/8 ct status dnat accept\n"
			"  iifname \"%s\" ip daddr 127.0.0.0/8 drop\n"
			"  iifname \"%s\" ct state established,related accept\n"
			"  iifname \"%s\" icmp type echo-request accept\n"
			"  iifname \"%s\" drop\n }\n"
			"}\n",
			br, br, br, br, br, br, br, br, br, br,
			n->cfg->outbound ? "accept" : "drop", br, br, br, br, br, br, br, br, br);
	return r;
}

static int bridge_table(struct netsetup *n, char *s, size_t *o)
{
	return append(s, o,
		      "table bridge %s {\n"
		      " set ports { type ifname; }\n"
		      " map port_group { type ifname : mark; }\n"
		      " set port_member { type ifname . mark; }\n"
		      " chain forward { type filter hook forward priority filter; policy accept;\n"
		      "  iifname @ports jump check\n }\n"
		      " chain check {\n"
		      "  meta mark set iifname map @port_group\n"
		      "  oifname . meta mark @port_member accept\n"
		      "  drop\n }\n"
		      "}\n",
		      n->cfg->table);
}

/* One job's elements, for "add" or "delete". */
static int job_elements(struct netsetup *n, const char *verb, const char *job_id,
			const struct netsetup_job *nj, char *s, size_t *o)
{
	const char *t = n->cfg->table;
	char a[16], veth[NETSETUP_IFNAME_MAX + 1];
	uint32_t m = netsetup_group_mark(nj->group);
	int r;

	netsetup_addr_format(nj->addr, a);
	r = netsetup_veth_name(job_id, veth);
	if (r >= 0)
		r = append(s, o,
			   "%s element inet %s addr_group { %s : 0x%x }\n"
			   "%s element inet %s member { %s . 0x%x }\n"
			   "%s element bridge %s ports { \"%s\" }\n"
			   "%s element bridge %s port_group { \"%s\" : 0x%x }\n"
			   "%s element bridge %s port_member { \"%s\" . 0x%x }\n",
			   verb, t, a, m, verb, t, a, m, verb, t, veth, verb, t, veth, m, verb, t,
			   veth, m);
	if (r >= 0 && nj->no_outbound)
		r = append(s, o, "%s element inet %s no_out { %s }\n", verb, t, a);
	for (size_t i = 0; r >= 0 && i < nj->n_ports; i++)
		r = append(s, o, "%s element inet %s %s_ports { %u : %s . %u }\n", verb, t,
			   nj->ports[i].proto == IPPROTO_UDP ? "udp" : "tcp", nj->ports[i].host, a,
			   nj->ports[i].job);
	return r;
}

/* The peer nodes' addresses into the set "nodes". */
static int nodes_elements(struct netsetup *n)
{
	_cleanup_free_ char *s = malloc(SCRIPT_MAX);
	size_t o = 0;
	char a[16];
	int r;

	if (!s)
		return -ENOMEM;
	r = append(s, &o, "add element inet %s nodes { ", n->cfg->table);
	for (size_t i = 0; r >= 0 && i < n->n_peers; i++) {
		netsetup_addr_format(n->peers[i], a);
		r = append(s, &o, "%s%s", i ? ", " : "", a);
	}
	if (r >= 0)
		r = append(s, &o, " }\n");
	return r < 0 ? r : nft_run(n, s);
}

/* Replace both tables with fresh ones holding the given jobs. */
int nftw_tables_build(struct netsetup *n)
{
	_cleanup_free_ char *s = malloc(SCRIPT_MAX);
	size_t o = 0;
	int r;

	if (!s)
		return -ENOMEM;
	r = append(s, &o, "add table inet %s\ndelete table inet %s\n", n->cfg->table,
		   n->cfg->table);
	if (r >= 0)
		r = append(s, &o, "add table bridge %s\ndelete table bridge %s\n", n->cfg->table,
			   n->cfg->table);
	if (r >= 0)
		r = inet_table(n, s, &o);
	if (r >= 0)
		r = bridge_table(n, s, &o);
	if (r < 0)
		return r;
	r = nft_run(n, s);
	if (r >= 0 && n->n_peers > 0)
		r = nodes_elements(n);
	for (struct nsjob *j = n->jobs; r >= 0 && j; j = j->next)
		r = nftw_job(n, "add", j->id, j->nj);
	return r;
}

int nftw_tables_delete(struct netsetup *n, const char *table)
{
	char s[256];
	int r;

	snprintf(s, sizeof(s), "add table inet %s\ndelete table inet %s\n", table, table);
	r = nft_run(n, s);
	snprintf(s, sizeof(s), "add table bridge %s\ndelete table bridge %s\n", table, table);
	return nft_run(n, s) < 0 ? -EIO : r;
}

int nftw_job(struct netsetup *n, const char *verb, const char *job_id,
	     const struct netsetup_job *nj)
{
	_cleanup_free_ char *s = malloc(SCRIPT_MAX);
	size_t o = 0;
	int r;

	if (!s)
		return -ENOMEM;
	r = job_elements(n, verb, job_id, nj, s, &o);
	return r < 0 ? r : nft_run(n, s);
}

/* ---- CRIU's network lock in a job's namespace ---- */

#define CRIU_TABLES_MAX 8

/* Delete every table "inet CRIU-..." of the context's namespace; how many. */
static int drop_criu_tables(struct nft_ctx *ctx)
{
	char names[CRIU_TABLES_MAX][64], cmd[128];
	const char *out, *p;
	size_t n = 0;
	int r = 0;

	if (lib.ctx_buffer_output(ctx) < 0 || lib.ctx_buffer_error(ctx) < 0 ||
	    lib.run_cmd_from_buffer(ctx, "list tables inet") != 0)
		return -EIO;
	out = lib.ctx_get_output_buffer(ctx);
	for (p = out ? out : ""; *p && n < CRIU_TABLES_MAX; p += strcspn(p, "\n"), p += !!*p) {
		size_t len = strcspn(p, "\n");

		if (len > strlen("table inet CRIU-") && len < sizeof(names[0]) + 11 &&
		    !strncmp(p, "table inet CRIU-", strlen("table inet CRIU-")))
			snprintf(names[n++], sizeof(names[0]), "%.*s", (int)(len - 11), p + 11);
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(cmd, sizeof(cmd), "delete table inet %.63s", names[i]);
		if (lib.run_cmd_from_buffer(ctx, cmd) != 0)
			r = -EIO;
	}
	return r < 0 ? r : (int)n;
}

int netsetup_drop_criu_lock(struct netsetup *n, int pidfd, pid_t pid)
{
	_cleanup_close_ int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int ns = -EBADF;
	struct nft_ctx *ctx;
	char path[64];
	int r;

	if (self < 0)
		return -errno;
	if (pidfd < 0) {
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
		ns = open(path, O_RDONLY | O_CLOEXEC);
		if (ns < 0)
			return -errno;
	}
	if ((r = load_lib(n)) < 0)
		return r;
	if (setns(pidfd >= 0 ? pidfd : ns, CLONE_NEWNET) < 0)
		return -errno;
	ctx = lib.ctx_new(NFT_CTX_DEFAULT); /* (its socket in the job's namespace) */
	r = ctx ? drop_criu_tables(ctx) : -ENOMEM;
	if (ctx)
		lib.ctx_free(ctx);
	if (setns(self, CLONE_NEWNET) < 0)
		abort(); /* xosd never stays in a job's namespace */
	return r;
}
