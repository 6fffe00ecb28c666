#!/usr/bin/env bats
# Lossless preemption (issue 14, acceptance 3): a --preemptible job is stopped
# at a checkpoint for a job of higher priority, shown as PREEMPTED, and
# restored when there is room again, ending with the output it would have
# had; a preemption whose checkpoint fails leaves it running. Also the
# capacity keys' old names (node_cpus...).

load helpers
bats_require_minimum_version 1.5.0

# sched_start LINE...: a private xosd whose xosd.conf holds these lines
sched_start() {
	XOS_TMP=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.XXXXXX")
	chmod 0711 "$XOS_TMP"
	export XOS_TMP
	export XOS_SOCKET="$XOS_TMP/run/xosd.sock"
	printf '%s\n' "$@" >"$XOS_TMP/xosd.conf"
	# (each pass over the queue kept between passes is checked against a
	# pass that walks every job: a difference is logged)
	XOS_SCHED_SELFCHECK=1 xosd_launch --config "$XOS_TMP/xosd.conf"
}

teardown() { sched_teardown; }

# counter N: a job's script that counts 1 to N on stdout, a line every 0.1 s
counter() { echo "i=0; while [ \$i -lt $1 ]; do i=\$((i+1)); echo \$i; sleep 0.1; done"; }

lines_of() { xlogs "$1" 2>/dev/null | wc -l; }
has_counted() { [ "$(lines_of "$1")" -ge "$2" ]; }
reason_has() { job_field "$1" .reason | grep -qF -- "$2"; }

@test "a --preemptible job is PREEMPTED by a higher-priority job, survives kill -9 of xosd, then resumes and counts every number exactly once" {
	sched_start 'capacity_cpus = 1'
	xrun -d --cpus 1 --preemptible --name low -- sh -c "$(counter 60)" >/dev/null
	wait_state low RUNNING
	wait_for 30 has_counted low 5
	assert_equal "$(job_field low .sched.preemptible)" true
	xrun -d --cpus 1 --priority 2000 --name high -- sh -c "$GATE; echo high-done" >/dev/null
	wait_state low PREEMPTED 60
	wait_state high RUNNING
	# PREEMPTED while the high-priority job runs, with the reason
	reason_has low "preempted by job $(job_field high .id | cut -c1-12)"
	assert_equal "$(job_field low .state)" PREEMPTED
	run xps
	assert_output --regexp 'low +[a-z]+ +PREEMPTED +preempted by job'
	[ "$(xcheckpoint --list --json low | jq length)" -ge 1 ]
	# durable: xosd killed with SIGKILL and started again, still PREEMPTED
	kill -9 "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	XOS_SCHED_SELFCHECK=1 xosd_launch --config "$XOS_TMP/xosd.conf"
	assert_equal "$(job_field low .state)" PREEMPTED
	assert_equal "$(job_field high .state)" RUNNING
	# the high-priority job ends: the preempted one is restored and ends
	open_gate "$(job_field high .id)"
	wait_state high EXITED
	wait_state low EXITED 120
	assert_equal "$(xlogs low)" "$(seq 1 60)"
	assert_equal "$(job_field low .exit_code)" 0
	grep -q "Preempting job $(job_field low .id)" "$XOS_TMP/xosd.log"
	grep -q "Restoring job $(job_field low .id) from version" "$XOS_TMP/xosd.log"
}

@test "a job of equal or lower priority, or a job that is not --preemptible, is never preempted" {
	sched_start 'capacity_cpus = 1'
	xrun -d --cpus 1 --name plain -- sh -c "$GATE" >/dev/null
	xrun -d --cpus 1 --preemptible --priority 500 --name lowprio -- true >/dev/null
	wait_state plain RUNNING
	xrun -d --cpus 1 --priority 2000 --name high -- true >/dev/null
	assert_equal "$(job_field high .state)" QUEUED
	reason_has high "waiting for 1 cpu"
	open_gate "$(job_field plain .id)"
	wait_state high EXITED 60
	wait_state lowprio EXITED 60
	# lowprio now runs alone; an equal-priority job does not preempt it
	xrun -d --cpus 1 --preemptible --name p1 -- sh -c "$GATE" >/dev/null
	wait_state p1 RUNNING
	xrun -d --cpus 1 --name same -- true >/dev/null
	run xps --json same
	assert_equal "$(echo "$output" | jq -r '.[0].state')" QUEUED
	assert_equal "$(job_field p1 .state)" RUNNING
	open_gate "$(job_field p1 .id)"
	wait_state same EXITED 60
}

@test "CRIU failing the preemption's checkpoint (CRIU_FAULT): the victim runs on, the high-priority job stays QUEUED saying why" {
	XOS_TMP=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.XXXXXX")
	chmod 0711 "$XOS_TMP"
	export XOS_TMP
	export XOS_SOCKET="$XOS_TMP/run/xosd.sock"
	printf 'capacity_cpus = 1\n' >"$XOS_TMP/xosd.conf"
	# fault 3: CRIU fails while it dumps the tasks' memory pages
	CRIU_FAULT=3 XOS_SCHED_SELFCHECK=1 xosd_launch --config "$XOS_TMP/xosd.conf"
	xrun -d --cpus 1 --preemptible --name low -- sh -c "$(counter 100000)" >/dev/null
	wait_state low RUNNING
	wait_for 30 has_counted low 3
	xrun -d --cpus 1 --priority 2000 --name high -- true >/dev/null
	wait_for 60 reason_has high "preempting job $(job_field low .id | cut -c1-12) failed, it runs on"
	reason_has high "Checkpoint of job"
	assert_equal "$(job_field high .state)" QUEUED
	assert_equal "$(job_field low .state)" RUNNING
	a=$(lines_of low)
	wait_for 30 has_counted low $((a + 3))
	grep -q "Preemption of job $(job_field low .id) failed; it runs on" "$XOS_TMP/xosd.log"
}

@test "xrestart of a stopped job goes through admission: it waits for room, then is restored and answered" {
	sched_start 'capacity_cpus = 1'
	xrun -d --cpus 1 --name stopped -- sh -c "$(counter 30)" >/dev/null
	wait_state stopped RUNNING
	wait_for 30 has_counted stopped 3
	xcheckpoint --stop stopped >/dev/null
	assert_equal "$(job_field stopped .state)" CHECKPOINTED
	xrun -d --cpus 1 --name busy -- sh -c "$GATE" >/dev/null
	wait_state busy RUNNING
	xrestart stopped >"$XOS_TMP/restart.out" 2>&1 &
	restart=$!
	wait_for 30 reason_has stopped "xrestart waits for room: waiting for 1 cpu"
	# not restored while the node is full
	assert_equal "$(job_field stopped .state)" CHECKPOINTED
	kill -0 "$restart"
	open_gate "$(job_field busy .id)"
	wait_state busy EXITED
	wait_state stopped EXITED 60
	wait "$restart"
	assert_equal "$(xlogs stopped)" "$(seq 1 30)"
}

@test "the old capacity key names (node_cpus, node_memory, node_jobs) still work, with a warning in xosd.log" {
	sched_start 'node_cpus = 1' 'node_memory = 1G' 'node_jobs = 3'
	run xqueue --json
	assert_success
	assert_equal "$(echo "$output" | jq -c '.capacity')" '{"cpus":1000,"memory":1073741824,"jobs":3}'
	grep -q "xosd.conf: node_cpus is the old name of capacity_cpus" "$XOS_TMP/xosd.log"
	grep -q "xosd.conf: node_jobs is the old name of capacity_jobs" "$XOS_TMP/xosd.log"
}
