#!/usr/bin/env bash
# A/B start latency of several builds, with the phases of each job.
#   ROUNDS=120 [TMPFS_IDX="2 4"] tests/bench/ab-phases.sh BUILD_DIR...
# Each BUILD_DIR holds xosd, xrun and xos-loader. A private xosd per argument
# (a build may be named twice), `xrun -- /bin/true` interleaved, the order
# rotated every round, the first 3 rounds untimed. Prints medians in us: the
# whole xrun, and from the job's record (job.json: created, unit 1 started and
# ended by the loader, job ended): request, start, unit, report, end.
# TMPFS_IDX: the daemons (1-based) whose state and run directories are on a
# tmpfs of their own instead of /tmp. AB_CONF: an xosd.conf for every daemon
# (AB_CONF=<(echo pool_size = 2): pooled starts; rounds should then be apart,
# AB_GAP=0.2 seconds between them, for the pool to fill again). Needs root
# and jq; leaves nothing behind.
set -u
[ $# -gt 0 ] || { echo "usage: ROUNDS=N $0 BUILD_DIR..." >&2; exit 2; }
T=$(mktemp -d /tmp/xos-abp.XXXXXX)
chmod 711 "$T"
B=("$@")
n=$#
cat "${AB_CONF:-/dev/null}" >"$T/xosd.conf"
for i in $(seq 1 "$n"); do
	mkdir -p "$T/$i"
	case " ${TMPFS_IDX:-} " in *" $i "*) mount -t tmpfs -o mode=0711 xos-abp "$T/$i" ;; esac
	"${B[$((i - 1))]}/xosd" --foreground --config "$T/xosd.conf" --state-dir "$T/$i/state" \
		--run-dir "$T/$i/run" --loader "${B[$((i - 1))]}/xos-loader" </dev/null >"$T/$i.log" 2>&1 &
	echo $! >"$T/$i.pid"
done
sleep 1
for r in $(seq 1 "${ROUNDS:-40}"); do
	for k in $(seq 0 $((n - 1))); do
		i=$(((k + r) % n + 1))
		s=${EPOCHREALTIME/./}
		XOS_SOCKET=$T/$i/run/xosd.sock "${B[$((i - 1))]}/xrun" -- /bin/true
		e=${EPOCHREALTIME/./}
		[ "$r" -gt 3 ] && echo "$s $e" >>"$T/$i.t"
	done
	sleep "${AB_GAP:-0}"
done
sleep 0.5
for i in $(seq 1 "$n"); do
	for f in "$T/$i"/state/jobs/*/job.json; do
		jq -r '[.created_us, .units[0].started_us, .units[0].ended_us, .ended_us] | @tsv' "$f"
	done | sort -n | tail -n "$(wc -l <"$T/$i.t")" >"$T/$i.j"
	paste "$T/$i.t" "$T/$i.j" | awk -v b="${B[$((i - 1))]}" '
	function med(a, n,   i, j, t) {
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return a[int((n + 1) / 2)]
	}
	{ n++; w[n] = $2 - $1; p1[n] = $3 - $1; p2[n] = $4 - $3; p3[n] = $5 - $4; p4[n] = $6 - $5; p5[n] = $2 - $6 }
	END { printf "%-26s whole %6d | request %5d start %6d unit %5d report %5d end %5d\n", b, med(w, n), med(p1, n), med(p2, n), med(p3, n), med(p4, n), med(p5, n) }'
done
for i in $(seq 1 "$n"); do kill "$(cat "$T/$i.pid")"; done
for i in $(seq 1 "$n"); do wait "$(cat "$T/$i.pid")" 2>/dev/null; done
awk -v d="$T/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
rm -rf "/run/lxc/lock$T" "$T"
