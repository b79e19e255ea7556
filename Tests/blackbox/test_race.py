"""Race tests: many real processes at once against one database: an SQLite file, or a PostgreSQL database (directly
and through PgBouncer in transaction pooling mode).

Each scenario starts every process first and only then writes their requests, so they reach the store as close
together as the machine allows. The busy timeout (and PostgreSQL's connect timeout) is raised so that a slow CI disk
cannot turn the test into one about timeouts: here any status other than 200/409 is a failure. "fresh" means a
database the binary has not migrated yet: a file that does not exist, or an empty PostgreSQL database.
"""
import collections
import json
import random
import subprocess
import time

import pytest

from conftest import BINARY, base_env, check_output, db_query

BUSY_TIMEOUT_MS = 60000


def run_all(requests, env, concurrency=None):
    """Runs one process per request, at most `concurrency` alive at once (all at once when None)."""
    pending = list(enumerate(requests))
    results = [None] * len(requests)
    alive = []

    def start(batch):
        procs = [(i, subprocess.Popen([BINARY], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, env=env)) for i, _ in batch]
        for (i, proc), (_, request) in zip(procs, batch):
            proc.stdin.write(json.dumps(request).encode())
            proc.stdin.close()
        return procs

    def reap(proc_list):
        for i, proc in proc_list:
            out = proc.stdout.read()
            proc.wait(timeout=120)
            results[i] = check_output(out, proc.returncode)

    if concurrency is None:
        reap(start(pending))
        return results
    while pending or alive:
        while pending and len(alive) < concurrency:
            alive.extend(start([pending.pop(0)]))
        finished = [p.poll() is not None for _, p in alive]
        if not any(finished):
            time.sleep(0.001)
            continue
        reap([ip for ip, f in zip(alive, finished) if f])
        alive = [ip for ip, f in zip(alive, finished) if not f]
    return results


def owners(env):
    """username → (claimed_by, claimed_at), read by another process (the sqlite3 shell or psql)."""
    out = db_query(env, "SELECT username, claimed_by, claimed_at FROM profiles WHERE claimed_by IS NOT NULL;")
    return {u: (o, at) for u, o, at in (line.split("|") for line in out.splitlines())}


def integrity(backend, env, acknowledged):
    """"ok" when the store is sound: SQLite's integrity_check, or amcheck over PostgreSQL's indexes; and on both,
    one audit event per 200 (each acknowledged verify wrote exactly one, each refused one none)."""
    if backend.is_postgres:
        backend.server.admin_sql("CREATE EXTENSION IF NOT EXISTS amcheck;", backend.database)
        backend.server.admin_sql("SELECT bt_index_check(c.oid, true) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                         "JOIN pg_class t ON t.oid = i.indrelid WHERE t.relname IN ('profiles', 'claim_events', "
                         "'challenges');", backend.database)
        status = "ok"
    else:
        status = db_query(env, "PRAGMA integrity_check;").strip()
    events = int(db_query(env, "SELECT count(*) FROM claim_events;"))
    return status if events == acknowledged else f"{events} events for {acknowledged} acknowledged claims"


def counts(results):
    return collections.Counter(r["error"]["code"] if not r["ok"] else "200" for r in results)


def report(capsys, name, seen):
    with capsys.disabled():
        print(f"\n  race {name}: " + ", ".join(f"{k}={v}" for k, v in sorted(seen.items())))


def prepare(backend, tmp_path, journal, fresh):
    extra = {"CLAIM_JOURNAL": journal} if journal else {}
    env = backend.env(tmp_path, url_params={"connect_timeout": 60}, CLAIM_AUTH="trusted", CLAIM_VERIFY="off",
                      CLAIM_BUSY_TIMEOUT_MS=BUSY_TIMEOUT_MS, **extra)
    if not fresh:
        migrated = subprocess.run([BINARY, "migrate"], env=env, capture_output=True)
        assert migrated.returncode == 0, migrated.stdout
    return env


# SQLite with each journal mode; PostgreSQL, directly and through PgBouncer, where the journal does not apply.
SCENARIOS = [("sqlite", j, f) for j in ("wal", "delete") for f in (False, True)] + [
    (b, None, f) for b in ("postgres", "pgbouncer") for f in (False, True)]


def label(backend, journal, fresh):
    return f"{backend.name}" + (f" journal={journal}" if journal else "") + f" fresh={fresh}"


@pytest.mark.parametrize("backend,journal,fresh", SCENARIOS, indirect=["backend"])
def test_200_users_one_username(backend, tmp_path, capsys, journal, fresh):
    env = prepare(backend, tmp_path, journal, fresh)
    requests = [{"action": "verify", "username": "contested", "user_id": f"user-{i}"} for i in range(200)]
    results = run_all(requests, env)
    seen = counts(results)
    report(capsys, f"200 users/1 username {label(backend, journal, fresh)}", seen)
    assert seen == {"200": 1, "already_claimed": 199}
    winner = next(r for r in results if r["ok"])["result"]
    assert owners(env) == {"contested": (winner["claimed_by"], winner["claimed_at"])}
    assert integrity(backend, env, seen["200"]) == "ok"


@pytest.mark.parametrize("backend,journal,fresh", SCENARIOS, indirect=["backend"])
def test_one_user_200_usernames(backend, tmp_path, capsys, journal, fresh):
    env = prepare(backend, tmp_path, journal, fresh)
    requests = [{"action": "verify", "username": f"name-{i}", "user_id": "greedy"} for i in range(200)]
    results = run_all(requests, env)
    seen = counts(results)
    report(capsys, f"1 user/200 usernames {label(backend, journal, fresh)}", seen)
    assert seen == {"200": 1, "user_has_other_profile": 199}
    winner = next(r for r in results if r["ok"])["result"]
    assert owners(env) == {winner["username"]: ("greedy", winner["claimed_at"])}
    assert integrity(backend, env, seen["200"]) == "ok"


@pytest.mark.parametrize("backend,journal,fresh", SCENARIOS, indirect=["backend"])
def test_50_users_20_usernames_1000_processes(backend, tmp_path, capsys, journal, fresh):
    env = prepare(backend, tmp_path, journal, fresh)
    rng = random.Random(f"{journal}-{fresh}")
    requests = [{"action": "verify", "username": f"name-{n}", "user_id": f"user-{u}"}
                for u in range(50) for n in range(20)]
    rng.shuffle(requests)
    results = run_all(requests, env, concurrency=100)
    seen = counts(results)
    report(capsys, f"50 users x 20 usernames {label(backend, journal, fresh)}", seen)
    assert set(seen) <= {"200", "already_claimed", "user_has_other_profile"}
    held = owners(env)
    by_user = collections.Counter(owner for owner, _ in held.values())
    assert all(n == 1 for n in by_user.values()), "a user holds two profiles"
    # No acknowledged claim is lost: every 200 is exactly what the database holds.
    for r in results:
        if r["ok"]:
            res = r["result"]
            assert held.get(res["username"]) == (res["claimed_by"], res["claimed_at"])
    assert len(held) == len({(r["result"]["username"]) for r in results if r["ok"]})
    assert len(held) == 20, "with 50 users competing every username ends up claimed"
    assert integrity(backend, env, seen["200"]) == "ok"


@pytest.mark.parametrize("backend,journal,fresh", [s for s in SCENARIOS if s[1] != "delete"], indirect=["backend"])
def test_50_concurrent_challenges_by_one_caller_get_one_code(backend, tmp_path, capsys, journal, fresh):
    env = prepare(backend, tmp_path, journal, fresh)
    requests = [{"action": "challenge", "username": "alice", "user_id": "user-1"}] * 50
    results = run_all(requests, env)
    codes = collections.Counter(r["result"]["code"] if r["ok"] else r["error"]["code"] for r in results)
    report(capsys, f"50 challenges by one caller {label(backend, journal, fresh)}", {"distinct codes": len(codes)})
    assert len(codes) == 1 and all(r["ok"] for r in results), codes
    code = next(iter(codes))
    assert db_query(env, "SELECT user_id, username, code FROM challenges;") == f"user-1|alice|{code}\n"


# A burst with the default settings (CLAIM_BUSY_TIMEOUT_MS 3000, not the 60 s above): every process must still get its
# turn at the write lock in time. bench/burst.sh runs each shape 10 times in a row and reports the latencies.
BURSTS = [(j, f, shape) for j in ("wal", "delete") for f in (True, False) for shape in ("1x300", "300x1")]


@pytest.mark.parametrize("journal,fresh,shape", BURSTS)
def test_burst_of_300_processes_with_default_settings_answers_only_200_and_409(tmp_path, capsys, journal, fresh, shape):
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off", CLAIM_JOURNAL=journal)
    if not fresh:
        assert subprocess.run([BINARY, "migrate"], env=env, capture_output=True).returncode == 0
    if shape == "1x300":
        requests = [{"action": "verify", "username": f"name-{i}", "user_id": "greedy"} for i in range(300)]
    else:
        requests = [{"action": "verify", "username": "contested", "user_id": f"user-{i}"} for i in range(300)]
    results = run_all(requests, env)
    seen = counts(results)
    report(capsys, f"burst {shape} journal={journal} fresh={fresh} (default timeout)", seen)
    assert seen["200"] == 1 and set(seen) <= {"200", "already_claimed", "user_has_other_profile"}, seen
    winner = next(r for r in results if r["ok"])["result"]
    assert owners(env) == {winner["username"]: (winner["claimed_by"], winner["claimed_at"])}
