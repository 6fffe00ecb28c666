#!/usr/bin/env bats
# The job table at scale (DECISIONS.md (at)): jobs found by id through the
# table as it grows and as ended jobs are pruned, the queue's order kept
# between passes that write no positions, and the short form of a job that
# xps's table asks for. Correctness only: no timing is asserted.

load helpers
bats_require_minimum_version 1.5.0

teardown() { xos_teardown; }

# scale_start LINE...: a private xosd whose xosd.conf holds these lines
scale_start() {
	XOS_TMP=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.XXXXXX")
	chmod 0711 "$XOS_TMP"
	export XOS_TMP
	export XOS_SOCKET="$XOS_TMP/run/xosd.sock"
	printf '%s\n' "$@" >"$XOS_TMP/xosd.conf"
	xosd_launch --config "$XOS_TMP/xosd.conf"
}

# ps_raw JSON_FIELDS: the reply of a ps request with these extra fields
ps_raw() {
	timeout 20 python3 -c '
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
req = {"v": 1, "op": "ps", "all": True}
req.update(json.loads(sys.argv[2]))
s.sendall((json.dumps(req) + "\n").encode())
buf = b""
while not buf.endswith(b"\n"):
    c = s.recv(1 << 16)
    if not c:
        break
    buf += c
sys.stdout.write(buf.decode())' "$XOS_SOCKET" "$1"
}

# at_most_jobs N: xps -a lists N jobs or fewer (read anew at each try)
at_most_jobs() { [ "$(xps -a -q | wc -l)" -le "$1" ]; }

@test "300 held jobs: each found by its id and name; releasing the head keeps the queue's order" {
	scale_start
	local i ids=()
	for i in $(seq 1 300); do
		ids+=("$(xrun -d --hold --name "h$i" -- true)")
	done
	# every id resolves to its own job (the table grew from 64 buckets)
	for i in 1 50 150 299 300; do
		[ "$(xps -a --json "${ids[$((i - 1))]}" | jq -r '.[0].name')" = "h$i" ]
		[ "$(xps -a --json "h$i" | jq -r '.[0].id')" = "${ids[$((i - 1))]}" ]
	done
	# the head is released five times: each runs and ends; the rest keep
	# their order (lazy passes keep it beside the jobs) with positions 1..295
	for i in 1 2 3 4 5; do
		xrelease "h$i"
		wait_state "h$i" EXITED 60
	done
	run -0 xqueue --json
	[ "$(jq '.queued' <<<"$output")" -eq 295 ]
	[ "$(jq -r '[.jobs[].position] == [range(1; 296)]' <<<"$output")" = true ]
	[ "$(jq -r '[.jobs[].name] == [range(6; 301) | "h\(.)"]' <<<"$output")" = true ]
	# a job released from the middle starts; the others close up behind it
	xrelease h200
	wait_state h200 EXITED 60
	run -0 xqueue --json
	[ "$(jq -r '[.jobs[].name] == ([range(6; 301) | "h\(.)"] - ["h200"])' <<<"$output")" = true ]
	[ "$(jq -r '[.jobs[].position] == [range(1; 295)]' <<<"$output")" = true ]
}

@test "ps brief: xps's table gets the short form, xps --json the full one" {
	scale_start
	local id
	id=$(xrun -d --hold --name brief1 -- sh -c 'echo hi')
	run -0 ps_raw '{"brief": true}'
	[ "$(jq -r '.ok' <<<"$output")" = true ]
	# the short form: what the table shows, and not the rest
	[ "$(jq -r '.jobs[0] | [.id, .name, .state, (.units | length), .units[0].argv[0]] | join(" ")' \
		<<<"$output")" = "$id brief1 QUEUED 1 sh" ]
	[ "$(jq -r '.jobs[0] | has("reason") and has("created_us") and has("limits")' <<<"$output")" = true ]
	[ "$(jq -r '.jobs[0] | has("sched") or has("uid") or has("checkpoint") or has("volumes")' \
		<<<"$output")" = false ]
	run -0 ps_raw '{"brief": "yes"}'
	[ "$(jq -r '.ok' <<<"$output")" = false ]
	# xps --json: the full object still
	[ "$(xps -a --json brief1 | jq -r '.[0] | has("sched") and has("uid") and has("checkpoint")')" = true ]
	# the table: the same columns as before
	run -0 xps -a
	[[ ${lines[0]} == ID* ]]
	[[ $output == *"${id:0:12}"*brief1*QUEUED*"sh -c"* ]]
	run -0 xps -a -q
	[ "$output" = "$id" ]
	xrelease brief1
	wait_state brief1 EXITED 60
	run -0 xps -a
	[[ $output == *brief1*EXITED* ]]
}

@test "keep_ended prunes through the table: a pruned job's id finds nothing, the kept ones are found" {
	scale_start 'keep_ended = 3'
	local i ids=()
	for i in $(seq 1 8); do
		ids+=("$(xrun -d --name "k$i" -- true)")
		wait_state "k$i" EXITED 60
	done
	# pruning runs after an ended job is tidied: wait until 3 are left
	xos_wait_for 30 at_most_jobs 3
	run xps -a --json "${ids[0]}"
	[ "$status" -ne 0 ]
	[ "$(xps -a --json "${ids[7]}" | jq -r '.[0].name')" = k8 ]
	# a new job after the pruning is found by its id too
	i=$(xrun -d --name k9 -- true)
	wait_state k9 EXITED 60
	[ "$(xps -a --json "$i" | jq -r '.[0].name')" = k9 ]
}
