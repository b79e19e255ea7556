#!/usr/bin/env bash
# Benchmarks the release binary against the C floor (bench/floor.c) and rewrites the generated part of
# BENCHMARKS.md. Not part of the test suite: it measures, it asserts nothing.
#
#   bench/run.sh                # build both (and 27eb8ec), time a clean release build, run every scenario (~6 min)
#   bench/run.sh --no-clean-build   # skip the clean-build timing (the slow part on a busy machine)
#   BENCH_ARGS="--runs 100" bench/run.sh   # fewer runs (bench/bench.py --help lists the knobs)
#
# Builds into its own scratch path (.build-bench), so it never disturbs .build.
set -euo pipefail
cd "$(dirname "$0")/.."

clean_build=1
[[ "${1:-}" == "--no-clean-build" ]] && clean_build=0

need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need gcc gcc
need openssl openssl
[[ -x /usr/bin/time ]] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
[[ -f /usr/lib/x86_64-linux-gnu/libsqlite3.a ]] ||
    { apt-get update -qq && apt-get install -y -qq libsqlite3-dev >/dev/null; }

scratch=.build-bench
ours=$(bench/build.sh)
floor=$(bench/build.sh --floor)
# The same binary before this round of start-up work (main at 27eb8ec), built from git: scenarios 1-3 show it too.
baseline_rev=27eb8ec
baseline=$(bench/build.sh --commit "$baseline_rev")

build_args=()
if (( clean_build )); then
    fresh=$(mktemp -d "$PWD/$scratch/clean-build.XXXXXX")
    echo "timing a clean release build in $fresh ..." >&2
    start=$(date +%s%N)
    swift build -c release -Xswiftc -static-executable --scratch-path "$fresh" >"$fresh.log" 2>&1 ||
        { cat "$fresh.log" >&2; exit 1; }
    end=$(date +%s%N)
    rm -rf "$fresh" "$fresh.log"
    build_args=(--build-seconds "$(awk "BEGIN { print ($end - $start) / 1e9 }")")
fi

work=$(mktemp -d "$PWD/$scratch/run.XXXXXX")
trap 'rm -rf "$work"' EXIT
# shellcheck disable=SC2086
python3 bench/bench.py --ours "$ours" --floor "$floor" --baseline "$baseline" --baseline-name "$baseline_rev" \
    --work "$work" --command "bench/run.sh${*:+ $*}" "${build_args[@]}" ${BENCH_ARGS:-}
