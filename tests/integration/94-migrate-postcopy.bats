#!/usr/bin/env bats
# Post-copy (issue 11, `xmigrate --postcopy`; DECISIONS (ar)): what CRIU does
# that the move rests on (the move itself: 94-migrate-postcopy-move.bats).
# Its target half, a restore whose memory comes through CRIU's lazy pages
# (userfaultfd) after the job runs again, is shown here on one node, with the
# pages served from the version's own images (XOS_CRIU_LAZY=local, a knob for the tests that the
# CRIU shim reads for a restore). In the job's user namespace CRIU 4.2.1
# cannot open a userfaultfd (the kernel asks for CAP_SYS_PTRACE in the
# initial namespace, or vm.unprivileged_userfaultfd = 1); xos's CRIU patch
# 0004 (patch level 3) gets it through /dev/userfaultfd. With a CRIU below
# level 3 on PATH the test shows the limit: the restore fails with CRIU's
# words and the job stays restorable.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	export XOS_CRIU_LAZY=local
	xos_start
	unset XOS_CRIU_LAZY
}
teardown() { xos_teardown; }

store() { echo "$XOS_TMP/state/checkpoints"; }

# A job holding 64 MiB of touched memory (1 MiB of random bytes, 64 times):
# it writes the memory's sha256 to /tmp/sum, waits for /tmp/go, prints the
# memory's sha256 again and ends with 7.
HOLDER='
import hashlib, os, time
b = bytearray(os.urandom(1 << 20)) * 64
open("/tmp/sum.new", "w").write(hashlib.sha256(b).hexdigest() + "\n")
os.rename("/tmp/sum.new", "/tmp/sum")
while not os.path.exists("/tmp/go"):
    time.sleep(0.05)
print("sha256", hashlib.sha256(b).hexdigest())
raise SystemExit(7)
'

@test "post-copy's target half: a job of 64 MiB restored with lazy pages in its user namespace ends with the same memory and its exit code, its pages brought by userfaultfd (CRIU level 3); below level 3, CRIU's refusal and the job restorable" {
	id=$(xrun -d -- python3 -c "$HOLDER")
	wait_file "$(job_rootfs "$id")/tmp/sum" 60
	sum=$(cat "$(job_rootfs "$id")/tmp/sum")
	[ "${#sum}" -eq 64 ]
	run xcheckpoint --stop "$id"
	assert_success
	images="$(store)/$id/1/images"
	run xrestart "$id"
	if [ "$(criu_level)" -lt 3 ]; then
		# the limit: each task of the job's user namespace is refused its
		# userfaultfd, the restore fails, the job stays stopped at version 1
		assert_failure
		assert_output --partial "failed"
		grep -q "uffd: Unable to open an userfaultfd descriptor: Operation not permitted" \
			"$images/restore.log"
		assert_equal "$(job_field "$id" .state)" CHECKPOINTED
		assert_equal "$(job_field "$id" .checkpoint.last_version)" 1
		[ -d "$(store)/$id/1/images" ]
		skip "$(command -v criu) is below xos patch level 3 (GitID +xos$(criu_level)): lazy pages cannot restore a job in its user namespace; scripts/setup.sh builds level 3"
	fi
	assert_success
	assert_output --partial "restarted from version 1"
	assert_equal "$(job_field "$id" .state)" RUNNING
	# the pages came lazily: CRIU's lazy-pages daemon copied at least the
	# job's 64 MiB (16384 pages) into it through userfaultfd
	wait_for 60 grep -q "UFFD transferred pages" "$images/lazy-pages.log"
	pages=$(sed -n 's/.*UFFD transferred pages: (\([0-9]*\)\/\([0-9]*\)).*/\1 \2/p' \
		"$images/lazy-pages.log" | awk '{ t += $1 } END { print t + 0 }')
	echo "pages transferred by userfaultfd: $pages" >&3
	[ "$pages" -ge 16384 ]
	touch "$(job_rootfs "$id")/tmp/go"
	run xwait "$id"
	assert_equal "$status" 7
	run xlogs "$id"
	assert_output "sha256 $sum"
	# the lazy-pages daemon ended once it had given every page (the shim
	# forked it off: its parent is whoever reaps orphans, not the restore)
	wait_for 30 bash -c "! pgrep -f -- '[l]azy-pages.*$images' >/dev/null"
}

# What CRIU does when a lazy pull breaks, which the post-copy guard of
# DECISIONS (ar) rests on, and a whole pull through a socket pair given to
# both sides with --ps-socket (the way xosd's relay would carry it). Plain
# CRIU on a python3 process of 64 MiB in a pid namespace of its own (pid 1
# there, in its own session), no xosd. LAZY_DRIVER DIR CASE: dumps the
# process with --lazy-pages --ps-socket, waits for --status-fd (images
# written), then
#   eof:     closes the page socket (the peer gone without a word)
#   invalid: writes a request CRIU does not know (the guard's abort)
#   pull:    gives the other end to `criu lazy-pages --page-server` and
#            restores with --lazy-pages, then lets the restored copy check
#            its memory
# and prints "status=1" (the status came), "dump=RC" and "victim=alive|gone"
# (and for pull "restore=RC", "lazy=RC").
# The process writes its memory's sha256 to DIR/sum, a tick to DIR/ticks
# every 50 ms, and on DIR/go the sha256 again to DIR/after.
LAZY_VICTIM='
import hashlib, os, sys, time
d = sys.argv[1]
os.setsid()
b = bytearray(os.urandom(1 << 20)) * 64
open(d + "/sum", "w").write(hashlib.sha256(b).hexdigest())
while not os.path.exists(d + "/go"):
    with open(d + "/ticks", "a") as f:
        f.write("x")
    time.sleep(0.05)
open(d + "/after.new", "w").write(hashlib.sha256(b).hexdigest())
os.rename(d + "/after.new", d + "/after")
'
LAZY_DRIVER='
import os, socket, subprocess, sys, time
d, case = sys.argv[1], sys.argv[2]
img = d + "/img"
os.makedirs(img)
v = subprocess.Popen(["unshare", "-p", "-f", "python3", "-c", os.environ["LAZY_VICTIM"], d],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(600):
    if os.path.exists(d + "/sum"):
        break
    time.sleep(0.05)
pid = int(subprocess.run(["pgrep", "-P", str(v.pid)], capture_output=True, text=True).stdout.split()[0])
open(d + "/victim", "w").write(str(pid))
a, b = socket.socketpair()
sr, sw = os.pipe()
for fd in (a.fileno(), b.fileno(), sw):
    os.set_inheritable(fd, True)
dump = subprocess.Popen(["criu", "dump", "-t", str(pid), "-D", img, "-o", "dump.log", "-v4",
                         "--lazy-pages", "--ps-socket", str(a.fileno()), "--status-fd", str(sw)],
                        pass_fds=(a.fileno(), sw))
os.close(sw)
a.close()
print("status=%d" % len(os.read(sr, 1)))
if case == "eof":
    b.close()
elif case == "invalid":
    b.send(b"\xff" * 32)
elif case == "pull":
    lazy = subprocess.Popen(["criu", "lazy-pages", "--page-server", "--ps-socket", str(b.fileno()),
                             "-D", img, "-W", img, "-o", "lazy-pages.log", "-v4"], pass_fds=(b.fileno(),))
    b.close()
    for _ in range(500):
        if os.path.exists(img + "/lazy-pages.socket"):
            break
        time.sleep(0.01)
    r = subprocess.run(["criu", "restore", "-D", img, "-o", "restore.log", "-v4", "--lazy-pages", "-d"])
    print("restore=%d" % r.returncode)
    print("lazy=%d" % lazy.wait(timeout=120))
print("dump=%d" % dump.wait(timeout=60))
v.wait(timeout=10) if case != "invalid" else None
st = open("/proc/%d/stat" % pid).read().split()[2] if os.path.exists("/proc/%d" % pid) else "gone"
print("victim=%s" % ("gone" if st in ("gone", "Z", "X") else "alive"))
'

# lazy_run CASE: the driver's output in $output, its directory in $LZ
lazy_run() {
	LZ="$XOS_TMP/lazy-$1"
	mkdir -p "$LZ"
	run env LAZY_VICTIM="$LAZY_VICTIM" timeout 180 python3 -c "$LAZY_DRIVER" "$LZ" "$1"
}

ticks_past() { [ "$(stat -c %s "$LZ/ticks")" -gt "$1" ]; }

# lazy_cleanup: kill what the driver left (the original, or a restored copy)
lazy_cleanup() {
	local p
	for p in $(pgrep -f "^python3 -c.*$LZ" || true); do
		kill -KILL "$p" 2>/dev/null || true
	done
}

@test "CRIU's lazy dump, the peer gone: an EOF on the page socket counts as the end and kills the tasks (why the guard never closes it)" {
	lazy_run eof
	lazy_cleanup
	assert_success
	assert_line "status=1"
	assert_line "dump=0"
	assert_line "victim=gone"
	grep -q "Lazy pages transfer finished successfully" "$LZ/img/dump.log"
}

@test "CRIU's lazy dump, an unknown request on the page socket: the dump fails and the tasks run on (the guard's abort)" {
	lazy_run invalid
	local before
	before=$(stat -c %s "$LZ/ticks" 2>/dev/null || echo 0)
	wait_for 10 ticks_past "$((before + 5))"
	lazy_cleanup
	assert_success
	assert_line "status=1"
	assert_line "dump=1"
	assert_line "victim=alive"
	grep -q "Lazy pages transfer FAILED" "$LZ/img/dump.log"
}

@test "a whole lazy pull through one socket pair, --ps-socket on both sides: every page by userfaultfd, the memory the same (CRIU level 4)" {
	[ "$(criu_level)" -ge 4 ] ||
		skip "$(command -v criu) is below xos patch level 4 (GitID +xos$(criu_level)): a lazy dump cannot serve pages here (tee into a 64 KiB pipe); scripts/setup.sh builds level 4"
	lazy_run pull
	assert_success
	assert_line "status=1"
	assert_line "restore=0"
	assert_line "lazy=0"
	assert_line "dump=0"
	grep -q "UFFD transferred pages: (\([0-9]*\)/\1)" "$LZ/img/lazy-pages.log"
	touch "$LZ/go"
	wait_file "$LZ/after" 30
	lazy_cleanup
	assert_equal "$(cat "$LZ/after")" "$(cat "$LZ/sum")"
}
