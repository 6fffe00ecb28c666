#!/usr/bin/env bats
# Checkpoint storage (issue 10, section 3): copies keep holes, the node's
# bounds on --keep and --checkpoint-every, a per-user quota and the store's
# free space checked before a job is frozen, periodic checkpoints that do not
# fit skipped with the reason, a store that fills during a dump.

load helpers
bats_require_minimum_version 1.5.0

setup() { xos_start; }
teardown() {
	if [ -n "${SMALL_STORE:-}" ]; then
		umount -l "$SMALL_STORE" 2>/dev/null || true
		SMALL_STORE=
	fi
	xos_teardown
}

store() { echo "$XOS_TMP/state/checkpoints"; }
jobtmp() { echo "$XOS_TMP/state/volatile/jobs/$1/rootfs/tmp"; }

as_user() { # run a command as the test account (uid 4242)
	setpriv --reuid 4242 --regid 4242 --clear-groups env XOS_SOCKET="$XOS_SOCKET" "$@"
}

# restart the test's daemon with these lines of xosd.conf
xosd_with_conf() {
	xosd_stop
	printf '%s\n' "$@" >"$XOS_TMP/xosd.conf"
	xosd_launch --config "$XOS_TMP/xosd.conf"
}


# the job's container is not frozen
assert_thawed() {
	local f
	while read -r f; do
		[ -z "$f" ] || assert_equal "$(cat "$f")" THAWED
	done < <(find /sys/fs/cgroup/freezer -path "*xos-$1*" -name freezer.state 2>/dev/null)
}

# A job holding about 96 MiB of memory of its own (touched, so resident).
BIG='python3 -c "import time; b = b\"x\" * (96 << 20); open(\"/tmp/ready\", \"w\").close(); time.sleep(3600)"'

@test "storage: a 4 GiB sparse file in a --disk 1M layer checkpoints small and restores sparse and intact" {
	id=$(xrun -d --disk 1M -- sh -c 'truncate -s 4G /tmp/sparse &&
		printf hello | dd of=/tmp/sparse bs=1 seek=3000000000 conv=notrunc 2>/dev/null &&
		touch /tmp/ready; exec sleep 3600')
	wait_file "$(jobtmp "$id")/ready"
	run xcheckpoint "$id"
	assert_success
	v="$(store)/$id/1"
	assert_equal "$(stat -c %s "$v/upper/tmp/sparse")" 4294967296
	# the copy holds the data, not the holes: a few blocks, not 4 GiB
	[ "$(du -sk "$v/upper/tmp/sparse" | cut -f1)" -le 64 ]
	[ "$(du -sk "$v" | cut -f1)" -le $((64 * 1024)) ] || fail "version takes $(du -sh "$v")"
	# the manifest and the list say what the version takes on disk
	disk=$(jq .sizes.disk "$v/manifest.json")
	[ "$disk" -gt 0 ] && [ "$disk" -le $((64 << 20)) ]
	assert_equal "$(xcheckpoint --list --json "$id" | jq '.[0].sizes.disk')" "$disk"
	xkill -s KILL "$id"
	xwait "$id" || true
	# restored into a new 1 MiB layer: only possible if the holes stay holes
	run xrestart "$id" 1
	assert_success
	wait_state "$id" RUNNING
	f="$(jobtmp "$id")/sparse"
	assert_equal "$(stat -c %s "$f")" 4294967296
	[ "$(du -sk "$f" | cut -f1)" -le 64 ]
	assert_equal "$(dd if="$f" bs=1 skip=3000000000 count=5 2>/dev/null)" hello
	assert_equal "$(dd if="$f" bs=1M skip=100 count=1 2>/dev/null | tr -d '\0' | wc -c)" 0
}

@test "storage: --keep above checkpoint_keep_max and --checkpoint-every below checkpoint_interval_min are refused for users; root may" {
	xos_test_user
	xosd_with_conf 'checkpoint_keep_max = 3' 'checkpoint_interval_min = 10m'
	run as_user "$XOS_BUILD/xrun" -d --keep 4 -- true
	assert_failure 125
	assert_output --partial "at most 3 versions on this node (checkpoint_keep_max): use --keep 3"
	run as_user "$XOS_BUILD/xrun" -d --checkpoint-every 5m -- true
	assert_failure 125
	assert_output --partial "at most every 10m on this node (checkpoint_interval_min): use --checkpoint-every 10m"
	[ -z "$(ls "$XOS_TMP/state/jobs")" ] || fail "a refused job was made"
	# within the bounds: accepted
	run as_user "$XOS_BUILD/xrun" -d --keep 3 --checkpoint-every 10m -- true
	assert_success
	# root, the node's owner, is not bound by them
	run xrun -d --keep 50 --checkpoint-every 2s -- true
	assert_success
}

@test "storage: a user's job keeps at most checkpoint_keep_max versions even when the node keeps all" {
	xos_test_user
	xosd_with_conf 'checkpoint_keep_max = 2' 'checkpoint_keep = 0'
	id=$(as_user "$XOS_BUILD/xrun" -d -- sleep 3600)
	wait_state "$id" RUNNING
	for _ in 1 2 3; do as_user "$XOS_BUILD/xcheckpoint" "$id" >/dev/null; done
	assert_equal "$(xcheckpoint --list --json "$id" | jq -c '[.[].version]')" "[2,3]"
}

@test "storage: a checkpoint over its owner's quota is refused before the job is frozen; it runs on; the list and xps show the storage" {
	xos_test_user
	xosd_with_conf 'checkpoint_quota = 64M'
	small=$(as_user "$XOS_BUILD/xrun" -d -- sleep 3600)
	wait_state "$small" RUNNING
	run as_user "$XOS_BUILD/xcheckpoint" "$small"
	assert_success
	# the storage a job's versions take: xps and the list
	used=$(job_field "$small" .checkpoint.storage)
	[ "$used" -gt 0 ] || fail "xps shows no storage: $used"
	[ "$used" -le "$(du -sB1 "$(store)/$small" | cut -f1)" ]
	run as_user "$XOS_BUILD/xcheckpoint" --list "$small"
	assert_success
	assert_output --partial "of a 64M quota"
	id=$(as_user "$XOS_BUILD/xrun" -d -- sh -c "$BIG")
	wait_file "$(jobtmp "$id")/ready"
	run as_user "$XOS_BUILD/xcheckpoint" "$id"
	assert_failure 1
	assert_output --partial "Checkpoint of job ${id:0:12} failed before the job was frozen (it runs on)"
	assert_output --partial "of a 64.0 MiB quota (checkpoint_quota)"
	assert_equal "$(job_field "$id" .state)" RUNNING
	assert_thawed "$id"
	# nothing was begun: no version, no partial one, no CRIU log
	[ -z "$(ls -A "$(store)/$id" 2>/dev/null)" ] || fail "store: $(ls -A "$(store)/$id")"
	assert_equal "$(as_user "$XOS_BUILD/xcheckpoint" --list --json "$id" | jq -c .)" "[]"
	# root's jobs have no quota unless checkpoint_quota_root is set
	rid=$(xrun -d -- sh -c "$BIG")
	wait_file "$(jobtmp "$rid")/ready"
	run xcheckpoint "$rid"
	assert_success
	xkill -s KILL "$rid"
	xosd_with_conf 'checkpoint_quota_root = 16M'
	rid=$(xrun -d -- sh -c "$BIG")
	wait_file "$(jobtmp "$rid")/ready"
	run xcheckpoint "$rid"
	assert_failure 1
	assert_output --partial "failed before the job was frozen"
	assert_equal "$(job_field "$rid" .state)" RUNNING
}

# A job that grows by 96 MiB when it gets the checkpoint signal (after the
# up-front check), then says it is ready to be checkpointed.
GROWS='import signal, time
b = None
def grow(s, f):
    global b
    b = b"x" * (96 << 20)
    open("/tmp/.xos-checkpoint-ready", "w").close()
signal.signal(signal.SIGUSR1, grow)
open("/tmp/ready", "w").close()
while True:
    time.sleep(1)'

@test "storage: a version that exceeds the quota all the same (the job grew after the estimate) is discarded; the job runs on" {
	xos_test_user
	xosd_with_conf 'checkpoint_quota = 64M'
	id=$(as_user "$XOS_BUILD/xrun" -d --checkpoint-signal USR1 --checkpoint-grace 60s -- python3 -c "$GROWS")
	wait_file "$(jobtmp "$id")/ready"
	run as_user "$XOS_BUILD/xcheckpoint" "$id"
	assert_failure 1
	assert_output --partial "Checkpoint of job ${id:0:12} failed: the version took"
	assert_output --partial "more than estimated before the job was frozen"
	assert_output --partial "of a 64.0 MiB quota (checkpoint_quota); version 1 was discarded and job ${id:0:12} runs on"
	assert_equal "$(job_field "$id" .state)" RUNNING
	assert_thawed "$id"
	assert_equal "$(as_user "$XOS_BUILD/xcheckpoint" --list --json "$id" | jq -c .)" "[]"
	[ -z "$(find "$(store)/$id" -maxdepth 1 -name '.new-*')" ] || fail "a partial version is left"
	# and now that it is big, the next one is refused up front
	run as_user "$XOS_BUILD/xcheckpoint" "$id"
	assert_failure 1
	assert_output --partial "failed before the job was frozen"
}

@test "storage: periodic checkpoints over the quota are skipped with the reason (xps, xcheckpoint --list); the job runs on" {
	xos_test_user
	xosd_with_conf 'checkpoint_quota = 64M' 'checkpoint_interval_min = 1s'
	id=$(as_user "$XOS_BUILD/xrun" -d --checkpoint-every 1s -- sh -c "$BIG")
	wait_file "$(jobtmp "$id")/ready"
	for _ in $(seq 1 200); do
		[ "$(job_field "$id" .checkpoint.skipped)" != null ] && break
		sleep 0.1
	done
	skipped=$(job_field "$id" .checkpoint.skipped)
	[[ "$skipped" == *"quota (checkpoint_quota)"* ]] || fail "no skip recorded: $skipped"
	assert_equal "$(job_field "$id" .state)" RUNNING
	run as_user "$XOS_BUILD/xcheckpoint" --list "$id"
	assert_success
	assert_output --partial "Last periodic checkpoint skipped"
	grep -q "Periodic checkpoint of job $id skipped" "$XOS_TMP/xosd.log"
	# (a first one may have fitted while the job was still starting, before
	# it grew: the check is an estimate made before each checkpoint)
	[ "$(as_user "$XOS_BUILD/xcheckpoint" --list --json "$id" | jq length)" -le 1 ]
}

@test "storage: periodic checkpoints remove the versions beyond --keep first when that makes room in the quota" {
	id=$(xrun -d --checkpoint-every 2s --keep 2 -- sh -c "$BIG")
	wait_file "$(jobtmp "$id")/ready"
	for _ in $(seq 1 300); do
		[ "$(xcheckpoint --list --json "$id" | jq length)" -ge 2 ] && break
		sleep 0.1
	done
	newest=$(xcheckpoint --list --json "$id" | jq '.[-1].version')
	xosd_stop # (the job runs on)
	one=$(du -sB1 "$(store)/$id/$newest" | cut -f1)
	# room for two versions and a half: a third fits once the oldest is gone
	xosd_with_conf "checkpoint_quota_root = $((one * 5 / 2))"
	for _ in $(seq 1 300); do
		grep -q "removed early to make room" "$XOS_TMP/xosd.log" && break
		sleep 0.1
	done
	grep -q "Job $id: version [0-9]* removed early to make room" "$XOS_TMP/xosd.log"
	for _ in $(seq 1 300); do
		[ "$(xcheckpoint --list --json "$id" | jq '.[-1].version')" -gt "$newest" ] && break
		sleep 0.1
	done
	[ "$(xcheckpoint --list --json "$id" | jq '.[-1].version')" -gt "$newest" ]
	[ "$(xcheckpoint --list --json "$id" | jq length)" -le 2 ]
	assert_equal "$(job_field "$id" .checkpoint.skipped)" null
	assert_equal "$(job_field "$id" .state)" RUNNING
}

@test "storage: the store filling up during a dump: the version is discarded, the job runs on, the error says so" {
	SMALL_STORE="$XOS_TMP/small-store"
	mkdir "$SMALL_STORE"
	mount -t tmpfs -o size=32m,mode=0700 xos-test-store "$SMALL_STORE"
	xosd_with_conf "checkpoint_dir = $SMALL_STORE"
	# the job says when it got the checkpoint signal; the test then fills the
	# store (after the up-front check) and lets the dump go on
	# shellcheck disable=SC2016 # (the job's shell expands it)
	id=$(xrun -d --checkpoint-signal USR1 --checkpoint-grace 60s -- sh -c \
		'trap "touch /tmp/signalled" USR1; i=0; while :; do i=$((i+1)); echo $i >>/tmp/count; sleep 0.1; done')
	wait_state "$id" RUNNING
	wait_file "$(jobtmp "$id")/count"
	xcheckpoint "$id" >"$XOS_TMP/ck.out" 2>&1 &
	ck=$!
	wait_file "$(jobtmp "$id")/signalled"
	dd if=/dev/zero of="$SMALL_STORE/filler" bs=64k 2>/dev/null || true
	touch "$(jobtmp "$id")/.xos-checkpoint-ready"
	st=0
	wait "$ck" || st=$?
	assert_equal "$st" 1
	run cat "$XOS_TMP/ck.out"
	assert_output --partial "Checkpoint of job ${id:0:12} failed: the checkpoint store ran out of space"
	assert_output --partial "version 1 was discarded and job ${id:0:12} runs on"
	assert_equal "$(job_field "$id" .state)" RUNNING
	assert_thawed "$id"
	[ -z "$(find "$SMALL_STORE/$id" -maxdepth 1 -name '.new-*')" ] || fail "a partial version is left"
	a=$(wc -l <"$(jobtmp "$id")/count")
	wait_lines "$(jobtmp "$id")/count" $((a + 3))
	# with space again, checkpoints work
	rm -f "$SMALL_STORE/filler"
	touch "$(jobtmp "$id")/.xos-checkpoint-ready"
	run xcheckpoint "$id"
	assert_success
}
