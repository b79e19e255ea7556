#!/usr/bin/env bash
# The whole test suite: unit tests (Swift Testing), then contract, race and fault tests over the real static
# release binary (pytest). CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --tests
scripts/build.sh
swift build --build-tests ${SWIFT_TEST_FLAGS:-}
swift test --skip-build ${SWIFT_TEST_FLAGS:-}
LEETCODE_CLAIM_BIN="$PWD/.build/leetcode-claim" python3 -m pytest -q -p no:cacheprovider Tests/blackbox "$@"
