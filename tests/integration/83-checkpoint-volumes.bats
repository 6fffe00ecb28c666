#!/usr/bin/env bats
# Checkpoint and restart of a job with a volume and its owner's home (issue 4,
# acceptance 8): it goes on appending to a file on the volume after a restart.

load helpers
bats_require_minimum_version 1.5.0

VUSER=xosckv
VUID=4244

setup() {
	xos_start
	VHOME="$XOS_TMP/home/$VUSER"
	mkdir -p "$VHOME" "$XOS_TMP/data"
	# (one an interrupted run left has its home elsewhere: this test's now)
	if id -u "$VUSER" >/dev/null 2>&1; then
		usermod -d "$VHOME" "$VUSER"
	else
		useradd -M -d "$VHOME" -s /usr/sbin/nologin -u "$VUID" "$VUSER"
	fi
	MADE_VUSER=1
	chmod 0711 "$XOS_TMP/home"
	chown "$VUID:$VUID" "$VHOME" "$XOS_TMP/data"
}

teardown() {
	xos_teardown
	if [ -n "${MADE_VUSER:-}" ]; then
		userdel "$VUSER" 2>/dev/null || true
	fi
}

as_user() {
	setpriv --reuid "$VUID" --regid "$VUID" --clear-groups env XOS_SOCKET="$XOS_SOCKET" "$@"
}

@test "acceptance 8: a job appending to a file on a volume and in its home is checkpointed, killed, restarted, and goes on appending" {
	# shellcheck disable=SC2016
	id=$(as_user xrun -d -v "$XOS_TMP/data:/data" -- sh -c \
		'i=0; while :; do i=$((i+1)); echo $i >>/data/count; echo $i >>"$HOME/count"; sleep 0.1; done')
	wait_lines "$XOS_TMP/data/count" 5
	wait_lines "$VHOME/count" 5
	run as_user xcheckpoint "$id"
	assert_success
	n=$(wc -l <"$XOS_TMP/data/count")
	as_user xkill -s KILL "$id"
	run as_user xwait "$id"
	assert_equal "$status" 137
	# the volume's staging mounts went with the container
	run grep "/jobs/$id/vol/" /proc/self/mountinfo
	assert_failure
	run as_user xrestart "$id"
	assert_success
	assert_equal "$(job_field "$id" .state)" RUNNING
	# appending goes on, on the volume and in the home, as the user
	wait_lines "$XOS_TMP/data/count" $((n + 10))
	wait_lines "$VHOME/count" $((n + 10))
	assert_equal "$(stat -c %u "$XOS_TMP/data/count")" "$VUID"
	run grep "/jobs/$id/vol/" /proc/self/mountinfo
	assert_success
	as_user xkill "$id"
	as_user xwait "$id" || true
}

@test "a restart whose volume the owner may no longer use is refused with a clear error; the job stays restorable" {
	id=$(as_user xrun -d --no-home -v "$XOS_TMP/data:/data" -- sh -c 'while :; do sleep 1; done')
	wait_state "$id" RUNNING
	run as_user xcheckpoint --stop "$id"
	assert_success
	assert_equal "$(job_field "$id" .state)" CHECKPOINTED
	chmod 0700 "$XOS_TMP/data"
	chown root:root "$XOS_TMP/data"
	run as_user xrestart "$id"
	assert_failure
	assert_output --partial "Volume $XOS_TMP/data: you may not access it"
	assert_equal "$(job_field "$id" .state)" CHECKPOINTED
	run grep "/jobs/$id/" /proc/self/mountinfo
	assert_failure
	chown "$VUID:$VUID" "$XOS_TMP/data"
	run as_user xrestart "$id"
	assert_success
	assert_equal "$(job_field "$id" .state)" RUNNING
	as_user xkill "$id"
	as_user xwait "$id" || true
}
