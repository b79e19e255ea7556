#!/usr/bin/env bash
# Regenerates Sources/leetcode-claim/startup.order: the functions and data a request touches, in the order it first
# touches them, for the linker (lld's --symbol-ordering-file, see Package.swift) to place together at the front of
# their sections. A process whose binary is not in the page cache in large folios then faults in a few 64 KiB windows
# of code instead of one per scattered function (BENCHMARKS.md, "cold start").
#
#   scripts/startup-order.sh        # builds the release binary, traces the paths below with valgrind (~1 min)
#
# Traced, in this order: start-up alone (invalid JSON), status, verify (off) by the owner and by a new user on
# SQLite; then, if CLAIM_TEST_POSTGRES_URL is set (the committed file: a scripts/postgres.sh server's URL with
# ?sslmode=disable), a verify (off) on PostgreSQL, the path a pooler serves. Names that no longer exist are
# ignored by the linker, and new functions are placed after the listed ones, so a stale file costs a few faults,
# never correctness; regenerate it after changes to the request path.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
scripts/build.sh >/dev/null
binary=$PWD/.build/release/leetcode-claim  # unstripped: the same layout as the shipped one, with symbols
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trace() {  # trace NAME REQUEST [VAR=VALUE...]
    local name=$1 request=$2
    shift 2
    env -i PATH=/usr/bin:/bin "$@" valgrind --tool=lackey --trace-mem=yes --log-file="$work/$name.trace" \
        "$binary" <<<"$request" >/dev/null 2>&1 || true
}
sqlite=(CLAIM_DB="$work/db/claims.sqlite" CLAIM_AUTH=trusted CLAIM_VERIFY=off)
env -i "${sqlite[@]}" "$binary" <<<'{"action":"verify","username":"alice","user_id":"owner"}' >/dev/null 2>&1
trace 1-start-up 'this is not json'
trace 2-status '{"action":"status","username":"alice","user_id":"owner"}' "${sqlite[@]}"
trace 3-verify-owner '{"action":"verify","username":"alice","user_id":"owner"}' "${sqlite[@]}"
trace 4-verify-new '{"action":"verify","username":"bob","user_id":"new-user"}' "${sqlite[@]}"
if [ -n "${CLAIM_TEST_POSTGRES_URL:-}" ]; then
    # valgrind runs it ~50 times slower: deadlines to match.
    separator='?'
    [[ $CLAIM_TEST_POSTGRES_URL == *'?'* ]] && separator='&'
    trace 5-postgres '{"action":"verify","username":"alice","user_id":"owner"}' CLAIM_AUTH=trusted CLAIM_VERIFY=off \
        CLAIM_DATABASE_URL="$CLAIM_TEST_POSTGRES_URL${separator}connect_timeout=600" CLAIM_BUSY_TIMEOUT_MS=600000
fi
python3 - "$binary" "$work"/*.trace >Sources/leetcode-claim/startup.order <<'EOF'
import bisect, re, subprocess, sys
binary, traces = sys.argv[1], sys.argv[2:]
symbols = []
for line in subprocess.run(["nm", "-S", "-n", "--defined-only", binary], capture_output=True, text=True).stdout.splitlines():
    fields = line.split()
    if len(fields) == 4 and fields[2] in "tTwWdDbBrRvV":
        start = int(fields[0], 16)
        symbols.append((start, start + max(1, int(fields[1], 16)), fields[3]))
    elif len(fields) == 3 and fields[1] in "tT":  # assembly without a size: up to the next symbol
        symbols.append((int(fields[0], 16), None, fields[2]))
symbols.sort(key=lambda s: s[0])
symbols = [(a, b if b is not None else (symbols[i + 1][0] if i + 1 < len(symbols) else a + 1), n)
           for i, (a, b, n) in enumerate(symbols)]
starts = [s[0] for s in symbols]
seen, order = set(), []
# lackey prints "I  <address>,<size>" per instruction executed and " L|S|M <address>,<size>" per data access.
access = re.compile(r"^\s*[ILSM]\s+(?:0x)?([0-9a-fA-F]+)")
for trace in traces:
    for line in open(trace):
        match = access.match(line)
        if not match:
            continue
        address = int(match.group(1), 16)
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0 and address < symbols[i][1] and symbols[i][2] not in seen:
            seen.add(symbols[i][2])
            order.append(symbols[i][2])
print("\n".join(order))
EOF
echo "Sources/leetcode-claim/startup.order: $(wc -l <Sources/leetcode-claim/startup.order) symbols" >&2
# SwiftPM does not know the link reads the file: remove the binary so that the next build links again.
rm -f .build/*/release/leetcode-claim
