#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests, on loopback only.
#
#   scripts/postgres.sh start DIR   installs PostgreSQL with apt if missing, creates DIR (it must not exist or be
#                                   empty), runs initdb in it and starts the server on a free port with fsync on,
#                                   SSL on (certificates from Tests/fake_leetcode/make_certs.sh, CA in DIR/certs/
#                                   ca.pem) and scram-sha-256 password authentication over TCP. Writes:
#                                     DIR/url        postgres://claim:...@127.0.0.1:PORT/claim (a test role that
#                                                    owns the database `claim` and may create databases)
#                                     DIR/admin      psql connection options for the superuser over the socket in
#                                                    DIR (trust; tests use it to create databases and look inside)
#                                   and prints the URL.
#   scripts/postgres.sh stop DIR    stops the server at once and removes DIR.
#   scripts/postgres.sh halt DIR    stops the server at once (pg_ctl stop -m immediate: no shutdown checkpoint,
#                                   like a crash) and keeps DIR; `resume DIR` starts it again on the same port.
#
# initdb refuses to run as root, so the cluster belongs to the `postgres` user that Debian's package creates.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
command=${1:?usage: postgres.sh start|stop|halt|resume DIR}
dir=${2:?usage: postgres.sh start|stop|halt|resume DIR}

bin=""
find_bin() {
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case $command in
start)
    find_bin
    if [ -z "$bin" ] || ! command -v psql >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq postgresql postgresql-client >/dev/null
        find_bin
    fi
    # Debian's package starts its own cluster on 5432; ours is separate and does not need it.
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    "$root/Tests/fake_leetcode/make_certs.sh" "$dir/certs"
    # The server refuses a key readable by others.
    chmod 600 "$dir/certs/"*.key
    chmod 755 "$dir" "$dir/certs"
    chmod 644 "$dir/certs/"*.pem
    if [ "$(id -u)" = 0 ]; then chown -R postgres "$dir"; fi
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    password=$(openssl rand -hex 16)
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        --locale=C -E UTF8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = on
synchronous_commit = on
# The race tests run 200 processes at once, one connection each.
max_connections = 300
shared_buffers = 64MB
ssl = on
ssl_cert_file = '$dir/certs/server.pem'
ssl_key_file = '$dir/certs/server.key'
password_encryption = 'scram-sha-256'
log_min_messages = warning
logging_collector = off
EOF
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
        { cat "$dir/server.log" >&2; exit 1; }
    admin="-h $dir -p $port -U postgres"
    echo "$admin" >"$dir/admin"
    # The password is hex, so it needs no quoting in SQL or in the URL.
    psql $admin -d postgres -v ON_ERROR_STOP=1 -q \
        -c "CREATE ROLE claim LOGIN CREATEDB PASSWORD '$password'" \
        -c "CREATE DATABASE claim OWNER claim" >/dev/null
    url="postgres://claim:$password@127.0.0.1:$port/claim"
    echo "$url" >"$dir/url"
    echo "$url"
    ;;
stop)
    find_bin
    if [ -f "$dir/data/postmaster.pid" ] && [ -n "$bin" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
halt)
    find_bin
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    ;;
resume)
    find_bin
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
        { tail -n 20 "$dir/server.log" >&2; exit 1; }
    ;;
*)
    echo "usage: postgres.sh start|stop|halt|resume DIR" >&2
    exit 2
    ;;
esac
