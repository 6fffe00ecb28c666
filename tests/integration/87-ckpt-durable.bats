#!/usr/bin/env bats
# A checkpoint version is on the disk when xcheckpoint says OK (DECISIONS
# (av)): every file and directory of the version is fsynced before the
# version is renamed into place. Real xosd, LXC and CRIU; strace follows
# xosd's own process only (not -f: CRIU's seize of the job must not meet it).

load helpers
bats_require_minimum_version 1.5.0

STRACE_PID=
setup() { :; }
teardown() {
	if [ -n "$STRACE_PID" ]; then
		kill "$STRACE_PID" 2>/dev/null || true
		wait "$STRACE_PID" 2>/dev/null || true
	fi
	xos_teardown
}

LOOP='while :; do echo x >>/tmp/ticks; sleep 0.1; done'
store() { echo "$XOS_TMP/state/checkpoints"; }
traced() { [ "$(awk '/^TracerPid:/ {print $2}' "/proc/$XOSD_PID/status")" != 0 ]; }

# strace xosd (fsync, fdatasync, syncfs, renames; fds as paths) into $1
trace_xosd() {
	strace -q -y -p "$XOSD_PID" -o "$1" \
		-e trace=fsync,fdatasync,syncfs,rename,renameat,renameat2 &
	STRACE_PID=$!
	wait_for 30 traced
}

untrace_xosd() {
	kill "$STRACE_PID"
	wait "$STRACE_PID" || true
	STRACE_PID=
}

# the first line of trace $1 that fsyncs (or fdatasyncs) path $2; 0 if none
first_sync() {
	awk -v p="$2" 'index($0, "sync(") && index($0, "<" p ">") { n = NR; exit }
		END { print n + 0 }' "$1"
}

@test "every file and directory of a new version is fsynced before the version is renamed into place" {
	xos_start
	id=$(xrun -d -- sh -c "mkdir -p /tmp/d/e; echo data >/tmp/d/e/f; $LOOP")
	wait_state "$id" RUNNING
	wait_file "$(job_rootfs "$id")/tmp/ticks"
	trace_xosd "$BATS_TEST_TMPDIR/trace"
	run xcheckpoint "$id"
	assert_success
	untrace_xosd
	t="$BATS_TEST_TMPDIR/trace"
	v="$(store)/$id/1"
	[ -f "$v/manifest.json" ]
	commit=$(grep -n 'rename.*"\.new-1".*"1"' "$t" | head -n1 | cut -d: -f1)
	[ -n "$commit" ] || {
		cat "$t" >&2
		false
	}
	new="$(realpath "$(store)")/$id/.new-1"
	n=0 bad=0
	while IFS= read -r -d '' p; do
		rel=${p#"$v"}
		line=$(first_sync "$t" "$new$rel")
		if [ "$line" -eq 0 ] || [ "$line" -gt "$commit" ]; then
			echo "not synced before the commit (line $commit): $new$rel (line $line)" >&2
			bad=$((bad + 1))
		fi
		n=$((n + 1))
	done < <(find "$v" \( -type f -o -type d \) -print0)
	assert_equal "$bad" 0
	# the images, the copies of the layer and spool, the version's own directory
	[ -f "$v/upper/tmp/d/e/f" ]
	[ "$(find "$v/images" -type f | wc -l)" -gt 5 ]
	[ "$n" -gt 10 ]
	# and the job goes on
	wait_state "$id" RUNNING
	k=$(wc -l <"$(job_rootfs "$id")/tmp/ticks")
	wait_for 30 test "$(wc -l <"$(job_rootfs "$id")/tmp/ticks")" -gt "$k"
}

@test "with sync_writes = false a version's images are not fsynced" {
	printf 'sync_writes = false\n' >"$BATS_TEST_TMPDIR/xosd.conf"
	xos_start --config "$BATS_TEST_TMPDIR/xosd.conf"
	id=$(xrun -d -- sh -c "$LOOP")
	wait_state "$id" RUNNING
	trace_xosd "$BATS_TEST_TMPDIR/trace"
	run xcheckpoint --stop "$id"
	assert_success
	untrace_xosd
	[ -f "$(store)/$id/1/manifest.json" ]
	run grep -c "sync(.*/$id/\.new-1/images/" "$BATS_TEST_TMPDIR/trace"
	assert_output 0
	run xrestart "$id"
	assert_success
	wait_state "$id" RUNNING
}
