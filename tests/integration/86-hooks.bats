#!/usr/bin/env bats
# Node-owner hooks (issue 4, point 6): HOOKS_DIR/EVENT/ executables get the
# job's JSON on stdin; a failing prestart or precheckpoint hook aborts that
# step with its message; hooks have a time limit.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	xos_start
	H="$XOS_TMP/hooks"
	OUT="$XOS_TMP/hook-out"
	mkdir -p "$H"/{prestart,poststop,precheckpoint,postcheckpoint,postrestore} "$OUT"
	printf 'hooks_dir = %s\nhook_timeout = 2\n' "$H" >"$XOS_TMP/xosd.conf"
	xosd_stop
	xosd_launch --config "$XOS_TMP/xosd.conf"
}
teardown() { xos_teardown; }

# hook EVENT NAME BODY: an executable hook script
hook() {
	printf '#!/bin/sh\n%s\n' "$3" >"$H/$1/$2"
	chmod 0755 "$H/$1/$2"
}

# a hook that records its event, arguments and input
recorder() {
	hook "$1" 10-record "cat >\"$OUT/$1.json\"; echo \"\$XOS_HOOK_EVENT \$XOS_JOB_ID \$1\" >\"$OUT/$1.env\""
}

wait_file() {
	wait_for 30 test -s "$1" 2>/dev/null && return 0
	echo "$1 did not appear within 30 s" >&2
	return 1
}

@test "every event's hooks run with the job's JSON on stdin" {
	for e in prestart poststop precheckpoint postcheckpoint postrestore; do recorder "$e"; done
	id=$(xrun -d -- sleep 100)
	wait_state "$id" RUNNING
	wait_file "$OUT/prestart.json"
	assert_equal "$(jq -r .id "$OUT/prestart.json")" "$id"
	assert_equal "$(cat "$OUT/prestart.env")" "prestart $id prestart"
	xcheckpoint "$id" >/dev/null
	assert_equal "$(jq -r .id "$OUT/precheckpoint.json")" "$id"
	wait_file "$OUT/postcheckpoint.json"
	assert_equal "$(jq -r .version "$OUT/postcheckpoint.json")" 1
	xcheckpoint --stop "$id" >/dev/null
	wait_file "$OUT/poststop.json"
	assert_equal "$(jq -r .state "$OUT/poststop.json")" CHECKPOINTED
	xrestart "$id" >/dev/null
	wait_file "$OUT/postrestore.json"
	assert_equal "$(jq -r .state "$OUT/postrestore.json")" RUNNING
	assert_equal "$(cat "$OUT/postrestore.env")" "postrestore $id postrestore"
}

@test "a failing precheckpoint hook aborts the checkpoint with its message; the job runs on" {
	hook precheckpoint 20-deny 'echo "checkpoints are paused for maintenance" >&2; exit 1'
	id=$(xrun -d -- sleep 100)
	wait_state "$id" RUNNING
	run xcheckpoint "$id"
	assert_failure 1
	assert_output --partial "precheckpoint hook 20-deny: checkpoints are paused for maintenance"
	assert_equal "$(job_field "$id" .state)" RUNNING
	run xcheckpoint --list --json "$id"
	assert_equal "$(echo "$output" | jq length)" 0
}

@test "a failing prestart hook aborts the start with its message" {
	hook prestart 10-deny 'echo "node is draining" >&2; exit 3'
	run xrun -- true
	assert_failure 125
	assert_output --partial "10-deny: node is draining"
	id=$(xps -a -q | head -n1)
	assert_equal "$(job_field "$id" .state)" FAILED
}

@test "a hook running past hook_timeout is killed and fails" {
	hook precheckpoint 10-slow 'sleep 30'
	id=$(xrun -d -- sleep 100)
	wait_state "$id" RUNNING
	run xcheckpoint "$id"
	assert_failure 1
	assert_output --partial "10-slow: killed after 2 s"
	assert_equal "$(job_field "$id" .state)" RUNNING
	[ -z "$(pgrep -f "$H/precheckpoint/10-slow")" ]
}
