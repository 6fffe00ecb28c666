#!/usr/bin/env bats
# Failures leave things whole (issue 4, acceptance 5): CRIU failing mid-dump,
# a full checkpoint store, a truncated image on restore.

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

COUNTER='i=0; while :; do i=$((i+1)); echo $i >>/tmp/count; sleep 0.1; done'

count_of() { wc -l <"$XOS_TMP/state/volatile/jobs/$1/rootfs/tmp/count"; }
counts_past() { [ "$(count_of "$1")" -gt "$2" ]; }

# the job runs (it counts on) and its container is not frozen
assert_running_thawed() {
	local id=$1 a f
	assert_equal "$(job_field "$id" .state)" RUNNING
	a=$(count_of "$id")
	wait_for 30 counts_past "$id" "$a" || fail "job $id does not count on past $a"
	while read -r f; do
		[ -z "$f" ] || assert_equal "$(cat "$f")" THAWED
	done < <(find /sys/fs/cgroup/freezer -path "*xos-$id*" -name freezer.state 2>/dev/null)
}

# nothing of a version being made is left; version 1 is whole
assert_store_whole() {
	local st=$1 id=$2
	[ -z "$(find "$st/$id" -maxdepth 1 -name '.new-*')" ] || fail "a partial version is left"
	run xcheckpoint --list --json "$id"
	assert_equal "$(echo "$output" | jq -c '[.[].version]')" "[1]"
	jq -e '.version == 1' "$st/$id/1/manifest.json" >/dev/null
	[ -s "$st/$id/1/upper/tmp/count" ]
}

# restart from version 1 works: the earlier version is intact
assert_v1_restores() {
	local id=$1
	xkill -s KILL "$id"
	xwait "$id" || true
	run xrestart "$id" 1
	assert_success
	assert_running_thawed "$id"
}

# A criu first on xosd's PATH whose first FAILS dumps fail with MSG in their
# log, as CRIU fails when a task moves under it; it counts dumps in
# $XOS_TMP/dumps and runs the real CRIU otherwise.
fake_criu() {
	local fails=$1 msg=$2 real
	real=$(command -v criu)
	mkdir -p "$XOS_TMP/fakebin"
	cat >"$XOS_TMP/fakebin/criu" <<-EOF
		#!/bin/sh
		if [ "\$1" = dump ]; then
			n=\$(( \$(cat "$XOS_TMP/dumps" 2>/dev/null || echo 0) + 1 ))
			echo \$n >"$XOS_TMP/dumps"
			if [ \$n -le $fails ]; then
				dir= log= prev=
				for a; do
					case \$prev in -D) dir=\$a ;; -o) log=\$a ;; esac
					prev=\$a
				done
				case \$log in /*) ;; *) log=\$dir/\$log ;; esac
				mkdir -p "\$dir"
				echo "Error (compel/src/lib/infect.c:262): $msg" >>"\$log"
				exit 1
			fi
		fi
		exec $real "\$@"
	EOF
	chmod 0755 "$XOS_TMP/fakebin/criu"
}

@test "a dump that meets a task moving under CRIU (Unseizable) is tried again; other failures and a third such one are not" {
	id=$(xrun -d -- sh -c "$COUNTER")
	wait_state "$id" RUNNING
	xosd_stop
	fake_criu 1 "Unseizable non-zombie 4242 found, state D, err -1/10"
	PATH="$XOS_TMP/fakebin:$PATH" xosd_launch
	run xcheckpoint "$id"
	assert_success
	assert_equal "$(cat "$XOS_TMP/dumps")" 2
	assert_running_thawed "$id"
	assert_store_whole "$XOS_TMP/state/checkpoints" "$id"
	# always moving: three tries, then the error, and the job runs on
	xosd_stop
	rm "$XOS_TMP/dumps"
	fake_criu 9 "Unseizable non-zombie 4242 found, state D, err -1/10"
	PATH="$XOS_TMP/fakebin:$PATH" xosd_launch
	run xcheckpoint "$id"
	assert_failure 1
	assert_output --partial "see CRIU's log"
	assert_equal "$(cat "$XOS_TMP/dumps")" 3
	assert_running_thawed "$id"
	assert_store_whole "$XOS_TMP/state/checkpoints" "$id"
	# any other failure: one try
	xosd_stop
	rm "$XOS_TMP/dumps"
	fake_criu 9 "Can't dump ghost file"
	PATH="$XOS_TMP/fakebin:$PATH" xosd_launch
	run xcheckpoint "$id"
	assert_failure 1
	assert_equal "$(cat "$XOS_TMP/dumps")" 1
	assert_running_thawed "$id"
}

@test "CRIU made to fail mid-dump (CRIU_FAULT): clear error naming CRIU's log; the job runs on, thawed; version 1 intact" {
	id=$(xrun -d -- sh -c "$COUNTER")
	wait_state "$id" RUNNING
	xcheckpoint "$id" >/dev/null
	xosd_stop
	# fault 3: CRIU fails while it dumps the tasks' memory pages
	CRIU_FAULT=3 xosd_launch
	run xcheckpoint "$id"
	assert_failure 1
	assert_output --partial "Checkpoint of job ${id:0:12} failed"
	assert_output --regexp "see CRIU's log [^ ]*failed-2.dump.log"
	log=$(echo "$output" | grep -o "/[^ ]*failed-2.dump.log")
	grep -q Error "$log"
	assert_running_thawed "$id"
	assert_store_whole "$XOS_TMP/state/checkpoints" "$id"
	# fault 5: CRIU cannot talk to its parasite in a task, with --stop: the same
	xosd_stop
	CRIU_FAULT=5 xosd_launch
	run xcheckpoint --stop "$id"
	assert_failure 1
	assert_output --partial "see CRIU's log"
	assert_running_thawed "$id"
	assert_store_whole "$XOS_TMP/state/checkpoints" "$id"
	xosd_stop
	xosd_launch
	assert_v1_restores "$id"
}

@test "the checkpoint store's filesystem full: clear error; the job runs on; version 1 intact and restorable" {
	SMALL_STORE="$XOS_TMP/small-store"
	mkdir "$SMALL_STORE"
	mount -t tmpfs -o size=8m,mode=0700 xos-test-store "$SMALL_STORE"
	xosd_stop
	printf 'checkpoint_dir = %s\n' "$SMALL_STORE" >"$XOS_TMP/xosd.conf"
	xosd_launch --config "$XOS_TMP/xosd.conf"
	id=$(xrun -d -- sh -c "$COUNTER")
	wait_state "$id" RUNNING
	xcheckpoint "$id" >/dev/null
	[ -d "$SMALL_STORE/$id/1" ]
	dd if=/dev/zero of="$SMALL_STORE/filler" bs=64k 2>/dev/null || true
	run xcheckpoint "$id"
	assert_failure 1
	assert_output --partial "Checkpoint of job ${id:0:12} failed"
	assert_running_thawed "$id"
	rm -f "$SMALL_STORE/filler"
	assert_store_whole "$SMALL_STORE" "$id"
	# --stop into a full store: the job is not stopped
	dd if=/dev/zero of="$SMALL_STORE/filler" bs=64k 2>/dev/null || true
	run xcheckpoint --stop "$id"
	assert_failure 1
	assert_running_thawed "$id"
	rm -f "$SMALL_STORE/filler"
	assert_store_whole "$SMALL_STORE" "$id"
	assert_v1_restores "$id"
	xkill -s KILL "$id"
	xwait "$id" || true
	xosd_stop
	umount "$SMALL_STORE"
	SMALL_STORE=
}

# nothing of a failed restart is left: no process, mount, container config or
# cgroup; assert_nothing_left ID kept: a restart refused before it began left
# the stopped job's writable layer and root mounted, as they were
assert_nothing_left() {
	local id=$1 mounts
	assert_equal "$(job_field "$id" .state)" CHECKPOINTED
	[ -z "$(xos_loader_pids)" ] || fail "loaders left: $(xos_loader_pids)"
	mounts=$(job_mounts "$id" | sed 's|.*/||' | sort | xargs)
	if [ "${2:-}" = kept ]; then
		[ "$mounts" = "layer rootfs" ] || fail "mounts: $(job_mounts "$id")"
	else
		[ -z "$mounts" ] || fail "mounts left: $(job_mounts "$id")"
	fi
	[ -z "$(xos_job_containers)" ] || fail "container config left: $(xos_job_containers)"
	wait_for 30 no_cgroups_of "$id" ||
		fail "cgroups left: $(find /sys/fs/cgroup -maxdepth 2 -name "*xos-$id")"
	wait_for 30 no_tasks_of "$id" || fail "processes left: $(job_tasks "$id")"
}

no_cgroups_of() { [ -z "$(find /sys/fs/cgroup -maxdepth 2 -name "*xos-$1")" ]; }
no_tasks_of() { [ -z "$(job_tasks "$1")" ]; }

# processes in any cgroup of the job's container
job_tasks() {
	grep -l "xos-$1" /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3 | while read -r p; do
		[ -e "/proc/$p" ] && ps -o pid=,user=,comm= -p "$p"
	done
}

@test "a truncated image on restore: refused with a clear error; the job stays restorable; nothing is left" {
	id=$(xrun -d -- sh -c "$COUNTER")
	wait_state "$id" RUNNING
	xcheckpoint "$id" >/dev/null
	xcheckpoint --stop "$id" >/dev/null
	st="$XOS_TMP/state/checkpoints/$id"
	for f in "$st"/2/images/pages-*.img; do
		truncate -s $(($(stat -c %s "$f") / 2)) "$f"
	done
	run xrestart "$id" 2
	assert_failure 1
	assert_output --partial "Version 2 of job ${id:0:12} is damaged: image pages-"
	assert_output --partial "truncated or altered"
	assert_nothing_left "$id" kept
	# the earlier version is intact, and the job restorable from it
	run xrestart "$id" 1
	assert_success
	assert_running_thawed "$id"
}

@test "CRIU failing on restore (CRIU_FAULT), or stuck on a forged image past restore_timeout: error naming CRIU's log; nothing half-restored is left" {
	id=$(xrun -d -- sh -c "$COUNTER")
	wait_state "$id" RUNNING
	xcheckpoint "$id" >/dev/null
	xcheckpoint --stop "$id" >/dev/null
	st="$XOS_TMP/state/checkpoints/$id"
	xosd_stop
	# fault 6: CRIU fails after it restored the tasks (and kills them)
	CRIU_FAULT=6 xosd_launch
	run xrestart "$id" 2
	assert_failure 1
	assert_output --partial "Restart of job ${id:0:12} from version 2 failed"
	assert_output --partial "see CRIU's log $st/2/images/restore.log"
	grep -q Error "$st/2/images/restore.log"
	assert_nothing_left "$id"
	# pages cut short with a manifest forged to match: CRIU hangs; the deadline ends it
	xosd_stop
	printf 'restore_timeout = 5s\n' >"$XOS_TMP/xosd.conf"
	xosd_launch --config "$XOS_TMP/xosd.conf"
	for f in "$st"/2/images/pages-*.img; do
		truncate -s $(($(stat -c %s "$f") / 2)) "$f"
		jq --arg n "${f##*/}" --argjson s "$(stat -c %s "$f")" '.images[$n] = $s' \
			"$st/2/manifest.json" >"$st/2/manifest.new" && mv "$st/2/manifest.new" "$st/2/manifest.json"
	done
	run xrestart "$id" 2
	assert_failure 1
	assert_output --partial "longer than restore_timeout"
	assert_output --partial "see CRIU's log $st/2/images/restore.log"
	assert_nothing_left "$id"
	run xrestart "$id" 2
	assert_failure 1
	assert_nothing_left "$id"
	# the earlier version is intact, and the job restorable from it
	run xrestart "$id" 1
	assert_success
	assert_running_thawed "$id"
}
