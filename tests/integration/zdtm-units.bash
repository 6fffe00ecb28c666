# shellcheck shell=bash
# CRIU's zdtm static programs (tests/integration/zdtm.list, built by
# scripts/build-zdtm.sh) as the units of one xos job: 82-zdtm.bats
# checkpoints and restarts such a job, 94-migrate-zdtm.bats moves it.

ZDTM_DIR=${XOS_ZDTM_DIR:-/usr/local/lib/xos/zdtm}
ZDTM_LIST=${XOS_ZDTM_LIST:-$BATS_TEST_DIRNAME/zdtm.list}

# The shell of a unit: start the test program (it daemonizes once ready),
# pass SIGTERM on to it, wait for it to end and print its verdict. (It polls
# slowly: 43 shells forking a sleep five times a second made a dump now and
# then meet a task CRIU could not seize, "Unseizable non-zombie ... state D".)
zdtm_unit_script() {
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

# zdtm_units_start ID ROOT [CMD...]: each program of the list a unit of job
# ID (xrun run through CMD, e.g. "on 1"; their names in ZDTM_NAMES), and
# each up (its pid file written in ROOT, the job's /tmp/zdtm seen from the
# host) before it returns
zdtm_units_start() {
	local id=$1 root=$2 t n args tests
	shift 2
	[ -x "$ZDTM_DIR/pipe00" ] || fail "no zdtm programs in $ZDTM_DIR: run scripts/setup.sh (or scripts/build-zdtm.sh)"
	mapfile -t tests < <(grep -v '^[[:space:]]*\(#\|$\)' "$ZDTM_LIST")
	[ "${#tests[@]}" -ge 30 ] || [ -n "${XOS_ZDTM_LIST:-}" ] || fail "only ${#tests[@]} programs in $ZDTM_LIST"
	ZDTM_NAMES=()
	for t in "${tests[@]}"; do
		read -r n args <<<"$t"
		ZDTM_NAMES+=("$n")
		"$@" xrun -d --job "$id" -- sh -c "$(zdtm_unit_script "$n" "$args")" >/dev/null
	done
	for n in "${ZDTM_NAMES[@]}"; do
		wait_for 60 test -s "$root/$n.pid" || fail "zdtm $n did not start"
	done
}

# zdtm_units_passed ID WHAT [CMD...]: job ID has ended; each program's unit
# (2 on) printed PASS, else the test fails naming those that did not
zdtm_units_passed() {
	local id=$1 what=$2 i failed=()
	shift 2
	for i in "${!ZDTM_NAMES[@]}"; do
		if ! "$@" xlogs --unit $((i + 2)) "$id" | grep -q PASS; then
			failed+=("${ZDTM_NAMES[$i]}: $("$@" xlogs --unit $((i + 2)) "$id" | tail -n 3 | tr '\n' ' ')")
		fi
	done
	if [ "${#failed[@]}" -gt 0 ]; then
		printf 'not PASS: %s\n' "${failed[@]}" >&2
		false
	fi
	echo "# ${#ZDTM_NAMES[@]} zdtm programs passed$what: ${ZDTM_NAMES[*]}" >&3
}
