#!/usr/bin/env bats
# The program a dump and a restore run besides CRIU (issue 13, goal 4;
# DECISIONS (au)): xos-criu-helper as the criu liblxc runs and as CRIU's
# action script, liblxc's `criu --version` answered from the shim's cache,
# and xosd itself when no helper is installed. Real xosd, LXC and CRIU.

load helpers
bats_require_minimum_version 1.5.0

setup() { xos_start; }
teardown() { xos_teardown; }

LOOP='while :; do echo x >>/tmp/ticks; sleep 0.1; done'
shim_dir() { echo "$XOS_TMP/run/criu-shim"; }

# ticks_above JOB N: the job's loop has written more than N ticks (read anew
# at each try of wait_for)
ticks_above() { [ "$(wc -l <"$(job_rootfs "$1")/tmp/ticks")" -gt "$2" ]; }

@test "a dump runs xos-criu-helper; liblxc's criu --version is answered from the cache, for restores too" {
	id=$(xrun -d -- sh -c "$LOOP")
	wait_state "$id" RUNNING
	run xcheckpoint --stop "$id"
	assert_success
	assert_equal "$(readlink "$(shim_dir)/criu")" "$(realpath "$XOS_BUILD/xos-criu-helper")"
	cache=$(compgen -G "$(shim_dir)/version.*")
	[ "$(wc -l <<<"$cache")" -eq 1 ]
	assert_equal "$(cat "$cache")" "$(/usr/local/sbin/criu --version)"
	# a forged answer (a CRIU too old for liblxc) is what the restore sees:
	# it fails; the real answer again and it restores
	printf 'Version: 0.1\n' >"$cache"
	run xrestart "$id"
	assert_failure
	assert_equal "$(job_field "$id" .state)" CHECKPOINTED
	rm -f "$cache"
	run xrestart "$id"
	assert_success
	wait_state "$id" RUNNING
	assert_equal "$(cat "$(compgen -G "$(shim_dir)/version.*")")" \
		"$(/usr/local/sbin/criu --version)"
	n=$(wc -l <"$(job_rootfs "$id")/tmp/ticks")
	wait_for 30 ticks_above "$id" "$n"
}

@test "without xos-criu-helper xosd plays its parts itself: checkpoint and restart work" {
	[ ! -e /usr/local/libexec/xos/xos-criu-helper ] || skip "a helper is installed in LIBEXECDIR"
	xosd_stop
	mkdir "$XOS_TMP/bin"
	cp "$XOS_BUILD/xosd" "$XOS_TMP/bin/xosd"
	cp "$XOS_BUILD/xos-loader" "$XOS_TMP/bin/xos-loader"
	XOS_BUILD="$XOS_TMP/bin" xosd_launch
	id=$(xrun -d -- sh -c "$LOOP")
	wait_state "$id" RUNNING
	run xcheckpoint --stop "$id"
	assert_success
	assert_equal "$(readlink "$(shim_dir)/criu")" "$XOS_TMP/bin/xosd"
	run xrestart "$id"
	assert_success
	wait_state "$id" RUNNING
	n=$(wc -l <"$(job_rootfs "$id")/tmp/ticks")
	wait_for 30 ticks_above "$id" "$n"
}
