#!/usr/bin/env bash
# Run the whole xos test suite (as root: integration tests need it).
#   1. build: make all and the unit test binaries (build/tests/test-*)
#   2. every unit test binary (TAP)
#   3. bats --tap tests/integration (if it holds .bats files); beside it, in
#      the background (their TAP counted after it): each fuzz target briefly
#      (tests/fuzz), and unless XOS_SANITIZE=0 the build with ASan+UBSan into
#      build-asan (make BUILD=build-asan SANITIZE=1) and its unit tests
#   4. unless XOS_SANITIZE=0: the integration tests again (all but 82-zdtm,
#      84-ckpt-stopped-pty, 88-zdtm-jobs, 94-migrate-zdtm and 96-slurm) on
#      the build-asan binaries
# Prints every TAP line as it comes; the last line is the total:
#   N passed, N failed
# (preceded by "# N skipped" when tests were skipped: they count as neither)
# Exit status: 0 only if nothing failed and at least one test ran.
# Environment: XOS_SANITIZE=0 (no sanitizer build), XOS_SERIAL=1 (the
# background steps run first, one after the other), XOS_TEST_TIMEOUT (seconds per unit
# test binary, default 600), BATS_TEST_TIMEOUT (per bats test, default 600),
# XOS_TEST_PREFIX (name prefix of the suite's /tmp directories, default xos-t;
# give two checkouts testing at once on one machine different ones).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
REPO_ROOT=$(pwd)
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}"

passed=0
failed=0
skipped=0

summary() {
	if [ "$skipped" -gt 0 ]; then
		echo "# $skipped skipped (neither passed nor failed; see '# skip' above)"
	fi
	echo "$passed passed, $failed failed"
}
# abort MESSAGE: give up before (more) tests can run; counts as one failure.
abort() {
	echo "run-all: $*" >&2
	failed=$((failed + 1))
	summary
	exit 1
}

if [ "$(id -u)" -ne 0 ]; then
	echo "run-all: must run as root (integration tests create containers); try: sudo $0" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

# A session of our own when we belong to none (session id 0: no ancestor
# called setsid, as on CI machines, or the leader is outside this PID
# namespace): grid logins are per session.
if [ "$(ps -o sid= -p $$ | tr -d ' ')" = 0 ] && [ -z "${XOS_RUN_ALL_SETSID:-}" ]; then
	XOS_RUN_ALL_SETSID=1 exec setsid -w "$0" "$@"
fi

jobs=$(nproc 2>/dev/null || echo 2)
# Called from `make check`: build in a make of our own, not a sub-make.
unset MAKEFLAGS MFLAGS MAKELEVEL

# unit_bins BUILD: the unit test binaries the Makefile builds into BUILD.
unit_bins() {
	local src
	for src in tests/unit/test-*.c; do
		[ -e "$src" ] || continue
		src=${src##*/}
		printf '%s/tests/%s\n' "$1" "${src%.c}"
	done
}

# count_tap NAME CMD...: run CMD, echo its output, count its TAP results.
# A CMD that exits non-zero without reporting a failure, or that runs fewer
# tests than it planned, adds one failure.
count_tap() {
	local name=$1 line plan=-1 n=0 nfail=0 rc desc
	shift
	echo "# $name"
	while IFS= read -r line; do
		printf '%s\n' "$line"
		case $line in
		"not ok" | "not ok "*)
			n=$((n + 1))
			desc=${line#not ok}
			shopt -s nocasematch
			if [[ $desc == *"# todo"* || $desc == *"# skip"* ]]; then
				skipped=$((skipped + 1))
			else
				failed=$((failed + 1))
				nfail=$((nfail + 1))
			fi
			shopt -u nocasematch
			;;
		"ok" | "ok "*)
			n=$((n + 1))
			desc=${line#ok}
			shopt -s nocasematch
			if [[ $desc == *"# skip"* ]]; then
				skipped=$((skipped + 1))
			else
				passed=$((passed + 1))
			fi
			shopt -u nocasematch
			;;
		1..*)
			plan=${line#1..}
			plan=${plan%%[!0-9]*}
			[ -n "$plan" ] || plan=-1
			;;
		esac
	done < <("$@" </dev/null 2>&1)
	wait "$!"
	rc=$?
	if [ "$plan" -ge 0 ] && [ "$n" -lt "$plan" ]; then
		echo "not ok - $name: ran $n of $plan planned tests (exit status $rc)"
		failed=$((failed + 1))
	elif [ "$rc" -ne 0 ] && [ "$nfail" -eq 0 ]; then
		echo "not ok - $name: exit status $rc without a failing test"
		failed=$((failed + 1))
	fi
}

run_units() {
	local build=$1 t
	while IFS= read -r t; do
		count_tap "$t" timeout -k 10 "${XOS_TEST_TIMEOUT:-600}" "./$t"
	done < <(unit_bins "$build")
}

# ---------------------------------------------------------------- build
mapfile -t bins < <(unit_bins build)
echo "# build: make -j$jobs all ${bins[*]}"
make -j"$jobs" all "${bins[@]}" </dev/null || abort "build failed (make all)"

# ----------------------------------------------------------------- lint
# clang-format, shellcheck and mandoc -Tlint: style is checked like a test
if make -s lint >/tmp/xos-lint.$$ 2>&1 </dev/null; then
	echo "ok - make lint"
	passed=$((passed + 1))
else
	echo "not ok - make lint"
	sed 's/^/#   /' /tmp/xos-lint.$$ | tail -40
	failed=$((failed + 1))
fi
rm -f /tmp/xos-lint.$$

# ----------------------------------------------------------- unit tests
run_units build

# ------------------------------------------- steps beside the integration tests
# The fuzz targets (clang, ASan+UBSan, build-fuzz: a few seconds each from
# their seed corpus, crash inputs found before included: a target that no
# longer builds or crashes fails; one TAP line per target), and the
# sanitizer build (xosd, the commands and the unit tests with ASan+UBSan,
# build-asan) with its unit tests, use the CPU but no container, bridge or
# daemon: they run in the background while the plain integration tests,
# which mostly wait, run, and their TAP is counted once those are done.
# XOS_FUZZ_TIME: seconds per fuzz target (default 3; `make fuzz` is the long
# run). XOS_SERIAL=1: one step after the other, as a slow machine may need.
bgdir=$(mktemp -d /tmp/xos-run-all.XXXXXX) || abort "mktemp failed"
trap 'rm -rf "$bgdir"' EXIT
asan_logs=$REPO_ROOT/build-asan/sanitizer-logs
mapfile -t asan_bins < <(unit_bins build-asan)

# save NAME CMD...: run CMD, keep its output and exit status for replay NAME
save() {
	local name=$1
	shift
	"$@" </dev/null >"$bgdir/$name.out" 2>&1
	echo $? >"$bgdir/$name.rc"
}
# replay NAME: what save NAME kept (a step that never ran: status 1)
replay() {
	cat "$bgdir/$1.out" 2>/dev/null
	return "$(cat "$bgdir/$1.rc" 2>/dev/null || echo 1)"
}

background_steps() {
	save fuzz-build make -j"$jobs" fuzz-build
	if [ "$(cat "$bgdir/fuzz-build.rc")" = 0 ]; then
		save fuzz tests/fuzz/run.sh --check --time "${XOS_FUZZ_TIME:-3}"
	fi
	[ "${XOS_SANITIZE:-1}" = 1 ] || return 0
	save asan-build make -j"$jobs" BUILD=build-asan SANITIZE=1 all "${asan_bins[@]}"
	[ "$(cat "$bgdir/asan-build.rc")" = 0 ] || return 0
	rm -rf "$asan_logs"
	mkdir -p "$asan_logs"
	local i=0 t
	for t in "${asan_bins[@]}"; do
		ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:log_path=$asan_logs/asan" \
			UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$asan_logs/ubsan" \
			save "asan-unit-$i" timeout -k 10 "${XOS_TEST_TIMEOUT:-600}" "./$t"
		i=$((i + 1))
	done
}

count_background() {
	echo "# build: make fuzz-build (clang, build-fuzz)"
	if [ "$(cat "$bgdir/fuzz-build.rc" 2>/dev/null)" != 0 ]; then
		echo "not ok - fuzz targets: build failed (make fuzz-build)"
		tail -20 "$bgdir/fuzz-build.out" 2>/dev/null | sed 's/^/#   /'
		failed=$((failed + 1))
	else
		count_tap "fuzz targets (tests/fuzz/run.sh --check)" replay fuzz
	fi
	[ "${XOS_SANITIZE:-1}" = 1 ] || return 0
	echo "# build: make -j$jobs BUILD=build-asan SANITIZE=1 all ${asan_bins[*]}"
	if [ "$(cat "$bgdir/asan-build.rc" 2>/dev/null)" != 0 ]; then
		tail -40 "$bgdir/asan-build.out" 2>/dev/null
		echo "not ok - sanitizer build failed (make BUILD=build-asan SANITIZE=1)"
		failed=$((failed + 1))
		return 1
	fi
	local i=0 t
	for t in "${asan_bins[@]}"; do
		count_tap "$t" replay "asan-unit-$i"
		i=$((i + 1))
	done
}

bg_pid=
if [ "${XOS_SERIAL:-0}" = 1 ]; then
	background_steps
else
	background_steps &
	bg_pid=$!
fi

# ---------------------------------------------------- integration tests
if compgen -G 'tests/integration/*.bats' >/dev/null; then
	command -v bats >/dev/null || abort "bats not installed (run scripts/setup.sh)"
	export XOS_SRCDIR=$REPO_ROOT XOS_BUILDDIR=$REPO_ROOT/build
	export BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-600}
	count_tap "bats tests/integration" bats --tap --timing tests/integration
else
	echo "# no integration tests (tests/integration/*.bats)"
fi

[ -z "$bg_pid" ] || wait "$bg_pid"
asan_ok=0
count_background && asan_ok=1

# ----------------------- sanitizer build: integration tests, and the reports
# xosd and the commands built with ASan+UBSan run the integration tests
# again; any sanitizer report (of these or of the unit tests) fails it.
if [ "${XOS_SANITIZE:-1}" = 1 ] && [ "$asan_ok" = 1 ]; then
	export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:log_path=$asan_logs/asan"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$asan_logs/ubsan"
	# (without 88-zdtm-jobs: its 74 programs take xos's code through the
	# same start, checkpoint and restart paths as 82 and 89 do, and CRIU,
	# which is not built with the sanitizers, through its kinds of kernel
	# object: about 5 minutes that find nothing new here; nor 96-slurm: it
	# drives xos through Slurm's daemons, whose start and requeue waits
	# take about 4 minutes, along the paths 10, 50 and 80 already take;
	# nor 94-migrate-zdtm: a job of 53 zdtm programs moved there and back,
	# minutes of CRIU along the move paths 93 and the other 94s take; nor
	# 82-zdtm, the same 53 programs checkpointed and restarted, nor
	# 84-ckpt-stopped-pty, stopped tasks and terminals dumped: CRIU's work
	# along the paths 80, 85 and 89 take)
	mapfile -t asan_bats < <(compgen -G 'tests/integration/*.bats' |
		grep -Ev '/(82-zdtm|84-ckpt-stopped-pty|88-zdtm-jobs|96-slurm|94-migrate-zdtm)\.bats$')
	if [ "${#asan_bats[@]}" -gt 0 ]; then
		XOS_BUILD=$REPO_ROOT/build-asan count_tap "bats tests/integration (sanitizers)" \
			bats --tap --timing "${asan_bats[@]}"
	fi
	if compgen -G "$asan_logs/*" >/dev/null; then
		echo "not ok - sanitizer reports (in $asan_logs):"
		cat "$asan_logs"/* | sed 's/^/#   /' | head -200
		failed=$((failed + 1))
	else
		echo "ok - no sanitizer report"
		passed=$((passed + 1))
	fi
	unset ASAN_OPTIONS UBSAN_OPTIONS
fi

if [ $((passed + failed)) -eq 0 ]; then
	echo "run-all: no test ran" >&2
	summary
	exit 1
fi
summary
[ "$failed" -eq 0 ]
