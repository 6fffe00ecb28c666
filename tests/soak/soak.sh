#!/usr/bin/env bash
# Soak: many jobs of mixed kinds while xosd is killed (SIGKILL) at random
# moments and started again; in the end every job is accounted for exactly
# once and nothing is left behind.
#
# Usage: tests/soak/soak.sh            (as root; `make soak` builds first)
# Environment:
#   SOAK_JOBS     jobs to submit (default 1000)
#   SOAK_KILLS    times xosd is killed (default: one per 40 jobs, at least 1)
#   SOAK_TIMEOUT  seconds the submissions may take in all (default 7200);
#                 past it no more jobs are submitted (the report says so)
#   XOS_BUILD     the build to test (default: build of this checkout)
#   XOS_TEST_PREFIX  prefix of the private directory under /tmp (default xos-soak)
# The daemon is private: state, run directory, bridge and nftables table of
# its own under /tmp/PREFIX.XXXXXX (never /run/xos).
#
# Kinds, in turn: attached (exit code checked), detached, a detached job with
# a second unit (xrun --job), checkpoint --stop then xrestart, --net bridge.
# Each job is named soak-N. xosd is killed at SOAK_KILLS points spread over
# the run, each a random 0-0.5 s after a submission began, and started again.
#
# Accounting (xps -a --json at the end, after every job has ended):
# - a job whose submission succeeded (an id, or an attached exit) appears
#   exactly once, in a final state;
# - a submission cut by the kill may or may not have made its job: at most
#   once;
# - no name appears twice, every job directory has its record, and xps
#   lists every job directory once.
# Then xosd stops and nothing of it may be left: containers, mounts, cgroups,
# loaders, LXC locks, veths, bridge, nftables table, leases
# (tests/integration/helpers.bash: xos_leftovers).
# Last line: "soak: PASS ..." or "soak: FAIL ..."; exit status 0 on PASS.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ "$(id -u)" -eq 0 ] || {
	echo "soak: must run as root (containers, mounts, cgroups)" >&2
	exit 1
}
SOAK_JOBS=${SOAK_JOBS:-1000}
SOAK_KILLS=${SOAK_KILLS:-$(((SOAK_JOBS + 39) / 40))}
SOAK_TIMEOUT=${SOAK_TIMEOUT:-7200}
export XOS_TEST_PREFIX=${XOS_TEST_PREFIX:-xos-soak}
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}"

# the integration tests' helpers (daemon start, leak checks), outside bats
BATS_TEST_DIRNAME=$REPO/tests/integration
load() { :; }
# shellcheck source=tests/integration/helpers.bash
. "$REPO/tests/integration/helpers.bash"
BATS_RUN_TMPDIR=$(mktemp -d "/tmp/$XOS_TEST_PREFIX-run.XXXXXX")
XOS_TMP=

say() { echo "soak: $*"; }
# shellcheck disable=SC2317 # (the EXIT trap calls it)
cleanup() {
	if [ -n "${XOSD_PID:-}" ]; then
		kill -9 "$XOSD_PID" 2>/dev/null || true
		wait "$XOSD_PID" 2>/dev/null || true
	fi
	if [ -n "${XOS_TMP:-}" ]; then
		xos_force_cleanup
		rm -rf "$XOS_TMP"
	fi
	rm -rf "$BATS_RUN_TMPDIR"
}
trap cleanup EXIT

# The daemon, with bridge networking and every ended job kept.
XOS_NET_CONF="keep_ended = 1000000"
# shellcheck disable=SC2119 # (no extra xosd arguments)
xos_net_start >/dev/null || {
	say "FAIL: xosd did not start"
	exit 1
}
say "daemon $XOSD_PID, state $XOS_TMP/state, bridge $XOS_NET_BRIDGE; $SOAK_JOBS jobs, $SOAK_KILLS kills"

declare -A sure=()   # name -> 1: the submission succeeded, the job must be there once
declare -A unsure=() # name -> 1: the submission was cut; the job may be there, at most once
kills=0
units=0 checkpoints=0 restores=0
restarts_failed=0
wrong_codes=0
start=$SECONDS

# kill_soon: SIGKILL to xosd a random 0-0.5 s from now, in the background
kill_soon() {
	local pid=$XOSD_PID
	(
		sleep "0.$((RANDOM % 500))"
		kill -9 "$pid" 2>/dev/null
	) &
	KILLER=$!
}
# After a kill: the old daemon reaped, a new one started on the same state.
revive() {
	wait "$KILLER" 2>/dev/null || true
	kill -9 "$XOSD_PID" 2>/dev/null || true # (if the submission was quicker)
	wait "$XOSD_PID" 2>/dev/null || true
	kills=$((kills + 1))
	xosd_launch --config "$XOS_TMP/xosd.conf" >/dev/null 2>&1 || {
		restarts_failed=$((restarts_failed + 1))
		say "xosd did not start again after kill $kills"
		tail -5 "$XOS_TMP/xosd.log"
		exit 1
	}
}

# submit N KIND: one job; records it as sure or unsure
submit() {
	local n=$1 name="soak-$1" out rc
	case $2 in
	attached)
		out=$(xrun --name "$name" -- sh -c "echo $n; exit $((n % 4))" 2>&1)
		rc=$?
		if [ "$rc" -eq $((n % 4)) ] && [ "$out" = "$n" ]; then
			sure[$name]=1
		elif [ "$rc" -eq 125 ]; then
			unsure[$name]=1 # no daemon, or the connection was cut
		else
			sure[$name]=1
			wrong_codes=$((wrong_codes + 1))
			say "$name: attached exit $rc, output '$out'"
		fi
		;;
	detached) xrun -d --name "$name" -- sh -c "sleep 0.$((RANDOM % 9)); exit 0" >/dev/null 2>&1 ;;
	unit)
		if xrun -d --name "$name" -- sleep 3 >/dev/null 2>&1; then
			sure[$name]=1
			! xrun --job "$name" -- true >/dev/null 2>&1 || units=$((units + 1))
		else
			unsure[$name]=1
		fi
		;;
	checkpoint)
		# shellcheck disable=SC2016 # (the job's shell expands $i)
		if xrun -d --name "$name" --restart on-failure -- \
			sh -c 'for i in 1 2 3 4 5 6 7 8; do echo $i; sleep 0.25; done' >/dev/null 2>&1; then
			sure[$name]=1
			xcheckpoint --stop "$name" >/dev/null 2>&1 || return 0
			checkpoints=$((checkpoints + 1))
			! xrestart "$name" >/dev/null 2>&1 || restores=$((restores + 1))
		else
			unsure[$name]=1
		fi
		;;
	bridge) xrun --net bridge --name "$name" -- true >/dev/null 2>&1 ;;
	esac
	rc=$?
	case $2 in
	detached | bridge)
		if [ "$rc" -eq 0 ]; then sure[$name]=1; else unsure[$name]=1; fi
		;;
	esac
}

kinds=(attached detached unit checkpoint bridge)
submitted=0
for n in $(seq 1 "$SOAK_JOBS"); do
	if [ $((SECONDS - start)) -ge "$SOAK_TIMEOUT" ]; then
		say "SOAK_TIMEOUT ($SOAK_TIMEOUT s) reached after $submitted jobs"
		break
	fi
	# kill k of SOAK_KILLS comes at job k * JOBS / (KILLS + 1)
	killing=0
	if [ "$kills" -lt "$SOAK_KILLS" ] &&
		[ "$n" -eq $(((kills + 1) * SOAK_JOBS / (SOAK_KILLS + 1))) ]; then
		killing=1
		kill_soon
	fi
	submit "$n" "${kinds[$((n % ${#kinds[@]}))]}"
	submitted=$n
	[ "$killing" = 0 ] || revive
	[ $((n % 50)) -ne 0 ] || say "$n jobs submitted, $kills kills, $((SECONDS - start)) s"
done
elapsed=$((SECONDS - start))

# ---- every job to its end (a stopped checkpointed one is discarded: KILLED)
deadline=$((SECONDS + 300))
while :; do
	live=$(xps -q 2>/dev/null)
	[ -n "$live" ] || break
	if [ "$SECONDS" -ge "$deadline" ]; then
		say "jobs still live after 300 s: $(echo "$live" | wc -l); killing them"
		break
	fi
	for id in $live; do
		[ "$(job_field "$id" .state)" != CHECKPOINTED ] || xkill -s KILL "$id" >/dev/null 2>&1
	done
	sleep 0.5
done
left_live=$(xps -q 2>/dev/null | wc -l)
if [ "$left_live" -gt 0 ]; then
	# shellcheck disable=SC2046
	xkill -s KILL $(xps -q) >/dev/null 2>&1
	# shellcheck disable=SC2046
	timeout 60 xwait $(xps -q) >/dev/null 2>&1
fi

# ---- accounting
all=$(xps -a --json)
lost=0 doubled=0 not_final=0 extra=0
declare -A seen=()
while IFS=$'\t' read -r name state; do
	[ -n "$name" ] || continue
	seen[$name]=$((${seen[$name]:-0} + 1))
	case $state in
	EXITED | KILLED | FAILED) ;;
	*)
		not_final=$((not_final + 1))
		say "$name is $state at the end"
		;;
	esac
done < <(echo "$all" | jq -r '.[] | [(.name // "-"), .state] | @tsv')
for name in "${!seen[@]}"; do
	if [ "${seen[$name]}" -gt 1 ]; then
		doubled=$((doubled + 1))
		say "$name appears ${seen[$name]} times"
	fi
	if [ -z "${sure[$name]:-}" ] && [ -z "${unsure[$name]:-}" ]; then
		extra=$((extra + 1))
		say "$name: a job nobody submitted"
	fi
done
for name in "${!sure[@]}"; do
	if [ -z "${seen[$name]:-}" ]; then
		lost=$((lost + 1))
		say "$name: submitted, and lost"
	fi
done
made_unsure=0
for name in "${!unsure[@]}"; do
	[ -z "${seen[$name]:-}" ] || made_unsure=$((made_unsure + 1))
done
records=$(echo "$all" | jq length)
dirs=$(find "$XOS_TMP/state/jobs" -mindepth 1 -maxdepth 1 -type d | wc -l)
states=$(echo "$all" | jq -r '[.[].state] | group_by(.) | map("\(.[0]) \(length)") | join(", ")')

# ---- xosd stops; nothing of it may be left
xosd_stop
leaks=$(xos_leftovers)

say "jobs submitted $submitted (sure ${#sure[@]}, cut by a kill ${#unsure[@]} of which $made_unsure made)"
say "second units $units, checkpoints --stop $checkpoints, restarts $restores"
say "xosd killed $kills times; $elapsed s of submissions; end states: $states"
say "records $records, job directories $dirs; lost $lost, doubled $doubled, not final $not_final, unknown $extra, still live at the deadline $left_live, wrong exit codes $wrong_codes"
if [ -n "$leaks" ]; then
	say "leftovers:"
	while IFS= read -r l; do echo "soak:   $l"; done <<<"$leaks"
fi
if [ "$lost$doubled$not_final$extra$left_live$wrong_codes" = 000000 ] && [ -z "$leaks" ] &&
	[ "$records" -eq "$dirs" ] && [ "$kills" -eq "$SOAK_KILLS" ]; then
	say "PASS"
	exit 0
fi
say "FAIL"
exit 1
