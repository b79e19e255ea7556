"""PostgreSQL backend faults, TLS modes and authentication methods over the real binary.

The module starts a private server with scripts/postgres.sh (the shared one must not be stopped or reconfigured
under other tests): it is halted mid-run like a crash (reached directly, and through PgBouncer), given a certificate
for the wrong host, ssl turned off, and pg_hba.conf lines for MD5, cleartext, trust and TLS-only roles.
"""
import base64
import hashlib
import hmac
import json
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest

from conftest import BINARY, POSTGRES_SCRIPT, base_env, db_query, run, start_pgbouncer, start_postgres

VERIFY = {"action": "verify", "username": "alice", "user_id": "user-1"}

ROLES = {
    # role: (pg_hba method, password, password_encryption)
    "md5user": ("md5", "md5-secret", "md5"),
    "plainuser": ("password", "plain-secret", "scram-sha-256"),
    "trustuser": ("trust", None, "scram-sha-256"),
    "special": ("scram-sha-256", "p@ss:w/rd?#%& é", "scram-sha-256"),
    "keyuser": ("scram-sha-256", "key-secret-1", "scram-sha-256"),
}


@pytest.fixture(scope="module")
def server():
    srv, stop = start_postgres()
    try:
        hba = srv.folder / "data" / "pg_hba.conf"
        lines = [f"host all {role} 127.0.0.1/32 {method}" for role, (method, _, _) in ROLES.items()]
        # A role that may connect only over TLS: sslmode=disable is refused, allow retries with TLS.
        lines += ["hostssl all sslonly 127.0.0.1/32 scram-sha-256", "hostnossl all sslonly 127.0.0.1/32 reject"]
        hba.write_text("\n".join(lines) + "\n" + hba.read_text())
        for role, (_, password, encryption) in list(ROLES.items()) + [("sslonly", ("", "ssl-secret", "scram-sha-256"))]:
            secret = "NULL" if password is None else "'" + password.replace("'", "''") + "'"
            srv.admin_sql(f"SET password_encryption = '{encryption}'; CREATE ROLE {role} LOGIN PASSWORD {secret};")
            srv.admin_sql(f"CREATE DATABASE {role} OWNER {role};")
        reload(srv)
        yield srv
    finally:
        stop()


def reload(srv):
    """Makes the server re-read postgresql.conf and pg_hba.conf; new connections see the change at once after."""
    srv.admin_sql("SELECT pg_reload_conf();")
    time.sleep(0.5)


def env_for(url, tmp_path, **extra):
    env = base_env(tmp_path, **{"CLAIM_AUTH": "trusted", "CLAIM_VERIFY": "off", **extra})
    del env["CLAIM_DB"]
    env["CLAIM_DATABASE_URL"] = url
    return env


def role_password(srv):
    """The test role's password, from the URL scripts/postgres.sh wrote."""
    return srv.url.split("//", 1)[1].split("@", 1)[0].split(":", 1)[1]


def url(srv, user="claim", password=None, database="claim", host="127.0.0.1", **params):
    from urllib.parse import quote
    secret = role_password(srv) if password is None else password
    text = f"postgres://{quote(user, safe='')}"
    if secret:
        text += ":" + quote(secret, safe="")
    text += f"@{host}:{srv.port}/{database}"
    if params:
        text += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return text


def detail(result):
    return result.logs[-1].get("detail", "")


# --- Audit events through a pooled connection ---

@pytest.mark.parametrize("backend", ["postgres", "pgbouncer"], indirect=True)
def test_claim_events_are_named_exactly_through_a_pooled_connection(backend, tmp_path):
    """Through PgBouncer consecutive requests share a server connection: whatever one transaction set must not
    outlive it and rename the next claim ('claim' for a new or free profile, 'reverify' for the owner's), and a
    refused claim writes no event."""
    env = backend.env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off")
    steps = [("verify", "alice", "user-1", 200), ("verify", "alice", "user-1", 200),
             ("release", "alice", "user-1", 200), ("verify", "zed", "user-1", 200), ("verify", "alice", "user-2", 200),
             ("verify", "alice", "user-1", 409), ("verify", "alice", "user-3", 409), ("verify", "alice", "user-2", 200)]
    for i, (action, username, user, status) in enumerate(steps):
        result = run({"action": action, "username": username, "user_id": user, "request_id": f"r{i}"}, env)
        assert result.status == status, (i, result.response)
    events = db_query(env, "SELECT request_id, event, username, user_id FROM claim_events ORDER BY id;").splitlines()
    assert events == ["r0|claim|alice|user-1", "r1|reverify|alice|user-1", "r2|release|alice|user-1",
                      "r3|claim|zed|user-1", "r4|claim|alice|user-2", "r7|reverify|alice|user-2"]


@pytest.mark.parametrize("backend", ["postgres", "pgbouncer"], indirect=True)
def test_an_owners_claim_racing_its_own_first_claim_is_a_reverify(backend, tmp_path):
    """Two claims by one caller on a profile nobody has claimed yet: the second finds no row to lock, waits on the
    first one's insert in its upsert and then re-claims the caller's own row: 'reverify', as SQLite (which runs the
    two one after the other) names it. The first claim is held open in psql while the binary waits on it."""
    env = backend.env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off")
    assert subprocess.run([BINARY, "migrate"], env=env, capture_output=True).returncode == 0
    holder = subprocess.Popen(["psql", "-X", "-q", "-At", env["CLAIM_DATABASE_URL"]], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        holder.stdin.write("BEGIN;\nINSERT INTO profiles (username, claimed_by, claimed_at, verified_via) VALUES "
                           "('alice', 'user-1', '2026-01-01T00:00:00.000Z', 'none') RETURNING 'inserted';\n"
                           "INSERT INTO claim_events (at, event, username, user_id, request_id) VALUES "
                           "('2026-01-01T00:00:00.000Z', 'claim', 'alice', 'user-1', 'first');\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "inserted"
        with ThreadPoolExecutor(1) as pool:
            second = pool.submit(run, {**VERIFY, "request_id": "second"}, env)
            time.sleep(1)
            assert not second.done(), "the second claim waits on the first one's row"
            holder.stdin.write("COMMIT;\n")
            holder.stdin.flush()
            result = second.result(timeout=30)
        assert result.status == 200, result.response
        assert result.response["result"]["claimed_at"] == "2026-01-01T00:00:00.000Z"
    finally:
        holder.stdin.write("\\q\n")
        holder.stdin.close()
        holder.wait(timeout=10)
    events = db_query(env, "SELECT request_id, event FROM claim_events ORDER BY id;").splitlines()
    assert events == ["first|claim", "second|reverify"]


# --- The server goes away in the middle of a run ---

@pytest.mark.parametrize("through", ["direct", "pgbouncer"])
def test_server_halted_mid_run_is_store_unreachable_and_nothing_is_half_written(server, tmp_path, capsys, through):
    database = server.create_database()
    pooler, stop_pooler = start_pgbouncer(server) if through == "pgbouncer" else (None, lambda: None)
    try:
        halted_mid_run(server, database, pooler, tmp_path, capsys, through)
    finally:
        stop_pooler()
    server.drop_database(database)


def answering(env, seconds=60):
    """True once a status request answers 200: a pooler retries a server that refused its login only after
    server_login_retry, and answers 503 until then."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if run({"action": "status", "username": "probe", "user_id": "probe"}, env).status == 200:
            return True
        time.sleep(0.2)
    return False


def halted_mid_run(server, database, pooler, tmp_path, capsys, through):
    target = pooler.url_for(database, connect_timeout=5) if pooler else url(server, database=database, connect_timeout=5)
    env = env_for(target, tmp_path, CLAIM_BUSY_TIMEOUT_MS=5000)
    assert subprocess.run([BINARY, "migrate"], env=env, capture_output=True).returncode == 0
    requests = [{"action": "verify", "username": f"name-{i}", "user_id": f"user-{i}"} for i in range(300)]
    done = []
    halted = threading.Event()

    def one(request):
        result = run(request, env)
        done.append(result)
        if len(done) >= 80 and not halted.is_set():
            halted.set()
            subprocess.run([str(POSTGRES_SCRIPT), "halt", str(server.folder)], check=True)
        return result

    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(one, requests))
    finally:
        subprocess.run([str(POSTGRES_SCRIPT), "resume", str(server.folder)], check=True)
    assert answering(env), "the server answers again after the restart"
    outcomes = {}
    for result in results:
        key = "200" if result.status == 200 else result.code
        outcomes[key] = outcomes.get(key, 0) + 1
        if result.status != 200:
            assert (result.status, result.code, result.exit) == (503, "store_unreachable", 75), result.response
            assert result.response["error"]["retry_after_s"] >= 1
    with capsys.disabled():
        print(f"\n  postgres halted mid-run ({through}): "
              + ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items())))
    assert outcomes.get("200", 0) >= 80 and outcomes.get("store_unreachable", 0) >= 1, outcomes

    held = {u: (o, at) for u, o, at in (line.split("|") for line in db_query(
        env, "SELECT username, claimed_by, claimed_at FROM profiles WHERE claimed_by IS NOT NULL;").splitlines())}
    acknowledged = {r.response["result"]["username"]: r.response["result"] for r in results if r.status == 200}
    for name, res in acknowledged.items():
        assert held.get(name) == (res["claimed_by"], res["claimed_at"]), f"acknowledged claim {name} lost"
    # A commit whose answer the crash swallowed may be in the database, answered 503: a retry answers 200 for it.
    # Nothing is half-written: each profile has exactly its claim event, and no event lacks its profile.
    events = db_query(env, "SELECT username, user_id, event FROM claim_events ORDER BY username;").splitlines()
    assert sorted(events) == sorted(f"{name}|{owner}|claim" for name, (owner, _) in held.items())
    server.admin_sql("CREATE EXTENSION IF NOT EXISTS amcheck; SELECT bt_index_check('profiles_one_per_user', true), "
                     "bt_index_check('profiles_pkey', true);", database)
    retried = [run(r, env) for r, res in zip(requests, results) if res.status != 200]
    assert all(r.status == 200 for r in retried), "after the restart every failed verify succeeds when retried"


# --- Connection failures ---

def test_connection_refused_is_store_unreachable(tmp_path):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    result = run(VERIFY, env_for(f"postgres://claim:pw@127.0.0.1:{port}/claim", tmp_path))
    assert (result.status, result.code, result.exit) == (503, "store_unreachable", 75)
    assert "refused" in detail(result).lower()


def test_connect_timeout_is_store_unreachable(tmp_path):
    """A peer that accepts TCP but never answers the SSLRequest: the connect deadline ends the wait."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        env = env_for(f"postgres://claim:pw@127.0.0.1:{silent.getsockname()[1]}/claim?connect_timeout=1", tmp_path)
        started = time.monotonic()
        result = run(VERIFY, env)
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert (result.status, result.code, result.exit) == (503, "store_unreachable", 75)
    assert "within 1000 ms" in detail(result)
    assert elapsed < 10


def test_peer_closing_during_start_up_is_store_unreachable(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def close_each():
        for _ in range(2):
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.recv(64)
            connection.close()

    thread = threading.Thread(target=close_each, daemon=True)
    thread.start()
    try:
        result = run(VERIFY, env_for(f"postgres://claim:pw@127.0.0.1:{listener.getsockname()[1]}/claim", tmp_path))
    finally:
        listener.close()
    assert (result.status, result.code, result.exit) == (503, "store_unreachable", 75)


@pytest.mark.parametrize("through", ["direct", "pgbouncer"])
def test_wrong_password_is_store_unavailable_and_never_logged(server, tmp_path, through):
    """Directly PostgreSQL refuses with 28P01; PgBouncer refuses with 08P01 "SASL authentication failed", the code
    it also uses for a server it cannot reach: a refused login is still no reason to retry."""
    pooler, stop_pooler = start_pgbouncer(server) if through == "pgbouncer" else (None, lambda: None)
    try:
        endpoint = pooler.url_for("claim", sslmode="disable") if pooler else url(server)
        wrong = endpoint.replace(role_password(server), "not-the-password-42")
        result = run(VERIFY, env_for(wrong, tmp_path))
    finally:
        stop_pooler()
    assert (result.status, result.code, result.exit) == (500, "store_unavailable", 70)
    assert result.response["error"]["message"] == "the claim database refused the login"
    expected = ("08P01", "SASL authentication failed") if pooler else ("28P01", "password authentication failed")
    assert all(part in detail(result) for part in expected), detail(result)
    assert b"not-the-password-42" not in result.stdout + result.stderr


def test_missing_database_is_store_unavailable(server, tmp_path):
    result = run(VERIFY, env_for(url(server, database="no_such_database"), tmp_path))
    assert (result.status, result.code, result.exit) == (500, "store_unavailable", 70)
    assert result.response["error"]["message"] == "the claim database does not exist"
    assert "3D000" in detail(result)


def test_row_lock_held_longer_than_timeout_is_store_busy(server, tmp_path):
    """PostgreSQL's side of test_store_faults: lock_timeout (CLAIM_BUSY_TIMEOUT_MS) answers 503 store_busy."""
    database = server.create_database()
    env = env_for(url(server, database=database), tmp_path, CLAIM_BUSY_TIMEOUT_MS="300")
    assert run(VERIFY, env).status == 200
    holder = subprocess.Popen(["psql", "-X", "-q", "-At", env["CLAIM_DATABASE_URL"]], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        holder.stdin.write("BEGIN;\nSELECT 'locked' FROM profiles WHERE username = 'alice' FOR UPDATE;\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "locked"
        busy = run(VERIFY, env)
        assert (busy.status, busy.code, busy.exit) == (503, "store_busy", 75)
        assert "55P03" in detail(busy)
    finally:
        holder.stdin.write("ROLLBACK;\n\\q\n")
        holder.stdin.close()
        holder.wait(timeout=10)
    assert run(VERIFY, env).status == 200
    server.drop_database(database)


# --- Authentication methods ---

@pytest.mark.parametrize("role", list(ROLES))
def test_authentication_methods(server, tmp_path, role):
    """SCRAM-SHA-256 (the test role and a percent-encoded password), MD5, cleartext and trust."""
    _, password, _ = ROLES[role]
    result = run(VERIFY, env_for(url(server, user=role, password=password or "", database=role), tmp_path))
    assert result.status == 200, result.response


def test_wrong_md5_password_is_refused(server, tmp_path):
    result = run(VERIFY, env_for(url(server, user="md5user", password="wrong", database="md5user"), tmp_path))
    assert (result.status, result.code) == (500, "store_unavailable")


# --- SCRAM keys instead of the password ---

def derived_keys(srv, role="claim"):
    """The role's ClientKey and ServerKey (base64) from its password and pg_authid's SCRAM secret, computed here
    with hashlib and hmac, independently of the binary."""
    secret = srv.admin_sql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}';").strip()
    iterations, salt = secret.split("$")[1].split(":")
    stored, server_key = secret.split("$")[2].split(":")
    password = role_password(srv) if role == "claim" else ROLES[role][1]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client = hmac.new(salted, b"Client Key", "sha256").digest()
    assert hashlib.sha256(client).digest() == base64.b64decode(stored)
    return base64.b64encode(client).decode(), server_key


def with_keys(text, client, server_key):
    """`text` (a URL with a query) without its password, with the keys as URL parameters."""
    scheme, rest = text.split("//", 1)
    user_info, host = rest.split("@", 1)
    return (f"{scheme}//{user_info.split(':', 1)[0]}@{host}&scram_client_key={quote(client, safe='')}"
            f"&scram_server_key={quote(server_key, safe='')}")


@pytest.mark.parametrize("through", ["direct", "pgbouncer"])
def test_scram_keys_log_in_without_the_password(server, tmp_path, through):
    """`scram-keys` logs in with the password and prints the role's keys (the ones hashlib derives from pg_authid);
    a URL with those keys and no password then serves requests, directly and through a pooler whose auth_file
    holds the SCRAM secret. Keys that are not the role's are refused by the server (a wrong ClientKey) or by us (a
    wrong ServerKey: the server cannot prove itself), and no key and no password reaches any output but the
    command's own answer."""
    pooler, stop_pooler = start_pgbouncer(server) if through == "pgbouncer" else (None, lambda: None)
    database = server.create_database()
    try:
        endpoint = (pooler or server).url_for(database, sslmode="disable")
        # Keys already in the URL (here wrong ones) are not used: the command derives them from the password.
        stale = f"&scram_client_key={quote(base64.b64encode(b'c' * 32).decode(), safe='')}" \
                f"&scram_server_key={quote(base64.b64encode(b's' * 32).decode(), safe='')}"
        command = subprocess.run([BINARY, "scram-keys"], env={"CLAIM_DATABASE_URL": endpoint + stale},
                                 capture_output=True, timeout=60)
        assert command.returncode == 0, command.stdout
        answer = json.loads(command.stdout)
        client, server_key = derived_keys(server)
        assert (answer["scram_client_key"], answer["scram_server_key"]) == (client, server_key)
        assert answer["url_parameters"] == (f"scram_client_key={quote(client, safe='')}"
                                            f"&scram_server_key={quote(server_key, safe='')}")
        password = role_password(server)
        assert password not in command.stdout.decode() + command.stderr.decode()
        # README's recipe: the URL without the password, SCRAM required, the command's url_parameters appended.
        keyed = with_keys(endpoint + "&require_auth=scram-sha-256", client, server_key)
        assert keyed.endswith("&require_auth=scram-sha-256&" + answer["url_parameters"])
        env = env_for(keyed, tmp_path)
        outputs = []
        for request in (VERIFY, {**VERIFY, "action": "status"}):
            result = run(request, env)
            assert result.status == 200, result.response
            outputs.append(result)
        wrong_client = env_for(with_keys(endpoint, server_key, server_key), tmp_path)
        refused = run(VERIFY, wrong_client)
        # PostgreSQL answers 28P01; PgBouncer checks the proof itself and answers 08P01 for any failed login.
        assert (refused.status, refused.code) == (500, "store_unavailable")
        assert "authentication failed" in detail(refused), detail(refused)
        impostor = run(VERIFY, env_for(with_keys(endpoint, client, base64.b64encode(b"x" * 32).decode()), tmp_path))
        assert (impostor.status, impostor.code) == (500, "store_unavailable")
        assert "does not know the password" in detail(impostor), detail(impostor)
        for result in outputs + [refused, impostor]:
            text = result.stdout.decode() + result.stderr.decode()
            for secret in (client, server_key, quote(client, safe=""), password):
                assert secret not in text
        migrated = subprocess.run([BINARY, "migrate"], env=env, capture_output=True, timeout=60)
        assert migrated.returncode == 0 and client not in migrated.stdout.decode() + migrated.stderr.decode()
    finally:
        stop_pooler()
        server.drop_database(database)


def test_scram_keys_command_refuses_what_gives_no_usable_keys(server, tmp_path):
    """No password to derive from, a role whose password is MD5, and a pooler that holds the password itself (it
    picks a new salt at every login, so keys from one login fail the next): `misconfigured`, exit 78, no keys."""
    pooler, stop_pooler = start_pgbouncer(server, "scram-password")
    try:
        cases = [
            (url(server, password="", sslmode="disable"), "which has none"),
            (url(server, user="md5user", password="md5-secret", database="md5user", sslmode="disable"),
             "without SCRAM-SHA-256"),
            (pooler.url_for("claim", sslmode="disable"), "did not log in again"),
        ]
        client, server_key = derived_keys(server)
        password = role_password(server)
        for endpoint, reason in cases:
            command = subprocess.run([BINARY, "scram-keys"], env={"CLAIM_DATABASE_URL": endpoint},
                                     capture_output=True, timeout=60)
            assert command.returncode == 78, command.stdout
            answer = json.loads(command.stdout)
            assert answer["error"]["code"] == "misconfigured" and reason in answer["error"]["message"], answer
            output = command.stdout.decode() + command.stderr.decode()
            for secret in ("scram_client_key", client, server_key, password, "md5-secret"):
                assert secret not in output
    finally:
        stop_pooler()
    # The password changed (a new salt): the old keys fail like a wrong password until scram-keys runs again.
    keyuser = url(server, user="keyuser", password="key-secret-1", database="keyuser", sslmode="disable")
    old = json.loads(subprocess.run([BINARY, "scram-keys"], env={"CLAIM_DATABASE_URL": keyuser},
                                    capture_output=True, timeout=60).stdout)["url_parameters"]
    try:
        server.admin_sql("ALTER ROLE keyuser PASSWORD 'key-secret-2';")
        stale = run(VERIFY, env_for(keyuser.replace(":key-secret-1@", "@") + "&" + old, tmp_path))
        assert (stale.status, stale.code) == (500, "store_unavailable") and "28P01" in detail(stale), stale.response
        fresh = subprocess.run([BINARY, "scram-keys"],
                               env={"CLAIM_DATABASE_URL": keyuser.replace("key-secret-1", "key-secret-2")},
                               capture_output=True, timeout=60)
        new = json.loads(fresh.stdout)["url_parameters"]
        assert new != old
        assert run(VERIFY, env_for(keyuser.replace(":key-secret-1@", "@") + "&" + new, tmp_path)).status == 200
    finally:
        server.admin_sql("ALTER ROLE keyuser PASSWORD 'key-secret-1';")
    # Keys and no password against a server that asks for MD5: nothing to send.
    client, server_key = derived_keys(server)
    keyed = with_keys(url(server, user="md5user", password="x", database="md5user", sslmode="disable"), client,
                      server_key)
    result = run(VERIFY, env_for(keyed, tmp_path))
    assert (result.status, result.code) == (500, "store_unavailable") and "has none" in detail(result)


# --- TLS ---

@pytest.mark.parametrize("mode,expected", [("disable", 500), ("allow", 200), ("prefer", 200), ("require", 200)])
def test_tls_only_role_by_sslmode(server, tmp_path, mode, expected):
    """pg_hba.conf accepts `sslonly` over TLS only: disable is refused, allow falls back to TLS, prefer uses it."""
    env = env_for(url(server, user="sslonly", password="ssl-secret", database="sslonly", sslmode=mode), tmp_path)
    result = run(VERIFY, env)
    assert result.status == expected, result.response
    if expected == 500:
        assert result.code == "store_unavailable" and "28000" in detail(result)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_verify_full_against_the_test_ca(server, tmp_path, host):
    ca = server.folder / "certs" / "ca.pem"
    by_environment = env_for(url(server, host=host, sslmode="verify-full"), tmp_path, SSL_CERT_FILE=ca)
    assert run(VERIFY, by_environment).status == 200
    by_parameter = env_for(url(server, host=host, sslmode="verify-full", sslrootcert=ca), tmp_path)
    assert run(VERIFY, by_parameter).status == 200


def test_verify_full_without_trusting_the_ca_fails_clearly(server, tmp_path):
    other = server.folder / "certs" / "untrusted-ca.pem"
    result = run(VERIFY, env_for(url(server, sslmode="verify-full", sslrootcert=other), tmp_path))
    assert (result.status, result.code, result.exit) == (500, "store_unavailable", 70)
    assert "certificate of 127.0.0.1 not accepted" in detail(result)
    # require without a root certificate does not verify, as in libpq.
    assert run(VERIFY, env_for(url(server, sslmode="require"), tmp_path)).status == 200


def test_certificate_for_the_wrong_host(server, tmp_path):
    certs = server.folder / "certs"
    server.admin_sql(f"ALTER SYSTEM SET ssl_cert_file = '{certs / 'wrong-host.pem'}';"
                     f"ALTER SYSTEM SET ssl_key_file = '{certs / 'wrong-host.key'}';")
    reload(server)
    try:
        for host in ("127.0.0.1", "localhost"):
            full = run(VERIFY, env_for(url(server, host=host, sslmode="verify-full", sslrootcert=certs / "ca.pem"),
                                       tmp_path))
            assert (full.status, full.code, full.exit) == (500, "store_unavailable", 70)
            assert full.response["error"]["message"] == "the claim database's TLS connection was refused"
            assert f"certificate of {host} not accepted" in detail(full) and "mismatch" in detail(full)
        # verify-ca checks the chain only: the wrong name is accepted.
        ca_only = run(VERIFY, env_for(url(server, sslmode="verify-ca", sslrootcert=certs / "ca.pem"), tmp_path))
        assert ca_only.status == 200
    finally:
        server.admin_sql("ALTER SYSTEM RESET ssl_cert_file; ALTER SYSTEM RESET ssl_key_file;")
        reload(server)


def test_server_without_tls(server, tmp_path):
    server.admin_sql("ALTER SYSTEM SET ssl = off;")
    reload(server)
    try:
        required = run(VERIFY, env_for(url(server, sslmode="require"), tmp_path))
        assert (required.status, required.code) == (500, "store_unavailable")
        assert required.response["error"]["message"] == "the claim database does not offer TLS"
        assert run(VERIFY, env_for(url(server, sslmode="prefer"), tmp_path)).status == 200
        assert run(VERIFY, env_for(url(server, sslmode="disable"), tmp_path)).status == 200
    finally:
        server.admin_sql("ALTER SYSTEM RESET ssl;")
        reload(server)


# --- migrate ---

def test_migrate_command(server, tmp_path):
    database = server.create_database()
    env = env_for(url(server, database=database), tmp_path)
    proc = subprocess.run([BINARY, "migrate"], env=env, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stdout
    answer = json.loads(proc.stdout)
    # Nothing from the URL's user information (user name, password) reaches stdout.
    assert answer == {"ok": True, "database": f"postgres://127.0.0.1:{server.port}/{database}?sslmode=prefer",
                      "schema_version": 3}
    assert db_query(env, "SELECT version FROM schema_version;") == "3\n"
    tables = db_query(env, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1;").split()
    assert tables == ["challenges", "claim_events", "leetcode_breaker", "leetcode_requests", "profiles",
                      "schema_version"]
    again = subprocess.run([BINARY, "migrate"], env=env, capture_output=True, timeout=60)
    assert again.returncode == 0 and json.loads(again.stdout) == answer
    # claim_events is append-only, as in SQLite.
    assert run(VERIFY, env_for(env["CLAIM_DATABASE_URL"], tmp_path)).status == 200
    refused = subprocess.run(["psql", "-X", "-q", "-At", env["CLAIM_DATABASE_URL"], "-c", "DELETE FROM claim_events"],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "append-only" in refused.stderr
    db_query(env, "UPDATE schema_version SET version = 7;")
    newer = subprocess.run([BINARY, "migrate"], env=env, capture_output=True, timeout=60)
    assert newer.returncode == 70
    assert json.loads(newer.stdout)["error"]["message"] == (
        "the claim database has schema version 7, newer than this binary's version 3")
    server.drop_database(database)
