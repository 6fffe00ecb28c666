#!/usr/bin/env bats
# Runs last: after the whole suite nothing of xos is left on the machine.
# Every test's teardown cleans up, by force, what its daemon left behind, and
# writes what it had to clean up to $BATS_RUN_TMPDIR/xos-forced-cleanups: the
# suite fails here on any of it, and on anything of the suite that is left
# outside the tests' own directories (which teardown never looks at).

load helpers

# Only what the suite made is looked at: another xosd may run on this machine.
# Everything of the suite carries this prefix in its path, or one of the job
# ids and network names that teardown recorded; and it is newer than the
# run's start (what a run stopped half-way left is not this one's).
P="/tmp/$XOS_TEST_PREFIX."

@test "no test of the suite needed its leftovers removed by force" {
	[ -s "$BATS_RUN_TMPDIR/xos-job-ids" ] # the suite ran jobs
	if [ -s "$BATS_RUN_TMPDIR/xos-forced-cleanups" ]; then
		cat "$BATS_RUN_TMPDIR/xos-forced-cleanups" >&2
		fail "teardown removed leftovers by force (above)"
	fi
}

# Processes of the suite: their root, working directory or program is in a
# test's directory, or (in a mount namespace of their own) they have a mount
# there. Zombies reparented to the machine's init are its to reap, not a leak.
suite_processes() {
	local self p
	find /proc/[0-9]*/cwd /proc/[0-9]*/root /proc/[0-9]*/exe -maxdepth 0 -printf '%p %l\n' \
		2>/dev/null | awk -v p="$P" 'index($2, p) == 1 {split($1, a, "/"); print a[3] " " a[4] " " $2}'
	self=$(readlink /proc/self/ns/mnt)
	grep -ls -F " $P" /proc/[0-9]*/mountinfo 2>/dev/null | cut -d/ -f3 | while read -r p; do
		[ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" != "$self" ] || continue
		echo "$p mounts $(grep -F " $P" "/proc/$p/mountinfo" 2>/dev/null | awk '{print $5; exit}')"
	done
	# (the prefix is put together inside awk: its own arguments do not hold it)
	ps -eo pid=,stat=,args= |
		awk -v a=/tmp/ -v b="$XOS_TEST_PREFIX." '$2 !~ /^Z/ && index($0, a b) {print}'
}

@test "no xos container, mount, cgroup, socket or process is left after the suite" {
	[ -s "$BATS_RUN_TMPDIR/xos-job-ids" ] # the suite ran jobs
	run bash -c "grep -F ' $P' /proc/self/mountinfo || true"
	assert_output ""
	# the jobs' cgroups, in any hierarchy, also below a cgroup_parent (and the
	# parents the tests made)
	local ids left
	ids=$(sort -u "$BATS_RUN_TMPDIR/xos-job-ids" | paste -sd'|')
	left=$(find /sys/fs/cgroup -maxdepth 9 -type d \( -name '*xos-*' -o \
		-name "$XOS_TEST_PREFIX-parent-*" \) -newer "$XOS_RUN_START" 2>/dev/null |
		grep -E "(xos-($ids)|/$XOS_TEST_PREFIX-parent-[0-9]+)\$" || true)
	assert_equal "$left" ""
	run suite_processes
	assert_output ""
	local p loaders=""
	for p in $(pgrep -f '^/.xos/loader '); do
		grep -qs -F " $P" "/proc/$p/mountinfo" && loaders+=" $p"
	done
	assert_equal "$loaders" ""
	# sockets bound in a test's directory (a daemon's, a job's notify socket)
	run bash -c "grep -F '$P' /proc/net/unix || true"
	assert_output ""
	# (the directories held the daemons' sockets and state)
	run find /tmp -maxdepth 1 -name "$XOS_TEST_PREFIX.*" -newer "$XOS_RUN_START"
	assert_output ""
	# liblxc's lock files of the containers (a run stopped half-way leaves
	# its own, older than this run)
	run bash -c "find /run/lxc/lock/tmp -maxdepth 1 -name '$XOS_TEST_PREFIX.*' -newer '$XOS_RUN_START' 2>/dev/null || true"
	assert_output ""
	# the daemons' bridges, job veths and nftables tables, and the outside
	# namespace and link of 70-net's NAT test
	local br table sfx net="" id
	if [ -e "$BATS_RUN_TMPDIR/xos-net-names" ]; then
		while read -r br table; do
			sfx=${br#xos}
			if ip link show "$br" >/dev/null 2>&1; then net+=" bridge $br"; fi
			if nft list tables | grep -qE " $table\$"; then net+=" table $table"; fi
			if ip link show "xo$sfx" >/dev/null 2>&1; then net+=" link xo$sfx"; fi
			if ip netns list | grep -q "^xos-out-$sfx\\b"; then net+=" netns xos-out-$sfx"; fi
		done <"$BATS_RUN_TMPDIR/xos-net-names"
	fi
	while read -r id; do
		if ip link show "xv${id:0:12}" >/dev/null 2>&1; then net+=" veth xv${id:0:12}"; fi
	done <"$BATS_RUN_TMPDIR/xos-job-ids"
	assert_equal "$net" ""
}
