#!/usr/bin/env bats
# A short sample of the soak (tests/soak/soak.sh, `make soak`): 30 jobs of
# mixed kinds while xosd is killed twice; every job accounted for once,
# nothing left behind. The soak script runs a daemon of its own (state and
# run directories, bridge and nftables table under /tmp/PREFIX-soak.*) and
# tidies it up itself, also when it fails.

load helpers
bats_require_minimum_version 1.5.0

@test "soak sample: 30 jobs (attached, detached, units, checkpoint and restart, bridge), xosd killed twice: none lost, none doubled, no leftovers" {
	run env SOAK_JOBS=30 SOAK_KILLS=2 SOAK_TIMEOUT=600 XOS_BUILD="$XOS_BUILD" \
		XOS_TEST_PREFIX="$XOS_TEST_PREFIX-soak" "$XOS_ROOT/tests/soak/soak.sh"
	echo "$output" >&2
	assert_success
	assert_line --partial "soak: jobs submitted 30 "
	assert_line --partial "soak: xosd killed 2 times"
	assert_line --regexp "lost 0, doubled 0, not final 0, unknown 0"
	assert_line "soak: PASS"
	# the script's daemon left nothing: no directory of it under /tmp
	run compgen -G "/tmp/$XOS_TEST_PREFIX-soak.*"
	assert_failure
}
