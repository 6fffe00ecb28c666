#!/usr/bin/env bats
# pam_xos through the real PAM stack (issue 12, acceptance 6): pamtester
# with a PAM service of the test's own, answered by tests/tools/pam-login.py
# with certificates the openssl command made (tests/tools/mkcerts.sh).

load helpers
load vo
bats_require_minimum_version 1.5.0

POOL="700200-700299"

setup() {
	command -v pamtester >/dev/null || skip "pamtester is not installed (scripts/setup.sh installs it)"
	[ -e "$XOS_BUILD/pam_xos.so" ] || skip "pam_xos.so was not built (libpam0g-dev missing)"
	vo_homes
	VO_CONF="$BATS_TEST_TMPDIR/xosd.conf"
	VO_DIR="$BATS_TEST_TMPDIR/vo.d"
	mkdir "$VO_DIR"
	SESSION_CG="$XOS_TEST_PREFIX.pam.$$.$BATS_TEST_NUMBER"
	PAM_SERVICE="xos-test-$$-$BATS_TEST_NUMBER"
	RECORD="$BATS_TEST_TMPDIR/session"
}

teardown() {
	rm -f "/etc/pam.d/$PAM_SERVICE"
	xos_teardown
	rm -rf "$VO_HOMES"
	# the VO cgroups go with xosd's stop: none is left in any hierarchy
	local h
	for h in memory cpu pids unified ""; do
		if [ -e "/sys/fs/cgroup/$h/$SESSION_CG" ]; then
			echo "left behind: /sys/fs/cgroup/$h/$SESSION_CG" >&2
			find "/sys/fs/cgroup/$h/$SESSION_CG" -depth -type d -exec rmdir {} + 2>/dev/null
			return 1
		fi
	done
}

# pam_start_xosd: a private xosd serving biomed and physics, sessions in
# SESSION_CG; biomed's policy caps the VO at 300 MiB and 150 pids
pam_start_xosd() {
	printf 'vo_memory = 300M\nvo_pids = 150\n' >"$VO_DIR/biomed.conf"
	vo_conf_lines "vo_policy_dir = $VO_DIR" "session_cgroup = $SESSION_CG" >"$VO_CONF"
	xos_start --config "$VO_CONF"
	# the service: pam_xos, then a "shell" recording where it was born
	cat >"$BATS_TEST_TMPDIR/record.sh" <<-EOF
		#!/bin/sh
		{ echo "user=\$PAM_USER"; cat /proc/self/cgroup; } >"$RECORD"
	EOF
	chmod 0755 "$BATS_TEST_TMPDIR/record.sh"
	cat >"/etc/pam.d/$PAM_SERVICE" <<-EOF
		auth     required $XOS_BUILD/pam_xos.so socket=$XOS_SOCKET
		account  required $XOS_BUILD/pam_xos.so socket=$XOS_SOCKET
		session  required $XOS_BUILD/pam_xos.so socket=$XOS_SOCKET
		session  required pam_exec.so $BATS_TEST_TMPDIR/record.sh
	EOF
}

pam_login() {
	(cd "$VO_CERTS" && python3 "$XOS_ROOT/tests/tools/pam-login.py" "$PAM_SERVICE" "$@")
}

# the cgroup file FILE of the VO's session cgroup in hierarchy H (v1) or the
# unified one
vo_cg_file() {
	local h=$1 f=$2
	if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
		cat "/sys/fs/cgroup/$SESSION_CG/vo-biomed/$f"
	else
		cat "/sys/fs/cgroup/$h/$SESSION_CG/vo-biomed/$f"
	fi
}

@test "pam_xos through pamtester: a valid credential maps the account; the session's shell runs in the VO's cgroup with its limits" {
	pam_start_xosd
	run pam_login grid alice.pem alice.key authenticate acct_mgmt open_session close_session
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"successfully authenticated"* ]]
	[[ "$output" == *"successfully opened a session"* ]]
	# the mapped account: a pool account of biomed, leased in xosd's state
	run grep -x "user=xos-biomed-001" "$RECORD"
	[ "$status" -eq 0 ]
	grep -q '^account xos-biomed-001 ' "$XOS_TMP/state/accounts"
	# the shell's cgroups: the VO's, in every hierarchy that carries a limit
	cat "$RECORD"
	if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
		grep -qx "0::/$SESSION_CG/vo-biomed" "$RECORD"
		[ "$(vo_cg_file "" memory.max)" = $((300 * 1024 * 1024)) ]
	else
		grep -Eq "^[0-9]+:memory:/$SESSION_CG/vo-biomed\$" "$RECORD"
		grep -Eq "^[0-9]+:pids:/$SESSION_CG/vo-biomed\$" "$RECORD"
		[ "$(vo_cg_file memory memory.limit_in_bytes)" = $((300 * 1024 * 1024)) ]
	fi
	[ "$(vo_cg_file pids pids.max)" = 150 ]
	grep -q "Session of xos-biomed-001 (VO biomed)" "$XOS_TMP/xosd.log"
	# the same identity, the same account next time
	run pam_login grid alice.pem alice.key authenticate acct_mgmt
	[ "$status" -eq 0 ]
	[ "$(grep -c '^account ' "$XOS_TMP/state/accounts")" = 1 ]
}

@test "pam_xos refuses a bad credential with its reason, and opens nothing" {
	pam_start_xosd
	local cases=(
		"expired.pem expired.key|expired on 2020-02-01"
		"revoked.pem revoked.key|has been revoked by its CA"
		"foreign.pem foreign.key|a CA this node does not trust"
		"alice.pem bob.key|not signed with the key of the certificate"
	)
	for c in "${cases[@]}"; do
		read -r cert key <<<"${c%%|*}"
		run pam_login grid "$cert" "$key" authenticate open_session
		echo "$cert: $output"
		[ "$status" -ne 0 ]
		[[ "$output" == *"${c#*|}"* ]]
		[[ "$output" != *"successfully authenticated"* ]]
	done
	[ ! -e "$RECORD" ]
	[ ! -e "$XOS_TMP/state/accounts" ]
	[ ! -e "/sys/fs/cgroup/memory/$SESSION_CG" ] && [ ! -e "/sys/fs/cgroup/$SESSION_CG" ]
}

@test "pam_xos sessions: only root opens them; a local account's session is not a VO's" {
	pam_start_xosd
	# a local account without a grid login: pam_xos leaves its session alone
	run pamtester "$PAM_SERVICE" root open_session close_session
	echo "$output"
	[ "$status" -eq 0 ]
	grep -qx "user=root" "$RECORD"
	run ! grep -q "$SESSION_CG" "$RECORD"
	# a user asking xosd for a session of a pool account is refused
	xos_test_user
	run setpriv --reuid 4242 --regid 4242 --clear-groups /usr/bin/python3 -c '
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(sys.argv[1])
s.sendall(b"{\"v\":1,\"op\":\"session_open\",\"user\":\"xos-biomed-001\",\"vo\":\"biomed\"}\n")
print(s.makefile().readline())' "$XOS_SOCKET"
	echo "$output"
	[[ "$output" == *"Only root's PAM stack (pam_xos) opens sessions"* ]]
	[ ! -e "/sys/fs/cgroup/memory/$SESSION_CG" ] && [ ! -e "/sys/fs/cgroup/$SESSION_CG" ]
}
