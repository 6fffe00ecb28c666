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
