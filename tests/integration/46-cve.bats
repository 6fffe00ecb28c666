#!/usr/bin/env bats
# Regression tests for the classes of holes container runtimes have had: each
# tries the attack from inside a job and checks the host afterwards.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	xos_start
	mkdir -p "$XOS_TMP/tools"
	chmod 0755 "$XOS_TMP/tools"
}

teardown() {
	xos_teardown
}

@test "CVE-2019-5736: no job process can write the loader (/proc/1/exe, /proc/PID/exe, /.xos/loader)" {
	before=$(sha256sum <"$XOS_BUILD/xos-loader")
	cat >"$XOS_TMP/tools/exe.py" <<'EOF'
import errno, glob, os, sys, time
def tryw(path):
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
        return "WROTE"
    except OSError as e:
        return "refused " + errno.errorcode[e.errno]
for p in ("/proc/1/exe", "/.xos/loader"):
    print(p, tryw(p))
try:
    os.execv("/.xos/loader", ["/.xos/loader"])
except OSError as e:
    print("exec /.xos/loader refused", errno.errorcode[e.errno])
# as runc's attackers did: hold the exe of any process that is not ours
# (the loader's children, while units are added) and write it later
held, end = {}, time.time() + 15
while time.time() < end and not os.path.exists("/tmp/stop"):
    for exe in glob.glob("/proc/[0-9]*/exe"):
        pid = exe.split("/")[2]
        if pid in held or pid == str(os.getpid()):
            continue
        try:
            held[pid] = os.open(exe, os.O_PATH)
        except OSError:
            pass
for pid, fd in held.items():
    print("held", pid, os.readlink("/proc/self/fd/%d" % fd), tryw("/proc/self/fd/%d" % fd))
print("done")
EOF
	id=$(xrun -d -v "$XOS_TMP/tools:/tools:ro" -- python3 /tools/exe.py)
	for i in $(seq 1 8); do
		run xrun --job "$id" -- true
		assert_success
	done
	xrun --job "$id" -- touch /tmp/stop
	run xwait "$id"
	run xlogs "$id"
	assert_line "/proc/1/exe refused EACCES"
	assert_line --regexp "^/.xos/loader refused (EACCES|EROFS)$"
	assert_line --regexp "^exec /.xos/loader refused"
	assert_line "done"
	refute_output --partial WROTE
	assert_equal "$(sha256sum <"$XOS_BUILD/xos-loader")" "$before"
}

@test "CVE-2024-21626: a unit starts with fds 0-2 only and its working directory inside the job" {
	# ls -m without a pipe: a pipeline's shell holds the pipe's read end
	# (fd 3) until it has forked the reader, and ls could see it
	run xrun -- sh -c 'ls -m /proc/$$/fd; readlink /proc/$$/cwd /proc/$$/root'
	assert_success
	assert_equal "${lines[0]}" "0, 1, 2"
	assert_equal "${lines[1]}" /
	assert_equal "${lines[2]}" /
	id=$(xrun -d -w /tmp -- sleep 300)
	run xrun --job "$id" -w /tmp -- sh -c 'ls -m /proc/$$/fd; readlink /proc/$$/cwd'
	assert_equal "${lines[0]}" "0, 1, 2"
	assert_equal "${lines[1]}" /tmp
	# a working directory through one of the loader's fds: none is open then
	for n in $(seq 3 16); do
		run xrun --job "$id" -w "/proc/self/fd/$n" -- pwd
		assert_equal "$status" 125
		assert_output --regexp "chdir /proc/self/fd/$n: (No such file or directory|Not a directory)"
	done
	xkill "$id"
	xwait "$id" || true
}

@test "CVE-2021-30465: a symlink swapped into a volume target during starts mounts and makes nothing outside" {
	v="$XOS_TMP/v" sent="$XOS_TMP/sentinel" src="$XOS_TMP/src"
	mkdir -p "$v" "$src"
	mkdir -m 1777 "$sent" # writable by anyone, as /tmp: any id could make things there
	touch "$sent/keep" "$src/from-src"
	chown nobody "$v"
	# the swapper (a job of the same user) exchanges /v/t between a directory
	# and a symlink to the sentinel, as fast as it can, for at most 60 s
	cat >"$XOS_TMP/tools/swap.py" <<EOF
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
os.mkdir("/v/t")
os.symlink("$sent", "/v/l")
open("/v/ready", "w").close()
end = time.time() + 60
while time.time() < end and not os.path.exists("/v/stop"):
    libc.renameat2(-100, b"/v/t", -100, b"/v/l", 2)  # RENAME_EXCHANGE
EOF
	swapper=$(xrun -d -v "$v:/v" -v "$XOS_TMP/tools:/tools:ro" -- python3 /tools/swap.py)
	for _ in $(seq 1 200); do
		[ -e "$v/ready" ] && break
		sleep 0.05
	done
	[ -e "$v/ready" ]
	ran=0 refused=0
	for _ in $(seq 1 20); do
		# (it starts, or is refused with an error; which depends on the race)
		run timeout 60 xrun -v "$v:/v" -v "$src:/v/t/x/y" -- true
		if [ "$status" -eq 0 ]; then
			ran=$((ran + 1))
		else
			assert_equal "$status" 125
			refused=$((refused + 1))
		fi
	done
	touch "$v/stop"
	xwait "$swapper" || true
	echo "# $ran started, $refused refused" >&3
	# nothing was made in the sentinel, and nothing is mounted there
	run ls -A "$sent"
	assert_output keep
	run grep -F " $sent" /proc/self/mountinfo
	assert_failure
}

@test "TIOCSTI and TIOCLINUX from a -t job are denied and nothing reaches the caller's terminal" {
	cat >"$XOS_TMP/tools/inject.py" <<'EOF'
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_char_p]
for name, req in (("TIOCSTI", 0x5412), ("TIOCSTI+high", 0x100005412), ("TIOCLINUX", 0x541C)):
    r = libc.ioctl(0, req, b"\x02")
    print(name, "allowed" if r == 0 else "errno %d" % ctypes.get_errno())
for c in b"echo INJECTED\n":
    libc.ioctl(0, 0x5412, bytes([c]))
EOF
	# xrun needs a terminal: script gives it one; after xrun, the shell there
	# reads what the job may have pushed into that terminal
	run timeout 60 script -qec "xrun -t -v $XOS_TMP/tools:/tools:ro -- python3 /tools/inject.py; bash -c 'read -t 2 line; echo \"LEFT:[\$line]\"'" /dev/null </dev/null
	assert_output --partial "TIOCSTI errno 1"
	assert_output --partial "TIOCSTI+high errno 1"
	assert_output --partial "TIOCLINUX errno 1"
	assert_output --partial "LEFT:[]"
	refute_output --partial "allowed"
}

@test "a job cannot write /proc/sys, /sys or cgroup files, nor mount a cgroup file system" {
	panic=$(cat /proc/sys/kernel/panic)
	thp=$(cat /sys/kernel/mm/transparent_hugepage/enabled)
	id=$(xrun -d --memory 64M -- sleep 300)
	cg=$(find /sys/fs/cgroup/memory -maxdepth 4 -type d -name "*xos-$id" | head -1)
	[ -n "$cg" ]
	limit=$(cat "$cg/memory.limit_in_bytes")
	run xrun --job "$id" -- sh -c '
		for f in /proc/sys/kernel/panic /proc/sys/vm/overcommit_memory \
			/proc/sys/net/ipv4/ip_forward /sys/kernel/mm/transparent_hugepage/enabled \
			/sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cgroup.procs \
			$(find /sys/fs/cgroup -name "memory.limit_in_bytes" -o -name cgroup.procs 2>/dev/null); do
			if (echo 1 > "$f") 2>/dev/null; then echo "WROTE $f"; else echo "refused $f"; fi
		done
		mkdir -p /tmp/cg
		for t in cgroup2 cgroup; do
			if mount -t $t -o memory none /tmp/cg 2>/dev/null; then echo "MOUNTED $t"; fi
		done
		python3 -c "import ctypes, os; r = ctypes.CDLL(None, use_errno=True).mount(b\"none\", b\"/tmp/cg\", b\"cgroup2\", 0, None); print(\"mount\", r, os.strerror(ctypes.get_errno()))"'
	assert_success
	assert_line "refused /proc/sys/kernel/panic"
	assert_line "refused /proc/sys/net/ipv4/ip_forward"
	assert_line "refused /sys/kernel/mm/transparent_hugepage/enabled"
	assert_line "mount -1 Operation not permitted"
	refute_output --partial WROTE
	refute_output --partial MOUNTED
	assert_equal "$(cat /proc/sys/kernel/panic)" "$panic"
	assert_equal "$(cat /sys/kernel/mm/transparent_hugepage/enabled)" "$thp"
	assert_equal "$(cat "$cg/memory.limit_in_bytes")" "$limit"
	xkill "$id"
	xwait "$id" || true
}
