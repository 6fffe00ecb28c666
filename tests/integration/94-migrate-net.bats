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
NODE_COUNT=3 # (n3: a third node, for a client; not every test starts its xosd)
POOL=10.214.7.0/24

setup_file() { nodes_certs_setup n1 n2 n3; }

teardown_file() { nodes_certs_teardown; }

setup() {
	nodes_net_setup
}

teardown() {
	local rc=0
	nodes_net_teardown_checked || rc=1
	return "$rc"
}

# on I CMD...: CMD against node I's daemon

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

@test "a client on n3 keeps its TCP connection to a bridge job moved from n1 to n2: the count goes on without a gap" {
	bridge_nodes 3
	local id addr out n cpid
	id=$(on 1 xrun -d --net bridge -- python3 -c "$COUNT_SERVER")
	addr=$(on 1 job_field "$id" .net.address)
	[ -n "$addr" ]
	# n1 announced the job's address: n2 and n3 route it via n1
	xos_wait_for 30 route_via 3 "$addr" 10.213.0.1
	xos_wait_for 30 route_via 2 "$addr" 10.213.0.1
	out=$BATS_TEST_TMPDIR/client.out
	xos_wait_for 30 listening 1 "$id"
	timeout 300 ip netns exec "${NS}n3" python3 -c "$COUNT_CLIENT" "$addr" "$out" &
	cpid=$!
	wait_lines "$out" 5
	run on 1 xmigrate --json "$id" n2
	echo "$output"
	assert_success
	local figures=$output
	assert_equal "$(where 2 "$id")" RUNNING
	assert_equal "$(where 1 "$id")" MIGRATED
	# n2 announced it, n1 withdrew it: n3 and n1 route it via n2, n2 has
	# no route of xosd's to it (its own bridge has the job)
	xos_wait_for 30 route_via 3 "$addr" 10.213.0.2
	xos_wait_for 30 route_via 1 "$addr" 10.213.0.2
	[ -z "$(ip -n "${NS}n2" route show proto 88 "$addr/32")" ]
	# the same connection counts on, 20 more lines, none missing
	n=$(wc -l <"$out")
	wait_lines "$out" $((n + 20)) 60
	kill -0 "$cpid"
	tail -n 3 "$out"
	run ! grep -q '^end:' "$out"
	counts_consecutive "$out"
	# and it is the moved job that sends them
	n=$(tail -n 1 "$out")
	grep -qx "$n" "$(jobroot 2 "$id")/tmp/sent"
	# (figures for the log, not asserted: the longest the client waited
	# for a count, and xmigrate's)
	echo "# the client's longest wait between two counts: $(awk 'NR > 1 && $1 - p > m { m = $1 - p } { p = $1 } END { printf "%.2f s", m }' "$out.t"); xmigrate: $(jq -c . <<<"$figures")" >&3
	kill "$cpid" 2>/dev/null || true
	wait "$cpid" 2>/dev/null || true
}

# client_start I ADDR OUT: COUNT_CLIENT in node I's namespace (its pid: CPID)
client_start() {
	timeout 300 ip netns exec "${NS}n$1" python3 -c "$COUNT_CLIENT" "$2" "$3" &
	CPID=$!
}

@test "CRIU failing the restore on n2: the address stays with n1 (the routes back via n1) and the client's connection counts on there" {
	node_start 1 n1 "net_pool = $POOL"
	CRIU_FAULT=6 node_start 2 n2 "net_pool = $POOL"
	node_start 3 n3 "net_pool = $POOL"
	peers_up 3
	local id addr out n
	id=$(on 1 xrun -d --net bridge -- python3 -c "$COUNT_SERVER")
	addr=$(on 1 job_field "$id" .net.address)
	xos_wait_for 30 route_via 3 "$addr" 10.213.0.1
	xos_wait_for 30 listening 1 "$id"
	out=$BATS_TEST_TMPDIR/client.out
	client_start 3 "$addr" "$out"
	wait_lines "$out" 5
	run on 1 xmigrate "$id" n2
	echo "$output"
	assert_failure 1
	assert_output --partial "its restore failed"
	assert_equal "$(where 1 "$id")" RUNNING
	assert_equal "$(where 2 "$id")" absent
	# n2 announced the address for its restore and withdrew it: every
	# node routes it via n1 again
	xos_wait_for 30 route_via 3 "$addr" 10.213.0.1
	xos_wait_for 30 route_via 2 "$addr" 10.213.0.1
	n=$(wc -l <"$out")
	wait_lines "$out" $((n + 20)) 60
	kill -0 "$CPID"
	run ! grep -q '^end:' "$out"
	counts_consecutive "$out"
	kill "$CPID" 2>/dev/null || true
	wait "$CPID" 2>/dev/null || true
}

# a TCP server greeting each client with one line
GREETER='
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7000))
s.listen(8)
open("/tmp/listening", "w").close()
for i in range(1000):
    c, _ = s.accept()
    c.sendall(b"hello from the job\n")
    c.close()
'

@test "a bridge job's published port follows it: n2 forwards it after the move, n1 no longer" {
	bridge_nodes 3
	local id
	id=$(on 1 xrun -d --net bridge -p 18080:7000 -- python3 -c "$GREETER")
	xos_wait_for 30 listening 1 "$id"
	assert_equal "$(first_line 10.213.0.1 18080)" "hello from the job"
	run on 1 xmigrate "$id" n2
	echo "$output"
	assert_success
	assert_equal "$(where 2 "$id")" RUNNING
	assert_equal "$(first_line 10.213.0.2 18080)" "hello from the job"
	run first_line 10.213.0.1 18080
	assert_output --partial "ConnectionRefusedError"
	# (the ports followed before the routes too; the job's own address
	# and port from n3 is what the routes add)
	assert_equal "$(first_line "$(on 2 job_field "$id" .net.address)" 7000)" "hello from the job"
}

# first_line ADDR PORT: the first line a client on n3 reads from ADDR:PORT
first_line() {
	ip netns exec "${NS}n3" python3 -c '
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
    c.settimeout(5)
    print(c.makefile("rb").readline().decode().strip())
except Exception as e:
    print("error: %r" % e)
' "$1" "$2"
}

@test "routes follow the jobs: a job's end withdraws its address; a killed xosd's routes are flushed at its restart and learned again" {
	bridge_nodes 3
	local a b addr_a addr_b
	a=$(on 1 xrun -d --net bridge -- sh -c "$COUNTER")
	b=$(on 1 xrun -d --net bridge -- sh -c "$COUNTER")
	addr_a=$(on 1 job_field "$a" .net.address)
	addr_b=$(on 1 job_field "$b" .net.address)
	xos_wait_for 30 route_via 3 "$addr_a" 10.213.0.1
	xos_wait_for 30 route_via 3 "$addr_b" 10.213.0.1
	xos_wait_for 30 route_via 2 "$addr_b" 10.213.0.1
	# n3's xosd killed: its routes stay; b ends meanwhile (n2 drops its route)
	node_use 3
	kill -9 "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	on 1 xkill -s KILL "$b"
	on 1 xwait "$b" || true
	xos_wait_for 30 no_route 2 "$addr_b"
	route_via 3 "$addr_b" 10.213.0.1
	# at its start n3 flushes both, and learns a's again from n1
	node_launch 3
	grep -q "Removed 2 route(s) to other nodes' jobs that an earlier run left" "$(node_tmp 3)/xosd.log"
	xos_wait_for 30 route_via 3 "$addr_a" 10.213.0.1
	no_route 3 "$addr_b"
	# a's end withdraws it everywhere
	on 1 xkill -s KILL "$a"
	on 1 xwait "$a" || true
	xos_wait_for 30 no_route 3 "$addr_a"
	xos_wait_for 30 no_route 2 "$addr_a"
}

# no_route I ADDR: node I has no route of xosd's to ADDR
no_route() { [ -z "$(ip -n "${NS}n$1" route show proto 88 "$2/32")" ]; }
