#!/usr/bin/env bash
# Builds what the benchmarks compare, into the scratch path .build-bench (never .build), and prints the binary's path.
#
#   bench/build.sh                 this tree's release binary: .build-bench/leetcode-claim (static, stripped)
#   bench/build.sh --commit REV    the same from commit REV, exported with `git archive` into
#                                  .build-bench/REV/src and built there: .build-bench/REV/leetcode-claim (reused when
#                                  present; nothing of it is committed)
#   bench/build.sh --floor         bench/floor.c: .build-bench/floor (gcc -O2 -static, the same libsqlite3.a)
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=.build-bench
mkdir -p "$scratch"
case "${1:-}" in
"")
    swift build -c release -Xswiftc -static-executable --scratch-path "$scratch" >&2
    strip -o "$scratch/leetcode-claim" "$scratch/release/leetcode-claim"
    echo "$PWD/$scratch/leetcode-claim"
    ;;
--commit)
    rev=$(git rev-parse --short=7 "${2:?--commit REV}")
    out="$scratch/$rev"
    if [ ! -x "$out/leetcode-claim" ]; then
        rm -rf "$out"
        mkdir -p "$out/src"
        git archive "$rev" | tar -x -C "$out/src"
        (cd "$out/src" && swift build -c release -Xswiftc -static-executable --scratch-path ../build >&2)
        strip -o "$out/leetcode-claim" "$out/build/release/leetcode-claim"
    fi
    echo "$PWD/$out/leetcode-claim"
    ;;
--floor)
    command -v gcc >/dev/null || { apt-get update -qq && apt-get install -y -qq gcc >/dev/null; }
    [ -f /usr/lib/x86_64-linux-gnu/libsqlite3.a ] ||
        { apt-get update -qq && apt-get install -y -qq libsqlite3-dev >/dev/null; }
    gcc -O2 -static -o "$scratch/floor" bench/floor.c -lsqlite3 -lm 2> >(grep -v -e dlopen -e unixDlOpen >&2)
    strip "$scratch/floor"
    echo "$PWD/$scratch/floor"
    ;;
*)
    echo "usage: bench/build.sh [--commit REV | --floor]" >&2
    exit 2
    ;;
esac
