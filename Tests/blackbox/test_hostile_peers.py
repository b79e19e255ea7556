"""Hostile peers against the real binary (issue 13): a hostile PostgreSQL server and a hostile HTTP server on
loopback (hostile_peers.py), a hostile request, and mis-encoded configuration.

Every run here is held to a 32 MiB memory limit (memory_limit.py: a cgroup v1 memory controller, else RLIMIT_AS)
and must answer exactly one JSON line with the documented code, within the README's peak RSS budget of 24 MB;
each test prints the peak RSS it saw. One regression per defect found by attacking the binary, and one per rule of the PostgreSQL
client's state machines.
"""
import subprocess
import sys

import pytest

from conftest import base_env, run
from hostile_peers import HostileHTTP, HostilePostgres
from leetcode_fixture import leetcode  # noqa: F401 (a fixture)
from memory_limit import LIMIT_BYTES, MemoryLimit, run_limited

PEAK_BUDGET_BYTES = 24_000_000  # README: peak RSS ≤ 24 MB whatever a peer or the request sends
PASSWORD = "pw-Secret-42"
VERIFY = {"action": "verify", "username": "alice", "user_id": "user-1"}


@pytest.fixture(scope="module")
def pg():
    server = HostilePostgres(PASSWORD)
    yield server
    server.close()


@pytest.fixture(scope="module")
def http():
    server = HostileHTTP()
    yield server
    server.close()


def limited(capsys, name, request, env, code, argv=()):
    """One run under the memory limit: one JSON line with `code` (None: success; a tuple: any of them), within
    the RSS budget."""
    outcome = run_limited(request, env, argv)
    assert not outcome.oom_killed, f"{name}: killed by the memory limit"
    result = outcome.result()
    assert result.code in (code if isinstance(code, tuple) else (code,)), (name, result.response, outcome.stderr[-400:])
    assert outcome.peak_rss_bytes <= PEAK_BUDGET_BYTES, f"{name}: peak RSS {outcome.peak_rss_mb:.1f} MB"
    with capsys.disabled():
        print(f"\n  peak RSS {name}: {outcome.peak_rss_mb:.1f} MB ({outcome.limit_how} {LIMIT_BYTES >> 20} MiB)",
              end="")
    return result


def pg_env(tmp_path, url):
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off", CLAIM_DATABASE_URL=url)
    del env["CLAIM_DB"]
    return env


def detail(result):
    return result.logs[-1].get("detail", "")


def test_memory_limit_is_enforced():
    """The harness's limit is real: a process that needs 64 MiB does not survive it."""
    limit = MemoryLimit()
    try:
        proc = subprocess.run([sys.executable, "-c", "x = bytearray(64 << 20); x[::4096] = b'1' * len(x[::4096])"],
                              preexec_fn=limit.enter, capture_output=True, timeout=60)
    finally:
        limit.remove()
    assert proc.returncode != 0


# --- Defect 1: a PostgreSQL answer is refused past 64 KiB, so memory stays bounded ---

@pytest.mark.parametrize("scenario", ["flood-rows", "many-small-rows", "huge-message", "many-columns"])
def test_postgres_answer_over_the_budget_is_refused(pg, tmp_path, capsys, scenario):
    result = limited(capsys, f"postgres {scenario}", VERIFY, pg_env(tmp_path, pg.url(scenario)), "store_unavailable")
    assert result.response["error"]["message"] == "the claim database's server broke the PostgreSQL protocol"
    assert "65536 bytes" in detail(result)


# --- Defect 4 and the authentication state machine's rules ---

# SCRAM keys (any: the hostile server does not know them) as URL parameters, for the runs that log in with keys.
KEYS = {"scram_client_key": "Y2xpZW50LWtleS1jbGllbnQta2V5LWNsaWVudC1rZXk%3D",
        "scram_server_key": "c2VydmVyLWtleS1zZXJ2ZXIta2V5LXNlcnZlci1rZXk%3D"}


@pytest.mark.parametrize("secret", ["password", "keys"])
@pytest.mark.parametrize("scenario", ["scram-skips-proof", "scram-skips-final", "scram-wrong-signature",
                                      "ready-before-ok"])
def test_server_that_does_not_prove_itself_gets_no_query(pg, tmp_path, capsys, scenario, secret):
    """ReadyForQuery only after AuthenticationOk, and after SCRAM only once the server's signature verified: with
    the password and with the role's keys in the URL alike."""
    url = pg.url(scenario, **(KEYS if secret == "keys" else {}))
    result = limited(capsys, f"postgres {scenario} ({secret})", VERIFY, pg_env(tmp_path, url), "store_unavailable")
    assert result.response["error"]["message"] == "the claim database's server did not authenticate as required"
    assert not [sql for kind, sql in pg.seen[scenario] if kind == "sql"], "a query reached an unproven server"
    if scenario.startswith("scram"):
        assert any(kind == "scram-final" for kind, _ in pg.seen[scenario]), "the exchange got as far as the proof"


@pytest.mark.parametrize("scenario", ["scram-keys-then-trust", "scram-keys-then-cleartext"])
def test_scram_keys_prints_keys_only_after_a_login_with_them(pg, tmp_path, scenario):
    """`scram-keys` logs in with the password, then must log in again with the derived keys alone, by SCRAM: a
    server that lets the second login in without SCRAM (trust), or asks for a cleartext password then, gets no
    password and the command prints no key."""
    outcome = run_limited(b"", pg_env(tmp_path, pg.url(scenario)), ("scram-keys",))
    assert outcome.proc.returncode == 78, outcome.stdout
    assert outcome.stdout.count(b"\n") == 1 and b'"misconfigured"' in outcome.stdout
    assert b"did not log in again" in outcome.stdout and b"require_auth forbids it" in outcome.stdout
    assert b"scram_client_key" not in outcome.stdout and PASSWORD.encode() not in outcome.stdout + outcome.stderr
    assert pg.connections[scenario] == 2
    assert [kind for kind, _ in pg.seen[scenario]] == ["scram-final"], "no password, no query on the second login"


@pytest.mark.parametrize("scenario", ["scram-then-cleartext", "scram-then-md5"])
def test_no_weaker_method_after_scram_began(pg, tmp_path, capsys, scenario):
    result = limited(capsys, f"postgres {scenario}", VERIFY, pg_env(tmp_path, pg.url(scenario)), "store_unavailable")
    assert "in the middle of SCRAM" in detail(result)
    assert not [value for kind, value in pg.seen[scenario] if kind == "password"], "the password was sent"


@pytest.mark.parametrize("scenario,require_auth", [
    ("cleartext", "scram-sha-256"), ("md5", "scram-sha-256"), ("trust", "scram-sha-256"),
    ("cleartext", "!password,!md5"), ("md5", "!password,!md5"), ("trust", "!none"),
])
def test_require_auth_refuses_the_forbidden_method(pg, tmp_path, capsys, scenario, require_auth):
    before = len(pg.seen[scenario])
    url = pg.url(scenario, require_auth=require_auth)
    result = limited(capsys, f"postgres {scenario} require_auth={require_auth}", VERIFY, pg_env(tmp_path, url),
                     "store_unavailable")
    assert "require_auth forbids it" in detail(result)
    assert pg.seen[scenario][before:] == [], "nothing was sent to the refused server"


@pytest.mark.parametrize("scenario", ["cleartext", "md5"])
def test_require_auth_lets_the_allowed_method_through(pg, tmp_path, capsys, scenario):
    """The control for the refusals above: an allowed method is answered (the password reaches the server)."""
    before = len(pg.seen[scenario])
    # The hostile server fails every statement: store_unavailable.
    limited(capsys, f"postgres {scenario} require_auth=password,md5", VERIFY,
            pg_env(tmp_path, pg.url(scenario, require_auth="password,md5")), "store_unavailable")
    assert [kind for kind, _ in pg.seen[scenario][before:]][:2] == ["password", "sql"]


def test_parameter_status_before_authentication_is_refused(pg, tmp_path, capsys):
    result = limited(capsys, "postgres status-before-ok", VERIFY, pg_env(tmp_path, pg.url("status-before-ok")),
                     "store_unavailable")
    assert "unexpected ParameterStatus during start-up" in detail(result)


# --- The extended-query state machine's rules ---

@pytest.mark.parametrize("scenario,text", [
    ("data-before-bind", "unexpected DataRow"), ("ready-too-early", "ReadyForQuery after 0 results"),
    ("copy-in", "unexpected message 'G'"),
])
def test_answer_out_of_order_is_refused(pg, tmp_path, capsys, scenario, text):
    result = limited(capsys, f"postgres {scenario}", VERIFY, pg_env(tmp_path, pg.url(scenario)), "store_unavailable")
    assert text in detail(result)


# --- Defect 7, and passwords with reserved characters: no secret in any message ---

def test_server_echoing_the_password_is_logged_without_it(pg, tmp_path, capsys):
    result = limited(capsys, "postgres echo-password", VERIFY, pg_env(tmp_path, pg.url("echo-password")),
                     "store_unavailable")
    assert ("password", PASSWORD) in pg.seen["echo-password"], "the server did get the password to echo"
    assert '"[password]" is not it' in detail(result)
    assert PASSWORD.encode() not in result.stdout + result.stderr


RESERVED = [":", "/", "?", "#", "[", "]", "@", "!", "$", "&", "'", "(", ")", "*", "+", ",", ";", "=", "%", " "]


@pytest.mark.parametrize("character", RESERVED)
def test_password_with_a_reserved_character_unencoded_never_leaks(pg, tmp_path, capsys, character):
    """Whatever the URL turns into (refused as misconfigured, or parsed and sent to a server that echoes the
    password), no piece of the password reaches stdout, and the log holds none of it either."""
    password = f"Top{character}Secret9"
    url = f"postgres://claim:{password}@127.0.0.1:{pg.port}/claims?sslmode=disable"
    result = limited(capsys, f"password with {character!r} unencoded", VERIFY, pg_env(tmp_path, url),
                     ("misconfigured", "store_unavailable"))
    for piece in ("Top", "Secret9"):
        assert piece.encode() not in result.stdout, (character, result.response)
        assert piece.encode() not in result.stderr, (character, result.stderr)
    if result.code == "store_unavailable":
        assert ("password", password) in pg.seen["claim"], "the server echoed the password it got"
        assert "[password]" in detail(result)


@pytest.mark.parametrize("argv", [(), ("migrate",)])
def test_mis_encoded_url_is_misconfigured_without_quoting_it(tmp_path, capsys, argv):
    """The issue's example: `@` and `?` left unencoded in the password."""
    env = pg_env(tmp_path, "postgres://claim:pa@ss?TopSecret@db.example/claims")
    if argv:
        outcome = run_limited(b"", env, argv)
        assert outcome.proc.returncode == 78
        assert outcome.stdout.count(b"\n") == 1 and b'"misconfigured"' in outcome.stdout
        assert b"TopSecret" not in outcome.stdout + outcome.stderr and b"ss?" not in outcome.stdout
        return
    result = limited(capsys, "misconfigured URL", VERIFY, env, "misconfigured")
    assert result.response["error"]["message"].startswith("CLAIM_DATABASE_URL is not a valid PostgreSQL URL")
    assert b"TopSecret" not in result.stdout + result.stderr and b"ss?" not in result.stdout


# --- Defects 2, 5 and 6: hostile GraphQL answers ---

def leetcode_env(tmp_path, url, **extra):
    return base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="leetcode", LEETCODE_GRAPHQL_URL=url, **extra)


def challenge_then_verify(capsys, http, tmp_path, username, code):
    env = leetcode_env(tmp_path, http.url)
    asked = run({"action": "challenge", "username": username, "user_id": "user-1"}, env)
    assert asked.status == 200, asked.response
    http.code = asked.response["result"]["code"]
    result = limited(capsys, f"leetcode {username}", {"action": "verify", "username": username, "user_id": "user-1"},
                     env, code)
    status = run({"action": "status", "username": username, "user_id": "user-1"}, env)
    return result, status.response["result"]["claimed"]


@pytest.mark.parametrize("username", ["head-one-write", "head-1000-byte-writes"])
def test_head_cap_holds_however_the_bytes_arrive(http, tmp_path, capsys, username):
    result, claimed = challenge_then_verify(capsys, http, tmp_path, username, "leetcode_bad_response")
    assert "header section over 64 KiB" in detail(result)
    assert not claimed


def test_deeply_nested_answer_is_refused_within_memory(http, tmp_path, capsys):
    result, claimed = challenge_then_verify(capsys, http, tmp_path, "nested-arrays", "leetcode_bad_response")
    assert "values" in detail(result)
    assert not claimed


def test_another_users_profile_proves_nothing(http, tmp_path, capsys):
    result, claimed = challenge_then_verify(capsys, http, tmp_path, "other-user", "leetcode_bad_response")
    assert "is not the requested" in detail(result)
    assert not claimed


def test_chunked_flood_is_refused(http, tmp_path, capsys):
    result, claimed = challenge_then_verify(capsys, http, tmp_path, "tiny-chunks", "leetcode_bad_response")
    assert not claimed


def test_largest_valid_answer_claims_within_memory(http, tmp_path, capsys):
    result, claimed = challenge_then_verify(capsys, http, tmp_path, "big-about-me", None)
    assert result.status == 200 and claimed


# --- The budget on every other path: a hostile request, and the ordinary paths for comparison ---

@pytest.mark.parametrize("name,body,code", [
    ("64 KiB of values", b'{"action":"status","username":"a","user_id":"u","x":[' + b"[0]," * 16370 + b"0]}",
     "invalid_request"),
    ("64 KiB of strings", b'{"action":"status","username":"a","user_id":"u","x":["' + b"\\u00e9" * 10900 + b'"]}',
     "invalid_request"),
    ("64 levels, repeated", b'{"x":[' + b",".join([b"[" * 62 + b"]" * 62] * 500) + b"]}", "invalid_request"),
])
def test_hostile_request_within_memory(tmp_path, capsys, name, body, code):
    assert len(body) <= 65536
    limited(capsys, f"request {name}", body, base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off"), code)


def test_ordinary_paths_within_memory(tmp_path, capsys, postgres_server, leetcode):  # noqa: F811
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off")
    limited(capsys, "sqlite verify (off)", VERIFY, env, None)
    database = postgres_server.create_database()
    try:
        limited(capsys, "postgres verify (off), SCRAM + TLS", VERIFY,
                pg_env(tmp_path, postgres_server.url_for(database, sslmode="require")), None)
    finally:
        postgres_server.drop_database(database)
    tls = leetcode_env(tmp_path, leetcode.https, SSL_CERT_FILE=leetcode.ca)
    code = run({"action": "challenge", "username": "rss-user", "user_id": "user-2"}, tls).response["result"]["code"]
    leetcode.set_profile("rss-user", code)
    limited(capsys, "leetcode verify over TLS", {"action": "verify", "username": "rss-user", "user_id": "user-2"},
            tls, None)
