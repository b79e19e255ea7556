#!/usr/bin/env bash
# Builds the function image for one runtime from deploy/<runtime>/Containerfile, FROM scratch:
#
#   deploy/build-image.sh openfaas-classic|openfaas|fn|lambda [TAG]   # TAG defaults to leetcode-claim:<runtime>
#
# The build context it assembles holds only what the image needs: the static binary (LEETCODE_CLAIM_BIN, default
# .build/leetcode-claim from scripts/build.sh), the runtime's static Go binary (RUNTIMES, default .build/runtimes
# from ../shared/runtimes/build.sh; or the same release extracted from the runtime's official image), Debian's CA
# certificates as the hashed directory the binary reads lazily (/etc/ssl/certs/<hash>.N), an empty /tmp, and for
# Fn a static busybox as /bin/sh (hotwrap runs the command through `/bin/sh -c`). Lambda's image has no runtime
# binary (ours is its own runtime) and keeps the CA directory at /var/task/certs, as the zip does. PODMAN replaces
# the `podman` command (the tests add a private --root). Offline: nothing is pulled.
set -euo pipefail
cd "$(dirname "$0")/.."
runtime=${1:?usage: deploy/build-image.sh openfaas-classic|openfaas|fn|lambda [TAG]}
tag=${2:-leetcode-claim:$runtime}
binary=${LEETCODE_CLAIM_BIN:-.build/leetcode-claim}
runtimes=${RUNTIMES:-.build/runtimes}
read -r -a podman <<<"${PODMAN:-podman}"

static() { # file: refuse anything dynamically linked, which would not start in an empty image
    if ldd "$1" 2>&1 | grep -q '=>'; then echo "error: $1 is dynamically linked" >&2; exit 1; fi
}
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
install -m 755 "$binary" "$context/leetcode-claim"
case $runtime in
    openfaas-classic) install -m 755 "$runtimes/fwatchdog" "$context/fwatchdog" ;;
    openfaas) install -m 755 "$runtimes/of-watchdog" "$context/fwatchdog" ;;
    fn)
        install -m 755 "$runtimes/hotwrap" "$context/hotwrap"
        install -m 755 "${BUSYBOX:-/bin/busybox}" "$context/sh"
        static "$context/sh"
        ;;
    lambda) ;;
    *) echo "error: unknown runtime $runtime (openfaas-classic, openfaas, fn, lambda)" >&2; exit 2 ;;
esac
static "$context/leetcode-claim"
# The runtimes' release images ship their Go binaries without symbol tables (-ldflags "-s -w"); so do we.
for go_binary in "$context/fwatchdog" "$context/hotwrap"; do
    if [ -f "$go_binary" ]; then strip "$go_binary"; fi
done
certs=etc/ssl/certs
if [ "$runtime" = lambda ]; then certs=var/task/certs; fi
mkdir -p "$context/rootfs/tmp" "$context/rootfs/$certs"
chmod 1777 "$context/rootfs/tmp"
cp -L /etc/ssl/certs/*.[0-9] "$context/rootfs/$certs/"
"${podman[@]}" build --quiet -f "deploy/$runtime/Containerfile" -t "$tag" "$context"
