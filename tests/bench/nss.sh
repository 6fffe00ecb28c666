#!/usr/bin/env bash
# getent passwd of a pool account through libnss_xos against getent passwd of
# an account in /etc/passwd (files), interleaved, in one mount namespace
# whose nsswitch.conf has "xos" after "files" (issue 12's benchmark: within
# 2x). The lease state holds 100 pool accounts, as xosd writes it.
#   ROUNDS=200 tests/bench/nss.sh [BUILD_DIR]
# Prints the medians in ms and their ratio. Needs root (a mount namespace);
# leaves nothing behind.
set -u
B=$(cd "${1:-build}" && pwd)
[ -e "$B/libnss_xos.so.2" ] || { echo "no $B/libnss_xos.so.2: make first" >&2; exit 1; }
T=$(mktemp -d /tmp/xos-bench-nss.XXXXXX)
trap 'rm -rf "$T"' EXIT
{
	echo "# xos pool accounts and VO groups, written by xosd (libnss_xos reads it)"
	echo "group biomed 700000"
	for i in $(seq 1 100); do
		printf 'account xos-biomed-%03d %d 700000 biomed 0 /home/biomed/xos-biomed-%03d /O=biomed/CN=user%d/title=member\n' \
			"$i" $((700000 + i)) "$i" "$i"
	done
} >"$T/accounts"
sed -E 's/^(passwd|group):.*/& xos/' /etc/nsswitch.conf >"$T/nsswitch.conf"
files_user=$(awk -F: 'NR == 1 { print $1 }' /etc/passwd)
export B T files_user
# shellcheck disable=SC2016 # (expanded by the inner bash)
unshare -m bash -c '
	mount --bind "$T/nsswitch.conf" /etc/nsswitch.conf || exit 1
	export LD_LIBRARY_PATH=$B XOS_NSS_ACCOUNTS=$T/accounts
	getent passwd xos-biomed-050 >/dev/null || { echo "libnss_xos gave no answer" >&2; exit 1; }
	for r in $(seq 1 "${ROUNDS:-200}"); do
		for kind in xos files; do
			[ "$kind" = xos ] && u=xos-biomed-050 || u=$files_user
			s=${EPOCHREALTIME/./}
			getent passwd "$u" >/dev/null
			e=${EPOCHREALTIME/./}
			[ "$r" -gt 5 ] && echo $((e - s)) >>"$T/$kind.t"
		done
	done
'
med() { sort -n "$1" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
x=$(med "$T/xos.t")
f=$(med "$T/files.t")
awk -v x="$x" -v f="$f" -v n="$(wc -l <"$T/xos.t")" 'BEGIN { printf "getent passwd, median of %d: files %.2f ms, libnss_xos (100 leases) %.2f ms, ratio %.3f\n", n, f / 1000, x / 1000, x / f }'
