#!/usr/bin/env bats
# xmigrate of --net bridge jobs (issue 11, items 2 and acceptance 1-2): the
# address moves with the job and stays reachable from every node (/32 routes
# handed to the peers over the node channel), published ports follow it, and
# an established TCP connection from a third node keeps counting across the
# move. Nodes are xosd daemons in network namespaces of their own on one test
# bridge (nodes.bash), each also in a mount namespace whose /sys shows its own
# network devices (NODE_OWN_SYSFS), so that LXC finds the node's job bridge.

load helpers
load nodes
bats_require_minimum_version 1.5.0

NODE_OWN_SYSFS=1
POOL=10.214.7.0/24

setup_file() {
	CERTS=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.certs.XXXXXX")
	export CERTS
	mk_ca "$CERTS/ca" "xos test site CA"
	mk_cert "$CERTS/ca" n1 "$CERTS/n1"
	mk_cert "$CERTS/ca" n2 "$CERTS/n2"
	mk_cert "$CERTS/ca" n3 "$CERTS/n3"
}

teardown_file() {
	rm -rf "$CERTS"
}

setup() {
	nodes_net_setup
}

teardown() {
	local rc=0
	nodes_net_teardown_checked || rc=1
	return "$rc"
}

# nodes_net_teardown_checked: the nodes torn down; then nothing of the jobs'
# networking may be left in any node's namespace (veths, bridge, nftables
# tables, routes of xosd's), and no mount below the nodes' directories
nodes_net_teardown_checked() {
	local i rc=0 left bases=("${NODE_BASES[@]}")
	for i in "${NODES[@]}"; do
		node_use "$i"
		# (each node's jobs first, xosd then stopped here so that its
		# network namespace can be looked at before it goes)
		nodes_net_teardown_jobs "$i"
		xosd_stop || rc=1
		printf -v "NODE_PID_$i" '%s' ""
		left=$(
			ip -n "${NS}n$i" -o link show | grep -E ': (xv[0-9a-f]+|xosbr0)[@:]' || true
			ip netns exec "${NS}n$i" nft list tables | grep -w xos || true
			ip -n "${NS}n$i" route show proto 0x58 || true
		)
		if [ -n "$left" ]; then
			echo "left in node n$i's network namespace:" >&2
			echo "$left" >&2
			rc=1
		fi
	done
	nodes_net_teardown || rc=1
	for i in "${bases[@]}"; do
		if grep -q " $i" /proc/self/mountinfo; then
			echo "mount left below $i" >&2
			rc=1
		fi
	done
	return "$rc"
}

nodes_net_teardown_jobs() {
	local live
	[ -n "${XOSD_PID:-}" ] && kill -0 "$XOSD_PID" 2>/dev/null || return 0
	live=$(xps -q 2>/dev/null || true)
	[ -n "$live" ] || return 0
	# shellcheck disable=SC2086
	xkill -s KILL $live >/dev/null 2>&1 || true
	# shellcheck disable=SC2086
	timeout 30 xwait $live >/dev/null 2>&1 || true
}

# on I CMD...: CMD against node I's daemon
on() {
	node_use "$1"
	shift
	"$@"
}

jobroot() { echo "$(node_tmp "$1")/state/volatile/jobs/$2/rootfs"; }
where() {
	local s
	s=$(on "$1" xps -a --json "$2" 2>/dev/null | jq -r '.[0].state' 2>/dev/null)
	echo "${s:-absent}"
}

# bridge_nodes N: nodes n1..nN up with one job pool, each seeing the others
bridge_nodes() {
	local i k
	for i in $(seq 1 "$1"); do
		node_start "$i" "n$i" "net_pool = $POOL"
	done
	for i in $(seq 1 "$1"); do
		for k in $(seq 1 "$1"); do
			[ "$i" = "$k" ] || xos_wait_for 30 peer_is "$i" "n$k" up
		done
	done
}

COUNTER='i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo $i >>/tmp/count; sleep 0.1; done'

@test "a --net bridge job moves with its address: n2's bridge answers for it, n1's no longer, and it goes on there" {
	bridge_nodes 2
	local id addr
	id=$(on 1 xrun -d --net bridge -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$id")/tmp/count" 3
	addr=$(on 1 job_field "$id" .net.address)
	[ -n "$addr" ]
	ip netns exec "${NS}n1" busybox ping -c 1 -W 5 "$addr" >/dev/null
	run on 1 xmigrate "$id" n2
	echo "$output"
	assert_success
	assert_equal "$(where 1 "$id")" MIGRATED
	assert_equal "$(where 2 "$id")" RUNNING
	assert_equal "$(on 2 job_field "$id" .net.address)" "$addr"
	ip netns exec "${NS}n2" busybox ping -c 1 -W 5 "$addr" >/dev/null
	# no veth of the job left on n1's bridge
	run ! ip -n "${NS}n1" link show "xv${id:0:12}"
	local n
	n=$(wc -l <"$(jobroot 2 "$id")/tmp/count")
	wait_lines "$(jobroot 2 "$id")/tmp/count" $((n + 3))
}
