#!/usr/bin/env bats
# Fidelity (issue 16): a representative subset of CRIU's zdtm static programs
# (tests/integration/zdtm-jobs.list, one or more per kind of kernel object),
# each as an xos job of its own: checkpoint left running, SIGKILL, restart,
# checkpoint --stop, restart, SIGTERM, and the program must report PASS.
# Two jobs at a time. `make zdtm` (tests/zdtm/run.sh) runs the whole suite.

load helpers
bats_require_minimum_version 1.5.0

export XOS_ZDTM_DIR=${XOS_ZDTM_DIR:-/usr/local/lib/xos/zdtm}
LIST=${XOS_ZDTM_JOBS_LIST:-$BATS_TEST_DIRNAME/zdtm-jobs.list}
# shellcheck source=tests/zdtm/zdtm-lib.bash
. "$BATS_TEST_DIRNAME/../zdtm/zdtm-lib.bash"

setup() { xos_start; }
teardown() { xos_teardown; }

# run_kind KIND...: every program of these kinds, two jobs at a time; each
# must pass; prints what failed, with the step
run_kind() {
	local kinds=" $* " k n args out=$BATS_TEST_TMPDIR/zdtm failed
	mkdir -p "$out"
	[ -x "$XOS_ZDTM_DIR/pipe00" ] || fail "no zdtm programs in $XOS_ZDTM_DIR: run scripts/setup.sh (or scripts/build-zdtm.sh)"
	local names=() pids=() p
	while read -r k n args; do
		[[ $kinds == *" $k "* ]] || continue
		if why=$(zdtm_kernel_broken "$n") && [ -n "$why" ]; then
			echo "# $n not run: $why" >&3
			continue
		fi
		names+=("$n")
		[ -x "$XOS_ZDTM_DIR/$n" ] || fail "$n is not built: run scripts/build-zdtm.sh"
		# (two at a time: wait for the older of our own; xosd is a
		# background job of this shell too)
		if [ "${#pids[@]}" -ge 2 ]; then
			wait "${pids[0]}" || true
			pids=("${pids[@]:1}")
		fi
		(
			if why=$(zdtm_cr "$n" "$args" both); then
				echo PASS >"$out/$n"
			else
				echo "$why" >"$out/$n"
			fi
		) &
		pids+=($!)
	done < <(grep -v '^[[:space:]]*\(#\|$\)' "$LIST")
	for p in "${pids[@]}"; do wait "$p" || true; done
	[ "${#names[@]}" -gt 0 ] || fail "no program of kind $* in $LIST"
	failed=0
	for n in "${names[@]}"; do
		if [ "$(cat "$out/$n" 2>/dev/null)" != PASS ]; then
			echo "not PASS: $n: $(cat "$out/$n" 2>/dev/null)" >&2
			failed=1
		fi
	done
	[ "$failed" = 0 ]
	echo "# ${names[*]}" >&3
}

@test "the list covers at least 60 programs" {
	[ "$(grep -cv '^[[:space:]]*\(#\|$\)' "$LIST")" -ge 60 ] || [ -n "${XOS_ZDTM_JOBS_LIST:-}" ]
}

@test "pipes and FIFOs" {
	run_kind pipes fifos
}

@test "UNIX sockets (stream, datagram, unconnected, deleted, queued data, SCM_RIGHTS)" {
	run_kind unix-sockets
}

@test "TCP and UDP sockets on loopback (listening, connected, queues)" {
	run_kind inet-sockets
}

@test "SysV shared memory, semaphores and message queues" {
	run_kind sysv-ipc
}

@test "POSIX timers, itimers, timerfd; pending signals, sigaltstack, signalfd" {
	run_kind timers signals
}

@test "eventfd and epoll" {
	run_kind event-fds
}

@test "file locks (POSIX, flock, OFD)" {
	run_kind file-locks
}

@test "deleted files still open (ghost files, with holes, over 1 MiB)" {
	run_kind ghost-files
}

@test "pseudo-terminals" {
	run_kind ptys
}

@test "memory mappings, protections, copy-on-write" {
	run_kind memory
}

@test "threads, futexes; zombies, sessions, stopped tasks, vDSO, FPU state" {
	run_kind threads processes
}

@test "rlimits, cwd, environment, umask, seccomp, capabilities, file I/O" {
	run_kind misc
}
