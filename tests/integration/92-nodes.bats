#!/usr/bin/env bats
# The node channel (issue 11, item 1): xosd daemons, each in a network
# namespace of its own on one test bridge (itself in a namespace of the
# test's), talk mutual TLS 1.3 with certificates the openssl command makes
# here. Shown: peers up with capacity and CPU model, a peer going down, a cut
# link noticed by the heartbeat, refusals (another CA, expired, revoked, a
# name not in the peers list) with their reason in xnodes and the log, and
# garbage, oversized headers and idle connections on the port survived.

load helpers
load nodes
bats_require_minimum_version 1.5.0

setup_file() {
	CERTS=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.certs.XXXXXX")
	export CERTS
	mk_ca "$CERTS/ca" "xos test site CA"
	mk_ca "$CERTS/other" "another CA"
	mk_cert "$CERTS/ca" n1 "$CERTS/n1"
	mk_cert "$CERTS/ca" n2 "$CERTS/n2"
	mk_cert "$CERTS/other" n2 "$CERTS/n2-other-ca"
	mk_cert "$CERTS/ca" n2 "$CERTS/n2-expired" -startdate 20200101000000Z -enddate 20200201000000Z
	mk_cert "$CERTS/ca" n2 "$CERTS/n2-revoked"
	XOS_NODE=x openssl ca -config "$CERTS/ca/ca.cnf" -revoke "$CERTS/n2-revoked.pem" 2>/dev/null
	XOS_NODE=x openssl ca -config "$CERTS/ca/ca.cnf" -gencrl -out "$CERTS/crl.pem" 2>/dev/null
	mk_cert "$CERTS/ca" mallory "$CERTS/mallory"
}

teardown_file() {
	rm -rf "$CERTS"
}

# ---- the test network (nodes.bash): a hub namespace with a bridge, one namespace a node ----
setup() {
	EXTRA_TMP=
	nodes_net_setup
}

teardown() {
	local rc=0
	nodes_net_teardown || rc=1
	[ -z "${EXTRA_TMP:-}" ] || rm -rf "$EXTRA_TMP"
	return "$rc"
}

@test "two nodes see each other up, with free capacity and CPU model, kept fresh" {
	node_start 1 n1
	node_start 2 n2
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up

	local model cpus
	model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
	cpus=$(nproc)
	node_use 1
	run -0 xnodes --json
	assert_equal "$(jq -r '.node' <<<"$output")" n1
	assert_equal "$(jq -r '.peers[0].name' <<<"$output")" n2
	assert_equal "$(jq -r '.peers[0].address' <<<"$output")" "10.213.0.2:$PORT"
	assert_equal "$(jq -r '.peers[0].capacity.cpu_model' <<<"$output")" "$model"
	assert_equal "$(jq -r '.peers[0].capacity.cpus' <<<"$output")" "$cpus"
	assert_equal "$(jq -r '.peers[0].capacity.kernel' <<<"$output")" "$(uname -r)"
	[ "$(jq -r '.peers[0].capacity.mem_available' <<<"$output")" -gt 0 ]
	[ "$(jq -r '.peers[0].capacity.pids_free' <<<"$output")" -gt 0 ]
	[ "$(jq -r '.peers[0].capacity.job_slots' <<<"$output")" -gt 0 ]
	assert_equal "$(jq -r '.peers[0].capacity.jobs' <<<"$output")" 0

	# the table: name, address, state, CPU model
	run -0 xnodes
	assert_line --index 0 --regexp '^NAME +ADDRESS +STATE +LAST-SEEN +MEM-FREE +CPUS'
	assert_line --index 1 --regexp "^n2 +10\.213\.0\.2:$PORT +up +[0-9]+s ago .*$model"

	# heartbeats: last seen moves on
	local seen
	seen=$(peer_field 1 n2 last_seen_us)
	newer() { [ "$(peer_field 1 n2 last_seen_us)" -gt "$seen" ]; }
	xos_wait_for 20 newer
	grep -q "Node n2 (10.213.0.2:$PORT) is up" "$(node_tmp 1)/xosd.log"
}

@test "a peer whose xosd stops is shown down, and up again when it is back" {
	node_start 1 n1
	node_start 2 n2
	xos_wait_for 30 peer_is 1 n2 up
	node_use 2
	xosd_stop
	xos_wait_for 30 peer_is 1 n2 down
	run -0 peer_field 1 n2 reason
	assert_output --regexp 'closed|cannot connect|lost'
	grep -q "Node n2 is down" "$(node_tmp 1)/xosd.log"
	node_use 1
	run -0 xnodes
	assert_line --index 1 --regexp "^n2 +10\.213\.0\.2:$PORT +down "

	node_launch 2
	xos_wait_for 30 peer_is 1 n2 up
}

@test "a cut link is noticed by the missing heartbeats" {
	node_start 1 n1
	node_start 2 n2
	xos_wait_for 30 peer_is 1 n2 up
	ip -n "${NS}h" link set "${NS:0:11}e2" down
	xos_wait_for 30 peer_is 1 n2 down
	run -0 peer_field 1 n2 reason
	assert_output --regexp 'no message for 3 s|cannot connect'
	grep -q "Node n2 is down: no message for 3 s" "$(node_tmp 1)/xosd.log"
}

# refused CERT [n1's extra xosd.conf lines]: n2 runs with certificate CERT;
# n1 shows it refused; n2 shows that n1 refused it
refused() {
	node_start 1 n1 "${2:-}"
	node_start 2 "$1"
	xos_wait_for 30 peer_is 1 n2 refused
	xos_wait_for 30 peer_is 2 n1 refused
	run -0 peer_field 2 n1 reason
	assert_output --partial "it refused this node's certificate"
	node_use 1
	run -0 xnodes
	assert_line --index 1 --regexp "^n2 +10\.213\.0\.2:$PORT +refused +never "
}

@test "a node certificate from another CA is refused" {
	refused n2-other-ca
	run -0 peer_field 1 n2 reason
	assert_output --partial "unable to get local issuer certificate"
	grep -q "Refused node connection from 10.213.0.2:[0-9]* (certificate 'n2'): .*unable to get local issuer certificate" \
		"$(node_tmp 1)/xosd.log"
}

@test "an expired node certificate is refused" {
	refused n2-expired
	run -0 peer_field 1 n2 reason
	assert_output --partial "certificate has expired"
	grep -q "Refused node connection from 10.213.0.2:[0-9]* (certificate 'n2'): .*certificate has expired" \
		"$(node_tmp 1)/xosd.log"
}

@test "a revoked node certificate is refused (node_crl)" {
	refused n2-revoked "node_crl = $CERTS/crl.pem"
	run -0 peer_field 1 n2 reason
	assert_output --partial "certificate revoked"
	grep -q "Refused node connection from 10.213.0.2:[0-9]* (certificate 'n2'): .*certificate revoked" \
		"$(node_tmp 1)/xosd.log"
}

@test "a node certificate whose name is not in the peers list is refused" {
	refused mallory
	run -0 peer_field 1 n2 reason
	assert_output --partial "its certificate is for 'mallory', not for 'n2'"
	node_use 1
	run -0 xnodes --json
	assert_equal "$(jq -r '.refused[0].name' <<<"$output")" mallory
	assert_equal "$(jq -r '.refused[0].reason' <<<"$output")" \
		"certificate name 'mallory' is not in the peers list"
	run -0 xnodes
	assert_output --regexp "10\.213\.0\.2:[0-9]+ +mallory +certificate name 'mallory' is not in the peers list"
	grep -q "Refused node connection from 10.213.0.2:[0-9]* (certificate 'mallory'): certificate name 'mallory' is not in the peers list" \
		"$(node_tmp 1)/xosd.log"
}

# tls_send I BYTES-CMD [s_client options]: what BYTES-CMD prints, sent over TLS
# from node I's namespace to n1's port as node n2 (its valid certificate)
tls_send() {
	local i=$1 gen=$2
	shift 2
	$gen | timeout 20 nsenter "--net=/run/netns/${NS}n$i" openssl s_client -quiet -ign_eof \
		-connect "10.213.0.1:$PORT" -CAfile "$CERTS/ca/ca.pem" "$@" >/dev/null 2>&1 || true
}
gen_oversized() { printf '\x00\x10\x00\x01{"type":'; }
gen_zero() { printf '\x00\x00\x00\x00'; }
gen_not_json() { printf '\x00\x00\x00\x05hello'; }
gen_huge_len() { printf '\xff\xff\xff\xff'; }

@test "garbage, oversized headers and idle connections on the node port do not hurt xosd" {
	node_start 1 n1 "node_handshake_timeout = 2s"
	local log
	log=$(node_tmp 1)/xosd.log

	# not TLS at all: 64 KiB of random bytes
	head -c 65536 /dev/urandom |
		timeout 20 nsenter "--net=/run/netns/${NS}n2" bash -c "cat >/dev/tcp/10.213.0.1/$PORT" \
			2>/dev/null || true
	xos_wait_for 20 grep -q "Refused node connection from 10.213.0.2:[0-9]*: TLS handshake failed" "$log"
	# TLS without a client certificate
	tls_send 2 gen_zero
	xos_wait_for 20 grep -q "Refused node connection from 10.213.0.2:[0-9]*: TLS handshake failed: peer did not return a certificate" "$log"

	# a verified peer sending bad frames: each is cut off, said in the log
	tls_send 2 gen_oversized -cert "$CERTS/n2.pem" -key "$CERTS/n2.key"
	xos_wait_for 20 grep -q "(node n2): a message header or chunk larger than allowed" "$log"
	tls_send 2 gen_huge_len -cert "$CERTS/n2.pem" -key "$CERTS/n2.key"
	[ "$(grep -c "(node n2): a message header or chunk larger than allowed" "$log")" -ge 2 ]
	tls_send 2 gen_zero -cert "$CERTS/n2.pem" -key "$CERTS/n2.key"
	xos_wait_for 20 grep -q "(node n2): a malformed frame" "$log"
	tls_send 2 gen_not_json -cert "$CERTS/n2.pem" -key "$CERTS/n2.key"
	xos_wait_for 20 grep -q "(node n2): malformed message header" "$log"

	# an idle connection is closed after node_handshake_timeout
	run -0 timeout 30 nsenter "--net=/run/netns/${NS}n2" bash -c \
		"exec 3<>/dev/tcp/10.213.0.1/$PORT; if read -r -t 25 -u 3 x; then echo data; else echo rc=\$?; fi"
	assert_output "rc=1" # end of stream, not the read's timeout (rc > 128)
	grep -q "no TLS handshake and hello within 2 s" "$log"

	# xosd is still there, answers, and its channel still works
	node_use 1
	pid_gone "$XOSD_PID" && false
	node_use 1
	run -0 xnodes
	node_start 2 n2
	xos_wait_for 30 peer_is 1 n2 up
}

@test "connections from the network are bounded (node_max_connections)" {
	node_start 1 n1 "$(printf 'node_max_connections = 2\nnode_handshake_timeout = 60s')"
	# two idle connections hold both slots; a third (accepted after them: the
	# listen queue is FIFO) is closed at once (end of stream), not after the
	# handshake timeout (the read's own timeout gives rc > 128)
	run -0 timeout 30 nsenter "--net=/run/netns/${NS}n2" bash -c "
		exec 3<>/dev/tcp/10.213.0.1/$PORT 4<>/dev/tcp/10.213.0.1/$PORT
		exec 5<>/dev/tcp/10.213.0.1/$PORT
		if read -r -t 20 -u 5 x; then echo data; else echo rc=\$?; fi"
	assert_output "rc=1"
	node_use 1
	pid_gone "$XOSD_PID" && false
	run -0 xnodes
}

@test "one address holds at most 8 connections not yet verified" {
	node_start 1 n1 "node_handshake_timeout = 60s"
	# (node_max_connections is 64: the bound here is the one per address)
	run -0 timeout 30 nsenter "--net=/run/netns/${NS}n2" bash -c "
		for i in 1 2 3 4 5 6 7 8; do exec {fd}<>/dev/tcp/10.213.0.1/$PORT; done
		exec 3<>/dev/tcp/10.213.0.1/$PORT
		if read -r -t 20 -u 3 x; then echo data; else echo rc=\$?; fi"
	assert_output "rc=1"
	node_use 1
	pid_gone "$XOSD_PID" && false
	# a verified peer from that address is welcome once those are gone
	node_start 2 n2
	xos_wait_for 30 peer_is 1 n2 up
}

@test "xnodes on a node without a channel says how to set one up" {
	local rc=0
	xos_start || rc=$?
	NODES+=(0)
	NODE_TMP_0=$XOS_TMP
	NODE_PID_0=$XOSD_PID
	[ "$rc" = 0 ]
	run -1 xnodes
	assert_output --partial "This node has no node channel: set node_name"
	run -0 xnodes --json
	assert_equal "$(jq -r '.enabled' <<<"$output")" false
	run -2 xnodes extra
}

@test "xosd refuses to start with a node key others may read, naming the fix" {
	cp "$CERTS/n1.key" "$CERTS/n1-open.key"
	cp "$CERTS/n1.pem" "$CERTS/n1-open.pem"
	chmod 644 "$CERTS/n1-open.key"
	local tmp
	tmp=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.XXXXXX")
	EXTRA_TMP=$tmp # (removed at teardown)
	printf 'node_name = n1\nnode_key = %s\nnode_cert = %s\nnode_ca = %s\nnode_listen = 10.213.0.1:%s\n' \
		"$CERTS/n1-open.key" "$CERTS/n1-open.pem" "$CERTS/ca/ca.pem" "$PORT" >"$tmp/xosd.conf"
	run -1 timeout 30 nsenter "--net=/run/netns/${NS}n1" "$XOS_BUILD/xosd" --foreground --config "$tmp/xosd.conf" \
		--state-dir "$tmp/state" --run-dir "$tmp/run" --loader "$XOS_BUILD/xos-loader"
	assert_output --partial "must be a file of root's that only root may read"
	assert_output --partial "chmod 600"
	# (it stopped before anything that needs tidying: no container, no mount)
	run -0 awk -v d="$tmp" '$5 ~ "^"d {print $5}' /proc/self/mountinfo
	assert_output ""
}
