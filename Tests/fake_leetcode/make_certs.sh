#!/bin/sh
# Makes throw-away TLS material for tests in DIR (created if missing), with the `openssl` command:
#   ca.pem                      the test CA to trust (SSL_CERT_FILE=DIR/ca.pem)
#   server.pem / server.key     leaf for localhost, 127.0.0.1 and ::1, signed by ca.pem
#   wrong-host.pem / .key       leaf for wrong.example only, signed by ca.pem
#   untrusted.pem / .key        leaf for localhost, 127.0.0.1 and ::1, signed by a second CA nobody trusts
# EC P-256 keys keep this fast (~0.1 s). Certificates are valid for 2 days from now.
set -eu
dir=${1:?usage: make_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

ca() {  # name
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=leetcode-claim test $1" -keyout "$1.key" -out "$1.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

leaf() {  # name ca san
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "$1.key" -out "$1.csr" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' \
        "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -set_serial "0x$(openssl rand -hex 8)" \
        -days 2 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

ca ca
ca untrusted-ca
leaf server ca "DNS:localhost,IP:127.0.0.1,IP:::1"
leaf wrong-host ca "DNS:wrong.example"
leaf untrusted untrusted-ca "DNS:localhost,IP:127.0.0.1,IP:::1"
