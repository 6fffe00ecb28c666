#!/usr/bin/env bats
# No local user can crash xosd, starve it of connections, or fill the node
# with a job's output.

load helpers
bats_require_minimum_version 1.5.0

setup() { xos_start; }
teardown() { xos_teardown; }

raw() { "$XOS_ROOT/tests/tools/rawsock.py" "$XOS_SOCKET" "$@"; }

@test "a request nested 350000 levels deep is refused and xosd keeps serving" {
	python3 -c 'import sys; n=350000; sys.stdout.write("{\"v\":1,\"op\":\"ps\",\"jobs\":" + "["*n + "]"*n + "}\n")' \
		>"$XOS_TMP/deep.json"
	run raw --file "$XOS_TMP/deep.json"
	assert_output --partial '"code":"bad_request"'
	assert_output --partial 'Request nested too deeply (limit 64)'
	kill -0 "$XOSD_PID"
	run xps
	assert_success
	# brackets inside a string are not nesting: the request is read (no such job)
	run raw <<<'{"v":1,"op":"ps","jobs":["[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]}'
	refute_output --partial 'nested too deeply'
	assert_output --partial '"code":"not_found"'
}
