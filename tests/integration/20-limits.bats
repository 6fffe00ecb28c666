#!/usr/bin/env bats
# cgroup limits: memory (OOM), pids (fork bomb), cpus (quota).

load helpers
bats_require_minimum_version 1.5.0

setup() { xos_start; }
teardown() {
	xos_teardown
	# the cgroup_parent test's parent cgroups, also when it failed half-way
	if [ -n "${CG_PARENT:-}" ]; then
		local d base
		base=$(awk -F: '$2 == "memory" { print $3 }' /proc/1/cgroup)
		for d in /sys/fs/cgroup/*/"$CG_PARENT" "/sys/fs/cgroup/memory${base%/}/$CG_PARENT"; do
			[ ! -d "$d" ] || rmdir "$d"
		done
		CG_PARENT=
	fi
}

# forks_refused JOB: the pids controller refused at least one fork in the job
forks_refused() {
	[ "$(cg_v1_file "$1" pids pids.events | awk '/max/ {print $2}')" -gt 0 ] 2>/dev/null
}

cg_v1_file() { # JOB CONTROLLER FILE
	local c
	c="xos-$(job_field "$1" .id)"
	local f
	f=$(find "/sys/fs/cgroup/$2" -maxdepth 4 -type d -name "lxc.payload.$c" 2>/dev/null | head -1)
	[ -n "$f" ] && cat "$f/$3"
}

@test "--memory 64M: a job touching 256 MiB is OOM-killed, exit 137, reason OOM" {
	run xrun --memory 64M -- sh -c 'x=$(head -c 268435456 /dev/zero | tr "\\0" a); echo survived'
	assert_equal "$status" 137
	refute_output --partial survived
	id=$(xps -a --json | jq -r 'map(select(.limits.memory == 67108864)) | .[0].id')
	assert_equal "$(job_field "$id" .state)" KILLED
	assert_equal "$(job_field "$id" .reason)" OOM
	assert_equal "$(job_field "$id" .exit_code)" 137
	# the host is unaffected: the daemon still serves
	run xrun -- echo alive
	assert_output alive
}

@test "--pids 32 contains a fork bomb" {
	id=$(xrun -d --pids 32 -- sh -c '(b() { b | b & }; b) 2>/dev/null; exec sleep 30')
	wait_state "$id" RUNNING
	assert_equal "$(cg_v1_file "$id" pids pids.max)" 32
	# forks were refused inside the job
	wait_for 30 forks_refused "$id"
	cur=$(cg_v1_file "$id" pids pids.current)
	echo "pids.current=$cur"
	[ "$cur" -le 32 ]
	# the host and the daemon are unaffected
	run xrun -- echo alive
	assert_output alive
	xkill -s KILL "$id"
	run xwait "$id"
	assert_equal "$status" 137
}

@test "--cpus 0.5: quota set, a busy loop stays under 0.6 CPU" {
	id=$(xrun -d --cpus 0.5 -- sh -c 'while :; do :; done')
	wait_state "$id" RUNNING
	assert_equal "$(cg_v1_file "$id" cpu cpu.cfs_quota_us)" 50000
	assert_equal "$(cg_v1_file "$id" cpu cpu.cfs_period_us)" 100000
	u0=$(cg_v1_file "$id" cpuacct cpuacct.usage)
	t0=$(date +%s%N)
	sleep 2
	u1=$(cg_v1_file "$id" cpuacct cpuacct.usage)
	t1=$(date +%s%N)
	xkill -s KILL "$id"
	xwait "$id" || true
	used=$(( (u1 - u0) * 1000 / (t1 - t0) ))   # milli-CPUs
	echo "used $used milli-CPUs"
	# the quota holds whatever the load; how much below it the loop gets
	# depends on what else runs on the machine: it only has to have run
	[ "$used" -lt 600 ]
	[ "$used" -gt 0 ]
}

@test "bad limits are refused with a clear error" {
	run xrun --memory 12Q -- true
	assert_failure 125
	assert_output --partial "--memory"
	run xrun --cpus abc -- true
	assert_failure 125
	run xrun --memory 1k -- true
	assert_failure 125
	assert_output --partial "4 MiB"
}

@test "cgroup placement is a parameter: cgroup_parent puts jobs' cgroups below it" {
	xosd_stop
	parent="$XOS_TEST_PREFIX-parent-$$"
	CG_PARENT=$parent
	echo "cgroup_parent = $parent" >"$XOS_TMP/xosd.conf"
	xosd_launch --config "$XOS_TMP/xosd.conf"
	id=$(xrun -d --memory 64M -- sleep 30)
	wait_state "$id" RUNNING
	# below the parent, itself below init's cgroup (as LXC places containers:
	# init is in a cgroup of its own in a PID namespace or under a manager)
	base=$(awk -F: '$2 == "memory" { print $3 }' /proc/1/cgroup)
	base=${base%/}
	assert_equal "$(cat "/sys/fs/cgroup/memory$base/$parent/xos-$id/memory.limit_in_bytes")" 67108864
	init=$(job_init_pid "$id")
	grep -q "memory:$base/$parent/xos-$id\$" "/proc/$init/cgroup"
	xkill -s KILL "$id"
	run xwait "$id"
	assert_equal "$status" 137
	xosd_stop
	# xosd removed the job's cgroups; the parent is the node owner's
	run find /sys/fs/cgroup -maxdepth 6 -name "*xos-$id*"
	assert_output ""
	for d in /sys/fs/cgroup/*/"$parent" "/sys/fs/cgroup/memory$base/$parent"; do
		[ ! -d "$d" ] || rmdir "$d"
	done
	CG_PARENT=
}
