#!/usr/bin/env bats
# Fidelity (issue 4, acceptance 1): CRIU's own zdtm static test programs
# (tests/integration/zdtm.list, built by scripts/build-zdtm.sh) run as the units
# of one xos job; the whole job is checkpointed left running, then with --stop,
# restarted, sent SIGTERM, and every program must report PASS.

load helpers
load zdtm-units
bats_require_minimum_version 1.5.0

setup() { xos_start; }
teardown() { xos_teardown; }

@test "acceptance 1: zdtm static programs pass after a checkpoint left running, one with --stop, a restart and SIGTERM" {
	id=$(xrun -d -- sleep 100000)
	wait_state "$id" RUNNING
	# every program is up (its pid file written) before the first checkpoint
	zdtm_units_start "$id" "$XOS_TMP/state/volatile/jobs/$id/rootfs/tmp/zdtm"
	run xcheckpoint "$id"
	assert_success
	assert_equal "$(job_field "$id" .state)" RUNNING
	run xcheckpoint --stop "$id"
	assert_success
	assert_equal "$(job_field "$id" .state)" CHECKPOINTED
	run xrestart "$id"
	assert_success
	# all of them still running after the restart
	assert_equal "$(xps -a --json "$id" | jq '[.[0].units[] | select(.state == "RUNNING")] | length')" \
		$((${#ZDTM_NAMES[@]} + 1))
	xkill "$id"
	run xwait "$id"
	zdtm_units_passed "$id" ""
}
