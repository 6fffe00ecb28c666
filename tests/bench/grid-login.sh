#!/usr/bin/env bash
# xrun -- /bin/true of a grid login against that of a local user, on one
# private xosd, interleaved (issue 12's benchmark: within 1.1x).
#   ROUNDS=40 [VO_POLICY=1] tests/bench/grid-login.sh [BUILD_DIR]
# VO_POLICY=1: biomed has a policy file (vo.d, xos-vo.conf(5)) that every
# grid xrun is checked against (VO_POLICY_TEXT: its lines, instead of
# limits that give each job 256M of memory).
# The logged-in runs find the agent through one XDG_RUNTIME_DIR, the local
# ones look in another (empty): same session, same xosd. The first 3 rounds
# are untimed. Prints the medians in ms and their ratio. Needs root and
# openssl; leaves nothing behind.
set -u
B=$(cd "${1:-build}" && pwd)
R=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /tmp/xos-bench-grid.XXXXXX)
chmod 711 "$T"
mkdir -m 0700 "$T/xdg-grid" "$T/xdg-local"
mkdir -m 0711 "$T/homes"
cleanup() {
	XDG_RUNTIME_DIR=$T/xdg-grid XOS_SOCKET=$T/run/xosd.sock "$B/xlogout" >/dev/null 2>&1
	[ -s "$T/pid" ] && kill "$(cat "$T/pid")" 2>/dev/null && sleep 1
	rm -rf "$T"
	# (liblxc leaves its lock directory of the containers of a job killed
	# at the end: /run/lxc/lock/<lxcpath>)
	rm -rf "/run/lxc/lock$T"
	rmdir /run/lxc/lock/tmp 2>/dev/null || true
}
trap cleanup EXIT
"$R/tests/tools/mkcerts.sh" "$T/certs" >/dev/null 2>&1 || { echo "mkcerts.sh failed" >&2; exit 1; }
cat >"$T/xosd.conf" <<CONF
credential_trust_dir = $T/certs/trust
credential_vos = biomed
pool_uids = 700000-700099
pool_home = $T/homes
CONF
if [ -n "${VO_POLICY:-}" ]; then
	mkdir "$T/vo.d"
	printf '%b\n' "${VO_POLICY_TEXT:-templates = host\njob_memory = 256M\nvo_jobs = 100\nvo_memory = 64G\nnetwork = bridge}" \
		>"$T/vo.d/biomed.conf"
	echo "vo_policy_dir = $T/vo.d" >>"$T/xosd.conf"
fi
"$B/xosd" --foreground --config "$T/xosd.conf" --state-dir "$T/state" --run-dir "$T/run" \
	--loader "$B/xos-loader" </dev/null >"$T/xosd.log" 2>&1 &
echo $! >"$T/pid"
export XOS_SOCKET=$T/run/xosd.sock
for _ in $(seq 100); do [ -S "$XOS_SOCKET" ] && break; sleep 0.05; done
XDG_RUNTIME_DIR=$T/xdg-grid "$B/xlogin" --cert "$T/certs/alice.pem" --key "$T/certs/alice.key" \
	>/dev/null || { echo "xlogin failed" >&2; exit 1; }
for r in $(seq 1 "${ROUNDS:-40}"); do
	for kind in grid local; do
		s=${EPOCHREALTIME/./}
		XDG_RUNTIME_DIR=$T/xdg-$kind "$B/xrun" -- /bin/true || echo "xrun ($kind) failed" >&2
		e=${EPOCHREALTIME/./}
		[ "$r" -gt 3 ] && echo $((e - s)) >>"$T/$kind.t"
	done
done
med() { sort -n "$1" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
g=$(med "$T/grid.t")
l=$(med "$T/local.t")
awk -v g="$g" -v l="$l" 'BEGIN { printf "xrun -- /bin/true, median of %d: local user %.1f ms, grid login %.1f ms, ratio %.3f\n", '"$(wc -l <"$T/grid.t")"', l / 1000, g / 1000, g / l }'
