#!/usr/bin/env bats
# Migration fidelity (issue 11, acceptance 1, last sentence): CRIU's zdtm
# static test programs (tests/integration/zdtm.list, as 82-zdtm.bats runs
# them) as the units of one job that xmigrate moves from node n1 to node n2
# and back; sent SIGTERM on n1 again, every program must report PASS.

load helpers
load nodes
bats_require_minimum_version 1.5.0

ZDTM_DIR=${XOS_ZDTM_DIR:-/usr/local/lib/xos/zdtm}
LIST=${XOS_ZDTM_LIST:-$BATS_TEST_DIRNAME/zdtm.list}

setup_file() { nodes_certs_setup n1 n2; }

teardown_file() { nodes_certs_teardown; }

setup() {
	nodes_net_setup
}

teardown() {
	nodes_net_teardown
}

# The shell of a unit (as in 82-zdtm.bats): start the program (it
# daemonizes once ready), pass SIGTERM on to it, wait for it to end and
# print its verdict.
unit_script() {
	local n=$1 args=$2 w=/tmp/zdtm
	args=${args//@/$n}
	printf '%s' "mkdir -p $w && cd $w || exit 1
export ENV_00_TEST=xos
$ZDTM_DIR/$n $args --pidfile=$w/$n.pid --outfile=$w/$n.out || { cat $w/$n.out; exit 1; }
p=\$(cat $w/$n.pid)
trap 'kill -TERM \$p 2>/dev/null' TERM
while kill -0 \$p 2>/dev/null; do sleep 2; done
cat $w/$n.out"
}

running_units() {
	on "$1" xps -a --json "$2" | jq '[.[0].units[] | select(.state == "RUNNING")] | length'
}

@test "acceptance 1: zdtm static programs pass as units of a job moved from n1 to n2 and back" {
	[ -x "$ZDTM_DIR/pipe00" ] || fail "no zdtm programs in $ZDTM_DIR: run scripts/setup.sh (or scripts/build-zdtm.sh)"
	mapfile -t tests < <(grep -v '^[[:space:]]*\(#\|$\)' "$LIST")
	[ "${#tests[@]}" -ge 30 ] || [ -n "${XOS_ZDTM_LIST:-}" ]
	node_start 1 n1
	node_start 2 n2
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
	local id t n args names=() root
	id=$(on 1 xrun -d -- sleep 100000)
	on 1 wait_state "$id" RUNNING
	for t in "${tests[@]}"; do
		read -r n args <<<"$t"
		names+=("$n")
		on 1 xrun -d --job "$id" -- sh -c "$(unit_script "$n" "$args")" >/dev/null
	done
	root="$(node_tmp 1)/state/volatile/jobs/$id/rootfs/tmp/zdtm"
	for n in "${names[@]}"; do
		wait_for 60 test -s "$root/$n.pid" || fail "zdtm $n did not start"
	done
	run on 1 xmigrate --json "$id" n2
	echo "$output"
	assert_success
	echo "# n1 -> n2: $(jq -c '{frozen_us, transfer_us, downtime_us, bytes}' <<<"$output")" >&3
	assert_equal "$(on 2 job_field "$id" .state)" RUNNING
	assert_equal "$(running_units 2 "$id")" $((${#tests[@]} + 1))
	run on 2 xmigrate --json "$id" n1
	echo "$output"
	assert_success
	echo "# n2 -> n1: $(jq -c '{frozen_us, transfer_us, downtime_us, bytes}' <<<"$output")" >&3
	assert_equal "$(on 1 job_field "$id" .state)" RUNNING
	assert_equal "$(on 2 job_field "$id" .state)" MIGRATED
	assert_equal "$(running_units 1 "$id")" $((${#tests[@]} + 1))
	on 1 xkill "$id"
	run on 1 xwait "$id"
	local i failed=()
	for i in "${!names[@]}"; do
		if ! on 1 xlogs --unit $((i + 2)) "$id" | grep -q PASS; then
			failed+=("${names[$i]}: $(on 1 xlogs --unit $((i + 2)) "$id" | tail -n 3 | tr '\n' ' ')")
		fi
	done
	if [ "${#failed[@]}" -gt 0 ]; then
		printf 'not PASS: %s\n' "${failed[@]}" >&2
		false
	fi
	echo "# ${#names[@]} zdtm programs passed after n1 -> n2 -> n1: ${names[*]}" >&3
}
