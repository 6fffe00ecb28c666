#!/usr/bin/env bats
# Several units in one job container.

load helpers
bats_require_minimum_version 1.5.0

setup() { xos_start; }
teardown() { xos_teardown; }

@test "xrun --job adds a unit to the same container; it ends after the last unit" {
	id=$(xrun -d -- sh -c 'echo first-unit; sleep 2; exit 4')
	wait_state "$id" RUNNING
	# the second unit sees the first unit's processes
	run xrun --job "$id" -- sh -c 'ps -e -o args= | grep -c "[e]cho first-unit\|[s]leep 2"; exit 5'
	assert_equal "$status" 5
	[ "${lines[0]}" -ge 1 ]
	# a third unit outlives the first
	u3=$(xrun -d --job "$id" -- sh -c 'sleep 3; exit 6')
	assert_equal "$u3" "$id"
	sleep 2.3
	# unit 1 has ended, unit 3 still runs: the job is still running
	assert_equal "$(job_field "$id" '.units[0].state')" EXITED
	assert_equal "$(job_field "$id" .state)" RUNNING
	run xwait "$id"
	assert_equal "$status" 4
	assert_equal "$(job_field "$id" '.units[0].exit_code')" 4
	assert_equal "$(job_field "$id" '.units[1].exit_code')" 5
	assert_equal "$(job_field "$id" '.units[2].exit_code')" 6
	assert_equal "$(job_field "$id" '.units | length')" 3
	# the container is gone once the last unit ended
	for _ in $(seq 1 50); do [ -z "$(xos_loader_pids)" ] && break; sleep 0.1; done
	[ -z "$(xos_loader_pids)" ]
	run xrun --job "$id" -- true
	assert_failure 125
	assert_output --partial "running job"
}

@test "xlogs --unit reads one unit's output" {
	id=$(xrun -d -- sh -c 'echo u1; sleep 1')
	wait_state "$id" RUNNING
	xrun --job "$id" -- echo u2 >/dev/null
	xwait "$id"
	run xlogs --unit 2 "$id"
	assert_output u2
	run xlogs "$id"
	assert_output u1
}
