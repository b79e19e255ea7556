"""LeetCode verification over real TLS against the fake LeetCode server on loopback.

The fake (Tests/fake_leetcode/server.py) answers by username, shaped like LeetCode's real responses; the test CA
and certificates are made with the openssl command when the module starts. The tests that store something run
against SQLite and against PostgreSQL (`backend`).
"""
import json
import os
import pathlib
import shutil
import subprocess
import time

import pytest

from conftest import BINARY, base_env, db_query, run
from leetcode_fixture import leetcode  # noqa: F401 (a fixture)
from test_race import run_all


def env_for(tmp_path, leetcode, url=None, backend=None, url_params=None, **extra):
    settings = dict(CLAIM_AUTH="trusted", LEETCODE_GRAPHQL_URL=url or leetcode.https, SSL_CERT_FILE=leetcode.ca,
                    **extra)
    return backend.env(tmp_path, url_params, **settings) if backend else base_env(tmp_path, **settings)


def request(action, username, user="user-1"):
    return {"action": action, "username": username, "user_id": user}


def sql(env, query):
    """`query` on the database `env` selects (the sqlite3 shell or psql), as another service would."""
    return db_query(env, query + ";")


# SQLite and PostgreSQL; PgBouncer changes nothing about LeetCode, and the race tests cover it.
BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


def challenge(env, username, user="user-1"):
    result = run(request("challenge", username, user), env)
    assert result.status == 200, result.response
    return result.response["result"]["code"]


@BACKENDS
def test_verify_with_code_in_about_me_claims_and_stores_snapshot(tmp_path, leetcode, backend):
    env = env_for(tmp_path, leetcode, backend=backend)
    code = challenge(env, "alice")
    leetcode.set_profile("alice", f"Hi! {code} I like graphs")
    result = run(request("verify", "alice"), env)
    assert result.status == 200, result.response
    res = result.response["result"]
    assert res["verified_via"] == "leetcode" and res["claimed_by"] == "user-1"
    assert res["profile"] == {"real_name": "Real alice", "avatar_url": "https://assets.leetcode.com/alice.png",
                              "ranking": 4242, "solved": {"easy": 10, "medium": 20, "hard": 5, "all": 35},
                              "synced_at": res["claimed_at"]}
    assert sql(env, "SELECT claimed_by, verified_via, real_name, ranking, solved_all FROM profiles") == \
        "user-1|leetcode|Real alice|4242|35\n"
    assert sql(env, "SELECT count(*) FROM challenges") == "0\n", "the challenge is consumed"


@BACKENDS
def test_owner_verify_resyncs_without_code(tmp_path, leetcode, backend):
    env = env_for(tmp_path, leetcode, backend=backend)
    code = challenge(env, "resyncer")
    leetcode.set_profile("resyncer", code)
    first = run(request("verify", "resyncer"), env).response["result"]
    leetcode.set_profile("resyncer", "code removed", ranking=1, all=99)
    again = run(request("verify", "resyncer"), env)
    assert again.status == 200
    res = again.response["result"]
    assert res["claimed_at"] == first["claimed_at"]
    assert res["profile"]["ranking"] == 1 and res["profile"]["solved"]["all"] == 99
    assert sql(env, "SELECT ranking, solved_all FROM profiles") == "1|99\n"
    assert sql(env, "SELECT event FROM claim_events ORDER BY id") == "claim\nresync\n"


@BACKENDS
def test_chunked_response_is_read(tmp_path, leetcode, backend):
    env = env_for(tmp_path, leetcode, backend=backend)
    code = challenge(env, "chunked")
    leetcode.set_profile("chunked", code)
    result = run(request("verify", "chunked"), env)
    assert result.status == 200, result.response


@BACKENDS
def test_plain_http_to_loopback_works(tmp_path, leetcode, backend):
    env = env_for(tmp_path, leetcode, url=leetcode.http, backend=backend)
    code = challenge(env, "plain")
    leetcode.set_profile("plain", code)
    assert run(request("verify", "plain"), env).status == 200


FAILURES = [
    # (username, url attribute, extra env, status, code, retry_after_s)
    ("nocode", "https", {}, 403, "code_not_found", None),
    ("ghost", "https", {}, 404, "leetcode_user_not_found", None),
    ("cf-blocked", "https", {}, 503, "leetcode_unavailable", 30),
    ("rate-limited", "https", {}, 503, "leetcode_rate_limited", 17),
    ("server-error", "https", {}, 503, "leetcode_unavailable", 30),
    ("slow", "https", {"LEETCODE_TIMEOUT_MS": "500"}, 503, "leetcode_unavailable", 30),
    ("huge", "https", {}, 502, "leetcode_bad_response", None),
    ("malformed", "https", {}, 502, "leetcode_bad_response", None),
    ("wrong-shape", "https", {}, 502, "leetcode_bad_response", None),
    ("alice2", "untrusted", {}, 503, "leetcode_unavailable", 30),
    ("alice3", "wrong_host", {}, 503, "leetcode_unavailable", 30),
    ("alice4", "closed", {}, 503, "leetcode_unavailable", 30),
]


@BACKENDS
@pytest.mark.parametrize("username,where,extra,status,code,retry", FAILURES, ids=[f[4] + "-" + f[0] for f in FAILURES])
def test_upstream_failure_claims_nothing(tmp_path, leetcode, backend, username, where, extra, status, code, retry):
    url = "https://127.0.0.1:1/graphql" if where == "closed" else getattr(leetcode, where)
    env = env_for(tmp_path, leetcode, url=url, backend=backend, **extra)
    live = challenge(env, username)
    if username == "nocode":
        leetcode.set_profile("nocode", "no code here")
    result = run(request("verify", username), env)
    assert (result.status, result.code) == (status, code), result.response
    assert result.response["error"].get("retry_after_s") == retry
    if code == "code_not_found":
        assert live in result.response["error"]["message"] and "About me" in result.response["error"]["message"]
    assert sql(env, "SELECT count(*) FROM profiles") == "0\n", "nothing claimed"
    assert sql(env, "SELECT code FROM challenges") == live + "\n", "the challenge stays live"
    assert sql(env, "SELECT event, detail FROM claim_events") == f"verify_failed|{code}\n"
    assert result.logs[-1]["outcome"] == code
    if status >= 500:
        assert result.logs[-1].get("detail"), "the log says which upstream failure it was"


@BACKENDS
def test_challenge_codes_differ_repeat_while_live_expire_and_are_single_use(tmp_path, leetcode, backend):
    env = env_for(tmp_path, leetcode, backend=backend, CLAIM_CHALLENGE_TTL_S="1")
    codes = {challenge(env, "shared", f"user-{i}") for i in range(20)}
    assert len(codes) == 20, "codes differ across users"
    first = challenge(env, "single")
    assert challenge(env, "single") == first, "asking again returns the live code"
    time.sleep(1.2)
    expired = run(request("verify", "single"), env)
    assert expired.code == "no_active_challenge", "an expired code counts as none"
    second = challenge(env, "single")
    assert second != first, "a new code after expiry"
    leetcode.set_profile("single", f"{first} {second}")
    assert run(request("verify", "single"), env).status == 200
    assert run(request("release", "single"), env).status == 200
    reused = run(request("verify", "single"), env)
    assert reused.code == "no_active_challenge", "a consumed code cannot be used again"


@BACKENDS
def test_race_100_verified_users_one_profile(tmp_path, leetcode, backend, capsys):
    env = env_for(tmp_path, leetcode, backend=backend, url_params={"connect_timeout": 60},
                  CLAIM_BUSY_TIMEOUT_MS="60000", LEETCODE_TIMEOUT_MS="30000", CLAIM_LEETCODE_PER_MINUTE="1000")
    users = [f"racer-{i}" for i in range(100)]
    codes = [challenge(env, "contested-lc", u) for u in users]
    leetcode.set_profile("contested-lc", " ".join(codes))
    results = run_all([request("verify", "contested-lc", u) for u in users], env)
    seen = {}
    for r in results:
        key = "200" if r["ok"] else r["error"]["code"]
        seen[key] = seen.get(key, 0) + 1
    with capsys.disabled():
        print(f"\n  race 100 verified users/1 profile {backend.name}: "
              + ", ".join(f"{k}={v}" for k, v in sorted(seen.items())))
    assert seen == {"200": 1, "already_claimed": 99}
    winner = next(r for r in results if r["ok"])["result"]
    assert sql(env, "SELECT claimed_by, claimed_at, synced_at FROM profiles") == \
        f"{winner['claimed_by']}|{winner['claimed_at']}|{winner['profile']['synced_at']}\n"
    assert sql(env, "SELECT count(*) FROM challenges") == "99\n", "only the winner's challenge is consumed"


def test_static_binary_in_empty_chroot_resolves_and_verifies(tmp_path, leetcode):
    """Scratch image: only the binary, a CA file and /etc/hosts; the fake is reached by host name."""
    root = tmp_path / "scratch"
    (root / "etc").mkdir(parents=True)
    shutil.copy(BINARY, root / "leetcode-claim")
    shutil.copy(leetcode.ca, root / "ca.pem")
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    env = {"CLAIM_AUTH": "trusted", "CLAIM_DB": "/data/claims.sqlite", "SSL_CERT_FILE": "/ca.pem",
           "LEETCODE_GRAPHQL_URL": f"https://localhost:{leetcode.port}/graphql"}

    def chrooted(req):
        proc = subprocess.run([shutil.which("chroot") or "/usr/sbin/chroot", str(root), "/leetcode-claim"], input=json.dumps(req).encode(), env=env,
                              capture_output=True, timeout=60)
        return json.loads(proc.stdout), proc.returncode

    response, exit_code = chrooted(request("challenge", "scratch"))
    assert exit_code == 0 and response["ok"], response
    leetcode.set_profile("scratch", response["result"]["code"])
    response, exit_code = chrooted(request("verify", "scratch"))
    assert exit_code == 0 and response["status"] == 200 and response["result"]["verified_via"] == "leetcode", response
    assert sorted(os.listdir(root)) == ["ca.pem", "data", "etc", "leetcode-claim"]


@pytest.mark.parametrize("variable,value", [
    ("HTTPS_PROXY", "http://bob:s3cretpw@127.0.0.1:9"),
    ("LEETCODE_GRAPHQL_URL", "https://bob:s3cretpw@localhost:9/graphql"),
])
def test_credentials_in_urls_never_reach_the_output(tmp_path, leetcode, variable, value):
    env = env_for(tmp_path, leetcode)
    env[variable] = value
    result = run(request("verify", "alice"), env)
    assert (result.status, result.code, result.exit) == (500, "misconfigured", 78)
    assert variable in result.response["error"]["message"]
    assert b"s3cretpw" not in result.stdout and b"s3cretpw" not in result.stderr
