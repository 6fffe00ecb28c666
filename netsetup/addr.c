/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pure logic of netsetup: modes, config keys, addresses, pools, port specs,
 * group marks. No system calls here: all of it is unit-tested. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "common/common.h"
#include "netsetup/netsetup.h"

static const char *const modes[_NETSETUP_MODE_MAX] = {
	[NETSETUP_NONE] = "none",
	[NETSETUP_BRIDGE] = "bridge",
};

const char *netsetup_mode_to_string(enum netsetup_mode m)
{
	return m >= 0 && m < _NETSETUP_MODE_MAX ? modes[m] : NULL;
}

enum netsetup_mode netsetup_mode_from_string(const char *s)
{
	for (int i = 0; i < _NETSETUP_MODE_MAX; i++)
		if (s && !strcmp(s, modes[i]))
			return (enum netsetup_mode)i;
	return _NETSETUP_MODE_INVALID;
}

void netsetup_config_init(struct netsetup_config *c)
{
	*c = (struct netsetup_config){
		.default_mode = NETSETUP_NONE,
		.pool = 0x0a580000, /* 10.88.0.0/16 */
		.pool_prefix = 16,
		.outbound = true,
	};
}

void netsetup_config_free(struct netsetup_config *c)
{
	free(c->bridge);
	free(c->table);
	free(c->dns);
	*c = (struct netsetup_config){ 0 };
}

static bool name_ok(const char *v, size_t max)
{
	size_t n = strlen(v);

	return n > 0 && n <= max &&
	       strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", v[0]);
}

static int set_name(char **field, const char *v, size_t max, const char *extra)
{
	char *s;

	for (const char *p = v; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
			    *p) &&
		    !strchr(extra, *p))
			return -EINVAL;
	if (!name_ok(v, max))
		return -EINVAL;
	if (!(s = strdup(v)))
		return -ENOMEM;
	free(*field);
	*field = s;
	return 0;
}

static int set_dns(struct netsetup_config *c, const char *v)
{
	_cleanup_free_ char *copy = strdup(v);
	char *save = NULL;

	if (!copy)
		return -ENOMEM;
	for (char *t = strtok_r(copy, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
		uint32_t a;

		if (netsetup_addr_parse(t, &a) < 0)
			return -EINVAL;
	}
	free(c->dns);
	c->dns = strdup(v);
	return c->dns ? 0 : -ENOMEM;
}

int netsetup_config_set(struct netsetup_config *c, const char *key, const char *value)
{
	if (!strcmp(key, "net_default")) {
		enum netsetup_mode m = netsetup_mode_from_string(value);

		if ((int)m < 0)
			return -EINVAL;
		c->default_mode = m;
		return 0;
	}
	if (!strcmp(key, "net_bridge"))
		return set_name(&c->bridge, value, NETSETUP_IFNAME_MAX, "-");
	if (!strcmp(key, "net_table"))
		return set_name(&c->table, value, 32, "");
	if (!strcmp(key, "net_pool"))
		return netsetup_cidr_parse(value, &c->pool, &c->pool_prefix);
	if (!strcmp(key, "net_dns"))
		return set_dns(c, value);
	if (!strcmp(key, "net_ip_forward")) {
		if (strcmp(value, "auto") && strcmp(value, "leave"))
			return -EINVAL;
		c->ip_forward_leave = !strcmp(value, "leave");
		return 0;
	}
	if (!strcmp(key, "net_outbound"))
		return parse_bool(value, &c->outbound);
	return -ENOKEY;
}

int netsetup_config_finish(struct netsetup_config *c)
{
	if (!c->bridge && !(c->bridge = strdup("xosbr0")))
		return -ENOMEM;
	if (!c->table && !(c->table = strdup("xos")))
		return -ENOMEM;
	return 0;
}

int netsetup_addr_parse(const char *s, uint32_t *ret)
{
	struct in_addr a;
	size_t dots = 0;

	for (const char *p = s; *p; p++) {
		if (*p == '.')
			dots++;
		else if (*p < '0' || *p > '9')
			return -EINVAL;
	}
	if (dots != 3 || inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*ret = ntohl(a.s_addr);
	return 0;
}

void netsetup_addr_format(uint32_t a, char buf[16])
{
	snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static uint32_t prefix_mask(unsigned prefix)
{
	return prefix == 0 ? 0 : ~0U << (32 - prefix);
}

int netsetup_cidr_parse(const char *s, uint32_t *ret_net, unsigned *ret_prefix)
{
	const char *slash = strchr(s, '/');
	char addr[16];
	uint32_t a;
	int prefix;

	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = 0;
	if (netsetup_addr_parse(addr, &a) < 0 || parse_int(slash + 1, &prefix) < 0 || prefix < 8 ||
	    prefix > 30)
		return -EINVAL;
	if (a & ~prefix_mask((unsigned)prefix))
		return -EINVAL; /* host bits set: say the network */
	*ret_net = a;
	*ret_prefix = (unsigned)prefix;
	return 0;
}

uint32_t netsetup_pool_gateway(uint32_t net, unsigned prefix)
{
	return (net & prefix_mask(prefix)) + 1;
}

bool netsetup_pool_usable(uint32_t net, unsigned prefix, uint32_t a)
{
	uint32_t m = prefix_mask(prefix);

	return (a & m) == (net & m) && (a & ~m) != 0 && (a & ~m) != ~m &&
	       a != netsetup_pool_gateway(net, prefix);
}

int netsetup_pool_pick(uint32_t net, unsigned prefix, uint64_t seed, netsetup_taken_fn taken,
		       void *userdata, uint32_t *ret)
{
	uint64_t size = 1ULL << (32 - prefix);
	uint64_t start = seed % size, stride = ((seed >> 32) % size) | 1;

	/* an odd stride visits every address of a power-of-two pool once */
	for (uint64_t i = 0, off = start; i < size; i++, off = (off + stride) % size) {
		uint32_t a = (net & prefix_mask(prefix)) + (uint32_t)off;

		if (netsetup_pool_usable(net, prefix, a) && !(taken && taken(userdata, a))) {
			*ret = a;
			return 0;
		}
	}
	return -EADDRNOTAVAIL;
}

int netsetup_port_parse(const char *spec, struct netsetup_port *ret)
{
	char buf[32], *colon, *slash;
	uint64_t h, j;
	uint8_t proto = IPPROTO_TCP;

	if (strlen(spec) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, spec, strlen(spec) + 1);
	slash = strchr(buf, '/');
	if (slash) {
		*slash++ = 0;
		if (!strcmp(slash, "udp"))
			proto = IPPROTO_UDP;
		else if (strcmp(slash, "tcp") != 0)
			return -EINVAL;
	}
	colon = strchr(buf, ':');
	if (!colon)
		return -EINVAL;
	*colon++ = 0;
	if (!buf[0] || !colon[0] || strspn(buf, "0123456789") != strlen(buf) ||
	    strspn(colon, "0123456789") != strlen(colon) || parse_uint64(buf, &h) < 0 ||
	    parse_uint64(colon, &j) < 0 || h < 1 || h > 65535 || j < 1 || j > 65535)
		return -EINVAL;
	*ret = (struct netsetup_port){ .host = (uint16_t)h, .job = (uint16_t)j, .proto = proto };
	return 0;
}

int netsetup_port_format(const struct netsetup_port *p, char *buf, size_t len)
{
	int r = snprintf(buf, len, "%u:%u/%s", p->host, p->job,
			 p->proto == IPPROTO_UDP ? "udp" : "tcp");

	return r < 0 || (size_t)r >= len ? -ENOBUFS : 0;
}

bool netsetup_group_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NETSETUP_GROUP_MAX ||
	    !strchr("abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
		    s[0]))
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

uint32_t netsetup_group_mark(const char *group)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)group; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h ? h : 1;
}

int netsetup_veth_name(const char *job_id, char ret[NETSETUP_IFNAME_MAX + 1])
{
	if (strlen(job_id) < 12)
		return -EINVAL;
	snprintf(ret, NETSETUP_IFNAME_MAX + 1, "xv%.12s", job_id);
	return 0;
}

void netsetup_job_init(struct netsetup_job *nj)
{
	*nj = (struct netsetup_job){ .mode = NETSETUP_NONE };
	memcpy(nj->group, "default", sizeof("default"));
	for (size_t i = 0; i < NETSETUP_PORTS_MAX; i++)
		nj->port_fds[i] = -EBADF;
}
