#!/usr/bin/env bats
# Checkpoint and restart of whole job containers (issue 4): real xosd, LXC and CRIU.

load helpers
bats_require_minimum_version 1.5.0

setup() { xos_start; }
teardown() { xos_teardown; }

store() { echo "$XOS_TMP/state/checkpoints"; }
jobroot() { echo "$XOS_TMP/state/volatile/jobs/$(job_field "$1" .id)/rootfs"; }

# wait_file FILE [TIMEOUT_S (30)]: until FILE exists and is not empty
wait_file() {
	wait_for "${2:-30}" test -s "$1" 2>/dev/null && return 0
	echo "$1 did not appear within ${2:-30} s" >&2
	return 1
}

# other_job ID: a live job other than ID (its short id), if there is one
other_job() {
	local t
	t=$(xps -q | grep -v "^${1:0:12}" | head -n1)
	[ -n "$t" ] && echo "$t"
}

as_user() { # run a command as the test account (uid 4242)
	setpriv --reuid 4242 --regid 4242 --clear-groups env XOS_SOCKET="$XOS_SOCKET" "$@"
}

COUNTER='i=0; while :; do i=$((i+1)); echo $i >>/tmp/count; echo $i; sleep 0.1; done'

@test "acceptance 3: counter checkpointed at v1, run on, killed; xrestart JOB 1: the file is as at v1 and counting resumes from v1's value" {
	id=$(xrun -d -- sh -c "$COUNTER")
	wait_lines "$(jobroot "$id")/tmp/count" 5
	run xcheckpoint "$id"
	assert_success
	assert_output --regexp "version 1 "
	assert_equal "$(job_field "$id" .state)" RUNNING
	v1="$(store)/$id/1/upper/tmp/count"
	[ -s "$v1" ]
	n=$(wc -l <"$v1")
	# it runs on past v1, then dies
	wait_lines "$(jobroot "$id")/tmp/count" $((n + 10))
	xkill -s KILL "$id"
	run xwait "$id"
	assert_equal "$status" 137
	run xrestart "$id" 1
	assert_success
	assert_output --partial "restarted from version 1"
	assert_equal "$(job_field "$id" .state)" RUNNING
	assert_equal "$(job_field "$id" .id)" "$id"
	count="$(jobroot "$id")/tmp/count"
	# the file starts exactly as at v1, and counting goes on from v1's value
	wait_lines "$count" $((n + 5))
	assert_equal "$(head -n "$n" "$count" | sha256sum)" "$(sha256sum <"$v1")"
	head -n $((n + 5)) "$count" | diff - <(seq 1 $((n + 5)))
	# so does the output the job wrote (the spool is part of the version)
	run xlogs "$id"
	[ "${lines[$((n + 2))]}" = $((n + 3)) ]
	# and it is the same job: same limits, owner, id; still under control
	assert_equal "$(job_field "$id" .checkpoint.restores)" 1
	xkill "$id"
	run xwait "$id"
	assert_equal "$status" 143
}

@test "xcheckpoint --stop stops the job (CHECKPOINTED); xrestart resumes it; xkill of a checkpointed job ends it" {
	id=$(xrun -d -- sh -c "$COUNTER")
	wait_lines "$(jobroot "$id")/tmp/count" 3
	run xcheckpoint --stop "$id"
	assert_success
	assert_output --partial "job stopped"
	assert_equal "$(job_field "$id" .state)" CHECKPOINTED
	[ -z "$(xos_loader_pids)" ]
	# nothing of the container is left while it is checkpointed but its
	# writable layer and root, kept for its restart (docs/DECISIONS.md (ab))
	run job_mounts "$id"
	assert_equal "$(echo "$output" | sed 's|.*/||' | sort | xargs)" "layer rootfs"
	n=$(wc -l <"$(store)/$id/1/upper/tmp/count")
	run xrestart "$id"
	assert_success
	wait_lines "$(jobroot "$id")/tmp/count" $((n + 3))
	head -n $((n + 3)) "$(jobroot "$id")/tmp/count" | diff - <(seq 1 $((n + 3)))
	# the masked directories come back masked, one empty read-only tmpfs
	run -0 nsenter -t "$(job_init_pid "$id")" -m -r sh -c 'ls -A /sys/firmware /proc/acpi | grep -v : | grep -c . ; mkdir /proc/acpi/x 2>/dev/null && echo writable; stat -c %d /sys/firmware /proc/acpi | uniq | wc -l'
	assert_equal "$output" "$(printf '0\n1')"
	xcheckpoint --stop "$id"
	assert_equal "$(job_field "$id" .state)" CHECKPOINTED
	run xkill -s KILL "$id"
	assert_success
	run xwait "$id"
	assert_equal "$status" 137
	assert_equal "$(job_field "$id" .state)" KILLED
	no_job_mounts "$id"
	# its versions stay: it can be restarted from them
	run xcheckpoint --list --json "$id"
	assert_equal "$(echo "$output" | jq length)" 2
	run xrestart "$id" 2
	assert_success
	assert_equal "$(job_field "$id" .state)" RUNNING
}

@test "a restored job's accounting counts the CPU its containers used before the checkpoint" {
	# a second of CPU (its own clock ticks, however busy the machine is),
	# then it waits at its gate: it is stopped at a checkpoint while waiting
	id=$(xrun -d -- sh -c 'while :; do read -r s </proc/$$/stat; set -- $s
		[ $((${14} + ${15})) -ge 100 ] && break; done; touch /tmp/burned; '"$GATE")
	wait_for 60 test -e "$(jobroot "$id")/tmp/burned"
	xcheckpoint --stop "$id" >/dev/null
	jq -e '.accounting_base.cpu_user_us + .accounting_base.cpu_system_us >= 500000' \
		"$(store)/$id/1/record.json" >/dev/null
	xrestart "$id" >/dev/null
	open_gate "$id"
	run xwait "$id"
	assert_equal "$status" 0
	# what it burned before the checkpoint is in its accounting
	xps -a --json | jq -e --arg id "$id" \
		'.[] | select(.id == $id) | .accounting.cpu_user_us + .accounting.cpu_system_us >= 500000' \
		>/dev/null
}

@test "xrestart is refused while the job runs; a -t job is not checkpointable; unknown versions" {
	id=$(xrun -d -- sleep 100)
	wait_state "$id" RUNNING
	run xrestart "$id"
	assert_failure 1
	assert_output --partial "refused while it runs"
	xcheckpoint "$id" >/dev/null
	run xrestart "$id" 1
	assert_failure 1
	assert_output --partial "refused while it runs"
	run xcheckpoint --delete 7 "$id"
	assert_failure 1
	assert_output --partial "no version 7"
	xkill -s KILL "$id"
	xwait "$id" || true
	run xrestart "$id" 9
	assert_failure 1
	assert_output --partial "no version 9"
	# a job with a terminal
	script -qec "$XOS_BUILD/xrun -t -- sleep 100" /dev/null >/dev/null &
	local spid=$! tid=
	wait_for 30 other_job "$id"
	tid=$(other_job "$id")
	wait_state "$tid" RUNNING
	run xcheckpoint "$tid"
	assert_failure 1
	assert_output --partial "cannot be checkpointed"
	assert_equal "$(job_field "$tid" .state)" RUNNING
	xkill -s KILL "$tid"
	wait "$spid" || true
	run xrun -t --checkpoint-every 1m -- true
	assert_failure 125
}

@test "--list, --delete, --json statistics and xosd.conf's checkpoint_keep" {
	xosd_stop
	printf 'checkpoint_keep = 2\n' >"$XOS_TMP/xosd.conf"
	xosd_launch --config "$XOS_TMP/xosd.conf"
	id=$(xrun -d -- sh -c "$COUNTER")
	wait_state "$id" RUNNING
	run xcheckpoint --json "$id"
	assert_success
	assert_equal "$(echo "$output" | jq .version)" 1
	# CRIU's figures: times in microseconds and page counts, all of them
	# above 0 for a running shell, and no more pages written than scanned
	for k in freezing_time frozen_time memdump_time memwrite_time pages_scanned pages_written; do
		[ "$(echo "$output" | jq ".criu_statistics.$k")" -gt 0 ]
	done
	echo "$output" | jq -e '.criu_statistics | .pages_written <= .pages_scanned' >/dev/null
	[ "$(echo "$output" | jq .sizes.images)" -gt 0 ]
	xcheckpoint "$id" >/dev/null
	xcheckpoint "$id" >/dev/null
	run xcheckpoint --list --json "$id"
	assert_equal "$(echo "$output" | jq -c '[.[].version]')" "[2,3]"
	run xcheckpoint --list "$id"
	assert_success
	assert_line --index 0 --partial VERSION
	assert_equal "${#lines[@]}" 3
	run xcheckpoint --delete 2 "$id"
	assert_success
	run xcheckpoint --list --json "$id"
	assert_equal "$(echo "$output" | jq -c '[.[].version]')" "[3]"
	[ ! -e "$(store)/$id/2" ]
	# the manifest says what the version is
	m="$(store)/$id/3/manifest.json"
	assert_equal "$(jq -r .template "$m")" host
	assert_equal "$(jq -r .user "$m")" nobody
	assert_equal "$(jq -r .network "$m")" none
	assert_equal "$(jq -r .record.units[0].argv[0] "$m")" sh
	jq -e .record.limits "$m" >/dev/null
}

@test "acceptance 2: two units talking over a pipe (FIFO) and a UNIX socket are checkpointed and restarted as one" {
	producer='
import os, socket, sys, time
os.mkfifo("/tmp/fifo")
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind("/tmp/sock"); srv.listen(1)
open("/tmp/ready", "w").write("1")
conn, _ = srv.accept()
fifo = open("/tmp/fifo", "w", buffering=1)
for i in range(1, 61):
    fifo.write("%d\n" % i)
    conn.sendall(b"%d\n" % (i * 2))
    if i == 20:
        # halfway, with an answer on its way: the test checkpoints here
        open("/tmp/paused", "w").write("1")
        while not os.path.exists("/tmp/gate"):
            time.sleep(0.05)
    ack = conn.recv(16)
    if int(ack) != i * 3:
        sys.exit(90)
    time.sleep(0.05)
fifo.close(); conn.close()
sys.exit(7)'
	consumer='
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("/tmp/sock")
fifo = open("/tmp/fifo")
f = s.makefile("rb")
total = 0
for i in range(1, 61):
    a = int(fifo.readline()); b = int(f.readline())
    if a != i or b != 2 * i:
        sys.exit(91)
    s.sendall(b"%d" % (3 * i))
    total += a
sys.exit(9 if total == 1830 else 92)'
	id=$(xrun -d -- python3 -c "$producer")
	wait_file "$(jobroot "$id")/tmp/ready"
	xrun -d --job "$id" -- python3 -c "$consumer" >/dev/null
	wait_file "$(jobroot "$id")/tmp/paused" 30
	run xcheckpoint --stop "$id"
	assert_success
	assert_equal "$(job_field "$id" .state)" CHECKPOINTED
	run xrestart "$id"
	assert_success
	open_gate "$id"
	run xwait "$id"
	assert_equal "$status" 7
	assert_equal "$(job_field "$id" '.units[0].exit_code')" 7
	assert_equal "$(job_field "$id" '.units[1].exit_code')" 9
	# and once more, left running
	id=$(xrun -d -- python3 -c "$producer")
	wait_file "$(jobroot "$id")/tmp/ready"
	xrun -d --job "$id" -- python3 -c "$consumer" >/dev/null
	wait_file "$(jobroot "$id")/tmp/paused" 30
	xcheckpoint "$id" >/dev/null
	xkill -s KILL "$id"
	xwait "$id" || true
	xrestart "$id" >/dev/null
	open_gate "$id"
	run xwait "$id"
	assert_equal "$status" 7
	assert_equal "$(job_field "$id" '.units[1].exit_code')" 9
}

@test "acceptance 6: another user cannot checkpoint, list, restart or read someone else's job; images are root's (0700)" {
	xos_test_user
	id=$(xrun -d -- sleep 100)
	wait_state "$id" RUNNING
	xcheckpoint "$id" >/dev/null
	run as_user "$XOS_BUILD/xcheckpoint" "$id"
	assert_failure 1
	assert_output --partial "No such job"
	run as_user "$XOS_BUILD/xcheckpoint" --list "$id"
	assert_failure 1
	run as_user "$XOS_BUILD/xcheckpoint" --delete 1 "$id"
	assert_failure 1
	xkill -s KILL "$id"
	xwait "$id" || true
	run as_user "$XOS_BUILD/xrestart" "$id" 1
	assert_failure 1
	assert_output --partial "No such job"
	[ -d "$(store)/$id/1" ]
	# the store and everything down to a version: root's, 0700
	for d in "$(store)" "$(store)/$id" "$(store)/$id/1"; do
		assert_equal "$(stat -c '%U %a' "$d")" "root 700"
	done
	# image files: the container's mapped root's, and no host account reads them
	img=$(find "$(store)/$id/1/images" -name 'pages-*.img' | head -n1)
	[ -n "$img" ]
	[ "$(stat -c %u "$img")" -ge 100000 ]
	run as_user cat "$img"
	assert_failure
	run as_user ls "$(store)/$id"
	assert_failure
	# the owner does all of it on their own job
	mine=$(as_user "$XOS_BUILD/xrun" -d -- sh -c "$COUNTER")
	wait_state "$mine" RUNNING
	run as_user "$XOS_BUILD/xcheckpoint" --stop "$mine"
	assert_success
	run as_user "$XOS_BUILD/xcheckpoint" --list "$mine"
	assert_success
	run as_user "$XOS_BUILD/xrestart" "$mine"
	assert_success
	assert_equal "$(job_field "$mine" .state)" RUNNING
	assert_equal "$(job_field "$mine" .uid)" 4242
	xkill -s KILL "$mine"
	xwait "$mine" || true
}

@test "acceptance 7: --checkpoint-signal USR1 lets the job write a marker that is in v1; --restore-signal after a restart" {
	id=$(xrun -d --checkpoint-signal USR1 --checkpoint-grace 10s --restore-signal USR2 -- sh -c '
		trap "echo drained >/tmp/marker; touch \$XOS_CHECKPOINT_READY" USR1
		trap "echo restored >/tmp/restored" USR2
		while :; do sleep 0.1; done')
	wait_state "$id" RUNNING
	sleep 0.3
	[ ! -e "$(jobroot "$id")/tmp/marker" ]
	run xcheckpoint "$id"
	assert_success
	assert_equal "$(cat "$(store)/$id/1/upper/tmp/marker")" drained
	# the ready file the job made is not part of what it sees later
	[ ! -e "$(jobroot "$id")/tmp/.xos-checkpoint-ready" ]
	xcheckpoint --stop "$id" >/dev/null
	[ ! -e "$(store)/$id/1/upper/tmp/restored" ]
	xrestart "$id" >/dev/null
	wait_file "$(jobroot "$id")/tmp/restored"
	assert_equal "$(cat "$(jobroot "$id")/tmp/restored")" restored
}
