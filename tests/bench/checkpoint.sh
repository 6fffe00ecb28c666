#!/usr/bin/env bash
# Checkpoint benchmark: a job holding 256 MiB of touched memory; xcheckpoint
# (left running, and --stop) and xrestart wall time and CRIU's frozen time,
# side by side in one run with lxc-checkpoint on the very same container
# (dump with -s, restore with -r, while xosd is stopped), and podman's
# checkpoint/restore when podman is installed. Then a small job with --net
# bridge against the same job with --net none (what the veth, address and
# published port add to a checkpoint and a restart). Reports only; asserts no
# timing.
#
#   make bench-checkpoint      (as root, from the repository root)
#
# Environment: BENCH_CKPT_N=3 (rounds), BENCH_CKPT_MIB=256
# Everything lives under one /tmp directory, torn down on exit.
set -euo pipefail
export LC_ALL=C

# shellcheck source=tests/bench/lib.bash
. "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
N=${BENCH_CKPT_N:-3}
MIB=${BENCH_CKPT_MIB:-256}
export PATH="$BUILD:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

bench_need_root "xosd and lxc-checkpoint need it"
bench_tmpdir ckpt

sfx=${T##*.}
printf 'net_bridge = xb%s\nnet_table = xos_b%s\nnet_pool = 10.%s.%s.0/24\n' "$sfx" "$sfx" \
	$((64 + RANDOM % 64)) $((RANDOM % 256)) >"$T/xosd.conf"
cleanup() {
	local c
	if [ -n "$XOSD_PID" ]; then
		# shellcheck disable=SC2046
		xkill -s KILL $(xps -q) >/dev/null 2>&1 || true
		sleep 1
	fi
	bench_xosd_stop
	for c in "$T"/state/volatile/lxc/*/; do
		[ -d "$c" ] || continue
		lxc-stop -P "$T/state/volatile/lxc" -n "$(basename "$c")" -k >/dev/null 2>&1 || true
	done
	awk -v d="$T" '$5 ~ "^"d {print $5}' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	for id in "$T"/state/jobs/*; do
		[ -e "$id" ] || continue
		find /sys/fs/cgroup -maxdepth 2 -name "*xos-${id##*/}" -exec rmdir {} + 2>/dev/null || true
	done
	rm -rf "/run/lxc/lock$T" "$T"
}
trap cleanup EXIT

now() { date +%s%N; }
# CRIU's frozen time (ms) from a stats-dump image: magics, a length, then
# StatsEntry { dump = 1 { frozen_time = 2 } } as protobuf varints
frozen_ms() {
	python3 - "$1" <<'PY' 2>/dev/null || echo -
import struct, sys
d = open(sys.argv[1], "rb").read()
def varint(b, i):
    v = s = 0
    while True:
        c = b[i]; i += 1; v |= (c & 0x7f) << s; s += 7
        if not c & 0x80: return v, i
def fields(b):
    i, f = 0, {}
    while i < len(b):
        k, i = varint(b, i)
        if k & 7 == 0:
            v, i = varint(b, i); f[k >> 3] = v
        elif k & 7 == 2:
            n, i = varint(b, i); f[k >> 3] = b[i:i + n]; i += n
        else:
            raise ValueError
    return f
for off in (4, 8, 12):
    n = struct.unpack_from("<I", d, off)[0]
    if off + 4 + n == len(d):
        print(fields(fields(d[off + 4:])[1])[2] // 1000)
        break
PY
}
ms() { echo $((($2 - $1) / 1000000)); }

bench_xosd_start "$T/xosd.conf"
id=$(xrun -d -- python3 -c "
import time
b = bytearray($MIB << 20)
for i in range(0, len(b), 4096):
    b[i] = 1
open('/tmp/ready', 'w').write('1')
while True:
    time.sleep(1)")
for _ in $(seq 1 600); do
	[ -s "$T/state/volatile/jobs/$id/rootfs/tmp/ready" ] && break
	sleep 0.1
done
echo "# job $id holds $MIB MiB of touched memory; $N rounds"
printf '%-28s %10s %10s\n' "operation" "wall ms" "frozen ms"
for r in $(seq 1 "$N"); do
	a=$(now)
	out=$(xcheckpoint --json "$id")
	b=$(now)
	printf '%-28s %10s %10s\n' "xcheckpoint (runs on) #$r" "$(ms "$a" "$b")" \
		"$(($(echo "$out" | jq .criu_statistics.frozen_time) / 1000))"
	a=$(now)
	out=$(xcheckpoint --stop --json "$id")
	b=$(now)
	printf '%-28s %10s %10s\n' "xcheckpoint --stop #$r" "$(ms "$a" "$b")" \
		"$(($(echo "$out" | jq .criu_statistics.frozen_time) / 1000))"
	a=$(now)
	xrestart "$id" >/dev/null
	b=$(now)
	printf '%-28s %10s %10s\n' "xrestart #$r" "$(ms "$a" "$b")" "-"
done

# lxc-checkpoint on the same container: xosd stopped (jobs keep running)
bench_xosd_stop
printf 'network-lock skip\n' >"$T/criu.conf"
export CRIU_CONFIG_FILE="$T/criu.conf"
for r in $(seq 1 "$N"); do
	d="$T/lxc-ckpt-$r"
	a=$(now)
	lxc-checkpoint -P "$T/state/volatile/lxc" -n "xos-$id" -D "$d" -s
	b=$(now)
	fr=$(frozen_ms "$d/stats-dump")
	printf '%-28s %10s %10s\n' "lxc-checkpoint -s #$r" "$(ms "$a" "$b")" "${fr:--}"
	chown -R "$(stat -c %u:%g "$T/state/jobs/$id/xos")" "$d"
	chmod 0755 "$d"
	a=$(now)
	lxc-checkpoint -P "$T/state/volatile/lxc" -n "xos-$id" -D "$d" -r
	b=$(now)
	printf '%-28s %10s %10s\n' "lxc-checkpoint -r #$r" "$(ms "$a" "$b")" "-"
done
unset CRIU_CONFIG_FILE
bench_xosd_start "$T/xosd.conf"
if command -v podman >/dev/null; then
	echo "# podman: installed, not benchmarked: on these machines it cannot start a container" \
		"(root lacks CAP_SYS_RESOURCE and podman sets rlimits; see docs/PERFORMANCE.md)"
else
	echo "# podman: not installed (scripts/setup.sh --with-podman installs it)"
fi

# --net bridge against --net none: a small job, xcheckpoint --stop and xrestart
# (the bridge job also publishes a port), interleaved
xkill -s KILL "$id" >/dev/null
xwait "$id" >/dev/null || true
small='import time
while True: time.sleep(1)'
none=$(xrun -d -- python3 -c "$small")
bridge=$(xrun -d --net bridge -p 18199:8080 -- python3 -c "$small")
sleep 1
echo "# a small job (python3 sleeping), --net none against --net bridge -p; $N rounds"
printf '%-28s %10s %10s\n' "operation" "none ms" "bridge ms"
for r in $(seq 1 "$N"); do
	for what in "xcheckpoint --stop" xrestart; do
		row=()
		for j in "$none" "$bridge"; do
			a=$(now)
			# shellcheck disable=SC2086
			$what "$j" >/dev/null
			b=$(now)
			row+=("$(ms "$a" "$b")")
		done
		printf '%-28s %10s %10s\n' "$what #$r" "${row[0]}" "${row[1]}"
	done
done
