#!/usr/bin/env bats
# Group commit of queued jobs' records (DECISIONS (aw)): a thread of xosd
# runs syncfs while the event loop goes on, and a submission's answer goes
# only once a syncfs that began after its record was written has ended.
# Real xosd; strace follows all its threads. Correctness only: no timing.

load helpers
bats_require_minimum_version 1.5.0

setup() { :; }
teardown() { xos_teardown; }


# submit PREFIX COUNT: COUNT held jobs named PREFIX1..., 8 xrun at a time;
# the names answered go to $XOS_TMP/acked (one a line)
submit() {
	seq "$2" | xargs -P 8 -I{} sh -c \
		'xrun -d --hold --name "$0{}" -- true >/dev/null 2>&1 && echo "$0{}" >>"$1"' \
		"$1" "$XOS_TMP/acked" || true
}

# check_order TRACE ID: the answer naming ID was sent after the end of a
# syncfs that began after the last rename of ID's record before it
# (syncfs calls never overlap: the n-th start pairs with the n-th end;
# strace pads a short call's line before its " = ", so the spaces vary)
check_order() {
	awk -v id="$2" '
		/syncfs\(/ { starts[++ns] = NR }
		/syncfs\(.*\) +=/ || /<\.\.\. syncfs resumed>/ { ends[++ne] = NR }
		/rename/ && index($0, "/jobs/" id ">") && index($0, "\"job.json\"") { ren = NR }
		/sendto\(/ && index($0, "ok\\\":true") && index($0, id) && !reply { reply = NR; r = ren }
		END {
			if (!reply || !r) { print "no rename or answer for " id; exit 1 }
			for (k = 1; k <= ns && k <= ne; k++)
				if (starts[k] > r && ends[k] < reply) exit 0
			print id ": record at line " r ", answer at line " reply ", no syncfs between"
			exit 1
		}' "$1"
}

@test "each answer to a submission follows a syncfs begun after its record was written (8 submitters)" {
	xos_start
	xrun -d --hold --name warm -- true >/dev/null # (the commit thread exists)
	: >"$XOS_TMP/acked"
	xosd_trace "$XOS_TMP/trace" -f -y -s 256 -e trace=syncfs,rename,renameat,renameat2,sendto
	submit g 40
	xosd_untrace
	assert_equal "$(wc -l <"$XOS_TMP/acked")" 40
	# the syncfs runs in a thread of xosd's, not in its event loop
	run grep -c "^$XOSD_PID  *syncfs(" "$XOS_TMP/trace"
	assert_output 0
	run grep -c "syncfs(" "$XOS_TMP/trace"
	[ "$output" -ge 1 ]
	local bad=0 id
	for id in $(xps -a --json | jq -r '.[] | select(.name | startswith("g")) | .id'); do
		check_order "$XOS_TMP/trace" "$id" >&2 || bad=$((bad + 1))
	done
	assert_equal "$bad" 0
}

@test "kill -9 of xosd while 8 submitters are at work: every job answered is queued after the restart" {
	xos_start
	: >"$XOS_TMP/acked"
	submit k 400 &
	local sub=$!
	wait_for 120 sh -c '[ "$(wc -l <"$1")" -ge 40 ]' _ "$XOS_TMP/acked"
	kill -9 "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	XOSD_PID=
	wait "$sub" || true
	sort -u "$XOS_TMP/acked" >"$XOS_TMP/acked.sorted"
	xosd_launch
	xps -a --json | jq -r '.[] | select(.state == "QUEUED") | .name' | sort -u >"$XOS_TMP/queued"
	# every name answered is queued (some written but not answered may be too)
	run comm -23 "$XOS_TMP/acked.sorted" "$XOS_TMP/queued"
	assert_output ""
	[ "$(wc -l <"$XOS_TMP/acked.sorted")" -ge 40 ]
	# and held, each once
	assert_equal "$(xps -a --json | jq '[.[] | select(.state == "QUEUED")] | length')" \
		"$(wc -l <"$XOS_TMP/queued")"
}

# A job's end charges its user's usage (usage.json, docs/SCHEDULING.md): the
# file is written after the turn that answered the end, and made durable by
# the flusher thread, so that neither the write nor the disk is between a
# unit's end and its xrun's exit.
@test "a job's end is answered before usage.json is written, and a thread of xosd, not its event loop, syncs usage.json" {
	xos_start
	xrun -- true # (the flusher thread exists, usage.json too)
	xos_wait_for 10 test -s "$XOS_TMP/state/usage.json"
	xosd_trace "$XOS_TMP/trace" -f -y -s 256 -e trace=rename,renameat,renameat2,sendto,fdatasync
	run xrun -- true
	assert_success
	xos_wait_for 10 grep -q 'fdatasync([0-9]*<[^>]*/usage\.json>' "$XOS_TMP/trace"
	xosd_untrace
	run awk '
		/sendto\(/ && index($0, "ev\\\":\\\"exit") && !ex { ex = NR }
		/rename/ && index($0, "\"usage.json\"") && !ren { ren = NR }
		END { print ex, ren; exit !(ex && ren && ex < ren) }' "$XOS_TMP/trace"
	echo "$output"
	assert_success
	run grep -c "^$XOSD_PID  *fdatasync(.*usage\.json" "$XOS_TMP/trace"
	assert_output 0
	run jq -e '.users | map(select(.uid == 0 and .usage > 0)) | length == 1' "$XOS_TMP/state/usage.json"
	assert_success
}
