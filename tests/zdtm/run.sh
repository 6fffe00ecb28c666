#!/usr/bin/env bash
# make zdtm: every zdtm static program that built (scripts/build-zdtm.sh
# --all) run as an xos job of its own, on a private xosd:
#   1. a control run: started, SIGTERM, PASS; a program failing it cannot run
#      as an unprivileged job at all (CANNOT-RUN-UNPRIVILEGED, with its words)
#   2. checkpoint left running, SIGKILL, restart, SIGTERM, PASS
#   3. a new job: checkpoint --stop, restart, SIGTERM, PASS
# One line per program (PASS, FAIL with the step, LIMIT: a failure that
# tests/zdtm/limits.list explains, CANNOT-RUN-UNPRIVILEGED), then the totals.
# Two programs at a time (-j), every step bounded.
#
# Usage: tests/zdtm/run.sh [-j N] [-o FILE] [NAME...]
#   -j N     programs at once (default 2)
#   -o FILE  also write the lines to FILE
# Environment: XOS_BUILD (default build/), XOS_ZDTM_DIR (default
# /usr/local/lib/xos/zdtm/all), ZDTM_DISK (each job's --disk, default 256M)
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
export XOS_BUILD=${XOS_BUILD:-$root/build}
export XOS_ZDTM_DIR=${XOS_ZDTM_DIR:-/usr/local/lib/xos/zdtm/all}
export PATH="$XOS_BUILD:$PATH"
par=2
out=
while getopts "j:o:h" o; do
	case $o in
	j) par=$OPTARG ;;
	o) out=$OPTARG ;;
	*)
		sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"
		exit 2
		;;
	esac
done
shift $((OPTIND - 1))

# (one program, in a worker: run.sh --one NAME ARGS...)
if [ "${ZDTM_ONE:-}" = 1 ]; then
	# shellcheck source=tests/zdtm/zdtm-lib.bash
	. "$here/zdtm-lib.bash"
	n=$1
	shift
	args="$*"
	flags=$(awk -v n="$n" '$1 == n {$1 = ""; print}' "$XOS_ZDTM_DIR/flags.list" 2>/dev/null | xargs)
	note=${flags:+ [zdtm flags: $flags]}
	if ! why=$(zdtm_control "$n" "$args"); then
		echo "CANNOT-RUN-UNPRIVILEGED $n: $why$note"
		exit 0
	fi
	# both modes, whatever the first gave; a failure only in the modes
	# limits.list names for the program is a LIMIT (explained there)
	failed=() whys=()
	if ! why=$(zdtm_cr "$n" "$args" running); then
		failed+=(running) whys+=("(left running) $why")
	fi
	if ! why=$(zdtm_cr "$n" "$args" stop); then
		failed+=(stop) whys+=("(--stop) $why")
	fi
	if [ "${#failed[@]}" -eq 0 ]; then
		echo "PASS $n$note"
		exit 0
	fi
	known=$(awk -v n="$n" '$1 == n { print $2 }' "$here/limits.list")
	if kwhy=$(zdtm_kernel_broken "$n") && [ -n "$kwhy" ]; then
		echo "LIMIT $n ${whys[*]} [$kwhy]$note"
		exit 0
	fi
	kind=FAIL
	for m in "${failed[@]}"; do
		[ "$known" = any ] || [ "$known" = "$m" ] || continue
		kind=LIMIT
	done
	for m in "${failed[@]}"; do
		[ "$known" = any ] || [ "$known" = "$m" ] || kind=FAIL
	done
	if [ "$kind" = LIMIT ]; then
		note=" [$(awk -v n="$n" '$1 == n { $1 = $2 = ""; sub(/^ +/, ""); print }' "$here/limits.list")]$note"
	fi
	echo "$kind $n ${whys[*]}$note"
	exit 0
fi

[ "$(id -u)" -eq 0 ] || {
	echo "run.sh: must run as root" >&2
	exit 2
}
[ -s "$XOS_ZDTM_DIR/all.list" ] || {
	echo "run.sh: no $XOS_ZDTM_DIR/all.list: run scripts/build-zdtm.sh --all" >&2
	exit 2
}

# A private xosd, as the integration tests start one (helpers.bash).
load() { :; }
BATS_TEST_DIRNAME=$root/tests/integration
BATS_RUN_TMPDIR=$(mktemp -d /tmp/xos-zdtm-run.XXXXXX)
XOS_TEST_PREFIX=${XOS_TEST_PREFIX:-xos-zdtm}
# shellcheck source=tests/integration/helpers.bash
. "$root/tests/integration/helpers.bash"
BATS_TEST_COMPLETED=1
finish() {
	xos_teardown >&2 || true
	rm -rf "$BATS_RUN_TMPDIR"
}
trap finish EXIT
trap 'exit 130' INT TERM
xos_start || exit 1

list=$BATS_RUN_TMPDIR/list
if [ $# -gt 0 ]; then
	for n in "$@"; do
		grep -E "^$n( |\$)" "$XOS_ZDTM_DIR/all.list" || echo "$n"
	done >"$list"
else
	cp "$XOS_ZDTM_DIR/all.list" "$list"
fi
results=$BATS_RUN_TMPDIR/results
begun=$(date +%s)
# each worker bounded: three runs of every step at most
per=$((3 * (${ZDTM_START_S:-30} + 2 * ${ZDTM_STEP_S:-90} + ${ZDTM_END_S:-60} + 60)))
while read -r n args; do
	printf '%s\0' "$n $args"
done <"$list" |
	ZDTM_ONE=1 xargs -0 -P "$par" -I{} sh -c \
		"timeout -k 10 $per '$0' {} || echo \"FAIL \$(echo '{}' | cut -d' ' -f1) (timeout) the program took over ${per}s\"" |
	tee "$results"

total=$(wc -l <"$results")
{
	echo "---"
	for k in PASS FAIL LIMIT CANNOT-RUN-UNPRIVILEGED; do
		echo "$k: $(grep -c "^$k " "$results")"
	done
	nb=0
	[ ! -f "$XOS_ZDTM_DIR/build-failed.list" ] || nb=$(wc -l <"$XOS_ZDTM_DIR/build-failed.list")
	echo "programs: $total (did not build: $nb)"
	echo "time: $(($(date +%s) - begun)) s"
} | tee -a "$results"
[ -z "$out" ] || { grep -v '^[A-Za-z-]*: \|^---' "$results" | sort -k2; sed -n '/^---/,$p' "$results"; } >"$out"
! grep -q '^FAIL ' "$results"
