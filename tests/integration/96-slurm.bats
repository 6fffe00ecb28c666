#!/usr/bin/env bats
# Slurm (issue 15): a three-node cluster on this machine (three slurmd with
# MULTIPLE_SLURMD, as Debian builds it, one slurmctld, a munged of its own),
# started for this file and torn down with everything it made; xosd with
# cgroup_parent = caller, so each job's container sits in its Slurm step's
# cgroups: Slurm's accounting, memory limit and kill cover it. Accounting
# storage of its own too: a MariaDB server on a UNIX socket only (its data
# directory made by mariadb-install-db below the file's directory) and a
# slurmdbd using it, for sacct.

load helpers
bats_require_minimum_version 1.5.0

SL_NODES=(xsn1 xsn2 xsn3)

# sl_pid_stop PIDFILE: stop the daemon of PIDFILE (ours), SIGKILL after 20 s
sl_pid_stop() {
	local pid
	[ -s "$1" ] || return 0
	pid=$(cat "$1")
	kill "$pid" 2>/dev/null || return 0
	xos_wait_for 20 pid_gone "$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
}

# The cgroups Slurm (and LXC below its steps) made for the test's nodes
sl_cgroups() {
	local n
	for n in "${SL_NODES[@]}"; do
		find /sys/fs/cgroup/*/"slurm_$n" -depth -type d 2>/dev/null || true
	done
}

sl_stop() {
	local n
	[ -n "${SL_DIR:-}" ] || return 0
	if [ -s "$SL_DIR/slurmctld.pid" ]; then
		timeout 10 scancel --full --quiet "$(squeue -h -o %i | head -n 50)" 2>/dev/null || true
	fi
	for n in "${SL_NODES[@]}"; do sl_pid_stop "$SL_DIR/slurmd-$n.pid"; done
	sl_pid_stop "$SL_DIR/slurmctld.pid"
	sl_pid_stop "$SL_DIR/slurmdbd.pid"
	sl_pid_stop "$SL_DIR/db/pid"
	sl_pid_stop "$SL_DIR/munge/pid"
	sl_cgroups | while read -r c; do rmdir "$c" 2>/dev/null || true; done
	rm -rf "$SL_DIR"
}

sl_config() {
	local host port=$1 storage=accounting_storage/none
	host=$(hostname)
	[ "$SL_ACCT" = 0 ] || storage=accounting_storage/slurmdbd
	# (cred_expire: a requeued batch job waits that long, 120 s by default,
	# before it may start again)
	cat >"$SL_DIR/slurm.conf" <<-EOF
		ClusterName=xostest
		SlurmctldHost=$host(127.0.0.1)
		SlurmctldPort=$port
		SlurmUser=root
		SlurmdUser=root
		AuthType=auth/munge
		AuthInfo=socket=$SL_DIR/munge/sock,cred_expire=10
		CredType=cred/munge
		StateSaveLocation=$SL_DIR/state
		SlurmdSpoolDir=$SL_DIR/spool/%n
		SlurmctldPidFile=$SL_DIR/slurmctld.pid
		SlurmdPidFile=$SL_DIR/slurmd-%n.pid
		SlurmctldLogFile=$SL_DIR/log/slurmctld.log
		SlurmdLogFile=$SL_DIR/log/slurmd-%n.log
		ProctrackType=proctrack/cgroup
		TaskPlugin=task/cgroup
		JobAcctGatherType=jobacct_gather/cgroup
		JobAcctGatherFrequency=1
		AccountingStorageType=$storage
		AccountingStorageHost=127.0.0.1
		AccountingStoragePort=$((port + 4))
		AccountingStoragePass=$SL_DIR/munge/sock
		SchedulerType=sched/builtin
		SelectType=select/cons_tres
		SelectTypeParameters=CR_Core_Memory
		ReturnToService=2
		MpiDefault=none
		KillWait=5
		PlugStackConfig=$SL_DIR/plugstack.conf
		NodeName=xsn[1-3] NodeHostname=$host NodeAddr=127.0.0.1 Port=[$((port + 1))-$((port + 3))] CPUs=2 RealMemory=2048
		PartitionName=debug Nodes=xsn[1-3] Default=YES MaxTime=10 State=UP OverSubscribe=YES
	EOF
	printf '%s\n' CgroupPlugin=cgroup/v1 CgroupMountpoint=/sys/fs/cgroup ConstrainRAMSpace=yes \
		ConstrainSwapSpace=yes AllowedSwapSpace=0 >"$SL_DIR/cgroup.conf"
	# slurmdbd reads slurmdbd.conf beside slurm.conf (SLURM_CONF), which must
	# be its SlurmUser's and 0600; the database is reached on the server's
	# UNIX socket (MYSQL_UNIX_PORT, as StorageHost=localhost connects). (The
	# other daemons and the commands reach slurmdbd through the munged that
	# AccountingStoragePass names, not AuthInfo's.)
	install -m 0600 /dev/null "$SL_DIR/slurmdbd.conf"
	cat >"$SL_DIR/slurmdbd.conf" <<-EOF
		DbdHost=localhost
		DbdAddr=127.0.0.1
		DbdPort=$((port + 4))
		SlurmUser=root
		AuthType=auth/munge
		AuthInfo=socket=$SL_DIR/munge/sock
		PidFile=$SL_DIR/slurmdbd.pid
		LogFile=$SL_DIR/log/slurmdbd.log
		StorageType=accounting_storage/mysql
		StorageHost=localhost
		StorageUser=root
		StorageLoc=xos_slurm_acct
	EOF
	# the SPANK plugin, where it was built (libslurm-dev installed)
	if [ -f "$XOS_BUILD/xos-spank.so" ]; then
		echo "required $XOS_BUILD/xos-spank.so exec=$XOS_ROOT/slurm/xos-spank-exec" \
			"xrun=$XOS_BUILD/xrun job=$XOS_ROOT/slurm/xos-slurm-job" >"$SL_DIR/plugstack.conf"
	else
		: >"$SL_DIR/plugstack.conf"
	fi
}

sl_nodes_idle() { [ "$(sinfo -h -o %T -t idle -N | grep -c idle)" -eq 3 ]; }
sl_dbd_answers() { sacctmgr -n -P list cluster format=cluster >/dev/null 2>&1; }

# Accounting storage: a MariaDB server of the file's own, on a UNIX socket
# only (no TCP at all), then slurmdbd on it; the cluster registered
sl_accounting_start() {
	mkdir -p "$SL_DIR/db"
	if ! mariadb-install-db --no-defaults --user=root --datadir="$SL_DIR/db/data" \
		--auth-root-authentication-method=socket --skip-test-db \
		>"$SL_DIR/log/mariadb-install-db.log" 2>&1; then
		cat "$SL_DIR/log/mariadb-install-db.log" >&2
		return 1
	fi
	mariadbd --no-defaults --user=root --datadir="$SL_DIR/db/data" --socket="$SL_DIR/db/sock" \
		--skip-networking --pid-file="$SL_DIR/db/pid" --log-error="$SL_DIR/log/mariadb.log" \
		--innodb-buffer-pool-size=32M --skip-name-resolve </dev/null >/dev/null 2>&1 3>&- &
	xos_wait_for 60 test -S "$SL_DIR/db/sock"
	xos_wait_for 30 test -s "$SL_DIR/db/pid"
	MYSQL_UNIX_PORT="$SL_DIR/db/sock" slurmdbd
	xos_wait_for 60 sl_dbd_answers
	sacctmgr -i add cluster xostest >/dev/null
}

setup_file() {
	local n c
	for c in slurmd slurmctld srun sinfo squeue scancel sstat munged; do
		command -v "$c" >/dev/null ||
			skip "$c not installed (scripts/setup.sh installs Slurm and munge)"
	done
	# accounting storage (sacct), where its packages are installed
	SL_ACCT=1
	for c in slurmdbd sacct sacctmgr mariadbd mariadb-install-db; do
		command -v "$c" >/dev/null || SL_ACCT=0
	done
	export SL_ACCT
	[ -d /sys/fs/cgroup/memory ] || skip "Slurm's cgroup/v1 needs the v1 memory hierarchy"
	SL_DIR=$(mktemp -d "/tmp/$XOS_TEST_PREFIX-slurm.XXXXXX")
	export SL_DIR SLURM_CONF="$SL_DIR/slurm.conf"
	mkdir -p "$SL_DIR"/{munge,state,log} "$SL_DIR"/spool/xsn{1,2,3}
	chmod 0711 "$SL_DIR" "$SL_DIR/munge"
	head -c 1024 /dev/urandom >"$SL_DIR/munge/key"
	chmod 0400 "$SL_DIR/munge/key"
	munged --force --socket="$SL_DIR/munge/sock" --key-file="$SL_DIR/munge/key" \
		--pid-file="$SL_DIR/munge/pid" --seed-file="$SL_DIR/munge/seed" \
		--log-file="$SL_DIR/munge/log"
	# ports from this run's pid: two suites on one machine do not collide
	sl_config "$((20000 + ($$ % 2000) * 5))"
	if [ "$SL_ACCT" = 1 ]; then
		local t0=$SECONDS
		sl_accounting_start
		echo "# accounting storage (MariaDB, slurmdbd) started in $((SECONDS - t0)) s" >&3
	fi
	slurmctld -i
	for n in "${SL_NODES[@]}"; do slurmd -N "$n"; done
	xos_wait_for 60 sl_nodes_idle
}

teardown_file() {
	sl_stop
}

setup() {
	xos_start_caller
}

xos_start_caller() {
	XOS_TMP=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.XXXXXX")
	chmod 0711 "$XOS_TMP"
	export XOS_TMP XOS_SOCKET="$XOS_TMP/run/xosd.sock"
	echo "cgroup_parent = caller" >"$XOS_TMP/xosd.conf"
	xosd_launch --config "$XOS_TMP/xosd.conf"
}

sl_queue_empty() { [ -z "$(squeue -h -o %i)" ]; }

# No cgroup of an xos job is left in the Slurm tree, and Slurm removed its
# jobs' cgroups (only the node and uid levels stay between jobs)
sl_tree_clean() { ! sl_cgroups | grep -qE '/job_[0-9]+'; }

teardown() {
	local left="" rc=0
	squeue -h -o %i | while read -r j; do scancel "$j" 2>/dev/null || true; done
	xos_wait_for 30 sl_queue_empty || true
	scontrol update NodeName=xsn1 State=RESUME >/dev/null 2>&1 || true
	xos_b_teardown || rc=1
	xos_teardown || rc=1
	[ -z "${SL_CKPT:-}" ] || rm -rf "$SL_CKPT"
	SL_CKPT=
	# the caller-cgroup test's cgroups (their jobs' are gone with xosd)
	local c
	for c in ${SL_TEST_CGROUPS:-}; do
		[ ! -d "$c" ] || rmdir "$c" 2>/dev/null || rc=1
	done
	if [ -n "${SL_DELEG:-}" ]; then
		# (LXC made the delegated parent in the other hierarchies: a
		# parent is the node owner's to remove, xosd leaves it)
		for c in /sys/fs/cgroup/*/"$SL_DELEG"; do
			[ ! -d "$c" ] || rmdir "$c" 2>/dev/null || rc=1
		done
	fi
	SL_TEST_CGROUPS='' SL_DELEG=''
	if ! xos_wait_for 20 sl_tree_clean; then
		left=$(sl_cgroups | grep -E '/job_[0-9]+')
		sl_cgroups | grep -E '/job_[0-9]+' | while read -r c; do rmdir "$c" 2>/dev/null || true; done
		echo "cgroups left in the Slurm tree:" >&2
		echo "$left" >&2
		return 1
	fi
	return "$rc"
}

# A second node's xosd ("B", for xsn2), sharing checkpoint_dir with the first
xos_b_start() {
	XOS_TMP_B=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.XXXXXX")
	chmod 0711 "$XOS_TMP_B"
	printf 'cgroup_parent = caller\ncheckpoint_dir = %s\n' "$SL_CKPT" >"$XOS_TMP_B/xosd.conf"
	"$XOS_BUILD/xosd" --foreground --config "$XOS_TMP_B/xosd.conf" --state-dir "$XOS_TMP_B/state" \
		--run-dir "$XOS_TMP_B/run" --loader "$XOS_BUILD/xos-loader" \
		</dev/null >>"$XOS_TMP_B/xosd.log" 2>&1 3>&- &
	XOSD_B_PID=$!
	xos_wait_for 30 xps_b
}
xps_b() { XOS_SOCKET="$XOS_TMP_B/run/xosd.sock" xps "$@" >/dev/null 2>&1; }

# B goes the way the test's own daemon goes (xos_teardown, on B's variables)
xos_b_teardown() {
	[ -n "${XOS_TMP_B:-}" ] || return 0
	local a_tmp=$XOS_TMP a_pid=$XOSD_PID a_sock=$XOS_SOCKET rc=0
	XOS_TMP=$XOS_TMP_B XOSD_PID=$XOSD_B_PID XOS_SOCKET="$XOS_TMP_B/run/xosd.sock"
	xos_teardown || rc=1
	XOS_TMP=$a_tmp XOSD_PID=$a_pid XOS_SOCKET=$a_sock XOS_TMP_B=
	return "$rc"
}

# sl_job NAME: the Slurm job id of the job named NAME (queued or running)
sl_job() { squeue -h -o %i -n "$1" | head -n 1; }
sl_running() { [ "$(squeue -h -o %T -n "$1")" = RUNNING ]; }
live_jobs() { [ "$(xps -q | wc -l)" -ge "$1" ]; }
no_live_jobs() { [ -z "$(xps -q)" ]; }

@test "srun -N3 xrun hostname runs three containers, each below its Slurm task's cgroup" {
	run timeout 120 srun -N3 xrun -- hostname
	assert_success
	hosts=$output
	echo "# srun said: $output" >&2 # (shown if a check below fails)
	[ "${#lines[@]}" -eq 3 ]
	run xps -a --json
	mapfile -t ids < <(jq -r '.[].id' <<<"$output")
	[ "${#ids[@]}" -eq 3 ]
	local nodes="" id parent
	for id in "${ids[@]}"; do
		# a container's hostname is its job's id
		grep -qx "${id:0:12}" <<<"$hosts" || fail "no container of job $id ran: $hosts"
		parent=$(jq -r .cgroup_parent "$XOS_TMP/state/jobs/$id/job.json")
		[[ "$parent" =~ ^slurm_(xsn[123])/uid_0/job_[0-9]+/step_0/task_[0-9]+$ ]] ||
			fail "job $id is not below a Slurm task: cgroup_parent '$parent'"
		nodes+="${BASH_REMATCH[1]} "
	done
	assert_equal "$(tr ' ' '\n' <<<"$nodes" | grep . | sort -u | wc -l)" 3
}

@test "scancel of srun xrun leaves no container, even of a job that ignores SIGTERM" {
	srun -N1 -J xos-cancel xrun -- sh -c 'trap "" TERM; while :; do sleep 1; done' \
		>"$XOS_TMP/srun.out" 2>&1 &
	SRUN_PID=$!
	xos_wait_for 60 live_jobs 1
	id=$(job_field "$(xps -q)" .id)
	wait_state "$id" RUNNING
	# the container is in the step's memory cgroup (Slurm's limits and kill)
	init=$(job_init_pid "$id")
	grep -qE "memory:/slurm_xsn1/uid_0/job_[0-9]+/step_0/task_0/xos-$id" "/proc/$init/cgroup"
	scancel "$(sl_job xos-cancel)"
	# Slurm's TERM (forwarded by xrun) is ignored; its KILL after KillWait
	# ends xrun, and with it the job
	xos_wait_for 60 no_live_jobs
	xos_wait_for 30 pid_gone "$SRUN_PID"
	wait "$SRUN_PID" || true
	run job_field "$id" .state
	assert_output KILLED
	grep -q "Killing job $id: its caller, whose cgroup holds it, went before it" "$XOS_TMP/xosd.log"
	run lxc-ls -P "$XOS_TMP/state/volatile/lxc"
	assert_output ""
	xos_wait_for 30 sl_tree_clean
}

job_killed() { [ "$(job_field "$1" .state)" = KILLED ]; }

@test "a detached job (xrun -d) in a Slurm step ends with the step: scancel of its batch job, or the step's own end" {
	cat >"$XOS_TMP/detached.sh" <<-EOF
		#!/bin/bash
		xrun -d -- sh -c 'while :; do sleep 1; done' >"$XOS_TMP/detached.id" || exit 1
		for _ in \$(seq 300); do sleep 1; done
	EOF
	chmod 0755 "$XOS_TMP/detached.sh"
	run sbatch --parsable -J xos-detached -o "$XOS_TMP/detached-%j.out" "$XOS_TMP/detached.sh"
	assert_success
	j=$output
	xos_wait_for 60 test -s "$XOS_TMP/detached.id"
	id=$(cat "$XOS_TMP/detached.id")
	wait_state "$id" RUNNING
	grep -qE "cpuacct:/slurm_xsn[123]/uid_0/job_$j/step_batch/.*/xos-$id\$" \
		"/proc/$(job_init_pid "$id")/cgroup"
	# the batch script goes (TERM); its detached job, in a child cgroup of
	# the step's, is no process Slurm signals: xosd ends it
	scancel "$j"
	xos_wait_for 60 job_killed "$id"
	grep -q "Killing job $id: the Slurm step whose cgroup holds it (slurm_xsn[123]/uid_0/job_$j/" \
		"$XOS_TMP/xosd.log"
	# a step whose task is xrun -d ends as xrun returns, and its job with it
	run timeout 120 srun -N1 xrun -d -- sleep 300
	assert_success
	id2=$output
	xos_wait_for 60 job_killed "$id2"
	grep -q "Killing job $id2: the Slurm step whose cgroup holds it" "$XOS_TMP/xosd.log"
	run xps -a
	assert_line --regexp "^${id:0:12} .*KILLED\(KILL\) +Slurm step ended"
	assert_line --regexp "^${id2:0:12} .*KILLED\(KILL\) +Slurm step ended"
	xos_wait_for 60 no_live_jobs
	run lxc-ls -P "$XOS_TMP/state/volatile/lxc"
	assert_output ""
	xos_wait_for 30 sl_tree_clean
}

# sl_time_at_least TIME SECONDS: Slurm's TIME ([D-]HH:MM:SS or MM:SS.mmm) is
# at least SECONDS
sl_time_at_least() {
	[ -n "$1" ] || return 1
	awk -v t="$1" -v min="$2" 'BEGIN {
		d = 0; if (index(t, "-")) { split(t, dd, "-"); d = dd[1]; t = dd[2] }
		n = split(t, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]
		exit !(d * 86400 + s >= min) }'
}
# sl_cpu_at_least JOB SECONDS: sstat shows at least SECONDS of cpu for step 0
sl_cpu_at_least() {
	sl_time_at_least "$(sstat -n -P -a -j "$1.0" -o AveCPU 2>/dev/null | head -n 1)" "$2"
}
# sl_sacct_cpu_at_least JOB SECONDS: sacct (slurmdbd's record) shows step 0
# of JOB completed, with at least SECONDS of cpu
sl_sacct_cpu_at_least() {
	local st cpu
	IFS='|' read -r st cpu < <(sacct -n -P -j "$1.0" -o State,TotalCPU 2>/dev/null | head -n 1)
	[ "$st" = COMPLETED ] && sl_time_at_least "$cpu" "$2"
}

@test "Slurm's accounting counts the container's cpu time: sstat while it runs, sacct after" {
	[ "$SL_ACCT" = 1 ] || skip "no accounting storage (slurmdbd, MariaDB: scripts/setup.sh installs them)"
	# The step runs in an allocation of its own that outlives it: with srun
	# making the allocation, srun ends the job as soon as its task has
	# ended, and the step's own completion (with its accounting) can reach
	# slurmctld after the job's end
	run salloc -N1 -J xos-acct --no-shell
	assert_success
	j=$(sed -n 's/.*Granted job allocation \([0-9][0-9]*\).*/\1/p' <<<"$output")
	[ -n "$j" ]
	xos_wait_for 60 sl_running xos-acct
	# a busy loop in the container, until the test opens its gate; xrun
	# itself uses next to no cpu, so the step's cpu is the container's
	srun --jobid="$j" -N1 xrun -- sh -c 'while [ ! -e /tmp/gate ]; do :; done' \
		>"$XOS_TMP/srun.out" 2>&1 &
	SRUN_PID=$!
	xos_wait_for 60 live_jobs 1
	id=$(xps -q)
	wait_state "$id" RUNNING
	# (4 s while it runs, 2 s in the record: the record's TotalCPU is the
	# whole seconds of Slurm's last poll plus xrun's own fraction, 5.013 s
	# where sstat and ps said 6 s, and AveCPU is rounded; the gate opened
	# at 2 s could leave a record of 1.0xx s)
	xos_wait_for 120 sl_cpu_at_least "$j" 4
	open_gate "$id"
	xos_wait_for 60 pid_gone "$SRUN_PID"
	wait "$SRUN_PID"
	# the step's record, as slurmctld sent it to slurmdbd and the database
	# keeps it
	if ! xos_wait_for 60 sl_sacct_cpu_at_least "$j" 2; then
		# what slurmdbd has, and what slurmctld said of it, for the
		# failure's report
		sacct -P -j "$j" -o JobID,State,ExitCode,TotalCPU,UserCPU,SystemCPU,Elapsed >&2 || true
		sstat -P -a -j "$j.0" -o JobID,AveCPU,TotalCPU >&2 || true
		grep -iE 'dbd|agent|step' "$SL_DIR/log/slurmctld.log" | tail -n 20 >&2 || true
		tail -n 20 "$SL_DIR/log/slurmdbd.log" >&2 || true
		return 1
	fi
	run sacct -n -P -j "$j.0" -o JobID,State,TotalCPU
	echo "sacct: $output"
	scancel "$j"
}

@test "a job over its Slurm --mem is killed by Slurm's memory limit" {
	local hog='b = bytearray(200 << 20); print("survived")'
	# the node itself lets it have 200 MiB
	run xrun -- python3 -c "$hog"
	assert_success
	assert_output survived
	run timeout 120 srun -N1 --mem=64M xrun -- python3 -c "$hog"
	assert_failure
	refute_output --partial survived
	run xps -a
	assert_line --regexp "KILLED\(KILL\) +OOM"
	assert_line --regexp "EXITED\(0\)"
}

@test "srun --xos CMD runs every task of the step in a container of its own (SPANK plugin)" {
	[ -f "$XOS_BUILD/xos-spank.so" ] || skip "the SPANK plugin was not built (no spank.h: libslurm-dev)"
	# (srun's own notes, such as a step waiting for the previous job's
	# resources, go to its stderr: only the tasks' output is counted)
	run --separate-stderr timeout 120 srun -N2 -n4 --xos hostname
	assert_success
	hosts=$output
	[ "${#lines[@]}" -eq 4 ] || fail "4 tasks, but their output was: $output (srun's stderr: $stderr)"
	run xps -a --json
	mapfile -t ids < <(jq -r '.[].id' <<<"$output")
	[ "${#ids[@]}" -eq 4 ]
	for id in "${ids[@]}"; do
		grep -qx "${id:0:12}" <<<"$hosts" || fail "no container of job $id ran: $hosts"
		[[ "$(jq -r .cgroup_parent "$XOS_TMP/state/jobs/$id/job.json")" =~ ^slurm_xsn[12]/ ]]
	done
	# a template named: the plugin passes it to xrun (an unknown one fails there)
	run timeout 120 srun -N1 --xos=no-such-template true
	assert_failure
	assert_output --partial no-such-template
	# srun without --xos runs tasks as before, on the host
	run timeout 120 srun -N1 hostname
	assert_success
	assert_output "$(hostname)"
}

sl_job_on() { [ "$(squeue -h -o '%T %N' -j "$1")" = "RUNNING $2" ]; }
has_lines_b() { [ "$(XOS_SOCKET="$1" xlogs "$2" 2>/dev/null | wc -l)" -ge "$3" ]; }
job_checkpointed() { [ "$(xps -a --json "$1" | jq -r '.[0].state')" = CHECKPOINTED ]; }
ended_on_b() {
	[ "$(XOS_SOCKET="$XOS_TMP_B/run/xosd.sock" xps -a --json "$1" 2>/dev/null |
		jq -r '.[0].state')" = EXITED ]
}
sl_completed() { scontrol show job "$1" | grep -q "JobState=COMPLETED"; }

# Node 1's xosd (the test's) and node 2's share a checkpoint store; each
# node's jobs talk to their own (XOS_SOCKET from $SL_DIR/sock/NODE)
two_nodes_shared_store() {
	SL_CKPT="$SL_DIR/ckpt-$BATS_TEST_NUMBER"
	xosd_stop
	printf 'cgroup_parent = caller\ncheckpoint_dir = %s\n' "$SL_CKPT" >"$XOS_TMP/xosd.conf"
	xosd_launch --config "$XOS_TMP/xosd.conf"
	xos_b_start
	mkdir -p "$SL_DIR/sock"
	ln -sfn "$XOS_SOCKET" "$SL_DIR/sock/xsn1"
	ln -sfn "$XOS_TMP_B/run/xosd.sock" "$SL_DIR/sock/xsn2"
}

COUNT_CMD='i=0; while [ $i -lt 40 ]; do i=$((i + 1)); echo $i; sleep 0.25; done'

# sl_move_job J ID SIGNAL_ARGS...: J runs on node 1 as xos job ID (counting);
# node 1 is drained and J signalled; ID is checkpointed there, J requeued,
# and ID restored on node 2, where it ends, with J COMPLETED
sl_move_job() {
	local j=$1 id=$2
	shift 2
	xos_wait_for 60 has_lines_b "$XOS_SOCKET" "$id" 5
	scontrol update NodeName=xsn1 State=DRAIN Reason=xos-test
	scancel "$@" "$j"
	xos_wait_for 60 job_checkpointed "$id"
	xos_wait_for 120 sl_job_on "$j" xsn2
	xos_wait_for 120 ended_on_b "$id"
	xos_wait_for 60 sl_completed "$j"
	run env XOS_SOCKET="$XOS_TMP_B/run/xosd.sock" xlogs "$id"
	assert_success
	assert_equal "$output" "$(seq 1 40)"
	run scontrol show job "$j"
	assert_output --partial "Restarts=1"
	assert_output --partial "NodeList=xsn2"
}

@test "a counting batch job signalled on node 1 is checkpointed, requeued and finishes on node 2, every count once" {
	two_nodes_shared_store
	cat >"$SL_DIR/count.sh" <<-EOF
		#!/bin/bash
		export XOS_SOCKET=$SL_DIR/sock/\$SLURMD_NODENAME PATH=$XOS_BUILD:\$PATH
		exec $XOS_ROOT/slurm/xos-slurm-job --state $SL_CKPT/state -- sh -c '$COUNT_CMD'
	EOF
	chmod 0755 "$SL_DIR/count.sh"
	# node 3 out, so the requeued job goes to node 2 once node 1 is drained
	run sbatch --parsable -J xos-count -x xsn3 --requeue --open-mode=append \
		-o "$SL_DIR/count-%j.out" "$SL_DIR/count.sh"
	assert_success
	j=$output
	xos_wait_for 60 sl_job_on "$j" xsn1
	xos_wait_for 60 test -s "$SL_CKPT/state/job"
	id=$(cat "$SL_CKPT/state/job")
	# Slurm's warning signal reaches the batch script, as --signal=B:USR1@T
	# sends it
	sl_move_job "$j" "$id" --batch --signal=USR1
	grep -q "restoring xos job $id" "$SL_DIR/count-$j.out"
	# node 1 forgets the job node 2 took over, but not its versions (node
	# 2's now): not listed, not to be killed there, the versions stay
	run xps -a --json
	assert_success
	assert_equal "$(jq --arg id "$id" '[.[] | select(.id == $id)] | length' <<<"$output")" 0
	grep -q "Forgetting job $id: another node took it over" "$XOS_TMP/xosd.log"
	run xkill "$id"
	assert_failure
	assert_output --partial "No such job"
	[ -s "$SL_CKPT/$id/holder" ]
	compgen -G "$SL_CKPT/$id/[0-9]*" >/dev/null
	run env XOS_SOCKET="$XOS_TMP_B/run/xosd.sock" xcheckpoint --list "$id"
	assert_success
}

@test "srun --xos-checkpoint=DIR: the step's task is checkpointed on Slurm's signal and restored on node 2" {
	[ -f "$XOS_BUILD/xos-spank.so" ] || skip "the SPANK plugin was not built (no spank.h: libslurm-dev)"
	two_nodes_shared_store
	cat >"$SL_DIR/count-step.sh" <<-EOF
		#!/bin/bash
		export XOS_SOCKET=$SL_DIR/sock/\$SLURMD_NODENAME PATH=$XOS_BUILD:\$PATH
		srun --xos-checkpoint=$SL_CKPT/state sh -c '$COUNT_CMD'
	EOF
	chmod 0755 "$SL_DIR/count-step.sh"
	run sbatch --parsable -J xos-count-step -x xsn3 --requeue --open-mode=append \
		-o "$SL_DIR/count-%j.out" "$SL_DIR/count-step.sh"
	assert_success
	j=$output
	xos_wait_for 60 sl_job_on "$j" xsn1
	xos_wait_for 60 test -s "$SL_CKPT/state/task-0/job"
	id=$(cat "$SL_CKPT/state/task-0/job")
	# --signal=USR1@T (no B:) signals the steps' tasks
	sl_move_job "$j" "$id" --signal=USR1
}

@test "make deb's xos-slurm package holds the plugin, its helpers and the plugstack.conf.d file" {
	# (95-package.bats runs make deb in the plain build's pass)
	deb=$(compgen -G "$XOS_ROOT/build-deb/xos-slurm_*.deb" | head -n 1)
	[ -n "$deb" ] || skip "no xos-slurm package (make deb, with libslurm-dev installed)"
	run dpkg-deb -c "$deb"
	assert_success
	for f in usr/lib/xos/xos-spank.so usr/libexec/xos/xos-spank-exec \
		usr/libexec/xos/xos-slurm-job etc/slurm/plugstack.conf.d/xos.conf \
		usr/share/doc/xos-slurm/copyright; do
		assert_line --regexp " \./$f\$"
	done
	run dpkg-deb -f "$deb" Depends
	assert_output --regexp "xos \(= "
	run sh -c "dpkg-deb --info '$deb' conffiles"
	assert_output "/etc/slurm/plugstack.conf.d/xos.conf"
}

# as_user_in CGROUP CMD...: CMD as xostest, in the cpuacct cgroup CGROUP (the
# reference hierarchy on v1), put there by root first
as_user_in() {
	local cg=/sys/fs/cgroup/cpuacct/$1
	shift
	sh -c 'echo $$ >"$0/cgroup.procs" && exec setpriv --reuid=4242 --regid=4242 --clear-groups "$@"' \
		"$cg" "$@"
}

@test "a caller's cgroup holds its job only if it is the caller's own Slurm step or delegated to it" {
	[ -d /sys/fs/cgroup/cpuacct ] || skip "no v1 cpuacct hierarchy"
	xos_test_user
	local fake="slurm_xsfake$$/uid_0/job_1/step_0" deleg="$XOS_TEST_PREFIX-deleg-$$"
	mkdir -p "/sys/fs/cgroup/cpuacct/$fake" "/sys/fs/cgroup/cpuacct/$deleg"
	SL_TEST_CGROUPS="/sys/fs/cgroup/cpuacct/$fake /sys/fs/cgroup/cpuacct/slurm_xsfake$$/uid_0/job_1"
	SL_TEST_CGROUPS+=" /sys/fs/cgroup/cpuacct/slurm_xsfake$$/uid_0 /sys/fs/cgroup/cpuacct/slurm_xsfake$$"
	SL_DELEG=$deleg
	chown 4242:4242 "/sys/fs/cgroup/cpuacct/$deleg"
	# a step of root's (uid_0), not xostest's: not used
	id=$(as_user_in "$fake" xrun -d -- sleep 60)
	assert_equal "$(jq -r .cgroup_parent "$XOS_TMP/state/jobs/$id/job.json")" null
	grep -q "Job of uid 4242 .* goes to the default cgroup: its caller's cgroup cannot hold it" \
		"$XOS_TMP/xosd.log"
	# a cgroup delegated to xostest (owned by it): used
	id2=$(as_user_in "$deleg" xrun -d -- sleep 60)
	assert_equal "$(jq -r .cgroup_parent "$XOS_TMP/state/jobs/$id2/job.json")" "$deleg"
	wait_state "$id2" RUNNING
	grep -q "cpuacct:/$deleg/xos-$id2" "/proc/$(job_init_pid "$id2")/cgroup"
	# a step shaped cgroup of xostest's own uid would be its own step's: the
	# unit tests check the shapes (test-cgroup-caller)
	xkill -s KILL "$id" "$id2"
	run xwait "$id" "$id2"
}
