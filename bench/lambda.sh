#!/usr/bin/env bash
# Warm invokes through AWS's Lambda Runtime Interface Emulator: our native runtime loop beside the shell+curl
# bootstrap piping each event into ours, and into the C floor (bench/floor.c), on SQLite and on PostgreSQL (a
# throw-away server from scripts/postgres.sh). Rewrites its own section of BENCHMARKS.md. Not part of the test suite:
# it measures, it asserts nothing.
#
#   bench/lambda.sh                                # ~4 min
#   BENCH_ARGS="--invokes 100" bench/lambda.sh     # quicker (python3 bench/lambda.py --help: the knobs)
#
# Needs ../shared/runtimes (the emulator's pinned source) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need curl curl
[[ -d ../shared/runtimes ]] || { echo "error: ../shared/runtimes (the emulator's source) not found" >&2; exit 1; }
../shared/runtimes/build.sh .build/runtimes
scripts/build.sh
floor=$(bench/build.sh --floor)
pgdir=$(mktemp -u /tmp/claim-pg-XXXXXXXX)
trap 'scripts/postgres.sh stop "$pgdir"' EXIT
scripts/postgres.sh start "$pgdir" >/dev/null
# shellcheck disable=SC2086
python3 bench/lambda.py --ours "$PWD/.build/leetcode-claim" --floor "$floor" \
    --emulator "$PWD/.build/runtimes/aws-lambda-rie" --postgres-dir "$pgdir" \
    --command "bench/lambda.sh${BENCH_ARGS:+ (BENCH_ARGS=\"$BENCH_ARGS\")}" ${BENCH_ARGS:-}
