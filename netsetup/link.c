/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Links of the node through rtnetlink: the bridge (create, address, up,
 * delete), stray veths, per-interface sysctls, addresses in use. */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include "netsetup/netsetup-internal.h"

struct nlreq {
	struct nlmsghdr h;
	char buf[512];
};

static struct rtattr *nl_attr(struct nlreq *q, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)&q->h + NLMSG_ALIGN(q->h.nlmsg_len));
	size_t need = NLMSG_ALIGN(q->h.nlmsg_len) + RTA_SPACE(len);

	if (need > sizeof(*q))
		return NULL;
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	q->h.nlmsg_len = (uint32_t)need;
	return a;
}

static void nl_nest_end(struct nlreq *q, struct rtattr *nest)
{
	nest->rta_len = (unsigned short)((char *)&q->h + q->h.nlmsg_len - (char *)nest);
}

/* Send one request and read what answers it: each message to on_msg (if
 * any) until the kernel's ack or error (NLMSG_ERROR: 0 or -errno) or the
 * end of a dump (NLMSG_DONE: 0). */
static int nl_exchange(struct nlreq *q, void (*on_msg)(struct nlmsghdr *h, void *data), void *data)
{
	_cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char buf[16384] __attribute__((aligned(4)));
	ssize_t n;

	if (fd < 0)
		return -errno;
	q->h.nlmsg_flags |= NLM_F_REQUEST;
	q->h.nlmsg_seq = 1;
	if (sendto(fd, q, q->h.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	for (;;) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (on_msg)
				on_msg(h, data);
		}
	}
}

/* Send one request and read its ack: 0 or -errno from the kernel. */
static int nl_call(struct nlreq *q)
{
	q->h.nlmsg_flags |= NLM_F_ACK;
	return nl_exchange(q, NULL, NULL);
}

static void nl_init(struct nlreq *q, unsigned short type, unsigned short flags, size_t hdr)
{
	memset(q, 0, sizeof(*q));
	q->h.nlmsg_len = (uint32_t)NLMSG_LENGTH(hdr);
	q->h.nlmsg_type = type;
	q->h.nlmsg_flags = flags;
}

int link_bridge_create(const char *name)
{
	struct nlreq q;
	struct rtattr *info;

	nl_init(&q, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof(struct ifinfomsg));
	if (!nl_attr(&q, IFLA_IFNAME, name, strlen(name) + 1) ||
	    !(info = nl_attr(&q, IFLA_LINKINFO, NULL, 0)) ||
	    !nl_attr(&q, IFLA_INFO_KIND, "bridge", sizeof("bridge")))
		return -E2BIG;
	nl_nest_end(&q, info);
	return nl_call(&q);
}

int link_set_up(const char *name)
{
	struct nlreq q;
	struct ifinfomsg *ifi;
	unsigned idx = if_nametoindex(name);

	if (!idx)
		return -ENODEV;
	nl_init(&q, RTM_NEWLINK, 0, sizeof(*ifi));
	ifi = NLMSG_DATA(&q.h);
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)idx;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	return nl_call(&q);
}

int link_addr_add(const char *name, uint32_t addr, unsigned prefix)
{
	struct nlreq q;
	struct ifaddrmsg *ifa;
	uint32_t be = htonl(addr), brd = htonl(addr | ~(~0U << (32 - prefix)));
	unsigned idx = if_nametoindex(name);
	int r;

	if (!idx)
		return -ENODEV;
	nl_init(&q, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, sizeof(*ifa));
	ifa = NLMSG_DATA(&q.h);
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)prefix;
	ifa->ifa_index = idx;
	if (!nl_attr(&q, IFA_LOCAL, &be, 4) || !nl_attr(&q, IFA_ADDRESS, &be, 4) ||
	    !nl_attr(&q, IFA_BROADCAST, &brd, 4))
		return -E2BIG;
	r = nl_call(&q);
	return r == -EEXIST ? 0 : r;
}

int link_delete(const char *name)
{
	struct nlreq q;
	struct ifinfomsg *ifi;
	unsigned idx = if_nametoindex(name);
	int r;

	if (!idx)
		return 0;
	nl_init(&q, RTM_DELLINK, 0, sizeof(*ifi));
	ifi = NLMSG_DATA(&q.h);
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)idx;
	r = nl_call(&q);
	return r == -ENODEV ? 0 : r;
}

int link_sysctl(const char *ifname, const char *key, const char *value)
{
	char path[256];
	_cleanup_close_ int fd = -EBADF;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/%s", ifname, key);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return loop_write(fd, value, strlen(value)) < 0 ? -errno : 0;
}

int link_ip_forward_on(void)
{
	_cleanup_free_ char *v = NULL;
	_cleanup_close_ int fd = -EBADF;
	int r = read_file_at(AT_FDCWD, "/proc/sys/net/ipv4/ip_forward", 64, &v, NULL);

	if (r < 0)
		return r;
	if (v[0] != '0')
		return 0;
	fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return loop_write(fd, "1", 1) < 0 ? -errno : 1;
}

bool link_forwards(const char *ifname)
{
	_cleanup_free_ char *v = NULL;
	char path[96];

	if (strchr(ifname, '/') || strlen(ifname) > NETSETUP_IFNAME_MAX)
		return false;
	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/forwarding", ifname);
	return read_file_at(AT_FDCWD, path, 64, &v, NULL) >= 0 && v[0] == '1';
}

bool link_addr_in_use(uint32_t addr)
{
	struct ifaddrs *ifs = NULL;
	bool used = false;

	if (getifaddrs(&ifs) < 0)
		return false;
	for (struct ifaddrs *i = ifs; i && !used; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET)
			used = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr) == addr;
	freeifaddrs(ifs);
	return used;
}

/* Call fn for every port of the bridge (the names in /sys/class/net/BR/brif). */
int link_bridge_ports(const char *bridge, void (*fn)(void *ud, const char *port), void *ud)
{
	char path[128];
	DIR *d;
	struct dirent *de;

	snprintf(path, sizeof(path), "/sys/class/net/%s/brif", bridge);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			fn(ud, de->d_name);
	closedir(d);
	return 0;
}

/* word is one of the space-separated words of list */
static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
	return false;
}

int netsetup_default_route_ifaces(const char *route_text, char *ret, size_t len)
{
	const char *line = route_text;
	size_t used = 0;
	int n = 0;

	if (len)
		ret[0] = '\0';
	/* Iface Destination Gateway Flags RefCnt Use Metric Mask ...; a header first */
	while (line && *line) {
		char iface[NETSETUP_IFNAME_MAX + 2], dest[16], mask[16];
		const char *next = strchr(line, '\n');
		unsigned flags;

		if (sscanf(line, "%16s %15s %*s %x %*s %*s %*s %15s", iface, dest, &flags, mask) ==
			    4 &&
		    !strcmp(dest, "00000000") && !strcmp(mask, "00000000") &&
		    (flags & 1) /* RTF_UP */ && strlen(iface) <= NETSETUP_IFNAME_MAX &&
		    !strchr(iface, '/') && !has_word(ret, iface)) {
			int k = snprintf(ret + used, len - used, "%s%s", n ? " " : "", iface);

			if (k < 0 || (size_t)k >= len - used)
				return -ENAMETOOLONG;
			used += (size_t)k;
			n++;
		}
		line = next ? next + 1 : NULL;
	}
	return n;
}

int netsetup_route_iface(const char *route_text, uint32_t addr, char ret[NETSETUP_IFNAME_MAX + 1])
{
	const char *line = route_text;
	int best_len = -1;
	unsigned best_metric = 0;

	/* Iface Destination Gateway Flags RefCnt Use Metric Mask ...; hex of
	 * the addresses as they lie in memory (network order) */
	while (line && *line) {
		char iface[NETSETUP_IFNAME_MAX + 2];
		unsigned dest, mask, flags, metric;
		const char *next = strchr(line, '\n');

		if (sscanf(line, "%16s %x %*s %x %*s %*s %u %x", iface, &dest, &flags, &metric,
			   &mask) == 5 &&
		    (flags & 1) /* RTF_UP */ && strlen(iface) <= NETSETUP_IFNAME_MAX &&
		    (addr & ntohl(mask)) == ntohl(dest)) {
			int plen = __builtin_popcount(mask);

			if (plen > best_len || (plen == best_len && metric < best_metric)) {
				best_len = plen;
				best_metric = metric;
				memcpy(ret, iface, strlen(iface) + 1);
			}
		}
		line = next ? next + 1 : NULL;
	}
	return best_len < 0 ? -ENOENT : 0;
}

int netsetup_uplinks_not_forwarding(char *ret, size_t len)
{
	_cleanup_free_ char *routes = NULL;
	char ifaces[256], *save = NULL;
	size_t used = 0;
	int n = 0;

	if (len)
		ret[0] = '\0';
	if (read_file_at(AT_FDCWD, "/proc/net/route", 1 << 20, &routes, NULL) < 0 ||
	    netsetup_default_route_ifaces(routes, ifaces, sizeof(ifaces)) <= 0)
		return 0;
	for (char *i = strtok_r(ifaces, " ", &save); i; i = strtok_r(NULL, " ", &save)) {
		_cleanup_free_ char *v = NULL;
		char path[96];
		int k;

		snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/forwarding", i);
		if (read_file_at(AT_FDCWD, path, 64, &v, NULL) < 0 || v[0] != '0')
			continue;
		k = snprintf(ret + used, len - used, "%s%s", n ? " " : "", i);
		if (k < 0 || (size_t)k >= len - used)
			break;
		used += (size_t)k;
		n++;
	}
	return n;
}

/* ---- /32 routes to jobs on other nodes ---- */

static int route_msg(int type, unsigned short flags, uint32_t addr, uint32_t via)
{
	struct nlreq q;
	struct rtmsg *rt;
	uint32_t dst = htonl(addr), gw = htonl(via);

	nl_init(&q, (unsigned short)type, flags, sizeof(*rt));
	rt = NLMSG_DATA(&q.h);
	rt->rtm_family = AF_INET;
	rt->rtm_dst_len = 32;
	rt->rtm_table = RT_TABLE_MAIN;
	rt->rtm_protocol = NETSETUP_RTPROT;
	rt->rtm_scope = RT_SCOPE_UNIVERSE;
	rt->rtm_type = RTN_UNICAST;
	if (!nl_attr(&q, RTA_DST, &dst, sizeof(dst)) ||
	    (via && !nl_attr(&q, RTA_GATEWAY, &gw, sizeof(gw))))
		return -E2BIG;
	return nl_call(&q);
}

int netsetup_route_add(uint32_t addr, uint32_t via)
{
	return route_msg(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, addr, via);
}

int netsetup_route_del(uint32_t addr)
{
	int r = route_msg(RTM_DELROUTE, 0, addr, 0);

	return r == -ESRCH ? 0 : r;
}

/* The destinations of xosd's routes (protocol NETSETUP_RTPROT) in one
 * dump of the main table, at most max of them. */
struct route_dsts {
	uint32_t *dsts;
	size_t max, n;
};

static void route_dst(struct nlmsghdr *h, void *data)
{
	struct route_dsts *rd = data;
	struct rtmsg *rt = NLMSG_DATA(h);
	size_t len;

	if (h->nlmsg_type != RTM_NEWROUTE || rt->rtm_protocol != NETSETUP_RTPROT ||
	    rt->rtm_dst_len != 32 || rt->rtm_table != RT_TABLE_MAIN)
		return;
	len = RTM_PAYLOAD(h);
	for (struct rtattr *a = RTM_RTA(rt); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == RTA_DST && RTA_PAYLOAD(a) == 4 && rd->n < rd->max) {
			uint32_t d;

			memcpy(&d, RTA_DATA(a), 4);
			rd->dsts[rd->n++] = ntohl(d);
		}
}

static int routes_dump(uint32_t *dsts, size_t max, size_t *ret_n)
{
	struct route_dsts rd = { dsts, max, 0 };
	struct nlreq q;
	int r;

	nl_init(&q, RTM_GETROUTE, NLM_F_DUMP, sizeof(struct rtmsg));
	((struct rtmsg *)NLMSG_DATA(&q.h))->rtm_family = AF_INET;
	r = nl_exchange(&q, route_dst, &rd);
	*ret_n = rd.n;
	return r;
}

int netsetup_routes_flush(void)
{
	_cleanup_free_ uint32_t *dsts = calloc(NETSETUP_ROUTES_MAX, sizeof(*dsts));
	size_t n = 0;
	int r, gone = 0;

	if (!dsts)
		return -ENOMEM;
	if ((r = routes_dump(dsts, NETSETUP_ROUTES_MAX, &n)) < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (netsetup_route_del(dsts[i]) >= 0)
			gone++;
	return gone;
}
