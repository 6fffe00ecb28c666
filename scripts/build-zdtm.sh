#!/usr/bin/env bash
# Build CRIU's zdtm static test programs named in tests/integration/zdtm.list
# and zdtm-jobs.list (88-zdtm-jobs.bats)
# from the CRIU source tarball (fetched and cached by scripts/build-criu.sh
# --source-only) and install them into XOS_ZDTM_DIR (default
# /usr/local/lib/xos/zdtm): below /usr, so every job of the built-in host
# template sees them. Skipped when the installed set matches the list.
#
# With --all (make zdtm): every static program of the suite instead, each
# into XOS_ZDTM_DIR/all, tolerating those that fail to build; it writes there
# all.list (NAME ARGUMENTS, as 82-zdtm.bats reads them), flags.list (NAME and
# the flags of the program's .desc: suid, crfail, nouser...) and
# build-failed.list (the programs that did not build).
#
# Usage: scripts/build-zdtm.sh [--force] [--all]
# Environment: XOS_ZDTM_DIR, XOS_CACHE_DIR (see build-criu.sh)
set -euo pipefail

XOS_LOG_PREFIX=build-zdtm
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIST=$REPO_ROOT/tests/integration/zdtm.list
JOBS_LIST=$REPO_ROOT/tests/integration/zdtm-jobs.list
DEST=${XOS_ZDTM_DIR:-/usr/local/lib/xos/zdtm}
CACHE=${XOS_CACHE_DIR:-/var/cache/xos}
force=0
all=0
for arg in "$@"; do
	case $arg in
	--force) force=1 ;;
	--all) all=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
		exit 0
		;;
	*) die "unknown option: $arg (see --help)" ;;
	esac
done
[ "$(id -u)" -eq 0 ] || die "must run as root"

# All the static programs; their arguments as the suite's Makefile gives
# them (TST_FILE: --filename, TST_DIR: --dirname, ... and its own rules).
all_programs() {
	local src=$1 n var args
	cat >"$WORK/print.mk" <<'MK'
print:
	@for t in $(TST_NOFILE); do echo "NOFILE $$t"; done
	@for t in $(TST_FILE); do echo "FILE $$t"; done
	@for t in $(TST_DIR); do echo "DIR $$t"; done
	@for t in $(TST_DIR_FILE); do echo "DIR_FILE $$t"; done
	@for t in $(TST); do echo "OTHER $$t"; done
MK
	# (TST has them all, and some of its own: env00, umask00...)
	make -s -C "$src" -f Makefile -f "$WORK/print.mk" print </dev/null 2>/dev/null |
		awk '!seen[$2]++' |
		while read -r var n; do
			case $var in
			FILE) args="--filename=@.test" ;;
			DIR) args="--dirname=@.test" ;;
			DIR_FILE) args="--dirname=@.dir.test --filename=@.test" ;;
			*) args= ;;
			esac
			case $n in
			cmdlinenv00) args="--arg1=arg1 --arg2=arg2 --arg3=arg3" ;;
			shm-unaligned) args="--shmem_size=5000" ;;
			shm-hugetlb) args="--shmem_size=4194304" ;;
			env00) args="--envname=ENV_00_TEST" ;;
			umask00) args="--mask=0345" ;;
			fifo-rowo-pair) args="--name_master=@.master.test --name_slave=@.slave.test" ;;
			esac
			printf '%s %s\n' "$n" "$args"
		done
}

build_all() {
	local src=$WORK/test/zdtm/static dest=$DEST/all n args flags progs
	all_programs "$src" >"$WORK/all.list"
	[ -s "$WORK/all.list" ] || die "no program found in the zdtm Makefile"
	log "building the zdtm library and all $(wc -l <"$WORK/all.list") static programs"
	env -u CFLAGS -u LDFLAGS -u CPPFLAGS make -C "$WORK/test/zdtm/lib" -j"$jobs" \
		</dev/null >"$WORK/build.log" 2>&1 || die "building the zdtm library failed"
	mapfile -t progs < <(awk '{print $1}' "$WORK/all.list")
	# -k: the programs that do not build here are listed, not fatal
	env -u CFLAGS -u LDFLAGS -u CPPFLAGS make -k -C "$src" -j"$jobs" \
		"${progs[@]}" </dev/null >>"$WORK/build.log" 2>&1 || true
	rm -rf "$dest"
	install -d -m 0755 "$dest"
	: >"$dest/all.list"
	: >"$dest/build-failed.list"
	: >"$dest/flags.list"
	while read -r n args; do
		if [ -x "$src/$n" ]; then
			install -m 0755 "$src/$n" "$dest/$n"
			printf '%s %s\n' "$n" "$args" >>"$dest/all.list"
		else
			echo "$n" >>"$dest/build-failed.list"
		fi
		flags=
		if [ -f "$src/$n.desc" ]; then
			flags=$(sed -n "s/.*'flags': *'\([^']*\)'.*/\1/p" "$src/$n.desc")
		fi
		printf '%s %s\n' "$n" "$flags" >>"$dest/flags.list"
	done <"$WORK/all.list"
	cp "$WORK/build.log" "$dest/build.log"
	printf '%s\n' "$tarball" >"$dest/.stamp"
	log "installed $(wc -l <"$dest/all.list") zdtm programs into $dest;" \
		"$(wc -l <"$dest/build-failed.list") did not build (see $dest/build-failed.list)"
}

mapfile -t names < <({
	grep -v '^[[:space:]]*\(#\|$\)' "$LIST" | awk '{print $1}'
	grep -v '^[[:space:]]*\(#\|$\)' "$JOBS_LIST" | awk '{print $2}'
} | sort -u)
[ "${#names[@]}" -gt 0 ] || die "no test in $LIST"
stamp=$(cat "$LIST" "$JOBS_LIST" | sha256sum | cut -d' ' -f1)
if [ "$all" = 1 ] && [ "$force" = 0 ] && [ -s "$DEST/all/all.list" ] &&
	[ -n "$(cat "$DEST/all/.stamp" 2>/dev/null || true)" ]; then
	log "$(wc -l <"$DEST/all/all.list") zdtm programs in $DEST/all are built; nothing to do"
	exit 0
elif [ "$all" = 0 ] && [ "$force" = 0 ] && [ "$(cat "$DEST/.stamp" 2>/dev/null || true)" = "$stamp" ]; then
	log "${#names[@]} zdtm programs in $DEST are current; nothing to do"
	exit 0
fi

XOS_CACHE_DIR=$CACHE "$REPO_ROOT/scripts/build-criu.sh" --source-only >/dev/null ||
	die "no CRIU source tarball (scripts/build-criu.sh --source-only failed)"
tarball=
for f in "$CACHE"/criu_*.orig.tar.*; do
	[ -f "$f" ] && tarball=$f
done
[ -n "$tarball" ] || die "no criu_*.orig.tar.* in $CACHE"

WORK=$(mktemp -d /var/tmp/xos-zdtm.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
tar -xf "$tarball" -C "$WORK" --strip-components=1
jobs=$(nproc 2>/dev/null || echo 2)
if [ "$all" = 1 ]; then
	build_all
	exit 0
fi
log "building the zdtm library and ${#names[@]} static tests from ${tarball##*/}"
if ! env -u CFLAGS -u LDFLAGS -u CPPFLAGS make -C "$WORK/test/zdtm/lib" -j"$jobs" \
	</dev/null >"$WORK/build.log" 2>&1 ||
	! env -u CFLAGS -u LDFLAGS -u CPPFLAGS make -C "$WORK/test/zdtm/static" -j"$jobs" \
		"${names[@]}" </dev/null >>"$WORK/build.log" 2>&1; then
	tail -n 30 "$WORK/build.log" >&2
	die "building the zdtm tests failed"
fi
install -d -m 0755 "$DEST"
for n in "${names[@]}"; do
	install -m 0755 "$WORK/test/zdtm/static/$n" "$DEST/$n"
done
printf '%s\n' "$stamp" >"$DEST/.stamp"
log "installed ${#names[@]} zdtm programs into $DEST"
