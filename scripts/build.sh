#!/usr/bin/env bash
# Builds the shipped artifact: a fully static, stripped release binary at .build/leetcode-claim.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release -Xswiftc -static-executable ${SWIFT_BUILD_FLAGS:-}
strip -o .build/leetcode-claim .build/release/leetcode-claim
if ldd .build/leetcode-claim 2>&1 | grep -q '=>'; then
    echo "error: .build/leetcode-claim is dynamically linked; the product ships fully static" >&2
    exit 1
fi
echo "built .build/leetcode-claim ($(stat -c %s .build/leetcode-claim) bytes, $(ldd .build/leetcode-claim 2>&1 | tr -d '\t'))" >&2
