#!/usr/bin/env bats
# Checkpoint fidelity (issue 16): a job holding inotify watches, one of them on
# a file it removed before the checkpoint and still holds open (zdtm
# inotify00), is checkpointed and restored, and every watch still delivers
# events; a watch the checkpoint cannot keep is refused in words.

load helpers
bats_require_minimum_version 1.5.0

setup() { xos_start; }
teardown() { xos_teardown; }

# The CRIU liblxc runs (the first on PATH) carries xos's patch level 2
# (scripts/criu-patches/0002-fsnotify-..., 0003-files-reg-...):
# scripts/setup.sh installs it.
need_criu_level_2() {
	local v
	v=$(criu --version 2>/dev/null | sed -n 's/^GitID: .*+xos\([0-9][0-9]*\)$/\1/p')
	[ "${v:-0}" -ge 2 ] ||
		fail "$(command -v criu) is not at xos patch level 2 (GitID +xos${v:-0}): run scripts/setup.sh"
}

# A job's python3 watching the directory /tmp/w and the file /tmp/w/gone,
# which it holds open for writing and removes before anything else (zdtm
# inotify00); every event goes to /tmp/events as "WATCH MASK NAME". On
# SIGUSR1 it writes to the removed file (IN_MODIFY, on both watches), on
# SIGUSR2 it closes it (IN_CLOSE_WRITE on both, then IN_DELETE_SELF on the
# file's: its last reference is gone).
WATCHER='
import ctypes, os, signal, struct
libc = ctypes.CDLL(None, use_errno=True)
IN_MODIFY, IN_CLOSE_WRITE, IN_CREATE, IN_DELETE, IN_DELETE_SELF = 0x2, 0x8, 0x100, 0x200, 0x400
os.makedirs("/tmp/w", exist_ok=True)
gone = open("/tmp/w/gone", "w")
fd = libc.inotify_init1(0)
names = {}
for path, mask, name in ((b"/tmp/w", IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE, "dir"),
                         (b"/tmp/w/gone", IN_MODIFY | IN_CLOSE_WRITE | IN_DELETE_SELF, "gone")):
    wd = libc.inotify_add_watch(fd, path, mask)
    assert wd >= 0, ctypes.get_errno()
    names[wd] = name
os.unlink("/tmp/w/gone")
def write(sig, frame):
    gone.write("x"); gone.flush()
def close(sig, frame):
    gone.close()
signal.signal(signal.SIGUSR1, write)
signal.signal(signal.SIGUSR2, close)
out = open("/tmp/events", "a", buffering=1)
open("/tmp/ready", "w").close()
while True:
    buf = os.read(fd, 65536)
    off = 0
    while off < len(buf):
        wd, mask, cookie, n = struct.unpack_from("iIII", buf, off)
        name = buf[off + 16:off + 16 + n].rstrip(b"\0").decode()
        off += 16 + n
        out.write("%s %#x %s\n" % (names.get(wd, wd), mask, name))
'

# waits (bounded) until the job's /tmp/events holds the line LINE
wait_event() {
	local f _
	f="$(job_rootfs "$1")/tmp/events"
	for _ in $(seq 1 400); do
		grep -qx "$2" "$f" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "no event '$2' in:" >&2
	cat "$f" >&2
	return 1
}

@test "a job watching a file it removed and still holds open is checkpointed left running, killed, restarted, checkpointed --stop, restarted; both watches still deliver events" {
	need_criu_level_2
	id=$(xrun -d -- /usr/bin/python3 -c "$WATCHER")
	wait_file "$(job_rootfs "$id")/tmp/ready"
	wait_event "$id" "dir 0x200 gone"
	# (before: refused, CRIU's "Can't dump that handle": no name to find it by;
	# with CRIU's patch 0002 alone the watch on the removed file was dropped
	# at the end of the restore, IN_DELETE_SELF and IN_IGNORED)
	run timeout 120 xcheckpoint "$id"
	assert_success
	assert_equal "$(job_field "$id" .state)" RUNNING
	xkill -s KILL "$id"
	run xwait "$id"
	run timeout 120 xrestart "$id"
	assert_success
	assert_equal "$(job_field "$id" .state)" RUNNING
	[ ! -e "$(job_rootfs "$id")/tmp/w/gone" ] || fail "the removed file came back as a name"
	xkill -s USR1 "$id"
	wait_event "$id" "dir 0x2 gone"
	wait_event "$id" "gone 0x2 "
	xrun --job "$id" -- sh -c 'touch /tmp/w/after1'
	wait_event "$id" "dir 0x100 after1"

	run timeout 120 xcheckpoint --stop "$id"
	assert_success
	run timeout 120 xrestart "$id"
	assert_success
	[ ! -e "$(job_rootfs "$id")/tmp/w/gone" ] || fail "the removed file came back as a name"
	xrun --job "$id" -- sh -c 'touch /tmp/w/after2'
	wait_event "$id" "dir 0x100 after2"
	xkill -s USR2 "$id"
	wait_event "$id" "dir 0x8 gone"
	wait_event "$id" "gone 0x8 "
	wait_event "$id" "gone 0x400 "
}

@test "a removed file still open whose name another file took is restored; the other file keeps its name and contents" {
	# (CRIU's patch 0003 removes the removed file's name at the end of the
	# restore only if it is still that file's)
	id=$(xrun -d -- sh -c 'echo old >/tmp/f; exec 5</tmp/f; rm /tmp/f; echo new >/tmp/f
		touch /tmp/ready; while :; do sleep 1; done')
	wait_file "$(job_rootfs "$id")/tmp/ready"
	run timeout 120 xcheckpoint "$id"
	assert_success
	xkill -s KILL "$id"
	run xwait "$id"
	run timeout 120 xrestart "$id"
	assert_success
	assert_equal "$(cat "$(job_rootfs "$id")/tmp/f")" new
	# shellcheck disable=SC2016 # (expanded in the job)
	run xrun --job "$id" -- sh -c 'cat /proc/$(pgrep -o -x sh)/fd/5; ls /tmp'
	assert_success
	assert_line old
	refute_output --partial cr_link
	refute_output --partial ghost
}

@test "a watch on a file the checkpoint cannot find by name is refused in words; the job runs on" {
	id=$(xrun -d -- /usr/bin/python3 -c '
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
assert libc.inotify_add_watch(libc.inotify_init1(0), b"/usr/bin/env", 0x2) >= 0
open("/tmp/ready", "w").close()
while True: time.sleep(1)
')
	wait_file "$(job_rootfs "$id")/tmp/ready"
	run timeout 120 xcheckpoint "$id"
	assert_failure
	# (before: "CRIU could not dump the container" and nothing more)
	assert_output --partial "the job holds an inotify watch on a file that the checkpoint cannot find by name"
	assert_output --partial "remove the watch before checkpointing"
	assert_equal "$(job_field "$id" .state)" RUNNING
	run xcheckpoint --list "$id"
	refute_output --regexp "^ *1 "
}
