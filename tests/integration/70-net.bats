#!/usr/bin/env bats
# Container networking (issue 5): bridge mode, leases, published ports,
# outbound NAT, isolation groups, reconciliation, bad input. Real bridges,
# veths and nftables; every daemon has a bridge, tables and pool of its own,
# and traffic goes only to namespaces these tests make.

load helpers
bats_require_minimum_version 1.5.0

# A TCP server for jobs: answers each connection with who it is and who called.
SRV='import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind(("0.0.0.0",int(sys.argv[1]))); s.listen(64)
while True:
    c,a=s.accept(); c.sendall(("hello from %s to %s\n"%(socket.gethostname(),a[0])).encode()); c.close()'

# A probe for jobs: "tcp ok|fail icmp ok|fail" for HOST PORT (ICMP echo
# through an unprivileged ICMP socket, as ping does).
PROBE='import socket,struct,sys
h,p,r=sys.argv[1],int(sys.argv[2]),[]
try:
    s=socket.create_connection((h,p),timeout=1.5); r.append("tcp ok" if s.recv(100) else "tcp fail")
except Exception: r.append("tcp fail")
try:
    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM,socket.IPPROTO_ICMP); s.settimeout(1.5)
    s.sendto(struct.pack("!BBHHH",8,0,0,0,1)+b"xos",(h,0)); s.recvfrom(100); r.append("icmp ok")
except Exception: r.append("icmp fail")
print(" ".join(r))'

# A counting TCP server: the Nth connection gets "N" (its memory survives a restore).
COUNTER='import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind(("0.0.0.0",int(sys.argv[1]))); s.listen(64); n=0
while True:
    c,a=s.accept(); n+=1; c.sendall(b"%d\n"%n); c.close()'

# A client: prints what the server at HOST PORT says.
CLIENT='import socket,sys
s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=3); print(s.recv(200).decode().strip())'

setup() { xos_net_start; }

teardown() {
	if [ -n "${OUT_PID:-}" ]; then
		kill "$OUT_PID" 2>/dev/null || true
		wait "$OUT_PID" 2>/dev/null || true
	fi
	if [ -n "${OUT_NS:-}" ]; then
		ip netns del "$OUT_NS" 2>/dev/null || true
		ip link del "$OUT_VETH" 2>/dev/null || true
	fi
	if [ -n "${HOST_PID:-}" ]; then
		kill "$HOST_PID" 2>/dev/null || true
		wait "$HOST_PID" 2>/dev/null || true
	fi
	OUT_PID='' OUT_NS='' HOST_PID=''
	xos_teardown
}

net_addr() { job_field "$1" .net.address; }

net_released() {
	[ "$(lease_count)" -eq 0 ] && ! ip link show "$XOS_NET_BRIDGE" >/dev/null 2>&1 &&
		! nft list tables | grep -qE " $XOS_NET_TABLE\$"
}

# Read one line from HOST PORT on the node (as a client of the node).
node_get() {
	timeout 5 /usr/bin/python3 -c "$CLIENT" "$1" "$2" 2>/dev/null
}

# What a job's server says at HOST PORT on the node, once it answers (refused
# connections are retried; they reach no server).
serving_get() {
	local end=$((SECONDS + 30))
	while [ "$SECONDS" -lt "$end" ]; do
		node_get "$1" "$2" && return 0
		sleep 0.1
	done
	echo "nothing answers on $1:$2 within 30 s" >&2
	return 1
}

# Wait until a job's server answers on the node at HOST PORT.
wait_serving() { serving_get "$@" >/dev/null; }

# node_listens PORT: a program on the node listens on TCP PORT
node_listens() { [ -n "$(ss -Hltn "sport = :$1")" ]; }

# probe_says JOB HOST PORT WANT: the probe run in JOB says WANT
probe_says() { [ "$(xrun --job "$1" -- python3 -c "$PROBE" "$2" "$3")" = "$4" ]; }

lease_count() { find "$XOS_TMP/state/net/leases" -type f | wc -l; }

# elements of a set or map of the daemon's inet table
set_count() {
	nft -j list ruleset inet | jq --arg t "$XOS_NET_TABLE" --arg s "$1" \
		'[.nftables[] | (.set // .map) | select(. != null and .table == $t and .name == $s) | .elem // [] | length] | add // 0'
}
member_count() { set_count member; }

# The daemon's bridge-mode jobs are all gone: wait (a job is final once its
# loader reported; its container, and so its network, go a moment later)
# until no lease, table or bridge of the daemon is left.
wait_released() {
	wait_for 60 net_released 2>/dev/null && return 0
	echo "network not released: $(lease_count) leases; $(nft list tables | grep -E " $XOS_NET_TABLE\$")" >&2
	return 1
}

@test "net 1: --net bridge gives eth0 with a pool address, a gateway and resolv.conf; --net none only lo" {
	run xrun --net bridge -- sh -c 'ls /sys/class/net | tr "\n" " "; echo; cat /proc/net/route | awk "NR>1 && \$2==\"00000000\" {print \$1}"; grep "^nameserver" /etc/resolv.conf'
	assert_success
	assert_equal "${lines[0]}" "eth0 lo "
	assert_equal "${lines[1]}" "eth0"
	# the node's resolvers, but for those on its loopback (out of a job's reach)
	assert_equal "$(printf '%s\n' "${lines[@]:2}")" \
		"$(grep '^nameserver' /etc/resolv.conf | grep -Ev '^nameserver[[:space:]]+127\.')"
	# the address is the pool's, the gateway answers
	id=$(xrun -d --net bridge -- sleep 60)
	wait_state "$id" RUNNING
	addr=$(net_addr "$id")
	[[ "$addr" == "$XOS_NET_PREFIX".* ]]
	run xrun --job "$id" -- sh -c "grep -c ' $addr\$' /proc/net/fib_trie; python3 -c '$PROBE' $XOS_NET_GATEWAY 1"
	assert_success
	[ "${lines[0]}" -ge 1 ]
	assert_equal "${lines[1]}" "tcp fail icmp ok"
	run xps
	assert_output --partial "$addr"
	xkill -s KILL "$id"
	xwait "$id" || true
	# none (the default): loopback only, and up (IFF_UP in its flags)
	run xrun -- sh -c 'ls /sys/class/net; echo $(( $(cat /sys/class/net/lo/flags) & 1 ))'
	assert_success
	assert_equal "${lines[0]}" "lo"
	assert_equal "${lines[1]}" 1
	run xrun --net none -- ls /sys/class/net
	assert_output "lo"
	assert_equal "$(job_field "$(xps -aq | head -1)" .net.mode)" "none"
	# the first bridge job made xosd look at the uplinks: it warns, once, of
	# each default-route interface that does not forward (replies to outbound
	# traffic would be dropped), and of none that does
	local dev off=
	while read -r dev; do
		[ "$(cat "/proc/sys/net/ipv4/conf/$dev/forwarding")" = 0 ] && off="$off $dev"
	done < <(awk 'NR > 1 && $2 == "00000000" && $8 == "00000000" && substr($4, length($4)) ~ /[13579bdfBDF]/ {print $1}' /proc/net/route | sort -u)
	if [ -n "$off" ]; then
		assert_equal "$(grep -c "IPv4 forwarding is off on" "$XOS_TMP/xosd.log")" 1
		for dev in $off; do grep -q "forwarding is off on.*\b$dev\b" "$XOS_TMP/xosd.log"; done
	else
		run ! grep -q "IPv4 forwarding is off" "$XOS_TMP/xosd.log"
	fi
}

@test "net 2: a published port answers clients on the node; it closes and no rule remains when the job ends" {
	id=$(xrun -d --net bridge -p 18080:8080 -- python3 -c "$SRV" 8080)
	wait_state "$id" RUNNING
	addr=$(net_addr "$id")
	wait_serving 127.0.0.1 18080
	run node_get 127.0.0.1 18080
	assert_success
	assert_output --partial "hello from ${id:0:12}"
	# the node's own addresses: the bridge gateway and its other interfaces
	run node_get "$XOS_NET_GATEWAY" 18080
	assert_output --partial "hello from ${id:0:12}"
	node=$(ip -4 -o addr show scope global | awk '$2 !~ /^xos/ {sub("/.*", "", $4); print $4; exit}')
	if [ -n "$node" ]; then
		run node_get "$node" 18080
		assert_output --partial "hello from ${id:0:12}"
	fi
	run xps --json "$id"
	assert_equal "$(echo "$output" | jq -r '.[0].net.ports[0]')" "18080:8080/tcp"
	# UDP, and -p alone asks for the bridge
	u=$(xrun -d -p 18086:5353/udp -- python3 -c 'import socket
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("0.0.0.0",5353))
while True:
    d,a=s.recvfrom(100); s.sendto(b"udp "+d,a)')
	wait_state "$u" RUNNING
	assert_equal "$(job_field "$u" .net.mode)" "bridge"
	run /usr/bin/python3 -c 'import socket,sys
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(0.3)
for _ in range(30):
    s.sendto(b"ping",("127.0.0.1",18086))
    try: print(s.recv(100).decode()); sys.exit(0)
    except socket.timeout: pass
sys.exit(1)'
	assert_success
	assert_output "udp ping"
	xkill -s KILL "$u"
	run xps
	assert_output --partial "18080:8080/tcp"
	nft list table inet "$XOS_NET_TABLE" | grep -q "18080 : $addr . 8080"
	# a port taken by a job or a program is a clear error
	run xrun --net bridge -p 18080:80 -- true
	assert_failure 125
	assert_output --partial "Port 18080/tcp of the node is taken"
	/usr/bin/python3 -c 'import socket,time; s=socket.socket(); s.bind(("0.0.0.0",18081)); s.listen(); time.sleep(60)' &
	HOST_PID=$!
	wait_for 30 node_listens 18081
	run xrun --net bridge -p 18081:80 -- true
	assert_failure 125
	assert_output --partial "Port 18081/tcp of the node is taken"
	# the job ends: port closed, no rule of xos left
	xkill -s KILL "$id"
	xwait "$id" || true
	run node_get 127.0.0.1 18080
	assert_failure
	xwait "$u" || true
	wait_released
	run bash -c "nft list ruleset | grep -E '18080|18086|$XOS_NET_TABLE'"
	assert_output ""
	[ "$(lease_count)" -eq 0 ]
}

@test "net 3: outbound traffic reaches the outside through NAT (the outside sees the node's address)" {
	local sfx=${XOS_TMP##*.} n=$((RANDOM % 250 + 1))
	OUT_NS="xos-out-$sfx" OUT_VETH="xo$sfx"
	ip netns add "$OUT_NS"
	ip link add "$OUT_VETH" type veth peer name "xi$sfx" netns "$OUT_NS"
	ip addr add "172.31.$n.1/24" dev "$OUT_VETH"
	ip link set "$OUT_VETH" up
	# replies come back on this link and are routed on to the job
	echo 1 >"/proc/sys/net/ipv4/conf/$OUT_VETH/forwarding"
	ip -n "$OUT_NS" addr add "172.31.$n.2/24" dev "xi$sfx"
	ip -n "$OUT_NS" link set "xi$sfx" up
	ip -n "$OUT_NS" link set lo up
	ip netns exec "$OUT_NS" /usr/bin/python3 -c "$SRV" 8000 &
	OUT_PID=$!
	wait_for 30 ip netns exec "$OUT_NS" timeout 5 /usr/bin/python3 -c "$CLIENT" 127.0.0.1 8000
	run xrun --net bridge -- python3 -c "$CLIENT" "172.31.$n.2" 8000
	assert_success
	assert_output --regexp "^hello from .* to 172\\.31\\.$n\\.1\$"
	refute_output --partial "$XOS_NET_PREFIX."
	# without outbound, jobs reach nothing beyond the node
	xosd_stop
	printf 'net_outbound = false\n' >>"$XOS_TMP/xosd.conf"
	xosd_launch --config "$XOS_TMP/xosd.conf"
	run xrun --net bridge -- python3 -c "$PROBE" "172.31.$n.2" 8000
	assert_output "tcp fail icmp fail"
}

@test "net 4: jobs of one group reach each other; other groups not a packet, both ways; the node only on published ports" {
	a1=$(xrun -d --net bridge --group a -- python3 -c "$SRV" 8080)
	a2=$(xrun -d --net bridge --group a -- python3 -c "$SRV" 8080)
	b1=$(xrun -d --net bridge --group b -- python3 -c "$SRV" 8080)
	for j in "$a1" "$a2" "$b1"; do wait_state "$j" RUNNING; done
	A1=$(net_addr "$a1") A2=$(net_addr "$a2") B1=$(net_addr "$b1")
	assert_equal "$(job_field "$b1" .net.group)" "b"
	wait_for 60 probe_says "$a1" "$A2" 8080 "tcp ok icmp ok" # the servers are up
	wait_for 60 probe_says "$a2" "$A1" 8080 "tcp ok icmp ok"
	wait_for 60 probe_says "$b1" "$B1" 8080 "tcp ok icmp ok"
	run xrun --job "$a1" -- python3 -c "$PROBE" "$A2" 8080
	assert_output "tcp ok icmp ok"
	run xrun --job "$a2" -- python3 -c "$PROBE" "$A1" 8080
	assert_output "tcp ok icmp ok"
	run xrun --job "$a1" -- python3 -c "$PROBE" "$B1" 8080
	assert_output "tcp fail icmp fail"
	run xrun --job "$b1" -- python3 -c "$PROBE" "$A1" 8080
	assert_output "tcp fail icmp fail"
	run xrun --job "$b1" -- python3 -c "$PROBE" "$A2" 8080
	assert_output "tcp fail icmp fail"
	# the b server saw nothing of a (its answers are only sent on connect)
	# the node: a program listening on it is out of the jobs' reach
	/usr/bin/python3 -c "$SRV" 18093 &
	HOST_PID=$!
	wait_for 30 node_get 127.0.0.1 18093
	run xrun --job "$a1" -- python3 -c "$PROBE" "$XOS_NET_GATEWAY" 18093
	assert_output "tcp fail icmp ok"
}

@test "net 5: 200 concurrent bridge jobs get 200 distinct addresses; a restarted xosd re-adopts the leases; killing frees them" {
	seq 1 200 | xargs -P 16 -I{} xrun -d --net bridge -- sleep 1000 >"$XOS_TMP/ids"
	[ "$(sort -u "$XOS_TMP/ids" | wc -l)" -eq 200 ]
	xps --json >"$XOS_TMP/before.json"
	[ "$(jq '[.[] | select(.state == "RUNNING")] | length' "$XOS_TMP/before.json")" -eq 200 ]
	jq -r '.[].net.address' "$XOS_TMP/before.json" | sort >"$XOS_TMP/addrs"
	[ "$(sort -u "$XOS_TMP/addrs" | wc -l)" -eq 200 ]
	run grep -cv "^$XOS_NET_PREFIX\\." "$XOS_TMP/addrs"
	assert_output "0"
	[ "$(lease_count)" -eq 200 ]
	[ "$(member_count)" -eq 200 ]
	# restart: the same jobs, addresses, leases and rules
	xosd_stop
	xosd_launch --config "$XOS_TMP/xosd.conf"
	xps --json | jq -r '.[].net.address' | sort >"$XOS_TMP/addrs2"
	run diff "$XOS_TMP/addrs" "$XOS_TMP/addrs2"
	assert_success
	[ "$(lease_count)" -eq 200 ]
	[ "$(member_count)" -eq 200 ]
	# kill them all: leases, rules and the bridge go
	# shellcheck disable=SC2046
	xkill -s KILL $(cat "$XOS_TMP/ids")
	# shellcheck disable=SC2046
	timeout 120 xwait $(cat "$XOS_TMP/ids") || true
	wait_released
	run bash -c "nft list tables | grep -w '$XOS_NET_TABLE'"
	assert_output ""
	run ip link show "$XOS_NET_BRIDGE"
	assert_failure
}

@test "net 6: jobs killed while xosd is down lose their leases and veths at restart; the others keep theirs and work" {
	local keep=() gone=() pids=() port j
	for port in 18082 18088 18089; do
		keep+=("$(xrun -d --net bridge -p "$port:8080" -- python3 -c "$SRV" 8080)")
		gone+=("$(xrun -d --net bridge -- sleep 1000)")
	done
	for j in "${keep[@]}" "${gone[@]}"; do wait_state "$j" RUNNING; done
	for j in "${gone[@]}"; do pids+=("$(job_init_pid "$j")"); done
	declare -A ad
	for j in "${keep[@]}" "${gone[@]}"; do ad[$j]=$(net_addr "$j"); done
	xosd_stop
	kill -KILL "${pids[@]}"
	for j in "${pids[@]}"; do wait_for 30 pid_gone "$j"; done
	xosd_launch --config "$XOS_TMP/xosd.conf"
	for j in "${gone[@]}"; do
		wait_state "$j" FAILED
		[ ! -e "$XOS_TMP/state/net/leases/${ad[$j]}" ]
		run ip link show "xv${j:0:12}"
		assert_failure
		run bash -c "nft list table inet '$XOS_NET_TABLE' | grep -c '${ad[$j]} '"
		assert_output "0"
	done
	# the survivors: same address, lease, a veth on the bridge, published port, gateway
	for j in "${keep[@]}"; do
		[ -e "$XOS_TMP/state/net/leases/${ad[$j]}" ]
		assert_equal "$(net_addr "$j")" "${ad[$j]}"
		ip -o link show "xv${j:0:12}" | grep -q "master $XOS_NET_BRIDGE"
		run xrun --job "$j" -- python3 -c "$PROBE" "$XOS_NET_GATEWAY" 1
		assert_output "tcp fail icmp ok"
	done
	for port in 18082 18088 18089; do wait_serving 127.0.0.1 "$port"; done
	[ "$(lease_count)" -eq 3 ]
}

@test "net 6d: after a kill -9 of xosd whose bridge jobs all died, the restart removes its bridge and tables, and only its own" {
	id=$(xrun -d --net bridge -p 18087:8080 -- sleep 1000)
	wait_state "$id" RUNNING
	pid=$(job_init_pid "$id")
	kill -9 "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	XOSD_PID=''
	kill -KILL "$pid"
	wait_for 30 pid_gone "$pid"
	ip link show "$XOS_NET_BRIDGE" >/dev/null # still there: nobody took it down
	xosd_launch --config "$XOS_TMP/xosd.conf"
	wait_state "$id" FAILED
	wait_released
	# a table and a bridge of the same names that this daemon did not make stay
	nft add table inet "$XOS_NET_TABLE"
	ip link add "$XOS_NET_BRIDGE" type bridge
	xosd_stop
	xosd_launch --config "$XOS_TMP/xosd.conf"
	xosd_stop
	run bash -c "nft list tables | grep -c ' $XOS_NET_TABLE\$'"
	assert_output "1"
	ip link show "$XOS_NET_BRIDGE" >/dev/null
	nft delete table inet "$XOS_NET_TABLE"
	ip link del "$XOS_NET_BRIDGE"
}

@test "net 6b: the address and ports are part of the job record (a restore reuses them)" {
	id=$(xrun -d --net bridge --ip "$XOS_NET_PREFIX.77" -p 18083:8080 --group g1 -- sleep 60)
	wait_state "$id" RUNNING
	run jq -c '.net' "$XOS_TMP/state/jobs/$(job_field "$id" .id)/job.json"
	assert_output "{\"mode\":\"bridge\",\"address\":\"$XOS_NET_PREFIX.77\",\"group\":\"g1\",\"ports\":[\"18083:8080/tcp\"]}"
	grep -q "lxc.net.0.ipv4.address = $XOS_NET_PREFIX.77/24" \
		"$XOS_TMP/state/volatile/lxc/xos-$(job_field "$id" .id)/config"
}

@test "net 6c: a bridge job checkpointed and restarted keeps its address, published port, group and memory; a reconnecting client is answered" {
	id=$(xrun -d --net bridge --group g1 -p 18084:8080 -- python3 -c "$COUNTER" 8080)
	wait_state "$id" RUNNING
	addr=$(net_addr "$id")
	assert_equal "$(serving_get 127.0.0.1 18084)" 1
	assert_equal "$(node_get "$addr" 8080)" 2
	xcheckpoint --stop "$id"
	assert_equal "$(job_field "$id" .state)" CHECKPOINTED
	# stopped, the job keeps its address and its port, and nothing answers
	[ -e "$XOS_TMP/state/net/leases/$addr" ]
	run xrun --net bridge --ip "$addr" -- true
	assert_failure 125
	run xrun --net bridge -p 18084:80 -- true
	assert_failure 125
	run -1 node_get 127.0.0.1 18084
	run ip link show "xv${id:0:12}"
	assert_failure
	xrestart "$id"
	wait_state "$id" RUNNING
	assert_equal "$(net_addr "$id")" "$addr"
	# the same process (its count goes on), at the same address and port
	assert_equal "$(serving_get 127.0.0.1 18084)" 3
	assert_equal "$(node_get "$addr" 8080)" 4
	# its veth is back on the bridge, in its group
	ip link show "xv${id:0:12}" | grep -q "master $XOS_NET_BRIDGE"
	run xrun --net bridge --group g1 -- python3 -c "$PROBE" "$addr" 8080
	assert_output "tcp ok icmp ok"
	run xrun --net bridge --group g2 -- python3 -c "$PROBE" "$addr" 8080
	assert_output "tcp fail icmp fail"
	assert_equal "$(node_get 127.0.0.1 18084)" 6
	# and again: a second round trip from the restored job
	xcheckpoint "$id"
	assert_equal "$(job_field "$id" .state)" RUNNING
	assert_equal "$(node_get 127.0.0.1 18084)" 7
	xkill -s KILL "$id"
	xwait "$id" || true
	xrestart "$id" 2
	wait_state "$id" RUNNING
	assert_equal "$(serving_get 127.0.0.1 18084)" 7
	assert_equal "$(net_addr "$id")" "$addr"
}

@test "net 6e: checkpoint_bridge = false, or auto with a CRIU that lacks xos's veth fix, refuses bridge checkpoints up front" {
	xosd_stop
	# a criu first on xosd's PATH that is not built by scripts/build-criu.sh
	mkdir "$XOS_TMP/fakebin"
	printf '#!/bin/sh\nprintf "Version: 4.2.1\\nGitID: v4.2.1\\n"\n' >"$XOS_TMP/fakebin/criu"
	chmod 0755 "$XOS_TMP/fakebin/criu"
	PATH="$XOS_TMP/fakebin:$PATH" xosd_launch --config "$XOS_TMP/xosd.conf"
	id=$(xrun -d --net bridge -- sleep 60)
	wait_state "$id" RUNNING
	run xcheckpoint "$id"
	assert_failure
	assert_output --partial "uses --net bridge and cannot be checkpointed on this node: the CRIU on xosd's PATH cannot recreate a job's veth"
	assert_equal "$(job_field "$id" .state)" RUNNING
	run xrun -d --net bridge --restart on-failure -- true
	assert_failure
	assert_output --partial "cannot be checkpointed on this node"
	grep -q "CRIU $XOS_TMP/fakebin/criu cannot restore a --net bridge job's veth" "$XOS_TMP/xosd.log"
	# none-mode jobs are not affected
	run xrun -d --restart on-failure -- true
	assert_success
	xosd_stop
	echo "checkpoint_bridge = false" >>"$XOS_TMP/xosd.conf"
	xosd_launch --config "$XOS_TMP/xosd.conf"
	run xcheckpoint "$id"
	assert_failure
	assert_output --partial "the node owner has turned it off (checkpoint_bridge = false"
	run xrun -d --net bridge --checkpoint-every 1m -- true
	assert_failure
	assert_output --partial "checkpoint_bridge = false"
	assert_equal "$(job_field "$id" .state)" RUNNING
	# a bad value is refused with the key named
	echo "checkpoint_bridge = maybe" >"$XOS_TMP/bad.conf"
	run "$XOS_BUILD/xosd" --foreground --config "$XOS_TMP/bad.conf" --state-dir "$XOS_TMP/state2" \
		--run-dir "$XOS_TMP/run2"
	assert_failure
	assert_output --partial "checkpoint_bridge"
}

@test "net 6f: a --net bridge --restart on-failure job whose container dies while xosd is down comes back with its address and port" {
	id=$(xrun -d --net bridge -p 18090:8080 --restart on-failure -- python3 -c "$COUNTER" 8080)
	wait_state "$id" RUNNING
	addr=$(net_addr "$id")
	assert_equal "$(serving_get 127.0.0.1 18090)" 1
	xcheckpoint "$id" >/dev/null
	assert_equal "$(node_get 127.0.0.1 18090)" 2
	xos_node_fails "$id"
	xosd_launch --config "$XOS_TMP/xosd.conf"
	wait_state "$id" RUNNING
	assert_equal "$(job_field "$id" .checkpoint.restores)" 1
	assert_equal "$(net_addr "$id")" "$addr"
	# restored from the checkpoint: the count goes on from there
	assert_equal "$(serving_get 127.0.0.1 18090)" 2
	assert_equal "$(node_get "$addr" 8080)" 3
	[ -e "$XOS_TMP/state/net/leases/$addr" ]
}

@test "net 7: bad input is a clear error and leaves nothing half-configured" {
	run xrun --net bridge --ip 192.168.77.5 -- true
	assert_failure 125
	assert_output --partial "is not a job address of the pool $XOS_NET_POOL"
	run xrun --net bridge --ip "$XOS_NET_GATEWAY" -- true
	assert_failure 125
	assert_output --partial "not a job address"
	run xrun --net bridge --ip 10.1.2 -- true
	assert_failure 125
	assert_output --partial "Invalid address"
	for spec in 8080 0:80 70000:80 80:80/sctp :80 18085:; do
		run xrun --net bridge -p "$spec" -- true
		assert_failure 125
		assert_output --partial "Invalid port '$spec'"
	done
	run xrun --net none -p 18085:80 -- true
	assert_failure 125
	assert_output --partial "need --net bridge"
	run xrun --net bogus -- true
	assert_failure 125
	assert_output --partial "Unknown network mode"
	run xrun --net bridge --group 'a b' -- true
	assert_failure 125
	assert_output --partial "Invalid group"
	# nothing was made for any of them
	assert_equal "$(xps -aq | wc -l)" 0
	[ "$(lease_count)" -eq 0 ]
	run ip link show "$XOS_NET_BRIDGE"
	assert_failure
	# a taken address: refused, and the holder keeps it
	id=$(xrun -d --net bridge --ip "$XOS_NET_PREFIX.9" -- sleep 60)
	wait_state "$id" RUNNING
	run xrun --net bridge --ip "$XOS_NET_PREFIX.9" -- true
	assert_failure 125
	assert_output --partial "Address $XOS_NET_PREFIX.9 is taken"
	[ "$(lease_count)" -eq 1 ]
	assert_equal "$(xps -aq | wc -l)" 1
	# a port below 1024 asked by a user who is not root
	xos_test_user
	run runuser -u xostest -- env XOS_SOCKET="$XOS_SOCKET" "$XOS_BUILD/xrun" --net bridge -p 80:8080 -- true
	assert_failure 125
	assert_output --partial "Only root may publish port 80"
	[ "$(lease_count)" -eq 1 ]
	[ "$(member_count)" -eq 1 ]
	[ "$(set_count tcp_ports)" -eq 0 ]
	# (ip's complaints about other namespaces' veths, on a machine where
	# other tests make and remove namespaces meanwhile, are not the count)
	run bash -c "ip -o link 2>/dev/null | grep -c 'master $XOS_NET_BRIDGE'"
	assert_output "1"
	# root may publish a port below 1024
	run xrun --net bridge -p 1023:8080 -- true
	assert_success
}
