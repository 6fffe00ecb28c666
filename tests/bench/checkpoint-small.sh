#!/usr/bin/env bash
# Small checkpoints against bare CRIU (issue 13, goal 4): `xcheckpoint --stop`
# and `xrestart` of a small job (python3 sleeping, host template, --net none),
# side by side in the same rounds with /usr/local/sbin/criu's own `dump` and
# `restore` of the same kind of process tree. Reports medians and ratios;
# asserts no timing.
#
# The bare side: `unshare --fork --pid --mount --ipc --uts --net --user
# --map-root-user` runs a script that mounts a tmpfs root, binds the host's
# /usr (read-only) and /dev/null into it, pivots into it, mounts its own
# /proc and execs `setsid python3` (the same program as the job, fds 0-2 on
# /dev/null): one task, pid 1 of its own pid, mount, ipc, uts, net and user
# namespaces. CRIU dumps it with the options xos gives it (liblxc's
# --tcp-established --file-locks --link-remap --ext-mount-map auto
# --enable-external-sharing --enable-external-masters, and xos's
# network-lock nftables) into a directory on a tmpfs, and restores it
# detached (-d) with --root on a copy of the root's skeleton. It has no
# cgroups for CRIU to manage, no /dev, /proc or /sys masks (tmpfs that CRIU
# dumps with tar), no liblxc and nothing durable: the floor, not a peer.
#
#   make bench-checkpoint-small     (as root, from the repository root)
#
# Environment: BENCH_CKPT_N=7 (timed rounds, after one untimed round)
# Everything lives under one /tmp directory, torn down on exit.
set -euo pipefail
export LC_ALL=C

# shellcheck source=tests/bench/lib.bash
. "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
N=${BENCH_CKPT_N:-7}
CRIU=${BENCH_CRIU:-/usr/local/sbin/criu}
export PATH="$BUILD:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

bench_need_root "xosd and CRIU need it"
[[ $N =~ ^[1-9][0-9]*$ ]] || die "BENCH_CKPT_N must be a whole number >= 1"
[ -x "$CRIU" ] || die "no CRIU at $CRIU"
bench_need_bins xosd xos-loader xrun xcheckpoint xrestart
bench_tmpdir cks
BARE_UNSHARE=

sfx=${T##*.}
printf 'net_bridge = xc%s\nnet_table = xos_c%s\nnet_pool = 10.%s.%s.0/24\n' "$sfx" "$sfx" \
	$((64 + RANDOM % 64)) $((RANDOM % 256)) >"$T/xosd.conf"

bare_pid() { cat "$T/bare/pid" 2>/dev/null || true; }
cleanup() {
	local c p
	if [ -n "$XOSD_PID" ]; then
		# shellcheck disable=SC2046
		xkill -s KILL $(xps -q) >/dev/null 2>&1 || true
		sleep 1
		kill "$XOSD_PID" 2>/dev/null || true
		wait "$XOSD_PID" 2>/dev/null || true
	fi
	for c in "$T"/state/volatile/lxc/*/; do
		[ -d "$c" ] || continue
		lxc-stop -P "$T/state/volatile/lxc" -n "$(basename "$c")" -k >/dev/null 2>&1 || true
	done
	p=$(bare_pid)
	[ -z "$p" ] || kill -KILL "$p" 2>/dev/null || true
	[ -z "$BARE_UNSHARE" ] || kill -KILL "$BARE_UNSHARE" 2>/dev/null || true
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
ms() { echo $((($2 - $1) / 1000000)); }

# ---- xos: a small job ----
bench_xosd_start "$T/xosd.conf"
PROG='import os, time
os.closerange(3, 65536)
open("/tmp/ready", "w").close()
while True: time.sleep(1)'
id=$(xrun -d -- python3 -c "$PROG")
for _ in $(seq 1 600); do
	[ -e "$T/state/volatile/jobs/$id/rootfs/tmp/ready" ] && break
	sleep 0.05
done

# ---- bare: the same program, in namespaces of its own, on a tmpfs root ----
mkdir -p "$T/bare/root" "$T/bare/images" "$T/bare/rootdir"
mount -t tmpfs -o size=64m,mode=0700 none "$T/bare/images"
cat >"$T/bare/start.sh" <<'EOF'
#!/bin/sh
R=$1
mount -t tmpfs -o size=16m none "$R" || exit 1
mkdir "$R/usr" "$R/proc" "$R/dev" "$R/tmp" "$R/old"
ln -s usr/bin "$R/bin" && ln -s usr/lib "$R/lib" && ln -s usr/lib64 "$R/lib64"
mount --bind /usr "$R/usr" && mount -o remount,bind,ro "$R/usr" || exit 1
touch "$R/dev/null" && mount --bind /dev/null "$R/dev/null" || exit 1
cd "$R" && pivot_root . old && mount -t proc proc /proc && umount -l /old && rmdir /old || exit 1
exec setsid /usr/bin/python3 -c "$2" </dev/null >/dev/null 2>&1
EOF
chmod 0755 "$T/bare/start.sh"
# the root CRIU restores into: the skeleton of the tmpfs root (mode 1777 as
# a tmpfs root's)
(cd "$T/bare/rootdir" && mkdir usr proc dev tmp && ln -s usr/bin bin && ln -s usr/lib lib &&
	ln -s usr/lib64 lib64 && touch dev/null && chmod 1777 .)
unshare --fork --pid --mount --propagation private --ipc --uts --net --user --map-root-user \
	"$T/bare/start.sh" "$T/bare/root" "$PROG" </dev/null \
	>"$T/bare/start.log" 2>&1 &
BARE_UNSHARE=$!
for _ in $(seq 1 200); do
	p=$(pgrep -P "$BARE_UNSHARE" || true)
	[ -n "$p" ] && [ -e "/proc/$p/root/tmp/ready" ] && break
	sleep 0.05
done
[ -n "$p" ] || die "the bare process tree did not start: $(cat "$T/bare/start.log")"
echo "$p" >"$T/bare/pid"
OPTS=(--tcp-established --file-locks --link-remap --network-lock nftables
	--ext-mount-map auto --enable-external-sharing --enable-external-masters)
bare_dump() {
	rm -rf "$T/bare/images/img"
	mkdir "$T/bare/images/img"
	"$CRIU" dump -t "$(bare_pid)" -D "$T/bare/images/img" -o dump.log "${OPTS[@]}" 2>/dev/null ||
		die "bare criu dump failed (log: $T/bare/images/img/dump.log)"
}
bare_restore() {
	rm -f "$T/bare/pid"
	"$CRIU" restore -d -D "$T/bare/images/img" -o restore.log "${OPTS[@]}" \
		--root "$T/bare/rootdir" --pidfile "$T/bare/pid" 2>/dev/null ||
		die "bare criu restore failed (log: $T/bare/images/img/restore.log)"
}

# ---- interleaved rounds: the first untimed ----
declare -A t
echo "# a small job (python3 sleeping): xos against bare CRIU ($CRIU), $N rounds"
printf '%-8s %12s %12s %12s %12s %10s\n' round "xckpt --stop" xrestart "criu dump" \
	"criu restore" "frozen ms"
for r in $(seq 0 "$N"); do
	a=$(now)
	out=$(xcheckpoint --stop --json "$id")
	b=$(now)
	xrestart "$id" >/dev/null
	c=$(now)
	bare_dump
	d=$(now)
	bare_restore
	e=$(now)
	[ "$r" -gt 0 ] || continue
	t[ck]+="$(ms "$a" "$b") " t[rs]+="$(ms "$b" "$c") " t[bd]+="$(ms "$c" "$d") "
	t[br]+="$(ms "$d" "$e") "
	printf '%-8s %12s %12s %12s %12s %10s\n' "#$r" "$(ms "$a" "$b")" "$(ms "$b" "$c")" \
		"$(ms "$c" "$d")" "$(ms "$d" "$e")" \
		"$(($(echo "$out" | jq .criu_statistics.frozen_time) / 1000))"
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {
	print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ck=$(median <<<"${t[ck]}") rs=$(median <<<"${t[rs]}")
bd=$(median <<<"${t[bd]}") br=$(median <<<"${t[br]}")
printf '%-8s %12s %12s %12s %12s\n' median "$ck" "$rs" "$bd" "$br"
awk -v ck="$ck" -v rs="$rs" -v bd="$bd" -v br="$br" 'BEGIN {
	printf "ratios of medians: xcheckpoint --stop / criu dump %.2f, xrestart / criu restore %.2f\n",
		ck / bd, rs / br }'
