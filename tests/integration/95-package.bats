#!/usr/bin/env bats
# The Debian package (make deb), the service protocol (sd_notify, journal
# priorities, jobs kept across a stop) and the bash completion.

load helpers
bats_require_minimum_version 1.5.0

DEB_DIR=$XOS_ROOT/build-deb

teardown() {
	if [ -n "${NOTIFY_PY_PID:-}" ]; then
		kill "$NOTIFY_PY_PID" 2>/dev/null || true
		wait "$NOTIFY_PY_PID" 2>/dev/null || true
	fi
	xos_teardown
}

# The package is built once per build tree (make deb is incremental); the
# sanitizer pass of run-all.sh builds the same package: it checks it once.
deb_tests() {
	[ "$XOS_BUILD" = "$XOS_ROOT/build" ] || skip "package tests run in the plain build's pass"
	command -v dpkg-deb >/dev/null || skip "dpkg-deb not installed"
}

@test "make deb builds a package that lintian passes (apart from explained overrides)" {
	deb_tests
	run compgen -G "$DEB_DIR/xos_*.deb"
	[ -z "$output" ] || rm -f "$DEB_DIR"/xos_*.deb
	run make -C "$XOS_ROOT" deb
	echo "$output"
	assert_success
	[ -n "$(compgen -G "$DEB_DIR/xos_*.deb")" ]
	if command -v lintian >/dev/null; then
		# make deb ran lintian, failing on errors and warnings
		assert_line "lintian: no errors or warnings"
		# and every override it honoured carries a comment
		while read -r tag; do
			grep -B1 -F -- "$tag" "$XOS_ROOT/dist/debian/lintian-overrides" | head -n 1 |
				grep -q '^#' || fail "lintian override without a comment: $tag"
		done < <(grep -v '^#' "$XOS_ROOT/dist/debian/lintian-overrides" | grep .)
	fi
}

@test "the package holds the daemon, commands, loader, unit, completion, conffiles" {
	deb_tests
	[ -n "$(compgen -G "$DEB_DIR/xos_*.deb")" ] || make -C "$XOS_ROOT" deb >/dev/null
	deb=$(compgen -G "$DEB_DIR/xos_*.deb" | head -n 1)
	run dpkg-deb -c "$deb"
	assert_success
	for f in usr/sbin/xosd usr/bin/xos usr/bin/xtemplate usr/libexec/xos/xos-loader \
		usr/libexec/xos/xos-template-helper usr/libexec/xos/xos-criu-helper \
		etc/xos/xosd.conf etc/logrotate.d/xos \
		lib/systemd/system/xosd.service usr/share/bash-completion/completions/xos \
		usr/share/man/man8/xosd.8.gz usr/share/man/man1/xrun.1.gz \
		usr/share/man/man5/xosd.conf.5.gz usr/share/doc/xos/copyright \
		usr/share/doc/xos/README.Debian; do
		assert_line --regexp " \./$f\$"
	done
	# every command the Makefile links to xos (CLI_CMDS), so a new one is not forgotten
	cmds=$(sed -n 's/^CLI_CMDS *= *//p' "$XOS_ROOT/Makefile")
	[ -n "$cmds" ]
	for c in $cmds; do
		assert_line --regexp " \./usr/bin/$c -> xos\$"
		assert_line --regexp " \./usr/share/bash-completion/completions/$c -> xos\$"
	done
	# the compiled-in paths are the installed ones
	dpkg-deb -x "$deb" "$BATS_TEST_TMPDIR/root"
	run grep -c /usr/libexec/xos "$BATS_TEST_TMPDIR/root/usr/sbin/xosd"
	assert_success
	run dpkg-deb -f "$deb" Depends Recommends
	assert_output --partial "liblxc1"
	assert_output --partial "lxc"
	assert_output --partial "Recommends: criu (>= 4.2)"
	dpkg-deb -e "$deb" "$BATS_TEST_TMPDIR/ctl"
	run cat "$BATS_TEST_TMPDIR/ctl/conffiles"
	assert_output "$(printf '/etc/logrotate.d/xos\n/etc/xos/xosd.conf')"
	for s in postinst prerm postrm; do sh -n "$BATS_TEST_TMPDIR/ctl/$s"; done
	if command -v systemd-analyze >/dev/null; then
		# (only the unit's own syntax: this machine's systemd does not run)
		run systemd-analyze verify --man=no "$XOS_ROOT/dist/xosd.service"
		refute_output --partial "Unknown key"
		refute_output --partial "Failed to parse"
	fi
}

# notify_listen FILE: a datagram socket FILE.sock whose messages are appended to FILE
notify_listen() {
	NOTIFY_PY_SOCK="$1.sock"
	"$(command -v /usr/bin/python3 || command -v python3)" -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[2] + ".ready", "w").close()
while True:
    m = s.recv(4096).decode()
    with open(sys.argv[2], "a") as f:
        f.write(m + "\n--\n")
' "$NOTIFY_PY_SOCK" "$1" 3>&- &
	NOTIFY_PY_PID=$!
	wait_for 10 test -e "$1.ready"
}

has_msg() { [ -e "$1" ] && grep -qx -- "$2" "$1"; }

@test "xosd: READY=1 once it listens, STOPPING=1 on SIGTERM; a running job survives and is re-adopted" {
	msgs=$BATS_TEST_TMPDIR/notify
	notify_listen "$msgs"
	NOTIFY_SOCKET=$NOTIFY_PY_SOCK xos_start
	wait_for 10 has_msg "$msgs" READY=1
	assert has_msg "$msgs" "MAINPID=$XOSD_PID"
	refute has_msg "$msgs" STOPPING=1
	# the jobs' containers do not inherit the service manager's socket
	id=$(xrun -d -- sh -c 'tr "\0" "\n" </proc/1/environ; sleep 300')
	wait_state "$id" RUNNING
	init=$(job_init_pid "$id")
	[ -n "$init" ]
	run ! grep -q NOTIFY_SOCKET "/proc/$init/environ"
	kill -TERM "$XOSD_PID"
	wait_for 30 has_msg "$msgs" STOPPING=1
	wait_for 30 pid_gone "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	XOSD_PID=
	# the job lives on without a daemon, and the next xosd adopts it
	kill -0 "$init"
	xosd_launch
	assert_equal "$(job_field "$id" .state)" RUNNING
	assert_equal "$(job_init_pid "$id")" "$init"
	xkill -s KILL "$id"
	run xwait "$id"
	assert_equal "$status" 137
}

@test "xosd writes syslog priorities and no timestamps when stderr is the journal's stream" {
	XOS_TMP=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.XXXXXX")
	chmod 0711 "$XOS_TMP"
	export XOS_TMP XOS_SOCKET="$XOS_TMP/run/xosd.sock"
	: >"$XOS_TMP/xosd.log"
	JOURNAL_STREAM=$(stat -c %d:%i "$XOS_TMP/xosd.log") xosd_launch
	run cat "$XOS_TMP/xosd.log"
	assert_line --regexp '^<6>xosd: Listening on '
	refute_line --regexp '^[0-9]{4}-'
	# the same daemon logging to another file: no prefixes there
	xosd_stop
	JOURNAL_STREAM=1:1 xosd_launch
	run grep -c '^xosd: Listening on ' "$XOS_TMP/xosd.log"
	assert_output 1
}

# complete_line LINE: the words bash completion offers at the end of LINE
complete_line() {
	local line=$1
	read -ra COMP_WORDS <<<"$line"
	[[ $line == *" " ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE=$line
	COMP_POINT=${#line}
	COMPREPLY=()
	_xos
	printf '%s\n' "${COMPREPLY[@]}"
}

@test "bash completion: signals, options of every command, job ids and names, templates" {
	# shellcheck source=dist/bash-completion
	source "$XOS_ROOT/dist/bash-completion"
	run complete_line "xkill -s "
	assert_line KILL
	assert_line TERM
	assert_line USR1
	refute_line EXIT
	refute_line DEBUG
	run complete_line "xkill -s SIGK"
	assert_output SIGKILL
	run complete_line "xps --"
	assert_line --all
	assert_line --json
	assert_line --quiet
	assert_line --socket
	run complete_line "xos ps --"
	assert_line --all
	run complete_line "xrun --checkpoint-s"
	assert_line --checkpoint-signal
	run complete_line "xrun --net "
	assert_output "$(printf 'none\nbridge')"
	run complete_line "xtemplate "
	assert_line import
	# every command completes its --help
	for c in xrun xps xlogs xwait xkill xcheckpoint xrestart "xtemplate import" "xos run"; do
		run complete_line "$c --he"
		assert_output --help
	done

	xos_start
	id=$(xrun -d --name compl-job -- sleep 300)
	wait_state "$id" RUNNING
	run complete_line "xkill "
	assert_line "${id:0:12}"
	assert_line compl-job
	run complete_line "xos logs comp"
	assert_output compl-job
	# a daemon named on the command line is the one asked
	(
		unset XOS_SOCKET
		run complete_line "xwait --socket $XOS_TMP/run/xosd.sock "
		assert_line compl-job
	)
	run complete_line "xrun --template "
	assert_line host
	run complete_line "xtemplate show h"
	assert_output host
	xkill -s KILL "$id"
	xwait "$id" || true
}
