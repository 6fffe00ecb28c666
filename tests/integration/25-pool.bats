#!/usr/bin/env bats
# (the jobs' shell commands are single-quoted: they expand in the job)
# shellcheck disable=SC2016
# The pool of prepared containers (issue 13, DECISIONS.md (as)): a job of the
# default settings starts in a container xosd made for its owner while it was
# idle; each serves one job; other settings take the cold path; the pool goes
# when xosd stops, and one left by a crashed xosd goes at the next start.

load helpers
bats_require_minimum_version 1.5.0

setup() {
	printf 'pool_size = 2\n' >"$BATS_TEST_TMPDIR/pool.conf"
	# (--debug: xosd says when a pooled container is ready to be claimed)
	xos_start --config "$BATS_TEST_TMPDIR/pool.conf" --debug
}
teardown() {
	# (the test that touches the host's /etc/group gives it its time back)
	[ -z "${GROUP_MTIME:-}" ] || touch -m -d "$GROUP_MTIME" /etc/group
	hold_reads_end
	xos_teardown
}

# The pooled containers (their ids) and those whose loader waits for a job.
pool_ids() {
	local m
	for m in "$XOS_TMP"/state/jobs/*/pool; do
		[ -e "$m" ] && basename "$(dirname "$m")"
	done
	return 0
}
# Ready: its loader waits, and xosd has seen its start end (a job that comes
# before that takes the cold path: on a busy machine the loader waits well
# before xosd hears of the start)
pool_ready_ids() {
	local id
	for id in $(pool_ids); do
		loader_waits "$id" &&
			grep -q "Pooled container $id is ready" "$XOS_TMP/xosd.log" && echo "$id"
	done
	return 0
}
pool_ready() { [ "$(pool_ready_ids | wc -l)" -ge "$1" ]; }
# The pool is made for the owner of the last cold job of the default settings.
warm_up() {
	run xrun -- /bin/true
	assert_success
	wait_for 60 pool_ready 2
}
in_list() { grep -qx "$1" <<<"$2"; }
not_in_list() { ! grep -qx "$1" <<<"$2"; }
loader_waits() { pgrep -f "^/.xos/loader -w $1\$" >/dev/null; }
loader_gone() { ! loader_waits "$1"; }
jobcg() { echo "/sys/fs/cgroup/$1/lxc.payload.xos-$2"; }

@test "a job of the default settings starts in a pooled container: its id, hostname and record; each container serves one job" {
	warm_up
	ids=$(pool_ready_ids)
	run xrun -- sh -c 'echo "$XOS_JOB_ID $(hostname)"'
	assert_success
	id=${output%% *}
	in_list "$id" "$ids"
	assert_equal "${output#* }" "${id:0:12}"
	assert_equal "$(job_field "$id" .state)" EXITED
	assert_equal "$(job_field "$id" .id)" "$id"
	[ -s "$XOS_TMP/state/jobs/$id/job.json" ]
	[ ! -e "$XOS_TMP/state/jobs/$id/pool" ]
	# its record names the loader copy its container ran, and the copy is there
	loader=$(job_field "$id" .loader)
	[[ "$loader" =~ ^[0-9a-f]{64}$ ]]
	[ -x "$XOS_TMP/state/loader/$loader" ]
	# the next job takes another one; the first is not in the pool again
	# (once the pool is full again: one made while the list is read would
	# be ready and served without being in it)
	wait_for 60 pool_ready 2
	ids=$(pool_ready_ids)
	not_in_list "$id" "$ids"
	run xrun -- sh -c 'echo "$XOS_JOB_ID"'
	assert_success
	in_list "$output" "$ids"
	[ "$output" != "$id" ]
	not_in_list "$id" "$(pool_ids)"
	wait_for 60 pool_ready 2
	not_in_list "$id" "$(pool_ids)"
	not_in_list "$output" "$(pool_ids)"
}

@test "a pooled job sees no other job's files, processes, addresses or limits" {
	# another job of the same owner, running, with files in its root and a limit
	a=$(xrun -d --memory 96M -- sh -c 'echo secret >/tmp/a-file; exec sleep 1000')
	wait_state "$a" RUNNING
	wait_for 30 test -e "$(job_rootfs "$(job_field "$a" .id)")/tmp/a-file"
	warm_up
	ids=$(pool_ready_ids)
	run xrun -- sh -c 'echo "$XOS_JOB_ID"; ls -A /tmp; cat /proc/[0-9]*/cmdline | tr "\0" " "; echo; ls /sys/class/net'
	assert_success
	b=${lines[0]}
	in_list "$b" "$ids"
	refute_output --partial a-file
	refute_output --partial "sleep 1000"
	assert_equal "${lines[-1]}" lo
	# its memory limit is the default (none), not the other job's 96M
	a_full=$(job_field "$a" .id)
	assert_equal "$(cat "$(jobcg memory "$a_full")/memory.limit_in_bytes")" $((96 << 20))
	b_full=$(job_field "$b" .id)
	# (b has ended: its limit is read from a job like it, the next pooled one,
	# once the pool has one again: on a busy machine it may still be made)
	wait_for 60 pool_ready 1
	ids=$(pool_ready_ids)
	run xrun -d -- sleep 1000
	assert_success
	c=$(job_field "$output" .id)
	in_list "$c" "$ids"
	wait_state "$c" RUNNING
	[ "$(cat "$(jobcg memory "$c")/memory.limit_in_bytes")" -gt $((1 << 40)) ]
	[ "$b_full" != "$c" ]
}

@test "a job with other settings takes the cold path and gets its own settings" {
	warm_up
	ids=$(pool_ready_ids)
	run xrun -d --memory 64M --name cold1 -- sleep 1000
	assert_success
	id=$(job_field "$output" .id)
	not_in_list "$id" "$ids"
	wait_state "$id" RUNNING
	assert_equal "$(cat "$(jobcg memory "$id")/memory.limit_in_bytes")" $((64 << 20))
	# the pool is as it was
	assert_equal "$(pool_ready_ids | sort)" "$(sort <<<"$ids")"
	run xrun --disk 2G -- sh -c 'echo "$XOS_JOB_ID"'
	assert_success
	not_in_list "$output" "$ids"
}

@test "the pooled containers go when xosd stops" {
	warm_up
	ids=$(pool_ready_ids)
	xosd_stop
	for id in $ids; do
		[ ! -e "$XOS_TMP/state/jobs/$id" ]
		[ ! -e "$XOS_TMP/state/volatile/lxc/xos-$id" ]
		loader_gone "$id"
	done
	assert_equal "$(job_mounts)" ""
	assert_equal "$(xos_job_cgroups)" ""
}

@test "pooled containers left by a killed xosd are removed at its next start and never serve a job" {
	warm_up
	ids=$(pool_ready_ids)
	kill -9 "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	XOSD_PID=
	# they outlive the killed daemon
	for id in $ids; do loader_waits "$id"; done
	# the next xosd (another configuration: no pool) removes them first
	xosd_launch
	for id in $ids; do
		wait_for 30 loader_gone "$id"
		[ ! -e "$XOS_TMP/state/jobs/$id" ]
		[ ! -e "$XOS_TMP/state/volatile/lxc/xos-$id" ]
		assert_equal "$(job_mounts "$id")" ""
	done
	grep -q "Removing pooled container" "$XOS_TMP/xosd.log"
	run xrun -- sh -c 'echo "$XOS_JOB_ID"'
	assert_success
	not_in_list "$output" "$ids"
}

@test "a pool made before the host's accounts changed is not used after" {
	warm_up
	ids=$(pool_ready_ids)
	GROUP_MTIME=$(stat -c %y /etc/group)
	touch -m /etc/group
	run xrun -- sh -c 'echo "$XOS_JOB_ID"'
	assert_success
	not_in_list "$output" "$ids"
	for id in $ids; do
		wait_for 30 loader_gone "$id"
	done
}

@test "a job started in a pooled container is checkpointed and restarted" {
	warm_up
	ids=$(pool_ready_ids)
	id=$(xrun -d -- sh -c 'i=0; while :; do i=$((i+1)); echo $i >>/tmp/count; sleep 0.1; done')
	full=$(job_field "$id" .id)
	in_list "$full" "$ids"
	count="$(job_rootfs "$full")/tmp/count"
	wait_lines "$count" 5
	run xcheckpoint --stop "$id"
	assert_success
	wait_state "$id" CHECKPOINTED
	n=$(wc -l <"$count")
	run xrestart "$id"
	assert_success
	wait_state "$id" RUNNING
	wait_lines "$count" $((n + 5))
	head -n $((n + 5)) "$count" | diff - <(seq 1 $((n + 5)))
}

@test "a loader replaced on the host: the copy the pooled containers run stays while they wait; the next job does not take one, it runs the new loader, and the pool goes" {
	xosd_stop
	ld="$XOS_TMP/bin/xos-loader"
	mkdir -p "${ld%/*}"
	cp "$XOS_BUILD/xos-loader" "$ld"
	printf 'pool_size = 2\nkeep_ended = 1\n' >"$BATS_TEST_TMPDIR/pool1.conf"
	xosd_launch --config "$BATS_TEST_TMPDIR/pool1.conf" --loader "$ld" --debug
	warm_up
	ids=$(pool_ready_ids)
	old=$(sha256sum "$ld" | cut -d' ' -f1)
	[ -x "$XOS_TMP/state/loader/$old" ]
	# an upgrade: other bytes renamed over the path; then jobs of other
	# settings (the cold path) end and are forgotten (keep_ended = 1), and
	# each forgetting removes the copies nothing runs
	cp "$ld" "$ld.new"
	printf '\0' >>"$ld.new"
	mv -f "$ld.new" "$ld"
	new=$(sha256sum "$ld" | cut -d' ' -f1)
	for _ in 1 2 3; do
		run xrun --memory 64M -- /bin/true
		assert_success
	done
	[ -x "$XOS_TMP/state/loader/$new" ]
	# the pooled containers still wait, on the old copy, which stays
	assert_equal "$(pool_ready_ids | sort)" "$(sort <<<"$ids")"
	[ -x "$XOS_TMP/state/loader/$old" ]
	# a job of the defaults takes none of them (made before the upgrade): it
	# runs the new loader, and they go
	id=$(xrun -d -- sleep 100)
	full=$(job_field "$id" .id)
	not_in_list "$full" "$ids"
	assert_equal "$(job_field "$id" .loader)" "$new"
	for p in $ids; do
		wait_for 30 loader_gone "$p"
	done
	xkill "$id"
}

@test "a node with a prestart hook keeps no pool: the hook is given each job's own record" {
	xosd_stop
	H="$XOS_TMP/hooks"
	mkdir -p "$H/prestart"
	printf '#!/bin/sh\njq -r .id >>"%s"\n' "$XOS_TMP/prestart.ids" >"$H/prestart/10-ids"
	chmod 0755 "$H/prestart/10-ids"
	printf 'pool_size = 2\nhooks_dir = %s\n' "$H" >"$BATS_TEST_TMPDIR/hooks.conf"
	xosd_launch --config "$BATS_TEST_TMPDIR/hooks.conf" --debug
	for _ in 1 2 3; do
		run xrun -- /bin/true
		assert_success
		sleep 0.3 # (idle: a pool would be filled now)
	done
	assert_equal "$(pool_ids)" ""
	assert_equal "$(sort "$XOS_TMP/prestart.ids")" "$(xps -a --json | jq -r '.[].id' | sort)"
	# the prestart hooks gone: the pool comes back (looked at again within 10 s)
	rm -r "$H/prestart"
	run xrun -- /bin/true
	wait_for 60 pool_ready 2
}

# strace, attached to the pooled loaders, holds back each of their reads
# (recvfrom) by 300 ms: xosd's answer to a report is there when the loader
# first looks, in the same turn of its loop as the unit's start
STRACE_PIDS=()
hold_reads() {
	local id pid
	for id in "$@"; do
		pid=$(pgrep -f "^/.xos/loader -w $id\$")
		strace -q -p "$pid" -e trace=recvfrom -e inject=recvfrom:delay_enter=300000 \
			-o /dev/null &
		STRACE_PIDS+=($!)
		wait_for 30 traced "$pid"
	done
}
traced() { [ "$(awk '/^TracerPid:/ {print $2}' "/proc/$1/status" 2>/dev/null)" != 0 ]; }
hold_reads_end() {
	local p
	for p in "${STRACE_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	STRACE_PIDS=()
}

@test "a pooled container whose first unit fails at exec ends with it, though its report was answered in the turn that started it" {
	warm_up
	ids=$(pool_ready_ids)
	# shellcheck disable=SC2086
	hold_reads $ids
	id=$(xrun -d -- /etc/passwd)
	run xwait "$id"
	assert_equal "$status" 126
	full=$(job_field "$id" .id)
	in_list "$full" "$ids"
	# its loader leaves (it waited for a first unit for ever)
	wait_for 30 loader_gone "$full"
	wait_for 30 grep -q "Container of job $full ended" "$XOS_TMP/xosd.log"
	# and a missing program (127): the same
	wait_for 60 pool_ready 2
	ids=$(pool_ready_ids)
	hold_reads_end
	# shellcheck disable=SC2086
	hold_reads $ids
	id=$(xrun -d -- /no/such/program)
	run -127 xwait "$id"
	assert_equal "$status" 127
	full=$(job_field "$id" .id)
	in_list "$full" "$ids"
	wait_for 30 loader_gone "$full"
	hold_reads_end
}

@test "the metrics count the pool: its ready containers and the jobs that took one" {
	xosd_stop
	sock="$XOS_TMP/run/metrics.sock"
	printf 'pool_size = 2\nmetrics_socket = %s\n' "$sock" >"$BATS_TEST_TMPDIR/metrics.conf"
	xosd_launch --config "$BATS_TEST_TMPDIR/metrics.conf" --debug
	scrape() { curl -sf --max-time 10 --unix-socket "$sock" http://xosd/metrics; }
	warm_up
	m=$(scrape)
	grep -qx 'xos_pool_containers{state="ready"} 2' <<<"$m"
	grep -qx 'xos_pool_claims_total 0' <<<"$m" # (the first job made the pool)
	run xrun -- true
	assert_success
	run xrun --memory 64M -- true # (other settings: no pooled container)
	assert_success
	grep -qx 'xos_pool_claims_total 1' <<<"$(scrape)"
	wait_for 60 pool_ready 2
	grep -qx 'xos_pool_containers{state="ready"} 2' <<<"$(scrape)"
}

# pooled containers made for user xostest (its id is mapped through as itself)
pool_ready_of() {
	local id
	for id in $(pool_ready_ids); do
		if grep -q "^lxc.idmap = u 4242 4242 1$" "$XOS_TMP/state/volatile/lxc/xos-$id/config" 2>/dev/null; then
			[ "$1" = xostest ] && echo "$id"
		else
			[ "$1" = root ] && echo "$id"
		fi
	done
	return 0
}
pool_shared() { [ -n "$(pool_ready_of root)" ] && [ -n "$(pool_ready_of xostest)" ]; }
as_xostest() {
	(cd /tmp && setpriv --reuid 4242 --regid 4242 --clear-groups env XOS_SOCKET="$XOS_SOCKET" \
		"$XOS_BUILD/$1" "${@:2}")
}

@test "two owners share the pool: each keeps its share ready, and a job takes only a container of its own owner" {
	xos_test_user
	warm_up
	# another user's first job starts cold; the pool is then shared
	run as_xostest xrun -- id -u
	assert_success
	assert_output 4242
	wait_for 60 pool_shared
	mine=$(pool_ready_of root)
	theirs=$(pool_ready_of xostest)
	run xrun -- sh -c 'echo "$XOS_JOB_ID $(id -u)"'
	assert_success
	in_list "${output%% *}" "$mine"
	assert_equal "${output#* }" "$(id -u nobody)"
	run as_xostest xrun -- sh -c 'echo "$XOS_JOB_ID $(id -u)"'
	assert_success
	in_list "${output%% *}" "$theirs"
	assert_equal "${output#* }" 4242
	# turn about again: both still served from the pool
	wait_for 60 pool_shared
	theirs=$(pool_ready_of xostest)
	run as_xostest xrun -- sh -c 'echo "$XOS_JOB_ID"'
	in_list "$output" "$theirs"
}
