#!/usr/bin/env bash
# Start latency against template size: median `xrun --template T -- /bin/true`
# on a busybox template and on a 500 MiB one (the same busybox root plus 500 MiB
# of files), interleaved in one run on one private xosd, with `host` alongside.
# A template is the overlay's read-only lower layer, so the ratio should be ~1.
# Reports only; asserts no timing.
#
#   tests/bench/templates.sh      (as root; make bench runs it)
#
# Environment: BENCH_N=30 (runs per template), BENCH_BIG_MB=500.
# Everything lives under one directory in /tmp, torn down on exit (also on
# failure); the script then checks that no mount or process of it is left.
set -euo pipefail
export LC_ALL=C

BENCH_NAME=bench-templates
# shellcheck source=tests/bench/lib.bash
. "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
N=${BENCH_N:-30}
BIG_MB=${BENCH_BIG_MB:-500}

bench_need_root "xosd needs it"
[[ $N =~ ^[1-9][0-9]*$ && $BIG_MB =~ ^[1-9][0-9]*$ ]] || die "BENCH_N and BENCH_BIG_MB: whole numbers"
[ -x /bin/busybox ] || die "needs busybox-static (/bin/busybox)"
bench_need_bins xosd xos-loader xrun xtemplate

BT=$(mktemp -d /tmp/xos-bench-tpl.XXXXXX)
chmod 0711 "$BT"
XOSD_PID=
export XOS_SOCKET="$BT/run/xosd.sock"

cleanup() {
	local rc=$? live m
	set +e
	trap - EXIT INT TERM HUP
	if [ -n "$XOSD_PID" ]; then
		live=$(timeout 10 "$BUILD/xps" -q 2>/dev/null)
		# shellcheck disable=SC2086
		[ -n "$live" ] && timeout 10 "$BUILD/xkill" -s KILL $live >/dev/null 2>&1 &&
			timeout 30 "$BUILD/xwait" $live >/dev/null 2>&1
		kill "$XOSD_PID" 2>/dev/null
		wait "$XOSD_PID" 2>/dev/null
	fi
	sleep 0.2
	m=$(awk -v d="$BT/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)
	for x in $m; do umount -l "$x" 2>/dev/null; done
	rm -rf "/run/lxc/lock$BT"
	if [ -n "$m" ] || pgrep -f -- "$BT/" >/dev/null; then
		echo "bench-templates: teardown found leftovers under $BT (mounts: ${m:-none})" >&2
		rc=1
	else
		rm -rf "$BT"
		echo "teardown: clean ($BT removed)"
	fi
	exit "$rc"
}
trap cleanup EXIT INT TERM HUP

busybox_root() { # DIR
	local a
	mkdir -p "$1/bin" "$1/etc" "$1/tmp" "$1/proc" "$1/sys" "$1/dev"
	cp /bin/busybox "$1/bin/busybox"
	for a in sh true echo; do ln -s busybox "$1/bin/$a"; done
	chmod 1777 "$1/tmp"
}

busybox_root "$BT/bb"
busybox_root "$BT/big"
mkdir -p "$BT/big/data"
for i in $(seq 1 $((BIG_MB / 10))); do
	head -c $((10 << 20)) /dev/urandom >"$BT/big/data/blob$i"
done
tar -C "$BT/bb" --owner=0 --group=0 -cf "$BT/bb.tar" .
tar -C "$BT/big" --owner=0 --group=0 -cf "$BT/big.tar" .
rm -rf "$BT/big"

"$BUILD/xosd" --foreground --config /dev/null --state-dir "$BT/state" --run-dir "$BT/run" \
	--loader "$BUILD/xos-loader" </dev/null >>"$BT/xosd.log" 2>&1 &
XOSD_PID=$!
for _ in $(seq 1 100); do
	[ -S "$XOS_SOCKET" ] && "$BUILD/xps" >/dev/null 2>&1 && break
	sleep 0.05
done
"$BUILD/xps" >/dev/null || die "xosd did not start: $(cat "$BT/xosd.log")"

s=${EPOCHREALTIME/./}
"$BUILD/xtemplate" import bb "$BT/bb.tar" >/dev/null
e=${EPOCHREALTIME/./}
import_bb=$(((e - s) / 1000))
s=${EPOCHREALTIME/./}
"$BUILD/xtemplate" import big "$BT/big.tar" >/dev/null
e=${EPOCHREALTIME/./}
import_big=$(((e - s) / 1000))
rm -f "$BT/bb.tar" "$BT/big.tar"

TEMPLATES=(bb big host)
for t in "${TEMPLATES[@]}"; do
	: >"$BT/lat.$t"
	"$BUILD/xrun" --template "$t" -- /bin/true # warm-up
done
for _ in $(seq 1 "$N"); do
	for t in "${TEMPLATES[@]}"; do
		s=${EPOCHREALTIME/./}
		"$BUILD/xrun" --template "$t" -- /bin/true
		e=${EPOCHREALTIME/./}
		echo $((e - s)) >>"$BT/lat.$t"
	done
done

median() { sort -n "$1" | awk '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f", m / 1000}'; }

echo "== start latency against template size (xrun --template T -- /bin/true, $N interleaved runs each)"
printf '   %-34s %10s\n' "template" "median ms"
printf '   %-34s %10s\n' "bb (busybox, $(du -sh "$BT/state/templates/bb/rootfs" | cut -f1))" "$(median "$BT/lat.bb")"
printf '   %-34s %10s\n' "big (busybox + ${BIG_MB} MiB)" "$(median "$BT/lat.big")"
printf '   %-34s %10s\n' "host (built in)" "$(median "$BT/lat.host")"
awk -v a="$(median "$BT/lat.big")" -v b="$(median "$BT/lat.bb")" \
	'BEGIN {printf "   ratio big/bb: %.2f (aim: within 1.20)\n", a / b}'
echo "   import times: bb ${import_bb} ms, big ${import_big} ms (once per template)"
