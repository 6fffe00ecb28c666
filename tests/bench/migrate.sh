#!/usr/bin/env bash
# Migration benchmark (issue 11): a job holding 256 MiB of touched memory moved
# node to node on this machine (two xosd daemons in network namespaces of their
# own, as tests/integration/nodes.bash makes them), by xmigrate (stop-and-copy),
# by xmigrate --postcopy (only with a CRIU at xos patch level 4 on PATH: the
# job runs on n2 before its pages come; the pages relayed, its pages_bytes,
# on a line of their own) and, side by side in the same run, the manual LXC
# way on a like job:
# lxc-checkpoint -s, the images copied to another directory, lxc-checkpoint -r
# from the copy (xosd stopped meanwhile). Downtime: the job stopped until it
# runs again (xmigrate's downtime_us; for LXC, the dump's start to the
# restore's end), and the job's own gap: the job writes the time every
# millisecond, and the longest pause between two of its ticks is the time from
# its last instruction on the source to its first on the target (the issue's
# definition of downtime; the figures before it also count CRIU's start and
# the reports around the stop). Reports only; asserts no timing.
#
#   make bench-migrate        (as root, from the repository root)
#
# Environment: BENCH_MIGRATE_MIB=256, BENCH_MIGRATE_CONF (lines added to both
# nodes' xosd.conf, e.g. "sync_writes = false")
# Everything lives under one /tmp directory and the test's network
# namespaces, torn down on exit (also on failure).
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MIB=${BENCH_MIGRATE_MIB:-256}
[ "$(id -u)" -eq 0 ] || {
	echo "bench: must run as root" >&2
	exit 1
}
T=$(mktemp -d /tmp/xos-bench-mig.XXXXXX)
chmod 0711 "$T"
# the integration tests' node helpers, outside bats
BATS_TEST_DIRNAME=$ROOT/tests/integration
BATS_RUN_TMPDIR=$T
BATS_TEST_COMPLETED=1
XOS_TEST_PREFIX=xos-bench-mig
load() { :; }
# shellcheck source=tests/integration/helpers.bash
. "$ROOT/tests/integration/helpers.bash"
# shellcheck source=tests/integration/nodes.bash
. "$ROOT/tests/integration/nodes.bash"
export PATH="$XOS_BUILD:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

CERTS=$T/certs
cleanup() {
	set +e
	[ -z "${NS:-}" ] || nodes_net_teardown >/dev/null 2>&1
	rmdir /sys/fs/cgroup/xos-n[12] /sys/fs/cgroup/*/xos-n[12] 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

now() { date +%s%N; }
# gap I ID: the longest pause, in ms, between two ticks of job ID (on node
# I now), once it has ticked for 300 ms more after the move
gap() {
	local f
	f=$(node_tmp "$1")/state/volatile/jobs/$2/rootfs/tmp/ticks
	sleep 0.3
	python3 - "$f" <<'GAPX'
import sys
t = []
for line in open(sys.argv[1]):
    try:
        t.append(float(line))
    except ValueError:
        pass
print(int(max(b - a for a, b in zip(t, t[1:])) * 1000))
GAPX
}
ms() { echo $((($2 - $1) / 1000000)); }
us_ms() { echo $(($1 / 1000)); }

mk_ca "$CERTS/ca" "xos bench CA" 2>/dev/null
mk_cert "$CERTS/ca" n1 "$CERTS/n1" 2>/dev/null
mk_cert "$CERTS/ca" n2 "$CERTS/n2" 2>/dev/null
nodes_net_setup
# (a cgroup_parent of each node's own: in post-copy both hold the job's
# container at once, and these nodes share the machine's cgroups)
node_start 1 n1 "cgroup_parent = xos-n1${BENCH_MIGRATE_CONF:+
$BENCH_MIGRATE_CONF}"
node_start 2 n2 "cgroup_parent = xos-n2${BENCH_MIGRATE_CONF:+
$BENCH_MIGRATE_CONF}"
xos_wait_for 30 peer_is 1 n2 up
xos_wait_for 30 peer_is 2 n1 up

# hold: a job on node 1 touching MIB MiB, ready when /tmp/ready exists; then
# it writes the time to /tmp/ticks every millisecond
hold() {
	local id
	node_use 1
	id=$(xrun -d -- python3 -c "
import time
b = bytearray($MIB << 20)
for i in range(0, len(b), 4096):
    b[i] = 1
open('/tmp/ready', 'w').write('1')
f = open('/tmp/ticks', 'a', buffering=1)
while True:
    f.write('%.6f\\n' % time.time())
    time.sleep(0.001)")
	xos_wait_for 120 test -s "$(node_tmp 1)/state/volatile/jobs/$id/rootfs/tmp/ready"
	echo "$id"
}

echo "# $(nproc) CPUs, $(uname -r), CRIU $(criu --version | awk '/Version/ {print $2}')"
echo "# a job holding $MIB MiB of touched memory, node n1 -> n2 (both on this machine)"
printf '%-34s %10s %10s %8s %10s %12s\n' "way" "frozen ms" "down ms" "gap ms" "total ms" "bytes"

id=$(hold)
node_use 1
a=$(now)
out=$(xmigrate --json "$id" n2)
b=$(now)
echo "# xmigrate --json: $(jq -c . <<<"$out")"
printf '%-34s %10s %10s %8s %10s %12s\n' "xmigrate (stop-and-copy)" \
	"$(us_ms "$(jq .frozen_us <<<"$out")")" "$(us_ms "$(jq .downtime_us <<<"$out")")" \
	"$(gap 2 "$id")" "$(ms "$a" "$b")" "$(jq .bytes <<<"$out")"
node_use 2
xkill -s KILL "$id" >/dev/null
xwait "$id" >/dev/null || true

# xmigrate --postcopy, on a like job (CRIU level 4 on the source, 3 on the target)
if [ "$(criu_level)" -ge 4 ]; then
	id=$(hold)
	node_use 1
	a=$(now)
	out=$(xmigrate --postcopy --json "$id" n2)
	b=$(now)
	echo "# xmigrate --postcopy --json: $(jq -c . <<<"$out")"
	printf '%-34s %10s %10s %8s %10s %12s\n' "xmigrate --postcopy" \
		"$(us_ms "$(jq .frozen_us <<<"$out")")" "$(us_ms "$(jq .downtime_us <<<"$out")")" \
		"$(gap 2 "$id")" "$(ms "$a" "$b")" "$(jq .bytes <<<"$out")"
	echo "# (--postcopy: $(jq .pages_bytes <<<"$out") bytes of pages relayed after the job ran on n2)"
	node_use 2
	xkill -s KILL "$id" >/dev/null
	xwait "$id" >/dev/null || true
else
	echo "# xmigrate --postcopy: not run: $(command -v criu || echo criu) is below xos patch level 4 (GitID +xos$(criu_level)); scripts/setup.sh builds level 4"
fi

# the manual LXC way, on a like job of node 1, its xosd stopped meanwhile
id=$(hold)
node_use 1
xosd_stop
lxcpath=$(node_tmp 1)/state/volatile/lxc
printf 'network-lock skip\n' >"$T/criu.conf"
src=$T/lxc-dump dst=$T/lxc-copy
a=$(now)
CRIU_CONFIG_FILE=$T/criu.conf nsenter "--net=/run/netns/${NS}n1" \
	lxc-checkpoint -P "$lxcpath" -n "xos-$id" -D "$src" -s
b=$(now)
cp -a "$src" "$dst"
chown -R "$(stat -c %u:%g "$(node_tmp 1)/state/jobs/$id/xos")" "$dst"
chmod 0755 "$dst"
c=$(now)
CRIU_CONFIG_FILE=$T/criu.conf nsenter "--net=/run/netns/${NS}n1" \
	lxc-checkpoint -P "$lxcpath" -n "xos-$id" -D "$dst" -r
e=$(now)
printf '%-34s %10s %10s %8s %10s %12s\n' "lxc-checkpoint -s, cp -a, -r" "$(ms "$a" "$b")" \
	"$(ms "$a" "$e")" "$(gap 1 "$id")" "$(ms "$a" "$e")" "$(du -sb "$dst" | cut -f1)"
echo "# (lxc: dump $(ms "$a" "$b") ms, copy $(ms "$b" "$c") ms, restore $(ms "$c" "$e") ms)"
node_launch 1
