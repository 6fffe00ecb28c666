#!/usr/bin/env bats
# Migration fidelity (issue 11, acceptance 1, last sentence): CRIU's zdtm
# static test programs (tests/integration/zdtm.list, as 82-zdtm.bats runs
# them) as the units of one job that xmigrate moves from node n1 to node n2
# and back; sent SIGTERM on n1 again, every program must report PASS.

load helpers
load nodes
load zdtm-units
bats_require_minimum_version 1.5.0

setup_file() { nodes_certs_setup n1 n2; }

teardown_file() { nodes_certs_teardown; }

setup() {
	nodes_net_setup
}

teardown() {
	nodes_net_teardown
}

running_units() {
	on "$1" xps -a --json "$2" | jq '[.[0].units[] | select(.state == "RUNNING")] | length'
}

@test "acceptance 1: zdtm static programs pass as units of a job moved from n1 to n2 and back" {
	node_start 1 n1
	node_start 2 n2
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
	local id
	id=$(on 1 xrun -d -- sleep 100000)
	on 1 wait_state "$id" RUNNING
	zdtm_units_start "$id" "$(node_tmp 1)/state/volatile/jobs/$id/rootfs/tmp/zdtm" on 1
	run on 1 xmigrate --json "$id" n2
	echo "$output"
	assert_success
	echo "# n1 -> n2: $(jq -c '{frozen_us, transfer_us, downtime_us, bytes}' <<<"$output")" >&3
	assert_equal "$(on 2 job_field "$id" .state)" RUNNING
	assert_equal "$(running_units 2 "$id")" $((${#ZDTM_NAMES[@]} + 1))
	run on 2 xmigrate --json "$id" n1
	echo "$output"
	assert_success
	echo "# n2 -> n1: $(jq -c '{frozen_us, transfer_us, downtime_us, bytes}' <<<"$output")" >&3
	assert_equal "$(on 1 job_field "$id" .state)" RUNNING
	assert_equal "$(on 2 job_field "$id" .state)" MIGRATED
	assert_equal "$(running_units 1 "$id")" $((${#ZDTM_NAMES[@]} + 1))
	on 1 xkill "$id"
	run on 1 xwait "$id"
	zdtm_units_passed "$id" " after n1 -> n2 -> n1" on 1
}
