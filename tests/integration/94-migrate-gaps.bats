#!/usr/bin/env bats
# xmigrate's gaps (issue 11): the bound on incoming data (a peer cannot fill
# a node's disk: the target counts what comes against migrate_max_incoming,
# the job's own size (memory limit, --disk, output) and half its store's free
# space, refuses past it and drops what came; the job runs on at its source),
# and the progress line on a terminal.

load helpers
load nodes
bats_require_minimum_version 1.5.0

setup_file() { nodes_certs_setup n1 n2; }

teardown_file() { nodes_certs_teardown; }

setup() {
	nodes_net_setup
}

teardown() {
	nodes_net_teardown
}

@test "n2 refuses a move whose data passes its migrate_max_incoming; the job runs on at n1, n2 keeps nothing of it" {
	node_start 1 n1
	node_start 2 n2 "migrate_max_incoming = 2M"
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
	local id n
	# 8 MiB in the job's layer: its version is larger than n2 takes
	id=$(on 1 xrun -d --net none -- sh -c 'head -c 8388608 /dev/urandom >/tmp/blob; i=0; while :; do i=$((i+1)); echo $i >>/tmp/count; sleep 0.1; done')
	wait_lines "$(jobroot 1 "$id")/tmp/count" 3
	run on 1 xmigrate "$id" n2
	echo "$output"
	assert_failure
	assert_output --partial "Migration of job ${id:0:12} to node n2 failed: its data passed 2 MiB, the most this node takes for it (migrate_max_incoming); the job runs on here"
	on 1 wait_state "$id" RUNNING
	n=$(wc -l <"$(jobroot 1 "$id")/tmp/count")
	wait_lines "$(jobroot 1 "$id")/tmp/count" $((n + 3))
	assert_equal "$(where 2 "$id")" absent
	[ ! -e "$(node_tmp 2)/state/checkpoints/.migrate-$id.tar" ]
	[ ! -e "$(node_tmp 2)/state/checkpoints/$id" ]
	grep -q "Job $id from node n1 cannot run here: its data passed 2 MiB" "$(node_tmp 2)/xosd.log"
}

@test "xmigrate on a terminal shows the move's phase, the bytes sent and the rate, then the figures" {
	node_start 1 n1
	node_start 2 n2
	xos_wait_for 30 peer_is 1 n2 up
	xos_wait_for 30 peer_is 2 n1 up
	local id
	# 64 MiB of touched memory: the move lasts long enough for a progress line
	id=$(on 1 xrun -d --net none -- python3 -c "
import time
b = bytearray(64 << 20)
for i in range(0, len(b), 4096):
    b[i] = 1
open('/tmp/ready', 'w').write('1')
while True:
    time.sleep(1)")
	xos_wait_for 60 test -s "$(jobroot 1 "$id")/tmp/ready"
	node_use 1
	# (script gives xmigrate a terminal; its output is what the terminal got)
	run script -qfec "xmigrate $id n2" /dev/null
	echo "$output"
	assert_success
	assert_output --partial "Moving job $id to node n2..."
	assert_output --regexp "[0-9]+\.[0-9] s  (check|dump|send|doubt) +[0-9.]+[BKMGTPE] sent, [0-9]+\.[0-9] MiB/s"
	assert_output --regexp "${id:0:12}: runs on node n2 \(frozen [0-9]+ ms"
	assert_equal "$(where 2 "$id")" RUNNING
	# the figures are not kept in the record once the move is over
	assert_equal "$(on 1 job_field "$id" .migration.phase)" migrated
	assert_equal "$(on 1 job_field "$id" .migration.bytes)" null
}
