# What the benches share, sourced first by each that uses it:
#
#   # shellcheck source=tests/bench/lib.bash
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
#
# ROOT (the sources) and BUILD (XOS_BUILD, else ROOT/build); die, whose
# messages start with BENCH_NAME (set it before dying; default "bench"); the
# checks of root and of the build's binaries; the run's directory in /tmp;
# a private xosd there, started and stopped.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${XOS_BUILD:-$ROOT/build}
XOSD_PID=

die() {
	echo "${BENCH_NAME:-bench}: $*" >&2
	exit 1
}

# bench_need_root WHY: root, or die saying why it is needed
bench_need_root() {
	[ "$(id -u)" -eq 0 ] || die "must run as root ($1)"
}

# bench_need_bins BINARY...: each of them built, in BUILD
bench_need_bins() {
	local b
	for b in "$@"; do
		[ -x "$BUILD/$b" ] || die "$BUILD/$b missing: run 'make -s all' first"
	done
}

# bench_tmpdir NAME: T, the run's directory, /tmp/xos-bench-NAME.XXXXXX (0711:
# a container's root traverses it to reach its rootfs, as in xosd's state
# directory), and XOS_SOCKET, where the xosd of bench_xosd_start listens.
# Its removal is the bench's cleanup.
bench_tmpdir() {
	T=$(mktemp -d "/tmp/xos-bench-$1.XXXXXX")
	chmod 0711 "$T"
	export XOS_SOCKET="$T/run/xosd.sock"
}

# bench_xosd_start CONFIG: a private xosd with its state and run directory
# in T, its log T/xosd.log (appended to), its pid XOSD_PID; returns once it
# answers, else dies with the end of its log
bench_xosd_start() {
	"$BUILD/xosd" --foreground --config "$1" --state-dir "$T/state" --run-dir "$T/run" \
		--loader "$BUILD/xos-loader" </dev/null >>"$T/xosd.log" 2>&1 3>&- &
	XOSD_PID=$!
	for _ in $(seq 200); do
		[ -S "$XOS_SOCKET" ] && "$BUILD/xps" >/dev/null 2>&1 && return 0
		kill -0 "$XOSD_PID" 2>/dev/null || break
		sleep 0.05
	done
	die "xosd did not start: $(tail -n 5 "$T/xosd.log")"
}

# bench_xosd_stop: that xosd sent SIGTERM and its end waited for (its jobs
# are the bench's to end first)
bench_xosd_stop() {
	[ -n "$XOSD_PID" ] || return 0
	kill "$XOSD_PID" 2>/dev/null || true
	wait "$XOSD_PID" 2>/dev/null || true
	XOSD_PID=
}
