#!/usr/bin/env bats
# Checkpoints never hang (issue 10, section 2): jobs holding stopped
# processes and pseudo-terminals checkpoint and restore; dump_timeout aborts a
# dump that takes too long; xkill ends a CHECKPOINTING or RESTORING job.

load helpers
bats_require_minimum_version 1.5.0

setup() { xos_start; }
teardown() { xos_teardown; }

ZDTM_DIR=${XOS_ZDTM_DIR:-/usr/local/lib/xos/zdtm}



# the state letter (R, S, T...) of the process whose pid (in the job) is in
# the job's /tmp/FILE, as a unit of the job sees it
state_in_job() {
	xrun --job "$1" -- sh -c "cut -d' ' -f3 /proc/\$(cat /tmp/$2)/stat"
}

# A unit whose child stops itself, then (once continued) writes /tmp/resumed.
STOPPED='sh -c "kill -STOP \$\$; echo resumed >/tmp/resumed; exec sleep 300" & echo $! >/tmp/stopped.pid; wait'

@test "a job with a stopped process is checkpointed, and restored stopped; SIGCONT resumes it" {
	id=$(xrun -d -- sh -c "$STOPPED")
	wait_state "$id" RUNNING
	wait_file "$(job_rootfs "$id")/tmp/stopped.pid"
	for _ in $(seq 1 100); do
		[ "$(state_in_job "$id" stopped.pid)" = T ] && break
		sleep 0.05
	done
	assert_equal "$(state_in_job "$id" stopped.pid)" T
	# (before: CRIU hung in ptrace_attach on the frozen cgroup, for ever)
	run timeout 60 xcheckpoint "$id"
	assert_success
	assert_equal "$(job_field "$id" .state)" RUNNING
	assert_equal "$(state_in_job "$id" stopped.pid)" T
	run timeout 60 xcheckpoint --stop "$id"
	assert_success
	assert_equal "$(job_field "$id" .state)" CHECKPOINTED
	run timeout 60 xrestart "$id"
	assert_success
	assert_equal "$(job_field "$id" .state)" RUNNING
	assert_equal "$(state_in_job "$id" stopped.pid)" T
	[ ! -e "$(job_rootfs "$id")/tmp/resumed" ] || fail "the stopped process ran before SIGCONT"
	xrun --job "$id" -- sh -c 'kill -CONT $(cat /tmp/stopped.pid)'
	wait_file "$(job_rootfs "$id")/tmp/resumed"
	assert_equal "$(cat "$(job_rootfs "$id")/tmp/resumed")" resumed
}

COUNTER='i=0; while :; do i=$((i+1)); echo $i >>/tmp/count; sleep 0.1; done'

count_of() { wc -l <"$(job_rootfs "$1")/tmp/count"; }

# the job runs (it counts on) and its container is not frozen
assert_running_thawed() {
	local id=$1 a f
	assert_equal "$(job_field "$id" .state)" RUNNING
	a=$(count_of "$id")
	for _ in $(seq 1 100); do
		[ "$(count_of "$id")" -gt "$a" ] && break
		sleep 0.05
	done
	[ "$(count_of "$id")" -gt "$a" ] || fail "job $id does not count on"
	while read -r f; do
		[ -z "$f" ] || assert_equal "$(cat "$f")" THAWED
	done < <(find /sys/fs/cgroup/freezer -path "*xos-$id*" -name freezer.state 2>/dev/null)
}

# A criu first on xosd's PATH that, for ACTION (dump or restore), records
# its arguments in $XOS_TMP/criu.args, freezes the container's freezer cgroup
# (a dump) and then hangs; else it runs the real CRIU.
hanging_criu() {
	local action=$1 real
	real=$(command -v criu)
	mkdir -p "$XOS_TMP/fakebin"
	cat >"$XOS_TMP/fakebin/criu" <<-EOF
		#!/bin/sh
		if [ "\$1" = $action ]; then
			echo "\$*" >"$XOS_TMP/criu.args"
			t= prev=
			for a; do
				[ "\$prev" = -t ] && t=\$a
				prev=\$a
			done
			if [ -n "\$t" ]; then
				cg=\$(sed -n 's/^[0-9]*:freezer://p' /proc/\$t/cgroup)
				echo FROZEN >"/sys/fs/cgroup/freezer\$cg/freezer.state"
			fi
			touch "$XOS_TMP/criu.hangs"
			exec sleep 600
		fi
		exec $real "\$@"
	EOF
	chmod 0755 "$XOS_TMP/fakebin/criu"
}

# no process of the hanging criu is left
assert_no_hanging_criu() {
	for _ in $(seq 1 100); do
		pgrep -f "sleep 600" | while read -r p; do
			grep -qs "$XOS_TMP" "/proc/$p/environ" && echo "$p"
		done | grep -q . || return 0
		sleep 0.05
	done
	fail "the hanging criu is still there"
}

@test "dump_timeout: a dump that hangs is aborted, the job thawed and RUNNING, the version discarded, the error says so" {
	xosd_stop
	printf 'dump_timeout = 2s\n' >"$XOS_TMP/xosd.conf"
	hanging_criu dump
	PATH="$XOS_TMP/fakebin:$PATH" xosd_launch --config "$XOS_TMP/xosd.conf"
	id=$(xrun -d -- sh -c "$COUNTER")
	wait_state "$id" RUNNING
	wait_file "$(job_rootfs "$id")/tmp/count"
	run timeout 60 xcheckpoint "$id"
	assert_failure 1
	assert_output --partial "took longer than dump_timeout (2 s) and was aborted"
	assert_output --partial "version 1 was discarded"
	[ -e "$XOS_TMP/criu.hangs" ] || fail "the dump never reached CRIU"
	# liblxc's --freeze-cgroup does not reach CRIU (xosd's criu shim)
	refute_output --partial -- "--freeze-cgroup"
	run cat "$XOS_TMP/criu.args"
	refute_output --partial -- "--freeze-cgroup"
	assert_output --partial -- "-t "
	assert_no_hanging_criu
	assert_running_thawed "$id"
	[ -z "$(find "$XOS_TMP/state/checkpoints/$id" -maxdepth 1 -name '.new-*')" ] ||
		fail "a partial version is left"
	run xcheckpoint --list --json "$id"
	assert_equal "$(echo "$output" | jq -c '[.[].version]')" "[]"
	# the next dump (no longer hanging, default dump_timeout) works
	xosd_stop
	xosd_launch
	run timeout 60 xcheckpoint "$id"
	assert_success
	assert_running_thawed "$id"
}

@test "dump_timeout shorter than a real dump: wherever CRIU was, the job runs on, thawed; a whole version or none" {
	xosd_stop
	printf 'dump_timeout = 800ms\n' >"$XOS_TMP/xosd.conf"
	xosd_launch --config "$XOS_TMP/xosd.conf"
	id=$(xrun -d -- sh -c "$COUNTER")
	wait_state "$id" RUNNING
	wait_file "$(job_rootfs "$id")/tmp/count"
	# (a dump that ends within the grace after SIGALRM is kept: it is whole)
	run timeout 60 xcheckpoint "$id"
	if [ "$status" -ne 0 ]; then
		assert_output --partial "took longer than dump_timeout (800 ms) and was aborted"
	fi
	assert_running_thawed "$id"
	[ -z "$(find "$XOS_TMP/state/checkpoints/$id" -maxdepth 1 -name '.new-*')" ] ||
		fail "a partial version is left"
	if [ "$status" -eq 0 ]; then
		jq -e '.version == 1' "$XOS_TMP/state/checkpoints/$id/1/manifest.json" >/dev/null
	fi
}

@test "xkill of a CHECKPOINTING job aborts the dump; the job ends KILLED" {
	xosd_stop
	hanging_criu dump
	PATH="$XOS_TMP/fakebin:$PATH" xosd_launch
	id=$(xrun -d -- sh -c "$COUNTER")
	wait_state "$id" RUNNING
	timeout 60 xcheckpoint "$id" >"$XOS_TMP/ckpt.out" 2>&1 &
	local ckpt=$!
	wait_state "$id" CHECKPOINTING
	wait_file "$XOS_TMP/criu.hangs"
	run xkill "$id"
	assert_success
	wait_state "$id" KILLED 30
	assert_equal "$(job_field "$id" .units[0].signal)" 15
	run wait "$ckpt"
	assert_failure 1
	run cat "$XOS_TMP/ckpt.out"
	assert_output --partial "aborted by xkill"
	assert_no_hanging_criu
	[ -z "$(find "$XOS_TMP/state/checkpoints/$id" -maxdepth 1 -name '.new-*')" ] ||
		fail "a partial version is left"
}

@test "xkill of a RESTORING job aborts the restore; the job ends KILLED, its versions stay" {
	id=$(xrun -d -- sh -c "$COUNTER")
	wait_state "$id" RUNNING
	run timeout 60 xcheckpoint --stop "$id"
	assert_success
	xosd_stop
	hanging_criu restore
	PATH="$XOS_TMP/fakebin:$PATH" xosd_launch
	timeout 60 xrestart "$id" >"$XOS_TMP/restart.out" 2>&1 &
	local rst=$!
	wait_state "$id" RESTORING
	wait_file "$XOS_TMP/criu.hangs"
	run xkill "$id"
	assert_success
	wait_state "$id" KILLED 30
	run wait "$rst"
	assert_failure 1
	run cat "$XOS_TMP/restart.out"
	assert_output --partial "aborted by xkill"
	assert_no_hanging_criu
	run xcheckpoint --list --json "$id"
	assert_equal "$(echo "$output" | jq -c '[.[].version]')" "[1]"
}

# The shell of a unit (as in 82-zdtm.bats): start the zdtm program (it
# daemonizes once ready), pass SIGTERM on, wait for it, print its verdict.
zdtm_unit() {
	local n=$1 w=/tmp/zdtm
	printf '%s' "mkdir -p $w && cd $w || exit 1
$ZDTM_DIR/$n --pidfile=$w/$n.pid --outfile=$w/$n.out || { cat $w/$n.out; exit 1; }
p=\$(cat $w/$n.pid)
trap 'kill -TERM \$p 2>/dev/null' TERM
while kill -0 \$p 2>/dev/null; do sleep 2; done
cat $w/$n.out"
}

# zdtm_job NAME...: one job, each program a unit; every one has started
zdtm_job() {
	local n
	id=$(xrun -d -- sleep 100000)
	wait_state "$id" RUNNING
	for n in "$@"; do
		xrun -d --job "$id" -- sh -c "$(zdtm_unit "$n")" >/dev/null
	done
	for n in "$@"; do
		wait_file "$(job_rootfs "$id")/tmp/zdtm/$n.pid" 20 || fail "zdtm $n did not start"
	done
}

# checkpoint left running, then --stop, restart, SIGTERM: each says PASS
zdtm_cycle() {
	local names=("$@") i failed=()
	run timeout 120 xcheckpoint "$id"
	assert_success
	run timeout 120 xcheckpoint --stop "$id"
	assert_success
	run timeout 120 xrestart "$id"
	assert_success
	assert_equal "$(xps -a --json "$id" | jq '[.[0].units[] | select(.state == "RUNNING")] | length')" \
		$((${#names[@]} + 1))
	xkill "$id"
	run xwait "$id"
	for i in "${!names[@]}"; do
		if ! xlogs --unit $((i + 2)) "$id" | grep -q PASS; then
			failed+=("${names[$i]}: $(xlogs --unit $((i + 2)) "$id" | tail -n 3 | tr '\n' ' ')")
		fi
	done
	if [ "${#failed[@]}" -gt 0 ]; then
		printf 'not PASS: %s\n' "${failed[@]}" >&2
		false
	fi
}

@test "zdtm stopped, stopped01, stopped02, stopped12, vdso02 as units: checkpoint, --stop, restart, PASS" {
	[ -x "$ZDTM_DIR/stopped12" ] || fail "no zdtm stopped12 in $ZDTM_DIR: run scripts/build-zdtm.sh"
	zdtm_job stopped stopped01 stopped02 stopped12 vdso02
	zdtm_cycle stopped stopped01 stopped02 stopped12 vdso02
}

@test "zdtm pty00, pty02, pty03, pty04 and tty00 as units: checkpoint, --stop, restart, PASS" {
	[ -x "$ZDTM_DIR/tty00" ] || fail "no zdtm tty00 in $ZDTM_DIR: run scripts/build-zdtm.sh"
	zdtm_job pty00 pty02 pty03 pty04 tty00
	zdtm_cycle pty00 pty02 pty03 pty04 tty00
}

@test "every job has its own devpts: /dev/ptmx opens, /dev/pts is readable, script works, the tty group is mapped" {
	run xrun -- sh -c 'stat -f -c %T /dev/pts; stat -L -c "%F %a" /dev/ptmx; ls /dev/pts >/dev/null && echo readable'
	assert_success
	assert_line --index 0 devpts
	assert_line --index 1 "character special file 666"
	assert_line --index 2 readable
	run xrun -- script -qec 'tty; stat -c "%g %a" $(tty)' /dev/null
	assert_success
	assert_output --partial "/dev/pts/0"
	assert_output --partial "5 620"
	# python's pty.openpty() (the devpts is the job's own: its first pty is 0)
	run xrun -- python3 -c 'import os, pty; m, s = pty.openpty(); os.write(m, b"hi\n"); print(os.ttyname(s), os.read(s, 10).decode().strip())'
	assert_success
	assert_output "/dev/pts/0 hi"
	# two jobs: two instances, not the host's
	id=$(xrun -d -- python3 -c 'import os, pty, time; m, s = pty.openpty(); open("/tmp/up", "w"); time.sleep(300)')
	wait_state "$id" RUNNING
	wait_file "$(job_rootfs "$id")/tmp/up"
	run xrun -- python3 -c 'import os, pty; m, s = pty.openpty(); print(os.ttyname(s))'
	assert_output /dev/pts/0
}

@test "a job on an imported template has its devpts too" {
	local d=$XOS_TMP/bb a
	xosd_stop
	xosd_launch --loader "$XOS_STATIC_LOADER"
	mkdir -p "$d/bin" "$d/etc" "$d/tmp" "$d/proc" "$d/sys" "$d/dev"
	cp /bin/busybox "$d/bin/busybox"
	for a in sh ls stat cat; do
		ln -s busybox "$d/bin/$a"
	done
	chmod 1777 "$d/tmp"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$d/etc/passwd"
	printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$d/etc/group"
	tar -C "$d" --owner=0 --group=0 -cf "$XOS_TMP/bb.tar" .
	xtemplate import bb "$XOS_TMP/bb.tar"
	# the master opens; its slave shows in /dev/pts, group tty
	run xrun --template bb -- sh -c 'exec 3<>/dev/ptmx && ls /dev/pts && stat -c "%G %a" /dev/pts/0'
	assert_success
	assert_line --index 0 0
	assert_line --index 1 ptmx
	assert_line --index 2 "tty 620"
}

# A job holding a pty with state in it: a window size, ECHO off, and input
# written to the master before the checkpoint that the slave reads only after
# the restart (it waits for /tmp/pty.go).
PTY_JOB='
import fcntl, os, pty, struct, termios, time
m, s = pty.openpty()
fcntl.ioctl(s, termios.TIOCSWINSZ, struct.pack("HHHH", 42, 137, 0, 0))
a = termios.tcgetattr(s); a[3] &= ~termios.ECHO; termios.tcsetattr(s, termios.TCSANOW, a)
os.write(m, b"before-checkpoint\n")
open("/tmp/pty.ready", "w").write(os.ttyname(s))
while not os.path.exists("/tmp/pty.go"):
    time.sleep(0.1)
data = os.read(s, 100).decode().strip()
rows, cols = struct.unpack("HHHH", fcntl.ioctl(s, termios.TIOCGWINSZ, b"\0" * 8))[:2]
echo = bool(termios.tcgetattr(s)[3] & termios.ECHO)
os.write(m, b"after\n")
print(os.ttyname(s), data, "%dx%d" % (rows, cols), "echo" if echo else "noecho", os.read(s, 100).decode().strip())
'

@test "a python pty.openpty() job keeps its terminal's state across xcheckpoint --stop and xrestart" {
	id=$(xrun -d -- python3 -c "$PTY_JOB")
	wait_state "$id" RUNNING
	wait_file "$(job_rootfs "$id")/tmp/pty.ready"
	run timeout 60 xcheckpoint "$id"
	assert_success
	run timeout 60 xcheckpoint --stop "$id"
	assert_success
	assert_equal "$(job_field "$id" .state)" CHECKPOINTED
	run timeout 60 xrestart "$id"
	assert_success
	xrun --job "$id" -- touch /tmp/pty.go
	run timeout 30 xwait "$id"
	assert_success
	run xlogs "$id"
	assert_output "/dev/pts/0 before-checkpoint 42x137 noecho after"
}
