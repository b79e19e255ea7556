#!/usr/bin/env bash
# `verify` latency on PostgreSQL, directly and through PgBouncer (pool_mode = transaction) per auth setting, for this
# tree and for commit 27eb8ec (before the SCRAM work), plus our side of a SCRAM login step by step
# (bench/scram_cost.c). The rows "SCRAM keys in the URL" log in with the role's keys from this tree's `scram-keys`
# instead of the password (27eb8ec has no such parameter). Starts its own server (scripts/postgres.sh) and poolers (scripts/pgbouncer.sh) on loopback
# and stops them. Rewrites the `bench/pgbouncer` section of BENCHMARKS.md. Asserts nothing.
#
#   bench/pgbouncer.sh                       # ~2 min on a quiet machine
#   BENCH_ARGS="--runs 100" bench/pgbouncer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
baseline=27eb8ec
ours=$(bench/build.sh)
main=$(bench/build.sh --commit "$baseline")
scratch=$PWD/.build-bench
gcc -O2 -static -I Sources/COpenSSL -o "$scratch/scram_cost" bench/scram_cost.c -lcrypto -lpthread \
    2> >(grep -v -e getaddrinfo -e gethostbyname -e dlopen -e 'in function' >&2)

pgdir=$(mktemp -u /tmp/claim-bench-pg-XXXXXXXX)
poolers=()
cleanup() {
    for dir in "${poolers[@]}"; do scripts/pgbouncer.sh stop "$dir"; done
    scripts/postgres.sh stop "$pgdir"
}
trap cleanup EXIT
direct=$(scripts/postgres.sh start "$pgdir")
# The baseline's own database (pgbouncer.py): this tree migrates `claim` past the schema version it accepts.
psql -X -q "$direct?sslmode=disable" -c "CREATE DATABASE claim_1" >/dev/null
# The role's SCRAM keys as URL parameters, from this tree's `scram-keys`; the URLs without the password.
keys=$(CLAIM_DATABASE_URL="$direct?sslmode=disable" "$ours" scram-keys |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["url_parameters"])')
keyed() { echo "$(echo "$1" | sed -E 's|//([^:@]*):[^@]*@|//\1@|')&$keys"; }
connections=(--connection "PostgreSQL directly, sslmode=disable::$direct?sslmode=disable"
    --connection "PostgreSQL directly, SCRAM keys in the URL, sslmode=disable::$(keyed "$direct?sslmode=disable")::first"
    --connection "PostgreSQL directly, TLS (sslmode=require)::$direct?sslmode=require")
for auth in scram-secret scram-password md5 plain trust; do
    dir=$(mktemp -u /tmp/claim-bench-pgbouncer-XXXXXXXX)
    poolers+=("$dir")
    url=$(scripts/pgbouncer.sh start "$dir" "$pgdir" "$auth")
    case $auth in
    scram-secret) label="PgBouncer, scram-sha-256 (SCRAM secret in auth_file)" ;;
    scram-password) label="PgBouncer, scram-sha-256 (password in auth_file)" ;;
    *) label="PgBouncer, $auth" ;;
    esac
    connections+=(--connection "$label, sslmode=disable::$url?sslmode=disable")
    if [ "$auth" = scram-secret ]; then
        connections+=(--connection "$label, SCRAM keys in the URL, sslmode=disable::$(keyed "$url?sslmode=disable")::first")
        connections+=(--connection "$label, TLS to PgBouncer (sslmode=require)::$url?sslmode=require")
    fi
done
"$scratch/scram_cost" >"$scratch/scram_cost.txt"
# shellcheck disable=SC2086
python3 bench/pgbouncer.py --program "this tree=$ours" --program "$baseline=$main" "${connections[@]}" \
    --scram-cost "$scratch/scram_cost.txt" --command "bench/pgbouncer.sh${BENCH_ARGS:+ (BENCH_ARGS=$BENCH_ARGS)}" \
    ${BENCH_ARGS:-}
