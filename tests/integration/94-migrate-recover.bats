#!/usr/bin/env bats
# Recovery on another node (issue 11, item 4 and acceptance 4; DECISIONS
# (aq)): nodes n1 and n2, xosd daemons in network namespaces of their own,
# share one checkpoint_dir (as NFS would). A job whose node is gone is
# restarted on n2 from its newest version, by hand (xrestart) or on its own
# (--restart on-failure); n1, back, does not run it a second time.

load helpers
load nodes
bats_require_minimum_version 1.5.0

setup_file() { nodes_certs_setup n1 n2; }

teardown_file() { nodes_certs_teardown; }

setup() {
	nodes_net_setup
	SHARED=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.shared.XXXXXX")
	chmod 0700 "$SHARED"
}

teardown() {
	local rc=0
	nodes_net_teardown || rc=1
	rm -rf "$SHARED"
	return "$rc"
}

# n1 and n2 up, seeing each other, one checkpoint store
two_nodes_shared() {
	local conf
	conf=$(printf 'checkpoint_dir = %s\nnode_recover_after = 2s' "$SHARED")
	node_start 1 n1 "$conf"
	node_start 2 n2 "$conf"
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
}

state_is() { [ "$(where "$1" "$2")" = "$3" ]; }
not_running() { ! state_is "$1" "$2" RUNNING; }
no_container_on() { [ ! -d "$(node_tmp "$1")/state/volatile/lxc/xos-$2" ]; }

COUNTER='i=0; while :; do i=$((i+1)); echo $i >>/tmp/count; sleep 0.1; done'

# counting goes on on node I from where the version left it
counts_on() {
	local r n
	r=$(jobroot "$1" "$2")
	wait_lines "$r/tmp/count" 1
	n=$(wc -l <"$r/tmp/count")
	wait_lines "$r/tmp/count" $((n + 3))
	diff <(seq 1 $((n + 3))) <(head -n $((n + 3)) "$r/tmp/count")
}

# node I is gone: its xosd killed, then the job's container (liblxc's
# command socket is in the node's network namespace: lxc-info there)
node_gone() {
	local init
	node_use "$1"
	init=$(ip netns exec "${NS}n$1" lxc-info -P "$XOS_TMP/state/volatile/lxc" -n "xos-$2" -p -H)
	[ -n "$init" ]
	kill -9 "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	XOSD_PID=
	kill -9 "$init"
	xos_wait_for 30 no_loaders
}

@test "xrestart on n2 of a job whose node n1 is gone: refused while n1 is up, then restored there from the shared store; n1 back does not run it" {
	two_nodes_shared
	local id
	id=$(on 1 xrun -d --net none -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$id")/tmp/count" 3
	run -0 on 1 xcheckpoint "$id"
	# the store's holder record names the node that runs the job
	run -0 cat "$SHARED/$id/holder"
	assert_output --regexp "^[0-9a-f]{16} n1 live$"
	# n1 is up: restarting the job on n2 would make two
	run on 2 xrestart "$id"
	assert_failure
	assert_output --partial "it runs on node n1, which is up: xmigrate it from there"
	assert_equal "$(where 2 "$id")" absent
	node_gone 1 "$id"
	xos_wait_for 30 peer_is 2 n1 down
	# refused until n1's lease in the store has been still for node_recover_after
	xos_wait_for 30 on 2 xrestart "$id"
	xos_wait_for 60 state_is 2 "$id" RUNNING
	counts_on 2 "$id"
	run -0 cat "$SHARED/$id/holder"
	assert_output --regexp "^[0-9a-f]{16} n2 live$"
	# n1 comes back: it learns the job is n2's, shows where it went, runs nothing
	node_launch 1
	assert_equal "$(where 1 "$id")" MIGRATED
	assert_equal "$(on 1 job_field "$id" .reason)" "taken over by node n2"
	run on 1 xwait "$id"
	assert_equal "$status" 125
	assert_output "xwait: Job ${id:0:12} moved to node n2: wait for it there"
	no_container_on 1 "$id"
	assert_equal "$(where 2 "$id")" RUNNING
	# n1's letting go leaves n2's versions
	[ -d "$SHARED/$id" ]
	counts_on 2 "$id"
}

@test "a --restart on-failure job of a node that is gone restarts on its own on n2; n1 back does not restore it" {
	two_nodes_shared
	local id
	id=$(on 1 xrun -d --restart on-failure --net none -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$id")/tmp/count" 3
	run -0 on 1 xcheckpoint "$id"
	node_gone 1 "$id"
	xos_wait_for 60 state_is 2 "$id" RUNNING
	grep -q "Node n1 is gone: its job $id taken over from the shared checkpoint store" \
		"$(node_tmp 2)/xosd.log"
	counts_on 2 "$id"
	# n1 would restore it from its newest version at its start (its
	# container is gone): it must not, n2 runs it
	node_launch 1
	assert_equal "$(where 1 "$id")" MIGRATED
	no_container_on 1 "$id"
	assert_equal "$(where 2 "$id")" RUNNING
	counts_on 2 "$id"
	run -0 on 2 xkill "$id"
	run on 2 xwait "$id"
	assert_equal "$(where 1 "$id")" MIGRATED
}

@test "a job that ended on its node is not recovered when the node goes, and two nodes cannot both take one over" {
	two_nodes_shared
	local id
	id=$(on 1 xrun -d --restart on-failure --net none -- sh -c 'i=0; while [ ! -e /tmp/go ]; do i=$((i+1)); echo $i >>/tmp/count; sleep 0.1; done')
	wait_lines "$(jobroot 1 "$id")/tmp/count" 3
	run -0 on 1 xcheckpoint "$id"
	touch "$(jobroot 1 "$id")/tmp/go"
	run on 1 xwait "$id"
	assert_success
	run -0 cat "$SHARED/$id/holder"
	assert_output --regexp "^[0-9a-f]{16} n1 ended$"
	# a takeover from n1's claim that another node made first
	local claim
	claim=$(cut -d' ' -f1 "$SHARED/$id/holder")
	: >"$SHARED/$id/claimed-$claim"
	node_use 1
	kill -9 "$XOSD_PID"
	xos_wait_for 30 peer_is 2 n1 down
	run on 2 xrestart "$id"
	assert_failure
	assert_output --partial "another node took it over first"
	assert_equal "$(where 2 "$id")" absent
	rm -f "$SHARED/$id/claimed-$claim"
	node_launch 1
	assert_equal "$(where 1 "$id")" EXITED
}

@test "split brain: a node cut off but renewing its lease is not taken over; a copy whose claim another node took is killed (the fence)" {
	two_nodes_shared
	local id i out
	id=$(on 1 xrun -d --restart on-failure --net none -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$id")/tmp/count" 3
	run -0 on 1 xcheckpoint "$id"
	# the link to n1 goes down: n2 sees it down, but n1 still renews its lease
	ip -n "${NS}h" link set "${NS:0:11}e1" down
	xos_wait_for 30 peer_is 2 n1 down
	# for more than twice node_recover_after (2 s), n2 neither restores the
	# job on its own nor lets xrestart take it over
	for i in $(seq 1 10); do
		out=$(on 2 xrestart "$id" 2>&1) && fail "xrestart took the job over: $out"
		[[ "$out" == *"its lease in the checkpoint store changed"* ]] || fail "$out"
		sleep 0.5
	done
	echo "# $out" >&3
	assert_equal "$(where 2 "$id")" absent
	assert_equal "$(where 1 "$id")" RUNNING
	ip -n "${NS}h" link set "${NS:0:11}e1" up
	xos_wait_for 30 peer_is 2 n1 up
	# the fence: another claim in the holder record (as a node that took the
	# job over would write it), and n1 kills its copy
	printf '%s n2 live\n' 0123456789abcdef >"$SHARED/$id/holder"
	xos_wait_for 30 not_running 1 "$id"
	echo "# n1: $(where 1 "$id"), $(on 1 job_field "$id" .reason)" >&3
	assert_equal "$(where 1 "$id")" KILLED
	assert_equal "$(on 1 job_field "$id" .reason)" \
		"taken over by node n2 from the shared checkpoint store"
	grep -q "Job $id was taken over by another node from the shared checkpoint store: killing its copy here" \
		"$(node_tmp 1)/xosd.log"
}
