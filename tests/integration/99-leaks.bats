#!/usr/bin/env bats
# Runs last: after the whole suite nothing of xos is left on the machine.

load helpers

@test "no xos container, mount, cgroup, socket or process is left after the suite" {
	run bash -c "grep -E 'xos' /proc/self/mountinfo | grep -v ' /work/' || true"
	assert_output ""
	run bash -c "find /sys/fs/cgroup -maxdepth 3 -type d -name '*xos-*' 2>/dev/null"
	assert_output ""
	# (zombies reparented to the machine's init are its to reap, not a leak)
	run bash -c "ps -eo stat=,comm=,args= | grep -v '^Z' | grep -E '^[^ ]+ +(xosd|xos-loader|lxc-start|criu) |/.xos/loader' | grep -v grep || true"
	assert_output ""
	run bash -c "ls -d /tmp/xos-t.* 2>/dev/null || true"
	assert_output ""
	run bash -c "find /tmp -maxdepth 4 -name 'notify.sock' -path '*xos*' 2>/dev/null || true"
	assert_output ""
}
