#!/usr/bin/env bash
# Install xos and run a first job: what `scripts/setup.sh --demo` does after
# a successful build. Run as root, after scripts/setup.sh.
#
# Usage: scripts/demo.sh
#   1. make install (PREFIX=/usr/local; /etc/xos/xosd.conf only if missing)
#   2. start xosd unless one already answers on /run/xos/xosd.sock
#      (in the background, in a session of its own, logging to /var/log/xosd.log)
#   3. run a job on the built-in `host` template, attached:
#        xrun -- sh -c 'echo "hello from job $(hostname) as $(id -un)"'
#   4. show it with xps -a
# xosd stays running afterwards; the script prints its pid and how to stop it.
set -euo pipefail

PREFIX=/usr/local
SOCKET=/run/xos/xosd.sock
LOG=/var/log/xosd.log
START_TIMEOUT=10 # seconds for a new xosd to answer

export PATH="$PREFIX/sbin:$PREFIX/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}"
export XOS_SOCKET=$SOCKET

log() { printf 'demo: %s\n' "$*"; }
die() {
	printf 'demo: error: %s\n' "$*" >&2
	exit 1
}

case ${1:-} in
'') ;;
-h | --help)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
	exit 0
	;;
*) die "unknown argument: $1 (see --help)" ;;
esac

[ "$(id -u)" -eq 0 ] || die "must run as root (try: sudo $0)"
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# -------------------------------------------------------------------- install
log "install: make install PREFIX=$PREFIX"
instlog=$(mktemp)
if ! make -C "$REPO_ROOT" install PREFIX="$PREFIX" </dev/null >"$instlog" 2>&1; then
	tail -n 30 "$instlog" >&2
	rm -f "$instlog"
	die "make install failed"
fi
rm -f "$instlog"
log "install: xrun xps xlogs xwait xkill xos in $PREFIX/bin, xosd in $PREFIX/sbin," \
	"xos-loader and xos-template-helper in $PREFIX/libexec/xos, man pages in $PREFIX/share/man"

# ---------------------------------------------------------------------- xosd
answers() { xps >/dev/null 2>&1; }

xosd_pid=
if answers; then
	log "xosd: one already answers on $SOCKET; using it"
else
	log "xosd: starting $PREFIX/sbin/xosd (log: $LOG)"
	mkdir -p "$(dirname "$LOG")"
	# --foreground under setsid rather than xosd's own daemon mode: the same
	# detached daemon, but with a known pid and its messages kept in $LOG.
	(cd / && exec setsid "$PREFIX/sbin/xosd" --foreground --socket "$SOCKET" \
		</dev/null >>"$LOG" 2>&1) &
	xosd_pid=$!
	for ((i = 0; i < START_TIMEOUT * 10; i++)); do
		answers && break
		if ! kill -0 "$xosd_pid" 2>/dev/null; then
			tail -n 20 "$LOG" >&2
			die "xosd exited at once (its log is above and in $LOG)"
		fi
		sleep 0.1
	done
	answers || {
		tail -n 20 "$LOG" >&2
		die "xosd (pid $xosd_pid) does not answer on $SOCKET after ${START_TIMEOUT} s"
	}
	log "xosd: running as pid $xosd_pid, listening on $SOCKET"
fi

# ----------------------------------------------------------------------- job
# shellcheck disable=SC2016 # $(...) is for the job's shell, not this one
cmd='echo "hello from job $(hostname) as $(id -un)"'
before=$(xps -a -q | sort)
echo
log "job: xrun -- sh -c '$cmd'"
rc=0
xrun -- sh -c "$cmd" || rc=$?
[ "$rc" -eq 0 ] || die "the job failed (xrun exited $rc)${xosd_pid:+; see $LOG}"
# the job just run: the id xps did not list before (the job's host name is
# the first 12 digits of it)
mapfile -t new < <(xps -a -q | sort | comm -13 <(printf '%s\n' "$before") -)
echo
log "job: xps -a ${new[*]}"
xps -a "${new[@]}"

echo
if [ -n "$xosd_pid" ]; then
	cat <<EOF
xosd stays running (pid $xosd_pid, log $LOG). Stop it with:
    kill $xosd_pid
Jobs keep running while xosd is stopped; starting xosd again re-adopts them.
EOF
else
	echo "xosd stays running as it was (this script did not start it)."
fi
cat <<'EOF'

Next:
    xrun -- id                                   # a job, attached: root's jobs run as nobody
    xrun -d --name ticker -- sh -c 'while sleep 1; do date; done'   # detached: prints the id
    xps                                          # the live jobs
    xlogs ticker                                 # its output so far (-f: follow)
    xkill ticker; xwait ticker                   # SIGTERM; xwait exits 143 (128 + 15)
    xps -a --json                                # every job, also the ended ones, as JSON
    xrun -t -- bash                              # a shell in a job of its own (exit: leave)
    man xrun; man xosd; man xosd.conf
EOF
