#!/usr/bin/env bats
# xmigrate --postcopy (issue 11; DECISIONS (ar)): the job dumped with CRIU's
# lazy pages on n1, its version without the memory pages sent to n2 and
# restored there with lazy pages; it runs on n2 while n2's lazy-pages daemon
# pulls its pages from n1's frozen tasks through the node channel (xosd's
# relay, "migrate-pages"), on demand and in the background. n1 lets go
# (MIGRATED) once every page moved and n2 runs the job. Shown: a job of
# 64 MiB moved, its memory the same and its exit code there, nothing of the
# move left on either node; a client's TCP connection to a bridge job
# counting on across the move; the link cut during the pull (the job runs on
# at n1 with its memory, n2's half killed); the refusals before anything
# stops. Needs CRIU at xos patch level 4 on the source and 3 on the target
# (scripts/setup.sh builds level 4): below that each test says so and skips.
# Nodes as in 94-migrate-net.bats: xosd daemons in network namespaces of
# their own on one test bridge, each with its own sysfs (nodes.bash).

load helpers
load nodes
bats_require_minimum_version 1.5.0

NODE_OWN_SYSFS=1
NODE_COUNT=3 # (n3: a client's node, or a third xosd; not every test starts it)
POOL=10.214.7.0/24
NODE_START=pc_node_start # (bridge_nodes, nodes.bash)

setup_file() { nodes_certs_setup n1 n2 n3; }

teardown_file() { nodes_certs_teardown; }

setup() {
	nodes_net_setup
}

teardown() {
	local rc=0
	nodes_net_teardown_checked || rc=1
	return "$rc"
}

COUNTER='i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo $i >>/tmp/count; sleep 0.1; done'

# The xos patch level of the CRIU liblxc runs (the first on PATH), 0 if none.
criu_level() {
	local v
	v=$(criu --version 2>/dev/null | sed -n 's/^GitID: .*+xos\([0-9][0-9]*\)$/\1/p')
	echo "${v:-0}"
}

# ---- this file's own ----

# postcopy_or_skip: the test skips unless the CRIU on PATH is at xos patch
# level 4 (both nodes run it: level 4 for the source's lazy dump that serves
# its pages, level 3 for the target's lazy restore in the job's user namespace)
# pc_node_start I CERT [lines]: node_start with a cgroup_parent of node I's
# own: in post-copy both nodes hold the job's container at once, and these
# nodes share one cgroup hierarchy (real nodes do not). The jobs run the
# plain build's loader: the sanitizer build's reserves terabytes of address
# space (ASan's shadow), which CRIU's lazy dump tracks for minutes and
# gigabytes before its images are out (DECISIONS (ar))
pc_node_start() {
	node_start "$1" "$2" "cgroup_parent = xos-n$1${3:+
$3}" --loader "$XOS_STATIC_LOADER"
}

# whole_on I ID SUM: the holder job runs on node I with its memory whole: it
# counts on without a gap, and at /tmp/go ends with 7 and the sha256 SUM
whole_on() {
	local r n
	r=$(jobroot "$1" "$2")
	n=$(wc -l <"$r/tmp/count")
	wait_lines "$r/tmp/count" $((n + 3))
	counts_consecutive "$r/tmp/count"
	touch "$r/tmp/go"
	run on "$1" xwait "$2"
	assert_equal "$status" 7
	run -0 on "$1" xlogs "$2"
	assert_output "sha256 $3"
}

# move_fails ID: xmigrate --postcopy of job ID from n1 to n2 fails, saying
# why and that the job runs on at n1
move_fails() {
	run on 1 xmigrate --postcopy "$1" n2
	echo "$output"
	assert_failure 1
	assert_output --regexp "^xmigrate: Migration of job ${1:0:12} to node n2 failed: .+; the job runs on here$"
}

postcopy_or_skip() {
	local l
	l=$(criu_level)
	[ "$l" -ge 4 ] ||
		skip "$(command -v criu || echo 'criu (none on PATH)') is below xos patch level 4 (GitID +xos$l): xmigrate --postcopy needs level 4 on the source (a lazy dump that serves its pages) and 3 on the target (lazy restore in the job's user namespace); scripts/setup.sh builds level 4"
}

# A job holding 64 MiB of touched memory (1 MiB of random bytes, 64 times),
# as 94-migrate-postcopy.bats's HOLDER, and counting: it writes the memory's
# sha256 to /tmp/sum, then a number a line to /tmp/count every 0.1 s (from
# its memory: a count that goes on without a gap is a memory that came
# whole), until /tmp/go; then it prints the memory's sha256 again and ends
# with 7.
HOLDER='
import hashlib, os, time
b = bytearray(os.urandom(1 << 20)) * 64
open("/tmp/sum.new", "w").write(hashlib.sha256(b).hexdigest() + "\n")
os.rename("/tmp/sum.new", "/tmp/sum")
i = 0
while not os.path.exists("/tmp/go"):
    i += 1
    with open("/tmp/count", "a") as f:
        f.write("%d\n" % i)
    time.sleep(0.1)
print("sha256", hashlib.sha256(b).hexdigest())
raise SystemExit(7)
'

# holder_on I: a --net none HOLDER job on node I, once it wrote its sum and
# counted to 3 (its id on stdout)
holder_on() {
	local id
	id=$(on "$1" xrun -d --net none -- python3 -c "$HOLDER")
	[ -n "$id" ] || return 1
	wait_file "$(jobroot "$1" "$id")/tmp/sum" 60 || return 1
	wait_lines "$(jobroot "$1" "$id")/tmp/count" 3 || return 1
	echo "$id"
}

# no_versions I ID: node I's store holds no version of job ID (none made,
# none being unpacked) and no incoming copy; the job's directory itself, or
# its holder file, may be there
no_versions() {
	local s d
	s="$(node_tmp "$1")/state/checkpoints"
	d="$s/$2"
	[ ! -e "$s/.migrate-$2.tar" ] || {
		echo "left on n$1: $s/.migrate-$2.tar" >&2
		return 1
	}
	[ -d "$d" ] || return 0
	if find "$d" -mindepth 1 -maxdepth 1 | grep -E '/(\.new-)?[0-9]+$' >&2; then
		echo "(left in n$1's store: version directories of job $2)" >&2
		return 1
	fi
}

# no_criu_of ID: no CRIU process (dump, restore, lazy-pages daemon, the
# shim) of job ID on the machine, so on neither node: each has the job's id
# in its images directory (or the container's name)
no_criu_of() {
	! pgrep -af -- "criu.*$1" >&2
}

# half_gone I ID: node I does not run job ID: its record there is gone or
# ended (not live), no container, no mount below its directories, no loader
half_gone() {
	local s
	s=$(where "$1" "$2")
	case "$s" in absent | KILLED | FAILED) ;; *) return 1 ;; esac
	[ ! -d "$(node_tmp "$1")/state/volatile/lxc/xos-$2" ] || return 1
	on "$1" no_job_mounts "$2" || return 1
	on "$1" no_loaders
}

# untouched SRC DST ID: job ID (a COUNTER or HOLDER) still runs on node SRC,
# never stopped (no restore, no version), and goes on counting; node DST
# knows nothing of it and has no container of it
untouched() {
	local src=$1 dst=$2 id=$3 n
	assert_equal "$(where "$src" "$id")" RUNNING
	assert_equal "$(where "$dst" "$id")" absent
	assert_equal "$(on "$src" job_field "$id" '.restores // 0')" 0
	[ ! -e "$(node_tmp "$src")/state/checkpoints/$id" ]
	no_store_of "$dst" "$id"
	[ ! -d "$(node_tmp "$dst")/state/volatile/lxc/xos-$id" ]
	n=$(wc -l <"$(jobroot "$src" "$id")/tmp/count")
	wait_lines "$(jobroot "$src" "$id")/tmp/count" $((n + 3))
	counts_consecutive "$(jobroot "$src" "$id")/tmp/count"
}

# fake_criu DIR LEVEL: DIR/criu, the CRIU on PATH but saying it is at xos
# patch level LEVEL (its --version; everything else is the real one's)
fake_criu() {
	local real
	real=$(command -v criu)
	mkdir -p "$1"
	cat >"$1/criu" <<EOF
#!/bin/sh
if [ "\$1" = --version ]; then
	"$real" --version | sed -n '/^Version:/p'
	echo "GitID: v0.0-test+xos$2"
	exit 0
fi
exec "$real" "\$@"
EOF
	chmod 0755 "$1/criu"
}

@test "--postcopy: a --net none job of 64 MiB moves to n2, its pages pulled after it runs there; it ends there with the same memory and its exit code; n1 shows it MIGRATED; nothing of the move left" {
	postcopy_or_skip
	pc_node_start 1 n1
	pc_node_start 2 n2
	peers_up 2
	local id sum r n
	id=$(holder_on 1)
	sum=$(cat "$(jobroot 1 "$id")/tmp/sum")
	[ "${#sum}" -eq 64 ]
	run on 1 xmigrate --postcopy --json "$id" n2
	echo "$output"
	assert_success
	echo "# xmigrate --postcopy --json: $(jq -c . <<<"$output")" >&3
	assert_equal "$(jq -r .node <<<"$output")" n2
	assert_equal "$(jq -r .postcopy <<<"$output")" true
	# every page of the 64 MiB came through the relay
	[ "$(jq -r .pages_bytes <<<"$output")" -ge $((64 << 20)) ]
	[ "$(jq -r .downtime_us <<<"$output")" -gt 0 ]
	[ "$(jq -r .bytes <<<"$output")" -gt 0 ]
	[ "$(jq -r .total_us <<<"$output")" -ge "$(jq -r .downtime_us <<<"$output")" ]
	jq -e 'has("version") and has("frozen_us") and has("transfer_us")' <<<"$output" >/dev/null
	# n1 let go, as after a stop-and-copy: MIGRATED, no container, no version
	assert_equal "$(where 1 "$id")" MIGRATED
	run -0 on 1 xps -a
	assert_output --regexp "${id:0:12} .*MIGRATED moved to node n2"
	assert_equal "$(on 1 job_field "$id" .migration.node)" n2
	[ ! -d "$(node_tmp 1)/state/volatile/lxc/xos-$id" ]
	no_store_of 1 "$id"
	# n2 runs it, and keeps no version without its pages (it could not be
	# restored) nor anything of the transfer
	assert_equal "$(where 2 "$id")" RUNNING
	assert_equal "$(on 2 job_field "$id" .reason)" "moved here from node n1"
	xos_wait_for 30 no_versions 2 "$id"
	# no CRIU of the job left on either node (n1's lazy dump, n2's restore
	# and lazy-pages daemon)
	xos_wait_for 30 no_criu_of "$id"
	# it counts on there from where it was
	r=$(jobroot 2 "$id")
	n=$(wc -l <"$r/tmp/count")
	wait_lines "$r/tmp/count" $((n + 3))
	counts_consecutive "$r/tmp/count"
	touch "$r/tmp/go"
	run on 2 xwait "$id"
	assert_equal "$status" 7
	run -0 on 2 xlogs "$id"
	assert_output "sha256 $sum"
	assert_equal "$(where 2 "$id")" EXITED
	no_versions 2 "$id"
}

@test "--postcopy: a client on n3 keeps its TCP connection to a bridge job moved from n1 to n2: the count goes on without a gap" {
	postcopy_or_skip
	bridge_nodes 3
	local id addr out n cpid figures
	id=$(on 1 xrun -d --net bridge -- python3 -c "$COUNT_SERVER")
	addr=$(on 1 job_field "$id" .net.address)
	[ -n "$addr" ]
	xos_wait_for 30 route_via 3 "$addr" 10.213.0.1
	xos_wait_for 30 route_via 2 "$addr" 10.213.0.1
	out=$BATS_TEST_TMPDIR/client.out
	xos_wait_for 30 listening 1 "$id"
	timeout 300 ip netns exec "${NS}n3" python3 -c "$COUNT_CLIENT" "$addr" "$out" &
	cpid=$!
	wait_lines "$out" 5
	run on 1 xmigrate --postcopy --json "$id" n2
	echo "$output"
	assert_success
	figures=$output
	assert_equal "$(jq -r .postcopy <<<"$figures")" true
	[ "$(jq -r .pages_bytes <<<"$figures")" -gt 0 ]
	assert_equal "$(where 2 "$id")" RUNNING
	assert_equal "$(where 1 "$id")" MIGRATED
	assert_equal "$(on 2 job_field "$id" .net.address)" "$addr"
	# n2 announced it, n1 withdrew it: n3 and n1 route it via n2, n2 has
	# no route of xosd's to it (its own bridge has the job)
	xos_wait_for 30 route_via 3 "$addr" 10.213.0.2
	xos_wait_for 30 route_via 1 "$addr" 10.213.0.2
	[ -z "$(ip -n "${NS}n2" route show proto 88 "$addr/32")" ]
	run ! ip -n "${NS}n1" link show "xv${id:0:12}"
	# the same connection counts on, 20 more lines, none missing
	n=$(wc -l <"$out")
	wait_lines "$out" $((n + 20)) 60
	kill -0 "$cpid"
	tail -n 3 "$out"
	run ! grep -q '^end:' "$out"
	counts_consecutive "$out"
	# and it is the moved job that sends them
	n=$(tail -n 1 "$out")
	grep -qx "$n" "$(jobroot 2 "$id")/tmp/sent"
	no_store_of 1 "$id"
	xos_wait_for 30 no_versions 2 "$id"
	xos_wait_for 30 no_criu_of "$id"
	echo "# the client's longest wait between two counts: $(awk 'NR > 1 && $1 - p > m { m = $1 - p } { p = $1 } END { printf "%.2f s", m }' "$out.t"); xmigrate --postcopy: $(jq -c . <<<"$figures")" >&3
	kill "$cpid" 2>/dev/null || true
	wait "$cpid" 2>/dev/null || true
}

@test "--postcopy, the link cut during the pull (XOS_MIGRATE_FAULT=cut-pull on n1): the move fails, the job runs on at n1 with its memory, n2 kills its half; nothing left" {
	postcopy_or_skip
	XOS_MIGRATE_FAULT=cut-pull pc_node_start 1 n1
	pc_node_start 2 n2
	peers_up 2
	local id sum r n
	id=$(holder_on 1)
	sum=$(cat "$(jobroot 1 "$id")/tmp/sum")
	move_fails "$id"
	# the fault acted (after n2 ran the job and some pages moved), not
	# something before it
	grep -q "XOS_MIGRATE_FAULT=cut-pull" "$(node_tmp 1)/xosd.log"
	# n1: the job runs on, its tasks let go by CRIU, never restored
	xos_wait_for 30 state_is 1 "$id" RUNNING
	assert_equal "$(on 1 job_field "$id" '.restores // 0')" 0
	# n2: its half killed, nothing of it left
	xos_wait_for 60 half_gone 2 "$id"
	xos_wait_for 30 no_versions 2 "$id"
	no_versions 1 "$id"
	xos_wait_for 30 no_criu_of "$id"
	# the channel comes back
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
	[ "$(where 2 "$id")" != RUNNING ]
	# the job's memory is whole: it counts on from where it was frozen, and
	# ends with the memory it had
	whole_on 1 "$id" "$sum"
	half_gone 2 "$id"
}

@test "--postcopy, n1's xosd killed during the pull (XOS_MIGRATE_FAULT=die-in-pull): the guard lets CRIU go of the tasks, the job runs on at n1 with its memory; n2 kills its half; n1's xosd, restarted, keeps the job" {
	postcopy_or_skip
	XOS_MIGRATE_FAULT=die-in-pull pc_node_start 1 n1
	pc_node_start 2 n2
	peers_up 2
	local id sum r n
	id=$(holder_on 1)
	sum=$(cat "$(jobroot 1 "$id")/tmp/sum")
	r=$(jobroot 1 "$id")
	run on 1 xmigrate --postcopy "$id" n2
	echo "$output"
	assert_failure
	node_use 1
	xos_wait_for 30 pid_gone "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	grep -q "XOS_MIGRATE_FAULT=die-in-pull" "$(node_tmp 1)/xosd.log"
	# with xosd gone, the guard made CRIU let go: the tasks count on at n1
	n=$(wc -l <"$r/tmp/count")
	wait_lines "$r/tmp/count" $((n + 3))
	# n2 lost n1 and killed its half
	xos_wait_for 60 half_gone 2 "$id"
	xos_wait_for 30 no_criu_of "$id"
	# n1's xosd again: the job is its own, running, never restored
	node_launch 1 --loader "$XOS_STATIC_LOADER"
	xos_wait_for 30 state_is 1 "$id" RUNNING
	assert_equal "$(on 1 job_field "$id" '.restores // 0')" 0
	xos_wait_for 30 peer_is 1 n2 up
	[ "$(where 2 "$id")" != RUNNING ]
	whole_on 1 "$id" "$sum"
	no_versions 1 "$id"
}

@test "--postcopy, n1's xosd killed after every page moved, before it let go (XOS_MIGRATE_FAULT=die-after-pull): at its restart n1 asks n2 and lets go; the job runs on at n2 with its memory" {
	postcopy_or_skip
	XOS_MIGRATE_FAULT=die-after-pull pc_node_start 1 n1
	pc_node_start 2 n2
	peers_up 2
	local id sum
	id=$(holder_on 1)
	sum=$(cat "$(jobroot 1 "$id")/tmp/sum")
	run on 1 xmigrate --postcopy "$id" n2
	assert_failure
	node_use 1
	xos_wait_for 30 pid_gone "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	grep -q "XOS_MIGRATE_FAULT=die-after-pull" "$(node_tmp 1)/xosd.log"
	# n2 has every page: it keeps the job
	xos_wait_for 30 state_is 2 "$id" RUNNING
	xos_wait_for 30 no_versions 2 "$id"
	node_launch 1 --loader "$XOS_STATIC_LOADER"
	xos_wait_for 30 state_is 1 "$id" MIGRATED
	grep -q "was pulled whole when xosd stopped: asking that node" "$(node_tmp 1)/xosd.log"
	xos_wait_for 30 no_versions 1 "$id"
	xos_wait_for 30 no_criu_of "$id"
	assert_equal "$(where 2 "$id")" RUNNING
	whole_on 2 "$id" "$sum"
}

@test "--postcopy, n2's xosd killed during the pull (XOS_MIGRATE_FAULT=die-in-pull-in on n2): the job runs on at n1 with its memory; n2, restarted, kills what it restored" {
	postcopy_or_skip
	pc_node_start 1 n1
	XOS_MIGRATE_FAULT=die-in-pull-in pc_node_start 2 n2
	peers_up 2
	local id sum
	id=$(holder_on 1)
	sum=$(cat "$(jobroot 1 "$id")/tmp/sum")
	move_fails "$id"
	node_use 2
	xos_wait_for 30 pid_gone "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	grep -q "XOS_MIGRATE_FAULT=die-in-pull-in" "$(node_tmp 2)/xosd.log"
	xos_wait_for 30 state_is 1 "$id" RUNNING
	assert_equal "$(on 1 job_field "$id" '.restores // 0')" 0
	node_launch 2 --loader "$XOS_STATIC_LOADER"
	xos_wait_for 60 half_gone 2 "$id"
	grep -q "had not all its pages when xosd stopped: killed here" "$(node_tmp 2)/xosd.log"
	xos_wait_for 30 no_versions 2 "$id"
	xos_wait_for 30 no_criu_of "$id"
	no_versions 1 "$id"
	whole_on 1 "$id" "$sum"
}

# stalled_move [FAULT]: nodes n1 (dump_timeout 4 s, XOS_MIGRATE_FAULT=FAULT)
# and n2 (its pull stalls after a MiB: stall-pull-in); a holder job of n1
# moved with --postcopy, which fails for the stalled pull; sets ID and SUM
stalled_move() {
	XOS_MIGRATE_FAULT=${1:-} pc_node_start 1 n1 "dump_timeout = 4s"
	XOS_MIGRATE_FAULT=stall-pull-in pc_node_start 2 n2
	peers_up 2
	ID=$(holder_on 1)
	SUM=$(cat "$(jobroot 1 "$ID")/tmp/sum")
	move_fails "$ID"
	assert_output --partial "its pull stalled (no page moved for dump_timeout)"
	grep -q "XOS_MIGRATE_FAULT=stall-pull-in" "$(node_tmp 2)/xosd.log"
}

# back_whole ID SUM: the job runs on at n1, never restored, with its memory
# whole; n2's half is gone, no version and no CRIU of it left anywhere
back_whole() {
	xos_wait_for 30 state_is 1 "$1" RUNNING
	assert_equal "$(on 1 job_field "$1" '.restores // 0')" 0
	xos_wait_for 60 half_gone 2 "$1"
	xos_wait_for 30 no_versions 2 "$1"
	xos_wait_for 30 no_criu_of "$1"
	no_versions 1 "$1"
	whole_on 1 "$1" "$2"
}

@test "--postcopy, the pull stalled (XOS_MIGRATE_FAULT=stall-pull-in on n2): after n1's dump_timeout without a page, CRIU is told to stop serving; the job runs on at n1 with its memory, n2 kills its half" {
	postcopy_or_skip
	stalled_move
	# told, CRIU let go of the tasks itself: it was not killed
	run ! grep -q "CRIU did not stop serving its pages: killed" "$(node_tmp 1)/xosd.log"
	back_whole "$ID" "$SUM"
}

@test "--postcopy, the pull stalled and CRIU deaf to the abort (XOS_MIGRATE_FAULT=deaf-abort on n1): CRIU is killed after 10 s, the tasks run on at n1 with their memory, n2 kills its half" {
	postcopy_or_skip
	stalled_move deaf-abort
	grep -q "XOS_MIGRATE_FAULT=deaf-abort" "$(node_tmp 1)/xosd.log"
	grep -q "CRIU did not stop serving its pages: killed" "$(node_tmp 1)/xosd.log"
	back_whole "$ID" "$SUM"
}

@test "--postcopy: a move to n2 asked while a pull to n2 runs waits, its job running, until the pull is over (a version would hold the pull's pages behind it); then it moves" {
	postcopy_or_skip
	pc_node_start 1 n1 "dump_timeout = 4s"
	XOS_MIGRATE_FAULT=stall-pull-in pc_node_start 2 n2
	peers_up 2
	local a b apid bpid rc=0
	a=$(holder_on 1)
	SUM=$(cat "$(jobroot 1 "$a")/tmp/sum")
	b=$(on 1 xrun -d --net none -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$b")/tmp/count" 3
	node_use 1
	xmigrate --postcopy "$a" n2 >"$BATS_TEST_TMPDIR/a.out" 2>&1 &
	apid=$!
	xos_wait_for 60 grep -q "XOS_MIGRATE_FAULT=stall-pull-in" "$(node_tmp 2)/xosd.log"
	xmigrate "$b" n2 >"$BATS_TEST_TMPDIR/b.out" 2>&1 &
	bpid=$!
	xos_wait_for 30 grep -q "Job $b: its move to node n2 waits for the page pull of job $a between the two nodes to end" \
		"$(node_tmp 1)/xosd.log"
	# b was not stopped: it counts on at n1 while a's pull is stalled
	assert_equal "$(where 1 "$b")" RUNNING
	wait_lines "$(jobroot 1 "$b")/tmp/count" $(($(wc -l <"$(jobroot 1 "$b")/tmp/count") + 3))
	wait "$apid" || rc=$?
	cat "$BATS_TEST_TMPDIR/a.out"
	assert_equal "$rc" 1
	grep -q "its pull stalled (no page moved for dump_timeout)" "$BATS_TEST_TMPDIR/a.out"
	rc=0
	wait "$bpid" || rc=$?
	cat "$BATS_TEST_TMPDIR/b.out"
	assert_equal "$rc" 0
	assert_equal "$(where 2 "$b")" RUNNING
	assert_equal "$(where 1 "$b")" MIGRATED
	# (b's loader would count as a's left on n2)
	on 2 xkill -s KILL "$b" >/dev/null
	on 2 xwait "$b" >/dev/null || true
	back_whole "$a" "$SUM"
}

@test "--postcopy refused before anything stops: a node that is not a peer that is up, the job's own node, a job that is not running" {
	postcopy_or_skip
	pc_node_start 1 n1
	pc_node_start 2 n2
	peers_up 2
	local id ended
	id=$(on 1 xrun -d --net none -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$id")/tmp/count" 3
	run on 1 xmigrate --postcopy "$id" n9
	assert_failure 1
	assert_output "xmigrate: Node n9 is not a peer that is up (see xnodes)"
	run on 1 xmigrate --postcopy "$id" n1
	assert_failure 1
	assert_output "xmigrate: Job ${id:0:12} already runs on node n1"
	untouched 1 2 "$id"
	# a job that ended
	ended=$(on 1 xrun -d --net none -- true)
	on 1 xwait "$ended" || true
	run on 1 xmigrate --postcopy "$ended" n2
	assert_failure 1
	assert_output "xmigrate: Job ${ended:0:12} is EXITED: only a running job can be moved"
	assert_equal "$(where 1 "$ended")" EXITED
	assert_equal "$(where 2 "$ended")" absent
	no_store_of 2 "$ended"
}

@test "--postcopy refused before anything stops when a node's CRIU is below its xos patch level (the source's below 4, the target's below 3): the message says lazy pages" {
	postcopy_or_skip
	# n1: the CRIU on PATH; n2 and n3: the same CRIU, saying it is at
	# level 2 and 3 (only their --version differs)
	fake_criu "$BATS_TEST_TMPDIR/criu2" 2
	fake_criu "$BATS_TEST_TMPDIR/criu3" 3
	pc_node_start 1 n1
	PATH="$BATS_TEST_TMPDIR/criu2:$PATH" pc_node_start 2 n2
	PATH="$BATS_TEST_TMPDIR/criu3:$PATH" pc_node_start 3 n3
	peers_up 3
	local a b
	# the target below level 3: n2 refuses in its pre-flight
	a=$(on 1 xrun -d --net none -- sh -c "$COUNTER")
	wait_lines "$(jobroot 1 "$a")/tmp/count" 3
	run on 1 xmigrate --postcopy "$a" n2
	echo "$output"
	assert_failure 1
	assert_output --partial "lazy pages"
	assert_output --partial "${a:0:12}"
	untouched 1 2 "$a"
	# the source below level 4: n3 refuses at once (n1 would take it)
	b=$(on 3 xrun -d --net none -- sh -c "$COUNTER")
	wait_lines "$(jobroot 3 "$b")/tmp/count" 3
	run on 3 xmigrate --postcopy --json "$b" n1
	echo "$output"
	assert_failure 1
	assert_output --partial "lazy pages"
	untouched 3 1 "$b"
	# and stop-and-copy is not refused there for it
	run on 3 xmigrate "$b" n1
	echo "$output"
	assert_success
	assert_equal "$(where 1 "$b")" RUNNING
	assert_equal "$(where 3 "$b")" MIGRATED
}
