#!/usr/bin/env bash
# A probe, not a feature: what would a container start without liblxc cost on
# this machine? tests/bench/direct-start.c starts a container with system
# calls of its own (clone3 into new namespaces, id maps, a cgroup in each
# hierarchy with limits, an idmapped overlay root on a tmpfs layer, /dev,
# proc, sysfs, pivot_root, lo up, capability drops, exec; no liblxc, no
# monitor, no double fork). This runs it side by side, in one interleaved
# run, with lxc-execute (busybox, userns, as run.sh does it) and with xos's
# own cold start (xrun against an xosd with pool_size = 0):
#
#   1. latency: median wall time of BENCH_DIRECT_N rounds of each, rotating
#   2. throughput: BENCH_DIRECT_JOBS starts of each from BENCH_DIRECT_LOOPS
#      parallel loops (in BENCH_DIRECT_TP_ROUNDS interleaved passes): jobs/s
#      and node CPU per start (/proc/stat, the idle machine's rate removed)
#   3. density: BENCH_DIRECT_IDLE idle containers of the direct kind against
#      as many idle xos jobs (xrun -d -- sleep 3600): MemAvailable drop and
#      slab per container
#   4. where the direct start's CPU goes (perf record -a, if perf samples)
#
# Reports ratios within this run; it asserts no timing.
#
#   XOS_BUILD=<build> tests/bench/direct-start.sh      (as root)
#
# Environment:
#   BENCH_DIRECT_N=40          latency rounds (after BENCH_DIRECT_WARMUP=3)
#   BENCH_DIRECT_JOBS=300      starts per kind in the throughput section
#   BENCH_DIRECT_LOOPS=4       parallel loops (submitters)
#   BENCH_DIRECT_TP_ROUNDS=2   throughput passes per kind, order rotated
#   BENCH_DIRECT_IDLE=100      idle containers per density fill
#   BENCH_DIRECT_DENSITY_ROUNDS=2  fills of each kind, order rotated
#   BENCH_DIRECT_CGROUPS=memory,cpu,cpuacct,pids,freezer,systemd,unified
#                              hierarchies the direct start makes a cgroup in
#                              (all ten here: add blkio,cpuset,devices)
#   BENCH_DIRECT_SECTIONS="latency throughput density perf"
#
# Everything lives under one directory in /tmp and is torn down on exit, also
# on failure or interruption: the probe's containers (its holder stopped by
# pid; the containers die with it), lxc containers, xosd and its jobs, the
# layers' mounts, the cgroups (depth first); then it checks that nothing is
# left.
set -euo pipefail
export LC_ALL=C

BENCH_NAME=direct-start
# shellcheck source=tests/bench/lib.bash
. "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
N=${BENCH_DIRECT_N:-40}
WARMUP=${BENCH_DIRECT_WARMUP:-3}
JOBS=${BENCH_DIRECT_JOBS:-300}
LOOPS=${BENCH_DIRECT_LOOPS:-4}
TP_ROUNDS=${BENCH_DIRECT_TP_ROUNDS:-2}
IDLE=${BENCH_DIRECT_IDLE:-100}
D_ROUNDS=${BENCH_DIRECT_DENSITY_ROUNDS:-2}
CGROUPS=${BENCH_DIRECT_CGROUPS:-memory,cpu,cpuacct,pids,freezer,systemd,unified}
SECTIONS=" ${BENCH_DIRECT_SECTIONS:-latency throughput density perf} "

note() { echo "direct-start: $*" >&2; }

bench_need_root "namespaces, cgroups, xosd and lxc-execute need it"
[ -n "${EPOCHREALTIME:-}" ] || die "needs bash >= 5 (EPOCHREALTIME)"
bench_need_bins xosd xos-loader xrun xps xwait xkill
for v in N WARMUP JOBS LOOPS TP_ROUNDS IDLE D_ROUNDS; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "BENCH_DIRECT_$v must be a whole number"
done
if [ "$N" -lt 1 ] || [ "$LOOPS" -lt 1 ] || [ "$TP_ROUNDS" -lt 1 ] || [ "$IDLE" -lt 1 ]; then
	die "BENCH_DIRECT_N, _LOOPS, _TP_ROUNDS and _IDLE must be >= 1"
fi
[[ $CGROUPS =~ ^[a-z_0-9]+(,[a-z_0-9]+)*$ ]] || die "BENCH_DIRECT_CGROUPS: a comma-separated list"
command -v jq >/dev/null || die "jq is required"
command -v cc >/dev/null || die "cc is required (the probe is built for the run)"
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
	die "a static /bin/busybox is required: apt-get install busybox-static"
fi
HAVE_LXC=0
command -v lxc-execute >/dev/null && HAVE_LXC=1
[ "$HAVE_LXC" = 1 ] || note "lxc-execute not found: its rows are skipped"
CLK_TCK=$(getconf CLK_TCK)

read -r SUB_BASE SUB_SIZE < <(awk -F: '$1 == "root" {print $2, $3; exit}' /etc/subuid)
[ -n "${SUB_BASE:-}" ] || die "no subordinate uid range for root in /etc/subuid"
[ "$SUB_SIZE" -ge $((2 * 65536)) ] || die "root's subordinate range is under two slices"
# the probe's slices: the top of root's range (xosd leases its own from the bottom)
DS_SLICES=$((SUB_SIZE / 65536 / 2))
[ "$DS_SLICES" -le 1024 ] || DS_SLICES=1024
DS_BASE=$((SUB_BASE + (SUB_SIZE / 65536 - DS_SLICES) * 65536))

# ---------------------------------------------------------------------------
# State and teardown

T=
TAG="xbd$$"        # names of our lxc containers
CGP="xos-bench-direct.$$" # the probe's cgroup (its containers' are below) in each hierarchy
HOLD_PID=
BG_PIDS=()
LXC_NAMES=()
IFS=, read -r -a CG_LIST <<<"$CGROUPS"

our_mounts() {
	[ -n "$T" ] || return 0
	awk -v d="$T/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r
}

# our cgroup directories, deepest first: the probe's, our lxc containers',
# and those of our xosd's jobs
our_cgroups() {
	local ids="" d
	if [ -n "$T" ] && [ -d "$T/state/jobs" ]; then
		for d in "$T"/state/jobs/*; do [ -d "$d" ] && ids+="xos-${d##*/}"$'\n'; done
	fi
	find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d \( -name "$CGP" -o -name "lxc.*.$TAG-*" \
		-o -name 'lxc.*.xos-*' \) 2>/dev/null | while read -r d; do
		case ${d##*/} in
		"$CGP" | lxc.*."$TAG"-*) find "$d" -depth -type d ;;
		*) grep -qxF "${d##*/lxc.*.}" <<<"$ids" && echo "$d" ;;
		esac
	done
	return 0
}

our_processes() {
	[ -n "$T" ] || return 0
	{ pgrep -f -- "$T/" 2>/dev/null || true; } | grep -vx -e "$$" -e "$BASHPID" || true
}

stop_holder() {
	[ -n "$HOLD_PID" ] || return 0
	kill -TERM "$HOLD_PID" 2>/dev/null || true
	for _ in $(seq 300); do
		kill -0 "$HOLD_PID" 2>/dev/null || break
		sleep 0.1
	done
	# (its containers die with it: PR_SET_PDEATHSIG)
	kill -KILL "$HOLD_PID" 2>/dev/null || true
	wait "$HOLD_PID" 2>/dev/null || true
	HOLD_PID=
}

xos_kill_all() {
	local ids
	[ -n "$XOSD_PID" ] || return 0
	ids=$(timeout 30 "$BUILD/xps" -q 2>/dev/null || true)
	[ -n "$ids" ] || return 0
	# shellcheck disable=SC2086 # (one id a word)
	timeout 30 "$BUILD/xkill" -s KILL $ids >/dev/null 2>&1 || true
	# shellcheck disable=SC2086
	timeout 300 "$BUILD/xwait" $ids >/dev/null 2>&1 || true
}

cleanup() {
	local rc=$? p c m left=""
	set +e
	trap - EXIT INT TERM HUP ERR
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	[ -n "${PERF_PID:-}" ] && kill -INT "$PERF_PID" 2>/dev/null && wait "$PERF_PID" 2>/dev/null
	stop_holder
	xos_kill_all
	bench_xosd_stop
	if [ "$HAVE_LXC" = 1 ] && [ -n "$T" ]; then
		for c in "${LXC_NAMES[@]}"; do
			if lxc-info -P "$T/lxc" -n "$c" -s 2>/dev/null | grep -qv STOPPED; then
				timeout 20 lxc-stop -P "$T/lxc" -n "$c" -k >/dev/null 2>&1
			fi
		done
	fi
	for _ in $(seq 50); do
		[ -z "$(our_processes)" ] && break
		sleep 0.1
	done
	our_mounts | while read -r m; do umount -l "$m" 2>/dev/null; done
	for _ in $(seq 20); do
		our_cgroups | while read -r c; do rmdir "$c" 2>/dev/null; done
		[ -z "$(our_cgroups)" ] && break
		sleep 0.1
	done
	if [ -n "$T" ]; then
		rm -rf "/run/lxc/lock$T"
		rmdir /run/lxc/lock/tmp 2>/dev/null
		m=$(our_mounts)
		[ -n "$m" ] && left+="mounts:"$'\n'"$m"$'\n'
		c=$(our_cgroups)
		[ -n "$c" ] && left+="cgroups:"$'\n'"$c"$'\n'
		p=$(our_processes)
		[ -n "$p" ] && left+="processes:"$'\n'"$(ps -o pid=,args= -p "$(paste -sd, <<<"$p")")"$'\n'
		if [ -z "$left" ]; then
			rm -rf "$T"
			echo "teardown: clean (no mounts, cgroups or processes left; $T removed)"
		else
			echo "direct-start: teardown found leftovers (left in place under $T):" >&2
			echo "$left" >&2
			rc=1
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "direct-start: command failed at line $LINENO" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

bench_tmpdir direct
ERRLOG="$T/errors.log"
: >"$ERRLOG"
mkdir "$T/mnt" "$T/layers" "$T/lxc"
chmod 0711 "$T/lxc"

# ---------------------------------------------------------------------------
# Setup: the probe, two busybox roots, lxc containers, the probe's cgroups,
# a cold xosd

DS="$T/direct-start"
cc -O2 -Wall -Wextra -o "$DS" "$ROOT/tests/bench/direct-start.c" 2>"$T/cc.log" ||
	die "the probe does not build: $(tail -n 5 "$T/cc.log")"

make_rootfs() { # DIR OWNER
	local a
	mkdir -p "$1"/{bin,sbin,etc,proc,sys,dev,tmp,root,usr/bin,usr/sbin}
	cp /bin/busybox "$1/bin/busybox"
	for a in $("$1/bin/busybox" --list); do
		[ -e "$1/bin/$a" ] || ln -s busybox "$1/bin/$a"
	done
	echo 'root:x:0:0:root:/root:/bin/sh' >"$1/etc/passwd"
	echo 'root:x:0:' >"$1/etc/group"
	chmod 0755 "$1"
	chmod 1777 "$1/tmp"
	chown -hR "$2:$2" "$1"
}
# lxc-execute's, owned by the container's root as run.sh makes it; the
# probe's, owned by host root and idmapped per container (as xos's templates)
make_rootfs "$T/rootfs" "$SUB_BASE"
make_rootfs "$T/rootfs-direct" 0

lxc_container() { # NAME
	mkdir -p "$T/lxc/$1"
	{
		echo "lxc.uts.name = $1"
		echo "lxc.rootfs.path = dir:$T/rootfs"
		echo "lxc.idmap = u 0 $SUB_BASE $SUB_SIZE"
		echo "lxc.idmap = g 0 $SUB_BASE $SUB_SIZE"
		# as run.sh, and as xosd configures its job containers
		echo "lxc.net.0.type = empty"
		echo "lxc.tty.max = 0"
		echo "lxc.pty.max = 0"
		echo "lxc.console.path = none"
		echo "lxc.autodev = 1"
		echo "lxc.mount.auto = proc:mixed sys:ro"
		echo "lxc.log.file = $T/lxc-$1.log"
		echo "lxc.log.level = ERROR"
	} >"$T/lxc/$1/config"
	LXC_NAMES+=("$1")
}
if [ "$HAVE_LXC" = 1 ]; then
	lxc_container "$TAG-u"
	for k in $(seq "$LOOPS"); do lxc_container "$TAG-c$k"; done
fi

for h in "${CG_LIST[@]}"; do
	[ -d "/sys/fs/cgroup/$h" ] || die "no cgroup hierarchy at /sys/fs/cgroup/$h (BENCH_DIRECT_CGROUPS)"
	mkdir "/sys/fs/cgroup/$h/$CGP"
	if [ "$h" = cpuset ]; then # (v1: a cpuset's tasks need its cpus and mems; children copy them)
		cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset/$CGP/cpuset.cpus"
		cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset/$CGP/cpuset.mems"
		echo 1 >"/sys/fs/cgroup/cpuset/$CGP/cgroup.clone_children"
	fi
done
DS_OPTS=(-r "$T/rootfs-direct" -m "$T/mnt" -l "$T/layers" -g "$CGP" -c "$CGROUPS"
	-b "$DS_BASE" -s "$DS_SLICES")

printf 'pool_size = 0\nkeep_ended = 100000\n' >"$T/cold.conf"
bench_xosd_start "$T/cold.conf"

# ---------------------------------------------------------------------------
# The kinds: each starts one container running /bin/true and returns when it
# has ended

v_direct() { "$DS" "${DS_OPTS[@]}" run -- /bin/true; }
v_lxc() { lxc-execute -n "$TAG-${1:-u}" -P "$T/lxc" -- /bin/true; }
v_xrun() { "$BUILD/xrun" -- /bin/true; }
KINDS=(v_direct)
[ "$HAVE_LXC" = 1 ] && KINDS+=(v_lxc)
KINDS+=(v_xrun)
declare -A LABEL=(
	[v_direct]="direct start (the probe, busybox, userns)"
	[v_direct_in]="  the same, one probe process per loop"
	[v_lxc]="lxc-execute (busybox, userns)"
	[v_xrun]="xrun -- (xosd pool_size = 0: cold start)"
)
declare -A FAILS=() MED=() TPS=() CPU=()

"$DS" "${DS_OPTS[@]}" run -- /bin/true 2>>"$ERRLOG" ||
	die "the probe cannot start a container here: $(tail -n 3 "$ERRLOG")"

timed() { # KIND: its wall time in microseconds to T/lat.KIND
	local s e
	s=${EPOCHREALTIME/./}
	if "$1" </dev/null >/dev/null 2>>"$ERRLOG"; then
		e=${EPOCHREALTIME/./}
		echo $((e - s)) >>"$T/lat.$1"
	else
		FAILS[$1]=$((${FAILS[$1]:-0} + 1))
	fi
}

# median p90 min count, in ms, of a file of microsecond values
stats() {
	[ -s "$1" ] || {
		echo "- - - 0"
		return
	}
	sort -n "$1" | awk '{a[NR] = $1}
		END {
			m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			p = int(0.9 * NR); if (p < 0.9 * NR) p++; if (p < 1) p = 1
			printf "%.1f %.1f %.1f %d\n", m / 1000, a[p] / 1000, a[1] / 1000, NR
		}'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-" || b == 0) print "n/a"; else printf "%.2fx", a / b }'; }

busy_jiffies() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }
meminfo_kb() { awk -v k="$1:" '$1 == k {print $2}' /proc/meminfo; }

echo "== direct start without liblxc: a probe ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
echo "machine:  $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "xos:      git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), binaries of $BUILD"
[ "$HAVE_LXC" = 1 ] && echo "lxc:      $(lxc-execute --version 2>/dev/null | head -1)"
echo "direct:   cgroups in $CGROUPS; slices of 65536 ids from $DS_BASE; lower: busybox, idmapped"
echo

# ---------------------------------------------------------------------------
# 1. Latency

latency() {
	local nk=${#KINDS[@]} r k v med p90 min cnt
	echo "== 1. latency: one start of /bin/true, returning when it has ended"
	echo "   ($N interleaved rounds, order rotated; $WARMUP untimed runs of each first)"
	for v in "${KINDS[@]}"; do
		for _ in $(seq "$WARMUP"); do "$v" </dev/null >/dev/null 2>>"$ERRLOG" || true; done
	done
	for r in $(seq "$N"); do
		for k in $(seq 0 $((nk - 1))); do timed "${KINDS[$(((r + k) % nk))]}"; done
	done
	printf '\n   %-44s %8s %8s %8s %5s\n' "" median p90 min runs
	for v in "${KINDS[@]}"; do
		read -r med p90 min cnt < <(stats "$T/lat.$v")
		MED[$v]=$med
		printf '   %-44s %8s %8s %8s %5s%s\n' "${LABEL[$v]}" "$med" "$p90" "$min" "$cnt" \
			"${FAILS[$v]:+  (${FAILS[$v]} failed)}"
	done
	echo "   (milliseconds)"
	echo "   ratios of medians: direct / lxc-execute = $(ratio "${MED[v_direct]}" "${MED[v_lxc]:-}")," \
		"direct / xrun cold = $(ratio "${MED[v_direct]}" "${MED[v_xrun]}")," \
		"xrun cold / lxc-execute = $(ratio "${MED[v_xrun]}" "${MED[v_lxc]:-}") (aim 1.0x)"
	# where a cold xrun's time went, from its jobs' records (xosd's and the
	# loader's timestamps; the jobs so far are this section's)
	"$BUILD/xps" -a --json | jq -r '.[] | select(.units[0].started_us != null and .ended_us != null) |
		"\(.started_us - .created_us) \(.units[0].started_us - .created_us) \(.ended_us - .created_us)"' |
		awk '{ for (i = 1; i <= 3; i++) v[i, NR] = $i }
		function med(k,   a, i, j, t) {
			for (i = 1; i <= NR; i++) a[i] = v[k, i]
			for (i = 2; i <= NR; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
			return (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) / 1000
		}
		END { if (NR) printf "   xrun cold, from its %d jobs'"'"' records (medians, ms): created -> RUNNING (dirs, root, config,\n" \
			"    liblxc start) %.1f; created -> unit 1 started by the loader %.1f; created -> ended %.1f\n", NR, med(1), med(2), med(3) }'
	echo
}

# ---------------------------------------------------------------------------
# 2. Throughput and CPU per start

# the machine's busy jiffies per second while nothing of ours runs (2 s)
baseline_rate() {
	local a b s e
	a=$(busy_jiffies)
	s=$EPOCHREALTIME
	sleep 2
	b=$(busy_jiffies)
	e=$EPOCHREALTIME
	awk -v a="$a" -v b="$b" -v s="$s" -v e="$e" 'BEGIN { printf "%.2f", (b - a) / (e - s) }'
}

# one pass of KIND: COUNT starts from LOOPS loops; appends "starts seconds
# jiffies failures" to T/tp.KIND
tp_pass() { # KIND COUNT
	local kind=$1 count=$2 k n s e j0 j1 fails ids=() bad
	rm -f "$T"/fail.* "$T"/ids.*
	j0=$(busy_jiffies)
	s=${EPOCHREALTIME/./}
	BG_PIDS=()
	for k in $(seq "$LOOPS"); do
		n=$((count / LOOPS + (k <= count % LOOPS ? 1 : 0)))
		case $kind in
		v_direct_in) # one probe process starting n containers, one after another
			("$DS" "${DS_OPTS[@]}" run -n "$n" -- /bin/true </dev/null >/dev/null 2>>"$ERRLOG" ||
				echo x >>"$T/fail.$k") &
			;;
		v_xrun) # xrun -d as run.sh's throughput pass, xwait below
			(for _ in $(seq "$n"); do
				"$BUILD/xrun" -d -- /bin/true </dev/null 2>>"$ERRLOG" || echo x >>"$T/fail.$k"
			done >"$T/ids.$k") &
			;;
		*)
			(for _ in $(seq "$n"); do
				"$kind" "c$k" </dev/null >/dev/null 2>>"$ERRLOG" || echo x >>"$T/fail.$k"
			done) &
			;;
		esac
		BG_PIDS+=("$!")
	done
	for k in "${BG_PIDS[@]}"; do wait "$k"; done
	BG_PIDS=()
	bad=0
	if [ "$kind" = v_xrun ]; then
		mapfile -t ids < <(cat "$T"/ids.*)
		if [ ${#ids[@]} -gt 0 ]; then
			"$BUILD/xwait" "${ids[@]}" >/dev/null 2>>"$ERRLOG" || true
			bad=$("$BUILD/xps" -a --json "${ids[@]}" |
				jq '[.[] | select(.state != "EXITED" or .exit_code != 0)] | length')
		fi
	fi
	e=${EPOCHREALTIME/./}
	j1=$(busy_jiffies)
	fails=$({ cat "$T"/fail.* 2>/dev/null || true; } | wc -l)
	echo "$count $((e - s))e-6 $((j1 - j0)) $((fails + bad))" >>"$T/tp.$kind"
}

throughput() {
	local kinds=(v_direct v_direct_in) per r i nk v base0 base1 base tps net raw n f
	[ "$HAVE_LXC" = 1 ] && kinds+=(v_lxc)
	kinds+=(v_xrun)
	nk=${#kinds[@]}
	per=$(((JOBS + TP_ROUNDS - 1) / TP_ROUNDS))
	echo "== 2. throughput: $((per * TP_ROUNDS)) starts of /bin/true per kind from $LOOPS parallel loops"
	echo "   ($TP_ROUNDS passes of $per per kind, interleaved, order rotated; CPU: the machine's"
	echo "    busy time from /proc/stat over each pass, less the idle machine's rate, per start)"
	base0=$(baseline_rate)
	for r in $(seq 0 $((TP_ROUNDS - 1))); do
		for i in $(seq 0 $((nk - 1))); do
			if [ $((r % 2)) = 0 ]; then v=${kinds[$i]}; else v=${kinds[$((nk - 1 - i))]}; fi
			tp_pass "$v" "$per"
		done
	done
	base1=$(baseline_rate)
	base=$(awk -v a="$base0" -v b="$base1" 'BEGIN { printf "%.2f", (a + b) / 2 }')
	printf '\n   %-44s %8s %12s %12s %6s %6s\n' "" "jobs/s" "CPU ms/start" "(raw)" starts failed
	for v in "${kinds[@]}"; do
		read -r tps net raw n f < <(awk -v hz="$CLK_TCK" -v base="$base" '
			{ n += $1; t += $2; j += $3; f += $4 }
			END { printf "%.1f %.1f %.1f %d %d\n", n / t, (j - base * t) * 1000 / hz / n,
				j * 1000 / hz / n, n, f }' "$T/tp.$v")
		TPS[$v]=$tps
		CPU[$v]=$net
		printf '   %-44s %8s %12s %12s %6s %6s\n' "${LABEL[$v]}" "$tps" "$net" "$raw" "$n" "$f"
	done
	echo "   (idle machine: $base0 and $base1 busy jiffies/s before and after; $CLK_TCK jiffies a second a CPU)"
	echo "   ratios of jobs/s: direct / lxc-execute = $(ratio "${TPS[v_direct]}" "${TPS[v_lxc]:-}")," \
		"xrun cold / lxc-execute = $(ratio "${TPS[v_xrun]}" "${TPS[v_lxc]:-}")," \
		"direct / xrun cold = $(ratio "${TPS[v_direct]}" "${TPS[v_xrun]}")"
	echo "   ratios of CPU per start: direct / lxc-execute = $(ratio "${CPU[v_direct]}" "${CPU[v_lxc]:-}")," \
		"direct / xrun cold = $(ratio "${CPU[v_direct]}" "${CPU[v_xrun]}")," \
		"direct (one process per loop) / direct = $(ratio "${CPU[v_direct_in]}" "${CPU[v_direct]}")"
	echo
}

# ---------------------------------------------------------------------------
# 3. Density

wait_ready() { # FILE PID: until the holder says ready (10 min at most)
	for _ in $(seq 6000); do
		grep -q '^ready' "$1" 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || die "the probe's holder ended: $(tail -n 3 "$ERRLOG")"
		sleep 0.1
	done
	die "the probe's holder did not get $IDLE containers running in 10 min"
}

xos_fill() { # COUNT: idle jobs from LOOPS submitters, until all RUNNING
	local count=$1 k n
	BG_PIDS=()
	for k in $(seq "$LOOPS"); do
		n=$((count / LOOPS + (k <= count % LOOPS ? 1 : 0)))
		(for _ in $(seq "$n"); do
			"$BUILD/xrun" -d -- sleep 3600 </dev/null >/dev/null 2>>"$ERRLOG" || echo x >>"$T/fail.d"
		done) &
		BG_PIDS+=("$!")
	done
	for k in "${BG_PIDS[@]}"; do wait "$k"; done
	BG_PIDS=()
	[ ! -s "$T/fail.d" ] || die "$(wc -l <"$T/fail.d") xrun -d failed: $(tail -n 2 "$ERRLOG")"
	for _ in $(seq 1200); do
		n=$("$BUILD/xps" --json | jq '[.[] | select(.state == "RUNNING")] | length')
		[ "$n" -ge "$count" ] && return 0
		sleep 0.5
	done
	die "only $n of $count xos jobs running after 10 min"
}

# one fill of KIND (d_sleep, d_two or d_xos): "MiB-per-container slab-MiB-per-container" to T/den.KIND
density_fill() { # KIND
	local kind=$1 m0 s0 m1 s1 t0 t1
	rm -f "$T/fail.d" "$T/hold.out"
	sleep 2
	sync
	m0=$(meminfo_kb MemAvailable)
	s0=$(meminfo_kb Slab)
	t0=$EPOCHREALTIME
	case $kind in
	d_xos) xos_fill "$IDLE" ;;
	*)
		if [ "$kind" = d_sleep ]; then
			"$DS" "${DS_OPTS[@]}" hold "$IDLE" -- /bin/sleep 3600 >"$T/hold.out" 2>>"$ERRLOG" &
		else # two processes, as the loader and a unit: sh as init, sleep its child
			"$DS" "${DS_OPTS[@]}" hold "$IDLE" -- /bin/sh -c 'sleep 3600 & wait' \
				>"$T/hold.out" 2>>"$ERRLOG" &
		fi
		HOLD_PID=$!
		wait_ready "$T/hold.out" "$HOLD_PID"
		;;
	esac
	t1=$EPOCHREALTIME
	sleep 2
	sync
	m1=$(meminfo_kb MemAvailable)
	s1=$(meminfo_kb Slab)
	awk -v m0="$m0" -v m1="$m1" -v s0="$s0" -v s1="$s1" -v n="$IDLE" -v t0="$t0" -v t1="$t1" \
		'BEGIN { printf "%.3f %.3f %.1f\n", (m0 - m1) / 1024 / n, (s1 - s0) / 1024 / n, (t1 - t0) }' \
		>>"$T/den.$kind"
	if [ "$kind" = d_xos ]; then xos_kill_all; else stop_holder; fi
}

density() {
	local kinds=(d_sleep d_two d_xos) nk=3 r i v
	declare -A dl=(
		[d_sleep]="direct, init = busybox sleep (1 process)"
		[d_two]="direct, init = sh + a sleep child (2 processes)"
		[d_xos]="xos job: xrun -d -- sleep 3600 (pool_size = 0)"
	)
	echo "== 3. density: $IDLE idle containers at once, $D_ROUNDS fills of each kind, order rotated"
	for r in $(seq 0 $((D_ROUNDS - 1))); do
		for i in $(seq 0 $((nk - 1))); do
			if [ $((r % 2)) = 0 ]; then v=${kinds[$i]}; else v=${kinds[$((nk - 1 - i))]}; fi
			density_fill "$v"
		done
	done
	printf '\n   %-50s %14s %14s %10s\n' "MiB per idle container (each fill)" "MemAvailable" "of it slab" "fill s"
	for v in "${kinds[@]}"; do
		awk -v l="${dl[$v]}" '{ m[NR] = $1; s[NR] = $2; t[NR] = $3; sm += $1; ss += $2 }
			END {
				for (i = 1; i <= NR; i++) { ms = ms (i > 1 ? " / " : "") m[i]; sl = sl (i > 1 ? " / " : "") s[i]; ts = ts (i > 1 ? "/" : "") t[i] }
				printf "   %-50s %14.2f %14.2f %10s   (%s; slab %s)\n", l, sm / NR, ss / NR, ts, ms, sl
			}' "$T/den.$v"
		awk '{ s += $1 } END { printf "%.3f\n", s / NR }' "$T/den.$v" >"$T/denavg.$v"
	done
	echo "   ratios: direct (1 process) / xos = $(ratio "$(cat "$T/denavg.d_sleep")" "$(cat "$T/denavg.d_xos")")," \
		"direct (2 processes) / xos = $(ratio "$(cat "$T/denavg.d_two")" "$(cat "$T/denavg.d_xos")")"
	echo "   (an xos job: liblxc's monitor, the loader and its unit, 2 x 10 cgroups, a veth-less netns;"
	echo "    the probe's: its init (and child), ${#CG_LIST[@]} cgroups, a netns, no monitor)"
	echo
}

# ---------------------------------------------------------------------------
# 4. Where the direct start's CPU goes

perf_section() {
	local n=100 line
	echo "== 4. where the direct start's CPU goes: $n starts by one probe process, one after another"
	line=$("$DS" -v "${DS_OPTS[@]}" run -n "$n" -- /bin/true 2>&1 >/dev/null | tail -n 1)
	echo "   without perf: ${line#direct-start: }"
	if ! command -v perf >/dev/null || ! perf stat -e task-clock true >/dev/null 2>&1; then
		echo "   (no perf that can sample here: no breakdown)"
		echo
		return 0
	fi
	# (the probe's process tree only: the kernel's deferred work, the network
	# namespace's cleanup in a kworker above all, is in section 2's CPU, not here)
	perf record -q -g -F 999 -o "$T/perf.data" -- "$DS" "${DS_OPTS[@]}" run -n "$n" -- /bin/true \
		>/dev/null 2>>"$ERRLOG" || true
	echo "   perf record -g -F 999 of the probe's process tree, CPU ms per start:"
	perf script -i "$T/perf.data" -F comm 2>/dev/null | awk -v n="$n" '
		{ c = $0; gsub(/^ +| +$/, "", c); s[c == "true" ? "the child after its exec (/bin/true)" : "the parent, and the child until its exec"]++; t++ }
		END { for (k in s) printf "   %8.2f  %s\n", s[k] * 1000 / 999 / n, k; printf "   %8.2f  in all\n", t * 1000 / 999 / n }' |
		sort -rn
	echo "   inclusive CPU ms per start of the kernel paths that matter (they overlap):"
	perf report -i "$T/perf.data" --children --sort sym --stdio -g none 2>/dev/null |
		awk -v n="$n" -v tot="$(perf script -i "$T/perf.data" -F comm 2>/dev/null | wc -l)" '
		BEGIN {
			split("copy_process|copy_namespaces|copy_net_ns|copy_mnt_ns|dup_mmap|asm_exc_page_fault|__x64_sys_execve|exit_mmap|__x64_sys_mount|__do_sys_pivot_root|__x64_sys_umount|cgroup_mkdir|cgroup_rmdir|ovl_fill_super|__do_sys_fsconfig|__x64_sys_openat|__x64_sys_close|__x64_sys_write|__x64_sys_ioctl", w, "|")
			for (i in w) want[w[i]] = i
			d["copy_process"] = "clone3: the new task"; d["copy_namespaces"] = "  of it: the namespaces"
			d["copy_net_ns"] = "    of them: the network namespace"; d["copy_mnt_ns"] = "    of them: the mount namespace (a copy of the host'"'"'s)"
			d["dup_mmap"] = "  of it: the copy of the parent'"'"'s memory map"; d["asm_exc_page_fault"] = "page faults (copy-on-write after the fork, exec)"
			d["__x64_sys_execve"] = "execve of INIT"; d["exit_mmap"] = "the address spaces torn down (exec, exit)"
			d["__x64_sys_mount"] = "mount(2) in the child (/dev, nodes, devpts, proc, sysfs)"; d["__do_sys_pivot_root"] = "pivot_root"
			d["__x64_sys_umount"] = "umount: the old root (child), the layer (parent)"; d["cgroup_mkdir"] = "cgroups made"; d["cgroup_rmdir"] = "cgroups removed"
			d["ovl_fill_super"] = "the overlay'"'"'s superblock"; d["__do_sys_fsconfig"] = "fsconfig (tmpfs layer, overlay)"
			d["__x64_sys_openat"] = "openat"; d["__x64_sys_close"] = "close"; d["__x64_sys_write"] = "write (id maps, cgroup files)"
			d["__x64_sys_ioctl"] = "ioctl (lo up)"
		}
		$4 in want { v[want[$4]] = $1 + 0 }
		END { for (i = 1; i <= length(w); i++) if (i in v) printf "   %8.2f  %s\n", v[i] / 100 * tot * 1000 / 999 / n, d[w[i]] }'
	xos_split
	echo
}

# The same run's cold xos job, split by process as cpu-split.sh does it:
# what a start without liblxc would replace (the spawner's children)
xos_split() {
	local n=$((100 / LOOPS * LOOPS)) k s e ids=()
	perf record -q -a -F 999 -o "$T/perf-xos.data" -- sleep 3600 >/dev/null 2>&1 &
	PERF_PID=$!
	sleep 0.5
	s=$EPOCHREALTIME
	BG_PIDS=()
	for k in $(seq "$LOOPS"); do
		(for _ in $(seq $((n / LOOPS))); do
			"$BUILD/xrun" -d -- /bin/true </dev/null 2>>"$ERRLOG" || true
		done >"$T/ids.$k") &
		BG_PIDS+=("$!")
	done
	for k in "${BG_PIDS[@]}"; do wait "$k"; done
	BG_PIDS=()
	mapfile -t ids < <(cat "$T"/ids.*)
	[ ${#ids[@]} -eq 0 ] || "$BUILD/xwait" "${ids[@]}" >/dev/null 2>>"$ERRLOG" || true
	e=$EPOCHREALTIME
	kill -INT "$PERF_PID"
	wait "$PERF_PID" 2>/dev/null || true
	PERF_PID=
	echo "   a cold xos job, for comparison: $n from $LOOPS submitters ($(awk -v n="$n" -v a="$s" -v b="$e" \
		'BEGIN { printf "%.1f", n / (b - a) }') jobs/s under perf -a), CPU ms per job by process:"
	perf script -i "$T/perf-xos.data" -F comm 2>/dev/null | awk -v n="$n" '
		{ c = $0; gsub(/^ +| +$/, "", c)
		  if (c == "xosd-spawner") k = "liblxc start and monitors (the spawner'"'"'s children)"
		  else if (c == "xosd") k = "xosd"
		  else if (c == "loader") k = "the loader"
		  else if (c == "true") k = "the unit (/bin/true)"
		  else if (c == "xrun" || c == "xos") k = "xrun"
		  else if (c == "swapper") k = "idle"
		  else k = "the rest (other processes, kernel threads)"
		  s[k]++ }
		END { for (k in s) printf "   %8.2f  %s\n", s[k] * 1000 / 999 / n, k }' | sort -rn
}

case $SECTIONS in *" latency "*) latency ;; esac
case $SECTIONS in *" throughput "*) throughput ;; esac
case $SECTIONS in *" density "*) density ;; esac
case $SECTIONS in *" perf "*) perf_section ;; esac

if [ -s "$ERRLOG" ]; then
	echo "== errors seen (last lines of $ERRLOG)"
	tail -n 10 "$ERRLOG" | sed 's/^/   /'
	echo
fi
