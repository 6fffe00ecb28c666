#!/usr/bin/env bats
# xosd can die at any moment: jobs keep running, completions are not lost.

load helpers
bats_require_minimum_version 1.5.0

setup() { xos_start; }
teardown() { xos_teardown; }

@test "kill -9 of xosd while 20 jobs run and some end: all accounted for after restart" {
	declare -A code
	short=()
	# the short ones wait at their gate: they end when the test says so
	for i in $(seq 1 10); do
		id=$(xrun -d -- sh -c "$GATE; exit $i")
		code[$id]=$i
		short+=("$id")
	done
	long=()
	for i in $(seq 1 10); do
		long+=("$(xrun -d -- sleep 120)")
	done
	for id in "${short[@]}" "${long[@]}"; do wait_state "$id" RUNNING; done
	assert_equal "$(xps -a --json | jq '[.[] | select(.state == "RUNNING")] | length')" 20
	declare -A init
	for id in "${long[@]}"; do init[$id]=$(job_init_pid "$id"); done

	kill -9 "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	XOSD_PID=
	# the short jobs end while no daemon runs
	for id in "${short[@]}"; do open_gate "$id"; done
	for id in "${short[@]}"; do wait_for 30 unit_ended "$id"; done
	xosd_launch

	# every job is there exactly once
	run xps -a --json
	assert_equal "$(echo "$output" | jq length)" 20
	assert_equal "$(echo "$output" | jq -r '.[].id' | sort -u | wc -l)" 20
	# the ended ones with their own exit codes
	for id in "${!code[@]}"; do
		run xwait "$id"
		assert_equal "$status" "${code[$id]}"
		assert_equal "$(job_field "$id" .state)" EXITED
		assert_equal "$(job_field "$id" '.units | length')" 1
	done
	# the running ones keep running, in the same containers
	for id in "${long[@]}"; do
		assert_equal "$(job_field "$id" .state)" RUNNING
		assert_equal "$(job_init_pid "$id")" "${init[$id]}"
	done
	# and are still under control
	xkill -s KILL "${long[@]}"
	for id in "${long[@]}"; do
		run xwait "$id"
		assert_equal "$status" 137
	done
	assert_equal "$(xps -a --json | jq '[.[] | select(.state == "RUNNING")] | length')" 0
}

@test "a job that ends while xosd is stopped (SIGTERM) is collected at restart; xlogs still works" {
	id=$(xrun -d -- sh -c "echo before; $GATE; echo after; exit 9")
	wait_state "$id" RUNNING
	wait_for 30 grep -qs before "$XOS_TMP/state/jobs/$id/xos/spool/1.out"
	xosd_stop
	open_gate "$id"
	wait_for 30 unit_ended "$id"
	xosd_launch
	run xwait "$id"
	assert_equal "$status" 9
	run xlogs "$id"
	assert_output $'before\nafter'
}

@test "xrun attached across a daemon restart says the job goes on" {
	xrun -- sh -c "echo attached; $GATE; exit 3" >"$XOS_TMP/out" 2>&1 &
	pid=$!
	# xrun is attached once the job's first output came through it
	wait_for 30 grep -q attached "$XOS_TMP/out"
	id=$(xps -q | head -1)
	[ -n "$id" ]
	id=$(job_field "$id" .id)
	kill -9 "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 125
	grep -q "the job goes on" "$XOS_TMP/out"
	open_gate "$id"
	xosd_launch
	run xwait "$id"
	assert_equal "$status" 3
}

@test "without --foreground xosd sets up, detaches, logs to its state directory and stops on SIGTERM" {
	xosd_stop
	run "$XOS_BUILD/xosd" --config /dev/null --state-dir "$XOS_TMP/state" \
		--run-dir "$XOS_TMP/run" --loader "$XOS_BUILD/xos-loader"
	assert_success
	XOSD_PID=$(pgrep -f "xosd --config /dev/null --state-dir $XOS_TMP/state")
	[ -n "$XOSD_PID" ]
	run xrun -- echo detached
	assert_output detached
	grep -q "Listening on $XOS_SOCKET" "$XOS_TMP/state/xosd.log"
	kill "$XOSD_PID"
	wait_for 30 pid_gone "$XOSD_PID"
	XOSD_PID=
	grep -q "Stopping; jobs keep running" "$XOS_TMP/state/xosd.log"
	# a start-up error is still reported on stderr with status 1 (a second daemon)
	xosd_launch
	run "$XOS_BUILD/xosd" --config /dev/null --state-dir "$XOS_TMP/state" \
		--run-dir "$XOS_TMP/run2" --loader "$XOS_BUILD/xos-loader"
	assert_failure 1
	assert_output --partial "Another xosd uses state directory"
}
