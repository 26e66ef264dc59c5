#!/usr/bin/env bash
# Makes a minimal Debian root (debootstrap, variant minbase, this machine's
# release) in DIR, for the package install test. Does nothing when DIR
# already holds one; a second caller waits for the first.
#   scripts/debroot.sh DIR [MIRROR]
set -euo pipefail
dir="${1:?usage: scripts/debroot.sh DIR [MIRROR]}"
mirror="${2:-http://deb.debian.org/debian}"
mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9
[ -e "$dir/.outboxd-root-ready" ] && exit 0
command -v debootstrap >/dev/null || { echo "debootstrap is missing (scripts/deps.sh --test)" >&2; exit 1; }
rm -rf "$dir"
# shellcheck source=/dev/null
. /etc/os-release
debootstrap --variant=minbase "${VERSION_CODENAME:?}" "$dir" "$mirror"
touch "$dir/.outboxd-root-ready"
