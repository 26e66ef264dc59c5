#!/usr/bin/env bash
# Installs what outboxd needs to build, run and test, from Debian packages.
# Idempotent: packages already installed are left alone.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libsqlite3-dev libcurl4-openssl-dev rapidjson-dev libfmt-dev doctest-dev
  libtomlplusplus-dev libsystemd-dev
  python3 sqlite3 openssl ca-certificates
)
if [ "${1:-}" = "--test" ]; then
  packages+=(systemd clang libclang-rt-14-dev dpkg-dev prometheus debootstrap)
fi
if [ "${1:-}" = "--bench" ]; then
  packages+=(nginx-light wrk binutils linux-perf)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
