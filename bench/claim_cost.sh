#!/usr/bin/env bash
# Cost of one claim, A/B in one run: this tree's binary against a build of commit 27eb8ec (the store before the
# writers' queue and the size-triggered checkpoint), with the C floor (same settings as this tree) alongside.
# Rewrites the `bench/claim_cost` section of BENCHMARKS.md. Asserts nothing.
#
#   bench/claim_cost.sh                      # ~3 min on a quiet machine (the first build of 27eb8ec: ~1 min more)
#   BENCH_ARGS="--runs 200" bench/claim_cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
baseline=27eb8ec
command -v strace >/dev/null || { apt-get update -qq && apt-get install -y -qq strace >/dev/null; }
ours=$(bench/build.sh)
main=$(bench/build.sh --commit "$baseline")
floor=$(bench/build.sh --floor)
# shellcheck disable=SC2086
python3 bench/claim_cost.py --program "this tree=$ours" --program "$baseline=$main" --program "floor=$floor" \
    --command "bench/claim_cost.sh${BENCH_ARGS:+ (BENCH_ARGS=$BENCH_ARGS)}" \
    --note "\`$baseline\` is main before this work, built from git by the script; the floor is bench/floor.c with this tree's settings." \
    ${BENCH_ARGS:-}
