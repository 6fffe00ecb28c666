#!/usr/bin/env bats
# Checkpoints never hang (issue 10, section 2): jobs holding stopped
# processes and pseudo-terminals checkpoint and restore; dump_timeout aborts a
# dump that takes too long; xkill ends a CHECKPOINTING or RESTORING job.

load helpers
bats_require_minimum_version 1.5.0

setup() { xos_start; }
teardown() { xos_teardown; }

ZDTM_DIR=${XOS_ZDTM_DIR:-/usr/local/lib/xos/zdtm}

root_of() { echo "$XOS_TMP/state/volatile/jobs/$1/rootfs"; }

# wait_file FILE [TIMEOUT_S]: until FILE exists
wait_file() {
	local i
	for i in $(seq 1 $((${2:-20} * 20))); do
		[ -e "$1" ] && return 0
		sleep 0.05
	done
	echo "$1 did not appear" >&2
	return 1
}

# the state letter (R, S, T...) of the process whose pid (in the job) is in
# the job's /tmp/FILE, as a unit of the job sees it
state_in_job() {
	xrun --job "$1" -- sh -c "cut -d' ' -f3 /proc/\$(cat /tmp/$2)/stat"
}

# A unit whose child stops itself, then (once continued) writes /tmp/resumed.
STOPPED='sh -c "kill -STOP \$\$; echo resumed >/tmp/resumed; exec sleep 300" & echo $! >/tmp/stopped.pid; wait'

@test "a job with a stopped process is checkpointed, and restored stopped; SIGCONT resumes it" {
	id=$(xrun -d -- sh -c "$STOPPED")
	wait_state "$id" RUNNING
	wait_file "$(root_of "$id")/tmp/stopped.pid"
	for _ in $(seq 1 100); do
		[ "$(state_in_job "$id" stopped.pid)" = T ] && break
		sleep 0.05
	done
	assert_equal "$(state_in_job "$id" stopped.pid)" T
	# (before: CRIU hung in ptrace_attach on the frozen cgroup, for ever)
	run timeout 60 xcheckpoint "$id"
	assert_success
	assert_equal "$(job_field "$id" .state)" RUNNING
	assert_equal "$(state_in_job "$id" stopped.pid)" T
	run timeout 60 xcheckpoint --stop "$id"
	assert_success
	assert_equal "$(job_field "$id" .state)" CHECKPOINTED
	run timeout 60 xrestart "$id"
	assert_success
	assert_equal "$(job_field "$id" .state)" RUNNING
	assert_equal "$(state_in_job "$id" stopped.pid)" T
	[ ! -e "$(root_of "$id")/tmp/resumed" ] || fail "the stopped process ran before SIGCONT"
	xrun --job "$id" -- sh -c 'kill -CONT $(cat /tmp/stopped.pid)'
	wait_file "$(root_of "$id")/tmp/resumed"
	assert_equal "$(cat "$(root_of "$id")/tmp/resumed")" resumed
}

COUNTER='i=0; while :; do i=$((i+1)); echo $i >>/tmp/count; sleep 0.1; done'

count_of() { wc -l <"$(root_of "$1")/tmp/count"; }

# the job runs (it counts on) and its container is not frozen
assert_running_thawed() {
	local id=$1 a f
	assert_equal "$(job_field "$id" .state)" RUNNING
	a=$(count_of "$id")
	for _ in $(seq 1 100); do
		[ "$(count_of "$id")" -gt "$a" ] && break
		sleep 0.05
	done
	[ "$(count_of "$id")" -gt "$a" ] || fail "job $id does not count on"
	while read -r f; do
		[ -z "$f" ] || assert_equal "$(cat "$f")" THAWED
	done < <(find /sys/fs/cgroup/freezer -path "*xos-$id*" -name freezer.state 2>/dev/null)
}

# A criu first on xosd's PATH that, for ACTION (dump or restore), records
# its arguments in $XOS_TMP/criu.args, freezes the container's freezer cgroup
# (a dump) and then hangs; else it runs the real CRIU.
hanging_criu() {
	local action=$1 real
	real=$(command -v criu)
	mkdir -p "$XOS_TMP/fakebin"
	cat >"$XOS_TMP/fakebin/criu" <<-EOF
		#!/bin/sh
		if [ "\$1" = $action ]; then
			echo "\$*" >"$XOS_TMP/criu.args"
			t= prev=
			for a; do
				[ "\$prev" = -t ] && t=\$a
				prev=\$a
			done
			if [ -n "\$t" ]; then
				cg=\$(sed -n 's/^[0-9]*:freezer://p' /proc/\$t/cgroup)
				echo FROZEN >"/sys/fs/cgroup/freezer\$cg/freezer.state"
			fi
			touch "$XOS_TMP/criu.hangs"
			exec sleep 600
		fi
		exec $real "\$@"
	EOF
	chmod 0755 "$XOS_TMP/fakebin/criu"
}

# no process of the hanging criu is left
assert_no_hanging_criu() {
	for _ in $(seq 1 100); do
		pgrep -f "sleep 600" | while read -r p; do
			grep -qs "$XOS_TMP" "/proc/$p/environ" && echo "$p"
		done | grep -q . || return 0
		sleep 0.05
	done
	fail "the hanging criu is still there"
}

@test "dump_timeout: a dump that hangs is aborted, the job thawed and RUNNING, the version discarded, the error says so" {
	xosd_stop
	printf 'dump_timeout = 2s\n' >"$XOS_TMP/xosd.conf"
	hanging_criu dump
	PATH="$XOS_TMP/fakebin:$PATH" xosd_launch --config "$XOS_TMP/xosd.conf"
	id=$(xrun -d -- sh -c "$COUNTER")
	wait_state "$id" RUNNING
	wait_file "$(root_of "$id")/tmp/count"
	run timeout 60 xcheckpoint "$id"
	assert_failure 1
	assert_output --partial "took longer than dump_timeout (2 s) and was aborted"
	assert_output --partial "version 1 was discarded"
	[ -e "$XOS_TMP/criu.hangs" ] || fail "the dump never reached CRIU"
	# liblxc's --freeze-cgroup does not reach CRIU (xosd's criu shim)
	refute_output --partial -- "--freeze-cgroup"
	run cat "$XOS_TMP/criu.args"
	refute_output --partial -- "--freeze-cgroup"
	assert_output --partial -- "-t "
	assert_no_hanging_criu
	assert_running_thawed "$id"
	[ -z "$(find "$XOS_TMP/state/checkpoints/$id" -maxdepth 1 -name '.new-*')" ] ||
		fail "a partial version is left"
	run xcheckpoint --list --json "$id"
	assert_equal "$(echo "$output" | jq -c '[.[].version]')" "[]"
	# the next dump (no longer hanging) works
	xosd_stop
	xosd_launch --config "$XOS_TMP/xosd.conf"
	run timeout 60 xcheckpoint "$id"
	assert_success
	assert_running_thawed "$id"
}

@test "xkill of a CHECKPOINTING job aborts the dump; the job ends KILLED" {
	xosd_stop
	hanging_criu dump
	PATH="$XOS_TMP/fakebin:$PATH" xosd_launch
	id=$(xrun -d -- sh -c "$COUNTER")
	wait_state "$id" RUNNING
	timeout 60 xcheckpoint "$id" >"$XOS_TMP/ckpt.out" 2>&1 &
	local ckpt=$!
	wait_state "$id" CHECKPOINTING
	wait_file "$XOS_TMP/criu.hangs"
	run xkill "$id"
	assert_success
	wait_state "$id" KILLED 30
	assert_equal "$(job_field "$id" .units[0].signal)" 15
	run wait "$ckpt"
	assert_failure 1
	run cat "$XOS_TMP/ckpt.out"
	assert_output --partial "aborted by xkill"
	assert_no_hanging_criu
	[ -z "$(find "$XOS_TMP/state/checkpoints/$id" -maxdepth 1 -name '.new-*')" ] ||
		fail "a partial version is left"
}

@test "xkill of a RESTORING job aborts the restore; the job ends KILLED, its versions stay" {
	id=$(xrun -d -- sh -c "$COUNTER")
	wait_state "$id" RUNNING
	run timeout 60 xcheckpoint --stop "$id"
	assert_success
	xosd_stop
	hanging_criu restore
	PATH="$XOS_TMP/fakebin:$PATH" xosd_launch
	timeout 60 xrestart "$id" >"$XOS_TMP/restart.out" 2>&1 &
	local rst=$!
	wait_state "$id" RESTORING
	wait_file "$XOS_TMP/criu.hangs"
	run xkill "$id"
	assert_success
	wait_state "$id" KILLED 30
	run wait "$rst"
	assert_failure 1
	run cat "$XOS_TMP/restart.out"
	assert_output --partial "aborted by xkill"
	assert_no_hanging_criu
	run xcheckpoint --list --json "$id"
	assert_equal "$(echo "$output" | jq -c '[.[].version]')" "[1]"
}
