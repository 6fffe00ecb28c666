# CRIU's zdtm static programs, each as an xos job of its own, through a
# control run or a checkpoint/restart (tests/zdtm/run.sh, make zdtm, and
# tests/integration/88-zdtm-jobs.bats). Needs a running private xosd
# (XOS_TMP and XOS_SOCKET as tests/integration/helpers.bash sets them) and the
# CLI on PATH. Every wait is bounded.
# shellcheck shell=bash

ZDTM_DIR=${XOS_ZDTM_DIR:-/usr/local/lib/xos/zdtm}
ZDTM_DISK=${ZDTM_DISK:-256M}
# seconds: a program starting, a checkpoint or restart, a program's end
ZDTM_START_S=${ZDTM_START_S:-30}
ZDTM_STEP_S=${ZDTM_STEP_S:-90}
ZDTM_END_S=${ZDTM_END_S:-60}

# The shell of the job: start the program (it daemonizes once ready), pass
# SIGTERM on, wait for it to end and print its verdict. It polls slowly: a
# shell forking sleeps fast makes a dump now and then meet a task CRIU
# cannot seize.
zdtm_unit_script() {
	local n=$1 args=$2 w=/tmp/zdtm
	args=${args//@/$n}
	printf '%s' "mkdir -p $w && cd $w || exit 1
export ENV_00_TEST=xos
$ZDTM_DIR/$n $args --pidfile=$w/$n.pid --outfile=$w/$n.out || { echo 'start failed:'; tail -n 5 $w/$n.out; exit 1; }
p=\$(cat $w/$n.pid)
trap 'kill -TERM \$p 2>/dev/null' TERM
while kill -0 \$p 2>/dev/null; do sleep 2; done
tail -n 5 $w/$n.out"
}

zdtm_jf() { xps -a --json "$1" 2>/dev/null | jq -r ".[0]$2" 2>/dev/null; }

# zdtm_start NAME ARGS: a new job running NAME; prints its id
zdtm_start() {
	xrun -d --disk "$ZDTM_DISK" -- sh -c "$(zdtm_unit_script "$1" "$2")"
}

# zdtm_wait_started ID NAME: until the program wrote its pid file (0), or
# its job ended or the time is up (1)
zdtm_wait_started() {
	local f="$XOS_TMP/state/volatile/jobs/$1/rootfs/tmp/zdtm/$2.pid" i st
	for i in $(seq 1 $((ZDTM_START_S * 5))); do
		[ -s "$f" ] && return 0
		if [ $((i % 5)) = 0 ]; then
			st=$(zdtm_jf "$1" .state)
			case $st in RUNNING | STARTING | CREATED | "") ;; *) return 1 ;; esac
		fi
		sleep 0.2
	done
	return 1
}

# zdtm_wait_state ID STATE SECONDS
zdtm_wait_state() {
	local i
	for i in $(seq 1 $(($3 * 5))); do
		[ "$(zdtm_jf "$1" .state)" = "$2" ] && return 0
		sleep 0.2
	done
	return 1
}

# zdtm_wait_end ID SECONDS: the job ended (xwait exits with the job's status)
zdtm_wait_end() {
	timeout "$2" xwait "$1" >/dev/null 2>&1
	[ $? != 124 ]
}

# zdtm_kernel_broken NAME: why NAME cannot pass on the running kernel
# (nothing: it can). Linux 6.17 and later drop data that was in the window
# when it was sent to a restored TCP connection whose receive window had been
# retracted (full queues: the socket-tcpbuf programs); the restored reader
# then waits for ever. CRIU's own CI skips these programs on such kernels
# (its pull request 3042); a restore of the same images passes on older ones.
# Told by the version, not probed: the only probe is the program itself (a
# restore of full TCP queues whose reader then hangs), which is what this
# spares the run; a kernel that has the fix is to be excepted here by its
# version once one exists.
zdtm_kernel_broken() {
	local v maj min
	v=$(uname -r)
	maj=${v%%.*}
	min=${v#*.}
	min=${min%%[!0-9]*}
	case $1 in
	socket-tcpbuf*)
		if [ "$maj" -gt 6 ] || { [ "$maj" = 6 ] && [ "${min:-0}" -ge 17 ]; }; then
			echo "Linux $maj.$min drops in-window data sent to a restored TCP connection with full queues (a kernel regression since 6.17; CRIU's CI skips it)"
		fi
		;;
	esac
}

# zdtm_diag ID NAME: what a job that does not end is doing, on one line: the
# program's last words, each of its processes (pid, command, state, where it
# sleeps) and its TCP sockets (queues)
zdtm_diag() {
	local id=$1 n=$2 f p procs="" out
	out="out: $(tail -n 3 "$XOS_TMP/state/volatile/jobs/$id/rootfs/tmp/zdtm/$n.out" 2>/dev/null | tr '\n' ' ')"
	for f in /sys/fs/cgroup/pids/lxc.payload.xos-"$id" /sys/fs/cgroup/lxc.payload.xos-"$id"; do
		[ -r "$f/cgroup.procs" ] && procs=$(cat "$f/cgroup.procs") && break
	done
	for p in $procs; do
		out+="; $p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-40)"
		out+=" $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) $(cat "/proc/$p/wchan" 2>/dev/null)"
	done
	p=${procs%%$'\n'*}
	[ -z "$p" ] || out+="; tcp: $(nsenter -t "$p" -n ss -tn 2>/dev/null | tail -n +2 | tr -s ' ' | tr '\n' '|')"
	echo "$out" | cut -c1-1500
}

# The last lines the job printed, on one line.
zdtm_tail() { xlogs "$1" 2>/dev/null | tail -n "${2:-3}" | tr '\n' ' ' | cut -c1-300; }

# zdtm_finish ID NAME: SIGTERM to the program alone (as CRIU's runner sends
# it: its helper processes must live on until it checks), the job ends, the
# program said PASS; else prints the step and why, and fails
zdtm_finish() {
	local id=$1
	xrun --job "$id" -- sh -c "kill -TERM \$(cat /tmp/zdtm/$2.pid)" >/dev/null 2>&1 ||
		xkill "$id" >/dev/null 2>&1
	if ! zdtm_wait_end "$id" "$ZDTM_END_S"; then
		echo "sigterm: the job did not end within ${ZDTM_END_S}s; $(zdtm_diag "$id" "$2")"
		return 1
	fi
	xlogs "$id" 2>/dev/null | grep -q PASS && return 0
	echo "verify: $(zdtm_tail "$id")"
	return 1
}

# Ends a job whatever its state, and drops its versions.
zdtm_cleanup() {
	local id=$1 v
	[ -n "$id" ] || return 0
	xkill -s KILL "$id" >/dev/null 2>&1 || true
	timeout 30 xwait "$id" >/dev/null 2>&1 || true
	for v in $(xcheckpoint --list --json "$id" 2>/dev/null | jq -r '.[].version' 2>/dev/null); do
		xcheckpoint --delete "$v" "$id" >/dev/null 2>&1 || true
	done
	rm -rf "${XOS_TMP:?}/state/checkpoints/$id"
}

# zdtm_control NAME ARGS: the program run as a job without checkpoint; prints
# why it cannot run and fails, or succeeds
zdtm_control() {
	local n=$1 id r=0
	id=$(zdtm_start "$n" "$2" 2>&1) || {
		echo "xrun: $id"
		return 1
	}
	if ! zdtm_wait_started "$id" "$n"; then
		echo "start: $(zdtm_tail "$id")"
		r=1
	elif ! zdtm_finish "$id" "$n"; then
		r=1
	fi
	zdtm_cleanup "$id"
	return $r
}

# zdtm_step ID WHAT COMMAND...: a checkpoint or restart step, bounded
zdtm_step() {
	local id=$1 what=$2 out
	shift 2
	if ! out=$(timeout "$ZDTM_STEP_S" "$@" "$id" 2>&1); then
		echo "$what: $(echo "$out" | tail -n 2 | tr '\n' ' ' | cut -c1-400)"
		return 1
	fi
}

# zdtm_cr NAME ARGS MODE: MODE running (checkpoint left running, SIGKILL,
# restart), stop (checkpoint --stop, restart) or both (running, then stop on
# the restored job); then SIGTERM and PASS. Prints the failed step and why.
zdtm_cr() {
	local n=$1 mode=$3 id r=1
	id=$(zdtm_start "$n" "$2" 2>&1) || {
		echo "xrun: $id"
		return 1
	}
	if ! zdtm_wait_started "$id" "$n"; then
		echo "start: $(zdtm_tail "$id")"
	elif [ "$mode" != stop ] && ! zdtm_cr_running "$id"; then
		:
	elif [ "$mode" != running ] && ! zdtm_cr_stop "$id"; then
		:
	elif zdtm_finish "$id" "$n"; then
		r=0
	fi
	zdtm_cleanup "$id"
	return $r
}

zdtm_cr_running() {
	local id=$1
	zdtm_step "$id" checkpoint xcheckpoint || return 1
	if [ "$(zdtm_jf "$id" .state)" != RUNNING ]; then
		echo "checkpoint: the job is $(zdtm_jf "$id" .state) after it: $(zdtm_tail "$id")"
		return 1
	fi
	xkill -s KILL "$id" >/dev/null 2>&1
	zdtm_wait_end "$id" 30 || {
		echo "kill: the job did not end"
		return 1
	}
	zdtm_step "$id" restart xrestart || return 1
	zdtm_running_after "$id" restart
}

zdtm_cr_stop() {
	local id=$1
	zdtm_step "$id" "checkpoint --stop" xcheckpoint --stop || return 1
	zdtm_step "$id" "restart after --stop" xrestart || return 1
	zdtm_running_after "$id" "restart after --stop"
}

# The restored job still runs (its program did not die of the restore).
zdtm_running_after() {
	if ! zdtm_wait_state "$1" RUNNING 10; then
		echo "$2: the job is $(zdtm_jf "$1" .state): $(zdtm_tail "$1")"
		return 1
	fi
}
