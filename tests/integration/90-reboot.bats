#!/usr/bin/env bats
# A node reboot, simulated: every container and its monitor killed, the
# volatile tmpfs and the job layers gone, the run directory and cgroups
# gone, xosd started again on the same state directory. Jobs with
# --restart on-failure come back from their newest version; the others are
# recorded as lost (issue 10, section 5).

load helpers
bats_require_minimum_version 1.5.0

setup() { xos_start; }
teardown() { xos_teardown; }

# What a reboot takes away from this test's daemon: xosd (SIGKILL), every
# process of every container and LXC's monitors, every mount below the test's
# directory (job layers and roots, the volatile tmpfs), the job cgroups, LXC's
# locks and xosd's run directory (a tmpfs on a real node).
node_reboots() {
	local p id
	kill -9 "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	XOSD_PID=
	for p in $(pgrep -f "^\[lxc monitor\] $XOS_TMP/" 2>/dev/null) $(xos_loader_pids); do
		kill -9 "$p" 2>/dev/null || true
	done
	for _ in $(seq 1 100); do
		[ -z "$(xos_loader_pids)$(pgrep -f "^\[lxc monitor\] $XOS_TMP/")" ] && break
		sleep 0.05
	done
	[ -z "$(xos_loader_pids)" ] || {
		echo "container processes left: $(xos_loader_pids)" >&2
		return 1
	}
	awk -v d="$XOS_TMP" '$5 ~ "^"d {print $5}' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m"; done
	[ -z "$(awk -v d="$XOS_TMP" '$5 ~ "^"d' /proc/self/mountinfo)" ]
	for id in "$XOS_TMP"/state/jobs/*; do
		id=${id##*/}
		find /sys/fs/cgroup -depth -name "*xos-$id*" -type d -exec rmdir {} + 2>/dev/null || true
	done
	rm -rf "/run/lxc/lock$XOS_TMP" "$XOS_TMP/run"
	# the volatile tmpfs's mount point is an empty directory again
	[ -z "$(ls -A "$XOS_TMP/state/volatile")" ]
}

@test "node reboot: a --restart on-failure job comes back from its newest version; the others are recorded as lost" {
	# a restartable job with two versions: it must come back from the second
	keep=$(xrun -d --restart on-failure -- sh -c 'i=0; while [ $i -lt 600 ]; do i=$((i+1)); echo $i; sleep 0.1; done')
	wait_state "$keep" RUNNING
	wait_lines "$XOS_TMP/state/jobs/$keep/xos/spool/1.out" 3
	xcheckpoint "$keep" >/dev/null
	wait_lines "$XOS_TMP/state/jobs/$keep/xos/spool/1.out" 8
	xcheckpoint "$keep" >/dev/null
	at2=$(xlogs "$keep" | wc -l)
	# a job without --restart, and one with it but no version yet
	plain=$(xrun -d -- sleep 600)
	nover=$(xrun -d --restart on-failure -- sleep 600)
	# one that had ended before: it stays as it was
	done_id=$(xrun -d -- sh -c 'exit 4')
	run xwait "$done_id"
	assert_equal "$status" 4
	wait_state "$plain" RUNNING
	wait_state "$nover" RUNNING

	node_reboots
	xosd_launch

	# the restartable job: restored from version 2, counting on from there
	wait_state "$keep" RUNNING 60
	assert_equal "$(job_field "$keep" .checkpoint.restores)" 1
	grep -q "restoring version 2" "$XOS_TMP/xosd.log"
	n=$(xlogs "$keep" | wc -l)
	wait_lines "$XOS_TMP/state/jobs/$keep/xos/spool/1.out" $((n + 5))
	# its output goes on from what version 2 had (no number twice: nothing
	# after the checkpoint was replayed into the restored spool)
	first=$(xlogs "$keep" | sed -n "$((at2 + 1))p")
	[ -n "$first" ]
	run bash -c "xlogs $keep | sort -n | uniq -d"
	assert_output ""

	# the others: FAILED, lost with the reboot as reason, in xps -a
	for id in "$plain" "$nover"; do
		assert_equal "$(job_field "$id" .state)" FAILED
		reason=$(job_field "$id" .reason)
		[[ $reason == "lost: the node rebooted"* ]] || {
			echo "job $id: reason '$reason'" >&2
			false
		}
		assert_equal "$(job_field "$id" '.units[0].state')" FAILED
		[[ $(job_field "$id" '.units[0].reason') == "lost: the node rebooted"* ]]
		run xwait "$id"
		assert_equal "$status" 125
	done
	[[ $(job_field "$nover" .reason) == *"no checkpoint"* ]]
	run xps -a
	assert_output --partial "${plain:0:12}"
	assert_output --partial "${nover:0:12}"
	# the job that had ended is as it was
	assert_equal "$(job_field "$done_id" .state)" EXITED
	assert_equal "$(job_field "$done_id" .exit_code)" 4
	# and each job is there once
	assert_equal "$(xps -a --json | jq -r '.[].id' | sort | uniq -d)" ""
	assert_equal "$(xps -a --json | jq length)" 4

	# the restored job can be ended as usual
	xkill -s KILL "$keep"
	run xwait "$keep"
	assert_equal "$status" 137
}

@test "node reboot: xosd starts on a state directory whose volatile tmpfs is gone, and new jobs run" {
	id=$(xrun -d -- sleep 600)
	wait_state "$id" RUNNING
	node_reboots
	xosd_launch
	assert_equal "$(job_field "$id" .state)" FAILED
	run xrun -- sh -c 'echo fresh'
	assert_success
	assert_output fresh
	# the volatile tmpfs is back (a tmpfs again, not the state's file system)
	assert_equal "$(stat -f -c %T "$XOS_TMP/state/volatile")" tmpfs
}

@test "node reboot: a job stopped by xcheckpoint --stop stays CHECKPOINTED and xrestart resumes it after the reboot" {
	id=$(xrun -d -- sh -c 'i=0; while [ $i -lt 600 ]; do i=$((i+1)); echo $i; sleep 0.1; done')
	wait_state "$id" RUNNING
	wait_lines "$XOS_TMP/state/jobs/$id/xos/spool/1.out" 3
	xcheckpoint --stop "$id" >/dev/null
	wait_state "$id" CHECKPOINTED
	n=$(xlogs "$id" | wc -l)
	node_reboots
	xosd_launch
	assert_equal "$(job_field "$id" .state)" CHECKPOINTED
	xrestart "$id" >/dev/null
	wait_state "$id" RUNNING 60
	wait_lines "$XOS_TMP/state/jobs/$id/xos/spool/1.out" $((n + 3))
	run bash -c "xlogs $id | sort -n | uniq -d"
	assert_output ""
	xkill -s KILL "$id"
	run xwait "$id"
	assert_equal "$status" 137
}
