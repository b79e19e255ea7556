#!/usr/bin/env bash
# Installs what a fresh machine of this kind lacks: the C libraries, the sqlite3 shell and openssl for tests, GNU
# time (peak RSS in the hostile-peer tests), strace (the SQLite WAL test), and the Python test tools; with --tests
# also what the runtime tests need. Idempotent and quiet when all is present.
set -euo pipefail
cd "$(dirname "$0")/.."
# Installs the Debian packages among "$@" that are not installed yet.
install_missing() {
    local need=() pkg
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
    done
    if [ ${#need[@]} -gt 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${need[@]}" >/dev/null
    fi
}
install_missing libsqlite3-dev libssl-dev sqlite3 openssl binutils time strace
if [ "${1:-}" = "--tests" ]; then
    # The runtime tests: podman builds the images, busybox-static is Fn's /bin/sh, the rest runs the runtimes in
    # namespaces and talks to them.
    install_missing podman busybox-static ca-certificates curl iproute2 util-linux
    python3 -m pip install -q --disable-pip-version-check -r Tests/blackbox/requirements.txt
fi
