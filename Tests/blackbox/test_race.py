"""Race tests: many real processes at once against one database file.

Each scenario starts every process first and only then writes their requests, so they reach the store as close
together as the machine allows. The busy timeout is raised so that a slow CI disk cannot turn the test into one
about timeouts: here any status other than 200/409 is a failure.
"""
import collections
import json
import random
import subprocess
import time

import pytest

from conftest import BINARY, base_env, check_output

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


def owners(db):
    """username → claimed_by, read with the sqlite3 shell (another process, as other services would)."""
    out = subprocess.run(["sqlite3", "-separator", "|", db,
                          "SELECT username, claimed_by, claimed_at FROM profiles WHERE claimed_by IS NOT NULL"],
                         capture_output=True, text=True, check=True).stdout
    return {u: (o, at) for u, o, at in (line.split("|") for line in out.splitlines())}


def integrity(db):
    return subprocess.run(["sqlite3", db, "PRAGMA integrity_check"], capture_output=True, text=True,
                          check=True).stdout.strip()


def counts(results):
    return collections.Counter(r["error"]["code"] if not r["ok"] else "200" for r in results)


def report(capsys, name, seen):
    with capsys.disabled():
        print(f"\n  race {name}: " + ", ".join(f"{k}={v}" for k, v in sorted(seen.items())))


def prepare(tmp_path, journal, fresh):
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off", CLAIM_JOURNAL=journal,
                   CLAIM_BUSY_TIMEOUT_MS=BUSY_TIMEOUT_MS)
    if not fresh:
        migrated = subprocess.run([BINARY, "migrate"], env=env, capture_output=True)
        assert migrated.returncode == 0, migrated.stdout
    return env, env["CLAIM_DB"]


SCENARIOS = [(j, f) for j in ("wal", "delete") for f in (False, True)]


@pytest.mark.parametrize("journal,fresh", SCENARIOS)
def test_200_users_one_username(tmp_path, capsys, journal, fresh):
    env, db = prepare(tmp_path, journal, fresh)
    requests = [{"action": "verify", "username": "contested", "user_id": f"user-{i}"} for i in range(200)]
    results = run_all(requests, env)
    seen = counts(results)
    report(capsys, f"200 users/1 username journal={journal} fresh={fresh}", seen)
    assert seen == {"200": 1, "already_claimed": 199}
    winner = next(r for r in results if r["ok"])["result"]
    assert owners(db) == {"contested": (winner["claimed_by"], winner["claimed_at"])}
    assert integrity(db) == "ok"


@pytest.mark.parametrize("journal,fresh", SCENARIOS)
def test_one_user_200_usernames(tmp_path, capsys, journal, fresh):
    env, db = prepare(tmp_path, journal, fresh)
    requests = [{"action": "verify", "username": f"name-{i}", "user_id": "greedy"} for i in range(200)]
    results = run_all(requests, env)
    seen = counts(results)
    report(capsys, f"1 user/200 usernames journal={journal} fresh={fresh}", seen)
    assert seen == {"200": 1, "user_has_other_profile": 199}
    winner = next(r for r in results if r["ok"])["result"]
    assert owners(db) == {winner["username"]: ("greedy", winner["claimed_at"])}
    assert integrity(db) == "ok"


@pytest.mark.parametrize("journal,fresh", SCENARIOS)
def test_50_users_20_usernames_1000_processes(tmp_path, capsys, journal, fresh):
    env, db = prepare(tmp_path, journal, fresh)
    rng = random.Random(f"{journal}-{fresh}")
    requests = [{"action": "verify", "username": f"name-{n}", "user_id": f"user-{u}"}
                for u in range(50) for n in range(20)]
    rng.shuffle(requests)
    results = run_all(requests, env, concurrency=100)
    seen = counts(results)
    report(capsys, f"50 users x 20 usernames journal={journal} fresh={fresh}", seen)
    assert set(seen) <= {"200", "already_claimed", "user_has_other_profile"}
    held = owners(db)
    by_user = collections.Counter(owner for owner, _ in held.values())
    assert all(n == 1 for n in by_user.values()), "a user holds two profiles"
    # No acknowledged claim is lost: every 200 is exactly what the database holds.
    for r in results:
        if r["ok"]:
            res = r["result"]
            assert held.get(res["username"]) == (res["claimed_by"], res["claimed_at"])
    assert len(held) == len({(r["result"]["username"]) for r in results if r["ok"]})
    assert len(held) == 20, "with 50 users competing every username ends up claimed"
    assert integrity(db) == "ok"
