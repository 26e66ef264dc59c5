#!/usr/bin/env bash
# Installs dependencies, builds outboxd and runs it in the foreground on its
# built-in defaults (socket and database under ./outboxd-data/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOUTBOXD_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)"
exec build/daemon/outboxd "$@"
