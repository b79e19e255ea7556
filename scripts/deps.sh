#!/usr/bin/env bash
# Installs what a fresh machine of this kind lacks: the C libraries, the sqlite3 shell and openssl for tests, GNU
# time (peak RSS in the hostile-peer tests), and the Python test tools. Idempotent and quiet when all is present.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for pkg in libsqlite3-dev libssl-dev sqlite3 openssl binutils time; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ "${1:-}" = "--tests" ]; then
    # The runtime tests: podman builds the images, busybox-static is Fn's /bin/sh, the rest runs the runtimes in
    # namespaces and talks to them.
    need=()
    for pkg in podman busybox-static ca-certificates curl iproute2 util-linux; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
    done
    if [ ${#need[@]} -gt 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    python3 -m pip install -q --disable-pip-version-check -r Tests/blackbox/requirements.txt
fi
