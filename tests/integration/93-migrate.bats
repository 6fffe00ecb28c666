#!/usr/bin/env bats
# xmigrate (issue 11, items 2-5): a running job moved from node n1 to node n2,
# xosd daemons each in a network namespace of its own on one test bridge,
# stop-and-copy over the node channel, two-phase. Shown: jobs that move and
# finish there with their output and exit code, the pre-flight refusals (the
# job runs on untouched), and faults after the job stopped (it ends up
# running on exactly one node, nothing left behind).

load helpers
load nodes
bats_require_minimum_version 1.5.0

setup_file() { nodes_certs_setup n1 n2; }

teardown_file() { nodes_certs_teardown; }

setup() {
	nodes_net_setup
}

teardown() {
	touch "$BATS_TEST_TMPDIR/release" # (a stream held by a test that failed goes on)
	nodes_net_teardown
}

# two_nodes [n2's extra xosd.conf lines]: n1 and n2 up, each seeing the other
two_nodes() {
	node_start 1 n1
	node_start 2 n2 "${1:-}"
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
}

# stall_nodes [n1's extra xosd.conf lines]: two_nodes, n1's streams stopping
# after their first bytes (XOS_MIGRATE_FAULT=stall-send) for good, or until
# the file $STALL_UNTIL names exists
stall_nodes() {
	XOS_MIGRATE_FAULT=stall-send XOS_MIGRATE_STALL_UNTIL=${STALL_UNTIL:-} node_start 1 n1 "${1:-}"
	node_start 2 n2
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
}

# held_move ID OUT: xmigrate ID n2 from n1 in the background (its pid in
# MPID, its output in OUT), once its stream holds (n2 has part of the data, in
# the version's .new- directory, and n1 is sending)
held_move() {
	wait_lines "$(jobroot 1 "$1")/tmp/count" 3
	node_use 1
	xmigrate "$1" n2 >"$2" 2>&1 &
	MPID=$!
	xos_wait_for 60 test -d "$(node_tmp 2)/state/checkpoints/$1/.new-1"
	assert_equal "$(on 1 job_field "$1" .migration.phase)" send
}

# on I CMD...: CMD against node I's daemon

# exactly_one ID: the job runs on one node and no other holds it alive
# (the other has it MIGRATED, or not at all), no container of it on the other
exactly_one() {
	local id=$1 a b
	a=$(where 1 "$id")
	b=$(where 2 "$id")
	echo "n1: $a, n2: $b" >&2
	if [ "$a" = RUNNING ]; then
		[ "$b" = absent ] || [ "$b" = MIGRATED ]
		[ ! -d "$(node_tmp 2)/state/volatile/lxc/xos-$id" ]
	else
		[ "$b" = RUNNING ]
		[ "$a" = MIGRATED ] || [ "$a" = absent ]
		[ ! -d "$(node_tmp 1)/state/volatile/lxc/xos-$id" ]
	fi
}

# a counter writing into one end of a UNIX socket pair, a reader of the other
# end appending to /tmp/sock, until /tmp/go appears
SOCKPAIR='
import os, socket, time
a, b = socket.socketpair()
if os.fork() == 0:
    a.close()
    i = 0
    while not os.path.exists("/tmp/go"):
        i += 1
        b.sendall(b"%d\n" % i)
        time.sleep(0.1)
    os._exit(0)
b.close()
with open("/tmp/sock", "ab", 0) as f:
    for line in a.makefile("rb"):
        f.write(line)
'

COUNTER='i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo $i >>/tmp/count; echo $i; sleep 0.1; done'

@test "a --net none job moves to n2 and finishes there with its output and exit code; n1 shows it MIGRATED" {
	two_nodes
	local id
	id=$(on 1 xrun -d --net none -- sh -c 'i=0; while [ ! -e /tmp/go ]; do i=$((i+1)); echo $i >>/tmp/count; sleep 0.1; done; cat /tmp/count | wc -l >/tmp/n; echo done $(cat /tmp/count | tail -n1); exit 7')
	wait_lines "$(jobroot 1 "$id")/tmp/count" 5
	run on 1 xmigrate --json "$id" n2
	echo "$output"
	assert_success
	echo "# xmigrate --json: $(jq -c . <<<"$output")" >&3
	assert_equal "$(jq -r .node <<<"$output")" n2
	[ "$(jq -r .bytes <<<"$output")" -gt 0 ]
	[ "$(jq -r .downtime_us <<<"$output")" -gt 0 ]
	[ "$(jq -r .frozen_us <<<"$output")" -gt 0 ]
	[ "$(jq -r .transfer_us <<<"$output")" -gt 0 ]
	# n1 lets go: MIGRATED with the node, no container, no version kept
	assert_equal "$(where 1 "$id")" MIGRATED
	run -0 on 1 xps -a
	assert_output --regexp "${id:0:12} .*MIGRATED moved to node n2"
	no_store_of 1 "$id"
	assert_equal "$(on 1 job_field "$id" .migration.node)" n2
	run on 1 xwait "$id"
	assert_equal "$status" 125
	assert_output "xwait: Job ${id:0:12} moved to node n2: wait for it there"
	# n2 runs it under the same id and goes on counting where it was
	assert_equal "$(where 2 "$id")" RUNNING
	assert_equal "$(on 2 job_field "$id" .reason)" "moved here from node n1"
	run -0 on 2 xps
	assert_output --regexp "${id:0:12} .*RUNNING moved here from node n1"
	local n
	n=$(wc -l <"$(jobroot 2 "$id")/tmp/count")
	wait_lines "$(jobroot 2 "$id")/tmp/count" $((n + 3))
	diff <(seq 1 $((n + 3))) <(head -n $((n + 3)) "$(jobroot 2 "$id")/tmp/count")
	touch "$(jobroot 2 "$id")/tmp/go"
	run on 2 xwait "$id"
	assert_equal "$status" 7
	run -0 on 2 xlogs "$id"
	assert_output --regexp "^done [0-9]+$"
	exactly_one "$id" || true # (ended: neither runs it)
	assert_equal "$(where 2 "$id")" EXITED
}

@test "--compress: a job holding 64 MiB of touched memory moves with zstd on the wire, in a fraction of its bytes, and goes on with its memory" {
	two_nodes
	local id bytes n
	id=$(on 1 xrun -d --net none -- python3 -c '
import os, time
b = bytearray(64 << 20)
for i in range(0, len(b), 4096):
    b[i] = 1
i = 0
while not os.path.exists("/tmp/go"):
    i += 1
    with open("/tmp/count", "a") as f:
        f.write("%d\n" % i)
    time.sleep(0.1)
print("done", sum(b[::4096]))
')
	wait_lines "$(jobroot 1 "$id")/tmp/count" 5
	run on 1 xmigrate --compress --json "$id" n2
	echo "$output"
	assert_success
	echo "# xmigrate --compress --json: $(jq -c . <<<"$output")" >&3
	assert_equal "$(jq -r .compress <<<"$output")" true
	# 64 MiB of pages (and the loader) on the wire without zstd; far less with it
	bytes=$(jq -r .bytes <<<"$output")
	[ "$bytes" -gt 0 ]
	[ "$bytes" -lt $((16 << 20)) ]
	assert_equal "$(where 1 "$id")" MIGRATED
	assert_equal "$(where 2 "$id")" RUNNING
	n=$(wc -l <"$(jobroot 2 "$id")/tmp/count")
	wait_lines "$(jobroot 2 "$id")/tmp/count" $((n + 3))
	diff <(seq 1 $((n + 3))) <(head -n $((n + 3)) "$(jobroot 2 "$id")/tmp/count")
	touch "$(jobroot 2 "$id")/tmp/go"
	run on 2 xwait "$id"
	assert_equal "$status" 0
	# every touched page came back with what was written into it
	run -0 on 2 xlogs "$id"
	assert_output "done 16384"
	no_store_of 1 "$id"
}

@test "--compress refused before anything stops when the request's field is not a boolean" {
	two_nodes
	local id
	id=$(on 1 xrun -d --net none -- sleep 1000)
	node_use 1
	run "$XOS_ROOT/tests/tools/rawsock.py" "$XOS_SOCKET" <<<'{"v":1,"op":"migrate","job":"'"$id"'","node":"n2","compress":"yes"}'
	assert_output --partial '"code":"bad_request"'
	assert_output --partial "Field 'compress' must be a boolean"
	assert_equal "$(where 1 "$id")" RUNNING
	on 1 xkill -s KILL "$id" >/dev/null
}

@test "--compress refused before anything stops where a node has no zstd: the source, then the target" {
	# (XOS_MIGRATE_FAULT=no-zstd: that node's xosd takes /usr/bin/zstd as missing)
	XOS_MIGRATE_FAULT=no-zstd node_start 1 n1
	node_start 2 n2
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
	local a b
	a=$(on 1 xrun -d --net none -- sleep 1000)
	b=$(on 2 xrun -d --net none -- sleep 1000)
	run on 1 xmigrate --compress "$a" n2
	assert_failure
	assert_output --partial "cannot be moved with --compress from this node: it has no /usr/bin/zstd (install zstd); move it without --compress"
	assert_equal "$(where 1 "$a")" RUNNING
	run on 2 xmigrate --compress "$b" n1
	assert_failure
	assert_output --partial "it has no /usr/bin/zstd to unpack a compressed move"
	assert_equal "$(where 2 "$b")" RUNNING
	assert_equal "$(where 1 "$b")" absent
	# without --compress the same move goes
	run on 2 xmigrate "$b" n1
	assert_success
	assert_equal "$(where 1 "$b")" RUNNING
	on 1 xkill -s KILL "$a" "$b" >/dev/null
}

@test "a job of several units moves; each unit goes on there and ends with its own exit code" {
	two_nodes
	local id
	id=$(on 1 xrun -d -- sh -c 'while [ ! -e /tmp/go1 ]; do echo u1 >>/tmp/u1; sleep 0.1; done; exit 4')
	on 1 xrun -d --job "$id" -- sh -c 'while [ ! -e /tmp/go2 ]; do echo u2 >>/tmp/u2; sleep 0.1; done; exit 6' >/dev/null
	wait_lines "$(jobroot 1 "$id")/tmp/u2" 3
	run on 1 xmigrate "$id" n2
	echo "$output"
	assert_success
	assert_output --regexp "^${id:0:12}: runs on node n2 \(frozen [0-9]+ ms, transfer [0-9]+ ms, downtime [0-9]+ ms, .* sent\)$"
	exactly_one "$id"
	local r n1 n2
	r=$(jobroot 2 "$id")
	n1=$(wc -l <"$r/tmp/u1")
	n2=$(wc -l <"$r/tmp/u2")
	wait_lines "$r/tmp/u1" $((n1 + 3))
	wait_lines "$r/tmp/u2" $((n2 + 3))
	assert_equal "$(on 2 job_field "$id" '.units | length')" 2
	touch "$r/tmp/go2"
	on 2 wait_field "$id" '.units[1].state' EXITED
	assert_equal "$(on 2 job_field "$id" '.units[1].exit_code')" 6
	touch "$r/tmp/go1"
	run on 2 xwait "$id"
	assert_equal "$status" 4
}

@test "a job whose processes talk over a pipe and a UNIX socket moves and talks on" {
	two_nodes
	local id
	# unit 1: a counter into a pipe, its reader appends to /tmp/piped; unit 2:
	# a counter into a UNIX socket pair, the other end appends to /tmp/sock
	id=$(on 1 xrun -d -- sh -c 'i=0; while [ ! -e /tmp/go ]; do i=$((i+1)); echo $i; sleep 0.1; done | while read -r x; do echo "$x" >>/tmp/piped; done; exit 3')
	on 1 xrun -d --job "$id" -- python3 -c "$SOCKPAIR" >/dev/null
	wait_lines "$(jobroot 1 "$id")/tmp/piped" 3
	wait_lines "$(jobroot 1 "$id")/tmp/sock" 3
	run on 1 xmigrate "$id" n2
	echo "$output"
	assert_success
	exactly_one "$id"
	local r n
	r=$(jobroot 2 "$id")
	n=$(wc -l <"$r/tmp/piped")
	wait_lines "$r/tmp/piped" $((n + 3))
	# the numbers go on through the pipe and the socket without a gap
	diff <(seq 1 $((n + 3))) <(head -n $((n + 3)) "$r/tmp/piped")
	n=$(wc -l <"$r/tmp/sock")
	wait_lines "$r/tmp/sock" $((n + 3))
	diff <(seq 1 $((n + 3))) <(head -n $((n + 3)) "$r/tmp/sock")
	touch "$r/tmp/go"
	run on 2 xwait "$id"
	assert_equal "$status" 3
	assert_equal "$(on 2 job_field "$id" '.units[1].exit_code')" 0
}

# ---- refusals in the pre-flight: the job runs on untouched ----

# untouched ID: the job still runs on n1, never stopped (no version made), and
# goes on counting; n2 knows nothing of it
untouched() {
	local id=$1 n
	assert_equal "$(where 1 "$id")" RUNNING
	assert_equal "$(where 2 "$id")" absent
	assert_equal "$(on 1 job_field "$id" '.restores // 0')" 0
	[ ! -e "$(node_tmp 1)/state/checkpoints/$id" ]
	no_store_of 2 "$id"
	n=$(wc -l <"$(jobroot 1 "$id")/tmp/count")
	wait_lines "$(jobroot 1 "$id")/tmp/count" $((n + 3))
	[ -z "$(ls "$(node_tmp 2)/state/volatile/lxc" 2>/dev/null)" ]
}

# busybox_tar DIR [EXTRA]: DIR.tar, a root made of Debian's busybox-static
# (EXTRA: a line in its /etc/extra, for a template of other content)
busybox_tar() {
	local d=$1 a
	mkdir -p "$d/bin" "$d/etc" "$d/tmp" "$d/proc" "$d/sys" "$d/dev"
	cp /bin/busybox "$d/bin/busybox"
	for a in sh echo cat ls sleep wc; do ln -s busybox "$d/bin/$a"; done
	chmod 1777 "$d/tmp"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$d/etc/passwd"
	printf 'root:x:0:\n' >"$d/etc/group"
	[ -z "${2:-}" ] || echo "$2" >"$d/etc/extra"
	tar -C "$d" --owner=0 --group=0 -cf "$d.tar" .
}

@test "refused: n2 has not the job's template, or one of that name with other content" {
	# (a job of an imported template needs a static loader: helpers.bash)
	node_start 1 n1 "" --loader "$XOS_STATIC_LOADER"
	node_start 2 n2
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
	local bb id
	bb=$(node_tmp 1)/bb
	busybox_tar "$bb"
	on 1 xtemplate import bb "$bb.tar" >/dev/null
	id=$(on 1 xrun -d --template bb -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$id")/tmp/count" 3
	run on 1 xmigrate "$id" n2
	assert_failure 1
	assert_output "xmigrate: Node n2 refused job ${id:0:12}: it has no template 'bb' (import it there with xtemplate import); the job runs on here"
	untouched "$id"
	# a template of that name but other content
	busybox_tar "$(node_tmp 2)/bb" "not the same"
	on 2 xtemplate import bb "$(node_tmp 2)/bb.tar" >/dev/null
	run on 1 xmigrate "$id" n2
	assert_failure 1
	assert_output --regexp "xmigrate: Node n2 refused job ${id:0:12}: its template 'bb' has other content \(checksum sha256:[0-9a-f]+, the job's sha256:[0-9a-f]+\); the job runs on here"
	untouched "$id"
}

@test "refused: n2 has no room for the job (capacity_memory)" {
	two_nodes "capacity_memory = 64M"
	local id
	id=$(on 1 xrun -d --memory 256M -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$id")/tmp/count" 3
	run on 1 xmigrate "$id" n2
	assert_failure 1
	assert_output "xmigrate: Node n2 refused job ${id:0:12}: it has no room for the job: the job asks for 256 MiB of memory, 64 MiB of memory are free; the job runs on here"
	untouched "$id"
}

# forge_cpuinfo OUT: this CPU's cpuinfo.img, claiming every xsave feature there
# is (a CPU of another kind: criu cpuinfo check fails on this one)
forge_cpuinfo() {
	local d
	d=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.cpu.XXXXXX")
	criu cpuinfo dump -D "$d" 2>/dev/null
	python3 - "$d/cpuinfo.img" "$1" <<'EOF_PY'
import struct, sys
def varint(b, i):
    v = s = 0
    while True:
        c = b[i]; i += 1; v |= (c & 0x7f) << s; s += 7
        if not c & 0x80:
            return v, i
def enc(v):
    out = bytearray()
    while True:
        c = v & 0x7f; v >>= 7
        if not v:
            out.append(c); return bytes(out)
        out.append(c | 0x80)
d = open(sys.argv[1], 'rb').read()
size = struct.unpack_from('<I', d, 8)[0]
msg, out, i = d[12:12 + size], bytearray(), 0
while i < len(msg):
    key, i = varint(msg, i)
    n, i = varint(msg, i)
    inner, i, new, j = msg[i:i + n], i + n, bytearray(), 0
    while j < len(inner):
        k, j2 = varint(inner, j)
        if k & 7 == 0:
            v, j3 = varint(inner, j2)
            if k >> 3 == 8:  # xfeatures_mask
                v = (1 << 62) - 1
            new += enc(k) + enc(v)
            j = j3
        else:
            l, j3 = varint(inner, j2)
            new += inner[j:j3 + l]
            j = j3 + l
    out += enc(key) + enc(len(new)) + new
open(sys.argv[2], 'wb').write(d[:8] + struct.pack('<I', len(out)) + bytes(out))
EOF_PY
	rm -rf "$d"
}

@test "refused: the job's CPU description is of a CPU n2 cannot stand in for (criu cpuinfo check)" {
	forge_cpuinfo "$BATS_TEST_TMPDIR/cpuinfo.img"
	XOS_MIGRATE_CPUINFO=$BATS_TEST_TMPDIR/cpuinfo.img node_start 1 n1
	node_start 2 n2
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
	local id
	id=$(on 1 xrun -d -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$id")/tmp/count" 3
	run on 1 xmigrate "$id" n2
	assert_failure 1
	assert_output "xmigrate: Node n2 refused job ${id:0:12}: its CPU is not compatible with the job's source node's (criu cpuinfo check failed): the job's code may use instructions this CPU lacks; the job runs on here"
	untouched "$id"
	grep -q "CPU xfeatures has unsupported bits" "$(node_tmp 2)/xosd.log"
}

# cpu_runs I WHAT: how many times node I's xosd ran "criu cpuinfo WHAT"
cpu_runs() { grep -c "by criu cpuinfo $2" "$(node_tmp "$1")/xosd.log" || true; }

@test "the CPU checks are kept: a second move runs no criu cpuinfo; another description than the one checked is checked again, refused, and that refusal kept" {
	two_nodes
	local a b c
	a=$(on 1 xrun -d -- sh -c "$COUNTER")
	b=$(on 1 xrun -d -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$a")/tmp/count" 3
	run on 1 xmigrate "$a" n2
	assert_success
	assert_equal "$(cpu_runs 1 dump)" 1
	assert_equal "$(cpu_runs 2 check)" 1
	run on 1 xmigrate --json "$b" n2
	assert_success
	# (the pre-flight's time, part of the whole)
	[ "$(jq -r .check_us <<<"$output")" -gt 0 ]
	[ "$(jq -r .check_us <<<"$output")" -le "$(jq -r .total_us <<<"$output")" ]
	assert_equal "$(where 2 "$b")" RUNNING
	assert_equal "$(cpu_runs 1 dump)" 1
	assert_equal "$(cpu_runs 2 check)" 1
	# n1 again, now describing a CPU n2 cannot stand in for: n2 kept only
	# the description it checked, so this one goes to CRIU and is refused
	forge_cpuinfo "$BATS_TEST_TMPDIR/cpuinfo.img"
	node_use 1
	xosd_stop
	XOS_MIGRATE_CPUINFO=$BATS_TEST_TMPDIR/cpuinfo.img node_launch 1
	xos_wait_for 30 peer_is 1 n2 up
	c=$(on 1 xrun -d -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$c")/tmp/count" 3
	run on 1 xmigrate "$c" n2
	assert_failure 1
	assert_output --partial "its CPU is not compatible with the job's source node's (criu cpuinfo check failed)"
	assert_equal "$(where 1 "$c")" RUNNING
	grep -q "CPU xfeatures has unsupported bits" "$(node_tmp 2)/xosd.log"
	# asked again at once: the same refusal, from what n2 kept (a user who
	# keeps asking does not keep n2's xosd running CRIU)
	run on 1 xmigrate "$c" n2
	assert_failure 1
	assert_output --partial "its CPU is not compatible with the job's source node's (criu cpuinfo check failed)"
	assert_equal "$(cpu_runs 2 check)" 2
	assert_equal "$(grep -c "CPU xfeatures has unsupported bits" "$(node_tmp 2)/xosd.log")" 1
	assert_equal "$(where 1 "$c")" RUNNING
	on 2 xkill -s KILL "$a" "$b" >/dev/null
	on 2 xwait "$a" "$b" >/dev/null || true
}

# hold_criu DIR: DIR/bin/criu, a CRIU that holds each "criu cpuinfo VERB" run
# until DIR/VERB.go appears (60 s at most), having made DIR/VERB.held; other
# runs go straight to the real one
hold_criu() {
	local dir=$1 real
	real=$(command -v criu)
	mkdir -p "$dir/bin"
	cat >"$dir/bin/criu" <<EOF
#!/bin/sh
if [ "\$1" = cpuinfo ]; then
	: >"$dir/\$2.held"
	i=0
	while [ ! -e "$dir/\$2.go" ] && [ \$i -lt 600 ]; do sleep 0.1; i=\$((i + 1)); done
fi
exec $real "\$@"
EOF
	chmod 0755 "$dir/bin/criu"
}

# answers I: node I's xosd answers a listing within 5 s
answers() {
	node_use "$1"
	timeout 5 xps -a >/dev/null && timeout 5 xnodes >/dev/null
}

# no_cpu_run DIR VERB: no held "criu cpuinfo VERB" of DIR's is left
no_cpu_run() { ! pgrep -f "$1/bin/criu cpuinfo $2" >/dev/null; }

@test "the CPU checks run beside the event loop: both daemons answer while CRIU describes and checks the CPU; a daemon that stops meanwhile ends its CRIU, and the job runs on" {
	local hold=$BATS_TEST_TMPDIR/hold out=$BATS_TEST_TMPDIR/xmigrate.out a b pid
	hold_criu "$hold"
	PATH=$hold/bin:$PATH node_start 1 n1
	PATH=$hold/bin:$PATH node_start 2 n2
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
	a=$(on 1 xrun -d -- sh -c "$COUNTER")
	b=$(on 1 xrun -d -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$a")/tmp/count" 3
	node_use 1
	xmigrate "$a" n2 >"$out" 2>&1 &
	pid=$!
	# n1's CRIU describes its CPU, held: n1 and n2 answer, the job runs, a
	# second move of it is refused, the move waits
	xos_wait_for 30 test -e "$hold/dump.held"
	answers 1
	answers 2
	assert_equal "$(where 1 "$a")" RUNNING
	run on 1 xmigrate "$a" n2
	assert_failure
	assert_output --partial "being moved already"
	kill -0 "$pid"
	: >"$hold/dump.go"
	# n2's CRIU checks it, held: the same
	xos_wait_for 30 test -e "$hold/check.held"
	answers 2
	answers 1
	assert_equal "$(where 1 "$a")" RUNNING
	kill -0 "$pid"
	: >"$hold/check.go"
	wait "$pid" || {
		cat "$out" >&2
		false
	}
	assert_equal "$(where 2 "$a")" RUNNING
	exactly_one "$a"
	# n2 again, with nothing kept: its xosd stops while its CRIU checks; the
	# CRIU goes with it, and the job runs on at n1
	rm -f "$hold/check.held" "$hold/check.go"
	node_use 2
	xosd_stop
	PATH=$hold/bin:$PATH node_launch 2
	xos_wait_for 30 peer_is 1 n2 up
	node_use 1
	xmigrate "$b" n2 >"$out" 2>&1 &
	pid=$!
	xos_wait_for 30 test -e "$hold/check.held"
	node_use 2
	xosd_stop
	xos_wait_for 10 no_cpu_run "$hold" check
	run wait "$pid"
	assert_failure
	run cat "$out"
	assert_output --partial "it runs on here"
	assert_equal "$(where 1 "$b")" RUNNING
	run ls "$(node_tmp 1)/run" "$(node_tmp 2)/run"
	refute_output --partial migrate-cpu
	PATH=$hold/bin:$PATH node_launch 2
	: >"$hold/check.go"
	on 2 xkill -s KILL "$a" >/dev/null
	on 2 xwait "$a" >/dev/null || true
}

# log_count I TEXT: how many lines of node I's xosd.log hold TEXT
log_count() { grep -cF "$2" "$(node_tmp "$1")/xosd.log" || true; }

# log_count_is I TEXT N: node I's xosd.log has N lines holding TEXT (read at
# each call: for xos_wait_for)
log_count_is() { [ "$(log_count "$1" "$2")" -eq "$3" ]; }

@test "a CRIU cpuinfo that does not end in time is killed and the move refused, saying so (not kept: a later move checks again); the job runs on" {
	local hold=$BATS_TEST_TMPDIR/hold a
	hold_criu "$hold"
	PATH=$hold/bin:$PATH XOS_MIGRATE_CPU_MAX_S=2 node_start 1 n1
	PATH=$hold/bin:$PATH XOS_MIGRATE_CPU_MAX_S=2 node_start 2 n2
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
	a=$(on 1 xrun -d -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$a")/tmp/count" 3
	# n1's describing never ends
	run on 1 timeout 60 xmigrate "$a" n2
	echo "$output"
	assert_failure 1
	assert_output --partial "criu cpuinfo dump on this node did not end in time (killed)"
	grep -q "CRIU's cpuinfo ran for over 2 s: killed" "$(node_tmp 1)/xosd.log"
	xos_wait_for 10 no_cpu_run "$hold" dump
	assert_equal "$(where 1 "$a")" RUNNING
	assert_equal "$(on 1 job_field "$a" '.restores // 0')" 0
	# then n2's checking never ends
	touch "$hold/dump.go"
	run on 1 timeout 60 xmigrate "$a" n2
	echo "$output"
	assert_failure 1
	assert_output --partial "Node n2 refused job ${a:0:12}: its criu cpuinfo check did not end in time (killed); the job runs on here"
	grep -q "CRIU's cpuinfo ran for over 2 s: killed" "$(node_tmp 2)/xosd.log"
	xos_wait_for 10 no_cpu_run "$hold" check
	assert_equal "$(where 1 "$a")" RUNNING
	assert_equal "$(where 2 "$a")" absent
	# no answer was kept of either: CRIU that ends lets the move go
	touch "$hold/check.go"
	run on 1 xmigrate "$a" n2
	echo "$output"
	assert_success
	exactly_one "$a"
	assert_equal "$(where 2 "$a")" RUNNING
}

@test "four moves asked at once: one CRIU cpuinfo at a time on each node (the others wait and take its kept answer: a user with many jobs cannot start many CRIUs), one version on the channel at a time; all four jobs move" {
	local hold=$BATS_TEST_TMPDIR/hold ids=() pids=() i id
	hold_criu "$hold"
	PATH=$hold/bin:$PATH node_start 1 n1
	PATH=$hold/bin:$PATH node_start 2 n2
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
	for i in 1 2 3 4; do
		ids+=("$(on 1 xrun -d -- sh -c "$COUNTER")")
	done
	wait_lines "$(jobroot 1 "${ids[3]}")/tmp/count" 3
	node_use 1
	for id in "${ids[@]}"; do
		xmigrate "$id" n2 >"$BATS_TEST_TMPDIR/$id.out" 2>&1 &
		pids+=($!)
	done
	# all four asked while n1's one CRIU is held
	xos_wait_for 30 test -e "$hold/dump.held"
	xos_wait_for 30 log_count_is 1 ': moving to node n2' 4
	assert_equal "$(pgrep -fc "$hold/bin/criu cpuinfo dump")" 1
	: >"$hold/dump.go"
	# n2: one check runs, the other three wait for it
	xos_wait_for 30 test -e "$hold/check.held"
	xos_wait_for 30 log_count_is 2 'its CPU check waits for the one under way' 3
	assert_equal "$(pgrep -fc "$hold/bin/criu cpuinfo check")" 1
	: >"$hold/check.go"
	for i in 0 1 2 3; do
		wait "${pids[$i]}" || {
			cat "$BATS_TEST_TMPDIR/${ids[$i]}.out" >&2
			false
		}
		assert_equal "$(where 2 "${ids[$i]}")" RUNNING
	done
	assert_equal "$(cpu_runs 1 dump)" 1
	assert_equal "$(cpu_runs 2 check)" 1
	on 2 xkill -s KILL "${ids[@]}" >/dev/null
	on 2 xwait "${ids[@]}" >/dev/null || true
}

@test "refused: another user's xmigrate (only the owner and root may move a job)" {
	two_nodes
	local id
	id=$(on 1 xrun -d -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$id")/tmp/count" 3
	node_use 1
	run setpriv --reuid 4242 --regid 4242 --clear-groups env XOS_SOCKET="$XOS_SOCKET" \
		"$XOS_BUILD/xmigrate" "$id" n2
	assert_failure 1
	assert_output --partial "No such job"
	untouched "$id"
	# and a node that is not a peer, or the job's own
	run on 1 xmigrate "$id" n9
	assert_failure 1
	assert_output "xmigrate: Node n9 is not a peer that is up (see xnodes)"
	run on 1 xmigrate "$id" n1
	assert_failure 1
	assert_output "xmigrate: Job ${id:0:12} already runs on node n1"
	untouched "$id"
}

# ---- faults after the job stopped: it ends up running on exactly one node ----

# counter_on_n1: once n1 and n2 see each other, a counting job on n1 (its
# id in id) that has counted to 3
counter_on_n1() {
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
	id=$(on 1 xrun -d -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$id")/tmp/count" 3
}

@test "CRIU failing the restore on n2 (CRIU_FAULT): the job runs on at n1, n2 keeps nothing" {
	node_start 1 n1
	CRIU_FAULT=6 node_start 2 n2
	local n
	counter_on_n1
	run on 1 xmigrate "$id" n2
	echo "$output"
	assert_failure 1
	assert_output --regexp "^xmigrate: Migration of job ${id:0:12} to node n2 failed: its restore failed: .*; the job runs on here$"
	exactly_one "$id"
	assert_equal "$(where 1 "$id")" RUNNING
	assert_equal "$(where 2 "$id")" absent
	no_store_of 2 "$id"
	[ ! -e "$(node_tmp 2)/state/jobs/$id" ]
	n=$(wc -l <"$(jobroot 1 "$id")/tmp/count")
	wait_lines "$(jobroot 1 "$id")/tmp/count" $((n + 3))
	# and it can move later, to a node whose CRIU works
	node_use 2
	xosd_stop
	node_launch 2
	xos_wait_for 30 peer_is 1 n2 up
	run on 1 xmigrate "$id" n2
	assert_success
	exactly_one "$id"
	assert_equal "$(where 2 "$id")" RUNNING
}

@test "a job that comes back to n1 and whose restore cannot begin there (its cgroups busy): n1's xosd lives on, the job runs on at n2, n1 keeps nothing" {
	# (the fault applies to n1's restores only; its first move is away)
	XOS_MIGRATE_FAULT=restore-busy node_start 1 n1
	node_start 2 n2
	local n
	counter_on_n1
	run on 1 xmigrate "$id" n2
	assert_success
	assert_equal "$(where 1 "$id")" MIGRATED
	# back to n1: its record of the move away gives way, then the restore
	# fails before CRIU runs
	run on 2 xmigrate "$id" n1
	echo "$output"
	assert_failure 1
	assert_output --partial "removing the cgroups of the job's last container"
	grep -q "comes back to this node: its record of the move away gives way" \
		"$(node_tmp 1)/xosd.log"
	node_use 1
	kill -0 "$XOSD_PID"
	run on 1 xps -a
	assert_success
	exactly_one "$id"
	assert_equal "$(where 2 "$id")" RUNNING
	assert_equal "$(where 1 "$id")" absent
	no_store_of 1 "$id"
	n=$(wc -l <"$(jobroot 2 "$id")/tmp/count")
	wait_lines "$(jobroot 2 "$id")/tmp/count" $((n + 3))
}

@test "n2's xosd killed after the transfer, before its restore: the job runs on at n1 once n2 is back and says it has not got it" {
	node_start 1 n1
	XOS_MIGRATE_FAULT=hold node_start 2 n2
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
	local id out mpid rc=0
	id=$(on 1 xrun -d -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$id")/tmp/count" 3
	out=$BATS_TEST_TMPDIR/xmigrate.out
	node_use 1
	xmigrate "$id" n2 >"$out" 2>&1 &
	mpid=$!
	xos_wait_for 60 grep -q "Job $id from node n1: held" "$(node_tmp 2)/xosd.log"
	# n1 holds the job stopped, in doubt, with its version
	assert_equal "$(where 1 "$id")" CHECKPOINTED
	assert_equal "$(on 1 job_field "$id" .migration.phase)" doubt
	run on 1 xrestart "$id"
	assert_failure 1
	assert_output --partial "is being moved to node n2"
	run on 1 xkill "$id"
	assert_failure
	assert_output --partial "is being moved to node n2: kill it there once xmigrate says it runs there"
	node_use 2
	kill -9 "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	node_launch 2
	wait "$mpid" || rc=$?
	cat "$out"
	assert_equal "$rc" 1
	grep -q "failed: the job is not here; the job runs on here" "$out"
	xos_wait_for 30 state_is 1 "$id" RUNNING
	exactly_one "$id"
	assert_equal "$(where 2 "$id")" absent
	no_store_of 2 "$id"
	grep -q "what a move to this node left when xosd stopped" "$(node_tmp 2)/xosd.log"
	local n
	n=$(wc -l <"$(jobroot 1 "$id")/tmp/count")
	wait_lines "$(jobroot 1 "$id")/tmp/count" $((n + 3))
}

@test "a move's version is sent before it reaches the disk: n1's holds its boot's marker meanwhile, n2's none; restored at n1 after a failed move, it is written out first; a marker of another boot makes a version damaged" {
	XOS_TEST_BOOT_ID=boot-a node_start 1 n1
	XOS_TEST_BOOT_ID=boot-b XOS_MIGRATE_FAULT=hold node_start 2 n2
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
	local id mpid rc=0 store n
	id=$(on 1 xrun -d -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$id")/tmp/count" 3
	store=$(node_tmp 1)/state/checkpoints/$id
	node_use 1
	# n1's xosd and the children it forks (the dump's, the restore's), each
	# until it runs CRIU: its fsyncs and unlinks, fds as paths
	xosd_trace "$BATS_TEST_TMPDIR/dump.trace" -f -b execve -y -e trace=fsync,fdatasync,syncfs
	xmigrate "$id" n2 >"$BATS_TEST_TMPDIR/xmigrate.out" 2>&1 &
	mpid=$!
	xos_wait_for 60 grep -q "Job $id from node n1: held" "$(node_tmp 2)/xosd.log"
	xosd_untrace
	# (DECISIONS (bn)): not written out, marked with the boot that made it
	assert_equal "$(cat "$store/1/unsynced")" boot-a
	# the marker alone was synced, no image of the version
	grep -q "sync(.*/$id/\.new-1/.*unsynced" "$BATS_TEST_TMPDIR/dump.trace"
	run grep -c "sync(.*/$id/\(\.new-1\|1\)/images/" "$BATS_TEST_TMPDIR/dump.trace"
	assert_output 0
	xosd_trace "$BATS_TEST_TMPDIR/restore.trace" -f -b execve -y \
		-e trace=fsync,fdatasync,syncfs,unlink,unlinkat
	node_use 2
	kill -9 "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	XOS_TEST_BOOT_ID=boot-b node_launch 2
	wait "$mpid" || rc=$?
	cat "$BATS_TEST_TMPDIR/xmigrate.out"
	assert_equal "$rc" 1
	xos_wait_for 30 state_is 1 "$id" RUNNING
	node_use 1
	xosd_untrace
	# restored at n1 from that version, written out first: its images
	# fsynced before the marker went, and the version's directory after
	[ -d "$store/1/images" ]
	[ ! -e "$store/1/unsynced" ]
	local t=$BATS_TEST_TMPDIR/restore.trace gone synced
	gone=$(grep -n 'unlinkat(.*"unsynced"' "$t" | head -n1 | cut -d: -f1)
	[ -n "$gone" ] || {
		cat "$t" >&2
		false
	}
	synced=$(head -n "$gone" "$t" | grep -c "fsync(.*/$id/1/images/")
	[ "$synced" -gt 5 ]
	tail -n +"$gone" "$t" | grep -q "fsync(.*/$id/1>"
	n=$(wc -l <"$(jobroot 1 "$id")/tmp/count")
	wait_lines "$(jobroot 1 "$id")/tmp/count" $((n + 3))
	# the marker is n1's alone: n2 (another boot) restores what it got
	run on 1 xmigrate "$id" n2
	echo "$output"
	assert_success
	exactly_one "$id"
	assert_equal "$(where 2 "$id")" RUNNING
	[ ! -e "$(node_tmp 2)/state/checkpoints/$id/2/unsynced" ]
	[ -d "$(node_tmp 2)/state/checkpoints/$id/2/images" ]
	# a version whose marker names another boot: the node restarted before
	# it reached the disk; refused as damaged, the job kept
	run on 2 xcheckpoint --stop "$id"
	assert_success
	store=$(node_tmp 2)/state/checkpoints/$id
	printf 'boot-a' >"$store/3/unsynced"
	run on 2 xrestart "$id"
	assert_failure
	assert_output --partial "Version 3 of job ${id:0:12} is damaged: it was made for a move and the node restarted before it was written out to the disk"
	assert_equal "$(where 2 "$id")" CHECKPOINTED
	# of this boot: written out, then restored
	printf 'boot-b' >"$store/3/unsynced"
	run on 2 xrestart "$id"
	assert_success
	xos_wait_for 30 state_is 2 "$id" RUNNING
	[ ! -e "$store/3/unsynced" ]
	exactly_one "$id"
}

@test "n1's xosd killed after n2 runs the job, before n1 let go: at its restart n1 asks n2 and lets go" {
	XOS_MIGRATE_FAULT=die-before-let-go node_start 1 n1
	node_start 2 n2
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
	local id
	id=$(on 1 xrun -d -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$id")/tmp/count" 3
	run on 1 xmigrate "$id" n2
	assert_failure
	node_use 1
	xos_wait_for 30 pid_gone "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	# n2 runs it; n1's record still says it is in doubt, stopped with its version
	assert_equal "$(where 2 "$id")" RUNNING
	grep -q "xosd dies now" "$(node_tmp 1)/xosd.log"
	[ -d "$(node_tmp 1)/state/checkpoints/$id" ]
	node_launch 1
	xos_wait_for 30 state_is 1 "$id" MIGRATED
	grep -q "its move to node n2 was in doubt when xosd stopped: asking that node" "$(node_tmp 1)/xosd.log"
	exactly_one "$id"
	no_store_of 1 "$id"
	local n
	n=$(wc -l <"$(jobroot 2 "$id")/tmp/count")
	wait_lines "$(jobroot 2 "$id")/tmp/count" $((n + 3))
}

# cut_mid_transfer HOW: n1's stream stops after its first bytes
# (XOS_MIGRATE_FAULT=stall-send), then HOW ends the link (kill: n2's xosd is
# killed; link: the link between the nodes goes down); the job runs on at n1
cut_mid_transfer() {
	stall_nodes
	local id out mpid rc=0 tar
	id=$(on 1 xrun -d -- sh -c "$COUNTER")
	out=$BATS_TEST_TMPDIR/xmigrate.out
	tar="$(node_tmp 2)/state/checkpoints/$id/.new-1"
	held_move "$id" "$out"
	mpid=$MPID
	if [ "$1" = kill ]; then
		node_use 2
		kill -9 "$XOSD_PID"
		wait "$XOSD_PID" 2>/dev/null || true
	else
		ip -n "${NS}h" link set "${NS:0:11}e2" down
	fi
	wait "$mpid" || rc=$?
	cat "$out"
	assert_equal "$rc" 1
	grep -q "failed: the link to it was lost mid-transfer; the job runs on here" "$out"
	xos_wait_for 30 state_is 1 "$id" RUNNING
	if [ "$1" = kill ]; then
		node_launch 2
		grep -q "what a move to this node left when xosd stopped" "$(node_tmp 2)/xosd.log"
	else
		# n2 saw the link go silent and dropped what had come
		xos_wait_for 30 test ! -e "$tar"
		ip -n "${NS}h" link set "${NS:0:11}e2" up
		xos_wait_for 30 peer_is 1 n2 up
	fi
	exactly_one "$id"
	assert_equal "$(where 2 "$id")" absent
	no_store_of 2 "$id"
	local n
	n=$(wc -l <"$(jobroot 1 "$id")/tmp/count")
	wait_lines "$(jobroot 1 "$id")/tmp/count" $((n + 3))
}

@test "n2's xosd killed mid-transfer: the job runs on at n1; n2 removes the partial data at its start" {
	cut_mid_transfer kill
}

@test "the link cut mid-transfer: the job runs on at n1; n2 drops the partial data" {
	cut_mid_transfer link
}

@test "a version's stream that pauses for longer than three heartbeats keeps the link (keepalives), and the move goes through" {
	STALL_UNTIL=$BATS_TEST_TMPDIR/release stall_nodes
	local id mpid rc=0 n
	id=$(on 1 xrun -d -- sh -c "$COUNTER")
	held_move "$id" "$BATS_TEST_TMPDIR/m.out"
	mpid=$MPID
	# five heartbeats of 1 s with nothing of the stream but its keepalives
	# (before them, n2 dropped the link after three: "no message for 3 s")
	sleep 5
	assert_equal "$(on 1 job_field "$id" .migration.phase)" send
	run ! grep "no message for" "$(node_tmp 1)/xosd.log" "$(node_tmp 2)/xosd.log"
	peer_is 1 n2 up
	peer_is 2 n1 up
	touch "$BATS_TEST_TMPDIR/release"
	wait "$mpid" || rc=$?
	cat "$BATS_TEST_TMPDIR/m.out"
	assert_equal "$rc" 0
	exactly_one "$id"
	assert_equal "$(where 2 "$id")" RUNNING
	n=$(wc -l <"$(jobroot 2 "$id")/tmp/count")
	wait_lines "$(jobroot 2 "$id")/tmp/count" $((n + 3))
}

@test "a version's stream that never goes on is given up after dump_timeout: the job runs on at n1, n2 drops what came" {
	stall_nodes "dump_timeout = 3s"
	local id n tar
	id=$(on 1 xrun -d -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$id")/tmp/count" 3
	tar="$(node_tmp 2)/state/checkpoints/$id/.new-1"
	node_use 1
	run xmigrate "$id" n2
	assert_failure 1
	assert_output --partial "its version's stream stalled (no byte went for dump_timeout); the job runs on here"
	xos_wait_for 30 state_is 1 "$id" RUNNING
	# n2 dropped what had come with the stream's connection, and the link is back
	xos_wait_for 30 test ! -e "$tar"
	xos_wait_for 30 peer_is 1 n2 up
	exactly_one "$id"
	assert_equal "$(where 2 "$id")" absent
	no_store_of 2 "$id"
	n=$(wc -l <"$(jobroot 1 "$id")/tmp/count")
	wait_lines "$(jobroot 1 "$id")/tmp/count" $((n + 3))
}

@test "a move asked while another's version is being sent to the same node waits for the channel (its check goes after that version), then moves; both jobs run on at n2" {
	# (the tests' heartbeat of 1 s: the held stream's keepalives keep the link)
	STALL_UNTIL=$BATS_TEST_TMPDIR/release stall_nodes
	local a b apid bpid rc=0 n
	a=$(on 1 xrun -d -- sh -c "$COUNTER")
	b=$(on 1 xrun -d -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$b")/tmp/count" 3
	# a's stream holds the channel: sent in part, then stalled
	held_move "$a" "$BATS_TEST_TMPDIR/a.out"
	apid=$MPID
	xmigrate "$b" n2 >"$BATS_TEST_TMPDIR/b.out" 2>&1 &
	bpid=$!
	xos_wait_for 30 grep -q "Job $b: moving to node n2" "$(node_tmp 1)/xosd.log"
	# (refused at once before: "Cannot reach node n2: Device or resource busy")
	sleep 1
	kill -0 "$bpid"
	assert_equal "$(where 1 "$b")" RUNNING
	n=$(wc -l <"$(jobroot 1 "$b")/tmp/count")
	wait_lines "$(jobroot 1 "$b")/tmp/count" $((n + 3))
	touch "$BATS_TEST_TMPDIR/release"
	wait "$apid" || rc=$?
	cat "$BATS_TEST_TMPDIR/a.out"
	assert_equal "$rc" 0
	wait "$bpid" || rc=$?
	cat "$BATS_TEST_TMPDIR/b.out"
	assert_equal "$rc" 0
	exactly_one "$a"
	exactly_one "$b"
	assert_equal "$(where 2 "$a")" RUNNING
	assert_equal "$(where 2 "$b")" RUNNING
	n=$(wc -l <"$(jobroot 2 "$b")/tmp/count")
	wait_lines "$(jobroot 2 "$b")/tmp/count" $((n + 3))
}

@test "its owner moves a job with a volume; a volume whose source n2 lacks is refused first" {
	two_nodes
	xos_test_user
	local vol id n
	vol=$(node_tmp 1)/vol
	mkdir "$vol"
	chown 4242:4242 "$vol"
	node_use 1
	id=$(setpriv --reuid 4242 --regid 4242 --clear-groups env XOS_SOCKET="$XOS_SOCKET" \
		"$XOS_BUILD/xrun" -d --no-home -v "$vol:/data" -- \
		sh -c 'i=0; while [ ! -e /data/go ]; do i=$((i+1)); echo $i >>/data/count; sleep 0.1; done; exit 5')
	wait_lines "$vol/count" 3
	# the volume's source is not where n2 looks (moved away on the host)
	mv "$vol" "$vol.away"
	node_use 1
	run setpriv --reuid 4242 --regid 4242 --clear-groups env XOS_SOCKET="$XOS_SOCKET" \
		"$XOS_BUILD/xmigrate" "$id" n2
	assert_failure 1
	assert_output "xmigrate: Node n2 refused job ${id:0:12}: it has no directory $vol (a volume of the job); the job runs on here"
	assert_equal "$(where 1 "$id")" RUNNING
	mv "$vol.away" "$vol"
	# its owner moves it
	node_use 1
	run setpriv --reuid 4242 --regid 4242 --clear-groups env XOS_SOCKET="$XOS_SOCKET" \
		"$XOS_BUILD/xmigrate" "$id" n2
	echo "$output"
	assert_success
	exactly_one "$id"
	assert_equal "$(on 2 job_field "$id" .owner_uid)" 4242
	n=$(wc -l <"$vol/count")
	wait_lines "$vol/count" $((n + 3))
	diff <(seq 1 $((n + 3))) <(head -n $((n + 3)) "$vol/count")
	touch "$vol/go"
	run on 2 xwait "$id"
	assert_equal "$status" 5
	[ "$(stat -c %u "$vol/count")" = 4242 ]
}

@test "n2 has the job's loader (a job there runs it): the version goes without it, n2 puts its own copy in, and the job goes on there" {
	two_nodes
	local id keep hex v n
	keep=$(on 2 xrun -d --net none -- sleep 600)
	xos_wait_for 30 state_is 2 "$keep" RUNNING
	id=$(on 1 xrun -d --net none -- sh -c 'while :; do echo x >>/tmp/count; sleep 0.1; done')
	wait_lines "$(jobroot 1 "$id")/tmp/count" 3
	hex=$(on 1 job_field "$id" .loader)
	assert_equal "$(on 2 job_field "$keep" .loader)" "$hex"
	run on 1 xmigrate "$id" n2
	echo "$output"
	assert_success
	exactly_one "$id"
	assert_equal "$(where 2 "$id")" RUNNING
	grep -q "Job $id from node n1: its loader is this node's copy (not sent)" \
		"$(node_tmp 2)/xosd.log"
	# the version n2 keeps holds the loader the job ran: n2's copy
	v=$(node_tmp 2)/state/checkpoints/$id/1/loader
	assert_equal "$(stat -c %i "$v")" "$(stat -c %i "$(node_tmp 2)/state/loader/$hex")"
	n=$(wc -l <"$(jobroot 2 "$id")/tmp/count")
	wait_lines "$(jobroot 2 "$id")/tmp/count" $((n + 3))
	# and from that version n2 restarts it
	on 2 xkill -s KILL "$id"
	on 2 xwait "$id" || true
	run on 2 xrestart "$id"
	echo "$output"
	assert_success
	xos_wait_for 30 state_is 2 "$id" RUNNING
	n=$(wc -l <"$(jobroot 2 "$id")/tmp/count")
	wait_lines "$(jobroot 2 "$id")/tmp/count" $((n + 3))
	on 2 xkill "$id" "$keep"
}

@test "n2 runs another build of the loader: the job moves with the loader it ran (the version carries it) and goes on there" {
	# n2's loader: other bytes (as a node not yet upgraded, or upgraded first)
	local ld="$BATS_TEST_TMPDIR/n2-loader" id hex
	cp "$XOS_BUILD/xos-loader" "$ld"
	printf '\0' >>"$ld"
	node_start 1 n1
	node_start 2 n2 "" --loader "$ld"
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
	id=$(on 1 xrun -d --net none -- sh -c 'while :; do echo x >>/tmp/count; sleep 0.1; done')
	wait_lines "$(jobroot 1 "$id")/tmp/count" 3
	hex=$(on 1 job_field "$id" .loader)
	[ "$hex" = "$(sha256sum "$XOS_BUILD/xos-loader" | cut -d' ' -f1)" ]
	run on 1 xmigrate "$id" n2
	echo "$output"
	assert_success
	assert_equal "$(where 2 "$id")" RUNNING
	exactly_one "$id"
	# n2 runs the job on n1's loader, taken from the version, not its own
	assert_equal "$(on 2 job_field "$id" .loader)" "$hex"
	[ "$(sha256sum <"$(node_tmp 2)/state/loader/$hex" | cut -d' ' -f1)" = "$hex" ]
	local n
	n=$(wc -l <"$(jobroot 2 "$id")/tmp/count")
	wait_lines "$(jobroot 2 "$id")/tmp/count" $((n + 3))
	# and a job started on n2 runs n2's own
	local id2
	id2=$(on 2 xrun -d --net none -- sleep 60)
	xos_wait_for 30 state_is 2 "$id2" RUNNING
	assert_equal "$(on 2 job_field "$id2" .loader)" "$(sha256sum "$ld" | cut -d' ' -f1)"
	on 2 xkill "$id"
	on 2 xkill "$id2"
}
