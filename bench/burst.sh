#!/usr/bin/env bash
# Burst fairness: 10 consecutive runs of each 300-process shape with the default settings (bench/burst.py).
# Rewrites the `bench/burst` section of BENCHMARKS.md. Asserts nothing.
#
#   bench/burst.sh                        # ~3 min on a quiet machine
#   BENCH_ARGS="--runs 3" bench/burst.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ours=$(bench/build.sh)
# 300 processes, each with 3 pipe ends in the driver.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# shellcheck disable=SC2086
python3 bench/burst.py --binary "$ours" --command "bench/burst.sh${BENCH_ARGS:+ (BENCH_ARGS=$BENCH_ARGS)}" ${BENCH_ARGS:-}
