#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer, which ships with the Swift toolchain (`swiftc -sanitize=fuzzer`).
#
#     Fuzz/run.sh [SECONDS]      # default 60: fuzz each target for SECONDS (all at once, sharing the cores)
#
# Targets (each is every Swift file under Sources/ClaimCore plus one harness, compiled as one module with ASan):
#   request  Fuzz/RequestFuzzer.swift       stdin bytes -> Request.parseObject -> Request.init -> authenticate
#   http     Fuzz/HTTPResponseFuzzer.swift  peer bytes -> ResponseParser -> LeetCodeClient's reading of them
#   postgres Fuzz/PostgresMessageFuzzer.swift  server bytes -> MessageReader / BackendMessage.decode ->
#                                           the authentication and extended-query state machines
#
# First every file in Fuzz/regressions/<target>/ is replayed (a crash found once must stay fixed), then each
# target runs for SECONDS from Fuzz/corpus/<target>/ plus the corpus grown by earlier runs in
# .build-fuzz/corpus/<target>/. Prints the executions per target; exits non-zero when a regression or a new input
# crashes, and the crashing input is left in .build-fuzz/artifacts/<target>/ (move it to Fuzz/regressions/).
# The request seed corpus holds an HS256 token for the harness's secret (sub "fuzz-user", exp 9999-12-31).
set -euo pipefail
cd "$(dirname "$0")/.."

budget="${1:-60}"
[[ "$budget" =~ ^[0-9]+$ ]] || { echo "usage: Fuzz/run.sh [SECONDS]" >&2; exit 2; }
out=.build-fuzz
targets=(request http postgres)
declare -A harness=([request]=Fuzz/RequestFuzzer.swift [http]=Fuzz/HTTPResponseFuzzer.swift
    [postgres]=Fuzz/PostgresMessageFuzzer.swift)
# postgres: long enough to hold an answer past the 64 KiB budget.
declare -A max_len=([request]=4096 [http]=4096 [postgres]=80000)
mkdir -p "$out"
mapfile -t sources < <(find Sources/ClaimCore -name '*.swift' | sort)

# The Swift runtime's backtracer would otherwise take over a trap and wait on it; libFuzzer must see the signal
# to write the crashing input.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"

build() {
    local target=$1
    # Same language mode and upcoming features as Package.swift; -O keeps Swift's overflow and bounds traps.
    swiftc -sanitize=fuzzer,address -parse-as-library -swift-version 6 -enable-upcoming-feature ExistentialAny \
        -O -module-name ClaimCore -I Sources/CSQLite -I Sources/COpenSSL \
        "${sources[@]}" "${harness[$target]}" -lsqlite3 -lssl -lcrypto \
        -o "$out/$target-fuzzer" 2> >(grep -v "Cannot export local symbol" >&2)
}

echo "building fuzz targets into $out/"
pids=()
for target in "${targets[@]}"; do build "$target" & pids+=($!); done
for pid in "${pids[@]}"; do wait "$pid"; done

status=0
for target in "${targets[@]}"; do
    regressions=(Fuzz/regressions/"$target"/*)
    [[ -e "${regressions[0]}" ]] || continue
    if "$out/$target-fuzzer" -runs=0 "${regressions[@]}" > "$out/$target-regressions.log" 2>&1; then
        echo "$target: ${#regressions[@]} regression input(s) replayed, none crashes"
    else
        echo "$target: a regression input crashes again (log: $out/$target-regressions.log):"
        grep -E "Running:|ERROR|Fatal error|Precondition failed|SUMMARY" "$out/$target-regressions.log" | head -20
        status=1
    fi
done

fuzz() {
    local target=$1 started rc=0
    mkdir -p "$out/corpus/$target" "$out/artifacts/$target"
    started=$(date +%s)
    "$out/$target-fuzzer" -max_total_time="$budget" -max_len="${max_len[$target]}" -timeout=10 -rss_limit_mb=2048 \
        -use_value_profile=1 -print_final_stats=1 -dict="Fuzz/$target.dict" \
        -artifact_prefix="$out/artifacts/$target/" \
        "$out/corpus/$target" "Fuzz/corpus/$target" > "$out/$target.log" 2>&1 || rc=$?
    echo $(( $(date +%s) - started )) > "$out/$target.seconds"
    return "$rc"
}

echo "fuzzing ${targets[*]} for ${budget}s each"
pids=()
for target in "${targets[@]}"; do fuzz "$target" & pids+=($!); done
for i in "${!targets[@]}"; do
    target=${targets[$i]}
    if wait "${pids[$i]}"; then result=ok; else result=CRASH; status=1; fi
    execs=$(grep -oE "stat::number_of_executed_units: [0-9]+" "$out/$target.log" | grep -oE "[0-9]+$" || true)
    [[ -n "$execs" ]] || execs=$(grep -oE "^#[0-9]+" "$out/$target.log" | tail -1 | tr -d '#' || true)
    coverage=$(grep -oE "cov: [0-9]+ ft: [0-9]+" "$out/$target.log" | tail -1 || true)
    seconds=$(cat "$out/$target.seconds")
    echo "$target: $result, ${execs:-0} executions in ${seconds}s (${coverage:-no coverage line}), log $out/$target.log"
    if [[ $result == CRASH ]]; then
        grep -E "ERROR|Fatal error|Precondition failed|SUMMARY|Test unit written" "$out/$target.log" | head -20
    fi
done
exit "$status"
