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
# When this run began (the first test file to load this makes it): 99-leaks
# looks only at what is newer, not at what a run stopped half-way left
XOS_RUN_START="$BATS_RUN_TMPDIR/xos-run-start"
[ -e "$XOS_RUN_START" ] || touch "$XOS_RUN_START"

# Start a private daemon. Extra arguments go to xosd.
# XOS_TEST_POOL=N: with pool_size = N (unless the test gives a config of its
# own) and the lines of XOS_TEST_POOL_CONF, after one job that makes the pool
# its owner's: the test's jobs of the defaults start in pooled containers (a
# way to run a suite against them; 88's jobs, of --disk 256M, with
# XOS_TEST_POOL_CONF="layer_size = 256M").
# XOS_TEST_ENGINE=direct: with container_engine = direct and no pool (unless
# XOS_TEST_POOL, or the test gives a config of its own): the jobs it serves
# start without liblxc (a way to run a suite against that engine).
xos_start() {
	XOS_TMP=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.XXXXXX")
	chmod 0711 "$XOS_TMP"
	export XOS_TMP
	export XOS_SOCKET="$XOS_TMP/run/xosd.sock"
	local conf=()
	if [ -n "${XOS_TEST_ENGINE:-}" ]; then
		# (no pool unless XOS_TEST_POOL: the pool's containers are liblxc's)
		printf 'container_engine = %s\npool_size = %s\n' "$XOS_TEST_ENGINE" \
			"${XOS_TEST_POOL:-0}" >"$XOS_TMP/test.conf"
		conf=(--config "$XOS_TMP/test.conf")
	fi
	[ -n "${XOS_TEST_POOL:-}" ] || {
		xosd_launch "${conf[@]}" "$@"
		return
	}
	printf 'pool_size = %s\n%s\n' "$XOS_TEST_POOL" "${XOS_TEST_POOL_CONF:-}" >>"$XOS_TMP/test.conf"
	xosd_launch --config "$XOS_TMP/test.conf" "$@" || return
	xrun -- /bin/true >/dev/null && xos_wait_for 60 xos_pool_ready
}
xos_pool_ready() {
	local m n=0
	for m in "$XOS_TMP"/state/jobs/*/pool; do
		[ -e "$m" ] && pgrep -f "^/.xos/loader -w ${m: -21:16}\$" >/dev/null && n=$((n + 1))
	done
	[ "$n" -ge 1 ]
}

# Imported templates hold no host libraries: their jobs need a static loader.
# The sanitizer build's loader is dynamic (ASan has no static runtime), so tests
# of such templates take the plain build's (built first by tests/run-all.sh).
XOS_STATIC_LOADER=${XOS_STATIC_LOADER:-$XOS_ROOT/build/xos-loader}
xos_start_static() {
	xos_start --loader "$XOS_STATIC_LOADER" "$@"
}

# XOS_NETNS: the daemon runs in that network namespace (/run/netns/NAME;
# only the network: its mounts are the machine's, as the leak checks expect).
# With XOS_NETNS_SYSFS=1 also in a mount namespace of its own whose /sys is
# that network namespace's (as `ip netns exec` makes it; the machine's
# cgroups moved onto it): mounts below shared mount points (nodes.bash
# makes one per node) still reach the machine's namespace.
xosd_launch() {
	local wrap=()
	[ -z "${XOS_NETNS:-}" ] || wrap=(nsenter "--net=/run/netns/$XOS_NETNS")
	if [ -n "${XOS_NETNS:-}" ] && [ "${XOS_NETNS_SYSFS:-}" = 1 ]; then
		wrap+=(unshare --mount --propagation unchanged sh -c "$XOS_SYSFS_SCRIPT" sh)
	fi
	"${wrap[@]}" "$XOS_BUILD/xosd" --foreground --config /dev/null --state-dir "$XOS_TMP/state" \
		--run-dir "$XOS_TMP/run" --loader "$XOS_BUILD/xos-loader" "$@" \
		</dev/null >>"$XOS_TMP/xosd.log" 2>&1 3>&- &
	XOSD_PID=$!
	local end=$((SECONDS + 30))
	while [ "$SECONDS" -lt "$end" ]; do
		[ -S "$XOS_SOCKET" ] && xps >/dev/null 2>&1 && return 0
		pid_gone "$XOSD_PID" && break
		sleep 0.05
	done
	echo "xosd did not start (within 30 s):" >&2
	cat "$XOS_TMP/xosd.log" >&2
	return 1
}

# pid_gone PID: the process is gone (or a zombie: exited, not yet reaped)
pid_gone() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
	[[ "$st" == Z* ]]
}

# (run by sh in the daemon's new mount namespace, then exec'ing the daemon:
# the machine's cgroup mounts moved aside, a sysfs of the network namespace
# on /sys, the cgroups moved back onto it)
# shellcheck disable=SC2016
XOS_SYSFS_SCRIPT='set -e
cg=$(mktemp -d /run/xos-sysfs-cg.XXXXXX)
mount --rbind /sys/fs/cgroup "$cg"
mount --make-rprivate /sys
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount --move "$cg" /sys/fs/cgroup
rmdir "$cg"
exec "$@"'

# Stop this test's xosd with SIGTERM; one that is still there 30 s later is
# killed, and that fails.
xosd_stop() {
	local rc=0
	if [ -n "${XOSD_PID:-}" ]; then
		kill "$XOSD_PID" 2>/dev/null || true
		if ! xos_wait_for 30 pid_gone "$XOSD_PID"; then
			echo "xosd ($XOSD_PID) did not stop within 30 s of SIGTERM: killed" >&2
			kill -9 "$XOSD_PID" 2>/dev/null || true
			rc=1
		fi
		wait "$XOSD_PID" 2>/dev/null || true
	fi
	XOSD_PID=
	return "$rc"
}

# wait_for TIMEOUT_S CMD...: run CMD until it succeeds, for at most TIMEOUT_S
# seconds (a deadline, whatever CMD costs); then fail, naming CMD. (The
# helpers here call it as xos_wait_for: a test file may define its own.)
wait_for() { xos_wait_for "$@"; }
# wait_file FILE [TIMEOUT_S]: until FILE exists (default 30 s)
wait_file() { xos_wait_for "${2:-30}" test -e "$1"; }
xos_wait_for() {
	local timeout=$1 end
	shift
	end=$((SECONDS + timeout))
	until "$@"; do
		if [ "$SECONDS" -ge "$end" ]; then
			echo "gave up waiting (${timeout} s) for: $*" >&2
			return 1
		fi
		sleep 0.1
	done
}

# Everything this test's daemon made goes: jobs are killed through the daemon,
# the daemon stops, and then nothing of it may be left (a leak fails the test,
# after being cleaned up by force so that later tests start clean).
# xosd_trace FILE STRACE-ARGS...: strace the test's xosd (strace -q -p,
# output in FILE, the arguments given) until xosd_untrace; it is attached
# when this returns. xos_teardown stops one still running.
XOSD_STRACE_PID=
xosd_traced() { [ "$(awk '/^TracerPid:/ {print $2}' "/proc/$XOSD_PID/status")" != 0 ]; }
xosd_untraced() { ! xosd_traced; }
xosd_trace() {
	local out=$1
	shift
	strace -q -p "$XOSD_PID" -o "$out" "$@" &
	XOSD_STRACE_PID=$!
	wait_for 30 xosd_traced
}
xosd_untrace() {
	[ -n "$XOSD_STRACE_PID" ] || return 0
	kill "$XOSD_STRACE_PID" 2>/dev/null || true
	wait "$XOSD_STRACE_PID" 2>/dev/null || true
	XOSD_STRACE_PID=
	wait_for 30 xosd_untraced
}

xos_teardown() {
	xosd_untrace || true
	[ -n "${XOS_TMP:-}" ] || return 0
	local leaks="" left=""
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
	xosd_stop || leaks="xosd that did not stop on SIGTERM within 30 s"
	# remember this test's job ids for the suite's final leak check
	ls "$XOS_TMP/state/jobs" >>"$BATS_RUN_TMPDIR/xos-job-ids" 2>/dev/null || true
	if [ -n "${XOS_MADE_USER:-}" ]; then
		userdel xostest 2>/dev/null || true
		XOS_MADE_USER=
	fi
	leaks=$(
		[ -z "$leaks" ] || echo "$leaks"
		xos_leftovers
	)
	# a failed test, or one that left something, shows what its daemon said last
	if { [ -z "${BATS_TEST_COMPLETED:-}" ] || [ -n "$leaks" ]; } && [ -s "$XOS_TMP/xosd.log" ]; then
		echo "--- the end of xosd.log:" >&2
		tail -n 40 "$XOS_TMP/xosd.log" >&2
	fi
	xos_force_cleanup
	if [ -n "$leaks" ]; then
		# the suite's final check (99-leaks.bats) fails on this file
		left=$(xos_leftovers)
		{
			echo "$BATS_TEST_FILENAME: $BATS_TEST_DESCRIPTION: cleaned up by force:"
			awk '{print "    " $0}' <<<"$leaks"
			if [ -n "$left" ]; then
				echo "  and still there after that:"
				awk '{print "    " $0}' <<<"$left"
			fi
		} >>"$BATS_RUN_TMPDIR/xos-forced-cleanups"
	fi
	rm -rf "$XOS_TMP"
	XOS_TMP=
	unset XOS_NET_BRIDGE XOS_NET_TABLE
	if [ -n "$leaks" ]; then
		echo "teardown found leftovers of the daemon:" >&2
		echo "$leaks" >&2
		return 1
	fi
}

# What this test's daemon left behind: containers, mounts, cgroups, loaders.
xos_leftovers() {
	local lxcpath="$XOS_TMP/state/volatile/lxc" c id
	if [ -d "$lxcpath" ]; then
		for c in "$lxcpath"/*/; do
			[ -d "$c" ] && echo "container $(basename "$c")"
		done
	fi
	awk -v d="$XOS_TMP" '$5 ~ "^"d {print "mount " $5}' /proc/self/mountinfo
	xos_job_cgroups | sed 's/^/cgroup /'
	xos_loader_pids | sed 's/^/process /'
	[ ! -e "/run/lxc/lock$XOS_TMP" ] || echo "lxc lock directory /run/lxc/lock$XOS_TMP"
	xos_net_leftovers
}

# The cgroups of this test's jobs, in any hierarchy, also below a
# cgroup_parent (one walk of /sys/fs/cgroup for all of them).
xos_job_cgroups() {
	local ids
	ids=$(find "$XOS_TMP/state/jobs" -mindepth 1 -maxdepth 1 -printf '%f|' 2>/dev/null)
	[ -n "$ids" ] || return 0
	# (a cgroup removed while find walks makes find fail: that is no leak;
	# deep enough for hierarchy/init's cgroup/Slurm's step/job)
	find /sys/fs/cgroup -maxdepth 9 -type d -name '*xos-*' 2>/dev/null |
		grep -E "xos-(${ids%|})\$" || true
}

# Networking of a daemon started with xos_net_start: its bridge, nftables
# tables, job veths and leases.
xos_net_leftovers() {
	[ -n "${XOS_NET_BRIDGE:-}" ] || return 0
	local id
	if ip link show "$XOS_NET_BRIDGE" >/dev/null 2>&1; then echo "bridge $XOS_NET_BRIDGE"; fi
	nft list tables 2>/dev/null | grep -E " $XOS_NET_TABLE\$" | sed 's/^/nft /'
	if [ -d "$XOS_TMP/state/jobs" ]; then
		for id in "$XOS_TMP"/state/jobs/*; do
			[ -e "$id" ] || continue # (no job: the pattern itself)
			id=${id##*/}
			if ip link show "xv${id:0:12}" >/dev/null 2>&1; then echo "veth xv${id:0:12}"; fi
		done
	fi
	if [ -d "$XOS_TMP/state/net/leases" ]; then
		find "$XOS_TMP/state/net/leases" -type f -printf 'lease %f\n'
	fi
}

xos_force_cleanup() {
	local lxcpath="$XOS_TMP/state/volatile/lxc" c id
	if [ -d "$lxcpath" ]; then
		for c in "$lxcpath"/*/; do
			[ -d "$c" ] || continue
			timeout 20 lxc-stop -P "$lxcpath" -n "$(basename "$c")" -k >/dev/null 2>&1 || true
		done
	fi
	# loaders of containers liblxc no longer knows (their configs gone)
	local p
	for p in $(pgrep -x xos-loader 2>/dev/null; pgrep -f '^/.xos/loader ' 2>/dev/null); do
		if grep -qs "$XOS_TMP" "/proc/$p/mountinfo"; then kill -9 "$p" 2>/dev/null || true; fi
	done
	xos_wait_for 10 no_loaders 2>/dev/null || true
	awk -v d="$XOS_TMP" '$5 ~ "^"d {print $5}' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "/run/lxc/lock$XOS_TMP"
	if [ -n "${XOS_NET_BRIDGE:-}" ]; then
		if [ -d "$XOS_TMP/state/jobs" ]; then
			for id in "$XOS_TMP"/state/jobs/*; do
				[ -e "$id" ] || continue # (no job: the pattern itself)
				id=${id##*/}
				ip link del "xv${id:0:12}" 2>/dev/null || true
			done
		fi
		ip link del "$XOS_NET_BRIDGE" 2>/dev/null || true
		nft delete table inet "$XOS_NET_TABLE" 2>/dev/null || true
		nft delete table bridge "$XOS_NET_TABLE" 2>/dev/null || true
	fi
	rmdir /run/lxc/lock/tmp 2>/dev/null || true
	xos_job_cgroups | sort -r | while read -r c; do rmdir "$c" 2>/dev/null || true; done
}

# Start a private daemon with networking of its own: bridge, nftables table
# and address pool derived from the test's directory (several daemons, and
# other suites, may run on this machine at once). Extra lines of xosd.conf
# in XOS_NET_CONF.
xos_net_start() {
	XOS_TMP=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.XXXXXX")
	chmod 0711 "$XOS_TMP"
	export XOS_TMP
	export XOS_SOCKET="$XOS_TMP/run/xosd.sock"
	local sfx=${XOS_TMP##*.}
	export XOS_NET_BRIDGE="xos$sfx" XOS_NET_TABLE="xos_$sfx"
	export XOS_NET_PREFIX="10.$((64 + RANDOM % 64)).$((RANDOM % 256))"
	export XOS_NET_POOL="$XOS_NET_PREFIX.0/24" XOS_NET_GATEWAY="$XOS_NET_PREFIX.1"
	# for the suite's final leak check
	echo "$XOS_NET_BRIDGE $XOS_NET_TABLE" >>"$BATS_RUN_TMPDIR/xos-net-names"
	printf 'net_bridge = %s\nnet_table = %s\nnet_pool = %s\n%s\n' "$XOS_NET_BRIDGE" \
		"$XOS_NET_TABLE" "$XOS_NET_POOL" "${XOS_NET_CONF:-}" >"$XOS_TMP/xosd.conf"
	xosd_launch --config "$XOS_TMP/xosd.conf" "$@"
}

# A local non-root account for tests (uid 4242), removed again at teardown.
xos_test_user() {
	if ! id -u xostest >/dev/null 2>&1; then
		useradd -M -s /usr/sbin/nologin -u 4242 xostest
		XOS_MADE_USER=1
	fi
}

# xos_pooled_loader PID: the loader of a container of this daemon's pool
xos_pooled_loader() {
	local cmdl id
	cmdl=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
	case "$cmdl" in "/.xos/loader -w "*) ;; *) return 1 ;; esac
	id=${cmdl#/.xos/loader -w }
	[ -e "$XOS_TMP/state/jobs/${id%% *}/pool" ]
}
# pids of loaders (container inits) that belong to this test's daemon (but
# those of its pool, xosd.conf's pool_size: no job's yet)
xos_loader_pids() {
	local p
	for p in $(pgrep -x xos-loader 2>/dev/null; pgrep -f '^/.xos/loader ' 2>/dev/null); do
		xos_pooled_loader "$p" && continue
		if grep -qs "$XOS_TMP" "/proc/$p/mountinfo" 2>/dev/null; then echo "$p"; fi
	done | sort -u
}

# the LXC containers of this daemon's jobs (those of its pool aside)
xos_job_containers() {
	local c
	for c in "$XOS_TMP"/state/volatile/lxc/*; do
		[ -d "$c" ] || continue
		c=${c##*/}
		[ -e "$XOS_TMP/state/jobs/${c#xos-}/pool" ] || echo "$c"
	done
}

# sched_teardown: xos_teardown, and a failure if xosd (run with
# XOS_SCHED_SELFCHECK=1) logged that the scheduler's kept state differed
# from a walk of every job
sched_teardown() {
	local rc=0
	if [ -f "${XOS_TMP:-}/xosd.log" ] && grep "self-check" "$XOS_TMP/xosd.log" >&2; then
		rc=1
	fi
	xos_teardown || rc=1
	return "$rc"
}

# A job's field from xps --json (jq filter on the single job object).
job_field() {
	xps -a --json "$1" | jq -r ".[0]$2"
}

# job_state_is JOB STATE: the job is in STATE now
job_state_is() {
	[ "$(job_field "$1" .state)" = "$2" ]
}

wait_state() { # JOB STATE [TIMEOUT_S (30)]
	xos_wait_for "${3:-30}" job_state_is "$1" "$2" 2>/dev/null && return 0
	echo "job $1 did not reach $2 within ${3:-30} s; it is $(job_field "$1" .state)" >&2
	return 1
}

# wait_field JOB JQ_FILTER VALUE [TIMEOUT_S (30)]: until the job's field is VALUE
wait_field() {
	xos_wait_for "${4:-30}" job_field_is "$1" "$2" "$3" 2>/dev/null && return 0
	echo "job $1: $2 is not $3 within ${4:-30} s; it is $(job_field "$1" "$2")" >&2
	return 1
}
job_field_is() { [ "$(job_field "$1" "$2")" = "$3" ]; }

# Where a job's root is on the host (ID: the full id; no daemon needed), and
# the gate of the jobs that run "$GATE": they wait, without a clock, until
# the test opens it with open_gate ID (the file is made from the host, in the
# job's writable layer).
job_rootfs() { echo "$XOS_TMP/state/volatile/jobs/$1/rootfs"; }
GATE='while [ ! -e /tmp/gate ]; do sleep 0.1; done'
open_gate() { touch "$(job_rootfs "$1")/tmp/gate"; }

# job_mounts [ID]: mount points below this test's job directories, those of
# job ID or of every job: in the volatile tree (rootfs, layers, volume
# staging) and in the state's own (where they were before); without ID,
# those of the daemon's pooled containers (no job's yet) aside
job_mounts() {
	local m id
	awk -v p="^$XOS_TMP/state/(volatile/)?jobs/${1:-[0-9a-f]+}/" '$5 ~ p {print $5}' \
		/proc/self/mountinfo | while read -r m; do
		id=${m#"$XOS_TMP"/state/}
		id=${id#volatile/}
		id=${id#jobs/}
		id=${id%%/*}
		[ -n "${1:-}" ] || [ ! -e "$XOS_TMP/state/jobs/$id/pool" ] || continue
		echo "$m"
	done
}
no_job_mounts() { [ -z "$(job_mounts "$@")" ]; }

# A unit's end status file (the loader writes it before it reports, even
# with no daemon to report to): unit_ended ID [UNIT (1)]
unit_ended() { [ -s "$XOS_TMP/state/jobs/$1/xos/spool/${2:-1}.status" ]; }

# host pid of a job's container init (the loader)
job_init_pid() {
	local c
	c="xos-$(xps -a --json "$1" | jq -r '.[0].id')"
	# (the direct engine notes its init where liblxc keeps the config)
	if [ -e "$XOS_TMP/state/volatile/lxc/$c/init" ]; then
		cut -d' ' -f1 "$XOS_TMP/state/volatile/lxc/$c/init"
		return
	fi
	lxc-info -P "$XOS_TMP/state/volatile/lxc" -n "$c" -p -H 2>/dev/null
}

# The node "fails" under job ID: xosd is killed (-9), then the job's
# container init, and with it every process in the container.
xos_node_fails() {
	local init
	init=$(job_init_pid "$1")
	[ -n "$init" ] || return 1
	kill -9 "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	XOSD_PID=
	kill -9 "$init"
	xos_wait_for 30 no_loaders 2>/dev/null && return 0
	echo "loaders left after the node failed: $(xos_loader_pids)" >&2
	return 1
}

# no loader (container init) of this test's daemon is left
no_loaders() { [ -z "$(xos_loader_pids)" ]; }

# wait_lines FILE N [TIMEOUT_S (30)]: until FILE has at least N lines
wait_lines() {
	xos_wait_for "${3:-30}" has_lines "$1" "$2" 2>/dev/null && return 0
	echo "$1 has fewer than $2 lines after ${3:-30} s" >&2
	return 1
}
has_lines() { [ -e "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }

# The xos patch level of the CRIU liblxc runs (the first on PATH), 0 if none.
criu_level() {
	local v
	v=$(criu --version 2>/dev/null | sed -n 's/^GitID: .*+xos\([0-9][0-9]*\)$/\1/p')
	echo "${v:-0}"
}
