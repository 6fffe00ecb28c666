# Shared setup for the integration tests: a private xosd per test, with its
# own state and run directories, torn down completely even when a test fails.
# shellcheck shell=bash

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

XOS_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
XOS_BUILD=${XOS_BUILD:-$XOS_ROOT/build}
export PATH="$XOS_BUILD:$PATH"
# Prefix of the suite's directories under /tmp: two checkouts testing at once
# on one machine give different ones, so each suite's leak check sees its own.
XOS_TEST_PREFIX=${XOS_TEST_PREFIX:-xos-t}

# Start a private daemon. Extra arguments go to xosd.
xos_start() {
	XOS_TMP=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.XXXXXX")
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

# Everything this test's daemon made goes: jobs are killed through the daemon,
# the daemon stops, and then nothing of it may be left (a leak fails the test,
# after being cleaned up by force so that later tests start clean).
xos_teardown() {
	[ -n "${XOS_TMP:-}" ] || return 0
	local leaks=""
	if [ -n "${XOSD_PID:-}" ] && kill -0 "$XOSD_PID" 2>/dev/null; then
		local live
		live=$(xps -q 2>/dev/null || true)
		if [ -n "$live" ]; then
			# shellcheck disable=SC2086
			xkill -s KILL $live >/dev/null 2>&1 || true
			# shellcheck disable=SC2086
			timeout 30 xwait $live >/dev/null 2>&1 || true
		fi
	fi
	xosd_stop
	# remember this test's job ids for the suite's final leak check
	ls "$XOS_TMP/state/jobs" >>"$BATS_RUN_TMPDIR/xos-job-ids" 2>/dev/null || true
	if [ -n "${XOS_MADE_USER:-}" ]; then
		userdel xostest 2>/dev/null || true
		XOS_MADE_USER=
	fi
	leaks=$(xos_leftovers)
	xos_force_cleanup
	rm -rf "$XOS_TMP"
	XOS_TMP=
	if [ -n "$leaks" ]; then
		echo "teardown found leftovers of the daemon:" >&2
		echo "$leaks" >&2
		return 1
	fi
}

# What this test's daemon left behind: containers, mounts, cgroups, loaders.
xos_leftovers() {
	local lxcpath="$XOS_TMP/state/lxc" c id
	if [ -d "$lxcpath" ]; then
		for c in "$lxcpath"/*/; do
			[ -d "$c" ] && echo "container $(basename "$c")"
		done
	fi
	awk -v d="$XOS_TMP" '$5 ~ "^"d {print "mount " $5}' /proc/self/mountinfo
	if [ -d "$XOS_TMP/state/jobs" ]; then
		for id in "$XOS_TMP"/state/jobs/*; do
			[ -e "$id" ] || continue # no job: the pattern itself
			id=${id##*/}
			find /sys/fs/cgroup -maxdepth 2 -name "*xos-$id" -printf 'cgroup %p\n' 2>/dev/null
		done
	fi
	xos_loader_pids | sed 's/^/process /'
	[ ! -e "/run/lxc/lock$XOS_TMP" ] || echo "lxc lock directory /run/lxc/lock$XOS_TMP"
}

xos_force_cleanup() {
	local lxcpath="$XOS_TMP/state/lxc" c id i
	if [ -d "$lxcpath" ]; then
		for c in "$lxcpath"/*/; do
			[ -d "$c" ] || continue
			timeout 20 lxc-stop -P "$lxcpath" -n "$(basename "$c")" -k >/dev/null 2>&1 || true
		done
	fi
	for i in $(seq 1 50); do
		[ -z "$(xos_loader_pids)" ] && break
		sleep 0.1
	done
	awk -v d="$XOS_TMP" '$5 ~ "^"d {print $5}' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "/run/lxc/lock$XOS_TMP"
	rmdir /run/lxc/lock/tmp 2>/dev/null || true
	if [ -d "$XOS_TMP/state/jobs" ]; then
		for id in "$XOS_TMP"/state/jobs/*; do
			[ -e "$id" ] || continue # no job: the pattern itself
			id=${id##*/}
			find /sys/fs/cgroup -maxdepth 2 -name "*xos-$id" -exec rmdir {} + 2>/dev/null || true
		done
	fi
}

# A local non-root account for tests (uid 4242), removed again at teardown.
xos_test_user() {
	if ! id -u xostest >/dev/null 2>&1; then
		useradd -M -s /usr/sbin/nologin -u 4242 xostest
		XOS_MADE_USER=1
	fi
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
	local c
	c="xos-$(xps -a --json "$1" | jq -r '.[0].id')"
	lxc-info -P "$XOS_TMP/state/lxc" -n "$c" -p -H 2>/dev/null
}
