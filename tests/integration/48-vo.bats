#!/usr/bin/env bats
# Grid credentials and VO accounts (issue 12, acceptance 1, 2 and 5 as far as
# built): certificates made by the openssl command (tests/tools/mkcerts.sh),
# xlogin and its agent, pool accounts leased per VO and kept over an xosd
# restart, refusals with their reasons, and the session store's limits.
# (Names through NSS, policies, VO admins and PAM are not built yet.)

load helpers
load vo
bats_require_minimum_version 1.5.0

# outside root's subordinate ranges (xosd refuses an overlap)
POOL="700000-700099"
POOL_MIN=700000
POOL_MAX=700099

setup() {
	export XDG_RUNTIME_DIR="$BATS_TEST_TMPDIR/xdg"
	mkdir -m 0700 "$XDG_RUNTIME_DIR"
	vo_homes
	VO_CONF="$BATS_TEST_TMPDIR/xosd.conf"
}

teardown() {
	local pid
	xlogout >/dev/null 2>&1 || true
	if [ -s "$BATS_TEST_TMPDIR/leader" ]; then
		kill "$(cat "$BATS_TEST_TMPDIR/leader")" 2>/dev/null || true
	fi
	for pid in $(vo_agent_pids); do kill "$pid" 2>/dev/null || true; done
	xos_teardown
	rm -rf "$VO_HOMES" "$XDG_RUNTIME_DIR"
}

# vo_start [CONF LINE...]: a private xosd serving biomed and physics
vo_start() {
	vo_conf_lines "$@" >"$VO_CONF"
	xos_start --config "$VO_CONF"
}

vo_login() { (cd "$VO_CERTS" && xlogin "$@"); }

# account_field NAME FIELD: from xosd's lease state (3 uid, 4 gid, 5 vo)
account_field() {
	awk -v n="$1" -v f="$2" '$1 == "account" && $2 == n { print $f }' \
		"$XOS_TMP/state/accounts"
}

agent_sockets() { find "$XDG_RUNTIME_DIR" -name 'agent-*.sock' 2>/dev/null; }
has_agent() { [ -n "$(agent_sockets)" ]; }
no_agent() { [ -z "$(agent_sockets)" ]; }
not_logged_in() { ! xlogin --status >/dev/null 2>&1; }

@test "a member's xlogin, then xrun: a pool account of its VO, its home; the same account again, also after an xosd restart" {
	vo_start
	run vo_login --cert alice.pem --key alice.key
	[ "$status" -eq 0 ]
	[[ "$output" == *"Logged in as /O=biomed/CN=alice/title=member (VO biomed, member), account xos-biomed-001"* ]]
	uid=$(account_field xos-biomed-001 3)
	gid=$(account_field xos-biomed-001 4)
	[ "$uid" -ge "$POOL_MIN" ] && [ "$uid" -le "$POOL_MAX" ]
	run ! getent passwd "$uid" # xos's own state, not /etc/passwd
	run xrun -- id -u
	[ "$status" -eq 0 ] && [ "$output" = "$uid" ]
	run xrun -- id -G
	[ "$output" = "$gid" ]
	# the home: made on first use, the account's own
	home="$VO_HOMES/biomed/xos-biomed-001"
	[ "$(stat -c '%u %g %a' "$home")" = "$uid $gid 700" ]
	# shellcheck disable=SC2016 # (expanded in the job)
	run xrun -- sh -c 'echo "$HOME"; touch "$HOME/mine"'
	[ "$output" = "$home" ]
	[ "$(stat -c %u "$home/mine")" = "$uid" ]
	# the record carries identity and VO; xps shows them
	id=$(xps -a -q | head -n 1)
	[ "$(job_field "$id" .grid.vo)" = biomed ]
	[ "$(job_field "$id" .grid.dn)" = /O=biomed/CN=alice/title=member ]
	[ "$(job_field "$id" .grid.role)" = member ]
	run xps -a
	[[ "$output" == *"xos-biomed-001  biomed  /O=biomed/CN=alice/title=member"* ]]
	xlogout
	# another VO: its own account and group
	run vo_login --cert carol.pem --key carol.key
	[[ "$output" == *"account xos-physics-001"* ]]
	[ "$(account_field xos-physics-001 4)" != "$gid" ]
	xlogout
	# the lease survives a restart of xosd
	xosd_stop
	xosd_launch --config "$VO_CONF"
	run vo_login --cert alice.pem --key alice.key
	[[ "$output" == *"account xos-biomed-001"* ]]
	run xrun -- id -u
	[ "$output" = "$uid" ]
	run xrun -- cat "$home/../xos-biomed-001/mine"
	[ "$status" -eq 0 ]
}

@test "refused credentials: each says why, and nothing is made" {
	vo_start
	local cases=(
		"expired.pem expired.key|expired on 2020-02-01"
		"future.pem future.key|is not valid before 2099-12-01"
		"revoked.pem revoked.key|has been revoked by its CA"
		"foreign.pem foreign.key|a CA this node does not trust"
		"erin.pem erin.key|This node does not serve VO chem"
		"fake.pem fake.key|is no CA, yet it issued a certificate"
		"wrongvo.pem wrongvo.key|a VO's CA issues certificates of that VO only"
		"alice.pem bob.key|The key does not match the certificate"
	)
	for c in "${cases[@]}"; do
		read -r cert key <<<"${c%%|*}"
		run vo_login --cert "$cert" --key "$key"
		echo "$cert: $output"
		[ "$status" -ne 0 ]
		[[ "$output" == *"${c#*|}"* ]]
		not_logged_in
	done
	run vo_login --proxy alice-proxy.pem
	[ "$status" -ne 0 ]
	[[ "$output" == *"does not accept proxies (xosd.conf credential_proxies)"* ]]
	# a session whose leader is outside the PID namespace (getsid gives 0,
	# as for a process of no session)
	run unshare -fp --mount-proc sh -c 'cd "$1" && shift && exec "$@"' sh "$VO_CERTS" \
		"$XOS_BUILD/xlogin" --cert alice.pem --key alice.key
	[ "$status" -ne 0 ]
	[[ "$output" == *"belongs to no session this login could be tied to (session id 0)"* ]]
	# nothing made: no agent, lease, home or job
	no_agent
	[ ! -e "$XOS_TMP/state/accounts" ]
	[ -z "$(ls -A "$VO_HOMES")" ]
	[ -z "$(xps -a -q)" ]
	grep -q "Refused a grid login" "$XOS_TMP/xosd.log"
	# what xlogin never sends: a key that does not match, no challenge, a replay
	client="$XOS_ROOT/tests/tools/vo-client.py"
	run python3 "$client" "$XOS_SOCKET" mismatch "$VO_CERTS/alice.pem" "$VO_CERTS/bob.key"
	[[ "$output" == *"not signed with the key of the certificate"* ]]
	run python3 "$client" "$XOS_SOCKET" nochallenge "$VO_CERTS/alice.pem"
	[[ "$output" == *"No challenge on this connection"* ]]
	[ ! -e "$XOS_TMP/state/accounts" ]
	run python3 "$client" "$XOS_SOCKET" replay "$VO_CERTS/alice.pem" "$VO_CERTS/alice.key"
	echo "$output"
	[[ "$output" == *'"ok": false'*"not signed with the key of the certificate"* ]]
}

@test "proxy certificates where xosd.conf allows them: the member's account" {
	vo_start "credential_proxies = yes"
	run vo_login --proxy alice-proxy.pem
	[ "$status" -eq 0 ]
	[[ "$output" == *"(VO biomed, member, proxy), account xos-biomed-001"* ]]
	run xlogin --status
	[[ "$output" == *"Proxy:    yes"* ]]
	run xrun -- id -u
	[ "$output" = "$(account_field xos-biomed-001 3)" ]
}

@test "the session store: ten xruns ask nothing; not for other users or sessions; xlogout, expiry and the session's end end it" {
	vo_start
	run vo_login --cert alice.pem --key alice-enc.key --passphrase-fd 3 3<<<"secret"
	[ "$status" -eq 0 ]
	uid=$(account_field xos-biomed-001 3)
	run xlogin --status
	[[ "$output" == *"Identity: /O=biomed/CN=alice/title=member"* ]]
	[[ "$output" == *"VO:       biomed"* && "$output" == *"Role:     member"* ]]
	[[ "$output" == *"Expires:  "* ]]
	# ten xruns, no terminal and no stdin: nothing to ask a passphrase with
	for _ in $(seq 10); do
		run xrun -- id -u </dev/null
		[ "$status" -eq 0 ] && [ "$output" = "$uid" ]
	done
	# another user: neither the agent nor its directory
	xos_test_user
	as4242() { setpriv --reuid 4242 --regid 4242 --clear-groups env XDG_RUNTIME_DIR="$XDG_RUNTIME_DIR" XOS_SOCKET="$XOS_SOCKET" "$@"; }
	run as4242 "$XOS_BUILD/xlogin" --status
	[ "$status" -ne 0 ] && [ "$output" = "Not logged in" ]
	run as4242 ls "$XDG_RUNTIME_DIR/xos"
	[ "$status" -ne 0 ]
	run as4242 "$XOS_BUILD/xrun" -- id -u
	[ "$output" = 4242 ]
	# another session of the same user: not logged in, and refused by the agent
	run setsid "$XOS_BUILD/xlogin" --status
	[ "$output" = "Not logged in" ]
	run setsid "$XOS_BUILD/xrun" -- id -u
	[ "$output" != "$uid" ]
	sock=$(agent_sockets)
	run setsid python3 "$XOS_ROOT/tests/tools/vo-client.py" "$sock" agent "sign n 00"
	[ "$output" = "err This grid login belongs to another session" ]
	# xlogout
	run xlogout
	[ "$output" = "Logged out" ]
	not_logged_in
	no_agent
	run xrun -- id -u
	[ "$output" != "$uid" ]
	# expiry: a certificate valid for a few seconds
	"$XOS_ROOT/tests/tools/mkcerts.sh" "$VO_CERTS" short brief 15 >/dev/null 2>&1
	run vo_login --cert brief.pem --key brief.key
	[ "$status" -eq 0 ]
	run ! not_logged_in
	wait_for 60 not_logged_in
	no_agent
	# the end of the session: its leader exits, the agent goes
	leader_file="$BATS_TEST_TMPDIR/leader"
	# shellcheck disable=SC2016 # (expanded by that sh)
	(cd "$VO_CERTS" && setsid sh -c 'echo $$ >"$1" && xlogin --cert alice.pem --key alice.key >/dev/null && exec sleep 600' sh "$leader_file" </dev/null >/dev/null 2>&1 3>&- &)
	wait_for 30 has_agent
	leader=$(cat "$leader_file")
	[ "$(agent_sockets)" = "$XDG_RUNTIME_DIR/xos/agent-$leader.sock" ]
	wait_for 10 grep -qx sleep "/proc/$leader/comm"
	kill "$leader"
	wait_for 30 no_agent
	[ -z "$(vo_agent_pids)" ]
}

# nss CMD...: CMD with libnss_xos after files (nsswitch.conf bound over in a
# mount namespace of its own, gone with it), reading NSS_ACCOUNTS
nss() {
	unshare -m sh -c 'mount --bind "$1" /etc/nsswitch.conf && shift && exec "$@"' sh \
		"$BATS_TEST_TMPDIR/nsswitch.conf" env LD_LIBRARY_PATH="$XOS_BUILD" \
		XOS_NSS_ACCOUNTS="$NSS_ACCOUNTS" "$@"
}

@test "pool accounts' names: id and ls -l in the job; getent, id and ls -l on the node through libnss_xos; a damaged or missing state file gives no answer" {
	vo_start
	vo_login --cert alice.pem --key alice.key
	uid=$(account_field xos-biomed-001 3)
	gid=$(account_field xos-biomed-001 4)
	home="$VO_HOMES/biomed/xos-biomed-001"
	xrun -- touch "$home/f"
	# in the job (the host template): its own account files name the account
	run xrun -- id
	[ "$output" = "uid=$uid(xos-biomed-001) gid=$gid(xos-biomed) groups=$gid(xos-biomed)" ]
	run xrun -- ls -l "$home/f"
	[[ "$output" == *" xos-biomed-001 xos-biomed "* ]]
	run xrun -- sh -c "grep -c xos-biomed /etc/passwd /etc/group"
	[ "$output" = "$(printf '/etc/passwd:1\n/etc/group:1')" ]
	# on the node
	sed -E 's/^(passwd|group):.*/& xos/' /etc/nsswitch.conf >"$BATS_TEST_TMPDIR/nsswitch.conf"
	NSS_ACCOUNTS="$XOS_TMP/state/accounts"
	line="xos-biomed-001:x:$uid:$gid:/O=biomed/CN=alice/title=member:$home:/usr/sbin/nologin"
	run nss getent passwd xos-biomed-001
	[ "$status" -eq 0 ] && [ "$output" = "$line" ]
	run nss getent passwd "$uid"
	[ "$output" = "$line" ]
	run nss getent group xos-biomed
	[ "$output" = "xos-biomed:x:$gid:xos-biomed-001" ]
	run nss id xos-biomed-001
	[ "$output" = "uid=$uid(xos-biomed-001) gid=$gid(xos-biomed) groups=$gid(xos-biomed)" ]
	run nss ls -l "$home/f"
	[[ "$output" == *" xos-biomed-001 xos-biomed "* ]]
	# without the module: numbers only (the accounts are in no /etc file)
	run ls -l "$home/f"
	[[ "$output" == *" $uid $gid "* ]]
	# a damaged file: no answer rather than a wrong one
	cp "$NSS_ACCOUNTS" "$BATS_TEST_TMPDIR/damaged"
	echo "account xos-biomed-009 notanumber" >>"$BATS_TEST_TMPDIR/damaged"
	NSS_ACCOUNTS="$BATS_TEST_TMPDIR/damaged"
	run nss getent passwd xos-biomed-001
	[ "$status" -eq 2 ] && [ -z "$output" ]
	NSS_ACCOUNTS="$BATS_TEST_TMPDIR/missing"
	run nss getent passwd xos-biomed-001
	[ "$status" -eq 2 ] && [ -z "$output" ]
}
