#!/usr/bin/env bash
# Scheduler benchmark (issue 14): a node with N (10,000) queued jobs, held or
# over capacity. Measures the submission rate, the time of a scheduling
# decision per event (xosd's own count, xqueue --json "passes"), xps and
# xqueue of the whole queue, and xosd's memory per queued job. Reports only;
# it asserts no timing.
#
#   make bench            (as root, from the repository root; runs this too)
#   tests/bench/scheduler.sh
#
# Environment:
#   BENCH_SCHED_N=10000        queued jobs
#   BENCH_SCHED_SUBMITTERS=8   concurrent xrun submitters
#   BENCH_SCHED_EVENTS=200     events timed once the queue is full
#   BENCH_SCHED_ENDS=30        over mode: jobs' ends timed after that
#   BENCH_SCHED_MODES="held over"  held: xrun --hold; over: --cpus 1 on a node
#                              of 1 cpu that one job fills
#
# Everything lives under one directory in /tmp, removed on exit (also on
# failure): its xosd, its one running job, the queued jobs' records.
set -euo pipefail
export LC_ALL=C

# shellcheck source=tests/bench/lib.bash
. "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
N=${BENCH_SCHED_N:-10000}
SUBMITTERS=${BENCH_SCHED_SUBMITTERS:-8}
EVENTS=${BENCH_SCHED_EVENTS:-200}
ENDS=${BENCH_SCHED_ENDS:-30}
MODES=${BENCH_SCHED_MODES:-held over}

bench_need_root "xosd needs it"
[ -n "${EPOCHREALTIME:-}" ] || die "needs bash >= 5 (EPOCHREALTIME)"
bench_need_bins xosd xos-loader xrun xps xqueue xrelease xkill
for v in N SUBMITTERS EVENTS; do
	if ! [[ ${!v} =~ ^[0-9]+$ ]] || [ "${!v}" -lt 1 ]; then
		die "$v must be a whole number >= 1"
	fi
done
command -v jq >/dev/null || die "jq is required"

TMP=$(mktemp -d /tmp/xos-bench-sched.XXXXXX)
chmod 0711 "$TMP"
export XOS_SOCKET="$TMP/run/xosd.sock"
XOSD_PID=

# live_ids: the jobs that hold a container (starting or running)
live_ids() {
	"$BUILD/xps" --json 2>/dev/null |
		jq -r '.[] | select(.state == "STARTING" or .state == "RUNNING") | .id'
}

stop_xosd() {
	local id left
	[ -n "$XOSD_PID" ] || return 0
	# The queued jobs that may start go first (they hold no container yet):
	# with the filler gone the head of the queue would start, one job after
	# another, and a job still starting or not yet collected when xosd stops
	# outlives it (a job's container survives xosd's stop, for the next xosd
	# to adopt): every over-mode run left one so before.
	"$BUILD/xps" --json 2>/dev/null |
		jq -r '.[] | select(.state == "QUEUED" and (.sched.hold | not)) | .id' |
		xargs -r -n 500 "$BUILD/xkill" -s KILL >/dev/null 2>&1 || true
	# then every job still live (the filler; a released job still starting),
	# until none is (held jobs never start)
	for _ in $(seq 30); do
		left=$(live_ids)
		[ -n "$left" ] || break
		for id in $left; do
			"$BUILD/xkill" -s KILL "$id" >/dev/null 2>&1 || true
			timeout 30 "$BUILD/xwait" "$id" >/dev/null 2>&1 || true
		done
	done
	[ -z "$(live_ids)" ] || echo "bench: jobs still live when xosd stops: $(live_ids)" >&2
	kill "$XOSD_PID" 2>/dev/null || true
	for _ in $(seq 300); do
		kill -0 "$XOSD_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$XOSD_PID" 2>/dev/null || true
	wait "$XOSD_PID" 2>/dev/null || true
	XOSD_PID=
}

# xosd leaves its own mounts (the skeleton, the volatile tmpfs) when it stops
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
	our_mounts | while read -r m; do umount -l "$m" 2>/dev/null || true; done
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

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$XOSD_PID/status"; }
# xosd's CPU time (user + system, every thread), microseconds
xosd_cpu_us() {
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f", ($14 + $15) * 1000000 / hz }' \
		"/proc/$XOSD_PID/stat"
}
# count, wall time (total, max) and xosd's CPU time (0: an xosd before cpu_us)
# passes: count, total_us, max_us, cpu_us, fast_waits, summary_walks, less
# the full passes xps and xqueue made (the one this xqueue makes among them:
# it is not an event's)
passes() {
	"$BUILD/xqueue" --json | jq -r '.passes |
		"\(.count - (.refreshes // 0)) \(.total_us - (.refresh_us // 0)) \(.max_us)" +
		" \((.cpu_us // 0) - (.refresh_cpu_us // 0)) \(.fast_waits // 0) \(.summary_walks // 0)"'
}
ms_since() { echo "$1 $EPOCHREALTIME" | awk '{printf "%.1f", ($2 - $1) * 1000}'; }
# median5 CMD...: the median wall time of five runs of CMD (output discarded), ms
median5() {
	local t0 i
	for i in 1 2 3 4 5; do
		t0=$EPOCHREALTIME
		"$@" >/dev/null || die "$* failed"
		ms_since "$t0"
		echo
	done | sort -n | sed -n 3p
}

# submit FIRST COUNT ARGS_JSON: COUNT run requests straight to the socket
# (python3, SUBMITTERS threads: the daemon's rate without an xrun process per
# job); jobs named qFIRST...; prints the seconds taken
submit_raw() {
	python3 - "$XOS_SOCKET" "$1" "$2" "$SUBMITTERS" "$3" <<-'PY'
		import json, socket, sys, threading, time
		path, first, count, threads, extra = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
		names = iter(range(first, first + count))
		lock = threading.Lock()
		errors = []
		def work():
		    while True:
		        with lock:
		            i = next(names, None)
		        if i is None:
		            return
		        req = {"v": 1, "op": "run", "argv": ["true"], "name": "q%d" % i}
		        req.update(extra)
		        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		        s.connect(path)
		        s.sendall((json.dumps(req) + "\n").encode())
		        buf = b""
		        while not buf.endswith(b"\n"):
		            chunk = s.recv(65536)
		            if not chunk:
		                break
		            buf += chunk
		        s.close()
		        if b'"ok":true' not in buf.replace(b" ", b""):
		            errors.append(buf[:200])
		t0 = time.monotonic()
		ts = [threading.Thread(target=work) for _ in range(threads)]
		for t in ts: t.start()
		for t in ts: t.join()
		if errors:
		    sys.exit("submission refused: %r" % errors[0])
		print("%.3f" % (time.monotonic() - t0))
	PY
}

# run_mode held|over: fill the queue, then time events, xps and xqueue
run_mode() {
	local mode=$1 args=() req t0 rss0 rss1 secs cli_n cli_secs p0 p1 c0 c1 tot0 tot1 max1 cpu0 cpu1
	local fw0 fw1 sw0 sw1
	local xps_first x0 x1
	if [ "$mode" = held ]; then
		start_xosd
		args=(--hold)
		req='{"hold":true}'
	else
		start_xosd 'capacity_cpus = 1'
		"$BUILD/xrun" -d --cpus 1 --name filler -- sh -c 'while :; do sleep 1; done' >/dev/null
		args=(--cpus 1)
		req='{"cpus":1000}'
	fi
	rss0=$(rss_kb)
	# a tenth through xrun (a process per job), the rest straight to the socket
	cli_n=$((N / 10))
	t0=$EPOCHREALTIME
	seq "$cli_n" | xargs -P "$SUBMITTERS" -I{} "$BUILD/xrun" -d "${args[@]}" --name "q{}" -- true \
		>/dev/null 2>&1
	cli_secs=$(echo "$t0 $EPOCHREALTIME" | awk '{print $2 - $1}')
	secs=$(submit_raw $((cli_n + 1)) $((N - cli_n)) "$req")
	rss1=$(rss_kb)
	[ "$("$BUILD/xqueue" --json | jq .queued)" -eq "$N" ] || die "not $N jobs queued ($mode)"
	echo "mode $mode: $N jobs queued, $SUBMITTERS submitters at a time:" \
		"$(echo "$cli_n $cli_secs" | awk '{printf "%.0f", $1 / $2}') submissions/s with xrun" \
		"($cli_n in $cli_secs s)," \
		"$(echo "$((N - cli_n)) $secs" | awk '{printf "%.0f", $1 / $2}') submissions/s to the socket" \
		"($((N - cli_n)) in $secs s)"
	read -r c0 tot0 _ cpu0 _ <<<"$(passes)"
	echo "  passes while queueing: $c0, mean $(echo "$tot0 $c0" | awk '{printf "%.0f", $1 / $2}') us" \
		"($(echo "$cpu0 $c0" | awk '{printf "%.0f", $1 / $2}') us of xosd's CPU)"
	# events once the queue is full: held: xrelease of a job (it runs and ends);
	# over: one more submission (it is queued)
	p0=$(passes)
	x0=$(xosd_cpu_us)
	t0=$EPOCHREALTIME
	for i in $(seq "$EVENTS"); do
		if [ "$mode" = held ]; then
			"$BUILD/xrelease" "q$i" >/dev/null || die "xrelease q$i failed"
		else
			"$BUILD/xrun" -d --cpus 1 --name "ev$i" -- true >/dev/null 2>&1 ||
				die "xrun ev$i failed (status $?)"
		fi
	done
	p1=$(passes)
	x1=$(xosd_cpu_us)
	read -r c0 tot0 _ cpu0 fw0 sw0 <<<"$p0"
	read -r c1 tot1 max1 cpu1 fw1 sw1 <<<"$p1"
	echo "  $EVENTS events ($([ "$mode" = held ] && echo xrelease || echo submissions)) in" \
		"$(ms_since "$t0") ms; decisions: $((c1 - c0)) passes, mean" \
		"$(echo "$tot1 $tot0 $c1 $c0" | awk '{printf "%.0f", ($1 - $2) / ($3 - $4)}') us" \
		"($(echo "$cpu1 $cpu0 $c1 $c0" | awk '{printf "%.0f", ($1 - $2) / ($3 - $4)}') us of xosd's CPU)," \
		"max so far $max1 us; xosd's whole CPU per event (request, pass, start, loop)" \
		"$(((x1 - x0) / EVENTS)) us; $((fw1 - fw0)) decided as waiting without a pass," \
		"$((sw1 - sw0)) walks of every job for that"
	t0=$EPOCHREALTIME
	"$BUILD/xps" -a --json >/dev/null
	xps_first=$(ms_since "$t0")
	# then each listing of the whole queue, median of 5 (the table is what a
	# person types; --json what a script reads)
	echo "  the whole queue, ms (median of 5): xps -a --json ${xps_first} the first time (with" \
		"the full pass); then xps $(median5 "$BUILD/xps")," \
		"xps -a --json $(median5 "$BUILD/xps" -a --json)," \
		"xqueue $(median5 "$BUILD/xqueue"), xqueue --json $(median5 "$BUILD/xqueue" --json)"
	echo "  xosd memory: ${rss0} KiB before, ${rss1} KiB with $N queued:" \
		"$(echo "$rss0 $rss1 $N" | awk '{printf "%.1f", ($2 - $1) * 1024 / $3}') bytes per queued job"
	[ "$mode" = held ] || time_ends
	stop_xosd
}

# over: ENDS jobs' ends with the queue full: the filler killed, each end's
# pass starts the head of the queue (1 cpu), which runs `true` and ends;
# counted by xevents (no listing in between: it would add passes)
time_ends() {
	local ev p0 p1 x0 x1 c0 c1 tot0 tot1 cpu0 cpu1 t0 n
	ev=$TMP/ends.events
	"$BUILD/xevents" >"$ev" 2>/dev/null &
	local evpid=$!
	sleep 0.5
	p0=$(passes)
	x0=$(xosd_cpu_us)
	t0=$EPOCHREALTIME
	"$BUILD/xkill" -s KILL filler >/dev/null || die "xkill filler failed"
	for _ in $(seq 1200); do
		n=$(grep -c ' ended' "$ev" || true)
		[ "$n" -gt "$ENDS" ] && break
		sleep 0.05
	done
	p1=$(passes)
	x1=$(xosd_cpu_us)
	kill "$evpid" 2>/dev/null || true
	wait "$evpid" 2>/dev/null || true
	read -r c0 tot0 _ cpu0 _ <<<"$p0"
	read -r c1 tot1 _ cpu1 _ <<<"$p1"
	echo "  $n ends (the filler's, then queued jobs', each starting the next) in" \
		"$(ms_since "$t0") ms; decisions: $((c1 - c0)) passes, mean" \
		"$(echo "$tot1 $tot0 $c1 $c0" | awk '{printf "%.0f", ($1 - $2) / ($3 - $4)}') us" \
		"($(echo "$cpu1 $cpu0 $c1 $c0" | awk '{printf "%.0f", ($1 - $2) / ($3 - $4)}') us of xosd's CPU);" \
		"xosd's whole CPU per end (pass, start, end) $(((x1 - x0) / n)) us"
}

echo "machine: $(nproc) cpus, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
for m in $MODES; do
	case $m in held | over) run_mode "$m" ;; *) die "unknown mode '$m' (held, over)" ;; esac
done
