#!/usr/bin/env bats
# Each job's own slice of root's subordinate ids (issue 10, section 4): no two
# jobs' roots are one host id; leases survive xosd and come back when a job
# and its checkpoint versions are gone; templates stay shared, shown with each
# job's ids through idmapped mounts.

load helpers
bats_require_minimum_version 1.5.0

setup() { :; }
teardown() { xos_teardown; }

leases() { echo "$XOS_TMP/state/volatile/idmap"; }
jobdir() { echo "$XOS_TMP/state/jobs/$(job_field "$1" .id)"; }
rundir() { echo "$XOS_TMP/state/volatile/jobs/$(job_field "$1" .id)"; }

# The largest range root has in FILE (what xosd uses): "START SIZE".
root_range() {
	awk -F: '($1 == "root" || $1 == "0") && $3 + 0 > size { start = $2; size = $3 + 0 }
		END { print start + 0, size + 0 }' "$1"
}

# host_ids JOB MAP: the host ids of the job's loader's MAP (uid_map, gid_map)
# that are not the job's own ids mapped to themselves, as "FIRST LAST" lines.
host_ids() {
	local init
	init=$(job_init_pid "$1")
	[ -n "$init" ] || return 1
	awk '$1 != $2 { print $2, $2 + $3 - 1 }' "/proc/$init/$2"
}

# host_root JOB: the host uid of the job's container root.
host_root() {
	awk '$1 == 0 { print $2 }' "/proc/$(job_init_pid "$1")/uid_map"
}
host_root_gid() {
	awk '$1 == 0 { print $2 }' "/proc/$(job_init_pid "$1")/gid_map"
}

# disjoint A B: no line "FIRST LAST" of file A overlaps one of file B.
disjoint() {
	local a1 a2 b1 b2
	while read -r a1 a2; do
		while read -r b1 b2; do
			if [ "$a1" -le "$b2" ] && [ "$b1" -le "$a2" ]; then
				echo "host ids $a1-$a2 and $b1-$b2 overlap" >&2
				return 1
			fi
		done <"$2"
	done <"$1"
}

# lease_of JOB: the name of the lease file holding JOB's id (its first uid).
lease_of() {
	local id f
	id=$(job_field "$1" .id)
	for f in "$(leases)"/*; do
		[ -f "$f" ] && [ "$(cat "$f")" = "$id" ] && basename "$f"
	done
	return 0
}

# wait_no_lease JOB: until JOB holds no lease (its container has gone; 10 s at most)
wait_no_lease() {
	local i
	for i in $(seq 1 200); do
		[ -z "$(lease_of "$1")" ] && return 0
		sleep 0.05
	done
	echo "job $1 still holds container ids $(lease_of "$1")" >&2
	return 1
}

# A daemon whose slices are so large that root's range holds one besides
# the shared one: a second job finds none.
start_one_slice() {
	local u g size
	read -r _ u < <(root_range /etc/subuid)
	read -r _ g < <(root_range /etc/subgid)
	size=$((u < g ? u : g))
	if [ "$size" -lt 131072 ]; then
		skip "root's subordinate range is too small ($size ids; scripts/setup.sh adds one)"
	fi
	XOS_TMP=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.XXXXXX")
	chmod 0711 "$XOS_TMP"
	export XOS_TMP XOS_SOCKET="$XOS_TMP/run/xosd.sock"
	# (no pool: a prepared container would take the one slice whenever it
	# is free, and the tests count the slices of jobs)
	printf 'idmap_slice = %s\npool_size = 0\n' $((size / 2)) >"$XOS_TMP/xosd.conf"
	xosd_launch --config "$XOS_TMP/xosd.conf"
}

@test "two jobs at once: disjoint host ids, neither on the shared slice; each job's xos/ and root are its own root's" {
	xos_start
	a=$(xrun -d -- sleep 100)
	b=$(xrun -d -- sleep 100)
	wait_state "$a" RUNNING
	wait_state "$b" RUNNING
	for m in uid_map gid_map; do
		host_ids "$a" "$m" >"$XOS_TMP/a.$m"
		host_ids "$b" "$m" >"$XOS_TMP/b.$m"
		[ -s "$XOS_TMP/a.$m" ] && [ -s "$XOS_TMP/b.$m" ]
		disjoint "$XOS_TMP/a.$m" "$XOS_TMP/b.$m"
	done
	ra=$(host_root "$a")
	rb=$(host_root "$b")
	[ "$ra" != "$rb" ]
	# the shared slice (the start of root's range) holds the templates' files
	read -r start _ < <(root_range /etc/subuid)
	[ "$ra" -ne "$start" ] && [ "$rb" -ne "$start" ]
	# each job's own directories belong to its own root
	assert_equal "$(stat -c '%u %g' "$(jobdir "$a")/xos")" "$ra $(host_root_gid "$a")"
	assert_equal "$(stat -c '%u %g' "$(jobdir "$b")/xos")" "$rb $(host_root_gid "$b")"
	assert_equal "$(stat -c %u "$(rundir "$a")/rootfs")" "$ra"
	assert_equal "$(stat -c %u "$(rundir "$b")/rootfs")" "$rb"
	# each holds a lease named after its first uid
	assert_equal "$(lease_of "$a")" "$ra"
	assert_equal "$(lease_of "$b")" "$rb"
}

@test "a job's root cannot write to another job's xos/ or root; it can to its own" {
	xos_start
	a=$(xrun -d -- sleep 100)
	b=$(xrun -d -- sleep 100)
	wait_state "$a" RUNNING
	wait_state "$b" RUNNING
	ra=$(host_root "$a")
	ga=$(host_root_gid "$a")
	as_a() { setpriv --reuid "$ra" --regid "$ga" --clear-groups "$@"; }
	run as_a touch "$(jobdir "$b")/xos/spool/planted"
	assert_failure
	assert_output --partial "Permission denied"
	run as_a touch "$(rundir "$b")/rootfs/planted"
	assert_failure
	assert_output --partial "Permission denied"
	[ ! -e "$(jobdir "$b")/xos/spool/planted" ] && [ ! -e "$(rundir "$b")/rootfs/planted" ]
	# (what a's root may do to its own: the refusals above are about owners)
	run as_a touch "$(rundir "$a")/rootfs/mine"
	assert_success
	rm -f "$(rundir "$a")/rootfs/mine"
}

no_leases() { [ -z "$(ls -A "$(leases)")" ]; }

@test "slices: a start with none free fails clearly; ended jobs and deleted versions give theirs back" {
	start_one_slice
	a=$(xrun -d -- sleep 100)
	wait_state "$a" RUNNING
	run xrun -- true
	assert_failure 125
	assert_output --partial "No free slice of container ids: all 1 are in use"
	assert_output --partial "xcheckpoint --delete"
	assert_equal "$(xps -a --json | jq 'length')" 1 # (no job was made)
	xkill "$a"
	xwait "$a" || true
	# the ended job's ids went (once its container was gone), and its xos/
	# directory is host root's now
	wait_no_lease "$a"
	run xrun -- true
	assert_success
	assert_equal "$(stat -c '%u %g %a' "$(jobdir "$a")/xos")" "0 0 700"
	# a job with a checkpoint version keeps its slice after it ended ...
	c=$(xrun -d -- sleep 100)
	wait_state "$c" RUNNING
	xcheckpoint "$c"
	xkill "$c"
	xwait "$c" || true
	run xrun -- true
	assert_failure 125
	assert_output --partial "No free slice of container ids"
	[ -n "$(lease_of "$c")" ]
	# ... until its last version is deleted
	xcheckpoint --delete 1 "$c"
	wait_no_lease "$c"
	run xrun -- true
	assert_success
	# (that job's own lease goes once its container is gone: after xrun's end)
	wait_for 30 no_leases
}

@test "a checkpointed job keeps its slice while stopped and is restored with it; the version records it" {
	[ "${XOS_TEST_ENGINE:-lxc}" = lxc ] || skip "its jobs cannot be checkpointed (XOS_TEST_ENGINE=$XOS_TEST_ENGINE)"
	xos_start
	id=$(xrun -d -- sh -c 'echo before >/tmp/f; sleep 100')
	wait_state "$id" RUNNING
	full=$(job_field "$id" .id)
	root=$(host_root "$id")
	cp "/proc/$(job_init_pid "$id")/uid_map" "$XOS_TMP/uid_map.before"
	run xcheckpoint --stop "$id"
	assert_success
	wait_state "$id" CHECKPOINTED
	# stopped, without a container: the lease stays
	assert_equal "$(lease_of "$id")" "$root"
	assert_equal "$(jq -r .record.idmap_base "$XOS_TMP/state/checkpoints/$full/1/manifest.json")" "$root"
	# the layer copy holds the slice's host ids
	assert_equal "$(stat -c %u "$XOS_TMP/state/checkpoints/$full/1/upper")" "$root"
	# another job meanwhile gets another slice
	other=$(xrun -d -- sleep 100)
	wait_state "$other" RUNNING
	[ "$(host_root "$other")" != "$root" ]
	run xrestart "$id"
	assert_success
	wait_state "$id" RUNNING
	assert_equal "$(cat "/proc/$(job_init_pid "$id")/uid_map")" "$(cat "$XOS_TMP/uid_map.before")"
	assert_equal "$(lease_of "$id")" "$root"
	run xrun --job "$id" -- sh -c 'cat /tmp/f; stat -c %u /tmp/f'
	assert_success
	assert_line --index 0 before
	assert_line --index 1 "$(id -u nobody)"
}

@test "kill -9 of xosd: the leases stay as they were; stale ones go and lost ones come back at the restart" {
	# (no pool: its containers' leases come and go on their own, and
	# 25-pool.bats shows those of a killed xosd go at its restart)
	printf 'pool_size = 0\n' >"$BATS_TEST_TMPDIR/nopool.conf"
	xos_start --config "$BATS_TEST_TMPDIR/nopool.conf"
	a=$(xrun -d -- sleep 100)
	b=$(xrun -d -- sleep 100)
	c=$(xrun -d -- sleep 100)
	wait_state "$a" RUNNING
	wait_state "$b" RUNNING
	wait_state "$c" RUNNING
	xcheckpoint --stop "$c"
	wait_state "$c" CHECKPOINTED
	ra=$(lease_of "$a")
	rb=$(lease_of "$b")
	rc=$(lease_of "$c")
	[ -n "$ra" ] && [ -n "$rb" ] && [ -n "$rc" ]
	ls "$(leases)" >"$XOS_TMP/leases.before"
	kill -9 "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	XOSD_PID=
	# meanwhile: a lease of a job that does not exist, one lost
	printf 0123456789abcdef >"$(leases)/999999999"
	rm "$(leases)/$rb"
	xosd_launch --config "$BATS_TEST_TMPDIR/nopool.conf"
	wait_state "$a" RUNNING
	ls "$(leases)" >"$XOS_TMP/leases.after"
	assert_equal "$(cat "$XOS_TMP/leases.after")" "$(cat "$XOS_TMP/leases.before")"
	assert_equal "$(lease_of "$a")" "$ra"
	assert_equal "$(lease_of "$b")" "$rb"
	assert_equal "$(lease_of "$c")" "$rc"
	assert_equal "$(host_root "$b")" "$rb"
	# a new job gets none of theirs
	d=$(xrun -d -- sleep 100)
	wait_state "$d" RUNNING
	rd=$(host_root "$d")
	[ "$rd" != "$ra" ] && [ "$rd" != "$rb" ] && [ "$rd" != "$rc" ]
	assert_equal "$(lease_of "$d")" "$rd"
	# the stopped job comes back on its own ids
	xrestart "$c"
	wait_state "$c" RUNNING
	assert_equal "$(host_root "$c")" "$rc"
}

@test "host template: root's files show as uid 0 in the job, not nobody; what the job writes is its own" {
	xos_start
	run xrun -- sh -c 'stat -c "%u:%g" / /usr /usr/bin/ls /etc/passwd; ls -ln /usr/bin | awk "NR > 1 && \$3 == 65534" | wc -l'
	assert_success
	assert_line --index 0 "0:0"
	assert_line --index 1 "0:0"
	assert_line --index 2 "0:0"
	assert_line --index 3 "0:0"
	assert_line --index 4 0
	run xrun -- sh -c 'echo x >/tmp/new; stat -c "%u:%g" /tmp/new; id -u; stat -c "%u %a" /tmp'
	assert_success
	assert_line --index 0 "$(id -u nobody):$(id -g nobody)"
	assert_line --index 2 "0 1777"
	# the host's files are untouched
	assert_equal "$(stat -c %u /usr/bin/ls)" 0
}

# (a root like 77-template-jobs.bats makes: Debian's busybox-static)
make_busybox_root() {
	local d=$1 a
	mkdir -p "$d/bin" "$d/etc" "$d/tmp" "$d/proc" "$d/sys" "$d/dev" "$d/home/app" "$d/home/u"
	cp /bin/busybox "$d/bin/busybox"
	for a in sh echo cat ls id stat touch sleep awk wc; do
		ln -s busybox "$d/bin/$a"
	done
	chmod 1777 "$d/tmp"
	chown 1000:1000 "$d/home/app"
	echo first >"$d/home/u/f"
	chown -R 4242:4242 "$d/home/u"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$d/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/etc/group"
}

@test "imported template: stored once on the shared ids, shown with each job's own; two jobs on it, two slices" {
	xos_start_static
	make_busybox_root "$XOS_TMP/bb"
	tar -C "$XOS_TMP/bb" --numeric-owner -cf "$XOS_TMP/bb.tar" .
	xtemplate import bb "$XOS_TMP/bb.tar"
	run xrun --template bb -- sh -c 'ls -ln /bin/busybox /etc/passwd | awk "{ print \$3, \$4 }"; stat -c "%u:%g" / /tmp /home/app; touch /tmp/new; stat -c %u:%g /tmp/new'
	assert_success
	assert_line --index 0 "0 0"
	assert_line --index 1 "0 0"
	assert_line --index 2 "0:0"
	assert_line --index 3 "0:0"
	assert_line --index 4 "1000:1000"
	assert_line --index 5 "$(id -u nobody):$(id -g nobody)"
	# on disk the files stay on the shared slice's ids, whatever job uses them
	read -r start _ < <(root_range /etc/subuid)
	assert_equal "$(stat -c %u "$XOS_TMP/state/templates/bb/rootfs/bin/busybox")" "$start"
	a=$(xrun -d --template bb -- sleep 100)
	b=$(xrun -d --template bb -- sleep 100)
	wait_state "$a" RUNNING
	wait_state "$b" RUNNING
	[ "$(host_root "$a")" != "$(host_root "$b")" ]
	run xrun --job "$a" -- stat -c %u /bin/busybox
	assert_output 0
	run xrun --job "$b" -- stat -c %u /bin/busybox
	assert_output 0
	# a file of the uid a job runs as is that user's: it may change it (its
	# job's own copy), the template's stays as it was
	xos_test_user
	run setpriv --reuid 4242 --regid 4242 --clear-groups env XOS_SOCKET="$XOS_SOCKET" \
		xrun --template bb -- sh -c 'stat -c %u:%g /home/u/f; echo more >>/home/u/f; cat /home/u/f'
	assert_success
	assert_line --index 0 4242:4242
	assert_line --index 1 first
	assert_line --index 2 more
	assert_equal "$(cat "$XOS_TMP/state/templates/bb/rootfs/home/u/f")" first
}
