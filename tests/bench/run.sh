#!/usr/bin/env bash
# xos benchmarks: start latency and throughput of xrun, side by side in one run
# with lxc-execute and runc on the same machine. Reports only; it asserts no timing.
#
#   make bench            (as root, from the repository root)
#   tests/bench/run.sh
#
# Environment:
#   BENCH_N=50           start-latency runs per variant (interleaved rounds)
#   BENCH_WARMUP=3       untimed runs per variant first
#   BENCH_JOBS=500       detached xrun jobs per throughput pass
#   BENCH_SUBMITTERS=4   concurrent submitters in the concurrent pass
#   BENCH_PEER_JOBS=100  lxc-execute / runc runs per throughput pass
#   BENCH_TRACE=1        break down a few xrun with strace on xosd (0: skip)
#   BENCH_TRACE_N=5      traced xrun runs
#   BENCH_KEEP_LOGS=DIR  copy the daemons' logs and the traces there
#   BENCH_NET=1          section 4: --net bridge against --net none (0: skip)
#   BENCH_NET_ONLY=1     run only section 4 (after the machine lines)
#
# Everything it makes lives under one directory in /tmp and is torn down on
# exit, also on failure or interruption: its xosd daemons, containers, mounts,
# cgroups of its own containers. It then checks that nothing is left.
set -euo pipefail
export LC_ALL=C

# shellcheck source=tests/bench/lib.bash
. "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
N=${BENCH_N:-50}
WARMUP=${BENCH_WARMUP:-3}
JOBS=${BENCH_JOBS:-500}
SUBMITTERS=${BENCH_SUBMITTERS:-4}
PEER_JOBS=${BENCH_PEER_JOBS:-100}
TRACE=${BENCH_TRACE:-1}
TRACE_N=${BENCH_TRACE_N:-5}
NET=${BENCH_NET:-1}
NET_ONLY=${BENCH_NET_ONLY:-0}

note() { echo "bench: $*" >&2; }

bench_need_root "xosd, lxc-execute and runc need it"
[ -n "${EPOCHREALTIME:-}" ] || die "needs bash >= 5 (EPOCHREALTIME)"
bench_need_bins xosd xos-loader xrun xps xwait xkill
for v in N WARMUP JOBS SUBMITTERS PEER_JOBS TRACE_N; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number"
done
if [ "$N" -lt 1 ] || [ "$SUBMITTERS" -lt 1 ]; then
	die "BENCH_N and BENCH_SUBMITTERS must be >= 1"
fi
command -v jq >/dev/null || die "jq is required"

HAVE_LXC=0 HAVE_RUNC=0 HAVE_STRACE=0
command -v lxc-execute >/dev/null && HAVE_LXC=1
command -v runc >/dev/null && HAVE_RUNC=1
command -v strace >/dev/null && HAVE_STRACE=1
[ "$HAVE_LXC" = 1 ] || note "lxc-execute not found: its rows are skipped"
[ "$HAVE_RUNC" = 1 ] || note "runc not found: its rows are skipped"

# Container root of every variant: root's subordinate range, as xosd uses it.
read -r SUB_BASE SUB_SIZE < <(awk -F: '$1 == "root" {print $2, $3; exit}' /etc/subuid)
[ -n "${SUB_BASE:-}" ] || die "no subordinate uid range for root in /etc/subuid"

# ---------------------------------------------------------------------------
# State and teardown

# Our cgroup directory names: *xos-<job id> of our daemons' jobs, lxc.payload.* /
# lxc.monitor.* of our lxc containers, and our runc container ids.
our_cgroups() {
	local pat="$BT/cgnames"
	: >"$pat"
	local d id
	for d in "${DAEMON_DIRS[@]}"; do
		[ -d "$d/state/jobs" ] || continue
		for id in "$d"/state/jobs/*; do
			# (no process per job: the teardown calls this up to 41 times,
			# and a pass may leave thousands of records)
			[ -d "$id" ] && echo "xos-${id##*/}" >>"$pat"
		done
	done
	for d in "${LXC_NAMES[@]}"; do
		printf 'lxc.payload.%s\nlxc.monitor.%s\n' "$d" "$d" >>"$pat"
	done
	find /sys/fs/cgroup -maxdepth 5 -type d \( -name '*xos-*' -o -name "lxc.*.$TAG-*" \
		-o -name "$TAG-*" \) 2>/dev/null | while read -r p; do
		local b=${p##*/}
		case $b in
		"$TAG"-*) echo "$p" ;;
		lxc.payload.* | lxc.monitor.*) grep -qxF "$b" "$pat" && echo "$p" ;;
		*xos-*) grep -qxF "xos-${b##*xos-}" "$pat" && echo "$p" ;;
		esac
	done | sort -r
	return 0
}

our_mounts() {
	awk -v d="$BT/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r
}

our_processes() {
	local p
	{
		pgrep -f -- "$BT/" 2>/dev/null || true
		for p in $(pgrep -x xos-loader 2>/dev/null; pgrep -f '^/.xos/loader ' 2>/dev/null); do
			grep -qs "$BT/" "/proc/$p/mountinfo" && echo "$p"
		done
	} | sort -u | grep -vx -e "$$" -e "$BASHPID" || true
}

stop_daemon() { # INDEX
	local i=$1 pid=${DAEMON_PIDS[$1]:-} sock live
	[ -n "$pid" ] || return 0
	sock="${DAEMON_DIRS[$i]}/run/xosd.sock"
	if kill -0 "$pid" 2>/dev/null; then
		live=$(XOS_SOCKET=$sock timeout 10 "$BUILD/xps" -q 2>/dev/null || true)
		if [ -n "$live" ]; then
			# shellcheck disable=SC2086
			XOS_SOCKET=$sock timeout 10 "$BUILD/xkill" -s KILL $live >/dev/null 2>&1 || true
			# shellcheck disable=SC2086
			XOS_SOCKET=$sock timeout 30 "$BUILD/xwait" $live >/dev/null 2>&1 || true
		fi
		kill "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	DAEMON_PIDS[i]=
}

cleanup() {
	local rc=$? p m c id left="" i
	set +e
	trap - EXIT INT TERM HUP
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	if [ -n "$STRACE_PID" ]; then
		kill "$STRACE_PID" 2>/dev/null
		wait "$STRACE_PID" 2>/dev/null
	fi
	for i in "${!DAEMON_PIDS[@]}"; do stop_daemon "$i"; done
	if [ "$HAVE_LXC" = 1 ]; then
		for c in "${LXC_NAMES[@]}"; do
			if lxc-info -P "$LXCPATH" -n "$c" -s 2>/dev/null | grep -qv STOPPED; then
				timeout 20 lxc-stop -P "$LXCPATH" -n "$c" -k >/dev/null 2>&1
			fi
		done
		# containers a killed xosd left behind
		for i in "${!DAEMON_DIRS[@]}"; do
			for c in "${DAEMON_DIRS[$i]}"/state/volatile/lxc/*/; do
				[ -d "$c" ] || continue
				timeout 20 lxc-stop -P "${DAEMON_DIRS[$i]}/state/volatile/lxc" -n "$(basename "$c")" -k \
					>/dev/null 2>&1
			done
		done
	fi
	if [ "$HAVE_RUNC" = 1 ] && [ -d "$RUNC_ROOT" ]; then
		for id in $(runc --root "$RUNC_ROOT" list -q 2>/dev/null); do
			runc --root "$RUNC_ROOT" delete -f "$id" >/dev/null 2>&1
		done
	fi
	for i in $(seq 1 50); do
		[ -z "$(our_processes)" ] && break
		sleep 0.1
	done
	our_mounts | while read -r m; do umount -l "$m" 2>/dev/null; done
	# LXC leaves a lock file per container name under /run/lxc/lock/<lxcpath>
	# (xosd's job containers and ours): count them, then remove ours.
	LOCKS=0
	if [ -d "/run/lxc/lock$BT" ]; then
		LOCKS=$(find "/run/lxc/lock$BT" -type f | wc -l)
		rm -rf "/run/lxc/lock$BT"
	fi
	for i in $(seq 1 20); do
		our_cgroups | while read -r c; do rmdir "$c" 2>/dev/null; done
		[ -z "$(our_cgroups)" ] && break
		sleep 0.1
	done

	# nothing may be left
	m=$(our_mounts)
	[ -n "$m" ] && left+="mounts:"$'\n'"$m"$'\n'
	c=$(our_cgroups)
	[ -n "$c" ] && left+="cgroups:"$'\n'"$c"$'\n'
	p=$(our_processes)
	[ -n "$p" ] && left+="processes:"$'\n'"$(ps -o pid=,args= -p "$(echo "$p" | paste -sd,)")"$'\n'
	if [ "$HAVE_LXC" = 1 ]; then
		for c in "$LXCPATH" "${DAEMON_DIRS[@]/%//state/volatile/lxc}"; do
			[ -d "$c" ] || continue
			id=$(lxc-ls -P "$c" --active 2>/dev/null)
			[ -n "$id" ] && left+="lxc containers in $c: $id"$'\n'
		done
	fi
	if [ "$HAVE_RUNC" = 1 ] && [ -d "$RUNC_ROOT" ]; then
		id=$(runc --root "$RUNC_ROOT" list -q 2>/dev/null)
		[ -n "$id" ] && left+="runc containers: $id"$'\n'
	fi
	if [ -n "${BENCH_KEEP_LOGS:-}" ]; then
		mkdir -p "$BENCH_KEEP_LOGS"
		cp "$BT"/*.log "$BT"/trace.* "$BENCH_KEEP_LOGS"/ 2>/dev/null
	fi
	[ -e "/run/lxc/lock$BT" ] && left+="lxc lock files: /run/lxc/lock$BT"$'\n'
	for c in "${NET_NAMES[@]}"; do
		ip link show "$c" >/dev/null 2>&1 && left+="bridge $c"$'\n'
		nft list tables 2>/dev/null | grep -qE " ${c}_t\$" && left+="nft table ${c}_t"$'\n'
	done
	[ -z "$left" ] && rm -rf "$BT"
	[ -e "$BT" ] && [ -z "$left" ] && left+="directory $BT"$'\n'
	p=$(comm -13 <(echo "$LINKS_BEFORE") \
		<(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sort))
	if [ -n "$left" ]; then
		echo "bench: teardown found leftovers (left in place under $BT):" >&2
		echo "$left" >&2
		rc=1
	else
		echo "teardown: clean (no mounts, cgroups, processes, lxc or runc containers left;" \
			"$BT removed; $LOCKS LXC lock files removed from /run/lxc/lock$BT)"
	fi
	# Network links: our containers make none (netns with lo only); new ones
	# would be someone else's on a shared machine, so they are only reported.
	[ -n "$p" ] && echo "teardown: note: network links appeared during the run (not ours?): $p"
	exit "$rc"
}

BT=$(mktemp -d /tmp/xb.XXXXXX) # short: socket paths must fit sun_path
chmod 0711 "$BT"
TAG="xb$$"                       # names of our lxc and runc containers
LXCPATH="$BT/lxc"
RUNC_ROOT="$BT/runc-state"
BUNDLE_U="$BT/bundle-u"
ROOTFS="$BT/rootfs"
ERRLOG="$BT/errors.log"
DAEMON_PIDS=() DAEMON_DIRS=() BG_PIDS=() LXC_NAMES=() NET_NAMES=()
STRACE_PID='' LOCKS=0
RUNC_SEQ=0
: >"$ERRLOG"
LINKS_BEFORE=$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sort)
trap cleanup EXIT
trap 'echo "bench: command failed at line $LINENO" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# A private copy of the binaries: a rebuild of build/ during the run must not
# change what is measured (nor remove it).
mkdir "$BT/bin"
cp "$BUILD/xosd" "$BUILD/xos-loader" "$BUILD/xos" "$BUILD/xos-template-helper" "$BT/bin/"
for b in xrun xps xwait xkill xlogs; do ln -s xos "$BT/bin/$b"; done
SANITIZED=""
grep -qs __asan_init "$BT/bin/xosd" && SANITIZED=" (a sanitizer build: figures are not representative)"
BUILD_SRC=$BUILD
BUILD="$BT/bin"

# ---------------------------------------------------------------------------
# Setup: four private xosd, a busybox rootfs, lxc and runc configurations

start_daemon() { # NAME CONFIG -> index in DAEMON_PIDS
	local dir="$BT/$1" i
	mkdir -p "$dir"
	chmod 0711 "$dir"
	"$BUILD/xosd" --foreground --config "$2" --state-dir "$dir/state" --run-dir "$dir/run" \
		--loader "$BUILD/xos-loader" </dev/null >>"$BT/$1.log" 2>&1 3>&- &
	DAEMON_PIDS+=("$!")
	DAEMON_DIRS+=("$dir")
	for i in $(seq 1 100); do
		if [ -S "$dir/run/xosd.sock" ] &&
			XOS_SOCKET="$dir/run/xosd.sock" "$BUILD/xps" >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "${DAEMON_PIDS[-1]}" 2>/dev/null || break
		sleep 0.05
	done
	cat "$BT/$1.log" >&2
	die "xosd ($1) did not start"
}

echo "sync_writes = false" >"$BT/nosync.conf"
echo "pool_size = 0" >"$BT/cold.conf"
echo "pool_size = 2" >"$BT/pool.conf"
printf 'pool_size = 0\ncontainer_engine = direct\n' >"$BT/direct.conf"
start_daemon x1 /dev/null
start_daemon x2 "$BT/nosync.conf"
start_daemon x3 "$BT/cold.conf"
start_daemon x4 "$BT/pool.conf"
start_daemon x5 "$BT/direct.conf"
SOCK1="${DAEMON_DIRS[0]}/run/xosd.sock"
SOCK2="${DAEMON_DIRS[1]}/run/xosd.sock"
SOCK3="${DAEMON_DIRS[2]}/run/xosd.sock"
SOCK4="${DAEMON_DIRS[3]}/run/xosd.sock"
SOCK5="${DAEMON_DIRS[4]}/run/xosd.sock"
XOSD1_PID=${DAEMON_PIDS[0]}

make_rootfs() {
	local bb=/bin/busybox a
	[ -x "$bb" ] || die "/bin/busybox missing: apt-get install busybox-static"
	if ldd "$bb" >/dev/null 2>&1; then
		die "/bin/busybox is dynamically linked: apt-get install busybox-static"
	fi
	mkdir -p "$ROOTFS"/{bin,sbin,etc,proc,sys,dev,tmp,root,usr/bin,usr/sbin}
	cp "$bb" "$ROOTFS/bin/busybox"
	for a in $("$ROOTFS/bin/busybox" --list); do
		[ -e "$ROOTFS/bin/$a" ] || ln -s busybox "$ROOTFS/bin/$a"
	done
	echo 'root:x:0:0:root:/root:/bin/sh' >"$ROOTFS/etc/passwd"
	echo 'root:x:0:' >"$ROOTFS/etc/group"
	chmod 1777 "$ROOTFS/tmp"
	chown -hR "$SUB_BASE:$SUB_BASE" "$ROOTFS"
}

lxc_container() { # NAME USERNS(0|1)
	mkdir -p "$LXCPATH/$1"
	{
		echo "lxc.uts.name = $1"
		echo "lxc.rootfs.path = dir:$ROOTFS"
		if [ "$2" = 1 ]; then
			echo "lxc.idmap = u 0 $SUB_BASE $SUB_SIZE"
			echo "lxc.idmap = g 0 $SUB_BASE $SUB_SIZE"
		fi
		# as xosd configures its job containers
		echo "lxc.net.0.type = empty"
		echo "lxc.tty.max = 0"
		echo "lxc.pty.max = 0"
		echo "lxc.console.path = none"
		echo "lxc.autodev = 1"
		echo "lxc.mount.auto = proc:mixed sys:ro"
		echo "lxc.log.file = $BT/lxc-$1.log"
		echo "lxc.log.level = ERROR"
	} >"$LXCPATH/$1/config"
	LXC_NAMES+=("$1")
}

runc_bundle() { # DIR USERNS(0|1)
	mkdir -p "$1"
	(cd "$1" && runc spec)
	jq --arg r "$ROOTFS" --argjson userns "$2" --argjson base "$SUB_BASE" \
		--argjson size "$SUB_SIZE" '
		.process.args = ["/bin/true"] | .process.terminal = false | .root.path = $r |
		.hostname = "bench" |
		if $userns == 1 then
			.linux.namespaces += [{"type": "user"}] |
			.linux.uidMappings = [{"containerID": 0, "hostID": $base, "size": $size}] |
			.linux.gidMappings = [{"containerID": 0, "hostID": $base, "size": $size}]
		else . end' "$1/config.json" >"$1/config.new"
	mv "$1/config.new" "$1/config.json"
}

make_rootfs
mkdir -p "$LXCPATH" "$RUNC_ROOT"
chmod 0711 "$LXCPATH"
if [ "$HAVE_LXC" = 1 ]; then
	lxc_container "$TAG-u" 1
	lxc_container "$TAG-n" 0
	for k in $(seq 1 "$SUBMITTERS"); do lxc_container "$TAG-c$k" 1; done
fi
[ "$HAVE_RUNC" = 1 ] && runc_bundle "$BUNDLE_U" 1

# ---------------------------------------------------------------------------
# The variants: each runs /bin/true once and returns when it has ended.

v_xrun() { XOS_SOCKET=$SOCK1 "$BUILD/xrun" -- /bin/true; }
v_xrun_nosync() { XOS_SOCKET=$SOCK2 "$BUILD/xrun" -- /bin/true; }
v_xrun_cold() { XOS_SOCKET=$SOCK3 "$BUILD/xrun" -- /bin/true; }
v_xrun_pool() { XOS_SOCKET=$SOCK4 "$BUILD/xrun" -- /bin/true; }
v_xrun_direct() { XOS_SOCKET=$SOCK5 "$BUILD/xrun" -- /bin/true; }
v_lxc() { lxc-execute -n "$TAG-${1:-u}" -P "$LXCPATH" -- /bin/true; }
v_lxc_nouserns() { lxc-execute -n "$TAG-n" -P "$LXCPATH" -- /bin/true; }
v_runc() {
	RUNC_SEQ=$((RUNC_SEQ + 1))
	runc --root "$RUNC_ROOT" run --bundle "$BUNDLE_U" "$TAG-${1:-r}-$RUNC_SEQ"
}
v_unshare() { unshare --fork --pid --mount --uts --ipc --net --user --map-root-user /bin/true; }

VARIANTS=(v_xrun v_xrun_nosync v_xrun_cold v_xrun_pool v_xrun_direct)
[ "$HAVE_LXC" = 1 ] && VARIANTS+=(v_lxc v_lxc_nouserns)
[ "$HAVE_RUNC" = 1 ] && VARIANTS+=(v_runc)
VARIANTS+=(v_unshare)
declare -A LABEL=(
	[v_xrun]="xrun -- /bin/true (host template, userns)"
	[v_xrun_nosync]="  same, xosd sync_writes = false"
	[v_xrun_cold]="  same, pool_size = 0 (cold start)"
	[v_xrun_pool]="  same, pool_size = 2 (pooled)"
	[v_xrun_direct]="  same, pool_size = 0, container_engine = direct"
	[v_lxc]="lxc-execute (busybox, userns)"
	[v_lxc_nouserns]="lxc-execute (busybox, no userns)"
	[v_runc]="runc run (busybox, userns)"
	[v_unshare]="unshare -fpmuinU true (floor)"
)
declare -A FAILS=()

# Run one variant once; its wall time in microseconds goes to BT/lat.VARIANT.
timed() { # VARIANT
	local s e
	s=${EPOCHREALTIME/./}
	if "$1" </dev/null >/dev/null 2>>"$ERRLOG"; then
		e=${EPOCHREALTIME/./}
		echo $((e - s)) >>"$BT/lat.$1"
		echo "$s $e" >>"$BT/win.$1"
	else
		FAILS[$1]=$((${FAILS[$1]:-0} + 1))
		echo "($1 failed)" >>"$ERRLOG"
	fi
}

# median p90 min mean count, in ms, of a file of microsecond values
stats() {
	[ -s "$1" ] || {
		echo "- - - - 0"
		return
	}
	sort -n "$1" | awk '{a[NR] = $1; s += $1}
		END {
			m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			p = int(0.9 * NR); if (p < 0.9 * NR) p++; if (p < 1) p = 1
			printf "%.1f %.1f %.1f %.1f %d\n", m / 1000, a[p] / 1000, a[1] / 1000, s / NR / 1000, NR
		}'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "n/a"; else printf "%.2fx", a / b }'; }

# ---------------------------------------------------------------------------
# Machine

cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
cg_mode=$(stat -f -c %T /sys/fs/cgroup)
if [ "$cg_mode" = cgroup2fs ]; then cg_mode="v2"; else cg_mode="v1 (hybrid: $cg_mode at /sys/fs/cgroup)"; fi
echo "== xos benchmark ($(date -u +%Y-%m-%dT%H:%MZ))"
echo "machine:  $(uname -sr), $(nproc) CPUs ($cpu_model), $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM"
echo "          cgroup $cg_mode; /tmp on $(findmnt -no FSTYPE -T /tmp 2>/dev/null || stat -f -c %T /tmp) (state dirs, fdatasync); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "xos:      $("$BUILD/xrun" --version 2>/dev/null | head -1), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || echo ' (dirty)'), binaries of $BUILD_SRC$SANITIZED"
[ "$HAVE_LXC" = 1 ] && echo "lxc:      $(lxc-execute --version 2>/dev/null | head -1)"
[ "$HAVE_RUNC" = 1 ] && echo "runc:     $(runc --version | head -1)"
echo "busybox:  $("$ROOTFS/bin/busybox" 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "id map:   container root = $SUB_BASE (+$SUB_SIZE) for every userns variant"
echo "note:     xrun runs /bin/true (host's, dynamic) in its built-in 'host' template: a skeleton"
echo "          plus the host /usr through overlayfs, on a fresh tmpfs upper layer per job;"
echo "          lxc-execute and runc run busybox's /bin/true (static) from a busybox rootfs"
echo

# ---------------------------------------------------------------------------
# 4. Networking: --net bridge against --net none (defined here, run at the
# end, or alone with BENCH_NET_ONLY=1)

# A daemon with a bridge, nftables table and pool of its own.
start_net_daemon() { # NAME -> index in DAEMON_PIDS
	local name="xb$$$1"
	NET_NAMES+=("$name")
	printf 'net_bridge = %s\nnet_table = %s_t\nnet_pool = 10.%d.0.0/16\n' "$name" "$name" \
		$((128 + ${#NET_NAMES[@]} * 7 % 64)) >"$BT/net-$1.conf"
	start_daemon "net-$1" "$BT/net-$1.conf"
}

v_net_none() { XOS_SOCKET=$NSOCK_W "$BUILD/xrun" --net none -- /bin/true; }
v_net_warm() { XOS_SOCKET=$NSOCK_W "$BUILD/xrun" --net bridge -- /bin/true; }
v_net_cold() { XOS_SOCKET=$NSOCK_C "$BUILD/xrun" --net bridge -- /bin/true; }

# xrun -d --net MODE JOBS times from SUBMITTERS loops on a fresh daemon, then xwait
net_throughput() { # MODE
	local mode=$1 k n s sub e ids=() idx sock bad
	start_net_daemon "t$mode"
	idx=$((${#DAEMON_PIDS[@]} - 1))
	sock="${DAEMON_DIRS[$idx]}/run/xosd.sock"
	rm -f "$BT"/ids.*
	s=${EPOCHREALTIME/./}
	BG_PIDS=()
	for k in $(seq 1 "$SUBMITTERS"); do
		n=$((JOBS / SUBMITTERS + (k <= JOBS % SUBMITTERS ? 1 : 0)))
		(
			for _ in $(seq 1 "$n"); do
				XOS_SOCKET=$sock "$BUILD/xrun" -d --net "$mode" -- /bin/true </dev/null \
					2>>"$ERRLOG" || echo "(xrun -d --net $mode failed)" >>"$ERRLOG"
			done >"$BT/ids.$k"
		) &
		BG_PIDS+=("$!")
	done
	for k in "${BG_PIDS[@]}"; do wait "$k"; done
	BG_PIDS=()
	sub=${EPOCHREALTIME/./}
	mapfile -t ids < <(cat "$BT"/ids.*)
	if [ ${#ids[@]} -gt 0 ]; then
		XOS_SOCKET=$sock "$BUILD/xwait" "${ids[@]}" >/dev/null 2>>"$ERRLOG" || true
	fi
	e=${EPOCHREALTIME/./}
	bad=0
	if [ ${#ids[@]} -gt 0 ]; then
		bad=$(XOS_SOCKET=$sock "$BUILD/xps" -a --json "${ids[@]}" |
			jq '[.[] | select(.state != "EXITED" or .exit_code != 0)] | length') ||
			die "the pass's jobs could not be checked (xps -a failed)"
	fi
	bad=$((bad + JOBS - ${#ids[@]}))
	awk -v n="${#ids[@]}" -v s="$s" -v su="$sub" -v e="$e" -v bad="$bad" -v l="--net $mode" \
		'BEGIN { printf "   %-42s %8.1f %10.1f %8.2f %5d%s\n", "xrun -d " l " x" n ", '"$SUBMITTERS"' submitters + xwait",
			n / ((e - s) / 1e6), n / ((su - s) / 1e6), (e - s) / 1e6, n, bad ? "  (" bad " not exited 0)" : "" }'
	NTP[$mode]=$(awk -v n="${#ids[@]}" -v s="$s" -v e="$e" 'BEGIN { printf "%.1f", n / ((e - s) / 1e6) }')
	stop_daemon "$idx"
}

declare -A NTP=()
net_section() {
	local idx keeper r v i
	echo "== 4. networking: --net bridge against --net none (xrun -- /bin/true)"
	start_net_daemon w
	idx=$((${#DAEMON_PIDS[@]} - 1))
	NSOCK_W="${DAEMON_DIRS[$idx]}/run/xosd.sock"
	start_net_daemon c
	NSOCK_C="${DAEMON_DIRS[$((idx + 1))]}/run/xosd.sock"
	# warm: another bridge-mode job keeps the bridge and tables up
	keeper=$(XOS_SOCKET=$NSOCK_W "$BUILD/xrun" -d --net bridge -- sleep 3600)
	local netv=(v_net_none v_net_warm v_net_cold) m p mi me c
	LABEL[v_net_none]="--net none"
	LABEL[v_net_warm]="--net bridge (bridge up: another bridge job runs)"
	LABEL[v_net_cold]="--net bridge (cold: makes and removes bridge and tables)"
	for v in "${netv[@]}"; do
		rm -f "$BT/lat.$v"
		for _ in $(seq 1 "$WARMUP"); do "$v" </dev/null >/dev/null 2>>"$ERRLOG" || true; done
	done
	for r in $(seq 0 $((N - 1))); do
		for i in 0 1 2; do timed "${netv[$(((r + i) % 3))]}"; done
	done
	echo "   ($N interleaved rounds, $WARMUP warm-up runs each; ms)"
	printf '\n   %-58s %7s %7s %7s %7s %5s %8s\n' "" median p90 min mean runs "vs none"
	local base
	base=$(stats "$BT/lat.v_net_none" | cut -d' ' -f1)
	for v in "${netv[@]}"; do
		read -r m p mi me c < <(stats "$BT/lat.$v")
		printf '   %-58s %7s %7s %7s %7s %5s %8s%s\n' "${LABEL[$v]}" "$m" "$p" "$mi" "$me" "$c" \
			"$(ratio "$m" "$base")" "${FAILS[$v]:+  (${FAILS[$v]} failed)}"
	done
	XOS_SOCKET=$NSOCK_W "$BUILD/xkill" -s KILL "$keeper" >/dev/null 2>&1 || true
	XOS_SOCKET=$NSOCK_W "$BUILD/xwait" "$keeper" >/dev/null 2>&1 || true
	stop_daemon "$((idx + 1))"
	stop_daemon "$idx"
	echo
	printf '   %-42s %8s %10s %8s %5s\n' "" "jobs/s" "submit/s" "total s" "jobs"
	net_throughput none
	net_throughput bridge
	echo "   ratio of jobs/s: bridge / none = $(ratio "${NTP[bridge]}" "${NTP[none]}")"
	echo "   (each throughput pass has a fresh xosd with a bridge, table and pool of its own)"
	echo
}

if [ "$NET_ONLY" = 1 ]; then
	net_section
	exit 0
fi

# ---------------------------------------------------------------------------
# 1. Start latency

echo "== 1. start latency: wall time of one command that returns when /bin/true has ended"
echo "   ($N interleaved rounds, each round runs every variant once in rotating order;"
echo "    $WARMUP untimed warm-up runs each first)"
for v in "${VARIANTS[@]}"; do
	for _ in $(seq 1 "$WARMUP"); do "$v" </dev/null >/dev/null 2>>"$ERRLOG" || true; done
done
nv=${#VARIANTS[@]}
for r in $(seq 1 "$N"); do
	for k in $(seq 0 $((nv - 1))); do
		timed "${VARIANTS[$(((r + k) % nv))]}"
	done
done

declare -A MED=()
printf '\n   %-42s %8s %8s %8s %8s %5s\n' "variant" "median" "p90" "min" "mean" "runs"
for v in "${VARIANTS[@]}"; do
	read -r med p90 min mean cnt < <(stats "$BT/lat.$v")
	MED[$v]=$med
	printf '   %-42s %8s %8s %8s %8s %5s%s\n' "${LABEL[$v]}" "$med" "$p90" "$min" "$mean" "$cnt" \
		"$([ -n "${FAILS[$v]:-}" ] && echo "  (${FAILS[$v]} failed)")"
done
echo "   (milliseconds)"
echo
echo "   ratios of medians:"
if [ "$HAVE_LXC" = 1 ]; then
	echo "     xrun / lxc-execute (userns)    = $(ratio "${MED[v_xrun]}" "${MED[v_lxc]}")   (aim: <= 1.5x)"
	echo "     xrun / lxc-execute (no userns) = $(ratio "${MED[v_xrun]}" "${MED[v_lxc_nouserns]}")"
fi
[ "$HAVE_RUNC" = 1 ] && echo "     xrun / runc (userns)           = $(ratio "${MED[v_xrun]}" "${MED[v_runc]}")"
echo "     xrun sync_writes=false / default = $(ratio "${MED[v_xrun_nosync]}" "${MED[v_xrun]}")"
if [ "$HAVE_LXC" = 1 ]; then
	echo "     xrun pool_size=0 (cold) / lxc-execute (userns) = $(ratio "${MED[v_xrun_cold]}" "${MED[v_lxc]}")"
	echo "     xrun pool_size=2 (pooled) / lxc-execute (userns) = $(ratio "${MED[v_xrun_pool]}" "${MED[v_lxc]}")"
	echo "     xrun direct engine (cold) / lxc-execute (userns) = $(ratio "${MED[v_xrun_direct]}" "${MED[v_lxc]}")   (aim of a cold start: <= 1.0x)"
fi
echo

# Where the time of those xrun went, from the timestamps xosd and the loader
# record in each job (no tracing): each timed run is matched with the job
# created within its window.
phases() { # VARIANT SOCKET
	[ -s "$BT/win.$1" ] || return 0
	XOS_SOCKET=$2 "$BUILD/xps" -a --json | jq -r '.[] | select(.units[0].ended_us != null) |
		"J \(.created_us) \(.started_us) \(.units[0].started_us) \(.units[0].ended_us) \(.ended_us)"' |
		cat - <(sed 's/^/W /' "$BT/win.$1") | awk '
		$1 == "J" { n++; c[n] = $2; st[n] = $3; us[n] = $4; ue[n] = $5; en[n] = $6; next }
		$1 == "W" {
			for (i = 1; i <= n; i++) if (c[i] >= $2 && c[i] <= $3 && en[i] <= $3) break
			if (i > n) next
			m++
			v[1, m] = c[i] - $2; v[2, m] = us[i] - c[i]; v[3, m] = ue[i] - us[i]
			v[4, m] = en[i] - ue[i]; v[5, m] = $3 - en[i]; v[6, m] = st[i] - c[i]; v[7, m] = $3 - $2
		}
		function median(k,   a, i, j, t) {
			for (i = 1; i <= m; i++) a[i] = v[k, i]
			for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
			return (m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2) / 1000
		}
		END {
			if (!m) { print "   (no job matched the timed runs)"; exit }
			split("xrun starts, connects, sends the request; xosd parses it|" \
			      "xosd: job dirs, job.json, job root mounts, lxc config; liblxc start; loader takes unit 1|" \
			      "unit 1: loader forks, drops privileges, seccomp, exec /bin/true (host, via overlay), reaps it|" \
			      "report: status file, notify socket, accounting from the cgroup files, job ended|" \
			      "job.json (ended), ack, exit event to xrun, xrun exits", L, "|")
			tot = median(7)
			printf "   %-96s %6s %6s\n", "phase (median over " m " runs; medians do not add up exactly)", "ms", "share"
			for (k = 1; k <= 5; k++) printf "   %d. %-93s %6.2f %5.0f%%\n", k, L[k], median(k), 100 * median(k) / tot
			printf "   %-96s %6.2f\n", "whole xrun", tot
			printf "   %-96s %6.2f\n", "(xosd busy starting the job, not serving others: job created -> RUNNING recorded)", median(6)
		}'
}
echo "   where the time of an xrun goes (timestamps recorded by xosd and the loader; no tracing):"
echo "   default xosd:"
phases v_xrun "$SOCK1"
echo "   xosd with sync_writes = false:"
phases v_xrun_nosync "$SOCK2"
echo "   xosd with pool_size = 2 (pooled: phase 2 is the claim of a prepared container):"
phases v_xrun_pool "$SOCK4"
echo "   default xosd after these runs: $(XOS_SOCKET=$SOCK1 "$BUILD/xps" -a -q | wc -l) jobs in its table," \
	"$(find "/proc/$XOSD1_PID/fd" -mindepth 1 -maxdepth 1 | wc -l) open file descriptors"
if [ -s "$BT/lat.v_xrun" ]; then
	k=$(((N + 4) / 5))
	echo "   drift: xrun median over its first $k runs $(head -n "$k" "$BT/lat.v_xrun" >"$BT/first"; stats "$BT/first" | cut -d' ' -f1) ms," \
		"over its last $k runs $(tail -n "$k" "$BT/lat.v_xrun" >"$BT/last"; stats "$BT/last" | cut -d' ' -f1) ms"
fi
echo

# ---------------------------------------------------------------------------
# 2. Throughput

declare -A TP=()
# xrun -d JOBS times from CONC submitters, then xwait for all: jobs/s
xrun_throughput() { # CONC [direct]
	local conc=$1 eng=${2:-} k n s sub e ids=() bad idx sock pid fds
	# a fresh daemon per pass: passes do not inherit each other's job table.
	# Its settings are the defaults, but for more jobs than keep_ended's
	# default (1,000) it keeps them all: each job's exit is checked below
	# from its record, and a pruned record could not be
	# (direct: container_engine = direct, without a pool, whose containers
	# are liblxc's)
	local conf=$BT/tp.conf
	{
		[ "$JOBS" -le 1000 ] || echo "keep_ended = $JOBS"
		[ -z "$eng" ] || printf 'container_engine = direct\npool_size = 0\n'
	} >"$conf"
	start_daemon "tp$conc$eng" "$conf"
	idx=$((${#DAEMON_PIDS[@]} - 1))
	sock="${DAEMON_DIRS[$idx]}/run/xosd.sock"
	pid=${DAEMON_PIDS[$idx]}
	rm -f "$BT"/ids.*
	s=${EPOCHREALTIME/./}
	BG_PIDS=()
	for k in $(seq 1 "$conc"); do
		n=$((JOBS / conc + (k <= JOBS % conc ? 1 : 0)))
		(
			for _ in $(seq 1 "$n"); do
				if id=$(XOS_SOCKET=$sock "$BUILD/xrun" -d -- /bin/true </dev/null 2>>"$ERRLOG"); then
					echo "${EPOCHREALTIME/./} $id"
				else
					echo "(xrun -d failed)" >>"$ERRLOG"
				fi
			done >"$BT/ids.$k"
		) &
		BG_PIDS+=("$!")
	done
	for k in "${BG_PIDS[@]}"; do wait "$k"; done
	BG_PIDS=()
	sub=${EPOCHREALTIME/./}
	mapfile -t ids < <(cat "$BT"/ids.* | awk '{print $2}')
	if [ ${#ids[@]} -gt 0 ]; then
		XOS_SOCKET=$sock "$BUILD/xwait" "${ids[@]}" >/dev/null 2>>"$ERRLOG" || true
	fi
	e=${EPOCHREALTIME/./}
	fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
	bad=0
	if [ ${#ids[@]} -gt 0 ]; then
		bad=$(XOS_SOCKET=$sock "$BUILD/xps" -a --json "${ids[@]}" |
			jq '[.[] | select(.state != "EXITED" or .exit_code != 0)] | length') ||
			die "the pass's jobs could not be checked (xps -a failed)"
	fi
	bad=$((bad + JOBS - ${#ids[@]}))
	# submissions per second over the first and the last tenth of the pass
	cat "$BT"/ids.* | sort -n | awk -v s="$s" -v su="$sub" -v e="$e" -v bad="$bad" -v c="$conc" \
		-v eng="${eng:+ (direct)}" \
		-v fds="$fds" '
		{ t[NR] = $1 }
		END {
			n = NR; k = int(n / 10); if (k < 1) k = 1
			first = n ? k / ((t[k] - s) / 1e6) : 0
			last = n > k ? k / ((t[n] - t[n - k]) / 1e6) : 0
			printf "   %-42s %8.1f %10.1f %7.1f/%-7.1f %8.2f %5d %6d%s\n",
				"xrun -d x" n ", " c " submitter" (c > 1 ? "s" : "") " + xwait" eng,
				n / ((e - s) / 1e6), n / ((su - s) / 1e6), first, last, (e - s) / 1e6, n, fds,
				bad ? "  (" bad " not exited 0)" : ""
		}'
	TP[xrun$conc$eng]=$(awk -v n="${#ids[@]}" -v s="$s" -v e="$e" 'BEGIN { printf "%.1f", n / ((e - s) / 1e6) }')
	stop_daemon "$idx"
}

# PEER_JOBS runs of a peer variant from CONC loops; each run ends with its job
peer_throughput() { # VARIANT CONC LABEL
	local v=$1 conc=$2 k n s e fails
	rm -f "$BT"/fail.*
	s=${EPOCHREALTIME/./}
	BG_PIDS=()
	for k in $(seq 1 "$conc"); do
		n=$((PEER_JOBS / conc + (k <= PEER_JOBS % conc ? 1 : 0)))
		(
			RUNC_SEQ=$((k * 100000))
			for _ in $(seq 1 "$n"); do
				if [ "$conc" -gt 1 ]; then
					"$v" "c$k" </dev/null >/dev/null 2>>"$ERRLOG" || echo x >>"$BT/fail.$k"
				else
					"$v" </dev/null >/dev/null 2>>"$ERRLOG" || echo x >>"$BT/fail.$k"
				fi
			done
		) &
		BG_PIDS+=("$!")
	done
	for k in "${BG_PIDS[@]}"; do wait "$k"; done
	BG_PIDS=()
	e=${EPOCHREALTIME/./}
	fails=$({ cat "$BT"/fail.* 2>/dev/null || true; } | wc -l)
	awk -v n="$PEER_JOBS" -v s="$s" -v e="$e" -v f="$fails" -v l="$3" \
		'BEGIN { printf "   %-42s %8.1f %10s %15s %8.2f %5d %6s%s\n", l, n / ((e - s) / 1e6), "-", "-", (e - s) / 1e6, n, "-", f ? "  (" f " failed)" : "" }'
	TP[$v$conc]=$(awk -v n="$PEER_JOBS" -v s="$s" -v e="$e" 'BEGIN { printf "%.1f", n / ((e - s) / 1e6) }')
}

echo "== 2. throughput: /bin/true jobs, submitted as fast as possible"
printf '\n   %-42s %8s %10s %15s %8s %5s %6s\n' "" "jobs/s" "submit/s" "first/last 10%" "total s" "jobs" "fds"
xrun_throughput 1
xrun_throughput "$SUBMITTERS"
xrun_throughput 1 direct
xrun_throughput "$SUBMITTERS" direct
if [ "$HAVE_LXC" = 1 ] && [ "$PEER_JOBS" -gt 0 ]; then
	peer_throughput v_lxc 1 "lxc-execute x$PEER_JOBS, sequential"
	peer_throughput v_lxc "$SUBMITTERS" "lxc-execute x$PEER_JOBS, $SUBMITTERS loops"
fi
if [ "$HAVE_RUNC" = 1 ] && [ "$PEER_JOBS" -gt 0 ]; then
	peer_throughput v_runc 1 "runc run x$PEER_JOBS, sequential"
	peer_throughput v_runc "$SUBMITTERS" "runc run x$PEER_JOBS, $SUBMITTERS loops"
fi
echo "   (jobs/s: all jobs ended; submit/s: xrun -d calls returned, i.e. the job started;"
echo "    first/last 10%: submit/s over the first and the last tenth of the pass;"
echo "    fds: xosd's open file descriptors after the pass; each xrun pass has a fresh xosd)"
echo
if [ "$HAVE_LXC" = 1 ] && [ "$PEER_JOBS" -gt 0 ]; then
	echo "   ratios of jobs/s: xrun / lxc-execute sequential = $(ratio "${TP[xrun1]}" "${TP[v_lxc1]}")," \
		"with $SUBMITTERS submitters = $(ratio "${TP[xrun$SUBMITTERS]}" "${TP[v_lxc$SUBMITTERS]}")"
	echo "   ratios of jobs/s, direct engine: xrun / lxc-execute sequential = $(ratio "${TP[xrun1direct]}" "${TP[v_lxc1]}")," \
		"with $SUBMITTERS submitters = $(ratio "${TP[xrun${SUBMITTERS}direct]}" "${TP[v_lxc$SUBMITTERS]}")"
fi
if [ "$HAVE_RUNC" = 1 ] && [ "$PEER_JOBS" -gt 0 ]; then
	echo "   ratios of jobs/s: xrun / runc sequential        = $(ratio "${TP[xrun1]}" "${TP[v_runc1]}")," \
		"with $SUBMITTERS submitters = $(ratio "${TP[xrun$SUBMITTERS]}" "${TP[v_runc$SUBMITTERS]}")"
fi
echo

# ---------------------------------------------------------------------------
# 3. Where an xrun's time goes: strace on xosd's main process only (the
# container's processes are not traced), timestamps of its landmark syscalls.

trace_breakdown() {
	local t s e i
	for i in $(seq 1 "$TRACE_N"); do
		t="$BT/trace.$i"
		strace -ttt -p "$XOSD1_PID" -o "$t" -e signal=none \
			-e trace=accept4,mount,fsopen,clone,clone3,wait4,pidfd_open,fdatasync,connect,write,epoll_wait \
			2>/dev/null &
		STRACE_PID=$!
		sleep 0.3 # attached
		s=$EPOCHREALTIME
		XOS_SOCKET=$SOCK1 "$BUILD/xrun" -- /bin/true </dev/null >/dev/null 2>>"$ERRLOG" || true
		e=$EPOCHREALTIME
		sleep 0.1
		kill "$STRACE_PID" 2>/dev/null
		wait "$STRACE_PID" 2>/dev/null || true
		STRACE_PID=
		awk -v s="$s" -v e="$e" -f - "$t" <<'AWK'
# landmarks in xosd's syscalls (strace -ttt stamps a call when it starts)
function mark(k) { if (!(k in T)) T[k] = $1 }
$1 < s { next }
/^[0-9.]+ accept4\(.*SOCK_NONBLOCK\) = [0-9]/ { mark("accept") }
/mount\("xos-layer"/ { mark("layer") }
/mount\("xos-root"/ || /fsopen\("overlay"/ { mark("root") }
/ clone\(/ && ("root" in T) && !/CLONE_NEWUSER/ { mark("fork") }
/connect\(.*\/command"/ && ("fork" in T) && !("pidfd" in T) { mark("started") }
/pidfd_open\(/ && ("started" in T) { mark("pidfd") }
/epoll_wait\(/ && ("pidfd" in T) && !("loop" in T) { mark("loop") }
/accept4\(.*SOCK_CLOEXEC\) = [0-9]/ && !/NONBLOCK/ { mark("report") }
/write\(.*"\{\\"id\\"/ && ("report" in T) { mark("persist") }
/write\([0-9]+, "ok"/ { mark("acked") }
END {
	n = split("accept layer root fork started pidfd loop report persist acked", K, " ")
	for (i = 1; i <= n; i++) if (!(K[i] in T)) { print "incomplete"; exit }
	printf "%.3f %.3f %.3f %.3f %.3f %.3f %.3f %.3f %.3f %.3f\n",
		(T["accept"] - s) * 1e3, (T["layer"] - T["accept"]) * 1e3, (T["fork"] - T["layer"]) * 1e3,
		(T["started"] - T["fork"]) * 1e3, (T["loop"] - T["started"]) * 1e3,
		(T["report"] - T["loop"]) * 1e3, (T["persist"] - T["report"]) * 1e3,
		(T["acked"] - T["persist"]) * 1e3, (e - T["acked"]) * 1e3, (e - s) * 1e3
}
AWK
	done
}

if [ "$TRACE" = 1 ] && [ "$HAVE_STRACE" = 1 ] && [ "$TRACE_N" -gt 0 ]; then
	echo "== 3. where one xrun's time goes (strace -ttt on xosd's main process only;"
	echo "      tracing slows xosd, so phases are inflated; read them as shares)"
	trace_breakdown >"$BT/phases" 2>>"$ERRLOG"
	if grep -qv incomplete "$BT/phases"; then
		grep -v incomplete "$BT/phases" | awk -v med="${MED[v_xrun]}" '
		{ for (i = 1; i <= NF; i++) v[i, NR] = $i; n = NR; nf = NF }
		function median(c,   a, i, j, t) {
			for (i = 1; i <= n; i++) a[i] = v[c, i]
			for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		END {
			split("xrun starts, connects, sends the request|" \
			      "job record: user, dirs, job.json|" \
			      "job root: tmpfs layer, /etc copies, overlay; lxc config, unit file, lxc handle|" \
			      "liblxc start: fork, daemonize, cgroups, namespaces, id maps, mounts, pivot, exec loader, wait RUNNING|" \
			      "init pid, pidfd, job.json (RUNNING)|" \
			      "unit runs: loader reads unit, forks, exec /bin/true, status file, notify connect|" \
			      "report: accounting read from the cgroup files|" \
			      "job.json (ended; flushed later by the flusher thread), ack to the loader|" \
			      "exit event to xrun, xrun exits", L, "|")
			tot = median(nf)
			printf "\n   %-100s %7s %6s\n", "phase (median of " n " traced runs)", "ms", "share"
			for (i = 1; i < nf; i++) { m = median(i); printf "   %-100s %7.2f %5.0f%%\n", L[i], m, 100 * m / tot }
			printf "   %-100s %7.2f\n", "total under strace (untraced median: " med " ms)", tot
		}'
	else
		echo "   (the trace could not be parsed; see BENCH_KEEP_LOGS)"
	fi
	echo
fi

[ "$NET" = 1 ] && net_section

if [ -s "$ERRLOG" ]; then
	echo "== errors seen (last lines of $ERRLOG)"
	tail -n 20 "$ERRLOG" | sed 's/^/   /'
	echo
fi
