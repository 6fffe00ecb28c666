#!/usr/bin/env bats
# Jobs on imported templates: the template is the overlay's read-only lower
# layer (never copied per job), its files keep their owners as seen inside the
# job, its environment and working directory apply.

load helpers
bats_require_minimum_version 1.5.0

setup() { xos_start_static; }
teardown() { xos_teardown; }

# make_busybox_root DIR: a minimal root made of Debian's busybox-static.
make_busybox_root() {
	local d=$1 a
	mkdir -p "$d/bin" "$d/etc" "$d/tmp" "$d/proc" "$d/sys" "$d/dev" "$d/work"
	cp /bin/busybox "$d/bin/busybox"
	for a in sh echo cat ls id stat pwd env dd md5sum touch sleep wc; do
		ln -s busybox "$d/bin/$a"
	done
	chmod 1777 "$d/tmp"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$d/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/etc/group"
}

@test "a job on an imported template runs in it, sees its files owned by root, and gets its env and workdir" {
	make_busybox_root "$XOS_TMP/bb"
	tar -C "$XOS_TMP/bb" --owner=0 --group=0 -czf "$XOS_TMP/bb.tar.gz" .
	run xtemplate import --env GREETING=hello --workdir /work bb "$XOS_TMP/bb.tar.gz"
	assert_success
	run xrun --template bb -- busybox echo hi
	assert_success
	assert_output hi
	# the host's programs are not there: this is the template's root
	run xrun --template bb -- sh -c 'test -e /usr/bin/apt && echo host || echo template'
	assert_output template
	# root-owned in the archive: root-owned inside the job
	run xrun --template bb -- stat -c '%u:%g' /bin/busybox /etc/passwd
	assert_line --index 0 "0:0"
	assert_line --index 1 "0:0"
	run xrun --template bb -- sh -c 'echo "$GREETING"; pwd'
	assert_line --index 0 hello
	assert_line --index 1 /work
	# the user's own environment and -w win over the template's
	run xrun --template bb -e GREETING=bye -w /tmp -- sh -c 'echo "$GREETING"; pwd'
	assert_line --index 0 bye
	assert_line --index 1 /tmp
	# the default template
	run xtemplate default bb
	assert_success
	run xrun -- busybox echo default-hi
	assert_output default-hi
	assert_equal "$(xps -a --json | jq -r 'map(select(.units[0].argv[2] == "default-hi")) | .[0].template')" bb
}

@test "no copy of the template is made per job: the job layer stays empty, the files are the template's" {
	make_busybox_root "$XOS_TMP/big"
	dd if=/dev/urandom of="$XOS_TMP/big/blob" bs=1M count=32 status=none
	sum=$(md5sum <"$XOS_TMP/big/blob" | cut -d' ' -f1)
	tar -C "$XOS_TMP/big" --owner=0 --group=0 -cf "$XOS_TMP/big.tar" .
	xtemplate import big "$XOS_TMP/big.tar"
	id=$(xrun -d --template big -- sleep 100)
	wait_state "$id" RUNNING
	run xrun --job "$id" -- sh -c 'md5sum < /blob'
	assert_output --partial "$sum"
	# the job's writable layer holds nothing of the template
	[ "$(job_field "$id" .usage.disk)" -lt $((1 << 20)) ]
	# and nothing under the job's directory is a copy of it
	run du -sxk "$XOS_TMP/state/jobs/$id"
	[ "$(echo "$output" | cut -f1)" -lt 1024 ]
	xkill "$id"
	xwait "$id" || true
}

@test "a template that cannot be mounted as a root fails the job with a clear error, xrun does not hang" {
	make_busybox_root "$XOS_TMP/broken"
	rmdir "$XOS_TMP/broken/proc"
	echo "not a directory" >"$XOS_TMP/broken/proc"
	tar -C "$XOS_TMP/broken" --owner=0 --group=0 -cf "$XOS_TMP/broken.tar" .
	xtemplate import broken "$XOS_TMP/broken.tar"
	run timeout 30 xrun --template broken -- true
	assert_equal "$status" 125
	assert_output --partial "Failed to start the job"
	run timeout 30 xrun -d --template broken -- true
	assert_equal "$status" 125
	# the daemon is fine and nothing of the jobs is left mounted
	run xrun -- echo alive
	assert_output alive
	wait_for 30 no_job_mounts
	[ -z "$(job_mounts)" ]
}

@test "--template names a missing template: clear error naming the available ones" {
	run xrun --template nosuch -- true
	assert_equal "$status" 125
	assert_output --partial "No such template: nosuch"
}

@test "a template naming its user: root's jobs run as that user of the template, in the containers' id range" {
	make_busybox_root "$XOS_TMP/app"
	printf 'app:x:1000:1000:app:/work:/bin/sh\n' >>"$XOS_TMP/app/etc/passwd"
	chown 1000:1000 "$XOS_TMP/app/work"
	tar -C "$XOS_TMP/app" --numeric-owner -cf "$XOS_TMP/app.tar" .
	xtemplate import --user app --workdir /work app "$XOS_TMP/app.tar"
	run xrun --template app -- sh -c 'id -u; id -g; echo w > /work/f; stat -c %u /work/f'
	assert_success
	assert_line --index 0 1000
	assert_line --index 1 1000
	assert_line --index 2 1000
	assert_equal "$(xps -a --json | jq -r '.[0].user')" app
	# on the host it is the containers' id 1000, not host uid 1000
	id=$(xrun -d --template app -- sleep 100)
	wait_state "$id" RUNNING
	init=$(job_init_pid "$id")
	# (the unit is running once the loader's child has become the program)
	wait_for 30 pgrep -f "^sleep 100$" -P "$init"
	pid=$(pgrep -f "^sleep 100$" -P "$init")
	# (where the job's ids are on the host: its container's uid map says)
	host1000=$(awk '$1 <= 1000 && 1000 < $1 + $3 {print $2 + 1000 - $1}' "/proc/$init/uid_map")
	[ "$host1000" -ge 65536 ]
	# in a range /etc/subuid gives root for the containers
	awk -F: -v u="$host1000" '$1 == "root" && $2 <= u && u < $2 + $3 {f = 1} END {exit !f}' /etc/subuid
	assert_equal "$(stat -c %u "/proc/$pid")" "$host1000"
	xkill "$id"
	xwait "$id" || true
	# --user still picks a host account instead
	run xrun --template app --user nobody -- id -u
	assert_output 65534
}

@test "a template whose job has checkpoint versions cannot be removed; --force says which job's checkpoints it breaks" {
	make_busybox_root "$XOS_TMP/ck"
	tar -C "$XOS_TMP/ck" --owner=0 --group=0 -cf "$XOS_TMP/ck.tar" .
	xtemplate import ck "$XOS_TMP/ck.tar"
	id=$(xrun -d --template ck -- sleep 100)
	wait_state "$id" RUNNING
	xcheckpoint "$id"
	xkill -s KILL "$id"
	xwait "$id" || true
	run xtemplate remove ck
	assert_failure
	assert_output --partial "${id:0:12} (checkpoints)"
	run xtemplate remove --force ck
	assert_success
	assert_output --partial "${id:0:12} (checkpoints)"
}

@test "xosd keeps the default template and each template's /tmp between jobs: xtemplate default, remove and import change them at once" {
	make_busybox_root "$XOS_TMP/bb"
	tar -C "$XOS_TMP/bb" --owner=0 --group=0 -cf "$XOS_TMP/bb.tar" .
	run xtemplate import bb "$XOS_TMP/bb.tar"
	assert_success
	# a job on the default (host) first: xosd has read the default now
	run xrun -- /bin/true
	assert_success
	template_of() { xps -a --json | jq -r --arg m "$1" 'map(select(.units[0].argv[-1] == $m)) | .[0].template'; }
	xtemplate default bb
	xrun -- busybox echo on-bb >/dev/null
	assert_equal "$(template_of on-bb)" bb
	xtemplate default host
	xrun -- /bin/echo on-host >/dev/null
	assert_equal "$(template_of on-host)" host
	xtemplate default bb
	run xrun -- stat -c '%a %u' /tmp
	assert_output "1777 0"
	# removing the default template makes host the default again
	run xtemplate remove bb
	assert_success
	xrun -- /bin/echo after-remove >/dev/null
	assert_equal "$(template_of after-remove)" host
	# the same name imported again with another /tmp: its jobs see the new one
	# (the job layer's copy of /tmp follows the template)
	chmod 0777 "$XOS_TMP/bb/tmp"
	tar -C "$XOS_TMP/bb" --owner=0 --group=0 -cf "$XOS_TMP/bb2.tar" .
	run xtemplate import bb "$XOS_TMP/bb2.tar"
	assert_success
	run xrun --template bb -- stat -c '%a %u' /tmp
	assert_output "777 0"
}

@test "a unit added with --job gets the template's environment and working directory, also after xosd restarts" {
	make_busybox_root "$XOS_TMP/bb"
	tar -C "$XOS_TMP/bb" --owner=0 --group=0 -cf "$XOS_TMP/bb.tar" .
	run xtemplate import --env GREETING=hello --workdir /work bb "$XOS_TMP/bb.tar"
	assert_success
	id=$(xrun -d --template bb -- busybox sleep 100)
	wait_state "$id" RUNNING
	assert_equal "$(jq -r '.template_env | join(",")' "$XOS_TMP/state/jobs/$id/job.json")" GREETING=hello
	run xrun --job "$id" -- sh -c 'echo "$GREETING"; pwd'
	assert_success
	assert_line --index 0 hello
	assert_line --index 1 /work
	xosd_stop
	xosd_launch --loader "$XOS_STATIC_LOADER"
	run xrun --job "$id" -e GREETING=mine -- sh -c 'echo "$GREETING"; pwd'
	assert_success
	assert_line --index 0 mine
	assert_line --index 1 /work
	xkill -s KILL "$id"
	xwait "$id" || true
}

@test "--files 4 on a template missing LXC's mount targets (/.xos, a volume's path): still exactly 4 files" {
	make_busybox_root "$XOS_TMP/bb"
	rmdir "$XOS_TMP/bb/proc" "$XOS_TMP/bb/sys"
	xtemplate import bb "$XOS_TMP/bb" >/dev/null
	mkdir -p "$XOS_TMP/vol"
	chmod 0777 "$XOS_TMP/vol"
	run xrun --template bb --files 4 -v "$XOS_TMP/vol:/data/in/here" -- sh -c \
		'for i in 1 2 3 4 5; do touch /tmp/f$i 2>&1 || echo "no file $i"; done; echo went-on'
	assert_success
	assert_output --partial "no file 5"
	refute_output --partial "no file 4"
	assert_output --partial "went-on"
}
