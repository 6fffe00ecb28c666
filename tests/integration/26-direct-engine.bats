#!/usr/bin/env bats
# The direct container engine (xosd.conf container_engine = direct; DECISIONS
# (bm), step 2): a --net none job's container made without liblxc, no monitor
# process, with the isolation and limits a liblxc container of xos has. Real
# xosd, loader, namespaces and cgroups. (Any suite runs against this engine
# with XOS_TEST_ENGINE=direct.)

load helpers
bats_require_minimum_version 1.5.0

setup() {
	printf 'container_engine = direct\npool_size = 0\n' >"$BATS_TEST_TMPDIR/direct.conf"
	xos_start --config "$BATS_TEST_TMPDIR/direct.conf"
}

teardown() { xos_teardown; }

engine_of() { jq -r '.engine // "lxc"' "$XOS_TMP/state/jobs/$1/job.json"; }
# the job's cgroups in every hierarchy, where liblxc would put them
job_cgroups() { find /sys/fs/cgroup -maxdepth 4 -type d -name "lxc.*.xos-$1" 2>/dev/null; }
no_cgroups() { [ -z "$(job_cgroups "$1")" ]; }

@test "a --net none job starts without liblxc: no monitor, its record names the engine; output and exit code as ever" {
	run xrun --net none -- sh -c 'echo out; echo err >&2; exit 7'
	assert_equal "$status" 7
	assert_output --partial out
	id=$(xps -aq | head -n1)
	assert_equal "$(engine_of "$id")" direct
	id=$(xrun -d --net none -- sleep 60)
	wait_state "$id" RUNNING
	# liblxc's monitor would be "[lxc monitor] <lxcpath> xos-<id>"
	run pgrep -f "lxc monitor.*xos-$id"
	assert_failure
	# the init is the loader, in cgroups of the job's own in each hierarchy
	pid=$(cut -d" " -f1 "$XOS_TMP/state/volatile/lxc/xos-$id/init")
	[ "$(tr '\0' ' ' </proc/"$pid"/cmdline)" = "/.xos/loader $id " ]
	grep -q "memory:/.*lxc.payload.xos-$id\$" "/proc/$pid/cgroup"
	grep -q "pids:/.*lxc.payload.xos-$id\$" "/proc/$pid/cgroup"
	xkill "$id"
	run xwait "$id"
	wait_state "$id" KILLED
	# its cgroups and its container directory go with it
	xos_wait_for 30 no_cgroups "$id"
	[ ! -e "$XOS_TMP/state/volatile/lxc/xos-$id" ]
}

@test "a direct job is isolated as a liblxc one: namespaces, id map, hostname, /dev, read-only /proc/sys and /sys, lo alone, a boot id of its own" {
	run xrun --net none -- sh -c '
		echo "pid1=$(tr "\0" " " </proc/1/cmdline)"
		echo "host=$(hostname)"
		echo "map=$(head -n1 /proc/self/uid_map | tr -s " ")"
		echo "cg=$(grep "^[0-9]*:memory:" /proc/self/cgroup)"
		echo "dev=$(ls /dev | tr "\n" " ")"
		echo "links=$(ls /sys/class/net | tr "\n" " ")"
		echo "boot=$(cat /proc/sys/kernel/random/boot_id)"
		echo "uid=$(id -u)"
		grep -E " /proc/sys | /sys | /dev/pts " /proc/self/mountinfo | cut -d" " -f5,6
		echo x >/proc/sys/kernel/domainname 2>/dev/null && echo "wrote proc/sys"
		touch /sys/x 2>/dev/null && echo "wrote sys"
		ls -d /proc/[0-9]* | wc -l | sed "s/^/procs=/"'
	echo "$output"
	assert_success
	id=$(xps -aq | head -n1)
	assert_equal "$(engine_of "$id")" direct
	assert_line --partial "pid1=/.xos/loader $id"
	assert_line "host=${id:0:12}"
	# its own slice of ids, not the host's
	[[ "$(grep '^map=' <<<"$output")" =~ ^map=\ ?0\ ([0-9]+)\ 65534$ ]]
	[ "${BASH_REMATCH[1]}" -ge 65536 ]
	# a cgroup namespace of its own: its cgroup is its root
	assert_line --regexp '^cg=[0-9]+:memory:/$'
	assert_line "dev=fd full null ptmx pts random stderr stdin stdout tty urandom zero "
	assert_line "links=lo "
	refute_line "boot=$(cat /proc/sys/kernel/random/boot_id)"
	assert_line "uid=65534"
	assert_line --regexp '^/proc/sys ro,'
	assert_line --regexp '^/sys ro,'
	assert_line --regexp '^/dev/pts rw,nosuid,noexec'
	refute_line "wrote proc/sys"
	refute_line "wrote sys"
	# its own pid namespace: the loader, the shell and what it runs
	[[ "$(grep '^procs=' <<<"$output")" =~ ^procs=[1-5]$ ]]
}

@test "a direct job has its limits (memory, pids) in its cgroups, and a terminal" {
	id=$(xrun -d --net none --memory 64M --pids 50 -- sleep 60)
	wait_state "$id" RUNNING
	cg=$(job_cgroups "$id" | grep '/memory/')
	assert_equal "$(cat "$cg/memory.limit_in_bytes")" 67108864
	cg=$(job_cgroups "$id" | grep '/pids/')
	assert_equal "$(cat "$cg/pids.max")" 50
	xkill "$id"
	run xwait "$id"
	# its accounting was read from those cgroups
	[ "$(job_field "$id" .accounting.memory_peak)" -gt 0 ]
	[ "$(job_field "$id" .accounting.cpu_user_us)" != null ]
	run script -qec "$XOS_BUILD/xrun --net none -t -- sh -c 'tty; test -t 0 && echo tty-in'" /dev/null
	assert_success
	assert_output --partial /dev/pts/0
	assert_output --partial tty-in
}

@test "xosd restarted: a running direct job is found again through its init, and its end is seen" {
	id=$(xrun -d --net none -- sh -c "$GATE; exit 3")
	wait_state "$id" RUNNING
	xosd_stop
	xosd_launch --config "$BATS_TEST_TMPDIR/direct.conf"
	grep -q "Re-adopted running job $id" "$XOS_TMP/xosd.log"
	assert_equal "$(job_field "$id" .state)" RUNNING
	open_gate "$id"
	run xwait "$id"
	assert_equal "$status" 3
	xos_wait_for 30 no_cgroups "$id"
	# an init that is gone while xosd was down: the job is lost, not adopted
	id=$(xrun -d --net none -- sleep 60)
	wait_state "$id" RUNNING
	pid=$(cut -d' ' -f1 "$XOS_TMP/state/volatile/lxc/xos-$id/init")
	xosd_stop
	kill -9 "$pid"
	xos_wait_for 30 pid_gone "$pid"
	xosd_launch --config "$BATS_TEST_TMPDIR/direct.conf"
	wait_state "$id" FAILED
}

@test "a direct job cannot be checkpointed yet: refused, it runs on; a job that asks for checkpoints starts through liblxc and is checkpointed" {
	id=$(xrun -d --net none -- sleep 60)
	wait_state "$id" RUNNING
	run xcheckpoint "$id"
	assert_failure
	assert_output "xcheckpoint: Job ${id:0:12} was started by the direct container engine, whose jobs cannot be checkpointed yet (xosd.conf container_engine)"
	assert_equal "$(job_field "$id" .state)" RUNNING
	[ ! -e "$XOS_TMP/state/checkpoints/$id/1" ]
	# --checkpoint-every: the job goes through liblxc, whose jobs are checkpointed
	id=$(xrun -d --net none --checkpoint-every 1h -- sleep 60)
	wait_state "$id" RUNNING
	assert_equal "$(engine_of "$id")" lxc
	run xcheckpoint "$id"
	assert_success
	[ -e "$XOS_TMP/state/checkpoints/$id/1" ]
}
