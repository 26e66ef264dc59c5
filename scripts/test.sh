#!/usr/bin/env bash
# Installs dependencies, builds outboxd with warnings as errors and runs the
# whole test suite; then builds it again with clang under AddressSanitizer
# and UndefinedBehaviorSanitizer (plus the libFuzzer targets) and runs the
# suite and the fuzzers there too.
#   scripts/test.sh            everything
#   scripts/test.sh --quick    the plain build only
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
jobs="$(nproc)"
# The package install test needs a clean Debian root; debootstrap fetches it
# while the builds run (the test waits for it, or makes it if this did not).
export OUTBOXD_DEBROOT="$PWD/build-debroot/root"
mkdir -p build-debroot
scripts/debroot.sh "$OUTBOXD_DEBROOT" >build-debroot/debootstrap.log 2>&1 &

if [ "${1:-}" != "--quick" ]; then
  CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DOUTBOXD_WERROR=ON -DOUTBOXD_FUZZ=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  (cd build-asan && ctest --output-on-failure -j"$jobs")
fi

cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOUTBOXD_WERROR=ON >/dev/null
cmake --build build-test -j"$jobs"
cd build-test
ctest --output-on-failure -j"$jobs"
