#!/usr/bin/env bats
# Periodic checkpoints and automatic recovery after a node or daemon failure (issue 4, acceptance 4).

load helpers
bats_require_minimum_version 1.5.0

setup() { xos_start; }
teardown() { xos_teardown; }

versions() { xcheckpoint --list --json "$1" | jq -c '[.[].version]'; }

# wait_newest JOB N: until the job's newest version is at least N
wait_newest() {
	local i v
	for i in $(seq 1 600); do
		v=$(xcheckpoint --list --json "$1" | jq '.[-1].version // 0')
		[ "$v" -ge "$2" ] && return 0
		sleep 0.1
	done
	echo "job $1 has no version $2 yet (newest: $v)" >&2
	return 1
}

@test "--checkpoint-every 2s --keep 2: versions appear and only the newest 2 are kept" {
	id=$(xrun -d --checkpoint-every 2s --keep 2 -- sh -c 'while :; do date +%s%N >>/tmp/t; sleep 0.2; done')
	wait_state "$id" RUNNING
	assert_equal "$(job_field "$id" .checkpoint.every_us)" 2000000
	assert_equal "$(job_field "$id" .checkpoint.keep)" 2
	wait_newest "$id" 1
	wait_newest "$id" 4
	n=$(xcheckpoint --list --json "$id" | jq '.[-1].version')
	assert_equal "$(xcheckpoint --list --json "$id" | jq length)" 2
	assert_equal "$(xcheckpoint --list --json "$id" | jq '.[0].version')" $((n - 1))
	# the job ran on all along
	assert_equal "$(job_field "$id" .state)" RUNNING
}

@test "--restart on-failure: every process of the container killed while xosd is down; xosd restores the job from its newest version and it finishes with the right output" {
	id=$(xrun -d --restart on-failure -- sh -c 'for i in $(seq 1 40); do echo $i; sleep 0.1; done; exit 3')
	wait_state "$id" RUNNING
	for _ in $(seq 1 100); do
		[ "$(xlogs "$id" | wc -l)" -ge 8 ] && break
		sleep 0.05
	done
	xcheckpoint "$id" >/dev/null
	xos_node_fails "$id"
	xosd_launch
	run xwait "$id"
	assert_equal "$status" 3
	run xlogs "$id"
	assert_output "$(seq 1 40)"
	assert_equal "$(job_field "$id" .checkpoint.restores)" 1
	assert_equal "$(job_field "$id" .state)" EXITED
	grep -q "restoring version 1" "$XOS_TMP/xosd.log"
}

@test "without --restart on-failure a lost container is a failure; a job that ended while xosd was down is not restored" {
	id=$(xrun -d -- sleep 100)
	# (long enough to outlive both checkpoints on a loaded machine)
	id2=$(xrun -d --restart on-failure -- sh -c 'sleep 4; exit 5')
	wait_state "$id" RUNNING
	wait_state "$id2" RUNNING
	xcheckpoint "$id" >/dev/null
	xcheckpoint "$id2" >/dev/null
	init=$(job_init_pid "$id")
	kill -9 "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	XOSD_PID=
	kill -9 "$init"
	sleep 5 # job 2 ends on its own meanwhile
	xosd_launch
	assert_equal "$(job_field "$id" .state)" FAILED
	run xwait "$id2"
	assert_equal "$status" 5
	assert_equal "$(job_field "$id2" .checkpoint.restores)" 0
}
