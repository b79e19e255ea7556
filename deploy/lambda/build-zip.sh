#!/usr/bin/env bash
# Packs the Lambda function for the provided.al2023 runtime (x86_64): the static binary as `bootstrap`, and
# Debian's CA certificates as the hashed directory the binary reads lazily (certs/<hash>.N; the function's
# environment points SSL_CERT_DIR at /var/task/certs, where Lambda unpacks the zip).
#
#   deploy/lambda/build-zip.sh OUT.zip
#   aws lambda create-function --function-name leetcode-claim --runtime provided.al2023 --architectures x86_64 \
#       --handler bootstrap --zip-file fileb://OUT.zip --timeout 10 --memory-size 128 --role <execution role ARN> \
#       --environment file://deploy/lambda/environment.json
#
# LEETCODE_CLAIM_BIN overrides the binary (default .build/leetcode-claim, from scripts/build.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "${1:?usage: deploy/lambda/build-zip.sh OUT.zip}")
binary=$(realpath "${LEETCODE_CLAIM_BIN:-$here/../../.build/leetcode-claim}")
if ldd "$binary" 2>&1 | grep -q '=>'; then echo "error: $binary is dynamically linked" >&2; exit 1; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
install -m 755 "$binary" "$work/bootstrap"
mkdir "$work/certs"
cp -L /etc/ssl/certs/*.[0-9] "$work/certs/"
chmod 644 "$work/certs/"*
rm -f "$out"
# Python's zipfile keeps the file modes: Lambda runs `bootstrap` only if the zip says it is executable.
(cd "$work" && python3 -m zipfile -c "$out" bootstrap certs)
