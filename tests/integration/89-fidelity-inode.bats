#!/usr/bin/env bats
# Checkpoint fidelity (issue 16): a job that ended with a checkpoint version
# keeps its root overlay and layer (held by xosd), and the restart of that
# version rolls the layer back in place to the version's copy: the same
# device and inode numbers as at the checkpoint, the version's contents
# (docs/DECISIONS.md (ao)). The kept layer goes when it cannot serve any more.

load helpers
bats_require_minimum_version 1.5.0

setup() { xos_start; }
teardown() { xos_teardown; }

# The job: files in /tmp/d, then it waits.
FILES='mkdir /tmp/d
echo keep >/tmp/d/keep
echo one >/tmp/d/changed
echo gone >/tmp/d/gone
echo linked >/tmp/d/a
ln /tmp/d/a /tmp/d/b
head -c 8192 /dev/zero | tr "\0" a >/tmp/d/mapped
touch /tmp/ready
while :; do sleep 1; done'

# What the job's layer holds, as the job sees it: names, device, inode,
# links, contents.
LOOK='cd /tmp/d && for f in $(ls); do echo "$f $(stat -c "%d %i %h" "$f") $(sha256sum <"$f" | cut -c1-16)"; done'

# After the checkpoint: a file rewritten, one made, one removed, a link
# broken, a file changed through a shared mapping (its times need not change),
# a file made in a directory of the lower layers (/var/tmp, copied up then).
AFTER='cd /tmp/d && echo two >changed && echo new >new && rm gone && echo x >/var/tmp/x &&
rm b && echo other >b &&
/usr/bin/python3 -c "
import mmap, os
f = os.open(\"mapped\", os.O_RDWR)
m = mmap.mmap(f, 8192)
m[100:101] = b\"b\"
m.flush()
"'

# a removed file comes back as a new inode: its number is not compared
gone_any() { awk '$1 == "gone" { $3 = "*" } 1'; }

# fds of this test's xosd on the device DEV (major:minor in hex, stat's %D)
xosd_fds_on() {
	local f n=0
	for f in /proc/"$XOSD_PID"/fd/*; do
		[ "$(stat -L -c %D "$f" 2>/dev/null)" = "$1" ] && n=$((n + 1))
	done
	echo "$n"
}

# checkpointed left running, then killed: its layer's device
kept_job() {
	local id
	id=$(xrun -d -- sh -c "$FILES")
	wait_file "$(job_rootfs "$id")/tmp/ready"
	run timeout 120 xcheckpoint "$id"
	assert_success
	LAYER_DEV=$(stat -c %D "$XOS_TMP/state/volatile/jobs/$id/layer")
	ROOT_DEV=$(stat -c %D "$(job_rootfs "$id")")
	xkill -s KILL "$id"
	run xwait "$id"
	JOB=$id
}

@test "a killed job's restart rolls its kept layer back in place: written files have their checkpoint contents and inodes, made ones are gone, removed ones back, links linked, unchanged files keep their device and inode numbers" {
	id=$(xrun -d -- sh -c "$FILES")
	wait_file "$(job_rootfs "$id")/tmp/ready"
	before=$(xrun --job "$id" -- sh -c "$LOOK")
	echo "before: $before"
	vartmp=$(xrun --job "$id" -- ls -A /var/tmp)
	run timeout 120 xcheckpoint "$id"
	assert_success
	run xrun --job "$id" -- sh -c "$AFTER"
	assert_success
	run xrun --job "$id" -- sh -c "$LOOK"
	echo "changed: $output"
	[ "$output" != "$before" ]
	xkill -s KILL "$id"
	run xwait "$id"
	run timeout 120 xrestart "$id"
	assert_success
	wait_state "$id" RUNNING
	# (before: a copy of the version's layer, every inode number new, the
	# device too unless the kernel gave the new overlay the old one's)
	after=$(xrun --job "$id" -- sh -c "$LOOK" | gone_any)
	assert_equal "$after" "$(gone_any <<<"$before")"
	assert_equal "$(xrun --job "$id" -- ls -A /var/tmp)" "$vartmp"
	grep -q "Job $id: its kept layer was rolled back in place" "$XOS_TMP/xosd.log"
	# the processes run on over it: checkpointed --stop and restarted
	run timeout 120 xcheckpoint --stop "$id"
	assert_success
	run timeout 120 xrestart "$id"
	assert_success
	after=$(xrun --job "$id" -- sh -c "$LOOK" | gone_any)
	assert_equal "$after" "$(gone_any <<<"$before")"
}

@test "a job stopped at a checkpoint and then killed keeps its layer too: its restart has the same device and inode numbers" {
	id=$(xrun -d -- sh -c "$FILES")
	wait_file "$(job_rootfs "$id")/tmp/ready"
	before=$(xrun --job "$id" -- sh -c "$LOOK")
	run timeout 120 xcheckpoint --stop "$id"
	assert_success
	xkill -s KILL "$id"
	wait_for 30 job_field_is "$id" .state KILLED
	run timeout 120 xrestart "$id"
	assert_success
	wait_state "$id" RUNNING
	# (before: killed while stopped, its layer was unmounted; the restart
	# copied the version's files, with new numbers)
	run xrun --job "$id" -- sh -c "$LOOK"
	assert_output "$before"
}

@test "a kept layer is held while the job can be restarted from it, and let go when its version is deleted, when the job is forgotten (keep_ended), beyond kept_layers and when xosd stops" {
	kept_job
	a=$JOB
	# the overlay's and the layer's detached clones
	assert_equal "$(xosd_fds_on "$LAYER_DEV")" 1
	assert_equal "$(xosd_fds_on "$ROOT_DEV")" 1
	v=$(xcheckpoint --list "$a" | awk '$1 ~ /^[0-9]+$/ { v = $1 } END { print v }')
	[ -n "$v" ]
	run xcheckpoint --delete "$v" "$a"
	assert_success
	assert_equal "$(xosd_fds_on "$LAYER_DEV")" 0
	assert_equal "$(xosd_fds_on "$ROOT_DEV")" 0

	# forgotten: keep_ended = 1, and another job ends after it
	xosd_stop
	echo "keep_ended = 1" >"$XOS_TMP/xosd.conf"
	xosd_launch --config "$XOS_TMP/xosd.conf"
	kept_job
	b=$JOB
	assert_equal "$(xosd_fds_on "$LAYER_DEV")" 1
	run xrun -- true
	assert_success
	wait_for 30 test ! -e "$XOS_TMP/state/jobs/$b"
	assert_equal "$(xosd_fds_on "$LAYER_DEV")" 0
	assert_equal "$(xosd_fds_on "$ROOT_DEV")" 0

	# at most kept_layers: the layer of the job that ended first goes
	xosd_stop
	echo "kept_layers = 1" >"$XOS_TMP/xosd.conf"
	xosd_launch --config "$XOS_TMP/xosd.conf"
	kept_job
	first=$LAYER_DEV
	kept_job
	assert_equal "$(xosd_fds_on "$first")" 0
	assert_equal "$(xosd_fds_on "$LAYER_DEV")" 1

	# xosd stops: it held them (fds); the restart after it copies the
	# version's layer and works
	xosd_stop
	xosd_launch
	kept_job
	c=$JOB
	assert_equal "$(xosd_fds_on "$LAYER_DEV")" 1
	xosd_stop
	xosd_launch
	run timeout 120 xrestart "$c"
	assert_success
	wait_state "$c" RUNNING
	run ! grep -q "Job $c: its kept layer was rolled back" "$XOS_TMP/xosd.log"
	run xrun --job "$c" -- cat /tmp/d/keep
	assert_output keep
}
