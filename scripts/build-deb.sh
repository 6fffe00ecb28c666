#!/usr/bin/env bash
# Build the Debian package xos_VERSION_ARCH.deb from this tree with dpkg-deb
# (no debian/ source directory, no debhelper): `make deb` runs it.
#
#   scripts/build-deb.sh [OUTDIR]      (default: build-deb)
#
# The binaries are built with PREFIX=/usr in OUTDIR/build (compiled-in paths:
# /usr/libexec/xos, /etc/xos), installed with `make install DESTDIR=...`,
# stripped, and packed with the unit, logrotate config, bash completion,
# documentation and maintainer scripts of dist/. Library dependencies come
# from dpkg-shlibdeps. Needs: build-essential, pkgconf, the -dev packages of
# scripts/setup.sh, dpkg-dev; lintian to check the result (`make deb` runs it
# when installed).
set -euo pipefail

XOS_LOG_PREFIX=build-deb
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/common.sh
. "$REPO_ROOT/scripts/common.sh"

OUT=$(realpath -m "${1:-$REPO_ROOT/build-deb}")
DIST=$REPO_ROOT/dist
STAGE=$OUT/stage
MAINTAINER=${XOS_DEB_MAINTAINER:-xos developers <xos@example.org>}
VERSION=$(sed -n 's/^#define XOS_VERSION "\(.*\)"/\1/p' "$REPO_ROOT/common/common.h")
ARCH=$(dpkg --print-architecture)
[ -n "$VERSION" ] || die "no XOS_VERSION in common/common.h"
command -v dpkg-shlibdeps >/dev/null || die "dpkg-shlibdeps missing: apt-get install dpkg-dev"
# reproducible dates: the last commit's, else now
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$REPO_ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

MAKEVARS=(BUILD="$OUT/build" PREFIX=/usr LIBEXECDIR=/usr/libexec/xos SYSCONFDIR=/etc)
log "building $VERSION ($ARCH) in $OUT/build"
make -C "$REPO_ROOT" -j"$(nproc)" "${MAKEVARS[@]}" all >"$OUT.make.log" 2>&1 ||
	{ tail -n 30 "$OUT.make.log" >&2; die "make failed (log: $OUT.make.log)"; }
rm -rf "$STAGE"
mkdir -p "$STAGE"
make -C "$REPO_ROOT" "${MAKEVARS[@]}" DESTDIR="$STAGE" install >>"$OUT.make.log" 2>&1 ||
	{ tail -n 30 "$OUT.make.log" >&2; die "make install failed (log: $OUT.make.log)"; }
mv "$OUT.make.log" "$OUT/make.log"

# --- what make install does not do for a package
find "$STAGE" -type f \( -perm -u+x -o -name '*.so*' \) -exec file {} + | awk -F: '/ELF/ { print $1 }' |
	while read -r f; do
		strip --remove-section=.comment --remove-section=.note --strip-unneeded "$f"
	done
find "$STAGE/usr/share/man" -type f -exec gzip -9n {} +
install -D -m 0644 "$DIST/xosd.service" "$STAGE/lib/systemd/system/xosd.service"
install -D -m 0644 "$DIST/xos.logrotate" "$STAGE/etc/logrotate.d/xos"
DOC=$STAGE/usr/share/doc/xos
install -D -m 0644 "$DIST/debian/copyright" "$DOC/copyright"
install -m 0644 "$DIST/debian/README.Debian" "$DOC/README.Debian"
install -D -m 0644 "$DIST/debian/lintian-overrides" "$STAGE/usr/share/lintian/overrides/xos"
commit=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
printf 'xos (%s) unstable; urgency=medium\n\n  * Built from the xos source tree (commit %s).\n\n -- %s  %s\n' \
	"$VERSION" "$commit" "$MAINTAINER" "$(date -R -u -d "@$SOURCE_DATE_EPOCH")" |
	gzip -9n >"$DOC/changelog.gz"

# --- control
mkdir -p "$STAGE/DEBIAN" "$OUT/shlibs/debian"
printf 'Source: xos\n\nPackage: xos\nArchitecture: any\n' >"$OUT/shlibs/debian/control"
mapfile -t elfs < <(find "$STAGE" -type f -exec file {} + | awk -F: '/ELF.*dynamically/ { print $1 }')
depends=$(cd "$OUT/shlibs" && dpkg-shlibdeps -O "${elfs[@]}" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || die "dpkg-shlibdeps found no library dependencies"
size=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$size/" \
	-e "s/@DEPENDS@/$depends/" -e "s/@MAINTAINER_EMAIL@/${MAINTAINER//\//\\/}/" \
	"$DIST/debian/control.in" >"$STAGE/DEBIAN/control"
(cd "$STAGE" && find etc -type f | sed 's|^|/|' | sort) >"$STAGE/DEBIAN/conffiles"
for s in postinst prerm postrm; do
	install -m 0755 "$DIST/debian/$s" "$STAGE/DEBIAN/$s"
done
# libnss_xos is a shared library in the library directory
printf 'activate-noawait ldconfig\n' >"$STAGE/DEBIAN/triggers"
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort |
	xargs md5sum) >"$STAGE/DEBIAN/md5sums"

# directories 0755, files 0644 unless executable, all root's
find "$STAGE" -type d -exec chmod 0755 {} +
deb=$OUT/xos_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$deb" >/dev/null
log "built $deb"

# --- xos-slurm: the SPANK plugin and the Slurm scripts, a package of their own
# (built where libslurm-dev's spank.h is: make all builds the plugin there)
if [ -f "$OUT/build/xos-spank.so" ]; then
	SSTAGE=$OUT/stage-slurm
	SDOC=$SSTAGE/usr/share/doc/xos-slurm
	rm -rf "$SSTAGE"
	install -D -m 0644 "$OUT/build/xos-spank.so" "$SSTAGE/usr/lib/xos/xos-spank.so"
	strip --remove-section=.comment --remove-section=.note --strip-unneeded \
		"$SSTAGE/usr/lib/xos/xos-spank.so"
	install -D -m 0755 "$REPO_ROOT/slurm/xos-spank-exec" "$SSTAGE/usr/libexec/xos/xos-spank-exec"
	install -m 0755 "$REPO_ROOT/slurm/xos-slurm-job" "$SSTAGE/usr/libexec/xos/xos-slurm-job"
	install -d "$SSTAGE/etc/slurm/plugstack.conf.d"
	printf '%s\n' "# xos: srun --xos[=TEMPLATE], srun --xos-checkpoint=DIR (docs: /usr/share/doc/xos-slurm)" \
		"optional /usr/lib/xos/xos-spank.so" >"$SSTAGE/etc/slurm/plugstack.conf.d/xos.conf"
	install -D -m 0644 "$DIST/debian/copyright" "$SDOC/copyright"
	gzip -9n <"$REPO_ROOT/docs/SLURM.md" >"$SDOC/SLURM.md.gz"
	printf 'xos (%s) unstable; urgency=medium\n\n  * Built from the xos source tree (commit %s).\n\n -- %s  %s\n' \
		"$VERSION" "$commit" "$MAINTAINER" "$(date -R -u -d "@$SOURCE_DATE_EPOCH")" |
		gzip -9n >"$SDOC/changelog.gz"
	mkdir -p "$SSTAGE/DEBIAN"
	sdepends=$(cd "$OUT/shlibs" && dpkg-shlibdeps -O "$SSTAGE/usr/lib/xos/xos-spank.so" 2>/dev/null |
		sed -n 's/^shlibs:Depends=//p')
	[ -n "$sdepends" ] || die "dpkg-shlibdeps found no library dependencies of the SPANK plugin"
	size=$(du -sk --exclude=DEBIAN "$SSTAGE" | cut -f1)
	sed -e "s/@VERSION@/$VERSION/g" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$size/" \
		-e "s/@DEPENDS@/$sdepends/" -e "s/@MAINTAINER_EMAIL@/${MAINTAINER//\//\\/}/" \
		"$DIST/debian/control-slurm.in" >"$SSTAGE/DEBIAN/control"
	echo /etc/slurm/plugstack.conf.d/xos.conf >"$SSTAGE/DEBIAN/conffiles"
	(cd "$SSTAGE" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' |
		LC_ALL=C sort | xargs md5sum) >"$SSTAGE/DEBIAN/md5sums"
	find "$SSTAGE" -type d -exec chmod 0755 {} +
	sdeb=$OUT/xos-slurm_${VERSION}_${ARCH}.deb
	dpkg-deb --root-owner-group -Zxz --build "$SSTAGE" "$sdeb" >/dev/null
	log "built $sdeb"
else
	log "no SPANK plugin built (libslurm-dev missing): no xos-slurm package"
fi
