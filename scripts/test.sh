#!/usr/bin/env bash
# The whole test suite: format lint, unit tests (Swift Testing), then contract, race, fault and hostile-input tests
# over the real static release binary (pytest), against SQLite, against a throw-away PostgreSQL server
# (scripts/postgres.sh) and against that server through PgBouncer (scripts/pgbouncer.sh), both stopped on exit, and
# through the real FaaS runtimes built from ../shared/runtimes, then a bounded fuzzing run. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --tests
swift format lint --strict --recursive Sources Fuzz/*.swift
scripts/build.sh
swift build --build-tests ${SWIFT_TEST_FLAGS:-}
swift test --skip-build ${SWIFT_TEST_FLAGS:-}
# The FaaS runtimes' pinned source sits beside the checkout (../shared/runtimes); the runtime tests run them in
# front of the binary. Without it they skip, naming what is missing; under CI they fail instead.
if [ -d ../shared/runtimes ]; then
    ../shared/runtimes/build.sh .build/runtimes
else
    echo "note: ../shared/runtimes not found: the runtime tests (Tests/blackbox/test_runtime_*.py) will skip" >&2
fi
pgdir=$(mktemp -u /tmp/claim-pg-XXXXXXXX)
bouncerdir=$(mktemp -u /tmp/claim-pgbouncer-XXXXXXXX)
trap 'scripts/pgbouncer.sh stop "$bouncerdir"; scripts/postgres.sh stop "$pgdir"' EXIT
CLAIM_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$pgdir")
scripts/pgbouncer.sh start "$bouncerdir" "$pgdir" >/dev/null
export CLAIM_TEST_POSTGRES_URL CLAIM_TEST_POSTGRES_DIR="$pgdir" CLAIM_TEST_PGBOUNCER_DIR="$bouncerdir"
LEETCODE_CLAIM_BIN="$PWD/.build/leetcode-claim" python3 -m pytest -q -p no:cacheprovider Tests/blackbox "$@"
# Coverage-guided fuzzing of the request decoder and the HTTP response parser, bounded in time.
Fuzz/run.sh "${CLAIM_FUZZ_SECONDS:-60}"
