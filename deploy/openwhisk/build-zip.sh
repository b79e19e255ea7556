#!/usr/bin/env bash
# Packs the OpenWhisk native action: exec (the wrapper), claim.env (the settings) and the static binary.
#
#   deploy/openwhisk/build-zip.sh SETTINGS OUT.zip     # SETTINGS: your copy of claim.env.example
#   wsk action create leetcode-claim OUT.zip --native --web true --timeout 10000 --memory 128
#
# LEETCODE_CLAIM_BIN overrides the binary (default .build/leetcode-claim, from scripts/build.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
settings=${1:?usage: deploy/openwhisk/build-zip.sh SETTINGS OUT.zip}
out=$(realpath -m "${2:?usage: deploy/openwhisk/build-zip.sh SETTINGS OUT.zip}")
binary=$(realpath "${LEETCODE_CLAIM_BIN:-$here/../../.build/leetcode-claim}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
install -m 755 "$here/exec" "$work/exec"
install -m 600 "$settings" "$work/claim.env"
install -m 755 "$binary" "$work/leetcode-claim"
rm -f "$out"
(cd "$work" && python3 -m zipfile -c "$out" exec claim.env leetcode-claim)
