#!/usr/bin/env bats
# Runs last: after the whole suite nothing of xos is left on the machine.

load helpers

# Only what the suite made is looked at: another xosd may run on this machine.
@test "no xos container, mount, cgroup, socket or process is left after the suite" {
	[ -s "$BATS_RUN_TMPDIR/xos-job-ids" ] # the suite ran jobs
	run bash -c "grep ' /tmp/$XOS_TEST_PREFIX\.' /proc/self/mountinfo || true"
	assert_output ""
	local id left=""
	while read -r id; do
		# (a cgroup removed while find walks makes find fail: that is no leak)
		left+=$(find /sys/fs/cgroup -maxdepth 2 -type d -name "*xos-$id" 2>/dev/null || true)
	done <"$BATS_RUN_TMPDIR/xos-job-ids"
	assert_equal "$left" ""
	# (zombies reparented to the machine's init are its to reap, not a leak)
	run bash -c "ps -eo stat=,args= | grep -v '^Z' | grep -E '$XOS_TEST_PREFIX\.' | grep -v grep || true"
	assert_output ""
	local p loaders=""
	for p in $(pgrep -f '^/.xos/loader '); do
		grep -qs " /tmp/$XOS_TEST_PREFIX\." "/proc/$p/mountinfo" && loaders+=" $p"
	done
	assert_equal "$loaders" ""
	# (the directories held the daemons' sockets and state)
	run bash -c "ls -d /tmp/$XOS_TEST_PREFIX.* 2>/dev/null || true"
	assert_output ""
	# liblxc's lock files of the containers
	run bash -c "ls -d /run/lxc/lock/tmp/$XOS_TEST_PREFIX.* 2>/dev/null || true"
	assert_output ""
}
