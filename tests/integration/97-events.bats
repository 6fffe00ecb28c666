#!/usr/bin/env bats
# Job events (xevents) and the metrics endpoint (issue 15, part 5): real
# xosd, LXC and CRIU; the Prometheus text format checked by
# tests/tools/promcheck.py (promtool is not packaged for Debian 12).

load helpers
bats_require_minimum_version 1.5.0

TOOLS="$XOS_ROOT/tests/tools"

# A private xosd with both metrics endpoints: its UNIX socket and a free
# loopback port. (The slow subscriber's test gives subscribers a small
# buffer, so that a few hundred events fill it.)
setup() {
	XOS_TMP=$(mktemp -d "/tmp/$XOS_TEST_PREFIX.XXXXXX")
	chmod 0711 "$XOS_TMP"
	export XOS_TMP
	export XOS_SOCKET="$XOS_TMP/run/xosd.sock"
	METRICS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	METRICS_SOCK="$XOS_TMP/run/metrics.sock"
	printf 'metrics_socket = %s\nmetrics_listen = 127.0.0.1:%s\n' "$METRICS_SOCK" \
		"$METRICS_PORT" >"$XOS_TMP/xosd.conf"
	if [[ "$BATS_TEST_DESCRIPTION" == *"does not read"* ]]; then
		echo "events_buffer = 16K" >>"$XOS_TMP/xosd.conf"
	fi
	BG_PIDS=()
	xosd_launch --config "$XOS_TMP/xosd.conf"
}

teardown() {
	local p
	for p in "${BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	xos_teardown
}

# bg CMD...: run CMD in the background, ended at teardown (its pid: BG_PID)
bg() {
	"$@" 3>&- &
	BG_PID=$!
	BG_PIDS+=("$BG_PID")
}

as_user() { # UID CMD...: a command of the xos CLI as that (non-root) user
	local uid=$1
	shift
	setpriv --reuid "$uid" --regid "$uid" --clear-groups env XOS_SOCKET="$XOS_SOCKET" \
		"$XOS_BUILD/$1" "${@:2}"
}

scrape() { curl -sf --max-time 10 "http://127.0.0.1:$METRICS_PORT/metrics"; }
# metric SERIES: its value now, the scrape checked for the format on the way
metric() { scrape | python3 "$TOOLS/promcheck.py" --value "$1"; }
metric_is() { [ "$(metric "$1" 2>/dev/null)" = "$2" ]; }

# events FILE JOB: the job's event names in FILE (xevents --json), in order
events() { jq -r --arg j "$2" 'select(.job == $j) | .event' "$1" | tr '\n' ' ' | sed 's/ $//'; }
has_event() { [ -s "$1" ] && jq -e --arg j "$2" --arg e "$3" \
	'select(.job == $j and .event == $e)' "$1" >/dev/null 2>&1; }
# event FILE JOB EVENT FILTER: FILTER (jq) on the job's first EVENT line
event() { jq -r --arg j "$2" --arg e "$3" "select(.job == \$j and .event == \$e) | $4" "$1" |
	head -n1; }

@test "xevents --json shows a job's events in order while it runs: submitted, started, checkpointed, restored, ended" {
	ev="$XOS_TMP/events.json"
	bg xevents --json >"$ev" 2>"$XOS_TMP/events.err"
	wait_for 10 metric_is xos_event_subscribers 1
	id=$(xrun -d --name evjob -- sh -c "$GATE; exit 7")
	wait_for 30 has_event "$ev" "$id" started
	assert_equal "$(job_field "$id" .state)" RUNNING # (seen while it runs)
	assert_equal "$(events "$ev" "$id")" "submitted started"
	# a subscriber of this job alone: what xosd kept of it first, then live
	bg xevents --json --job evjob >"$XOS_TMP/job.json" 2>"$XOS_TMP/job.err"
	job_pid=$BG_PID
	xcheckpoint "$id" >/dev/null
	wait_for 30 has_event "$ev" "$id" checkpointed
	assert_equal "$(job_field "$id" .state)" RUNNING
	xcheckpoint --stop "$id" >/dev/null
	xrestart "$id" >/dev/null
	wait_for 30 has_event "$ev" "$id" restored
	assert_equal "$(job_field "$id" .state)" RUNNING
	open_gate "$id"
	wait_for 30 has_event "$ev" "$id" ended
	want="submitted started checkpointed checkpointed restored ended"
	assert_equal "$(events "$ev" "$id")" "$want"
	# the figures: versions, durations, bytes, the end's state and code
	assert_equal "$(event "$ev" "$id" checkpointed '"\(.version) \(.stopped) \(.state)"')" \
		"1 false RUNNING"
	[ "$(event "$ev" "$id" checkpointed .checkpoint_duration_us)" -gt 0 ]
	[ "$(event "$ev" "$id" checkpointed .checkpoint_bytes)" -gt 0 ]
	assert_equal "$(jq -r --arg j "$id" 'select(.job == $j and .event == "checkpointed") |
		"\(.version) \(.stopped) \(.state)"' "$ev" | tail -n1)" "2 true CHECKPOINTED"
	assert_equal "$(event "$ev" "$id" restored .version)" 2
	[ "$(event "$ev" "$id" restored .restore_duration_us)" -gt 0 ]
	assert_equal "$(event "$ev" "$id" ended '"\(.state) \(.exit_code) \(.name) \(.user)"')" \
		"EXITED 7 evjob nobody"
	# in time order, each with its time as text too
	jq -s -e 'map(.time_us) as $t | $t == ($t | sort)' "$ev"
	assert_equal "$(event "$ev" "$id" ended '.time | test("^[0-9-]+T[0-9:.]+Z$")')" true
	# xevents --job saw the same and ended by itself with the job
	xos_wait_for 20 pid_gone "$job_pid"
	run wait "$job_pid"
	assert_success
	assert_equal "$(events "$XOS_TMP/job.json" "$id")" "$want"
	# after the end: the same again, and the plain format
	run timeout 20 xevents --job "$id"
	assert_success
	assert_equal "${#lines[@]}" 6
	assert_line --index 5 --regexp "^[0-9-]+T[0-9:.]+Z  ${id:0:12}  nobody +evjob +ended +EXITED exit_code=7"
	assert_line --index 2 --regexp "checkpointed +RUNNING version=1 checkpoint_duration=[0-9.]+s checkpoint_bytes=[1-9]"
}

@test "another user sees none of root's job events, only their own; root sees all" {
	bg as_user 65534 xevents --json >"$XOS_TMP/nobody.json" 2>"$XOS_TMP/nobody.err"
	bg xevents --json >"$XOS_TMP/root.json" 2>"$XOS_TMP/root.err"
	wait_for 10 metric_is xos_event_subscribers 2
	rid=$(xrun -d --name rootjob -- true)
	wait_for 30 has_event "$XOS_TMP/root.json" "$rid" ended
	uid=$(as_user 65534 xrun -d --name userjob -- true)
	wait_for 30 has_event "$XOS_TMP/nobody.json" "$uid" ended
	wait_for 30 has_event "$XOS_TMP/root.json" "$uid" ended
	# the user's stream works (their own job) and holds nothing of root's
	assert_equal "$(events "$XOS_TMP/nobody.json" "$uid")" "submitted started ended"
	run grep -c "$rid" "$XOS_TMP/nobody.json"
	assert_output 0
	assert_equal "$(jq -r '.owner_uid' "$XOS_TMP/nobody.json" | sort -u)" 65534
	assert_equal "$(events "$XOS_TMP/root.json" "$rid")" "submitted started ended"
	# nor may the user name root's job
	run as_user 65534 xevents --job "$rid"
	assert_failure
	assert_output --partial "No such job"
	# --since replays what xosd kept, the user's own only, and streams on
	# (until timeout ends it: status 124)
	run timeout 3 setpriv --reuid 65534 --regid 65534 --clear-groups \
		env XOS_SOCKET="$XOS_SOCKET" "$XOS_BUILD/xevents" --json --since 1h
	assert_equal "$status" 124
	refute_output --partial "$rid"
	assert_equal "$(jq -r --arg j "$uid" 'select(.job == $j) | .event' <<<"$output" | xargs)" \
		"submitted started ended"
}

@test "a subscriber that does not read misses events, is told how many, and holds xosd back in nothing" {
	ev="$XOS_TMP/fast.json"
	bg python3 "$TOOLS/slow-subscriber.py" "$XOS_SOCKET" "$XOS_TMP/gate" "$XOS_TMP/slow.json"
	wait_file "$XOS_TMP/slow.json.ready" 10
	bg xevents --json >"$ev" 2>"$XOS_TMP/fast.err"
	wait_for 10 metric_is xos_event_subscribers 2
	# 80 held jobs and their kill: 240 events of about 150 bytes, more than
	# the slow one's buffers hold (xosd's 16 KiB, events_buffer, and about as
	# much in its socket), while a reader that falls behind by less than
	# about 100 events misses none
	ids=()
	for i in $(seq 80); do ids+=("$(xrun -d --hold -- true 2>/dev/null)"); done
	xkill "${ids[@]}" >/dev/null
	# xosd went on: the reading subscriber has every event, requests answer
	wait_for 60 has_lines "$ev" 240
	run timeout 10 xps -a -q
	assert_success
	assert_equal "${#lines[@]}" 80
	[ "$(metric xos_events_dropped_total)" -gt 0 ]
	# a job runs and ends as ever while the slow one still reads nothing
	id=$(xrun -d -- true)
	wait_for 30 has_event "$ev" "$id" ended
	# once it reads: what was held, a "missed" line with the count, then it is live again
	touch "$XOS_TMP/gate"
	wait_for 30 grep -q '"ev":"missed"' "$XOS_TMP/slow.json"
	missed=$(jq -r 'select(.ev == "missed") | .count' "$XOS_TMP/slow.json" | head -n1)
	[ "$missed" -gt 0 ]
	got=$(grep -c '"ev":"job"' "$XOS_TMP/slow.json")
	[ "$((got + missed))" -le 243 ]
	last=$(xrun -d --name after-gate -- true)
	wait_for 30 has_event "$XOS_TMP/slow.json" "$last" ended
}

@test "the metrics endpoint answers in valid Prometheus text format, on its socket and its port, and its numbers move" {
	run curl -sf --max-time 10 --unix-socket "$METRICS_SOCK" http://localhost/metrics
	assert_success
	python3 "$TOOLS/promcheck.py" <<<"$output"
	assert_equal "$(stat -c %a "$METRICS_SOCK")" 600 # root's only: it names every job
	run scrape
	assert_success
	python3 "$TOOLS/promcheck.py" <<<"$output"
	assert_output --partial "# TYPE xos_checkpoint_duration_seconds histogram"
	assert_equal "$(metric xos_job_starts_total)" 0
	assert_equal "$(metric 'xos_jobs{state="RUNNING"}')" 0
	id=$(xrun -d --name metered -- sh -c "$GATE")
	wait_state "$id" RUNNING
	assert_equal "$(metric xos_job_starts_total)" 1
	assert_equal "$(metric 'xos_jobs{state="RUNNING"}')" 1
	# the port every local user reads names jobs by id only (metrics_listen_jobs = ids);
	# the socket, root's, by name and user too
	run metric "xos_job_memory_bytes{job=\"$id\"}"
	assert_success
	[ "${output%%.*}" -gt 0 ]
	metric "xos_job_cpu_seconds_total{job=\"$id\"}"
	run scrape
	refute_output --partial metered
	refute_output --partial 'user="nobody"'
	run curl -sf --max-time 10 --unix-socket "$METRICS_SOCK" http://localhost/metrics
	assert_output --partial "xos_job_memory_bytes{job=\"$id\",name=\"metered\",user=\"nobody\"}"
	xcheckpoint "$id" >/dev/null
	assert_equal "$(metric xos_checkpoints_total)" 1
	assert_equal "$(metric xos_checkpoint_duration_seconds_count)" 1
	assert_equal "$(metric 'xos_checkpoint_duration_seconds_bucket{le="+Inf"}')" 1
	[ "$(metric xos_checkpoint_bytes_total)" -gt 0 ]
	open_gate "$id"
	xwait "$id"
	assert_equal "$(metric 'xos_jobs_ended_total{state="EXITED"}')" 1
	assert_equal "$(metric 'xos_jobs{state="RUNNING"}')" 0
	run scrape
	refute_output --partial "$id\"" # no usage series of an ended job
	xrun -- true
	assert_equal "$(metric xos_job_starts_total)" 2
	# another user cannot open the socket
	run setpriv --reuid 65534 --regid 65534 --clear-groups curl -sf --max-time 5 \
		--unix-socket "$METRICS_SOCK" http://localhost/metrics
	assert_failure
}

@test "metrics_listen_jobs: names puts a job's name and user on the port too; none shows no job's series there, the socket still all" {
	xosd_stop
	echo "metrics_listen_jobs = names" >>"$XOS_TMP/xosd.conf"
	xosd_launch --config "$XOS_TMP/xosd.conf"
	id=$(xrun -d --name metered -- sh -c "$GATE")
	wait_state "$id" RUNNING
	metric "xos_job_memory_bytes{job=\"$id\",name=\"metered\",user=\"nobody\"}"
	xosd_stop
	sed -i 's/^metrics_listen_jobs = names$/metrics_listen_jobs = none/' "$XOS_TMP/xosd.conf"
	xosd_launch --config "$XOS_TMP/xosd.conf"
	wait_state "$id" RUNNING
	run scrape
	assert_success
	refute_output --partial xos_job_memory
	refute_output --partial "$id"
	assert_equal "$(metric 'xos_jobs{state="RUNNING"}')" 1
	run curl -sf --max-time 10 --unix-socket "$METRICS_SOCK" http://localhost/metrics
	assert_output --partial "xos_job_memory_bytes{job=\"$id\",name=\"metered\",user=\"nobody\"}"
	open_gate "$id"
	xwait "$id"
	# a value it does not know stops xosd at its start, naming the key
	xosd_stop
	sed -i 's/^metrics_listen_jobs = none$/metrics_listen_jobs = all/' "$XOS_TMP/xosd.conf"
	run timeout 30 "$XOS_BUILD/xosd" -f --config "$XOS_TMP/xosd.conf" --state-dir "$XOS_TMP/state" \
		--run-dir "$XOS_TMP/run"
	assert_failure
	assert_output --partial "invalid value 'all' for metrics_listen_jobs"
}

@test "the metrics endpoint: wrong requests are answered, idle clients are cut off, and neither holds xosd back" {
	run curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$METRICS_PORT/"
	assert_output 404
	run curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X POST \
		"http://127.0.0.1:$METRICS_PORT/metrics"
	assert_output 405
	run curl -s --max-time 10 -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 5000 /dev/zero | tr '\0' a)" \
		"http://127.0.0.1:$METRICS_PORT/metrics"
	assert_output 413
	# 20 clients that connect and say nothing: 16 are held (then cut off at
	# their deadline), 4 refused at once
	bg python3 "$TOOLS/idle-conns.py" 127.0.0.1 "$METRICS_PORT" 20 "$XOS_TMP/idle"
	wait_file "$XOS_TMP/idle" 10
	run timeout 10 xps -a
	assert_success
	id=$(xrun -d -- true)
	run timeout 30 xwait "$id"
	assert_success
	wait_for 30 grep -q "closed 20" "$XOS_TMP/idle"
	[ "$(metric xos_metrics_timeouts_total)" -ge 16 ]
	[ "$(metric xos_metrics_refused_total)" -ge 4 ]
	run scrape
	assert_success
}

@test "a failed checkpoint and a failed restore are events and counted; a job re-adopted by a restarted xosd makes none" {
	id=$(xrun -d -- sh -c "$GATE")
	wait_state "$id" RUNNING
	# fault 3: CRIU fails while it dumps the tasks' memory pages
	xosd_stop
	CRIU_FAULT=3 xosd_launch --config "$XOS_TMP/xosd.conf"
	ev="$XOS_TMP/events1.json"
	bg xevents --json >"$ev" 2>/dev/null
	wait_for 10 metric_is xos_event_subscribers 1
	run xcheckpoint "$id"
	assert_failure
	wait_for 30 has_event "$ev" "$id" checkpoint_failed
	assert_equal "$(events "$ev" "$id")" checkpoint_failed # (re-adopted: no event)
	assert_equal "$(event "$ev" "$id" checkpoint_failed .state)" RUNNING
	assert_equal "$(metric xos_checkpoint_failures_total)" 1
	assert_equal "$(metric xos_checkpoints_total)" 0
	# fault 6: CRIU fails after it restored the tasks (and kills them)
	xosd_stop
	xosd_launch --config "$XOS_TMP/xosd.conf"
	xcheckpoint --stop "$id" >/dev/null
	xosd_stop
	CRIU_FAULT=6 xosd_launch --config "$XOS_TMP/xosd.conf"
	ev="$XOS_TMP/events2.json"
	bg xevents --json >"$ev" 2>/dev/null
	wait_for 10 metric_is xos_event_subscribers 1
	run xrestart "$id"
	assert_failure
	wait_for 30 has_event "$ev" "$id" restore_failed
	assert_equal "$(events "$ev" "$id")" restore_failed
	assert_equal "$(event "$ev" "$id" restore_failed .state)" CHECKPOINTED
	assert_equal "$(metric xos_restore_failures_total)" 1
	assert_equal "$(metric xos_restores_total)" 0
}
