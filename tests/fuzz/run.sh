#!/usr/bin/env bash
# Run the libFuzzer targets of tests/fuzz (built by `make fuzz-build`).
#
# Usage: tests/fuzz/run.sh [--build DIR] [--time SECONDS] [--check] [TARGET...]
#   --build DIR   where the targets were built (default build-fuzz): DIR/fuzz/fuzz-TARGET
#   --time S      seconds per target (default 600; with --check 3)
#   --check       the short run of `make check`: seeds only, nothing kept
#   TARGET        request config job spec status tar (default: every fuzz-*.c)
#
# Each target reads its seeds from tests/fuzz/corpus/TARGET (never written)
# and, unless --check, keeps what it finds in DIR/fuzz/corpus/TARGET, so a
# later run goes on from there. A crash leaves its input in
# DIR/fuzz/artifacts/ and the log in DIR/fuzz/logs/TARGET.log (TARGET.check.log
# with --check); put the input
# into tests/fuzz/corpus/TARGET once fixed: the check replays it for ever.
# Prints TAP, one line per target:
#   ok N - fuzz TARGET (EXECS runs, 600 s, cpu S s, cov C ft F)
# (wall seconds as libFuzzer counts them; cpu: the CPU time it really got)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1

build="$(pwd)/build-fuzz"
time=
check=0
targets=()
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$(realpath -m "$2") && shift ;;
	--time) time=$2 && shift ;;
	--check) check=1 ;;
	-h | --help)
		sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"
		exit 0
		;;
	-*) echo "run.sh: unknown option $1 (see --help)" >&2 && exit 2 ;;
	*) targets+=("$1") ;;
	esac
	shift
done
if [ ${#targets[@]} -eq 0 ]; then
	for f in tests/fuzz/fuzz-*.c; do
		f=${f##*/fuzz-}
		targets+=("${f%.c}")
	done
fi
[ -n "$time" ] || time=$([ "$check" = 1 ] && echo 3 || echo 600)

# CPU seconds (user + system) used by this script's ended children so far,
# into CPU (`times` in this shell: a subshell would count only its own; the
# file is this run's own: two runs in one build directory once read each
# other's)
children_cpu() {
	times >"$build/fuzz/.times.$$"
	CPU=$(tail -1 "$build/fuzz/.times.$$" | awk '{
		s = 0
		for (i = 1; i <= NF; i++) {
			split($i, p, "m"); sub("s", "", p[2]); s += p[1] * 60 + p[2]
		}
		printf "%d\n", s
	}')
}

mkdir -p "$build/fuzz/logs" "$build/fuzz/artifacts"
echo "1..${#targets[@]}"
n=0
fail=0
for t in "${targets[@]}"; do
	n=$((n + 1))
	bin=$build/fuzz/fuzz-$t
	seeds=$(pwd)/tests/fuzz/corpus/$t
	log=$build/fuzz/logs/$t.log
	[ "$check" = 0 ] || log=$build/fuzz/logs/$t.check.log # (a long run may be going on)
	if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
		echo "not ok $n - fuzz $t: no $bin or no $seeds (make fuzz-build)"
		fail=1
		continue
	fi
	if [ "$check" = 1 ]; then
		work=$(mktemp -d "/tmp/xos-fuzz-$t.XXXXXX")
	else
		work=$build/fuzz/corpus/$t
		mkdir -p "$work"
	fi
	children_cpu
	cpu0=$CPU
	# -timeout: one input may take that long (FUZZ_TIMEOUT: a fuzzer at the
	# lowest priority on a loaded machine may wait longer than 25 s for a
	# core: a "timeout" there is replayed by hand before it is believed);
	# -rss_limit_mb: memory of the whole run
	"$bin" -max_total_time="$time" -print_final_stats=1 -timeout="${FUZZ_TIMEOUT:-25}" -rss_limit_mb=2048 \
		-artifact_prefix="$build/fuzz/artifacts/$t-" "$work" "$seeds" </dev/null >"$log" 2>&1
	rc=$?
	children_cpu
	cpu=$((CPU - cpu0))
	# a request nested 350,000 deep (under the 1 MiB cap) once crashed xosd
	# and the harness in yajl's recursion; too long for a seed (libFuzzer
	# sizes its inputs by the corpus): made and replayed here, whole
	if [ "$rc" -eq 0 ] && [ "$t" = request ]; then
		python3 -c 'import sys; n = 350000; sys.stdout.buffer.write(b"{\"v\":1,\"op\":\"ps\",\"jobs\":" + b"[" * n + b"]" * n + b"}")' >"$work/deep"
		"$bin" "$work/deep" </dev/null >>"$log" 2>&1 || rc=$?
		rm -f "$work/deep"
	fi
	[ "$check" = 0 ] || rm -rf "$work"
	execs=$(grep -a '^stat::number_of_executed_units:' "$log" | tail -1 | tr -dc 0-9)
	secs=$(grep -a '^Done [0-9]* runs in' "$log" | tail -1 | sed 's/.* in \([0-9]*\) second.*/\1/')
	cov=$(grep -ao 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1 | sed 's/: / /g')
	if [ "$rc" -eq 0 ] && [ -n "$execs" ]; then
		echo "ok $n - fuzz $t (${execs} runs, ${secs:-?} s, cpu ${cpu} s, ${cov:-no coverage figure})"
	else
		echo "not ok $n - fuzz $t: exit status $rc after cpu ${cpu} s (log: $log)"
		grep -aE '^(==[0-9]+==|SUMMARY|.*runtime error|artifact_prefix|Test unit written)' "$log" |
			head -20 | sed 's/^/#   /'
		fail=1
	fi
done
rm -f "$build/fuzz/.times.$$"
exit $fail
