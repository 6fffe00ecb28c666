#!/usr/bin/env bats
# Several units in one job container.

load helpers
bats_require_minimum_version 1.5.0

setup() { xos_start; }
teardown() { xos_teardown; }

@test "xrun --job adds a unit to the same container; it ends after the last unit" {
	# units 1 and 3 wait at gates of their own: they end when the test says so
	id=$(xrun -d -- sh -c 'echo first-unit; while [ ! -e /tmp/gate1 ]; do sleep 0.1; done; exit 4')
	wait_state "$id" RUNNING
	# the second unit sees the first unit's processes
	run xrun --job "$id" -- sh -c 'ps -e -o args= | grep -c "[e]cho first-unit"; exit 5'
	assert_equal "$status" 5
	[ "${lines[0]}" -ge 1 ]
	# a third unit outlives the first
	u3=$(xrun -d --job "$id" -- sh -c 'while [ ! -e /tmp/gate3 ]; do sleep 0.1; done; exit 6')
	assert_equal "$u3" "$id"
	wait_field "$id" '.units[2].state' RUNNING
	touch "$(job_rootfs "$id")/tmp/gate1"
	wait_field "$id" '.units[0].state' EXITED
	# unit 1 has ended, unit 3 still runs: the job is still running
	assert_equal "$(job_field "$id" .state)" RUNNING
	assert_equal "$(job_field "$id" '.units[2].state')" RUNNING
	touch "$(job_rootfs "$id")/tmp/gate3"
	run xwait "$id"
	assert_equal "$status" 4
	assert_equal "$(job_field "$id" '.units[0].exit_code')" 4
	assert_equal "$(job_field "$id" '.units[1].exit_code')" 5
	assert_equal "$(job_field "$id" '.units[2].exit_code')" 6
	assert_equal "$(job_field "$id" '.units | length')" 3
	# the container is gone once the last unit ended
	wait_for 30 no_loaders
	run xrun --job "$id" -- true
	assert_failure 125
	assert_output --partial "running job"
}

@test "xlogs --unit reads one unit's output" {
	id=$(xrun -d -- sh -c "echo u1; $GATE")
	wait_state "$id" RUNNING
	xrun --job "$id" -- echo u2 >/dev/null
	open_gate "$id"
	xwait "$id"
	run xlogs --unit 2 "$id"
	assert_output u2
	run xlogs "$id"
	assert_output u1
}
