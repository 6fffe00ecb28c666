# Nodes for integration tests of the node channel and migration (92-nodes,
# 93-migrate): certificates made with the openssl command, and xosd daemons
# each in a network namespace of its own on one test bridge (itself in a
# namespace of the test's). A test file sets NODE_COUNT (default 2) and
# calls nodes_net_setup / nodes_net_teardown from its setup and teardown.
# With NODE_OWN_SYSFS=1 each daemon also has a mount namespace with the
# sysfs of its network namespace (LXC finds its bridge there), and its
# directory is below a shared mount point of its own.
# shellcheck shell=bash

PORT=7390

# mk_ca DIR CN: a CA with an `openssl ca` database (for revocations and CRLs)
mk_ca() {
	local d=$1
	mkdir -p "$d/newcerts"
	: >"$d/index.txt"
	echo 1000 >"$d/serial"
	echo 1000 >"$d/crlnumber"
	cat >"$d/ca.cnf" <<EOC
[ ca ]
default_ca = site
[ site ]
dir = $d
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
serial = \$dir/serial
crlnumber = \$dir/crlnumber
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
default_md = sha256
default_days = 30
default_crl_days = 30
policy = any
unique_subject = no
[ any ]
commonName = supplied
[ req ]
distinguished_name = dn
[ dn ]
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
[ node ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:\${ENV::XOS_NODE}
EOC
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ca.key" 2>/dev/null
	XOS_NODE=ca openssl req -config "$d/ca.cnf" -x509 -new -key "$d/ca.key" -subj "/CN=$2" \
		-days 30 -extensions v3_ca -out "$d/ca.pem"
}

# mk_cert CADIR NAME OUT [openssl ca options]: OUT.key (0600) and OUT.pem
mk_cert() {
	local d=$1 name=$2 out=$3
	shift 3
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out.key" 2>/dev/null
	chmod 600 "$out.key"
	XOS_NODE=$name openssl req -config "$d/ca.cnf" -new -key "$out.key" -subj "/CN=$name" \
		-out "$out.csr"
	XOS_NODE=$name openssl ca -batch -config "$d/ca.cnf" -extensions node -notext \
		-in "$out.csr" -out "$out.pem" "$@" 2>/dev/null
}

# nodes_net_setup: the hub namespace with its bridge, namespaces n1..nNODE_COUNT
nodes_net_setup() {
	NS=xm$$r$RANDOM
	NODES=()
	NODE_BASES=()
	local i
	ip netns add "${NS}h"
	ip -n "${NS}h" link add br0 type bridge
	ip -n "${NS}h" link set br0 up
	for i in $(seq 1 "${NODE_COUNT:-2}"); do
		ip netns add "${NS}n$i"
		ip link add "${NS:0:11}e$i" type veth peer name eth0 netns "${NS}n$i"
		ip link set "${NS:0:11}e$i" netns "${NS}h"
		ip -n "${NS}h" link set "${NS:0:11}e$i" master br0 up
		ip -n "${NS}n$i" addr add "10.213.0.$i/24" dev eth0
		ip -n "${NS}n$i" link set eth0 up
		ip -n "${NS}n$i" link set lo up
	done
}

# nodes_net_teardown: every node's jobs, then its daemon (xos_teardown), then the namespaces
nodes_net_teardown() {
	local i rc=0 live
	# first every node's jobs end: the nodes share the host's cgroups, and
	# a moved job's id is in both nodes' state (one's leak check must not
	# see the other's live job)
	for i in "${NODES[@]}"; do
		node_use "$i"
		if [ -z "${XOSD_PID:-}" ] || ! kill -0 "$XOSD_PID" 2>/dev/null; then continue; fi
		live=$(xps -q 2>/dev/null || true)
		[ -n "$live" ] || continue
		# shellcheck disable=SC2086
		xkill -s KILL $live >/dev/null 2>&1 || true
		# shellcheck disable=SC2086
		timeout 30 xwait $live >/dev/null 2>&1 || true
	done
	for i in "${NODES[@]}"; do
		node_use "$i"
		xos_teardown || rc=1
	done
	for i in "${NODE_BASES[@]}"; do
		umount "$i" 2>/dev/null || umount -l "$i" || rc=1
		rmdir "$i" || rc=1
	done
	for i in $(seq 1 "${NODE_COUNT:-2}"); do ip netns del "${NS}n$i" 2>/dev/null || true; done
	ip netns del "${NS}h" 2>/dev/null || true
	return "$rc"
}

# node_tmp I: node I's directory (state, run, xosd.conf, xosd.log)
node_tmp() {
	local t="NODE_TMP_$1"
	echo "${!t}"
}

# node_use I: the commands below talk to node I's daemon
node_use() {
	local t="NODE_TMP_$1" p="NODE_PID_$1"
	XOS_TMP=${!t}
	XOSD_PID=${!p:-}
	export XOS_TMP XOS_SOCKET="${!t}/run/xosd.sock"
}

# node_start I CERT [xosd.conf lines [xosd arguments]]: node nI's xosd in its
# namespace, with the certificate CERT (a name under $CERTS), peers
# n1..nNODE_COUNT, a heartbeat of 1 s
node_start() {
	local i=$1 cert=$2 extra=${3:-} tmp peers="" k base
	if [ "${NODE_OWN_SYSFS:-}" = 1 ]; then
		# the node's directory below a shared mount point of its own: what
		# its xosd mounts in its own mount namespace shows here too
		base=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.node.XXXXXX")
		chmod 0711 "$base"
		mount --bind "$base" "$base"
		mount --make-shared "$base"
		NODE_BASES+=("$base")
		tmp=$base/n$i
		mkdir "$tmp"
	else
		tmp=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.XXXXXX")
	fi
	chmod 0711 "$tmp"
	printf -v "NODE_TMP_$i" '%s' "$tmp"
	NODES+=("$i")
	for k in $(seq 1 "${NODE_COUNT:-2}"); do
		peers="${peers:+$peers, }n$k 10.213.0.$k:$PORT"
	done
	cat >"$tmp/xosd.conf" <<EOC
node_name = n$i
node_key = $CERTS/$cert.key
node_cert = $CERTS/$cert.pem
node_ca = $CERTS/ca/ca.pem
node_listen = 10.213.0.$i:$PORT
node_peers = $peers
node_heartbeat = 1s
$extra
EOC
	node_launch "$i" "${@:4}"
}

# node_launch I [xosd arguments]: (again) the daemon of node I, with its state
node_launch() {
	local rc=0 i=$1
	shift
	node_use "$i"
	XOS_NETNS="${NS}n$i" XOS_NETNS_SYSFS=${NODE_OWN_SYSFS:-} xosd_launch --config "$XOS_TMP/xosd.conf" "$@" || rc=$?
	printf -v "NODE_PID_$i" '%s' "$XOSD_PID" # (stopped at teardown even if it failed)
	return "$rc"
}

# peer_field I PEER FIELD: a field of PEER in node I's xnodes --json
peer_field() {
	node_use "$1"
	xnodes --json | jq -r --arg p "$2" ".peers[] | select(.name == \$p) | .$3"
}

# peer_is I PEER STATE: node I shows PEER in STATE
peer_is() {
	[ "$(peer_field "$1" "$2" state)" = "$3" ]
}

# nodes_certs_setup NAME...: CERTS (exported), a site CA and a certificate
# of it for each node NAME, as CERTS/NAME (for a setup_file); and its end
nodes_certs_setup() {
	local n
	CERTS=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.certs.XXXXXX")
	export CERTS
	mk_ca "$CERTS/ca" "xos test site CA"
	for n in "$@"; do
		mk_cert "$CERTS/ca" "$n" "$CERTS/$n"
	done
}
nodes_certs_teardown() { rm -rf "$CERTS"; }

# on I CMD...: CMD with the CLI talking to node I
on() {
	node_use "$1"
	shift
	"$@"
}

# jobroot I ID: the job's root on node I
jobroot() { echo "$(node_tmp "$1")/state/volatile/jobs/$2/rootfs"; }

# where I ID: the job's state on node I, or "absent" when that node does not know it
where() {
	local s
	s=$(on "$1" xps -a --json "$2" 2>/dev/null | jq -r '.[0].state' 2>/dev/null)
	echo "${s:-absent}"
}

# ---- shared by the migration tests (93, 94-migrate-*) ----

# nodes_net_teardown_checked: the nodes torn down; then nothing of the jobs'
# networking may be left in any node's namespace (veths, bridge, nftables
# tables, routes of xosd's), and no mount below the nodes' directories
nodes_net_teardown_checked() {
	local i rc=0 left bases=("${NODE_BASES[@]}")
	for i in "${NODES[@]}"; do
		node_use "$i"
		nodes_net_teardown_jobs "$i"
		xosd_stop || rc=1
		printf -v "NODE_PID_$i" '%s' ""
		left=$(
			ip -n "${NS}n$i" -o link show | grep -E ': (xv[0-9a-f]+|xosbr0)[@:]' || true
			ip netns exec "${NS}n$i" nft list tables | grep -w xos || true
			ip -n "${NS}n$i" route show proto 88 || true
		)
		if [ -n "$left" ]; then
			echo "left in node n$i's network namespace:" >&2
			echo "$left" >&2
			rc=1
		fi
	done
	nodes_net_teardown || rc=1
	# the nodes' own cgroup parents (pc_node_start), empty once their jobs went
	for i in "${NODES[@]}" 1 2 3; do
		rmdir /sys/fs/cgroup/"xos-n$i" /sys/fs/cgroup/*/"xos-n$i" 2>/dev/null || true
	done
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

# peers_up N: nodes n1..nN each see the others up
peers_up() {
	local i k
	for i in $(seq 1 "$1"); do
		for k in $(seq 1 "$1"); do
			[ "$i" = "$k" ] || xos_wait_for 30 peer_is "$i" "n$k" up
		done
	done
}

# route_via I ADDR GW: node I has xosd's route to ADDR via GW
route_via() {
	ip -n "${NS}n$1" route show proto 88 "$2/32" | grep -q "via $3 "
}

# listening I ID: job ID on node I listens on TCP port 7000
listening() { test -e "$(jobroot "$1" "$2")/tmp/listening"; }

# counts_consecutive FILE: the lines are 1, 2, 3, ... without a gap or a repeat
counts_consecutive() {
	awk '$0 != NR { printf "line %d is %s\n", NR, $0; bad = 1; exit } END { exit bad }' "$1"
}

# a TCP server counting to its one client, a line every 0.1 s, each number
# also appended to /tmp/sent
COUNT_SERVER='
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7000))
s.listen(1)
open("/tmp/listening", "w").close()
c, _ = s.accept()
with open("/tmp/sent", "a") as f:
    for i in range(1, 100000):
        c.sendall(b"%d\n" % i)
        f.write("%d\n" % i)
        f.flush()
        time.sleep(0.1)
'

# a client of it (in a node's network namespace): every line it reads
# appended to OUT (and the time it came to OUT.t), then "end: WHY" when the
# connection ends; at most 300 s
COUNT_CLIENT='
import socket, sys, time
addr, out = sys.argv[1], sys.argv[2]
with open(out, "a") as f, open(out + ".t", "a") as t:
    try:
        c = socket.create_connection((addr, 7000), timeout=10)
        c.settimeout(120)
        for line in c.makefile("rb"):
            t.write("%.3f\n" % time.monotonic())
            t.flush()
            f.write(line.decode())
            f.flush()
        f.write("end: closed\n")
    except Exception as e:
        f.write("end: %r\n" % e)
'

# (NODE_START: the function that starts a node, node_start unless a file
# sets its own)
# bridge_nodes N: nodes n1..nN up with one job pool, each seeing the others
bridge_nodes() {
	local i
	for i in $(seq 1 "$1"); do
		"${NODE_START:-node_start}" "$i" "n$i" "net_pool = $POOL"
	done
	peers_up "$1"
}

state_on() { on "$1" job_field "$2" .state 2>/dev/null; }

state_is() { [ "$(state_on "$1" "$2")" = "$3" ]; }

# no_store_of I ID: nothing of job ID in node I's checkpoint store, no
# incoming copy
no_store_of() {
	local t
	t=$(node_tmp "$1")
	[ ! -e "$t/state/checkpoints/$2" ]
	[ ! -e "$t/state/checkpoints/.migrate-$2.tar" ]
}
