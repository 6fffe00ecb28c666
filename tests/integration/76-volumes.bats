#!/usr/bin/env bats
# Job filesystems: disk and inode limits of the writable layer, volumes (-v),
# the owner's home directory and the working directory xrun was started in.

load helpers
bats_require_minimum_version 1.5.0

VUSER=xosvol
VUID=4243

setup() {
	xos_start
	# an account with a home directory inside this test's directory
	VHOME="$XOS_TMP/home/$VUSER"
	mkdir -p "$VHOME/proj"
	# (one an interrupted run left has its home elsewhere: this test's now)
	if id -u "$VUSER" >/dev/null 2>&1; then
		usermod -d "$VHOME" "$VUSER"
	else
		useradd -M -d "$VHOME" -s /usr/sbin/nologin -u "$VUID" "$VUSER"
	fi
	MADE_VUSER=1
	chmod 0711 "$XOS_TMP/home"
	chown -R "$VUID:$VUID" "$VHOME"
	chmod 0750 "$VHOME"
}

teardown() {
	xos_teardown
	if [ -n "${MADE_VUSER:-}" ]; then
		userdel "$VUSER" 2>/dev/null || true
	fi
}

# as_user DIR CMD...: run an xos command as the test account, in DIR.
# disk_usage_at_least JOB BYTES: xps shows at least BYTES in the job's layer
disk_usage_at_least() { [ "$(job_field "$1" .usage.disk)" -ge "$2" ] 2>/dev/null; }

as_user() {
	local dir=$1
	shift
	(cd "$dir" && setpriv --reuid "$VUID" --regid "$VUID" --clear-groups \
		env XOS_SOCKET="$XOS_SOCKET" HOME="$VHOME" "$@")
}

@test "--disk 4M: writing 8 MiB fails with ENOSPC inside the job, which goes on" {
	run xrun --disk 4M -- sh -c \
		'dd if=/dev/zero of=/tmp/big bs=1M count=8 2>&1; echo "dd=$?"; rm /tmp/big; echo more > /tmp/small && echo went-on'
	assert_success
	assert_output --partial "No space left on device"
	assert_output --partial "dd=1"
	assert_output --partial "went-on"
	# a job without limits is unaffected
	run xrun -- sh -c 'dd if=/dev/zero of=/tmp/big bs=1M count=8 2>/dev/null; echo "dd=$?"'
	assert_output "dd=0"
}

@test "--files 4: the job creates 4 files, the 5th fails, the job goes on" {
	run xrun --files 4 -- sh -c \
		'for i in 1 2 3 4 5; do touch /tmp/f$i 2>&1 || echo "no file $i"; done; echo went-on'
	assert_success
	assert_output --partial "No space left on device"
	assert_output --partial "no file 5"
	refute_output --partial "no file 4"
	assert_output --partial "went-on"
	run xrun -- sh -c 'for i in $(seq 1 50); do touch /tmp/f$i || exit 1; done; echo fifty'
	assert_output fifty
}

@test "bad --disk and --files values are refused before anything runs" {
	run xrun --disk lots -- true
	assert_equal "$status" 125
	assert_output --partial "Invalid --disk value 'lots'"
	run xrun --files 0 -- true
	assert_equal "$status" 125
	assert_output --partial "Invalid --files value"
	run xrun --disk 100K -- true
	assert_equal "$status" 125
	assert_output --partial "at least 1 MiB"
	run as_user / xrun --disk 100T -- true
	assert_equal "$status" 125
	assert_output --partial "At most --disk"
}

@test "xps shows how much of its writable layer a job uses" {
	id=$(xrun -d --disk 16M -- sh -c 'dd if=/dev/zero of=/tmp/x bs=1M count=3 2>/dev/null; sleep 100')
	wait_for 30 disk_usage_at_least "$id" $((3 << 20))
	[ "$(job_field "$id" .usage.files)" -ge 1 ]
	assert_equal "$(job_field "$id" .limits.disk)" $((16 << 20))
	run xps
	assert_output --regexp "3(\.[0-9])?M/16M"
	xkill "$id"
	xwait "$id" || true
}

@test "-v DIR:/data: the job reads and writes the user's files with the user's uid" {
	echo "from host" >"$VHOME/proj/in.txt"
	chown "$VUID:$VUID" "$VHOME/proj/in.txt"
	run as_user / xrun --no-home -v "$VHOME/proj:/data" -- sh -c 'cat /data/in.txt; id -u; echo out > /data/out.txt'
	assert_success
	assert_line "from host"
	assert_line "$VUID"
	assert_equal "$(stat -c %u:%g "$VHOME/proj/out.txt")" "$VUID:$VUID"
	assert_equal "$(cat "$VHOME/proj/out.txt")" out
}

@test ":ro volumes reject writes; relative sources are taken from the current directory" {
	mkdir -p "$XOS_TMP/ro"
	echo keep >"$XOS_TMP/ro/f"
	run bash -c "cd '$XOS_TMP' && xrun -v ro:/data:ro -- sh -c 'cat /data/f; echo x > /data/f'"
	assert_failure
	assert_line keep
	assert_output --partial "Read-only file system"
	assert_equal "$(cat "$XOS_TMP/ro/f")" keep
}

@test "forbidden volumes are refused with a clear error and nothing runs" {
	# another user's private directory
	run as_user / xrun -v /root:/x -- true
	assert_equal "$status" 125
	assert_output --partial "Volume /root: you may not access it"
	# a symlink of the user's pointing at a forbidden place
	ln -s /root "$VHOME/sneaky"
	run as_user / xrun -v "$VHOME/sneaky:/x" -- true
	assert_equal "$status" 125
	assert_output --partial "you may not access it"
	# a root-owned system directory, even for root, and through a symlink
	ln -s /etc "$XOS_TMP/etc-link"
	run xrun -v "$XOS_TMP/etc-link:/x" -- true
	assert_equal "$status" 125
	assert_output --partial "system or xos directory"
	# xos's own state
	run xrun -v "$XOS_TMP/state:/x" -- true
	assert_equal "$status" 125
	# targets outside the job's root or not absolute
	run xrun -v "$XOS_TMP:/a/../../x" -- true
	assert_equal "$status" 125
	assert_output --partial "may not contain '.' or '..'"
	run xrun -v "$XOS_TMP:x" -- true
	assert_equal "$status" 125
	assert_output --partial "must be absolute"
	run xrun -v "$XOS_TMP:/.xos/x" -- true
	assert_equal "$status" 125
	assert_output --partial reserved
	run xrun -v "$XOS_TMP" -- true
	assert_equal "$status" 125
	assert_output --partial "Invalid --volume"
	run xrun -v "$XOS_TMP/none:/x" -- true
	assert_equal "$status" 125
	assert_output --partial "does not exist"
	# nothing was started for any of them
	assert_equal "$(xps -a -q | wc -l)" 0
}

@test "from a directory under the owner's home, xrun runs there and files written belong to the owner" {
	run as_user "$VHOME/proj" xrun -- pwd
	assert_success
	assert_output "$VHOME/proj"
	run as_user "$VHOME/proj" xrun -- sh -c 'echo made > made.txt; id -u'
	assert_output "$VUID"
	assert_equal "$(stat -c %u "$VHOME/proj/made.txt")" "$VUID"
	assert_equal "$(cat "$VHOME/proj/made.txt")" made
	# outside any mounted directory the job starts in /
	run as_user / xrun -- pwd
	assert_output /
	# --no-home: the home directory is not there
	run as_user "$VHOME/proj" xrun --no-home -- sh -c 'pwd; ls '"$VHOME"' 2>&1 || echo absent'
	assert_line /
	assert_line absent
}

@test "volumes are unmounted when the job ends" {
	id=$(xrun -d -v "$XOS_TMP:/data" -- sleep 100)
	grep -q " $XOS_TMP/state/volatile/jobs/$id/vol/0 " /proc/self/mountinfo
	xkill "$id"
	xwait "$id" || true
	wait_for 30 no_job_mounts "$id"
}
