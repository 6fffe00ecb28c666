# shellcheck shell=bash
# Shared by the setup scripts: environment, apt, and messages prefixed with
# the script's name (set XOS_LOG_PREFIX before sourcing).
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2034 # used by the scripts that source this
APT=(apt-get -q -y -o DPkg::Lock::Timeout=300)

log() { printf '%s: %s\n' "$XOS_LOG_PREFIX" "$*"; }
warn() { printf '%s: warning: %s\n' "$XOS_LOG_PREFIX" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$XOS_LOG_PREFIX" "$*" >&2
	exit 1
}
