#!/usr/bin/env bats
# A checkpoint version is on the disk when xcheckpoint says OK (DECISIONS
# (av)): every file and directory of the version is fsynced before the
# version is renamed into place. Real xosd, LXC and CRIU; strace follows
# xosd and the children it forks (the dump's child writes the version out),
# each until it runs another program (-b execve: CRIU, which seizes the job,
# is never traced).

load helpers
bats_require_minimum_version 1.5.0

setup() { :; }
teardown() { xos_teardown; }

LOOP='while :; do echo x >>/tmp/ticks; sleep 0.1; done'
store() { echo "$XOS_TMP/state/checkpoints"; }
grew() { [ "$(wc -l <"$1")" -gt "$2" ]; }
ticking() { # JOB: its ticks file grows
	local f n
	f="$(job_rootfs "$1")/tmp/ticks"
	wait_file "$f"
	n=$(wc -l <"$f")
	wait_for 30 grew "$f" "$n"
}

# strace xosd and its children (fsync, fdatasync, syncfs, renames; fds as
# paths) into $1
trace_xosd() {
	xosd_trace "$1" -f -b execve -y -e trace=fsync,fdatasync,syncfs,rename,renameat,renameat2
}

# the first line of trace $1 that fsyncs (or fdatasyncs) path $2, or the
# temporary name a file written atomically had (DIR/.NAME.tmpPID); 0 if none
first_sync() {
	awk -v p="$2" 'BEGIN { i = match(p, /\/[^\/]*$/); tmp = substr(p, 1, i) "." substr(p, i + 1) ".tmp" }
		index($0, "sync(") && (index($0, "<" p ">") || index($0, "<" tmp)) { n = NR; exit }
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
	xosd_untrace
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
	# the images and the copies were written out by the dump's child, not
	# in xosd's loop (which a big version would hold for seconds)
	run grep -c "^$XOSD_PID  *f[a-z]*sync(.*/\.new-1/\(images\|upper\)" "$t"
	assert_output 0
	run grep -c "f[a-z]*sync(.*/\.new-1/images/" "$t"
	[ "$output" -gt 5 ]
	# the images, the copies of the layer and spool, the version's own directory
	[ -f "$v/upper/tmp/d/e/f" ]
	[ "$(find "$v/images" -type f | wc -l)" -gt 5 ]
	[ "$n" -gt 10 ]
	# and the job goes on
	wait_state "$id" RUNNING
	ticking "$id"
}

@test "with sync_writes = false a version's images are not fsynced" {
	printf 'sync_writes = false\n' >"$BATS_TEST_TMPDIR/xosd.conf"
	xos_start --config "$BATS_TEST_TMPDIR/xosd.conf"
	id=$(xrun -d -- sh -c "$LOOP")
	wait_state "$id" RUNNING
	trace_xosd "$BATS_TEST_TMPDIR/trace"
	run xcheckpoint --stop "$id"
	assert_success
	xosd_untrace
	[ -f "$(store)/$id/1/manifest.json" ]
	run grep -c "sync(.*/$id/\.new-1/images/" "$BATS_TEST_TMPDIR/trace"
	assert_output 0
	run xrestart "$id"
	assert_success
	wait_state "$id" RUNNING
}


@test "the loader replaced on the host while a job runs: checkpoint and restart, kill and restart from a version, still work" {
	xos_start
	xosd_stop
	ld="$XOS_TMP/bin/xos-loader"
	mkdir -p "${ld%/*}"
	cp "$XOS_BUILD/xos-loader" "$ld"
	xosd_launch --loader "$ld"
	id=$(xrun -d -- sh -c "$LOOP")
	wait_state "$id" RUNNING
	ticking "$id"
	run xcheckpoint "$id"
	assert_success
	# an upgrade: other bytes renamed over the path the daemon was given
	cp "$ld" "$ld.new"
	printf '\0' >>"$ld.new"
	mv -f "$ld.new" "$ld"
	run xcheckpoint --stop "$id"
	assert_success
	run xrestart "$id"
	assert_success
	wait_state "$id" RUNNING
	ticking "$id"
	# killed, restarted from its first version
	xkill -s KILL "$id"
	run xwait "$id"
	assert_equal "$status" 137
	run xrestart "$id" 1
	assert_success
	wait_state "$id" RUNNING
	ticking "$id"
	# the job's container runs its own copy, the daemon's, by content
	copy="$XOS_TMP/state/loader/$(job_field "$id" .loader)"
	[ -x "$copy" ]
	assert_equal "$(sha256sum <"$copy")" "$(sha256sum <"$XOS_BUILD/xos-loader")"
	# a new job runs the new loader; both copies stay while their jobs exist
	id2=$(xrun -d -- sh -c "$LOOP")
	wait_state "$id2" RUNNING
	ticking "$id2"
	assert_equal "$(sha256sum <"$XOS_TMP/state/loader/$(job_field "$id2" .loader)")" \
		"$(sha256sum <"$ld")"
	[ "$(find "$XOS_TMP/state/loader" -type f | wc -l)" -eq 2 ]
	[ -x "$copy" ]
}
