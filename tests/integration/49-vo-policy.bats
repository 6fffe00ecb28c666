#!/usr/bin/env bats
# VO policies and VO administrators (issue 12, acceptance 3 and 4, and What
# to build 7's re-check at restore): the node owner's vo.d/VO.conf limits a
# VO's jobs (template, memory per job, jobs in total) and each refusal names
# file and key; a policy change applies to new jobs and is reported for
# running ones; a VO admin tightens, never loosens; VOs' jobs on the bridge
# never exchange a packet (TCP, UDP, ICMP, ARP) and a VO without outbound
# access gets none out (only to a namespace this test makes); a VO admin
# acts on its VO's jobs and on nothing else; xacct; a restore re-checks the
# credential (a CRL that came since) and the policy; fair share between VOs
# (issue 14). Certificates: made by the openssl command
# (tests/tools/mkcerts.sh).

load helpers
load vo
bats_require_minimum_version 1.5.0

POOL="700100-700199" # outside root's subordinate ranges

# A TCP and UDP server for jobs: TCP answers each connection, UDP echoes;
# every peer is appended to LOG (argument 2) when given.
SRV='import socket,sys,threading
p=int(sys.argv[1]); log=sys.argv[2] if len(sys.argv)>2 else None
def note(a):
    if log: open(log,"a").write(a[0]+"\n")
def udp():
    u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.bind(("0.0.0.0",p))
    while True:
        d,a=u.recvfrom(100); note(a); u.sendto(d,a)
threading.Thread(target=udp,daemon=True).start()
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind(("0.0.0.0",p)); s.listen(64)
while True:
    c,a=s.accept(); note(a); c.sendall(b"hello\n"); c.close()'

# "tcp ok|fail udp ok|fail icmp ok|fail" for HOST PORT (ICMP echo through an
# unprivileged ICMP socket, as ping does)
PROBE='import socket,struct,sys
h,p,r=sys.argv[1],int(sys.argv[2]),[]
try:
    s=socket.create_connection((h,p),timeout=1.5); r.append("tcp ok" if s.recv(100) else "tcp fail")
except Exception: r.append("tcp fail")
try:
    u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.settimeout(1.5); u.sendto(b"x",(h,p))
    r.append("udp ok" if u.recvfrom(100)[0]==b"x" else "udp fail")
except Exception: r.append("udp fail")
try:
    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM,socket.IPPROTO_ICMP); s.settimeout(1.5)
    s.sendto(struct.pack("!BBHHH",8,0,0,0,1)+b"xos",(h,0)); s.recvfrom(100); r.append("icmp ok")
except Exception: r.append("icmp fail")
print(" ".join(r))'

# ARP: "arp ok|fail": who-has TARGET on IFACE, a reply from TARGET within 2 s
# (run as root in the job's network namespace: a raw packet socket)
ARP='import socket,struct,sys,time,fcntl
ifc,tgt=sys.argv[1],socket.inet_aton(sys.argv[2])
s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,socket.htons(0x0806)); s.bind((ifc,0))
mac=s.getsockname()[4]
me=fcntl.ioctl(s.fileno(),0x8915,struct.pack("256s",ifc.encode()))[20:24]
s.send(b"\xff"*6+mac+b"\x08\x06"+struct.pack("!HHBBH",1,0x0800,6,4,1)+mac+me+b"\0"*6+tgt)
s.settimeout(0.2); end=time.time()+2; r="arp fail"
while time.time()<end:
    try: f=s.recv(100)
    except socket.timeout: continue
    if f[12:14]==b"\x08\x06" and struct.unpack("!H",f[20:22])[0]==2 and f[28:32]==tgt: r="arp ok"; break
print(r)'

setup() {
	export XDG_RUNTIME_DIR="$BATS_TEST_TMPDIR/xdg"
	mkdir -m 0700 "$XDG_RUNTIME_DIR" "$BATS_TEST_TMPDIR/nologin"
	vo_homes
	VO_DIR="$BATS_TEST_TMPDIR/vo.d"
	mkdir "$VO_DIR"
	CERTS=$VO_CERTS
}

teardown() {
	local pid
	xlogout >/dev/null 2>&1 || true
	for pid in $(vo_agent_pids); do kill "$pid" 2>/dev/null || true; done
	if [ -n "${OUT_PID:-}" ]; then
		kill "$OUT_PID" 2>/dev/null || true
		wait "$OUT_PID" 2>/dev/null || true
	fi
	if [ -n "${OUT_NS:-}" ]; then
		ip netns del "$OUT_NS" 2>/dev/null || true
		ip link del "$OUT_VETH" 2>/dev/null || true
	fi
	OUT_PID='' OUT_NS=''
	xos_teardown
	rm -rf "$VO_HOMES" "$XDG_RUNTIME_DIR"
}

# policy VO LINE...: the node owner's vo.d/VO.conf
policy() {
	local vo=$1
	shift
	printf '%s\n' "$@" >"$VO_DIR/$vo.conf"
}

# (CERTS: a test may use a copy of the certificates)
vo_conf() { VO_CERTS=$CERTS vo_conf_lines "vo_policy_dir = $VO_DIR"; }

# vo_start: a private xosd serving biomed and physics, policies in VO_DIR
vo_start() {
	vo_conf >"$BATS_TEST_TMPDIR/xosd.conf"
	xos_start --config "$BATS_TEST_TMPDIR/xosd.conf"
}

# vo_net_start: the same with a bridge, table and pool of its own
vo_net_start() {
	XOS_NET_CONF=$(vo_conf)
	export XOS_NET_CONF
	xos_net_start
}

# as NAME: log in with NAME's certificate (out of any other login first)
as() {
	xlogout >/dev/null 2>&1 || true
	(cd "$CERTS" && xlogin --cert "$1.pem" --key "$1.key" >/dev/null)
}

# root CMD...: CMD as root (no grid login: an XDG_RUNTIME_DIR without agent)
root() { XDG_RUNTIME_DIR="$BATS_TEST_TMPDIR/nologin" "$@"; }
root_field() { root job_field "$@"; }
root_wait_state() { root wait_state "$@"; }

@test "policy: a VO held to one template, 256 MiB per job and 2 jobs: a third job, a bigger one and another template are refused naming file and key; a change applies to new jobs and is reported for running ones; an admin tightens, never loosens" {
	policy biomed "templates = host" "job_memory = 256M" "vo_jobs = 2"
	policy physics "network = none"
	vo_start
	# another template on the node (a busybox root), imported by root
	mkdir -p "$BATS_TEST_TMPDIR/bb/bin"
	cp /bin/busybox "$BATS_TEST_TMPDIR/bb/bin/"
	tar -C "$BATS_TEST_TMPDIR/bb" --owner=0 --group=0 -cf "$BATS_TEST_TMPDIR/bb.tar" .
	root xtemplate import bb "$BATS_TEST_TMPDIR/bb.tar"
	f="$VO_DIR/biomed.conf"
	as alice
	j1=$(xrun -d -- sleep 600)
	j2=$(xrun -d -- sleep 600)
	wait_state "$j1" RUNNING
	wait_state "$j2" RUNNING
	# a job that asked for no limit gets the VO's per-job one
	[ "$(job_field "$j1" .limits.memory)" = 268435456 ]
	run xrun -d -- sleep 600
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Refused by VO biomed's policy ($f, vo_jobs = 2): the VO has 2 live job(s) already"* ]]
	# another VO's jobs do not count against it
	as carol
	run xrun -- true
	echo "$output"
	[ "$status" -eq 0 ]
	as alice
	xkill -s KILL "$j2"
	wait_state "$j2" KILLED
	run xrun --memory 512M -- true
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Refused by VO biomed's policy ($f, job_memory = 256M): the job asks for 512M of memory"* ]]
	run xrun --template bb -- true
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Refused by VO biomed's policy ($f, templates = host): template bb is not one of the VO's"* ]]
	# nothing was made for them: the two jobs and carol's only
	[ "$(root xps -a -q | wc -l)" -eq 3 ]
	run xrun --memory 128M -- true
	echo "$output"
	[ "$status" -eq 0 ]
	# the node owner changes the file: new jobs get it, running ones are reported
	policy biomed "templates = host" "job_memory = 64M" "vo_jobs = 2"
	run xrun --memory 128M -- true
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"($f, job_memory = 64M)"* ]]
	grep -q "Policy of VO biomed changed ($f)" "$XOS_TMP/xosd.log"
	grep -q "Job $j1 of VO biomed keeps running under the policy it started with; the changed one would refuse it: .*job_memory = 64M" "$XOS_TMP/xosd.log"
	# a member may read the policy, not change it
	run xvo
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"job_memory = 64M"* ]]
	run xvo vo_jobs=1
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Only VO biomed's administrators (and root) change its policy"* ]]
	# its admin tightens; loosening past the node owner's file is refused
	as dave
	run xvo job_memory=1G
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"job_memory = 1G would loosen the node owner's policy ($f: job_memory = 64M)"* ]]
	run xvo --vo physics vo_jobs=1
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Only VO physics's members (and root) see its policy"* ]]
	run xvo vo_jobs=1
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"vo_jobs = 1"* ]]
	grep -q "VO biomed's policy tightened by its administrator: vo_jobs = 1" "$XOS_TMP/xosd.log"
	as alice
	run xrun -- true
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"set by a VO administrator, vo_jobs = 1)"* ]]
	# root takes the admin's change back
	root xvo --vo biomed --reset
	run xrun -- true
	echo "$output"
	[ "$status" -eq 0 ]
	# local users may not join a VO's network group
	xos_test_user
	run setpriv --reuid 4242 --regid 4242 --clear-groups env XOS_SOCKET="$XOS_SOCKET" \
		XDG_RUNTIME_DIR="$BATS_TEST_TMPDIR/nologin" "$XOS_BUILD/xrun" --group vo-biomed -- true
	[ "$status" -ne 0 ]
	[[ "$output" == *"Groups named vo-* are the VOs' own"* ]]
}

# The daemon's job's network namespace, as root: CMD in it
in_job_net() {
	local j=$1 pid
	shift
	pid=$(root job_init_pid "$j")
	nsenter -t "$pid" -n "$@"
}

# probe JOB HOST: the probe run as a unit of JOB (root adds it; it runs as the job's user)
probe() { root xrun --job "$1" -- python3 -c "$PROBE" "$2" 8080; }
probe_says() { [ "$(probe "$1" "$2")" = "$3" ]; }
arp() { in_job_net "$1" /usr/bin/python3 -c "$ARP" eth0 "$2"; }

@test "policy: jobs of two VOs on one bridge never reach each other (TCP, UDP, ICMP, ARP); a VO without outbound access gets no packet out" {
	policy biomed "network = ports"
	policy physics "network = bridge"
	vo_net_start
	# the outside: a namespace of this test's, routed through the node
	local sfx=${XOS_TMP##*.} n=$((RANDOM % 250 + 1))
	OUT_NS="xos-out-$sfx" OUT_VETH="xo$sfx"
	ip netns add "$OUT_NS"
	ip link add "$OUT_VETH" type veth peer name "xi$sfx" netns "$OUT_NS"
	ip addr add "172.31.$n.1/24" dev "$OUT_VETH"
	ip link set "$OUT_VETH" up
	echo 1 >"/proc/sys/net/ipv4/conf/$OUT_VETH/forwarding"
	ip -n "$OUT_NS" addr add "172.31.$n.2/24" dev "xi$sfx"
	ip -n "$OUT_NS" link set "xi$sfx" up
	ip -n "$OUT_NS" link set lo up
	out_log="$BATS_TEST_TMPDIR/outside.log"
	ip netns exec "$OUT_NS" /usr/bin/python3 -c "$SRV" 8080 "$out_log" &
	OUT_PID=$!
	wait_for 30 ip netns exec "$OUT_NS" timeout 5 /usr/bin/python3 -c "$PROBE" 127.0.0.1 8080
	as alice
	a1=$(xrun -d --net bridge -- python3 -c "$SRV" 8080)
	a2=$(xrun -d --net bridge -- python3 -c "$SRV" 8080)
	as carol
	b1=$(xrun -d --net bridge -- python3 -c "$SRV" 8080)
	b2=$(xrun -d --net bridge -- python3 -c "$SRV" 8080)
	# a grid job's group is its VO's, and it cannot pick another
	run xrun --net bridge --group mine -- true
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"A grid job's network group is its VO's (vo-physics); drop --group"* ]]
	xlogout
	for j in "$a1" "$a2" "$b1" "$b2"; do wait_state "$j" RUNNING; done
	A1=$(job_field "$a1" .net.address) A2=$(job_field "$a2" .net.address)
	B1=$(job_field "$b1" .net.address) B2=$(job_field "$b2" .net.address)
	[ "$(job_field "$a1" .net.group)" = vo-biomed ]
	[ "$(job_field "$b1" .net.group)" = vo-physics ]
	[ "$(job_field "$b1" .net.outbound)" = false ]
	[ "$(job_field "$a1" .net.outbound)" = null ]
	# within a VO everything passes (and so the servers are up)
	wait_for 60 probe_says "$a1" "$A2" "tcp ok udp ok icmp ok"
	wait_for 60 probe_says "$b1" "$B2" "tcp ok udp ok icmp ok"
	[ "$(arp "$a1" "$A2")" = "arp ok" ]
	[ "$(arp "$b1" "$B2")" = "arp ok" ]
	# between VOs nothing, both ways
	[ "$(probe "$a1" "$B1")" = "tcp fail udp fail icmp fail" ]
	[ "$(probe "$a2" "$B2")" = "tcp fail udp fail icmp fail" ]
	[ "$(probe "$b1" "$A1")" = "tcp fail udp fail icmp fail" ]
	[ "$(arp "$a1" "$B1")" = "arp fail" ]
	[ "$(arp "$b1" "$A1")" = "arp fail" ]
	# outbound: biomed's jobs get out, physics's get no packet out
	wait_for 30 probe_says "$a1" "172.31.$n.2" "tcp ok udp ok icmp ok"
	before=$(wc -l <"$out_log")
	[ "$(probe "$b1" "172.31.$n.2")" = "tcp fail udp fail icmp fail" ]
	[ "$(probe "$b2" "172.31.$n.2")" = "tcp fail udp fail icmp fail" ]
	[ "$(wc -l <"$out_log")" -eq "$before" ]
}

@test "VO admins: dave (biomed admin) lists, kills and checkpoints alice's jobs and reads their accounting, and nothing of physics; bob is refused alice's job; root sees everything; xacct" {
	policy biomed "checkpoint = yes"
	policy physics "network = none"
	vo_start
	as alice
	a1=$(xrun -d -- sleep 600)
	a2=$(xrun -d -- sleep 600)
	# shellcheck disable=SC2016 # (expanded in the job)
	xrun -- sh -c 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done'
	as carol
	c1=$(xrun -d -- sleep 600)
	wait_state "$c1" RUNNING
	# a member: not another member's job
	as bob
	run xkill "$a1"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"No such job: $a1"* ]]
	run xcheckpoint "$a2"
	echo "$output"
	[ "$status" -ne 0 ]
	[ -z "$(xps -a -q)" ]
	# the admin: every job of biomed, none of physics
	as dave
	run xps -a -q
	echo "$output"
	[[ "$output" == *"$a1"* && "$output" == *"$a2"* && "$output" != *"$c1"* ]]
	[ "$(echo "$output" | wc -l)" -eq 3 ]
	wait_state "$a2" RUNNING
	run xcheckpoint "$a2"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(job_field "$a2" .checkpoint.last_version)" = 1 ]
	# but runs nothing as the member and reads not its output
	run xrun --job "$a2" -- true
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"a VO administrator lists, signals, checkpoints and restarts a member's job, but does not run commands in it"* ]]
	run xlogs "$a2"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"but does not read its output"* ]]
	run xkill -s KILL "$a1"
	echo "$output"
	[ "$status" -eq 0 ]
	wait_state "$a1" KILLED
	run xkill "$c1"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"No such job: $c1"* ]]
	run xcheckpoint "$c1"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"No such job"* ]]
	root_wait_state "$c1" RUNNING
	# accounting: biomed's only
	run xacct --json
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r '[.rows[].vo] | unique | join(",")')" = biomed ]
	[ "$(echo "$output" | jq -r '.rows[] | select(.user == "xos-biomed-001") | .jobs')" = 3 ]
	[ "$(echo "$output" | jq -r '.rows[] | select(.user == "xos-biomed-001") | .cpu_us')" -gt 0 ]
	run xacct --vo physics --json
	echo "$output"
	[ "$(echo "$output" | jq '.rows | length')" = 0 ]
	run xacct --since 1d
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"biomed"*"xos-biomed-001"* ]]
	# a member sees its own row only
	as carol
	run xacct --json
	echo "$output"
	[ "$(echo "$output" | jq -r '[.rows[].user] | join(",")')" = xos-physics-001 ]
	xlogout
	# root: everything
	run root xps -a -q
	echo "$output"
	[[ "$output" == *"$a1"* && "$output" == *"$a2"* && "$output" == *"$c1"* ]]
	run root xacct --json
	echo "$output"
	[ "$(echo "$output" | jq -r '[.rows[].vo] | unique | join(",")')" = biomed,physics ]
	run root xacct --user xos-physics-001 --json
	echo "$output"
	[ "$(echo "$output" | jq -r '[.rows[].user] | join(",")')" = xos-physics-001 ]
}

@test "a restore re-checks: the VO's policy as it is now, and the credential against the trust as it is now (a CRL that revoked it since)" {
	# a copy of the certificates: this test revokes alice
	CERTS="$BATS_TEST_TMPDIR/certs"
	cp -a "$VO_CERTS" "$CERTS"
	policy biomed "checkpoint = yes"
	policy physics "network = none"
	vo_start
	as alice
	id=$(xrun -d -- sleep 600)
	wait_state "$id" RUNNING
	xcheckpoint --stop "$id"
	wait_state "$id" CHECKPOINTED
	policy biomed "checkpoint = no"
	run xrestart "$id"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Refused by VO biomed's policy ($VO_DIR/biomed.conf, checkpoint = no)"* ]]
	policy biomed "checkpoint = yes"
	# biomed's CA revokes alice; the node gets the new CRL
	(cd "$CERTS/ca-biomed" && openssl ca -config ca.cnf -revoke ../alice.pem -cert cert.pem \
		-keyfile key.pem && openssl ca -config ca.cnf -gencrl -cert cert.pem -keyfile key.pem \
		-out ../trust/biomed.crl) >/dev/null 2>&1
	run xrestart "$id"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Restore refused, the credential no longer holds: "*"revoked"* ]]
	root job_state_is "$id" CHECKPOINTED
	# (and from now on no login of alice's passes)
	xlogout
	run as alice
	echo "$output"
	[ "$status" -ne 0 ]
	# root restores it
	run root xrestart "$id"
	echo "$output"
	[ "$status" -eq 0 ]
	root_wait_state "$id" RUNNING
}

@test "a move is checked against the VO's policy before anything else: migrate = no, and a node not in migrate_nodes, are refused naming the key; the job runs on" {
	policy biomed "migrate = no"
	vo_start
	as alice
	id=$(xrun -d -- sleep 600)
	wait_state "$id" RUNNING
	run xmigrate "$id" n2
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Refused by VO biomed's policy ($VO_DIR/biomed.conf, migrate = no)"* ]]
	policy biomed "migrate = yes" "migrate_nodes = n3"
	run xmigrate "$id" n2
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Refused by VO biomed's policy ($VO_DIR/biomed.conf, migrate_nodes = n3)"* ]]
	# allowed by the policy: only then does the node channel's absence count
	policy biomed "migrate = yes" "migrate_nodes = n2"
	run xmigrate "$id" n2
	echo "$output"
	[[ "$output" == *"This node has no node channel"* ]]
	job_state_is "$id" RUNNING
}

# all_ended NAME...: each named job has ended (as root sees them)
all_ended() {
	[ "$(root xps -a --json "$@" | jq '[.[] | select(.state | IN("QUEUED", "STARTING", "RUNNING"))] | length')" -eq 0 ]
}

# queued_order N A B FIRST SECOND: behind a running blocker, A then B
# (certificate names) each submit job "<name>N"; FIRST's is first in the
# queue, SECOND's second; then both run
queued_order() {
	local n=$1 blocker
	blocker=$(root xrun -d --cpus 1 --name "blocker$n" -- sh -c "$GATE")
	root_wait_state "blocker$n" RUNNING
	as "$2"
	xrun -d --cpus 1 --name "$2$n" -- true >/dev/null 2>&1
	as "$3"
	xrun -d --cpus 1 --name "$3$n" -- true >/dev/null 2>&1
	xlogout >/dev/null
	assert_equal "$(root_field "$4$n" .sched.position)" 1
	assert_equal "$(root_field "$5$n" .sched.position)" 2
	open_gate "$blocker"
	root xos_wait_for 60 all_ended "$2$n" "$3$n"
}

@test "fair share between VOs: a VO of two users and a VO of one take turns, its users in turn within a VO, whatever came first; each VO's usage kept in usage.json and over kill -9; a VO's fair_share weighs it" {
	policy biomed
	policy physics
	vo_conf >"$BATS_TEST_TMPDIR/xosd.conf"
	echo 'capacity_cpus = 1' >>"$BATS_TEST_TMPDIR/xosd.conf"
	# (each use of the kept queue is checked against a walk: sched_teardown)
	XOS_SCHED_SELFCHECK=1 xos_start --config "$BATS_TEST_TMPDIR/xosd.conf"
	blocker=$(root xrun -d --cpus 1 --name blocker -- sh -c "$GATE")
	root_wait_state blocker RUNNING
	# alice and bob (biomed) submit three each, then carol (physics)
	names=()
	for who in alice bob carol; do
		as "$who"
		for i in 1 2 3; do
			xrun -d --cpus 1 --name "$who$i" -- true >/dev/null 2>&1
			names+=("$who$i")
		done
	done
	xlogout >/dev/null
	assert_equal "$(root_field carol3 .state)" QUEUED
	# first come first served for now: carol's come last
	assert_equal "$(root_field carol1 .sched.position)" 7
	open_gate "$blocker"
	root xos_wait_for 120 all_ended "${names[@]}"
	# each charged cpus x whole seconds, to its user and its VO: these
	# short jobs 1 each (one that took longer here changes the order, and
	# is named)
	run root xps -a --json "${names[@]}"
	assert_equal "$(jq -r 'map(select(.ended_us - .started_us > 1000000)) | map(.name) | join(" ")' <<<"$output")" ""
	# VOs alternate while both wait (biomed's usage ahead, physics goes;
	# equal, the users' usage decides, then submission); per user alone it
	# would be alice1 bob1 carol1 alice2 bob2 carol2 ...
	assert_equal "$(jq -r 'sort_by(.started_us) | map(.name) | join(" ")' <<<"$output")" \
		"alice1 carol1 bob1 carol2 alice2 carol3 bob2 alice3 bob3"
	# (usage.json is written shortly after the charges, not before the answers)
	xos_wait_for 10 jq -e '(.groups | map(select(.vo == "biomed" and .usage > 5.99 and .usage < 6.01)) | length == 1) and
		(.groups | map(select(.vo == "physics" and .usage > 2.99 and .usage < 3.01)) | length == 1) and
		(.groups | map(select(.vo == "")) | length == 1)' "$XOS_TMP/state/usage.json"
	# kept over kill -9 of xosd: biomed has used 6, physics 3, so a job of
	# physics goes ahead of one of biomed submitted before it
	kill -9 "$XOSD_PID"
	wait "$XOSD_PID" 2>/dev/null || true
	XOSD_PID=
	XOS_SCHED_SELFCHECK=1 xosd_launch --config "$BATS_TEST_TMPDIR/xosd.conf"
	queued_order 4 alice carol carol alice
	# the node owner weighs biomed 4: its usage (7) counts as 1.75 against
	# physics' 4, read from the changed file at the next pass
	policy biomed "fair_share = 4"
	queued_order 5 carol alice alice carol
	run ! grep "self-check" "$XOS_TMP/xosd.log"
}
