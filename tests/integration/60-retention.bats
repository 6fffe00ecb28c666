#!/usr/bin/env bats
# Ended jobs are kept up to keep_ended (xosd.conf); the oldest go first.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	xos_start
	xosd_stop
	echo "keep_ended = 2" >"$XOS_TMP/xosd.conf"
	xosd_launch --config "$XOS_TMP/xosd.conf"
}
teardown() { xos_teardown; }

job_count_is() { [ "$(xps -a -q | wc -l)" -eq "$1" ]; }

@test "keep_ended: only the newest ended jobs stay, record and output; running ones are never dropped" {
	live=$(xrun -d -- sleep 30)
	ids=()
	for i in 1 2 3 4; do
		ids+=("$(xrun -d -- sh -c "echo out-$i; exit $i")")
		xwait "${ids[-1]}" || true
	done
	# the running one and the 2 newest ended (the oldest go once a job ended)
	wait_for 30 job_count_is 3
	run xps -a -q
	assert_output --partial "$live"
	assert_output --partial "${ids[2]}"
	assert_output --partial "${ids[3]}"
	refute_output --partial "${ids[0]}"
	[ ! -e "$XOS_TMP/state/jobs/${ids[0]}" ]
	[ ! -e "$XOS_TMP/state/jobs/${ids[1]}" ]
	run xlogs "${ids[3]}"
	assert_output out-4
	run xlogs "${ids[0]}"
	assert_failure
	assert_output --partial "No such job"
	# also after a restart
	xosd_stop
	xosd_launch --config "$XOS_TMP/xosd.conf"
	assert_equal "$(xps -a -q | wc -l)" 3
	xkill -s KILL "$live"
	xwait "$live" || true
}
