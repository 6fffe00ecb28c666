#!/usr/bin/env bash
# Density benchmark (issue 13, goal 3): IDLE (1,000) concurrent idle jobs on
# one node: node memory per idle job (the drop of MemAvailable, slab shown
# apart), xps and xps --json of them all; then CHURN (10,000) short jobs
# through a node with keep_ended = KEEP: xosd's memory and fds at job
# CHURN/10 and at the end (flat: ended jobs are pruned). Reports only; it
# asserts no timing. Throughput (goal 2) is tests/bench/run.sh's section 2
# with BENCH_JOBS=1000 (burst) or 5000 (sustained), lxc-execute beside it.
#
#   make bench            (as root, from the repository root; runs this too)
#   tests/bench/density.sh
#
# Environment:
#   BENCH_DENSITY_IDLE=1000     idle jobs at once
#   BENCH_DENSITY_CHURN=10000   short jobs for the flatness check (0: skip)
#   BENCH_DENSITY_KEEP=100      xosd.conf keep_ended during the churn
#   BENCH_DENSITY_PROBE=0       1: also where the memory went (the slab caches
#                               that grew most, mounts on the host and in a job)
#   BENCH_SUBMITTERS=4          concurrent xrun submitters
#   BENCH_DENSITY_CONF=LINE     an xosd.conf line for both passes, e.g.
#                               "container_engine = direct"
#
# Everything lives under one directory in /tmp, removed on exit (also on
# failure): its xosd, its jobs (killed), their records and mounts.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${XOS_BUILD:-$ROOT/build}
IDLE=${BENCH_DENSITY_IDLE:-1000}
CHURN=${BENCH_DENSITY_CHURN:-10000}
KEEP=${BENCH_DENSITY_KEEP:-100}
PROBE=${BENCH_DENSITY_PROBE:-0}
SUBMITTERS=${BENCH_SUBMITTERS:-4}

die() {
	echo "bench: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root (xosd needs it)"
[ -n "${EPOCHREALTIME:-}" ] || die "needs bash >= 5 (EPOCHREALTIME)"
for b in xosd xos-loader xrun xps xkill xwait; do
	[ -x "$BUILD/$b" ] || die "$BUILD/$b missing: run 'make -s all' first"
done
for v in IDLE CHURN KEEP SUBMITTERS PROBE; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number"
done
if [ "$IDLE" -lt 1 ] || [ "$SUBMITTERS" -lt 1 ]; then
	die "IDLE and SUBMITTERS must be >= 1"
fi
command -v jq >/dev/null || die "jq is required"

TMP=$(mktemp -d /tmp/xos-bench-density.XXXXXX)
chmod 0711 "$TMP"
export XOS_SOCKET="$TMP/run/xosd.sock"
XOSD_PID=

live_count() { "$BUILD/xps" -q 2>/dev/null | wc -l; }

# every live job killed, then xosd stopped
stop_xosd() {
	[ -n "$XOSD_PID" ] || return 0
	local ids
	ids=$("$BUILD/xps" -q 2>/dev/null || true)
	if [ -n "$ids" ]; then
		# shellcheck disable=SC2086 # (one id a word)
		"$BUILD/xkill" -s KILL $ids >/dev/null 2>&1 || true
		# shellcheck disable=SC2086
		timeout 300 "$BUILD/xwait" $ids >/dev/null 2>&1 || true
	fi
	kill "$XOSD_PID" 2>/dev/null || true
	for _ in $(seq 300); do
		kill -0 "$XOSD_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$XOSD_PID" 2>/dev/null || true
	wait "$XOSD_PID" 2>/dev/null || true
	XOSD_PID=
}

our_mounts() { awk -v d="$TMP/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r; }

cleanup() {
	trap - EXIT INT TERM HUP
	stop_xosd
	our_mounts | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$TMP"
	# (liblxc leaves its lock directory of the containers of a job killed
	# at the end: /run/lxc/lock/<lxcpath>)
	rm -rf "/run/lxc/lock$TMP"
	rmdir /run/lxc/lock/tmp 2>/dev/null || true
}
trap cleanup EXIT INT TERM HUP

start_xosd() { # CONF_LINE...
	rm -rf "$TMP/state" "$TMP/run"
	printf '%s\n' "$@" >"$TMP/xosd.conf"
	"$BUILD/xosd" --foreground --config "$TMP/xosd.conf" --state-dir "$TMP/state" \
		--run-dir "$TMP/run" --loader "$BUILD/xos-loader" </dev/null >>"$TMP/xosd.log" 2>&1 &
	XOSD_PID=$!
	for _ in $(seq 300); do
		[ -S "$XOS_SOCKET" ] && "$BUILD/xps" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "xosd did not start: $(tail -5 "$TMP/xosd.log")"
}

meminfo_kb() { awk -v k="$1:" '$1 == k {print $2}' /proc/meminfo; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$XOSD_PID/status"; }
fd_count() { find "/proc/$XOSD_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
ms_since() { echo "$1 $EPOCHREALTIME" | awk '{printf "%.1f", ($2 - $1) * 1000}'; }

# submit COUNT JOB_ARGV...: COUNT detached jobs from SUBMITTERS loops
submit() {
	local count=$1 k n pids=()
	shift
	for k in $(seq 1 "$SUBMITTERS"); do
		n=$((count / SUBMITTERS + (k <= count % SUBMITTERS ? 1 : 0)))
		(
			for _ in $(seq 1 "$n"); do
				"$BUILD/xrun" -d -- "$@" </dev/null >/dev/null 2>>"$TMP/xrun.err" ||
					echo x >>"$TMP/failed"
			done
		) &
		pids+=("$!")
	done
	for k in "${pids[@]}"; do wait "$k"; done
	[ ! -s "$TMP/failed" ] || die "$(wc -l <"$TMP/failed") submissions failed: $(tail -2 "$TMP/xrun.err")"
}

# wait_running COUNT: until COUNT jobs are RUNNING (at most 10 min)
wait_running() {
	local n=0
	for _ in $(seq 1200); do
		n=$("$BUILD/xps" --json | jq '[.[] | select(.state == "RUNNING")] | length')
		[ "$n" -ge "$1" ] && return 0
		sleep 0.5
	done
	die "only $n of $1 jobs running after 10 min"
}

# wait_live: until no job is live (at most 10 min)
wait_live() {
	local ids=()
	for _ in $(seq 1200); do
		mapfile -t ids < <("$BUILD/xps" -q)
		[ ${#ids[@]} -eq 0 ] && return 0
		timeout 30 "$BUILD/xwait" "${ids[@]}" >/dev/null 2>&1 || true
	done
	die "jobs still live after 10 min"
}

# slab_kb: "cache KiB" for each slab cache (active objects times their size)
slab_kb() { awk 'NR > 2 {printf "%s %d\n", $1, $2 * $4 / 1024}' /proc/slabinfo | sort; }

# probe_report BEFORE_FILE: the slab caches that grew most per idle job since
# BEFORE_FILE, and the mounts on the host and in one job's container
probe_report() {
	local pid
	slab_kb >"$TMP/slab1"
	echo "  slab caches that grew most (KiB per job):"
	join "$1" "$TMP/slab1" | awk -v n="$IDLE" '$3 > $2 {printf "%.1f %s\n", ($3 - $2) / n, $1}' |
		sort -rn | head -12 | awk '{printf "    %-28s %s\n", $2, $1}'
	pid=$(pgrep -n -f '^sleep 1000000$' || true)
	echo "  mounts: host $(wc -l </proc/self/mountinfo)," \
		"in a job: $([ -n "$pid" ] && wc -l <"/proc/$pid/mountinfo")"
}

median_ms() { # CMD...: the median of 5 runs, in ms
	local t0 ts=()
	for _ in 1 2 3 4 5; do
		t0=$EPOCHREALTIME
		"$@" >/dev/null
		ts+=("$(ms_since "$t0")")
	done
	printf '%s\n' "${ts[@]}" | sort -n | sed -n 3p
}

density() {
	local mem0 slab0 mem1 slab1 rss0 rss1 t0
	start_xosd "${BENCH_DENSITY_CONF:-}"
	sync
	mem0=$(meminfo_kb MemAvailable)
	slab0=$(meminfo_kb Slab)
	rss0=$(rss_kb)
	[ "$PROBE" -eq 0 ] || slab_kb >"$TMP/slab0"
	t0=$EPOCHREALTIME
	submit "$IDLE" sleep 1000000
	wait_running "$IDLE"
	echo "density${BENCH_DENSITY_CONF:+ ($BENCH_DENSITY_CONF)}: $IDLE idle jobs (sleep) running $(ms_since "$t0") ms after the first submission"
	sync
	mem1=$(meminfo_kb MemAvailable)
	slab1=$(meminfo_kb Slab)
	rss1=$(rss_kb)
	echo "  node memory per idle job (MemAvailable drop): $(echo "$mem0 $mem1 $IDLE" |
		awk '{printf "%.2f", ($1 - $2) / 1024 / $3}') MiB, of which slab" \
		"$(echo "$slab0 $slab1 $IDLE" | awk '{printf "%.2f", ($2 - $1) / 1024 / $3}') MiB;" \
		"xosd RSS $rss0 -> $rss1 KiB ($(echo "$rss0 $rss1 $IDLE" |
			awk '{printf "%.1f", ($2 - $1) / $3}') KiB per job), $(fd_count) fds"
	[ "$PROBE" -eq 0 ] || probe_report "$TMP/slab0"
	echo "  xps of $IDLE live jobs (median of 5): $(median_ms "$BUILD/xps") ms;" \
		"xps --json $(median_ms "$BUILD/xps" --json) ms"
	stop_xosd
}

churn() {
	local first=$((CHURN / 10)) rss_a fds_a rss_b fds_b
	start_xosd "keep_ended = $KEEP" "${BENCH_DENSITY_CONF:-}"
	submit "$first" /bin/true
	wait_live
	rss_a=$(rss_kb)
	fds_a=$(fd_count)
	submit $((CHURN - first)) /bin/true
	wait_live
	rss_b=$(rss_kb)
	fds_b=$(fd_count)
	echo "churn: $CHURN short jobs, keep_ended = $KEEP: xosd RSS $rss_a KiB and $fds_a fds" \
		"at job $first, $rss_b KiB and $fds_b fds at job $CHURN;" \
		"$("$BUILD/xps" -a -q | wc -l) records kept"
	stop_xosd
}

echo "machine: $(nproc) cpus, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
density
[ "$CHURN" -eq 0 ] || churn
