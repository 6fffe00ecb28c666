#!/usr/bin/env bash
# Where a job's CPU goes (issue 13, goal 2): a burst of cold /bin/true jobs
# (pool_size = 0) from several submitters on a private xosd, sampled
# machine-wide with `perf record -a`, and the samples split by process: the
# spawner's children (liblxc's start child and each container's monitor),
# xosd, the loader, the unit, xrun, the rest. Prints CPU ms per job for each,
# and the jobs per second of the burst. Reports only; it asserts no timing.
# Read the shares: other work on the machine is in "the rest".
#
#   tests/bench/cpu-split.sh
#
# Environment:
#   BENCH_JOBS=100        jobs in the burst
#   BENCH_SUBMITTERS=4    concurrent xrun submitters
#   BENCH_POOL=0          xosd.conf pool_size (0: every job starts cold)
#   BENCH_FREQ=999        samples per second per CPU
#
# Everything lives under one directory in /tmp, removed on exit (also on
# failure): its xosd, its jobs' records and mounts, the perf data.
set -euo pipefail
export LC_ALL=C

# shellcheck source=tests/bench/lib.bash
. "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
JOBS=${BENCH_JOBS:-100}
SUBMITTERS=${BENCH_SUBMITTERS:-4}
POOL=${BENCH_POOL:-0}
FREQ=${BENCH_FREQ:-999}

bench_need_root "xosd needs it"
[ -n "${EPOCHREALTIME:-}" ] || die "needs bash >= 5 (EPOCHREALTIME)"
for v in JOBS SUBMITTERS FREQ; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "BENCH_$v must be a whole number >= 1"
done
[[ $POOL =~ ^[0-9]+$ ]] || die "BENCH_POOL must be a whole number"
bench_need_bins xosd xos-loader xrun xps
if ! command -v perf >/dev/null || ! perf stat -e task-clock true >/dev/null 2>&1; then
	echo "bench: cpu-split skipped: no perf that can sample here (Debian: linux-perf)"
	exit 0
fi

bench_tmpdir cpu
cleanup() {
	bench_xosd_stop
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

printf 'pool_size = %s\n' "$POOL" >"$T/xosd.conf"
bench_xosd_start "$T/xosd.conf"
"$BUILD/xrun" -- /bin/true || die "a first job failed"

per=$(((JOBS + SUBMITTERS - 1) / SUBMITTERS))
n=$((per * SUBMITTERS))
perf record -q -a -F "$FREQ" -o "$T/perf.data" -- sleep 3600 >/dev/null 2>&1 &
PERF=$!
sleep 0.5
start=$EPOCHREALTIME
pids=()
for _ in $(seq "$SUBMITTERS"); do
	(for _ in $(seq "$per"); do "$BUILD/xrun" -d -- /bin/true >/dev/null; done) &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
# (every job ended: their ends, reports and cleanup are in the figures)
for _ in $(seq 1200); do
	[ -z "$("$BUILD/xps" -q)" ] && break
	sleep 0.05
done
end=$EPOCHREALTIME
kill -INT "$PERF"
wait "$PERF" 2>/dev/null || true

echo "bench: $n jobs from $SUBMITTERS submitters (pool_size = $POOL$([ "$POOL" = 0 ] && echo ": each starts cold")): $(awk -v n="$n" -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", n / (b - a) }') jobs/s"
echo "bench: CPU per job, ms (perf samples at $FREQ Hz on each CPU, by process)"
perf script -i "$T/perf.data" -F comm 2>/dev/null | awk -v n="$n" -v f="$FREQ" '
	{ c = $0; gsub(/^ +| +$/, "", c)
	  if (c == "xosd-spawner") k = "liblxc start and monitors (the spawner'"'"'s children)"
	  else if (c == "xosd") k = "xosd"
	  else if (c == "loader") k = "loader"
	  else if (c == "true") k = "the unit (/bin/true)"
	  else if (c == "xrun" || c == "xos") k = "xrun"
	  else if (c == "swapper") k = "idle"
	  else k = "the rest (other processes, kernel threads)"
	  s[k]++ }
	END { for (k in s) printf "  %8.1f  %s\n", s[k] * 1000 / f / n, k }' | sort -rn
