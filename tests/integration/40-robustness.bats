#!/usr/bin/env bats
# Bad input gets a clear error and loses nothing; the daemon keeps serving.

load helpers
bats_require_minimum_version 1.5.0

setup() { xos_start; }
teardown() { xos_teardown; }

raw() { "$XOS_ROOT/tests/tools/rawsock.py" "$XOS_SOCKET" "$@"; }

# No process of this test's xosd is named xosd-spawner: neither the spawner
# nor a child it forked that has not exec'd (each has xosd's environment,
# XOS_TMP in it; a zombie shows none: it has ended)
no_spawner_left() {
	local p
	for p in $(pgrep -x xosd-spawner); do
		if tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qxF "XOS_TMP=$XOS_TMP"; then
			return 1
		fi
	done
}

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

# heap_kb PID: the size of the process's [heap] mapping, KiB
heap_kb() { awk '/ \[heap\]$/ {f = 1; next} f && /^Size:/ {print $2; exit}' "/proc/$1/smaps"; }
# monitor_of ID: the pid of the LXC monitor of job ID's container
monitor_of() { pgrep -f "^\[lxc monitor\] .* xos-$1\$"; }

@test "containers start from the spawner: a job's LXC monitor holds none of xosd's memory" {
	[ "${XOS_TEST_ENGINE:-lxc}" = lxc ] || skip "a test of liblxc's monitor (XOS_TEST_ENGINE=$XOS_TEST_ENGINE)"
	xrun -d --name first -- sleep 300 >/dev/null
	wait_state first RUNNING
	spawner=$(pgrep -P "$XOSD_PID" -x xosd-spawner)
	[ -n "$spawner" ]
	grep -q "Containers are started by the spawner, pid $spawner" "$XOS_TMP/xosd.log"
	# xosd's heap grows with 600 queued records; the spawner's does not
	seq 600 | xargs -P 4 -I{} "$XOS_BUILD/xrun" -d --hold -- true >/dev/null 2>&1
	h=$(heap_kb "$XOSD_PID")
	id=$(xrun -d --name second -- sleep 300)
	wait_state second RUNNING
	m=$(monitor_of "$(job_field second .id)")
	[ -n "$m" ]
	# a monitor forked from xosd would have a heap of xosd's size at the
	# fork; this one has the spawner's. (The sanitizer build's allocator
	# keeps no [heap]: there the plain build's pass of the suite checks it.)
	if [ -n "$h" ]; then
		echo "xosd's heap ${h} KiB, the monitor's $(heap_kb "$m") KiB" >&2
		[ "$(($(heap_kb "$m") * 2))" -lt "$h" ]
	else
		echo "# xosd has no [heap] (the sanitizer's allocator): heaps not compared" >&3
	fi
	# the spawner is the start child's parent: nothing of its own is left
	[ -z "$(pgrep -P "$spawner")" ]
	xkill -s KILL first second >/dev/null
}

# dirty_heap_kb PID: the written pages of the process's [heap], KiB
dirty_heap_kb() {
	awk '/ \[heap\]$/ {f = 1; next} f && /^Private_Dirty:/ {print $2; exit}' "/proc/$1/smaps"
}

@test "an idle job's loader gives back the memory of its seccomp profile's making" {
	id=$(xrun -d -- sleep 300)
	wait_state "$id" RUNNING
	loader=$(pgrep -f "^/.xos/loader $id\$")
	[ -n "$loader" ]
	# libseccomp's rule database (about 350 KiB of heap) is freed once the
	# program is made; the loader lives as long as the job, so those pages
	# are given back (malloc_trim): what stays written is well under it.
	# (The sanitizer build's loader is dynamic, its allocator ASan's: the
	# plain build's pass checks it.)
	if readelf -l "$XOS_BUILD/xos-loader" | grep -q "program interpreter"; then
		echo "# a dynamic loader (the sanitizer build): not measured" >&3
	else
		echo "the loader's written heap: $(dirty_heap_kb "$loader") KiB" >&2
		[ "$(dirty_heap_kb "$loader")" -lt 160 ]
	fi
	xkill -s KILL "$id" >/dev/null
}

@test "the spawner killed: the next jobs start all the same (xosd forks them) and the log says so" {
	run xrun -- echo one
	assert_output one
	spawner=$(pgrep -P "$XOSD_PID" -x xosd-spawner)
	[ -n "$spawner" ]
	kill -9 "$spawner"
	run xrun -- echo two
	assert_success
	assert_output two
	wait_for 10 grep -q "The container spawner (pid $spawner) ended; xosd forks" "$XOS_TMP/xosd.log"
	run xrun -- echo three
	assert_output three
	# it is not made again, and the dead one was reaped (no zombie left)
	[ -z "$(pgrep -P "$XOSD_PID" -x xosd-spawner)" ]
	run ps -o stat= -p "$spawner"
	refute_output --partial Z
}

@test "a start whose end the spawner never told (it died): the job runs all the same; nothing is left" {
	xosd_stop
	# the spawner forks the start, answers with its pid, and dies
	XOS_SPAWNER_FAULT=die-after-start xosd_launch
	run xrun -- echo one
	assert_success
	assert_output one
	grep -q "its start was said to fail, but its container runs" "$XOS_TMP/xosd.log"
	wait_for 10 grep -q "The container spawner (pid [0-9]*) ended; xosd forks" "$XOS_TMP/xosd.log"
	run xrun -- echo two
	assert_output two
	# (the teardown fails on any container, cgroup or process left)
}

@test "a spawner stopped with a start in flight: xosd gives it up after 10 s instead of waiting for ever; the job runs" {
	xosd_stop
	printf 'pool_size = 0\n' >"$BATS_TEST_TMPDIR/nopool.conf"
	# the spawner forks the start, answers with its pid, and stops itself
	XOS_SPAWNER_FAULT=stop-after-start xosd_launch --config "$BATS_TEST_TMPDIR/nopool.conf"
	# (-k: xrun forwards a TERM to its job; an xosd that waits for ever
	# must fail the test, not hang it)
	run timeout -k 5 60 xrun -- echo one
	assert_success
	assert_output one
	grep -q "The container spawner (pid [0-9]*) did not tell a start's end" "$XOS_TMP/xosd.log"
	run timeout -k 5 60 xrun -- echo two
	assert_output two
}

@test "a spawner that does not answer: that start fails after 10 s, not twice; the next start without it" {
	# (no pool: a pooled start in flight when the spawner stops would be
	# given up first, after its own 10 s, and the job then forked by xosd)
	xosd_stop
	printf 'pool_size = 0\n' >"$BATS_TEST_TMPDIR/nopool.conf"
	xosd_launch --config "$BATS_TEST_TMPDIR/nopool.conf"
	run xrun -- echo one
	assert_output one
	spawner=$(pgrep -P "$XOSD_PID" -x xosd-spawner)
	[ -n "$spawner" ]
	kill -STOP "$spawner"
	# the request was sent: whether a child was forked is not known, so
	# the start is not tried again by xosd (that could start it twice)
	run timeout 60 xrun --name lost -- echo two
	assert_failure
	refute_output --partial two
	assert_output --partial "starting the container: the container spawner gave no answer"
	grep -q "The container spawner (pid $spawner) did not answer; xosd forks" "$XOS_TMP/xosd.log"
	assert_equal "$(job_field lost .state)" FAILED
	run xrun -- echo three
	assert_success
	assert_output three
	run ps -o stat= -p "$spawner"
	refute_output --partial Z
}

@test "a spawner that dies after its fork, before it answered: nothing of that start is left to run; xosd makes the start itself, once" {
	xosd_stop
	H="$XOS_TMP/hooks"
	mkdir -p "$H/prestart"
	# (a prestart hook runs in each start's child: it counts the starts)
	printf '#!/bin/sh\njq -r .id >>"%s"\n' "$XOS_TMP/starts" >"$H/prestart/10-count"
	chmod 0755 "$H/prestart/10-count"
	printf 'pool_size = 0\nhooks_dir = %s\n' "$H" >"$BATS_TEST_TMPDIR/hooks.conf"
	# the spawner forks the start and dies before it tells xosd its pid
	XOS_SPAWNER_FAULT=die-before-answer xosd_launch --config "$BATS_TEST_TMPDIR/hooks.conf"
	run xrun -- echo one
	assert_success
	assert_output one
	grep -q "The container spawner (pid [0-9]*) ended; xosd forks" "$XOS_TMP/xosd.log"
	id=$(xps -a --json | jq -r '.[0].id')
	# its child waited for the spawner's go and left: one start, xosd's.
	# Once that child is gone, whatever it did is done (a start of its own
	# would have run the hook, in it, before it ended)
	wait_for 30 no_spawner_left
	assert_equal "$(grep -c "$id" "$XOS_TMP/starts")" 1
	run xrun -- echo two
	assert_output two
	# (the teardown fails on any container, cgroup or process left)
}
