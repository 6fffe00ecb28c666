#!/usr/bin/env bats
# Checkpoint fidelity (issue 16): deleted files still open (ghost files) up to
# the job's --disk, inotify watches, and file locks survive a checkpoint and
# a restart on the same node.

load helpers
bats_require_minimum_version 1.5.0

setup() { xos_start; }
teardown() {
	xos_teardown
	[ -z "${VOL:-}" ] || rm -rf "$VOL"
}



# A job holding /tmp/big, 64 MiB of random bytes, open on fd 5 and deleted;
# on SIGUSR1 it writes the checksum of what it reads through /proc/self/fd/5.
GHOST='dd if=/dev/urandom of=/tmp/big bs=1M count=64 2>/dev/null
sha256sum </tmp/big >/tmp/before
exec 5</tmp/big
rm /tmp/big
trap "sha256sum </proc/self/fd/5 >/tmp/after.new; mv /tmp/after.new /tmp/after" USR1
touch /tmp/ready
while :; do sleep 1; done'

@test "a job holding a 64 MiB deleted-open file is checkpointed within its --disk (128M) and restored with the file intact" {
	id=$(xrun -d --disk 128M -- sh -c "$GHOST")
	wait_file "$(job_rootfs "$id")/tmp/ready"
	# (before: refused, CRIU's default ghost limit is 1 MiB)
	run timeout 120 xcheckpoint "$id"
	assert_success
	assert_equal "$(job_field "$id" .state)" RUNNING
	xkill -s KILL "$id"
	run xwait "$id"
	run timeout 120 xrestart "$id"
	assert_success
	assert_equal "$(job_field "$id" .state)" RUNNING
	run timeout 120 xcheckpoint --stop "$id"
	assert_success
	run timeout 120 xrestart "$id"
	assert_success
	[ ! -e "$(job_rootfs "$id")/tmp/big" ] || fail "the deleted file came back as a name"
	xkill -s USR1 "$id"
	wait_file "$(job_rootfs "$id")/tmp/after"
	assert_equal "$(cat "$(job_rootfs "$id")/tmp/after")" "$(cat "$(job_rootfs "$id")/tmp/before")"
}

@test "a deleted-open file larger than the job's --disk (on a volume) is refused, naming the file; the job runs on" {
	VOL=$(mktemp -d "/tmp/$XOS_TEST_PREFIX-vol.XXXXXX")
	chmod 0777 "$VOL"
	id=$(xrun -d --disk 32M -v "$VOL:/data" -- sh -c \
		'dd if=/dev/zero of=/data/big bs=1M count=64 2>/dev/null; exec 5</data/big; rm /data/big
		touch /tmp/ready; while :; do sleep 1; done')
	wait_file "$(job_rootfs "$id")/tmp/ready"
	run timeout 120 xcheckpoint "$id"
	assert_failure
	assert_output --partial "deleted file that is still open, /data/big (64.0 MiB)"
	assert_output --partial "larger than the job's --disk (32.0 MiB)"
	assert_output --partial "run the job with a larger --disk"
	assert_equal "$(job_field "$id" .state)" RUNNING
	run xcheckpoint --list "$id"
	refute_output --regexp "^ *1 "
}

# A job's python3 holding inotify watches: on the directory /tmp/w, on
# /tmp/w/doomed (removed after the restart) and on /tmp/kept; it writes every
# event to /tmp/events as "WATCH MASK NAME". (A watch on a file removed before
# the checkpoint, still open: 89-fidelity-inotify.bats.)
INOTIFY='
import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
IN_MODIFY, IN_ATTRIB, IN_CREATE, IN_DELETE, IN_DELETE_SELF = 0x2, 0x4, 0x100, 0x200, 0x400
os.makedirs("/tmp/w", exist_ok=True)
for p in ("/tmp/w/doomed", "/tmp/kept"):
    open(p, "w").close()
fd = libc.inotify_init1(0)
names = {}
for path, mask, name in ((b"/tmp/w", IN_CREATE | IN_DELETE, "dir"),
                         (b"/tmp/w/doomed", IN_DELETE_SELF, "doomed"),
                         (b"/tmp/kept", IN_MODIFY, "kept")):
    wd = libc.inotify_add_watch(fd, path, mask)
    assert wd >= 0, ctypes.get_errno()
    names[wd] = name
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

# the events the job saw, once LINE is among them
wait_event() {
	local f i
	f="$(job_rootfs "$1")/tmp/events"
	for i in $(seq 1 400); do
		grep -qx "$2" "$f" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "no event '$2' in:" >&2
	cat "$f" >&2
	return 1
}

@test "a job holding inotify watches on its files is checkpointed and restored; the watches still deliver events" {
	id=$(xrun -d -- /usr/bin/python3 -c "$INOTIFY")
	wait_file "$(job_rootfs "$id")/tmp/ready"
	xrun --job "$id" -- sh -c 'touch /tmp/w/before'
	wait_event "$id" "dir 0x100 before"
	# (before: the dump failed, "fsnotify: Can't dump that handle")
	run timeout 120 xcheckpoint "$id"
	assert_success
	xkill -s KILL "$id"
	run xwait "$id"
	run timeout 120 xrestart "$id"
	assert_success
	xrun --job "$id" -- sh -c 'touch /tmp/w/after; echo more >>/tmp/kept'
	wait_event "$id" "dir 0x100 after"
	wait_event "$id" "kept 0x2 "
	run timeout 120 xcheckpoint --stop "$id"
	assert_success
	run timeout 120 xrestart "$id"
	assert_success
	xrun --job "$id" -- sh -c 'rm /tmp/w/after /tmp/w/doomed'
	wait_event "$id" "dir 0x200 after"
	wait_event "$id" "doomed 0x400 "
}

# A job's python3 holding an flock(2) lock on /tmp/f1 and a POSIX (fcntl)
# lock on /tmp/f2.
LOCKS='
import fcntl, os, time
a = open("/tmp/f1", "w"); fcntl.flock(a, fcntl.LOCK_EX)
b = open("/tmp/f2", "w"); fcntl.lockf(b, fcntl.LOCK_EX)
open("/tmp/ready", "w").close()
while True: time.sleep(1)
'
# exits 0 if another process of the job can take neither lock
TRY='
import fcntl, sys
bad = []
try:
    fcntl.flock(open("/tmp/f1", "w"), fcntl.LOCK_EX | fcntl.LOCK_NB); bad.append("flock")
except BlockingIOError: pass
try:
    fcntl.lockf(open("/tmp/f2", "w"), fcntl.LOCK_EX | fcntl.LOCK_NB); bad.append("fcntl")
except BlockingIOError: pass
print("taken: " + " ".join(bad) if bad else "both held")
sys.exit(1 if bad else 0)
'

# the device:inode of /tmp/f1 and /tmp/f2 as the job sees them, then those of
# the locks in /proc/locks (sorted)
IDS='stat -c "%d:%i" /tmp/f1 /tmp/f2
awk "{ print \$2, \$4, \$6 }" /proc/locks | sort'

@test "a job holding an flock and an fcntl lock still holds both, with the same device and inode numbers, after --stop and after a checkpoint left running, SIGKILL and a restart on the same node" {
	id=$(xrun -d -- /usr/bin/python3 -c "$LOCKS")
	wait_file "$(job_rootfs "$id")/tmp/ready"
	run xrun --job "$id" -- /usr/bin/python3 -c "$TRY"
	assert_success
	assert_output "both held"
	before=$(xrun --job "$id" -- sh -c "$IDS")
	echo "before --stop: $before"
	[ "$(echo "$before" | wc -l)" -eq 4 ]
	run timeout 120 xcheckpoint --stop "$id"
	assert_success
	run timeout 120 xrestart "$id"
	assert_success
	run xrun --job "$id" -- /usr/bin/python3 -c "$TRY"
	assert_success
	assert_output "both held"
	# (before: a new layer, copied, with new inode numbers, e.g. 9 and 10
	# became 5 and 7; the device number too, unless the kernel gave the new
	# overlay the one the old had)
	run xrun --job "$id" -- sh -c "$IDS"
	assert_success
	assert_output "$before"
	# left running, killed, restarted on the same node: the locks are held,
	# and /proc/locks still names the files' device and inode numbers (the
	# job's kept layer rolled back in place, DECISIONS (ao); before: a copy
	# of the version's layer, new numbers)
	run timeout 120 xcheckpoint "$id"
	assert_success
	xkill -s KILL "$id"
	run xwait "$id"
	run timeout 120 xrestart "$id"
	assert_success
	run xrun --job "$id" -- /usr/bin/python3 -c "$TRY"
	assert_success
	assert_output "both held"
	run xrun --job "$id" -- sh -c "$IDS"
	assert_success
	assert_output "$before"
	grep -q "Job $id: its kept layer was rolled back in place" "$XOS_TMP/xosd.log"
}

# exits 0 if a TCP connection over the job's loopback is made within 3 s
LOOPBACK='
import socket
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
s = socket.socket(); s.settimeout(3); s.connect(l.getsockname())
print("connected")
'

@test "a checkpoint that fails with CRIU's network lock left in the job's namespace: the lock goes, the job's network works" {
	id=$(xrun -d -- sleep 600)
	wait_state "$id" RUNNING
	run xrun --job "$id" -- /usr/bin/python3 -c "$LOOPBACK"
	assert_output connected
	# what CRIU killed between locking and unlocking leaves behind: its
	# table, every packet dropped but its own
	init=$(job_init_pid "$id")
	[ -n "$init" ]
	nsenter -t "$init" -n nft -f - <<-'NFT'
		add table inet CRIU-xostest
		add chain inet CRIU-xostest output { type filter hook output priority 0; policy drop; }
		add chain inet CRIU-xostest input { type filter hook input priority 0; policy drop; }
	NFT
	run xrun --job "$id" -- /usr/bin/python3 -c "$LOOPBACK"
	assert_failure
	# a dump that fails (CRIU's fault 3: while it dumps memory pages)
	xosd_stop
	CRIU_FAULT=3 xosd_launch
	run timeout 120 xcheckpoint "$id"
	assert_failure 1
	assert_output --partial "Checkpoint of job ${id:0:12} failed"
	# (before: the table stayed and the job ran on without a network)
	run nsenter -t "$init" -n nft list tables inet
	refute_output --partial CRIU-
	run xrun --job "$id" -- /usr/bin/python3 -c "$LOOPBACK"
	assert_success
	assert_output connected
	grep -q "removed the network lock its aborted checkpoint left" "$XOS_TMP/xosd.log"
}
