#!/usr/bin/env bats
# No user can touch another user's job: volume targets never go through
# symlinks, xosd follows none in a job's xos/ directory, and names, id
# prefixes and counts only ever see the caller's own jobs. Two accounts,
# Alice and Bob, with homes inside this test's directory.

load helpers
bats_require_minimum_version 1.5.0

ALICE=xosiso1
AUID=4251
BOB=xosiso2
BUID=4252

make_account() { # NAME UID HOME
	mkdir -p "$3"
	# (one an interrupted run left has its home elsewhere: this test's now)
	if id -u "$1" >/dev/null 2>&1; then
		usermod -d "$3" "$1"
	else
		useradd -M -d "$3" -s /usr/sbin/nologin -u "$2" "$1"
	fi
	MADE_ACCOUNTS="${MADE_ACCOUNTS:-} $1"
	chown "$2:$2" "$3"
	chmod 0750 "$3"
}

setup() {
	if [[ "$BATS_TEST_DESCRIPTION" == bridge:* ]]; then
		# (its job runs on an imported template: the static loader, see
		# xos_start_static)
		xos_net_start --loader "$XOS_STATIC_LOADER"
	else
		xos_start
	fi
	mkdir -p "$XOS_TMP/home"
	chmod 0711 "$XOS_TMP/home"
	AHOME="$XOS_TMP/home/$ALICE"
	BHOME="$XOS_TMP/home/$BOB"
	make_account "$ALICE" "$AUID" "$AHOME"
	make_account "$BOB" "$BUID" "$BHOME"
	# a world-writable directory outside every job, as /tmp is
	mkdir -m 1777 "$XOS_TMP/outside"
}

teardown() {
	xos_teardown
	local u
	for u in ${MADE_ACCOUNTS:-}; do
		userdel "$u" 2>/dev/null || true
	done
	MADE_ACCOUNTS=
}

# make_busybox_root DIR: a minimal root made of Debian's busybox-static.
make_busybox_root() {
	local d=$1 a
	mkdir -p "$d/bin" "$d/etc" "$d/tmp" "$d/proc" "$d/sys" "$d/dev"
	cp /bin/busybox "$d/bin/busybox"
	for a in sh cat test; do
		ln -s busybox "$d/bin/$a"
	done
	chmod 1777 "$d/tmp"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$d/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/etc/group"
}

# as UID HOME DIR CMD...: run CMD as that account, in DIR
as() {
	local uid=$1 home=$2 dir=$3
	shift 3
	(cd "$dir" && setpriv --reuid "$uid" --regid "$uid" --clear-groups \
		env XOS_SOCKET="$XOS_SOCKET" HOME="$home" "$@")
}
as_alice() { as "$AUID" "$AHOME" "$@"; }
as_bob() { as "$BUID" "$BHOME" "$@"; }

# until none of the account's jobs is live (20 s at most)
wait_no_live() { # UID HOME
	local i
	for i in $(seq 1 400); do
		[ -z "$(as "$1" "$2" / xps -q)" ] && return 0
		sleep 0.05
	done
	echo "jobs of uid $1 still live: $(as "$1" "$2" / xps -q)" >&2
	return 1
}

@test "a volume target through the user's symlink is refused and nothing is made outside the job" {
	ln -s "$XOS_TMP/outside" "$AHOME/esc"
	mkdir "$AHOME/d"
	chown -h "$AUID:$AUID" "$AHOME/esc" "$AHOME/d"
	run as_alice "$AHOME" xrun -v "$AHOME/d:$AHOME/esc/pwn" -- true
	assert_equal "$status" 125
	msg=$output
	run ls -A "$XOS_TMP/outside"
	assert_output ""
	assert_equal "$msg" "xrun: Failed to start the job: Mount target $AHOME/esc/pwn: $AHOME/esc is a symlink, and xos never follows one to a mount target; give the path it points to"
	# a symlink of the job's own root (the host template's /bin -> usr/bin)
	run as_alice "$AHOME" xrun -v "$AHOME/d:/bin/xos-isol-t" -- true
	assert_equal "$status" 125
	assert_output --partial "Mount target /bin/xos-isol-t: /bin is a symlink"
	# a target below the home that is not a symlink works, and is the user's
	run as_alice "$AHOME" xrun -v "$AHOME/d:$AHOME/new/sub" -- sh -c "echo hi > $AHOME/new/sub/f"
	assert_success
	assert_equal "$(stat -c %u:%g "$AHOME/new/sub")" "$AUID:$AUID"
	assert_equal "$(cat "$AHOME/d/f")" hi
}

@test "a volume target through a symlink to another user's job plants nothing in its spool" {
	b=$(as_bob / xrun -d -- sleep 300)
	wait_state "$b" RUNNING
	spool="$XOS_TMP/state/jobs/$b/xos/spool"
	ln -s "$spool" "$AHOME/esc"
	mkdir "$AHOME/d"
	chown -h "$AUID:$AUID" "$AHOME/esc" "$AHOME/d"
	run as_alice "$AHOME" xrun -v "$AHOME/d:$AHOME/esc/2.out" -- true
	assert_equal "$status" 125
	[ ! -e "$spool/2.out" ]
	assert_output --partial "$AHOME/esc is a symlink"
	# Bob's next unit writes its output there as usual
	run as_bob / xrun --job "$b" -- echo still-mine
	assert_success
	assert_output still-mine
}

@test "a target inside a read-only volume is not made; inside a writable one, as its user" {
	mkdir "$AHOME/d" "$XOS_TMP/ro"
	echo hi >"$AHOME/d/f"
	chown -R "$AUID:$AUID" "$AHOME/d" "$XOS_TMP/ro"
	run as_alice / xrun --no-home -v "$XOS_TMP/ro:/data:ro" -v "$AHOME/d:/data/in" -- true
	assert_equal "$status" 125
	[ ! -e "$XOS_TMP/ro/in" ]
	assert_output --partial "Mount target /data/in is missing in the read-only volume at /data"
	mkdir "$XOS_TMP/ro/in"
	run as_alice / xrun --no-home -v "$XOS_TMP/ro:/data:ro" -v "$AHOME/d:/data/in" -- cat /data/in/f
	assert_success
	assert_output hi
	# nested writable volumes: the inner target is made in the outer volume
	mkdir "$XOS_TMP/rw"
	chown "$AUID:$AUID" "$XOS_TMP/rw"
	run as_alice / xrun --no-home -v "$XOS_TMP/rw:/data" -v "$AHOME/d:/data/a/b" -- cat /data/a/b/f
	assert_success
	assert_output hi
	assert_equal "$(stat -c %u "$XOS_TMP/rw/a/b")" "$AUID"
}

@test "xosd follows no symlink in a job's xos directory: xlogs shows nothing of another job" {
	b=$(as_bob / xrun -d -- echo BOB-SECRET)
	a=$(as_alice / xrun -d -- echo alice-out)
	as_bob / xwait "$b"
	as_alice / xwait "$a"
	x="$XOS_TMP/state/jobs/$a/xos"
	# what the container's root of Alice's job may do in its xos/, which it
	# owns: make the spool a link to Bob's
	mv "$x/spool" "$x/spool.real"
	ln -s "$XOS_TMP/state/jobs/$b/xos/spool" "$x/spool"
	chown -h "$(stat -c %u:%g "$x")" "$x/spool"
	run as_alice / xlogs "$a"
	refute_output --partial BOB-SECRET
	# its own output is where it was
	rm "$x/spool"
	mv "$x/spool.real" "$x/spool"
	run as_alice / xlogs "$a"
	assert_output alice-out
}

@test "a fifo in place of a job's output file does not block xosd" {
	a=$(as_alice / xrun -d -- echo alice-out)
	as_alice / xwait "$a"
	x="$XOS_TMP/state/jobs/$a/xos"
	rm "$x/spool/1.out"
	mkfifo "$x/spool/1.out"
	chown -h "$(stat -c %u:%g "$x")" "$x/spool/1.out"
	run timeout 10 setpriv --reuid "$AUID" --regid "$AUID" --clear-groups \
		env XOS_SOCKET="$XOS_SOCKET" xlogs "$a"
	xlogs_status=$status
	run timeout 10 xps -a -q
	ps_status=$status
	# (an xosd stuck in that open is freed by a writer, so that teardown works)
	timeout 5 sh -c "exec 3>'$x/spool/1.out'" 2>/dev/null || true
	[ "$xlogs_status" -ne 124 ]
	assert_equal "$ps_status" 0
}

@test "a job name that looks like an id is refused: Bob cannot hide Alice's job" {
	a=$(as_alice / xrun -d -- sleep 300)
	run as_bob / xrun -d --name "$a" -- sleep 300
	assert_equal "$status" 125
	assert_output --partial "not hex digits only"
	run as_bob / xrun -d --name "${a:0:4}" -- true
	assert_equal "$status" 125
	run as_bob / xrun -d --name "BEEF" -- true
	assert_equal "$status" 125
	# Alice still reaches her job by its id
	run as_alice / xps -q "$a"
	assert_success
	assert_output "$a"
	run as_alice / xkill "$a"
	assert_success
	run as_alice / xwait "$a"
	assert_equal "$status" 143
}

@test "names are unique per user: Alice and Bob both run 'web', each acts on their own" {
	a=$(as_alice / xrun -d --name web -- sleep 300)
	b=$(as_bob / xrun -d --name web -- sleep 300)
	[ -n "$b" ]
	run as_alice / xrun -d --name web -- true
	assert_equal "$status" 125
	assert_output --partial "is already named 'web'"
	# root sees both: the name is ambiguous for root alone
	run xps web
	assert_failure
	assert_output --partial "matches several jobs"
	run as_bob / xkill web
	assert_success
	wait_state "$b" KILLED
	assert_equal "$(job_field "$a" .state)" RUNNING
	run as_alice / xps -q web
	assert_output "$a"
}

@test "id prefixes, 'matches several jobs' and xtemplate list see only the caller's jobs" {
	b=$(as_bob / xrun -d -- sh -c 'echo bob-out; sleep 300')
	# Alice starts short jobs until one's id begins as Bob's does (1 in 16)
	found=
	for _ in $(seq 1 150); do
		a=$(as_alice / xrun -d -- true)
		if [ "${a:0:1}" = "${b:0:1}" ]; then
			found=$a
			break
		fi
	done
	[ -n "$found" ]
	wait_no_live "$AUID" "$AHOME"
	run as_bob / xlogs "${b:0:1}"
	assert_success
	assert_output bob-out
	run as_alice / xps -a -q "${b:0:1}"
	assert_success
	assert_output "$found"
	run xps -a -q "${b:0:1}"
	assert_failure
	assert_output --partial "matches several jobs"
	# the host template's users: Bob's job, counted for Bob and root only
	run as_alice / xtemplate list --json
	assert_success
	assert_equal "$(jq -r '.[] | select(.name == "host") | .jobs' <<<"$output")" 0
	run as_bob / xtemplate list --json
	assert_equal "$(jq -r '.[] | select(.name == "host") | .jobs' <<<"$output")" 1
	run xtemplate list --json
	assert_equal "$(jq -r '.[] | select(.name == "host") | .jobs' <<<"$output")" 1
}

@test "bridge: a template's resolv.conf symlink gives way to xos's file in the job; nothing is made on the host" {
	run_dir="/run/xos-isol-resolv-$$"
	make_busybox_root "$XOS_TMP/bb"
	ln -s "$run_dir/resolv.conf" "$XOS_TMP/bb/etc/resolv.conf"
	tar -C "$XOS_TMP/bb" --owner=0 --group=0 -cf "$XOS_TMP/bb.tar" .
	xtemplate import bb "$XOS_TMP/bb.tar" >/dev/null
	run xrun --net bridge --template bb -- sh -c \
		'test -f /etc/resolv.conf && ! test -L /etc/resolv.conf && echo file'
	made=no
	[ ! -e "$run_dir" ] || made=yes
	rm -rf "$run_dir"
	assert_equal "$made" no
	assert_success
	assert_output file
}
