#!/usr/bin/env bash
# `make deb-test`: the package on a fresh system. Slow (a debootstrap and the
# package's dependencies from the archive), so not part of make check.
#   1. debootstrap a minbase tree of this machine's release, from the archive
#      this machine's apt uses (never a host name of our own)
#   2. install the package's dependencies, note every path of the tree
#   3. apt-get install ./xos_*.deb; check the unit (systemd-analyze verify)
#   4. run the unit's ExecStart in the tree: READY=1 on NOTIFY_SOCKET, xps
#      answers, a job runs, SIGTERM gives STOPPING=1 and a clean exit
#   5. dpkg --purge xos: no path of the tree is new, none is named *xos*, and
#      /etc/subuid and /etc/subgid are as before
# Usage: tests/deb-test.sh [DEBDIR] (default build-deb, where make deb puts it;
# the debootstrap tarball and downloaded packages are cached there)
# Needs root, debootstrap, python3.
set -euo pipefail

XOS_LOG_PREFIX="deb-test"
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/common.sh
. "$REPO_ROOT/scripts/common.sh"

DEBDIR=$(realpath "${1:-$REPO_ROOT/build-deb}")
deb=$(compgen -G "$DEBDIR/xos_*.deb" | head -n 1) || die "no package in $DEBDIR: run make deb"
[ "$(id -u)" -eq 0 ] || die "run as root"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
arch=$(dpkg --print-architecture)
# the archive apt itself uses for this release
mirror=$(apt-cache policy | awk -v want="$codename/main" -v a="$arch" \
	'$3 == want && $4 == a && $2 ~ /^(https?|file):/ { print $2; exit }')
[ -n "$mirror" ] || die "no apt source for $codename/main on this machine"

WORK=$(mktemp -d /tmp/xos-debtest.XXXXXX)
ROOT=$WORK/root
LISTENER=
HOLDER=
JOB_CMD="sleep 4242.5" # (a command line no one else runs)
cleanup() {
	local ns p
	[ -z "$LISTENER" ] || kill "$LISTENER" 2>/dev/null || true
	# an xosd, monitor or job left by a failure: every process of the tree's
	# mount namespace, and the job's own
	if [ -n "$HOLDER" ]; then
		ns=$(readlink "/proc/$HOLDER/ns/mnt")
		for p in /proc/[0-9]*; do
			if [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ]; then
				kill -9 "${p#/proc/}" 2>/dev/null || true
			fi
		done
	fi
	pkill -9 -xf "$JOB_CMD" 2>/dev/null || true
	findmnt -rn -o TARGET | awk -v r="$ROOT" 'index($0, r) == 1' | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
# CMD... in the tree. Its root is the root of a mount namespace of its own
# (pivot_root, held by HOLDER), not a chroot: a chrooted process may not create
# the user namespaces of job containers.
in_root() { "${IN_ROOT[@]}" "$@"; }

# ---------------------------------------------------------------- 1. tree
tarball=$DEBDIR/debootstrap-$codename-minbase.tgz
if [ ! -s "$tarball" ]; then
	log "debootstrap: downloading $codename minbase from $mirror"
	debootstrap --variant=minbase --make-tarball="$tarball.tmp" "$codename" "$WORK/dl" "$mirror" \
		>"$WORK/debootstrap.log" 2>&1 || { tail -n 20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
	mv "$tarball.tmp" "$tarball"
fi
log "debootstrap: $codename minbase into $ROOT"
debootstrap --variant=minbase --unpack-tarball="$tarball" "$codename" "$ROOT" "$mirror" \
	>"$WORK/debootstrap.log" 2>&1 || { tail -n 20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
mount -t proc proc "$ROOT/proc"
mount --rbind /sys "$ROOT/sys" && mount --make-rslave "$ROOT/sys"
mount --rbind /dev "$ROOT/dev" && mount --make-rslave "$ROOT/dev"
mount -t tmpfs -o mode=0755 tmpfs "$ROOT/run"
mkdir -p "$DEBDIR/apt-archives/partial"
mount --bind "$DEBDIR/apt-archives" "$ROOT/var/cache/apt/archives"
# shellcheck disable=SC2016 # (the inner script's $1)
unshare -m --propagation private sh -c 'mount --rbind "$1" "$1" && cd "$1" && pivot_root . mnt &&
	umount -l /mnt && touch /run/ns-ready && exec sleep infinity' sh "$ROOT" &
HOLDER=$!
disown "$HOLDER" # (its end is cleanup's business, and quiet)
for _ in $(seq 100); do [ -e "$ROOT/run/ns-ready" ] && break; sleep 0.1; done
[ -e "$ROOT/run/ns-ready" ] || die "could not make the tree the root of a mount namespace"
rm "$ROOT/run/ns-ready"
IN_ROOT=(nsenter -t "$HOLDER" -m -r -w /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8)

# ---------------------------------------------------- 2. dependencies first
in_root apt-get -q update >"$WORK/apt.log" 2>&1 || { tail "$WORK/apt.log" >&2; die "apt-get update failed"; }
mapfile -t deps < <(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g' | grep .)
log "installing the dependencies: ${deps[*]}"
in_root apt-get -q -y --no-install-recommends install "${deps[@]}" >>"$WORK/apt.log" 2>&1 ||
	{ tail -n 20 "$WORK/apt.log" >&2; die "the dependencies do not install"; }
# every path of the tree but the kernel's, apt's caches and logs
snapshot() {
	in_root find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \
		-o -path /var/cache -o -path /var/lib/apt/lists -o -path /var/log \) -prune -o -print |
		LC_ALL=C sort
}
snapshot >"$WORK/before"
# FILE's content, or a line saying it is missing
content() { cat "$1" 2>/dev/null || echo "(missing)"; }
for f in subuid subgid; do content "$ROOT/etc/$f" >"$WORK/$f.before"; done

# ------------------------------------------------------------ 3. the package
cp "$deb" "$ROOT/tmp/"
log "apt-get install ./$(basename "$deb")"
in_root sh -c "cd /tmp && apt-get -q -y --no-install-recommends install ./$(basename "$deb")" \
	>>"$WORK/apt.log" 2>&1 || { tail -n 20 "$WORK/apt.log" >&2; die "the package does not install"; }
rm "$ROOT/tmp/$(basename "$deb")"
grep -q '^root:' "$ROOT/etc/subuid" || die "no subuid range for root after the install"
if command -v systemd-analyze >/dev/null; then
	# (this machine's units, the tree has none: ExecStart pointed into the tree)
	mkdir -p "$WORK/unit"
	sed "s|^ExecStart=|ExecStart=$ROOT|" "$ROOT/lib/systemd/system/xosd.service" \
		>"$WORK/unit/xosd.service"
	if out=$(systemd-analyze verify --man=no "$WORK/unit/xosd.service" 2>&1); then
		log "systemd-analyze verify: the unit is clean"
	else
		printf '%s\n' "$out" >&2
		die "systemd-analyze verify finds fault with xosd.service"
	fi
else
	log "systemd-analyze is not installed: unit not verified"
fi

# ---------------------------------------------------------- 4. ExecStart
execstart=$(sed -n 's/^ExecStart=//p' "$ROOT/lib/systemd/system/xosd.service")
log "running ExecStart in the tree: $execstart"
"$(command -v /usr/bin/python3 || command -v python3)" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[1] + ".ready", "w").close()
while True:
    m = s.recv(4096).decode()
    with open(sys.argv[2], "a") as f:
        f.write(m + "\n")
' "$ROOT/run/notify.sock" "$WORK/notify" &
LISTENER=$!
for _ in $(seq 100); do [ -e "$ROOT/run/notify.sock.ready" ] && break; sleep 0.1; done
# shellcheck disable=SC2086 # ExecStart's words
# (not through a function: $! must be xosd's pid)
"${IN_ROOT[@]}" NOTIFY_SOCKET=/run/notify.sock $execstart </dev/null >"$WORK/xosd.log" 2>&1 &
xosd=$!
wait_msg() { # MSG: it arrives within 60 s
	for _ in $(seq 600); do
		grep -qx "$1" "$WORK/notify" 2>/dev/null && return 0
		kill -0 "$xosd" 2>/dev/null || break
		sleep 0.1
	done
	cat "$WORK/xosd.log" >&2
	die "xosd did not say $1"
}
job_running() { # ID: xps lists it as RUNNING
	for _ in $(seq 300); do
		in_root xps 2>/dev/null | grep -q "^${1:0:12} .* RUNNING " && return 0
		sleep 0.1
	done
	return 1
}
wait_msg READY=1
log "READY=1 arrived"
in_root xps >/dev/null || die "xps does not answer"
out=$(in_root xrun -- echo hello from a job 2>&1) || true
[ "$out" = "hello from a job" ] || die "a job did not run in the tree: $out"
log "a job ran: $out"
# shellcheck disable=SC2086
id=$(in_root xrun -d -- $JOB_CMD) || die "xrun -d failed"
job_running "$id" || die "job $id does not run"
kill -TERM "$xosd"
wait_msg STOPPING=1
st=0
wait "$xosd" || st=$?
[ "$st" -eq 0 ] || die "xosd exited with status $st after SIGTERM"
log "SIGTERM: STOPPING=1 and a clean exit"
pgrep -xf "$JOB_CMD" >/dev/null || die "job $id did not survive xosd's SIGTERM"
kill "$LISTENER" 2>/dev/null || true
wait "$LISTENER" 2>/dev/null || true
LISTENER=
rm -f "$ROOT/run/notify.sock" "$ROOT/run/notify.sock.ready"
# shellcheck disable=SC2086
"${IN_ROOT[@]}" $execstart </dev/null >>"$WORK/xosd.log" 2>&1 &
xosd=$!
job_running "$id" || { cat "$WORK/xosd.log" >&2; die "the next xosd did not re-adopt job $id"; }
log "job $id survived xosd's stop and was re-adopted"

# ------------------------------------------------------------ 5. purge
log "dpkg --purge xos (xosd and job $id running)"
in_root dpkg --purge xos >>"$WORK/apt.log" 2>&1 || { tail "$WORK/apt.log" >&2; die "purge failed"; }
st=0
wait "$xosd" || st=$?
log "xosd stopped by the purge (status $st)"
snapshot >"$WORK/after"
left=$(comm -13 "$WORK/before" "$WORK/after")
named=$(in_root find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /var/cache \) -prune \
	-o -name '*xos*' -print; in_root find /run -name '*xos*')
fail=0
if [ -n "$left" ]; then
	printf 'deb-test: left after purge: %s\n' "$left" >&2
	fail=1
fi
if [ -n "$named" ]; then
	printf 'deb-test: named *xos* after purge: %s\n' "$named" >&2
	fail=1
fi
if pgrep -xf "$JOB_CMD" >/dev/null; then
	echo "deb-test: job $id still runs after purge" >&2
	fail=1
fi
cgroups=$(find /sys/fs/cgroup -maxdepth 2 -name "*xos-${id}*")
if [ -n "$cgroups" ]; then
	printf 'deb-test: cgroups left after purge: %s\n' "$cgroups" >&2
	fail=1
fi
mounts=$(in_root cat /proc/self/mountinfo | awk '$5 ~ /xos/ { print $5 }')
if [ -n "$mounts" ]; then
	printf 'deb-test: mounts left after purge: %s\n' "$mounts" >&2
	fail=1
fi
for f in subuid subgid; do
	if ! content "$ROOT/etc/$f" | cmp -s "$WORK/$f.before" -; then
		echo "deb-test: /etc/$f differs from before the install" >&2
		fail=1
	fi
done
[ "$fail" -eq 0 ] || die "purge left traces of xos"
log "purge: nothing of xos is left"
log "ok"
