#!/bin/sh
# The baseline for bench/lambda.py: a Lambda custom runtime as AWS's tutorial writes one in shell (the README's
# former recipe), which pipes each event into a program that reads one request on stdin: CLAIM_COMMAND (ours in
# function mode, or the C floor). Per event: mktemp, curl for /next, grep|tr|cut for the request id, the program,
# curl for the response.
set -eu
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation"
# The binary now serves the Runtime API itself whenever it sees this variable: as the former recipe's handler it
# must not, so the variable stops here (the recipe predates that; nothing else differs).
unset AWS_LAMBDA_RUNTIME_API
while true; do
    headers=$(mktemp)
    event=$(curl -sS -LD "$headers" "$api/next")
    request_id=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$headers" | tr -d '[:space:]' | cut -d: -f2)
    rm -f "$headers"
    response=$(printf '%s' "$event" | "$CLAIM_COMMAND") || true
    curl -sS "$api/$request_id/response" -d "$response" >/dev/null
done
