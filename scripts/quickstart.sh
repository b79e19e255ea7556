#!/usr/bin/env bash
# Installs what is missing, builds the static release binary and pipes one sample request through it, using the
# embedded SQLite default (./data/claims.sqlite) with the caller trusted and LeetCode verification off.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
echo '{"action":"verify","username":"Alice","user_id":"user-1","request_id":"demo-1"}' |
    CLAIM_AUTH=trusted CLAIM_VERIFY=off .build/leetcode-claim
echo '{"action":"status","username":"alice","user_id":"user-2","request_id":"demo-2"}' |
    CLAIM_AUTH=trusted CLAIM_VERIFY=off .build/leetcode-claim
