#!/usr/bin/env bats
# The scheduler (issue 14): capacity and admission, QUEUED with reasons,
# priority, fair share, backfill, --after, --time, --hold, durability of the
# queue, and what is refused at submission.

load helpers
bats_require_minimum_version 1.5.0

# sched_start LINE...: a private xosd whose xosd.conf holds these lines
sched_start() {
	XOS_TMP=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.XXXXXX")
	chmod 0711 "$XOS_TMP"
	export XOS_TMP
	export XOS_SOCKET="$XOS_TMP/run/xosd.sock"
	printf '%s\n' "$@" >"$XOS_TMP/xosd.conf"
	# (each use of the queue summary that submissions keep between passes
	# is checked against a walk of every job: a mismatch is logged)
	XOS_SCHED_SELFCHECK=1 xosd_launch --config "$XOS_TMP/xosd.conf"
}

teardown() { sched_teardown; }

# as_user UID CMD...: a command of the xos CLI as that (non-root) user
as_user() {
	local uid=$1
	shift
	setpriv --reuid "$uid" --regid "$uid" --clear-groups env XOS_SOCKET="$XOS_SOCKET" \
		"$XOS_BUILD/$1" "${@:2}"
}

# start_order NAME...: the named jobs' names, in the order they started
start_order() {
	xps -a --json "$@" | jq -r 'sort_by(.started_us) | map(.name) | join(" ")'
}

ended() { # JOB...: every one has ended
	local j
	for j in "$@"; do
		case $(job_field "$j" .state) in QUEUED | STARTING | RUNNING) return 1 ;; esac
	done
}

# no_live_jobs: xps lists none (read anew at each try of wait_for)
no_live_jobs() { [ "$(xps -q | wc -l)" -eq 0 ]; }

@test "capacity 2 cpus, five --cpus 1 jobs: two run, three QUEUED with reasons, then start in order" {
	sched_start 'capacity_cpus = 2'
	for i in 1 2 3 4 5; do
		xrun -d --cpus 1 --name "j$i" -- sh -c "$GATE" >/dev/null 2>&1
	done
	wait_state j1 RUNNING
	wait_state j2 RUNNING
	for i in 3 4 5; do assert_equal "$(job_field "j$i" .state)" QUEUED; done
	assert_equal "$(job_field j3 .reason)" "waiting for 1 cpu"
	assert_equal "$(job_field j4 .reason)" "waiting for 1 cpu; 1 job ahead"
	assert_equal "$(job_field j5 .reason)" "waiting for 1 cpu; 2 jobs ahead"
	assert_equal "$(job_field j5 .sched.position)" 3
	run xps
	assert_output --regexp 'j3 +[a-z]+ +QUEUED waiting for 1 cpu'
	run xqueue
	assert_line --index 1 --regexp '^1 +[0-9a-f]{12} j3 .*waiting for 1 cpu$'

	# an attached xrun of a queued job: its reason, then its output
	xrun --cpus 1 --name att -- echo output-after-queue >"$XOS_TMP/att.out" 2>&1 &
	att=$!
	wait_for 30 grep -q "is queued: waiting for 1 cpu; 3 jobs ahead" "$XOS_TMP/att.out"
	refute grep -q output-after-queue "$XOS_TMP/att.out"

	# they start in order as others end
	open_gate "$(job_field j1 .id)"
	wait_state j3 RUNNING
	assert_equal "$(job_field j4 .state)" QUEUED
	assert_equal "$(job_field j4 .reason)" "waiting for 1 cpu"
	open_gate "$(job_field j2 .id)"
	wait_state j4 RUNNING
	assert_equal "$(job_field j5 .state)" QUEUED
	open_gate "$(job_field j3 .id)"
	wait_state j5 RUNNING
	open_gate "$(job_field j4 .id)"
	wait "$att"
	run cat "$XOS_TMP/att.out"
	assert_line --index 0 --partial "is queued: waiting for 1 cpu; 3 jobs ahead"
	assert_line --index "$((${#lines[@]} - 1))" output-after-queue
	open_gate "$(job_field j5 .id)"
	wait_for 30 ended j1 j2 j3 j4 j5
	assert_equal "$(start_order j1 j2 j3 j4 j5 att)" "j1 j2 j3 j4 j5 att"
}

@test "the default node starts jobs at once (no --cpus: no request)" {
	sched_start
	for i in 1 2 3 4 5 6; do xrun -d --name "n$i" -- sh -c "$GATE" >/dev/null; done
	for i in 1 2 3 4 5 6; do wait_state "n$i" RUNNING; done
	for i in 1 2 3 4 5 6; do open_gate "$(job_field "n$i" .id)"; done
}

@test "priority: higher first whatever the submission order; non-root only at or below the default" {
	sched_start 'capacity_cpus = 1'
	xrun -d --cpus 1 --name blocker -- sh -c "$GATE" >/dev/null
	wait_state blocker RUNNING
	xrun -d --cpus 1 --priority 10 --name low -- true 2>/dev/null
	xrun -d --cpus 1 --name default -- true 2>/dev/null
	xrun -d --cpus 1 --priority 5000 --name high -- true 2>/dev/null
	assert_equal "$(job_field high .sched.position)" 1
	assert_equal "$(job_field low .sched.position)" 3
	open_gate "$(job_field blocker .id)"
	wait_for 60 ended low default high
	assert_equal "$(start_order low default high)" "high default low"
	xos_test_user
	run as_user 4242 xrun -d --priority 1001 -- true
	assert_failure 125
	assert_output --partial "Only root may raise a job's priority above 1000"
	run as_user 4242 xrun --priority 999 -- true
	assert_success
}

@test "fair share: a user who submitted first alternates with one who submitted later" {
	sched_start 'capacity_cpus = 1'
	xos_test_user
	xrun -d --cpus 1 --name blocker -- sh -c "$GATE" >/dev/null
	wait_state blocker RUNNING
	# user P (nobody) submits three, then user Q (xostest) three
	for i in 1 2 3; do as_user 65534 xrun -d --cpus 1 --name "p$i" -- true 2>/dev/null; done
	for i in 1 2 3; do as_user 4242 xrun -d --cpus 1 --name "q$i" -- true 2>/dev/null; done
	# first come first served between equals: P's three come first for now
	assert_equal "$(job_field p3 .sched.position)" 3
	open_gate "$(job_field blocker .id)"
	wait_for 120 ended p1 p2 p3 q1 q2 q3
	# each charged cpus x whole seconds: these short jobs 1 each (a job that
	# took longer here would change the order, and is named)
	run xps -a --json p1 p2 p3 q1 q2 q3
	assert_equal "$(jq -r 'map(select(.ended_us - .started_us > 1000000)) | map(.name) | join(" ")' <<<"$output")" ""
	assert_equal "$(start_order p1 p2 p3 q1 q2 q3)" "p1 q1 p2 q2 p3 q3"
	# (usage.json is written shortly after the charges, not before the answers)
	xos_wait_for 10 jq -e '.users | map(select(.uid == 65534 and .usage > 2.99)) | length == 1' \
		"$XOS_TMP/state/usage.json"
}

@test "backfill: a short job runs ahead without delaying the first queued one" {
	sched_start 'capacity_cpus = 2'
	xrun -d --cpus 1 --time 1h --name running -- sh -c "$GATE" >/dev/null
	wait_state running RUNNING
	started=$(job_field running .started_us)
	xrun -d --cpus 2 --name big -- true 2>/dev/null
	est=$(job_field big .sched.estimated_start_us)
	assert_equal "$est" "$((started + 3600000000))"
	xrun -d --cpus 1 --time 2h --name long -- sh -c "$GATE" >/dev/null 2>&1
	xrun -d --cpus 1 --time 30s --name short -- sh -c "$GATE" >/dev/null 2>&1
	xrun -d --cpus 1 --name nolimit -- sh -c "$GATE" >/dev/null 2>&1
	wait_state short RUNNING
	# the long one and the one without --time would delay big: they wait
	assert_equal "$(job_field long .state)" QUEUED
	assert_equal "$(job_field nolimit .state)" QUEUED
	assert_equal "$(job_field big .state)" QUEUED
	assert_equal "$(job_field big .sched.position)" 1
	assert_equal "$(job_field big .sched.estimated_start_us)" "$est"
	# big starts first once the running ones end
	open_gate "$(job_field short .id)"
	open_gate "$(job_field running .id)"
	wait_state big EXITED
	wait_state long RUNNING
	assert [ "$(job_field long .started_us)" -gt "$(job_field big .started_us)" ]
	open_gate "$(job_field long .id)"
	wait_state nolimit RUNNING
	open_gate "$(job_field nolimit .id)"
}

@test "--after in each mode; a dependency that cannot be met: DEPENDENCY_NEVER_SATISFIED" {
	sched_start
	good=$(xrun -d --name good -- sh -c "$GATE; exit 0")
	flop=$(xrun -d --name flop -- sh -c "$GATE; exit 3")
	xrun -d --name ok_good --after good -- true 2>/dev/null
	xrun -d --name fail_good --after good:fail -- true 2>/dev/null
	xrun -d --name ok_flop --after flop:ok -- true 2>/dev/null
	xrun -d --name fail_flop --after flop:fail -- true 2>/dev/null
	xrun -d --name any_flop --after "$flop:any" -- true 2>/dev/null
	xrun -d --name both --after good:ok --after flop:fail -- true 2>/dev/null
	assert_equal "$(job_field ok_good .state)" QUEUED
	assert_equal "$(job_field ok_good .reason)" "waiting for job good to end (--after good:ok)"
	assert_equal "$(job_field both .state)" QUEUED
	open_gate "$good"
	wait_state ok_good EXITED
	wait_state fail_good DEPENDENCY_NEVER_SATISFIED
	assert_equal "$(job_field fail_good .reason)" \
		"dependency good succeeded (EXITED(0)); --after good:fail needs it to fail"
	assert_equal "$(job_field fail_good .exit_code)" 125
	assert_equal "$(job_field both .state)" QUEUED
	open_gate "$flop"
	wait_state ok_flop DEPENDENCY_NEVER_SATISFIED
	assert_equal "$(job_field ok_flop .reason)" \
		"dependency flop ended EXITED(3); --after flop:ok needs it to exit with code 0"
	wait_state fail_flop EXITED
	wait_state any_flop EXITED
	wait_state both EXITED
}

@test "--time ends a job at its limit as TIMEOUT; --hold waits for xrelease" {
	sched_start
	run xrun --time 2s -- sleep 60
	assert_equal "$status" 143
	id=$(xps -a -q | head -1)
	assert_equal "$(job_field "$id" .state)" TIMEOUT
	assert_equal "$(job_field "$id" .reason)" "time limit reached (--time 2s)"
	assert_equal "$(job_field "$id" .exit_code)" 143

	held=$(xrun -d --hold --name held -- true 2>/dev/null)
	assert_equal "$(job_field held .state)" QUEUED
	assert_equal "$(job_field held .reason)" "held (xrelease held lets it start)"
	run xrelease held
	assert_success
	wait_state "$held" EXITED
	run xrelease held
	assert_failure
	assert_output --partial "is not held"
}

@test "kill -9 of xosd with 100 queued jobs: after restart all 100 run exactly once, in order" {
	local n=${SCHED_N:-100} # (SCHED_N: fewer, to try it out)
	sched_start 'capacity_cpus = 1'
	mkdir -m 0777 "$XOS_TMP/out" # (root's jobs run as nobody)
	xrun -d --cpus 1 --name blocker -- sh -c "$GATE" >/dev/null
	wait_state blocker RUNNING
	for i in $(seq 1 "$n"); do
		xrun -d --cpus 1 -v "$XOS_TMP/out:/out" -- sh -c "echo $i >>/out/log" >/dev/null 2>&1
	done
	assert_equal "$(xqueue --json | jq '.jobs | length')" "$n"

	kill -9 "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	XOSD_PID=
	XOS_SCHED_SELFCHECK=1 xosd_launch --config "$XOS_TMP/xosd.conf"
	assert_equal "$(xqueue --json | jq '.jobs | length')" "$n"
	assert_equal "$(xqueue --json | jq -r '.jobs[0].reason')" "waiting for 1 cpu"

	open_gate "$(job_field blocker .id)"
	wait_for 600 has_lines "$XOS_TMP/out/log" "$n"
	wait_for 60 no_live_jobs
	assert_equal "$(cat "$XOS_TMP/out/log")" "$(seq 1 "$n")"
	assert_equal "$(xps -a --json | jq '[.[] | select(.state == "EXITED")] | length')" "$((n + 1))"
}

@test "priorities, holds, dependencies and users' usage survive kill -9 of xosd" {
	sched_start 'capacity_cpus = 1'
	xos_test_user
	# user P (nobody) has used the node before; user Q (xostest) has not
	as_user 65534 xrun --cpus 1 -- true
	xrun -d --cpus 1 --name blocker -- sh -c "$GATE" >/dev/null
	wait_state blocker RUNNING
	as_user 65534 xrun -d --cpus 1 --name p1 -- true 2>/dev/null
	as_user 4242 xrun -d --cpus 1 --name q1 -- true 2>/dev/null
	xrun -d --cpus 1 --priority 2000 --name urgent -- true 2>/dev/null
	xrun -d --cpus 1 --hold --name held -- true 2>/dev/null
	xrun -d --cpus 1 --after blocker --name after -- true 2>/dev/null
	before=$(xqueue --json | jq -c '[.jobs[] | [.name, .position, .reason]]')

	kill -9 "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	XOSD_PID=
	XOS_SCHED_SELFCHECK=1 xosd_launch --config "$XOS_TMP/xosd.conf"
	run xqueue --json
	assert_equal "$(jq -c '[.jobs[] | [.name, .position, .reason]]' <<<"$output")" "$before"
	# the order: priority, then the users who have used nothing yet (Q and
	# root) in submission order, then P, whose usage was kept
	assert_equal "$(jq -r '[.jobs[] | .name] | join(" ")' <<<"$output")" "urgent q1 held after p1"
	assert_equal "$(jq -r '.jobs[2].reason' <<<"$output")" "held (xrelease held lets it start)"
	assert_equal "$(jq -r '.jobs[3].reason' <<<"$output")" \
		"waiting for job blocker to end (--after blocker:ok)"
	open_gate "$(job_field blocker .id)"
	wait_for 60 ended urgent q1 p1 after
	assert_equal "$(start_order urgent q1 p1)" "urgent q1 p1"
	assert_equal "$(job_field held .state)" QUEUED
	xrelease held
	wait_state held EXITED
}

@test "bad input at submission: a clear error, nothing queued" {
	sched_start 'capacity_cpus = 2' 'capacity_memory = 1G'
	run xrun -d --after nosuchjob -- true
	assert_failure 125
	assert_output --partial "Dependency 'nosuchjob': no such job"
	run xrun -d --after 'x:sometimes' -- true
	assert_failure 125
	assert_output --partial "Invalid dependency 'x:sometimes'"
	run xrun -d --priority -5 -- true
	assert_failure 125
	assert_output --partial "Invalid --priority value '-5'"
	run xrun -d --priority 99999999999999999999 -- true
	assert_failure 125
	assert_output --partial "Invalid --priority value '99999999999999999999'"
	run xrun -d --cpus 3 -- true
	assert_failure 125
	assert_output --partial "The job asks for 3 cpus but this node has 2 cpus for jobs"
	run xrun -d --memory 2G -- true
	assert_failure 125
	assert_output --partial "The job asks for 2 GiB of memory but this node has 1 GiB of memory"
	# the daemon checks what another client may send, too
	run xos_raw_run '"priority": -1'
	assert_output --partial "Invalid priority: use a whole number from 0 to 1000000"
	run xos_raw_run '"priority": 99999999999999999999999'
	assert_output --partial "Invalid priority"
	assert_equal "$(xps -a -q | wc -l)" 0
	assert_equal "$(find "$XOS_TMP/state/jobs" -mindepth 1 -maxdepth 1 | wc -l)" 0
}

# xos_raw_run FIELDS: a run request with these extra fields, sent as is; the answer
xos_raw_run() {
	timeout 10 python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(("{\"v\":1,\"op\":\"run\",\"argv\":[\"true\"],%s}\n" % sys.argv[2]).encode())
print(s.makefile().readline(), end="")' "$XOS_SOCKET" "$1"
}

fast_waits() { xqueue --json | jq -r .passes.fast_waits; }
summary_walks() { xqueue --json | jq -r .passes.summary_walks; }

# xrun -d NAME ARGS...: submit a detached job; $output holds what xrun said of its queueing
submit_queued() {
	local name=$1
	shift
	run --separate-stderr xrun -d --cpus 1 --name "$name" "$@" -- true
	assert_success
	output=$stderr
}

@test "a submission that can only wait is decided without a pass, and as a pass decides it" {
	sched_start 'capacity_cpus = 1'
	xrun -d --cpus 1 --name run1 -- sh -c "$GATE" >/dev/null
	wait_state run1 RUNNING
	# the first job that waits: a full pass (it holds the reservation)
	f0=$(fast_waits)
	submit_queued q1
	assert_output --partial "is queued: waiting for 1 cpu"
	assert_equal "$(fast_waits)" "$f0"
	# behind it: the fast path, saying what a full pass (xps) says
	submit_queued q2
	assert_output --partial "is queued: waiting for 1 cpu; 1 job ahead"
	assert_equal "$(fast_waits)" "$((f0 + 1))"
	submit_queued q3 --hold
	submit_queued q4
	assert_output --partial "is queued: waiting for 1 cpu; 2 jobs ahead"
	assert_equal "$(fast_waits)" "$((f0 + 2))"
	assert_equal "$(job_field q4 .reason)" "waiting for 1 cpu; 2 jobs ahead"
	assert_equal "$(job_field q4 .sched.position)" 4
	# one after another, they are decided from the summary kept between
	# submissions, without a walk (each use checked against one: see
	# sched_start and teardown)
	w0=$(summary_walks)
	submit_queued qa
	assert_output --partial "is queued: waiting for 1 cpu; 3 jobs ahead"
	submit_queued qb
	assert_output --partial "is queued: waiting for 1 cpu; 4 jobs ahead"
	submit_queued qc
	assert_output --partial "is queued: waiting for 1 cpu; 5 jobs ahead"
	assert_equal "$(fast_waits)" "$((f0 + 5))"
	assert_equal "$(summary_walks)" "$w0"
	assert_equal "$(job_field qc .sched.position)" 7
	# not last in the order (a higher priority): a full pass places it
	submit_queued q5 --priority 2000
	assert_output --partial "is queued: waiting for 1 cpu"
	refute_output --partial "ahead"
	assert_equal "$(fast_waits)" "$((f0 + 5))"
	assert_equal "$(job_field q5 .sched.position)" 1
	# a job with a dependency, and one whose ahead all have --time: a full pass
	submit_queued q6 --after q1
	assert_equal "$(fast_waits)" "$((f0 + 5))"
	open_gate "$(job_field run1 .id)"
	wait_for 30 ended run1 q5 q1 q2 q4 qa qb qc q6
	assert_equal "$(start_order run1 q5 q1 q2 q4 qa qb qc q6)" "run1 q5 q1 q2 q4 qa qb qc q6"
	# (each has its start, also one that ended before xosd saw it run:
	# then its unit's, as the loader reported it)
	run jq -e 'all(.[]; .started_us > 0 and .started_us <= .ended_us)' \
		< <(xps -a --json run1 q5 q1 q2 q4 qa qb qc q6)
	assert_success
	xkill q3 >/dev/null 2>&1 || true
}

@test "a job's end on a full node decides the jobs it can change and stops: those behind wait in order" {
	sched_start 'capacity_cpus = 1'
	xrun -d --cpus 1 --name run1 -- sh -c "$GATE" >/dev/null
	wait_state run1 RUNNING
	for i in 1 2 3 4 5 6; do
		xrun -d --cpus 1 --name "n$i" -- true >/dev/null
	done
	s0=$(xqueue --json | jq .passes.kept_stopped)
	# each end starts the next; its pass decides that one and the one
	# after, which waits, and stops (checked against a walk: sched_start).
	# Waited for in n6's record: an xps would make a full pass, and an
	# xwait following n6 would want its reason (no stop before it)
	id6=$(job_field n6 .id)
	open_gate "$(job_field run1 .id)"
	wait_for 60 jq -e '.state == "EXITED"' "$XOS_TMP/state/jobs/$id6/job.json"
	assert_equal "$(start_order run1 n1 n2 n3 n4 n5 n6)" "run1 n1 n2 n3 n4 n5 n6"
	# the ends of run1 and n1-n3 left more than one job behind the one
	# they started (each pass decided two: the one that starts, the next)
	[ "$(xqueue --json | jq .passes.kept_stopped)" -ge $((s0 + 4)) ]
}

@test "a submission behind a preemptible running job gets a full pass (it may preempt)" {
	sched_start 'capacity_cpus = 1'
	xrun -d --cpus 1 --preemptible --name low -- sh -c "$GATE" >/dev/null
	wait_state low RUNNING
	submit_queued q1
	f0=$(fast_waits)
	submit_queued q2
	assert_output --partial "is queued: waiting for 1 cpu; 1 job ahead"
	assert_equal "$(fast_waits)" "$f0"
	open_gate "$(job_field low .id)"
	wait_for 30 ended low q1 q2
}

@test "xrelease and a job's end are decided over the queue kept between passes, without a walk of every job" {
	sched_start 'capacity_cpus = 1'
	for i in 1 2 3 4 5; do
		xrun -d --hold --cpus 1 --name "h$i" -- true >/dev/null
	done
	xrelease h1 >/dev/null
	wait_state h1 EXITED
	run xqueue --json
	k0=$(jq .passes.kept <<<"$output")
	w0=$(jq .passes.kept_walks <<<"$output")
	[ "$k0" -ge 1 ]
	for i in 2 3; do
		xrelease "h$i" >/dev/null
		wait_state "h$i" EXITED
	done
	run xqueue --json
	# each release and each end a pass over the kept queue; none walked
	[ "$(jq .passes.kept <<<"$output")" -ge $((k0 + 2)) ]
	assert_equal "$(jq .passes.kept_walks <<<"$output")" "$w0"
	# the held jobs left out of it wait as a full pass says
	assert_equal "$(jq -r '[.jobs[] | .name] | join(" ")' <<<"$output")" "h4 h5"
	assert_equal "$(job_field h4 .reason)" "held (xrelease h4 lets it start)"
	assert_equal "$(job_field h5 .state)" QUEUED
	# a listing makes a full pass only where passes left places stale, and
	# counts it apart from the events' (refreshes; the bench takes them out)
	run xqueue --json
	r0=$(jq .passes.refreshes <<<"$output")
	c0=$(jq .passes.count <<<"$output")
	xps >/dev/null
	run xqueue --json
	assert_equal "$(jq .passes.refreshes <<<"$output")" "$r0"
	assert_equal "$(jq .passes.count <<<"$output")" "$c0"
	xrelease h4 >/dev/null # (a lazy pass: the places it did not decide are stale)
	run xqueue --json
	r1=$(jq .passes.refreshes <<<"$output")
	[ "$r1" -ge $((r0 + 1)) ]
	[ "$(jq .passes.refresh_us <<<"$output")" -le "$(jq .passes.total_us <<<"$output")" ]
	[ "$(jq .passes.count <<<"$output")" -ge $((c0 + 2)) ]
	wait_state h4 EXITED
}

# usage.json damaged in each way its reader refuses (not JSON, not lists, a
# uid out of range, a usage not a number, a VO not a string or missing, more
# groups than it keeps): xosd starts, says it ignores the file, orders by
# usage from nothing, and writes a good one
@test "a damaged usage.json is ignored with a warning, and written anew at the next charge" {
	local bad
	for bad in 'not json' '{"users": 3}' '{"users": [{"uid": 4294967296, "usage": 1, "stamp_us": 1}]}' \
		'{"users": [{"uid": 1, "usage": "x", "stamp_us": 1}]}' \
		'{"users": [], "groups": [{"vo": 7, "usage": 1, "stamp_us": 1}]}' \
		'{"users": [], "groups": [{"usage": 1, "stamp_us": 1}]}' \
		"{\"users\": [], \"groups\": [$(for i in $(seq 4097); do printf '{"vo": "v%d", "usage": 1, "stamp_us": 1},' "$i"; done){\"vo\": \"w\", \"usage\": 1, \"stamp_us\": 1}]}"; do
		sched_start 'capacity_cpus = 1'
		xosd_stop
		printf '%s\n' "$bad" >"$XOS_TMP/state/usage.json"
		XOS_SCHED_SELFCHECK=1 xosd_launch --config "$XOS_TMP/xosd.conf"
		grep -q "Ignoring usage.json in the state directory: Invalid argument" "$XOS_TMP/xosd.log" ||
			fail "not refused: ${bad:0:80}"
		run xrun --cpus 1 -- true
		assert_success
		xos_wait_for 10 jq -e '.users | map(select(.uid == 0 and .usage > 0)) | length == 1' \
			"$XOS_TMP/state/usage.json"
		sched_teardown
	done
}
