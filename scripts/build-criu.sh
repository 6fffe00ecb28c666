#!/usr/bin/env bash
# Build CRIU >= 4.2 from Debian's source package and install it as
# /usr/local/sbin/criu (see docs/SETUP.md for the why).
#
# Debian 12's own CRIU (3.17) fails `criu check` on current kernels, and 4.1
# cannot dump inet sockets there; 4.2 works. Bookworm has no 4.2 package, so:
#   1. install the build dependencies from the machine's own release;
#   2. add a temporary deb-src entry for forky (fallback sid), with the
#      archive URI taken from the machine's existing apt sources;
#   3. `apt-get source --download-only criu` (apt checks the tarball against
#      the signed Sources index), then remove the entry again at once;
#   4. apply xos's patches (scripts/criu-patches/*.patch), `make criu` from
#      the upstream tarball and install the binary. Its GitID says it is ours
#      and at which patch level ("v4.2.1+xos4"); xosd reads it (checkpoint_bridge
#      = auto) and an installed CRIU without the current level is rebuilt.
# Nothing is installed from forky/sid: only a source tarball is fetched.
#
# The upstream tarball is kept in XOS_CACHE_DIR (default /var/cache/xos) for
# scripts/build-zdtm.sh, which builds CRIU's own test programs from it.
#
# Usage: scripts/build-criu.sh [--force] [--check] [--source-only]
#   --force        rebuild even if a working, patched CRIU >= 4.2 is installed
#   --check        only report whether the installed CRIU is usable (exit 0/1)
#   --source-only  only make sure the source tarball is in the cache; print its path
# Environment:
#   XOS_APT_URI   archive URI to fetch the source from (default: derived from
#                 the machine's apt sources)
#   XOS_CRIU_SUITES  suites to try, in order (default: "forky sid")
#   XOS_CACHE_DIR    where the source tarball is kept (default /var/cache/xos)
set -euo pipefail

MIN_VERSION=4.2
# Bump with every change to scripts/criu-patches/ (ckpt/store.c knows
# which level holds which fix).
PATCH_LEVEL=4
PATCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/criu-patches
DEST=/usr/local/sbin/criu
read -r -a SUITES <<<"${XOS_CRIU_SUITES:-forky sid}"
TMP_SRC=/etc/apt/sources.list.d/xos-criu-src.sources
BUILD_DEPS=(build-essential patch pkgconf xz-utils libprotobuf-c-dev protobuf-c-compiler
	libprotobuf-dev protobuf-compiler libnl-3-dev libnet1-dev libbsd-dev libcap-dev
	libgnutls28-dev libnftables-dev uuid-dev)

XOS_LOG_PREFIX=build-criu
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

force=0
check_only=0
source_only=0
CACHE=${XOS_CACHE_DIR:-/var/cache/xos}
for arg in "$@"; do
	case $arg in
	--force) force=1 ;;
	--check) check_only=1 ;;
	--source-only) source_only=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
		exit 0
		;;
	*) die "unknown option: $arg (see --help)" ;;
	esac
done

# criu_version BIN: print BIN's version ("4.2.1"), or nothing.
criu_version() {
	"$1" --version 2>/dev/null </dev/null | sed -n 's/^Version: *//p' | head -n 1
}

# criu_level BIN: the xos patch level in BIN's GitID ("...+xos1" -> 1), or 0.
criu_level() {
	local l
	l=$("$1" --version 2>/dev/null </dev/null | sed -n 's/^GitID: .*+xos\([0-9][0-9]*\)$/\1/p' | head -n 1)
	printf '%s\n' "${l:-0}"
}

# criu_usable BIN: BIN is CRIU >= MIN_VERSION with xos's patches at
# PATCH_LEVEL or later, and `criu check` passes.
criu_usable() {
	local bin=$1 ver out
	ver=$(criu_version "$bin")
	[ -n "$ver" ] || return 1
	dpkg --compare-versions "$ver" ge "$MIN_VERSION" || return 1
	[ "$(criu_level "$bin")" -ge "$PATCH_LEVEL" ] || return 1
	out=$("$bin" check 2>&1 </dev/null) || return 1
	grep -q 'Looks good' <<<"$out"
}

# cached_source: the cached upstream tarball >= MIN_VERSION, if any
cached_source() {
	local f v
	for f in "$CACHE"/criu_*.orig.tar.*; do
		[ -f "$f" ] || continue
		v=${f##*/criu_}
		v=${v%%.orig.tar.*}
		dpkg --compare-versions "$v" ge "$MIN_VERSION" && printf '%s\n' "$f" && return 0
	done
	return 1
}
if [ "$source_only" = 1 ] && cached_source; then
	exit 0
fi

current=$(command -v criu || true)
if [ "$source_only" = 0 ] && [ -n "$current" ] && [ "$force" = 0 ] && criu_usable "$current"; then
	log "$current $(criu_version "$current") (xos patch level $(criu_level "$current")) is usable (criu check: Looks good.); nothing to do"
	exit 0
fi
# Our own binary is new enough but `criu check` fails: a rebuild would not
# help (it is the kernel or the environment), so say why and stop.
if [ "$source_only" = 0 ] && [ "$force" = 0 ] && [ -x "$DEST" ] && ver=$(criu_version "$DEST") && [ -n "$ver" ] &&
	dpkg --compare-versions "$ver" ge "$MIN_VERSION" && [ "$current" = "$DEST" ] &&
	[ "$(criu_level "$DEST")" -ge "$PATCH_LEVEL" ]; then
	"$DEST" check </dev/null >&2 || true
	die "$DEST $ver is installed but 'criu check' fails (see above): fix the kernel or environment; --force rebuilds"
fi
if [ "$check_only" = 1 ] && [ "$source_only" = 0 ]; then
	if [ -n "$current" ]; then
		log "$current (version $(criu_version "$current"), xos patch level $(criu_level "$current")) is not usable: need >= $MIN_VERSION, patch level $PATCH_LEVEL and a passing 'criu check'"
	else
		log "no criu on PATH"
	fi
	exit 1
fi

[ "$(id -u)" -eq 0 ] || die "must run as root"
if [ "$force" = 1 ]; then
	log "--force: building CRIU >= $MIN_VERSION"
elif [ -n "$current" ]; then
	log "installed $current ($(criu_version "$current" || true)) is not usable; building CRIU >= $MIN_VERSION"
else
	log "no criu installed; building CRIU >= $MIN_VERSION"
fi
start=$SECONDS

# ---------------------------------------------------------------- build deps
missing=()
for p in "${BUILD_DEPS[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	[ "${st:0:2}" = ii ] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	log "installing build dependencies: ${missing[*]}"
	"${APT[@]}" update </dev/null >/dev/null || die "apt-get update failed"
	"${APT[@]}" install --no-install-recommends "${missing[@]}" </dev/null >/dev/null ||
		die "could not install build dependencies: ${missing[*]}"
fi

# ---------------------------------------------- archive URI from apt sources
# find_archive CODENAME: print the URI of the first `deb` source of suite
# CODENAME, then its Signed-By value (possibly empty or several lines).
# Reads /etc/apt/sources.list and sources.list.d/*.list (one-line format) and
# sources.list.d/*.sources (deb822), in the order apt reads them.
find_archive() {
	local want=$1 f out
	local files=(/etc/apt/sources.list)
	for f in /etc/apt/sources.list.d/*; do
		files+=("$f")
	done
	for f in "${files[@]}"; do
		[ -f "$f" ] || continue
		[ "$f" = "$TMP_SRC" ] && continue
		case $f in
		*.sources)
			out=$(awk -v want="$want" '
				function flush(  u) {
					if (!found && enabled !~ /^(no|false|0)$/ &&
					    (" " types " ") ~ / deb / &&
					    index(" " suites " ", " " want " ") && uris != "") {
						split(uris, u, " ")
						if (u[1] !~ /^cdrom:/) { print u[1]; print signed; found = 1 }
					}
					types = uris = suites = signed = enabled = field = ""
				}
				/^#/ { next }
				/^[ \t]*$/ { flush(); next }
				/^[ \t]/ {
					if (field == "signed-by") signed = signed "\n" $0
					else if (field == "uris") uris = uris " " $0
					else if (field == "suites") suites = suites " " $0
					else if (field == "types") types = types " " $0
					next
				}
				{
					i = index($0, ":"); if (!i) next
					field = tolower(substr($0, 1, i - 1))
					val = substr($0, i + 1); gsub(/^[ \t]+|[ \t]+$/, "", val)
					if (field == "types") types = val
					else if (field == "uris") uris = val
					else if (field == "suites") suites = val
					else if (field == "signed-by") signed = val
					else if (field == "enabled") enabled = tolower(val)
				}
				END {
					flush()
				}' "$f" | awk '{ gsub(/\t/, " ") } 1')
			;;
		*.list)
			out=$(awk -v want="$want" '
				{ sub(/^[ \t]+/, "") }
				/^#/ { next }
				$1 == "deb" && !found {
					i = 2; opts = ""
					if ($2 ~ /^\[/) {
						while (i <= NF) { opts = opts " " $i; if ($i ~ /\]$/) { i++; break }; i++ }
					}
					uri = $i; suite = $(i + 1)
					if (suite == want && uri !~ /^cdrom:/) {
						signed = ""
						if (match(opts, /signed-by=[^] \t]+/)) signed = substr(opts, RSTART + 10, RLENGTH - 10)
						print uri; print signed; found = 1
					}
				}' "$f")
			;;
		*) continue ;;
		esac
		if [ -n "$out" ]; then
			printf '%s\n' "$out"
			return 0
		fi
	done
	return 1
}

codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
[ -n "$codename" ] || die "cannot tell the release codename from /etc/os-release"
if [ -n "${XOS_APT_URI:-}" ]; then
	archive_uri=$XOS_APT_URI
	signed_by=
	if arch_info=$(find_archive "$codename"); then
		signed_by=$(tail -n +2 <<<"$arch_info")
	fi
else
	arch_info=$(find_archive "$codename") ||
		die "no 'deb' source for suite $codename in /etc/apt/sources.list{,.d}; set XOS_APT_URI"
	archive_uri=$(head -n 1 <<<"$arch_info")
	signed_by=$(tail -n +2 <<<"$arch_info")
fi
log "source archive: $archive_uri"

# ----------------------------------------------------- temporary deb-src entry
WORK=$(mktemp -d /var/tmp/xos-criu.XXXXXX)
chmod 0755 "$WORK"
src_added=0

remove_src() {
	if [ "$src_added" = 1 ] || [ -e "$TMP_SRC" ]; then
		rm -f "$TMP_SRC"
		src_added=0
		log "removed temporary source entry; refreshing package lists"
		"${APT[@]}" update </dev/null >/dev/null 2>&1 ||
			warn "apt-get update failed after removing $TMP_SRC (the entry is gone; run apt-get update later)"
	fi
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	remove_src
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# A leftover from an interrupted run would be picked up by every apt call.
[ -e "$TMP_SRC" ] && remove_src

write_src() {
	src_added=1
	{
		printf '# Temporary entry written by xos scripts/build-criu.sh; removed when it ends.\n'
		printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\n' "$archive_uri" "$1"
		[ -z "$signed_by" ] || printf 'Signed-By: %s\n' "$signed_by"
	} >"$TMP_SRC"
	chmod 0644 "$TMP_SRC"
}

DL=$WORK/dl
mkdir -p "$DL"
# apt downloads as _apt when it can write the target directory.
if id _apt >/dev/null 2>&1; then chown _apt "$DL"; fi

orig=
for suite in "${SUITES[@]}"; do
	write_src "$suite"
	log "fetching the source index of $suite"
	# (Check-Valid-Until=false: a mirror frozen in time serves Release files
	# past their Valid-Until; their signatures are still checked, and so is the
	# tarball against the signed Sources index.)
	if ! "${APT[@]}" update -o Dir::Etc::sourcelist="$TMP_SRC" -o Dir::Etc::sourceparts=- \
		-o APT::Get::List-Cleanup=0 -o Acquire::Check-Valid-Until=false \
		</dev/null >"$WORK/update-$suite.log" 2>&1; then
		warn "apt-get update for $suite failed:"
		grep -E '^(E|W):' "$WORK/update-$suite.log" >&2 || tail -n 5 "$WORK/update-$suite.log" >&2
		continue
	fi
	# The .dsc name carries the source version (without epoch).
	dsc=$(apt-get source --print-uris "criu/$suite" </dev/null 2>/dev/null |
		sed -n "s/^'[^']*' \(criu_[^ ]*\.dsc\) .*/\1/p" | head -n 1) || true
	ver=${dsc#criu_}
	ver=${ver%.dsc}
	if [ -z "$ver" ]; then
		warn "no criu source package in $suite"
		continue
	fi
	if ! dpkg --compare-versions "$ver" ge "$MIN_VERSION"; then
		warn "criu in $suite is $ver, need >= $MIN_VERSION"
		continue
	fi
	log "downloading criu $ver source from $suite"
	# The Debian packaging tarball may be missing from the mirror (404): only
	# the upstream tarball matters, so judge by what arrived.
	(cd "$DL" && "${APT[@]}" source --download-only "criu/$suite" </dev/null >"$WORK/source.log" 2>&1) ||
		warn "apt-get source reported errors (tolerated if the upstream tarball arrived):" \
			"$(grep -E '^(E|W|Err):' "$WORK/source.log" | head -n 3 | tr '\n' ' ')"
	for f in "$DL"/criu_*.orig.tar.*; do
		case $f in *.asc | *.sig) continue ;; esac
		[ -f "$f" ] && orig=$f && break
	done
	[ -n "$orig" ] || die "criu_*.orig.tar.* missing after apt-get source (see errors above): $(tail -n 5 "$WORK/source.log")"
	break
done

# Never keep forky/sid in the sources: do this before anything else.
remove_src
[ -n "$orig" ] || die "found no criu source >= $MIN_VERSION in: ${SUITES[*]}"

upstream=${orig##*/criu_}
upstream=${upstream%%.orig.tar.*}
dpkg --compare-versions "$upstream" ge "$MIN_VERSION" ||
	die "downloaded upstream tarball is version $upstream, need >= $MIN_VERSION"
install -d -m 0755 "$CACHE"
install -m 0644 "$orig" "$CACHE/${orig##*/}"
if [ "$source_only" = 1 ]; then
	log "source tarball cached: $CACHE/${orig##*/}" >&2
	printf '%s\n' "$CACHE/${orig##*/}"
	exit 0
fi

# ---------------------------------------------------------------------- build
SRC=$WORK/src
mkdir -p "$SRC"
tar -xf "$orig" -C "$SRC" --strip-components=1
[ -f "$SRC/Makefile" ] || die "unexpected tarball layout: $orig"
for p in "$PATCH_DIR"/*.patch; do
	[ -f "$p" ] || continue
	log "applying ${p##*/}"
	patch -d "$SRC" -p1 --forward --batch <"$p" >"$WORK/patch.log" 2>&1 ||
		die "patch ${p##*/} does not apply to criu $upstream: $(tail -n 5 "$WORK/patch.log")"
done
jobs=$(nproc 2>/dev/null || echo 2)
log "building criu $upstream (make -j$jobs criu; log: $WORK/build.log)"
bstart=$SECONDS
if ! env -u CFLAGS -u LDFLAGS -u CPPFLAGS make -C "$SRC" -j"$jobs" criu GITID="v$upstream+xos$PATCH_LEVEL" \
	</dev/null >"$WORK/build.log" 2>&1; then
	tail -n 40 "$WORK/build.log" >&2
	die "building criu failed"
fi
[ -x "$SRC/criu/criu" ] || die "build produced no criu/criu binary"
log "built in $((SECONDS - bstart)) s"

install -D -m 0755 "$SRC/criu/criu" "$DEST.xos-new"
mv -f "$DEST.xos-new" "$DEST"
hash -r

# ---------------------------------------------------------------------- check
got=$(criu_version "$DEST")
if [ -z "$got" ] || ! dpkg --compare-versions "$got" ge "$MIN_VERSION"; then
	die "$DEST reports version '${got:-?}', need >= $MIN_VERSION"
fi
if ! out=$("$DEST" check 2>&1 </dev/null) || ! grep -q 'Looks good' <<<"$out"; then
	printf '%s\n' "$out" >&2
	die "'$DEST check' failed: this kernel lacks something CRIU needs (see above)"
fi
first=$(command -v criu || true)
if [ "$first" != "$DEST" ]; then
	warn "criu on PATH is $first, not $DEST: put /usr/local/sbin first in PATH"
fi
[ "$(criu_level "$DEST")" = "$PATCH_LEVEL" ] || die "$DEST does not carry xos patch level $PATCH_LEVEL in its GitID"
log "installed $DEST $got, xos patch level $PATCH_LEVEL (criu check: Looks good.) in $((SECONDS - start)) s"
