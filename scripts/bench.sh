#!/usr/bin/env bash
# Builds outboxd in release mode and runs every benchmark; prints Markdown.
#   scripts/bench.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --bench
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j"$(nproc)" --target outboxd outboxctl ingest_bench store_bench \
  drain_bench ratelimit_bench soak_bench >&2
rows="1000,100000,1000000"
secs=5
minutes=3
backlog=1000000
if [ "${1:-}" = "--quick" ]; then rows="1000,100000"; secs=2; minutes=1; backlog=100000; fi
echo "## outboxd benchmarks, $(date -u +%Y-%m-%d), $(nproc) cores, $(df -h /var/tmp | awk 'NR==2{print $1}')"
echo
echo "### Durable ingest over the socket (synchronous=full, ~300-byte events)"
build-bench/tests/bench/ingest_bench --seconds "$secs"
echo
echo "### Store operations against backlog size (synchronous=full)"
build-bench/tests/bench/store_bench --rows "$rows" --seconds "$secs"
echo
echo "### End-to-end drain, memory, start-up"
build-bench/tests/bench/drain_bench --events 100000 --backlog "$backlog"
echo
echo "### Rate-limit fidelity (MoEngage 1000/min, simulator enforcing it)"
build-bench/tests/bench/ratelimit_bench --minutes "$minutes"
