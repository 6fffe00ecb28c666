#!/usr/bin/env bash
# Build CRIU's zdtm static test programs named in tests/integration/zdtm.list
# from the CRIU source tarball (fetched and cached by scripts/build-criu.sh
# --source-only) and install them into XOS_ZDTM_DIR (default
# /usr/local/lib/xos/zdtm): below /usr, so every job of the built-in host
# template sees them. Skipped when the installed set matches the list.
#
# Usage: scripts/build-zdtm.sh [--force]
# Environment: XOS_ZDTM_DIR, XOS_CACHE_DIR (see build-criu.sh)
set -euo pipefail

XOS_LOG_PREFIX=build-zdtm
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIST=$REPO_ROOT/tests/integration/zdtm.list
DEST=${XOS_ZDTM_DIR:-/usr/local/lib/xos/zdtm}
CACHE=${XOS_CACHE_DIR:-/var/cache/xos}
force=0
for arg in "$@"; do
	case $arg in
	--force) force=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
		exit 0
		;;
	*) die "unknown option: $arg (see --help)" ;;
	esac
done
[ "$(id -u)" -eq 0 ] || die "must run as root"

mapfile -t names < <(grep -v '^[[:space:]]*\(#\|$\)' "$LIST" | awk '{print $1}')
[ "${#names[@]}" -gt 0 ] || die "no test in $LIST"
stamp=$(sha256sum <"$LIST" | cut -d' ' -f1)
if [ "$force" = 0 ] && [ "$(cat "$DEST/.stamp" 2>/dev/null || true)" = "$stamp" ]; then
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
