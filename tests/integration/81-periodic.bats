#!/usr/bin/env bats
# Periodic checkpoints and automatic recovery after a node or daemon failure (issue 4, acceptance 4).

load helpers
bats_require_minimum_version 1.5.0

setup() { xos_start; }
teardown() { xos_teardown; }

log_lines_at_least() { [ "$(xlogs "$1" | wc -l)" -ge "$2" ]; }

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
	# (one listing: a new version may come between two of them)
	run xcheckpoint --list --json "$id"
	assert_success
	n=$(echo "$output" | jq '.[-1].version')
	assert_equal "$(echo "$output" | jq length)" 2
	assert_equal "$(echo "$output" | jq '.[0].version')" $((n - 1))
	# the job ran on all along
	assert_equal "$(job_field "$id" .state)" RUNNING
}

@test "--restart on-failure: every process of the container killed while xosd is down; xosd restores the job from its newest version and it finishes with the right output" {
	# it counts to 10 and waits at gate 1 (checkpointed there), counts on to
	# 20 and waits at gate 2 (the node fails there), then counts to 40
	id=$(xrun -d --restart on-failure -- sh -c 'for i in $(seq 1 40); do echo $i
		[ $i = 10 ] && while [ ! -e /tmp/gate1 ]; do sleep 0.1; done
		[ $i = 20 ] && while [ ! -e /tmp/gate2 ]; do sleep 0.1; done; done; exit 3')
	wait_for 30 log_lines_at_least "$id" 10
	xcheckpoint "$id" >/dev/null
	touch "$(job_rootfs "$id")/tmp/gate1"
	wait_for 30 log_lines_at_least "$id" 20
	xos_node_fails "$id"
	xosd_launch
	# restored from version 1: at gate 1 again, with the output up to 10
	wait_field "$id" .checkpoint.restores 1
	wait_state "$id" RUNNING
	touch "$(job_rootfs "$id")/tmp/gate1" "$(job_rootfs "$id")/tmp/gate2"
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
	# (it ends when the test opens its gate)
	id2=$(xrun -d --restart on-failure -- sh -c "$GATE; exit 5")
	wait_state "$id" RUNNING
	wait_state "$id2" RUNNING
	xcheckpoint "$id" >/dev/null
	xcheckpoint "$id2" >/dev/null
	init=$(job_init_pid "$id")
	kill -9 "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	XOSD_PID=
	kill -9 "$init"
	# job 2 ends on its own meanwhile
	open_gate "$id2"
	wait_for 30 unit_ended "$id2"
	xosd_launch
	assert_equal "$(job_field "$id" .state)" FAILED
	run xwait "$id2"
	assert_equal "$status" 5
	assert_equal "$(job_field "$id2" .checkpoint.restores)" 0
}

@test "--checkpoint-every: a job's periodic checkpoints go on after kill -9 of xosd and its restart" {
	id=$(xrun -d --checkpoint-every 2s --keep 2 -- sh -c 'while :; do date +%s%N >>/tmp/t; sleep 0.2; done')
	wait_state "$id" RUNNING
	wait_newest "$id" 1
	kill -9 "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	XOSD_PID=
	xosd_launch
	# the job is loaded from its record before the checkpointer exists: the
	# restarted xosd must still find it due and make new versions
	n=$(xcheckpoint --list --json "$id" | jq '.[-1].version')
	wait_newest "$id" $((n + 2))
	assert_equal "$(job_field "$id" .state)" RUNNING
}
