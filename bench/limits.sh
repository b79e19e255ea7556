#!/usr/bin/env bash
# What the abuse limits add to a verify through the LeetCode fake, on SQLite and PostgreSQL (direct and through
# PgBouncer): this tree's binary (every limit at its maximum) against the tree just before the limiter, alternating
# run by run; rewrites the bench/limits part of BENCHMARKS.md. Not part of the test suite: it measures, it asserts
# nothing.
#
#   bench/limits.sh                          # builds both (~2-5 min), then ~2 min of runs
#   BENCH_BASELINE=<rev> bench/limits.sh     # another "before" revision
#   BENCH_ARGS="--runs 200" bench/limits.sh  # fewer runs (python3 bench/limits.py --help)
#
# Builds into its own scratch path (.build-bench-limits), so it never disturbs .build; starts its own PostgreSQL
# server and PgBouncer (scripts/postgres.sh, scripts/pgbouncer.sh) and stops them on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$PWD/.build-bench-limits
mkdir -p "$scratch"

# "Before" is the parent of the commit that added the limiter, so only the limiter differs.
added=$(git log --diff-filter=A --format=%H -1 -- Sources/ClaimCore/Limits/Limits.swift)
before=${BENCH_BASELINE:-$added^}
rev=$(git rev-parse --short "$before")

swift build -c release -Xswiftc -static-executable --scratch-path "$scratch/limiter-build" >&2
strip -o "$scratch/limiter" "$scratch/limiter-build/release/leetcode-claim"
rm -rf "$scratch/before-src" && mkdir -p "$scratch/before-src"
git archive "$before" | tar -x -C "$scratch/before-src"
(cd "$scratch/before-src" &&
    swift build -c release -Xswiftc -static-executable --scratch-path "$scratch/before-build") >&2
strip -o "$scratch/before" "$scratch/before-build/release/leetcode-claim"

work=$(mktemp -d "$scratch/run.XXXXXX")
pgdir=$(mktemp -u /tmp/claim-pg-XXXXXXXX)
bouncerdir=$(mktemp -u /tmp/claim-pgbouncer-XXXXXXXX)
trap 'scripts/pgbouncer.sh stop "$bouncerdir"; scripts/postgres.sh stop "$pgdir"; rm -rf "$work"' EXIT
scripts/postgres.sh start "$pgdir" >/dev/null
scripts/pgbouncer.sh start "$bouncerdir" "$pgdir" >/dev/null
# shellcheck disable=SC2086
python3 bench/limits.py --limiter "$scratch/limiter" --before "$scratch/before" --before-rev "$rev" \
    --work "$work" --postgres-dir "$pgdir" --pgbouncer-url "$(cat "$bouncerdir/url")" \
    --command "bench/limits.sh${*:+ $*}" ${BENCH_ARGS:-}
