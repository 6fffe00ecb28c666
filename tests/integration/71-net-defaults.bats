#!/usr/bin/env bats
# Defaults that work (issue 10, section 3): on a node whose IPv4 forwarding is
# off (as Debian ships it), bridge-mode jobs must not get a resolver they
# cannot reach. xosd turns forwarding on (net_ip_forward = auto, as Docker
# does) or, told to leave it (net_ip_forward = leave), gives the job only
# resolvers it can reach and xrun says why its DNS cannot work.
#
# ip_forward is global to a network namespace and other suites run at the
# same time: each test's xosd runs in a network namespace of the test's own,
# with an uplink of its own, a default route and ip_forward = 0. Only the
# network namespace changes (nsenter --net), and a mount namespace of its own
# where /sys/class/net shows that namespace's interfaces (LXC looks for the
# bridge there); cgroups and the rest stay the host's.
# Nothing is sent anywhere: the checks read sysctls and resolv.conf.

load helpers
bats_require_minimum_version 1.5.0

teardown() {
	xos_teardown
	if [ -n "${FWD_NS:-}" ]; then
		ip netns del "$FWD_NS" 2>/dev/null || true
		FWD_NS=
	fi
}

# Start this test's xosd in a network namespace of its own; extra lines of
# xosd.conf as arguments.
fwd_start() {
	XOS_TMP=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.XXXXXX")
	chmod 0711 "$XOS_TMP"
	export XOS_TMP
	export XOS_SOCKET="$XOS_TMP/run/xosd.sock"
	local sfx=${XOS_TMP##*.}
	FWD_NS="xos-fwd-$sfx"
	FWD_NET="172.30.$((RANDOM % 250 + 1))"
	ip netns add "$FWD_NS"
	ip -n "$FWD_NS" link set lo up
	# the uplink: a veth whose peer (no address) stays in the namespace too
	ip -n "$FWD_NS" link add up0 type veth peer name up1
	ip -n "$FWD_NS" addr add "$FWD_NET.2/24" dev up0
	ip -n "$FWD_NS" link set up1 up
	ip -n "$FWD_NS" link set up0 up
	ip -n "$FWD_NS" route add default via "$FWD_NET.1" dev up0
	# a new namespace may inherit the host's setting: off, in this one only
	ip netns exec "$FWD_NS" sysctl -qw net.ipv4.ip_forward=0
	assert_equal "$(fwd_sysctl ip_forward)" 0
	printf '%s\n' "net_bridge = xos$sfx" "net_table = xos_$sfx" "net_pool = 10.99.$((RANDOM % 256)).0/24" \
		"net_dns = $FWD_NET.53" "$@" >"$XOS_TMP/xosd.conf"
	fwd_launch
}

# (Re)start xosd in the test's namespace with $XOS_TMP/xosd.conf.
fwd_launch() {
	mkdir -p "$XOS_TMP/sysfs"
	# shellcheck disable=SC2016 # (expanded by the inner shell)
	nsenter --net="/run/netns/$FWD_NS" unshare --mount --propagation slave sh -c '
		mount -t sysfs xos-test-sysfs "$0" &&
		mount --bind "$0/class/net" /sys/class/net &&
		mount --bind "$0/devices/virtual/net" /sys/devices/virtual/net && exec "$@"' \
		"$XOS_TMP/sysfs" "$XOS_BUILD/xosd" --foreground --config "$XOS_TMP/xosd.conf" \
		--state-dir "$XOS_TMP/state" --run-dir "$XOS_TMP/run" --loader "$XOS_BUILD/xos-loader" \
		</dev/null >>"$XOS_TMP/xosd.log" 2>&1 3>&- &
	XOSD_PID=$!
	for _ in $(seq 1 100); do
		[ -S "$XOS_SOCKET" ] && xps >/dev/null 2>&1 && return 0
		kill -0 "$XOSD_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$XOS_TMP/xosd.log" >&2
	return 1
}

fwd_sysctl() { ip netns exec "$FWD_NS" cat "/proc/sys/net/ipv4/$1"; }

@test "net defaults: with net_outbound (default) xosd turns IPv4 forwarding on for bridge jobs, whose resolver then works" {
	fwd_start
	# nothing changes before a bridge job needs it
	run xrun -- true
	assert_success
	assert_equal "$(fwd_sysctl ip_forward)" 0
	run xrun --net bridge -- cat /etc/resolv.conf
	assert_success
	assert_output --partial "nameserver $FWD_NET.53"
	refute_output --partial "warning"
	assert_equal "$(fwd_sysctl ip_forward)" 1
	assert_equal "$(fwd_sysctl conf/up0/forwarding)" 1
	grep -q "Turned on IPv4 forwarding (net.ipv4.ip_forward = 1)" "$XOS_TMP/xosd.log"
	run ! grep -q "IPv4 forwarding is off on" "$XOS_TMP/xosd.log"
	# (it stays on, as with Docker: other daemons' jobs may rely on it)
	xosd_stop
	assert_equal "$(fwd_sysctl ip_forward)" 1
}

@test "net defaults: net_ip_forward = leave: forwarding stays off, the job gets no resolver it cannot reach, and xrun says why" {
	fwd_start 'net_ip_forward = leave'
	run xrun --net bridge -- cat /etc/resolv.conf
	assert_success
	refute_line --regexp "^nameserver "
	assert_output --partial "xrun: warning: The job's DNS cannot work: the node's resolver $FWD_NET.53 is not reachable from it"
	assert_output --partial "net_ip_forward = leave"
	assert_equal "$(fwd_sysctl ip_forward)" 0
	# detached: the warning too, on stderr, the id alone on stdout
	id=$(xrun -d --net bridge -- sleep 60 2>"$XOS_TMP/err")
	grep -q "warning: The job's DNS cannot work" "$XOS_TMP/err"
	[[ "$id" =~ ^[0-9a-f]{16}$ ]]
	xkill -s KILL "$id"
	xwait "$id" || true
	# a resolver on the bridge (in the pool) is reachable without forwarding
	xosd_stop
	pool=$(sed -n 's/^net_pool = \(.*\)\.0\/24$/\1/p' "$XOS_TMP/xosd.conf")
	sed -i "s/^net_dns = .*/net_dns = $FWD_NET.53 $pool.53/" "$XOS_TMP/xosd.conf"
	fwd_launch
	run xrun --net bridge -- cat /etc/resolv.conf
	assert_success
	assert_output --partial "nameserver $pool.53"
	refute_output --partial "nameserver $FWD_NET.53"
	assert_output --partial "warning: The job's DNS cannot work"
	# with forwarding on (the node owner's choice), no warning and the resolver
	ip netns exec "$FWD_NS" sysctl -qw net.ipv4.ip_forward=1
	run xrun --net bridge -- cat /etc/resolv.conf
	assert_success
	assert_output --partial "nameserver $FWD_NET.53"
	refute_output --partial "warning"
}

@test "net defaults: net_outbound = false: no resolver off the node (the node owner's choice: no warning), forwarding untouched" {
	fwd_start 'net_outbound = false'
	run xrun --net bridge -- cat /etc/resolv.conf
	assert_success
	refute_line --regexp "^nameserver "
	refute_output --partial "warning"
	assert_equal "$(fwd_sysctl ip_forward)" 0
}
