#!/usr/bin/env bats
# Bad input gets a clear error and loses nothing; the daemon keeps serving.

load helpers
bats_require_minimum_version 1.5.0

setup() { xos_start; }
teardown() { xos_teardown; }

raw() { "$XOS_ROOT/tests/tools/rawsock.py" "$XOS_SOCKET" "$@"; }

@test "malformed JSON, unknown fields, wrong types, old versions: clear errors" {
	run raw <<<'{"v":1,"op":"run","argv":["true"'
	assert_output --partial '"code":"bad_request"'
	assert_output --partial 'Malformed JSON'
	run raw <<<'{"v":1,"op":"run","argv":["true"],"bogus":1}'
	assert_output --partial '"code":"bad_request"'
	assert_output --partial "Unknown field 'bogus'"
	run raw <<<'{"v":1,"op":"run","argv":"true"}'
	assert_output --partial "Field 'argv' must be a non-empty list"
	run raw <<<'{"v":2,"op":"ps"}'
	assert_output --partial '"code":"unsupported_version"'
	run raw <<<'{"v":1,"op":"reboot"}'
	assert_output --partial '"code":"unknown_op"'
	run raw <<<'[1,2,3]'
	assert_output --partial '"code":"bad_request"'
	run raw <<<'{"v":1,"op":"run","argv":["true"],"memory":-5}'
	assert_output --partial "must be a non-negative integer"
	# the daemon still serves
	run xrun -- echo still-serving
	assert_success
	assert_output still-serving
}

@test "a 10 MiB request is refused as too large and the daemon keeps serving" {
	run raw --repeat x 10485760
	assert_output --partial '"code":"too_large"'
	run xrun -- echo after-big
	assert_output after-big
	kill -0 "$XOSD_PID"
}

@test "bad flags and values: --memory 12Q, a missing template, an unknown user" {
	run xrun --memory 12Q -- true
	assert_failure 125
	assert_output --partial "Invalid --memory value '12Q'"
	run xrun --template no-such-template -- true
	assert_failure 125
	assert_output --partial "No such template: no-such-template"
	run xrun --user no-such-user-xyz -- true
	assert_failure 125
	assert_output --partial "No such local account"
	run xrun --bogus-flag -- true
	assert_failure 125
	run xps --bogus-flag
	assert_failure 2
	run xrun -- echo fine
	assert_output fine
	# nothing half-made: no job record for the refused requests
	assert_equal "$(xps -a --json | jq length)" 1
}

@test "a forged completion report for another job is rejected" {
	a=$(xrun -d -- sleep 30)
	b=$(xrun -d -- sleep 30)
	wait_state "$a" RUNNING
	wait_state "$b" RUNNING
	report="job=$a
unit=1
state=exited
code=0
signal=0
reason=
utime_us=0
stime_us=0
maxrss_kb=0
started_us=1
ended_us=2
remaining=0
"
	# on job b's socket, claiming to be job a; even as host root
	sock_b="$XOS_TMP/state/jobs/$b/xos/notify.sock"
	run "$XOS_ROOT/tests/tools/rawsock.py" "$sock_b" --timeout 3 <<<"$report"
	assert_output --partial "err"
	# and a report for job b from a process that is not b's loader (host root)
	report_b=${report//job=$a/job=$b}
	run "$XOS_ROOT/tests/tools/rawsock.py" "$sock_b" --timeout 3 <<<"$report_b"
	assert_output --partial "err"
	assert_equal "$(job_field "$a" .state)" RUNNING
	assert_equal "$(job_field "$b" .state)" RUNNING
	# from inside job a, job a's own socket is out of reach of the job's user
	run xrun --job "$a" -- sh -c 'ls /.xos/ 2>&1; echo x > /.xos/notify.sock 2>&1; echo rc=$?'
	assert_output --partial "Permission denied"
	grep -q "Rejected a completion report" "$XOS_TMP/xosd.log"
	xkill -s KILL "$a" "$b"
	xwait "$a" "$b" || true
}

@test "xkill, xlogs and xwait on unknown or ambiguous jobs" {
	run xkill nosuchjob
	assert_failure
	assert_output --partial "No such job"
	run xwait nosuchjob
	assert_failure 125
	run xlogs nosuchjob
	assert_failure
}

@test "non-root users see and touch only their own jobs" {
	xos_test_user
	mine=$(xrun -d -- sleep 30)
	wait_state "$mine" RUNNING
	run setpriv --reuid 4242 --regid 4242 --clear-groups env XOS_SOCKET="$XOS_SOCKET" "$XOS_BUILD/xps" -a -q
	assert_success
	refute_output --partial "$mine"
	run setpriv --reuid 4242 --regid 4242 --clear-groups env XOS_SOCKET="$XOS_SOCKET" "$XOS_BUILD/xkill" "$mine"
	assert_failure
	run setpriv --reuid 4242 --regid 4242 --clear-groups env XOS_SOCKET="$XOS_SOCKET" "$XOS_BUILD/xrun" -- id -u
	assert_success
	assert_output 4242
	run setpriv --reuid 4242 --regid 4242 --clear-groups env XOS_SOCKET="$XOS_SOCKET" "$XOS_BUILD/xrun" --user nobody -- true
	assert_failure 125
	assert_output --partial "only run jobs as yourself"
	xkill -s KILL "$mine"
	xwait "$mine" || true
}
