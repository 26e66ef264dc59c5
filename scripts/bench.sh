#!/usr/bin/env bash
# Builds outboxd in release mode and runs every benchmark; prints Markdown.
#   scripts/bench.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j"$(nproc)" --target outboxd outboxctl ingest_bench store_bench
rows="1000,100000,1000000"
secs=5
if [ "${1:-}" = "--quick" ]; then rows="1000,100000"; secs=2; fi
echo "## outboxd benchmarks, $(date -u +%Y-%m-%d), $(nproc) cores, $(df -h /var/tmp | awk 'NR==2{print $1}')"
echo
echo "### Durable ingest over the socket (synchronous=full, ~300-byte events)"
build-bench/tests/bench/ingest_bench --seconds "$secs"
echo
echo "### Store operations against backlog size (synchronous=full)"
build-bench/tests/bench/store_bench --rows "$rows" --seconds "$secs"
