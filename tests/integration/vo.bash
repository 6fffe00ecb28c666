# Shared set-up of the VO tests (48-vo, 48-vo-pam, 49-vo-policy): one set of
# certificates per file, made by the openssl command (tests/tools/mkcerts.sh),
# a homes directory per test, the xosd.conf lines of a node serving the VOs
# biomed and physics from a pool of uids, and the test's login agents.
# The loading file sets POOL (a uid range outside root's subordinate ranges).

setup_file() {
	export VO_CERTS="$BATS_FILE_TMPDIR/certs"
	"$XOS_ROOT/tests/tools/mkcerts.sh" "$VO_CERTS" >/dev/null 2>&1
}

teardown_file() {
	rm -rf "$VO_CERTS"
}

# vo_homes: VO_HOMES, where pool accounts get their homes; the accounts
# must reach them, so its parent is searchable by all
vo_homes() {
	VO_HOMES=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.homes.XXXXXX")
	chmod 0711 "$VO_HOMES"
}

# vo_conf_lines [CONF LINE...]: xosd.conf lines serving biomed and physics
vo_conf_lines() {
	echo "credential_trust_dir = $VO_CERTS/trust"
	echo "credential_vos = biomed, physics"
	echo "pool_uids = $POOL"
	echo "pool_home = $VO_HOMES"
	[ $# -eq 0 ] || printf '%s\n' "$@"
}

# vo_agent_pids: the login agents of this test (any session), listening
# under its XDG_RUNTIME_DIR
vo_agent_pids() {
	ss -xlpn 2>/dev/null | awk -v d="$XDG_RUNTIME_DIR/xos/" 'index($5, d) == 1' |
		grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}
