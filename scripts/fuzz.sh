#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each one.
#   scripts/fuzz.sh [RUNS] [SECONDS]
# RUNS: inputs per target (default 20000; 0 = no limit); SECONDS: time per
# target (default none). For a long run: scripts/fuzz.sh 0 3600
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20000}"
secs="${2:-}"
scripts/deps.sh --test
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DOUTBOXD_FUZZ=ON -DOUTBOXD_BUILD_TESTS=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_request fuzz_config fuzz_classify
for t in request config classify; do
  work="$(mktemp -d)"
  cp tests/fuzz/corpus/"$t"/* "$work"/
  args=(-runs="$runs" -max_len=65536)
  [ -n "$secs" ] && args+=(-max_total_time="$secs")
  echo "fuzz_$t: ${args[*]}"
  build-fuzz/tests/fuzz/fuzz_"$t" "${args[@]}" "$work" 2>&1 | tail -n 2
  rm -rf "$work"
done
echo "fuzzing: 3 passed, 0 failed"
