# Shared setup for the integration tests: a private xosd per test, with its
# own state and run directories, torn down completely even when a test fails.
# shellcheck shell=bash

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

XOS_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
XOS_BUILD=${XOS_BUILD:-$XOS_ROOT/build}
export PATH="$XOS_BUILD:$PATH"

# Start a private daemon. Extra arguments go to xosd.
xos_start() {
	XOS_TMP=$(mktemp -d /tmp/xos-t.XXXXXX)
	chmod 0711 "$XOS_TMP"
	export XOS_TMP
	export XOS_SOCKET="$XOS_TMP/run/xosd.sock"
	xosd_launch "$@"
}

xosd_launch() {
	"$XOS_BUILD/xosd" --foreground --config /dev/null --state-dir "$XOS_TMP/state" \
		--run-dir "$XOS_TMP/run" --loader "$XOS_BUILD/xos-loader" "$@" \
		</dev/null >>"$XOS_TMP/xosd.log" 2>&1 3>&- &
	XOSD_PID=$!
	local i
	for i in $(seq 1 100); do
		[ -S "$XOS_SOCKET" ] && xps >/dev/null 2>&1 && return 0
		kill -0 "$XOSD_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "xosd did not start:" >&2
	cat "$XOS_TMP/xosd.log" >&2
	return 1
}

xosd_stop() {
	if [ -n "${XOSD_PID:-}" ]; then
		kill "$XOSD_PID" 2>/dev/null || true
		wait "$XOSD_PID" 2>/dev/null || true
	fi
	XOSD_PID=
}

# Everything this test's daemon made goes: containers, mounts, files.
xos_teardown() {
	[ -n "${XOS_TMP:-}" ] || return 0
	xosd_stop
	local lxcpath="$XOS_TMP/state/lxc" c
	if [ -d "$lxcpath" ]; then
		for c in "$lxcpath"/*/; do
			[ -d "$c" ] || continue
			c=$(basename "$c")
			timeout 20 lxc-stop -P "$lxcpath" -n "$c" -k >/dev/null 2>&1 || true
		done
	fi
	# wait for the containers' init processes to be gone
	local i
	for i in $(seq 1 50); do
		pgrep -f "xos-t.*loader|/.xos/loader .*" >/dev/null 2>&1 || break
		[ -z "$(xos_loader_pids)" ] && break
		sleep 0.1
	done
	awk -v d="$XOS_TMP" '$5 ~ "^"d {print $5}' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	if [ -n "${BATS_TEST_COMPLETED:-}" ] || [ -z "${XOS_KEEP:-}" ]; then
		rm -rf "$XOS_TMP"
	fi
	XOS_TMP=
}

# pids of loaders (container inits) that belong to this test's daemon
xos_loader_pids() {
	local p
	for p in $(pgrep -x xos-loader 2>/dev/null; pgrep -f '^/.xos/loader ' 2>/dev/null); do
		if grep -qs "$XOS_TMP" "/proc/$p/mountinfo" 2>/dev/null; then echo "$p"; fi
	done | sort -u
}

# A job's field from xps --json (jq filter on the single job object).
job_field() {
	xps -a --json "$1" | jq -r ".[0]$2"
}

wait_state() { # JOB STATE [TIMEOUT_S]
	local i
	for i in $(seq 1 $((${3:-10} * 20))); do
		[ "$(job_field "$1" .state)" = "$2" ] && return 0
		sleep 0.05
	done
	echo "job $1 did not reach $2; it is $(job_field "$1" .state)" >&2
	return 1
}

# host pid of a job's container init (the loader)
job_init_pid() {
	local c="xos-$(xps -a --json "$1" | jq -r '.[0].id')"
	lxc-info -P "$XOS_TMP/state/lxc" -n "$c" -p -H 2>/dev/null
}
