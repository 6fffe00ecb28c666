#!/usr/bin/env bats
# Fidelity (issue 4, acceptance 1): CRIU's own zdtm static test programs
# (tests/integration/zdtm.list, built by scripts/build-zdtm.sh) run as the units
# of one xos job; the whole job is checkpointed left running, then with --stop,
# restarted, sent SIGTERM, and every program must report PASS.

load helpers
bats_require_minimum_version 1.5.0

ZDTM_DIR=${XOS_ZDTM_DIR:-/usr/local/lib/xos/zdtm}
LIST=${XOS_ZDTM_LIST:-$BATS_TEST_DIRNAME/zdtm.list}

setup() { xos_start; }
teardown() { xos_teardown; }

# The shell of a unit: start the test program (it daemonizes once ready),
# pass SIGTERM on to it, wait for it to end and print its verdict. (It polls
# slowly: 43 shells forking a sleep five times a second made a dump now and
# then meet a task CRIU could not seize, "Unseizable non-zombie ... state D".)
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

@test "acceptance 1: zdtm static programs pass after a checkpoint left running, one with --stop, a restart and SIGTERM" {
	[ -x "$ZDTM_DIR/pipe00" ] || fail "no zdtm programs in $ZDTM_DIR: run scripts/setup.sh (or scripts/build-zdtm.sh)"
	mapfile -t tests < <(grep -v '^[[:space:]]*\(#\|$\)' "$LIST")
	[ "${#tests[@]}" -ge 30 ] || [ -n "${XOS_ZDTM_LIST:-}" ]
	id=$(xrun -d -- sleep 100000)
	wait_state "$id" RUNNING
	local t n args names=()
	for t in "${tests[@]}"; do
		read -r n args <<<"$t"
		names+=("$n")
		xrun -d --job "$id" -- sh -c "$(unit_script "$n" "$args")" >/dev/null
	done
	# every program is up (its pid file written) before the first checkpoint
	root="$XOS_TMP/state/volatile/jobs/$id/rootfs/tmp/zdtm"
	for n in "${names[@]}"; do
		wait_for 60 test -s "$root/$n.pid" || fail "zdtm $n did not start"
	done
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
		$((${#tests[@]} + 1))
	xkill "$id"
	run xwait "$id"
	local i failed=()
	for i in "${!names[@]}"; do
		if ! xlogs --unit $((i + 2)) "$id" | grep -q PASS; then
			failed+=("${names[$i]}: $(xlogs --unit $((i + 2)) "$id" | tail -n 3 | tr '\n' ' ')")
		fi
	done
	if [ "${#failed[@]}" -gt 0 ]; then
		printf 'not PASS: %s\n' "${failed[@]}" >&2
		false
	fi
	echo "# ${#names[@]} zdtm programs passed: ${names[*]}" >&3
}
