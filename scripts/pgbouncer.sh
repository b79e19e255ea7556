#!/usr/bin/env bash
# PgBouncer in front of a throw-away server from scripts/postgres.sh, for the tests and bench/pgbouncer.sh.
#
#   scripts/pgbouncer.sh start DIR PGDIR [AUTH]
#       installs Debian's pgbouncer with apt if missing, creates DIR (it must not exist or be empty) and starts
#       PgBouncer on a free loopback port, pool_mode = transaction, in front of the server scripts/postgres.sh
#       started in PGDIR: every database of that server is reachable through it under its own name. Clients may
#       use TLS (the server's test certificate) or not. AUTH says how a client logs in to the pooler:
#         scram-secret    auth_type = scram-sha-256, auth_file holds the role's SCRAM secret as pg_authid stores it
#                         (SCRAM-SHA-256$4096:salt$StoredKey:ServerKey): PgBouncer runs no PBKDF2, knows no
#                         password, and logs in to the server with the client's proof (the default: recommended)
#         scram-password  auth_type = scram-sha-256, auth_file holds the password: PBKDF2 in PgBouncer per login
#         md5 | plain | trust   that auth_type, auth_file holds the password (for the server login)
#       Writes DIR/url (PGDIR's URL for the test role, with the pooler's port) and prints it.
#   scripts/pgbouncer.sh stop DIR   stops PgBouncer and removes DIR.
#
# PgBouncer refuses to run as root, so it runs as the `postgres` user, like the server.
set -euo pipefail
command=${1:?usage: pgbouncer.sh start DIR PGDIR [AUTH] | stop DIR}
dir=${2:?usage: pgbouncer.sh start DIR PGDIR [AUTH] | stop DIR}

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case $command in
start)
    pgdir=${3:?usage: pgbouncer.sh start DIR PGDIR [AUTH]}
    auth=${4:-scram-secret}
    if ! command -v pgbouncer >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq pgbouncer >/dev/null
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    pgdir=$(cd "$pgdir" && pwd)
    url=$(cat "$pgdir/url")
    read -r -a admin <"$pgdir/admin"
    # postgres://claim:PASSWORD@127.0.0.1:PORT/claim (scripts/postgres.sh writes it so: a hex password)
    credentials=${url#postgres://}
    credentials=${credentials%%@*}
    user=${credentials%%:*}
    password=${credentials#*:}
    server_port=${url##*:}
    server_port=${server_port%%/*}
    case $auth in
    scram-secret)
        type=scram-sha-256
        secret=$(psql -X -At "${admin[@]}" -d postgres -c "SELECT rolpassword FROM pg_authid WHERE rolname = '$user'")
        [[ $secret == SCRAM-SHA-256* ]] || { echo "pgbouncer.sh: $user has no SCRAM secret" >&2; exit 1; }
        ;;
    scram-password) type=scram-sha-256 secret=$password ;;
    md5 | plain | trust) type=$auth secret=$password ;;
    *) echo "pgbouncer.sh: unknown AUTH $auth" >&2; exit 2 ;;
    esac
    printf '"%s" "%s"\n' "$user" "$secret" >"$dir/userlist.txt"
    chmod 600 "$dir/userlist.txt"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # The settings README.md recommends, plus this machine's loopback addresses and files.
    cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$server_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
pool_mode = transaction
auth_type = $type
auth_file = $dir/userlist.txt
max_client_conn = 2000
default_pool_size = 20
; A client waiting for a server connection gives up after this, and a server that refused a login is tried again
; after this: with PostgreSQL down, each request answers 503 store_unreachable in seconds, not minutes.
query_wait_timeout = 5
server_login_retry = 1
server_connect_timeout = 5
client_tls_sslmode = allow
client_tls_cert_file = $pgdir/certs/server.pem
client_tls_key_file = $pgdir/certs/server.key
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
log_connections = 0
log_disconnections = 0
EOF
    if [ "$(id -u)" = 0 ]; then chown -R postgres "$dir"; fi
    # 2000 clients need more descriptors than the usual soft limit of 1024.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    as_owner pgbouncer -d "$dir/pgbouncer.ini" || { cat "$dir/pgbouncer.log" >&2; exit 1; }
    listening=0
    for _ in $(seq 100); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1).close()" 2>/dev/null; then
            listening=1
            break
        fi
        sleep 0.1
    done
    if [ "$listening" != 1 ]; then
        echo "pgbouncer.sh: PgBouncer does not listen on port $port after 10 s" >&2
        cat "$dir/pgbouncer.log" >&2
        exit 1
    fi
    pooled="postgres://$user:$password@127.0.0.1:$port/${url##*/}"
    echo "$pooled" >"$dir/url"
    echo "$pooled"
    ;;
stop)
    if [ -f "$dir/pgbouncer.pid" ]; then
        kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
        for _ in $(seq 50); do [ -f "$dir/pgbouncer.pid" ] || break; sleep 0.1; done
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: pgbouncer.sh start DIR PGDIR [AUTH] | stop DIR" >&2
    exit 2
    ;;
esac
