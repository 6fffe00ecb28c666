#!/usr/bin/env bash
# Prepare a Debian 12 (bookworm) node to build, run and test xos.
# Run as root from anywhere; safe to run again (steps already done are skipped).
#
# Usage: scripts/setup.sh [--no-build] [--with-podman] [--demo]
#   --no-build     do not build xos (make) at the end
#   --with-podman  also install podman (a benchmark peer)
#   --demo         after the build, run scripts/demo.sh: make install, start
#                  xosd if none answers, run a first job
#
# Steps (docs/SETUP.md explains each):
#   1. Debian packages (apt-get, only if some are missing)
#   2. CRIU >= 4.2 as /usr/local/sbin/criu (scripts/build-criu.sh), and CRIU's
#      zdtm test programs for the test suite (scripts/build-zdtm.sh)
#   3. a subordinate uid/gid range for root in /etc/subuid and /etc/subgid
#      (1000000000 ids, cut into one slice per job)
#   4. kernel: the overlay filesystem
#   5. make
set -euo pipefail

PACKAGES=(build-essential pkgconf git lxc lxc-dev libseccomp-dev libcap-dev libyajl-dev
	libarchive-dev libssl-dev xz-utils zstd bats bats-assert bats-support iproute2 nftables libnftables-dev
	busybox-static procps psmisc jq openssl mandoc shellcheck clang-format runc python3 strace curl
	lintian debootstrap clang libclang-rt-14-dev
	slurmd slurmctld slurm-client munge libslurm-dev slurmdbd mariadb-server-core mariadb-client-core
	libpam0g-dev pamtester)
# root's subordinate ids: each job gets a slice of 65536 of them (xosd.conf
# idmap_slice), so this range bounds the jobs (and jobs with checkpoint
# versions) a node holds at once: 15258 (the first slice is shared); the
# range Incus uses for its containers by default
SUBID_COUNT=1000000000
SUBID_START=1000000

XOS_LOG_PREFIX=setup
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build=1
podman=0
demo=0
for arg in "$@"; do
	case $arg in
	--no-build) build=0 ;;
	--with-podman) podman=1 ;;
	--demo) demo=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
		exit 0
		;;
	*) die "unknown option: $arg (see --help)" ;;
	esac
done

[ "$(id -u)" -eq 0 ] || die "must run as root (try: sudo $0 $*)"
[ "$demo" = 0 ] || [ "$build" = 1 ] || die "--demo needs the build; drop --no-build"
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
start=$SECONDS

if [ -r /etc/os-release ]; then
	codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
	[ "$codename" = bookworm ] || warn "written for Debian 12 (bookworm), this is '${codename:-unknown}'"
fi

# ------------------------------------------------------------------ packages
# strace: tests that follow xosd's or a loader's system calls (25, 38, 87);
# curl: the metrics endpoint's tests (25, 97); neither is in a minimal Debian.
# libpam0g-dev: pam_xos (pam/); pamtester: its test (48-vo-pam.bats).
# slurmd, slurmctld, munge: the Slurm cluster tests/integration/96-slurm.bats
# starts (and stops) itself, with its own munge; libslurm-dev: spank.h for
# the SPANK plugin (slurm/). They add about 27 s here. Their services are
# not used: the test runs its own munged and Slurm daemons on a socket and
# ports of their own (and slurmd, slurmctld do not start without
# /etc/slurm/slurm.conf). slurmdbd, mariadb-server-core (mariadbd and
# mariadb-install-db) and mariadb-client-core (my_print_defaults, which
# mariadb-install-db runs): the test's own accounting storage, for sacct, a
# MariaDB server on a UNIX socket below the test's directory; the -core
# packages carry no service (mariadb-server would start one on the machine).
[ "$podman" = 0 ] || PACKAGES+=(podman)
missing=()
for p in "${PACKAGES[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	[ "${st:0:2}" = ii ] || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
	log "packages: all ${#PACKAGES[@]} installed"
else
	log "packages: installing ${missing[*]}"
	aptlog=$(mktemp)
	# Recommends stay out: they would pull in Debian's criu (through runc),
	# which fails on current kernels, plus daemons (lxcfs) xos does not use.
	if ! { "${APT[@]}" update && "${APT[@]}" install --no-install-recommends "${missing[@]}"; } \
		</dev/null >"$aptlog" 2>&1; then
		tail -n 30 "$aptlog" >&2
		rm -f "$aptlog"
		die "package installation failed"
	fi
	rm -f "$aptlog"
	log "packages: done"
fi
st=$(dpkg-query -W -f='${db:Status-Abbrev}' criu 2>/dev/null || true)
if [ "${st:0:2}" = ii ]; then
	warn "Debian's criu package is installed (/usr/sbin/criu, broken on current kernels);" \
		"/usr/local/sbin/criu comes first in PATH, but consider: apt-get remove criu"
fi

# ---------------------------------------------------------------------- CRIU
log "criu: checking (scripts/build-criu.sh)"
if ! "$REPO_ROOT/scripts/build-criu.sh" </dev/null 2>&1 | sed -u 's/^build-criu: /setup: criu: /'; then
	die "no usable CRIU (scripts/build-criu.sh failed, see above)"
fi
log "criu: zdtm test programs (scripts/build-zdtm.sh)"
if ! "$REPO_ROOT/scripts/build-zdtm.sh" </dev/null 2>&1 | sed -u 's/^build-zdtm: /setup: zdtm: /'; then
	die "could not build CRIU's zdtm test programs (scripts/build-zdtm.sh failed, see above)"
fi

# ----------------------------------------------------- subordinate uid/gid
# subid_has_root FILE: root owns a range of at least SUBID_COUNT ids.
subid_has_root() {
	[ -f "$1" ] && awk -F: -v n="$SUBID_COUNT" '
		($1 == "root" || $1 == "0") && $3 + 0 >= n { ok = 1 }
		END { exit !ok }' "$1"
}
# subid_free START FILE: print START, or failing that the first multiple of
# SUBID_COUNT above it, such that [start, start+SUBID_COUNT) overlaps no range in FILE.
subid_free() {
	local start=$1
	shift
	cat -- "$@" 2>/dev/null | awk -F: -v s="$start" -v n="$SUBID_COUNT" '
		NF >= 3 && $2 ~ /^[0-9]+$/ && $3 ~ /^[0-9]+$/ { lo[++k] = $2 + 0; hi[k] = $2 + $3 }
		END {
			do {
				moved = 0
				for (i = 1; i <= k; i++)
					if (s < hi[i] && lo[i] < s + n) {
						s = int((hi[i] + n - 1) / n) * n; moved = 1
					}
			} while (moved)
			print s
		}'
}
for f in /etc/subuid /etc/subgid; do
	if subid_has_root "$f"; then
		log "$f: root has a range"
		continue
	fi
	# Prefer the start root has in the other file: same numbers, less confusion.
	case $f in */subuid) other=/etc/subgid ;; *) other=/etc/subuid ;; esac
	want=$(awk -F: -v n="$SUBID_COUNT" '($1 == "root" || $1 == "0") && $3 + 0 >= n { print $2; exit }' \
		"$other" 2>/dev/null || true)
	s=$(subid_free "${want:-$SUBID_START}" "$f")
	[ -f "$f" ] || install -m 0644 /dev/null "$f"
	# keep the file newline-terminated before appending
	if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then echo >>"$f"; fi
	printf 'root:%s:%s\n' "$s" "$SUBID_COUNT" >>"$f"
	log "$f: added root:$s:$SUBID_COUNT"
done

# -------------------------------------------------------------------- kernel
if grep -qw overlay /proc/filesystems; then
	log "kernel: overlay filesystem available"
else
	modprobe overlay 2>/dev/null || true
	if grep -qw overlay /proc/filesystems; then
		log "kernel: loaded the overlay module"
	else
		warn "kernel: no overlay filesystem (modprobe overlay failed); job roots need it"
	fi
fi
# bridge-mode jobs (xrun --net bridge) need bridges and nftables (the other
# modules, veth and nft's nat, fib and bridge parts, load on demand)
if [ -d /sys/module/bridge ] || modprobe -q bridge 2>/dev/null; then
	log "kernel: bridge available"
else
	warn "kernel: no bridge support (modprobe bridge failed); xrun --net bridge needs it"
fi
if nft list tables >/dev/null 2>&1; then
	log "kernel: nftables available"
else
	warn "kernel: nftables does not answer (nft list tables); xrun --net bridge needs it"
fi

# --------------------------------------------------------------------- build
if [ "$build" = 1 ]; then
	jobs=$(nproc 2>/dev/null || echo 2)
	log "build: make -j$jobs in $REPO_ROOT"
	make -C "$REPO_ROOT" -j"$jobs" </dev/null || die "build failed (make -C $REPO_ROOT)"
else
	log "build: skipped (--no-build)"
fi
log "done in $((SECONDS - start)) s"
if [ "$demo" = 1 ]; then
	exec "$REPO_ROOT/scripts/demo.sh"
fi
