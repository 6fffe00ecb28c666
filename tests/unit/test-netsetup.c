/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of netsetup's pure logic: modes, config keys, addresses and
 * pools, address picking, port specs, groups, veth names; and the network
 * part of the job record (what a restore reuses). */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "netsetup/netsetup.h"
#include "runtime/runtime-internal.h"
#include "tests/unit/tap.h"

static void test_modes(void)
{
	ok(netsetup_mode_from_string("none") == NETSETUP_NONE, "mode none");
	ok(netsetup_mode_from_string("bridge") == NETSETUP_BRIDGE, "mode bridge");
	ok(netsetup_mode_from_string("host") == _NETSETUP_MODE_INVALID, "mode host is refused");
	ok(netsetup_mode_from_string(NULL) == _NETSETUP_MODE_INVALID, "no mode");
	ok(!strcmp(netsetup_mode_to_string(NETSETUP_BRIDGE), "bridge"), "bridge to string");
	ok(netsetup_mode_to_string(_NETSETUP_MODE_MAX) == NULL, "bad mode to string");
}

static void test_addr(void)
{
	uint32_t a = 0, net = 0;
	unsigned p = 0;
	char buf[16];

	ok(netsetup_addr_parse("10.88.1.2", &a) == 0 && a == 0x0a580102, "address parses");
	netsetup_addr_format(a, buf);
	ok(!strcmp(buf, "10.88.1.2"), "address formats back");
	ok(netsetup_addr_parse("10.88.1", &a) < 0, "three parts refused");
	ok(netsetup_addr_parse("10.88.1.256", &a) < 0, "octet 256 refused");
	ok(netsetup_addr_parse(" 10.88.1.2", &a) < 0, "space refused");
	ok(netsetup_addr_parse("fd00::1", &a) < 0, "IPv6 refused");
	ok(netsetup_cidr_parse("10.88.0.0/16", &net, &p) == 0 && net == 0x0a580000 && p == 16,
	   "pool parses");
	ok(netsetup_cidr_parse("10.88.0.1/16", &net, &p) < 0, "host bits set refused");
	ok(netsetup_cidr_parse("10.0.0.0/7", &net, &p) < 0, "prefix 7 refused");
	ok(netsetup_cidr_parse("10.0.0.0/31", &net, &p) < 0, "prefix 31 refused");
	ok(netsetup_cidr_parse("10.0.0.0", &net, &p) < 0, "no prefix refused");
	ok(netsetup_cidr_parse("10.0.0.0/1x", &net, &p) < 0, "bad prefix refused");
	ok(netsetup_pool_gateway(0x0a580000, 16) == 0x0a580001, "gateway is the first address");
	ok(netsetup_pool_usable(0x0a580000, 16, 0x0a580102), "a job address is usable");
	ok(!netsetup_pool_usable(0x0a580000, 16, 0x0a580000), "network address is not");
	ok(!netsetup_pool_usable(0x0a580000, 16, 0x0a580001), "gateway is not");
	ok(!netsetup_pool_usable(0x0a580000, 16, 0x0a58ffff), "broadcast is not");
	ok(!netsetup_pool_usable(0x0a580000, 16, 0x0a590001), "outside the pool is not");
}

struct taken_set {
	uint32_t *a;
	size_t n;
};

static bool is_taken(void *ud, uint32_t a)
{
	struct taken_set *t = ud;

	for (size_t i = 0; i < t->n; i++)
		if (t->a[i] == a)
			return true;
	return false;
}

static void test_pick(void)
{
	uint32_t got[256], a = 0;
	struct taken_set t = { got, 0 };
	bool all_ok = true;
	int r = 0;

	/* a /24 has 253 job addresses (not network, gateway, broadcast) */
	for (uint64_t seed = 1; t.n < 253; seed = seed * 6364136223846793005ULL + 1) {
		r = netsetup_pool_pick(0xac100000, 24, seed, is_taken, &t, &a);
		if (r < 0 || !netsetup_pool_usable(0xac100000, 24, a) || is_taken(&t, a)) {
			all_ok = false;
			break;
		}
		got[t.n++] = a;
	}
	ok(all_ok && t.n == 253, "253 picks in a /24 are distinct usable addresses (%zu)", t.n);
	r = netsetup_pool_pick(0xac100000, 24, 42, is_taken, &t, &a);
	ok(r == -EADDRNOTAVAIL, "a full pool says so (%d)", r);
	ok(netsetup_pool_pick(0x0a580000, 16, 7, NULL, NULL, &a) == 0 &&
		   netsetup_pool_usable(0x0a580000, 16, a),
	   "pick without a taken function");
	{
		uint32_t b = 0;

		netsetup_pool_pick(0x0a580000, 16, 0x123456789abcdefULL, NULL, NULL, &a);
		netsetup_pool_pick(0x0a580000, 16, 0xfedcba987654321ULL, NULL, NULL, &b);
		ok(a != b, "different seeds give different addresses");
	}
}

static void test_ports(void)
{
	struct netsetup_port p;
	char buf[32];

	ok(netsetup_port_parse("18080:8080", &p) == 0 && p.host == 18080 && p.job == 8080 &&
		   p.proto == IPPROTO_TCP,
	   "HOST:PORT is tcp");
	ok(netsetup_port_parse("5353:53/udp", &p) == 0 && p.proto == IPPROTO_UDP && p.job == 53,
	   "udp");
	ok(netsetup_port_parse("1:65535/tcp", &p) == 0 && p.host == 1 && p.job == 65535,
	   "range ends");
	ok(netsetup_port_format(&p, buf, sizeof(buf)) == 0 && !strcmp(buf, "1:65535/tcp"),
	   "formats");
	ok(netsetup_port_parse("8080", &p) < 0, "single port refused");
	ok(netsetup_port_parse("0:80", &p) < 0, "port 0 refused");
	ok(netsetup_port_parse("70000:80", &p) < 0, "port 70000 refused");
	ok(netsetup_port_parse("80:80/sctp", &p) < 0, "sctp refused");
	ok(netsetup_port_parse(":80", &p) < 0, "empty host port refused");
	ok(netsetup_port_parse("80:", &p) < 0, "empty job port refused");
	ok(netsetup_port_parse("-1:80", &p) < 0, "negative refused");
	ok(netsetup_port_parse("+8:80", &p) < 0, "sign refused");
	ok(netsetup_port_parse("80:80/", &p) < 0, "empty protocol refused");
	ok(netsetup_port_parse("1:2:3", &p) < 0, "three parts refused");
}

static void test_names(void)
{
	char v[NETSETUP_IFNAME_MAX + 1];

	ok(netsetup_group_valid("default") && netsetup_group_valid("vo.physics-1"), "group names");
	ok(!netsetup_group_valid("") && !netsetup_group_valid("-a") &&
		   !netsetup_group_valid("a b") && !netsetup_group_valid("a\"b"),
	   "bad group names refused");
	ok(netsetup_group_mark("a") != 0 && netsetup_group_mark("a") != netsetup_group_mark("b"),
	   "group marks differ and are not 0");
	ok(netsetup_veth_name("0123456789abcdef", v) == 0 && !strcmp(v, "xv0123456789ab") &&
		   strlen(v) <= NETSETUP_IFNAME_MAX,
	   "veth name from the job id");
}

static void test_config(void)
{
	struct netsetup_config c;

	netsetup_config_init(&c);
	ok(netsetup_config_set(&c, "net_pool", "172.20.0.0/16") == 0 && c.pool == 0xac140000,
	   "net_pool");
	ok(netsetup_config_set(&c, "net_pool", "172.20.0.1/16") == -EINVAL, "bad net_pool");
	ok(netsetup_config_set(&c, "net_bridge", "xosbr1") == 0 && !strcmp(c.bridge, "xosbr1"),
	   "net_bridge");
	ok(netsetup_config_set(&c, "net_bridge", "a-very-long-bridge") == -EINVAL,
	   "bridge name over 15 characters refused");
	ok(netsetup_config_set(&c, "net_bridge", "br/0") == -EINVAL, "slash refused");
	ok(netsetup_config_set(&c, "net_table", "xos_t1") == 0, "net_table");
	ok(netsetup_config_set(&c, "net_table", "x;flush ruleset") == -EINVAL,
	   "table name cannot inject nft commands");
	ok(netsetup_config_set(&c, "net_default", "bridge") == 0 &&
		   c.default_mode == NETSETUP_BRIDGE,
	   "net_default");
	ok(netsetup_config_set(&c, "net_outbound", "no") == 0 && !c.outbound, "net_outbound");
	ok(netsetup_config_set(&c, "net_dns", "10.1.1.1 10.1.1.2") == 0, "net_dns");
	ok(netsetup_config_set(&c, "net_dns", "resolver") == -EINVAL, "bad net_dns");
	ok(netsetup_config_set(&c, "layer_size", "1G") == -ENOKEY, "other keys are not ours");
	netsetup_config_free(&c);
	netsetup_config_init(&c);
	ok(netsetup_config_finish(&c) == 0 && !strcmp(c.bridge, "xosbr0") &&
		   !strcmp(c.table, "xos") && c.pool == 0x0a580000 && c.pool_prefix == 16,
	   "defaults: xosbr0, xos, 10.88.0.0/16");
	netsetup_config_free(&c);
}

static void test_record(void)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	struct job *j = job_new(), *k = NULL;
	char *text;

	random_job_id(j->id);
	j->state = JOB_RUNNING;
	j->net.mode = NETSETUP_BRIDGE;
	j->net.addr = 0x0a580203;
	snprintf(j->net.group, sizeof(j->net.group), "vo1");
	netsetup_port_parse("18080:8080", &j->net.ports[j->net.n_ports++]);
	netsetup_port_parse("5353:53/udp", &j->net.ports[j->net.n_ports++]);
	job_to_json(j, g);
	text = json_gen_take(g, false);
	ok(text && strstr(text, "\"address\":\"10.88.2.3\"") &&
		   strstr(text, "\"ports\":[\"18080:8080/tcp\",\"5353:53/udp\"]"),
	   "the record holds address and ports");
	ok(job_from_json(text, &k) == 0 && k->net.mode == NETSETUP_BRIDGE &&
		   k->net.addr == 0x0a580203 && !strcmp(k->net.group, "vo1") &&
		   k->net.n_ports == 2 && k->net.ports[1].proto == IPPROTO_UDP &&
		   k->net.port_fds[0] < 0 && !k->net.active,
	   "a restore gets the same address, group and ports back");
	job_free(k);
	free(text);
	ok(job_from_json("{\"id\":\"0123456789abcdef\",\"state\":\"RUNNING\"}", &k) == 0 &&
		   k->net.mode == NETSETUP_NONE,
	   "a record without net is mode none");
	job_free(k);
	ok(job_from_json("{\"id\":\"0123456789abcdef\",\"state\":\"RUNNING\","
			 "\"net\":{\"mode\":\"bridge\",\"address\":\"10.1\"}}",
			 &k) < 0,
	   "a bad address in the record is refused");
	job_free(j);
	yajl_gen_free(g);
}

static void test_default_routes(void)
{
	const char routes[] =
		"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
		"eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
		"eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"
		"eth01\t00000000\t00000000\t0001\t0\t0\t200\t00000000\t0\t0\t0\n"
		"eth0\t00000000\t0201A8C0\t0003\t0\t0\t300\t00000000\t0\t0\t0\n"
		"down0\t00000000\t00000000\t0000\t0\t0\t0\t00000000\t0\t0\t0\n";
	char buf[64];

	ok(netsetup_default_route_ifaces(routes, buf, sizeof(buf)) == 2 &&
		   !strcmp(buf, "eth0 eth01"),
	   "default routes: eth0 and eth01, once each, not the down one (%s)", buf);
	ok(netsetup_default_route_ifaces("Iface\tDestination\n", buf, sizeof(buf)) == 0 && !buf[0],
	   "no default route");
	ok(netsetup_default_route_ifaces(routes, buf, 6) == -ENAMETOOLONG, "too small a buffer");
}

int main(void)
{
	test_modes();
	test_addr();
	test_pick();
	test_ports();
	test_names();
	test_config();
	test_record();
	test_default_routes();
	return tap_done();
}
