#!/usr/bin/env bash
# Requests/s and p50/p99 latency of `verify` through the OpenFaaS classic watchdog and the of-watchdog, and by
# direct invocation, at concurrency 1, 8 and 32: ours beside the C floor (bench/floor.c) under the same runtime.
# Rewrites its own section of BENCHMARKS.md. Not part of the test suite: it measures, it asserts nothing.
#
#   bench/runtimes.sh                                   # ~5 min
#   BENCH_ARGS="--seconds 2 --rounds 2" bench/runtimes.sh  # quicker (python3 bench/runtimes.py --help: the knobs)
#
# Needs ../shared/runtimes (the watchdogs' pinned source) and wrk (installed from apt when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
need curl curl
[[ -d ../shared/runtimes ]] || { echo "error: ../shared/runtimes (the watchdogs' source) not found" >&2; exit 1; }
../shared/runtimes/build.sh .build/runtimes
scripts/build.sh
floor=$(bench/build.sh --floor)
# shellcheck disable=SC2086
python3 bench/runtimes.py --ours "$PWD/.build/leetcode-claim" --floor "$floor" --runtimes "$PWD/.build/runtimes" \
    --command "bench/runtimes.sh${BENCH_ARGS:+ (BENCH_ARGS=\"$BENCH_ARGS\")}" ${BENCH_ARGS:-}
