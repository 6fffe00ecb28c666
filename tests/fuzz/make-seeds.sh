#!/usr/bin/env bash
# Seeds of the job, spec and status corpora (tests/fuzz/corpus/) from a real
# run: a private xosd (state under /tmp) runs a few jobs of different kinds,
# and their job.json records, unit specs (xos/in/unit.N, as the loader reads
# them) and end statuses (N.status) are copied. Needs root and a build (make
# all). Usage: tests/fuzz/make-seeds.sh [BUILD]   (default: build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
build=$(pwd)/${1:-build}
tmp=$(mktemp -d /tmp/xos-fuzz-seeds.XXXXXX)
chmod 0711 "$tmp"
export XOS_SOCKET=$tmp/run/xosd.sock PATH=$build:$PATH
"$build/xosd" --foreground --config /dev/null --state-dir "$tmp/state" --run-dir "$tmp/run" \
	--loader "$build/xos-loader" </dev/null >"$tmp/xosd.log" 2>&1 &
xosd=$!
cleanup() {
	xkill -s KILL "$(xps -q)" >/dev/null 2>&1 || true
	kill "$xosd" 2>/dev/null || true
	wait "$xosd" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
	xps >/dev/null 2>&1 && break
	sleep 0.1
done
# the specs are read (and removed) by the loader: keep copies while units start
xrun -- sh -c 'echo hi; exit 3' >/dev/null || true
xrun --memory 64M --pids 50 --disk 8M --files 100 -e A=b -w /tmp -- sh -c 'kill -9 $$' || true
id=$(xrun -d --name seed --restart on-failure --checkpoint-every 1h --keep 2 -- sleep 30)
xrun --job "$id" -- true
xrun --no-home -v /tmp:/data:ro -- true || true
xkill -s TERM "$id" >/dev/null
xwait "$id" >/dev/null || true
out=tests/fuzz/corpus
for d in "$tmp"/state/jobs/*/; do
	n=$(basename "$d")
	cp "$d/job.json" "$out/job/run-$n"
	for s in "$d"/xos/spool/*.status; do
		[ -e "$s" ] && cp "$s" "$out/status/run-$n-$(basename "$s" .status)"
	done
done
echo "seeds: $(find "$out/job" -type f | wc -l) job records, $(find "$out/status" -type f | wc -l) statuses"
