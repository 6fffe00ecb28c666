#!/usr/bin/env bats
# Post-copy (issue 11, `xmigrate --postcopy`; DECISIONS (ar)): what stands and
# what does not. The move itself is not built: its target half, a restore
# whose memory comes through CRIU's lazy pages (userfaultfd) after the job
# runs again, is shown here on one node, with the pages served from the
# version's own images (XOS_CRIU_LAZY=local, a knob for the tests that the
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

# The xos patch level of the CRIU liblxc runs (the first on PATH), 0 if none.
criu_level() {
	local v
	v=$(criu --version 2>/dev/null | sed -n 's/^GitID: .*+xos\([0-9][0-9]*\)$/\1/p')
	echo "${v:-0}"
}

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
}
