"""Faults and durability over the real binary: kill -9, read-only and full volumes, corrupt files, lost stdout.

The promise under test: an acknowledged claim (a 200 verify) is never lost, the database is never left
inconsistent, and every failure is one JSON line with the documented exit code.
"""
import collections
import json
import os
import pathlib
import random
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import BINARY, base_env, check_output, db_query, run
from leetcode_fixture import leetcode  # noqa: F401 (a fixture)

USERS = [f"user-{i}" for i in range(40)]
NAMES = [f"name-{i}" for i in range(40)]


def sqlite(db, query):
    return subprocess.run(["sqlite3", db, query], capture_output=True, text=True, check=True).stdout


class Invocation:
    def __init__(self, request):
        self.request = request
        self.started = self.ended = None
        self.signal = None
        self.response = None


def invoke(inv, env, rng_seed, kill_rate, term_rate, window):
    """Runs one process; may have it signalled at a random moment within `window` seconds of its start.

    The signal comes from coreutils' `timeout` (a timer in its own process), not from this thread: with 32
    Python threads sharing the GIL, a sleep here would wake too late to hit a request that lives 2 ms.
    """
    rng = random.Random(rng_seed)
    roll = rng.random()
    sig = signal.SIGKILL if roll < kill_rate else signal.SIGTERM if roll < kill_rate + term_rate else None
    command = [BINARY]
    if sig is not None:
        command = ["timeout", "--preserve-status", "-s", sig.name[3:], f"{rng.uniform(0, window):.6f}", BINARY]
    inv.started = time.monotonic()
    proc = subprocess.run(command, input=json.dumps(inv.request).encode(), stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, env=env, timeout=120)
    inv.ended = time.monotonic()
    out = proc.stdout
    # timeout --preserve-status exits 128 + the signal that ended the binary (which itself never exits above 78);
    # with KILL it signals its whole process group, itself included, so it dies by the signal too.
    if proc.returncode in (128 + signal.SIGKILL, 128 + signal.SIGTERM, -signal.SIGKILL, -signal.SIGTERM):
        inv.signal = abs(proc.returncode) % 128
        # A response line written completely before the kill was seen by the caller: it counts as acknowledged.
        if out.endswith(b"\n"):
            inv.response = json.loads(out)
    else:
        inv.response = check_output(out, proc.returncode)
    return inv


def chaos(env, requests, seed, workers=32, kill_rate=0.12, term_rate=0.03, window=0.004, on_result=None):
    invocations = [Invocation(r) for r in requests]

    def one(item):
        i, inv = item
        invoke(inv, env, f"{seed}-{i}", kill_rate, term_rate, window)
        if on_result:
            on_result(inv)
        return inv

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, enumerate(invocations)))
    return invocations


def check_invariants(env, invocations, capsys, label):
    """On SQLite or PostgreSQL (whichever `env` selects; PostgreSQL's own integrity is the caller's to check)."""
    if "CLAIM_DB" in env:
        assert sqlite(env["CLAIM_DB"], "PRAGMA integrity_check").strip() == "ok"
    owners = {}
    for line in db_query(env, "SELECT username, claimed_by, claimed_at FROM profiles WHERE claimed_by IS NOT NULL;")\
            .splitlines():
        username, owner, at = line.split("|")
        owners[username] = (owner, at)
    per_user = collections.Counter(owner for owner, _ in owners.values())
    assert all(n == 1 for n in per_user.values()), "a user holds two profiles"

    # Every acknowledged verify is in the database unless the same user may since have released it.
    releases = collections.defaultdict(list)
    for inv in invocations:
        if inv.request["action"] == "release":
            releases[(inv.request["user_id"], inv.request["username"])].append(inv)
    lost = 0
    acknowledged = 0
    for inv in invocations:
        r = inv.response
        if inv.request["action"] != "verify" or not r or not r["ok"]:
            continue
        acknowledged += 1
        key = (inv.request["user_id"], r["result"]["username"])
        if any(rel.ended > inv.started for rel in releases[key]):
            continue
        if owners.get(key[1]) != (key[0], r["result"]["claimed_at"]):
            lost += 1

    outcomes = collections.Counter(
        f"killed({signal.Signals(inv.signal).name})" if inv.signal and not inv.response
        else ("200" if inv.response["ok"] else inv.response["error"]["code"])
        for inv in invocations)
    with capsys.disabled():
        print(f"\n  chaos {label}: invocations={len(invocations)}, "
              f"killed by SIGKILL={sum(1 for i in invocations if i.signal == signal.SIGKILL)}, "
              f"by SIGTERM={sum(1 for i in invocations if i.signal == signal.SIGTERM)}, "
              f"acknowledged verifies={acknowledged}, lost claims={lost}; "
              + ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items())))
    assert lost == 0
    return owners


def assert_nothing_blocked(env, owners):
    """A fresh claim on every free username succeeds: no lock, journal or WAL left behind blocks writers."""
    free = [n for n in NAMES if n not in owners]
    for i, name in enumerate(free):
        result = run({"action": "verify", "username": name, "user_id": f"fresh-{i}"}, env)
        assert result.status == 200, result.response


def mixed_requests(rng, count, actions):
    return [{"action": rng.choice(actions), "username": rng.choice(NAMES), "user_id": rng.choice(USERS),
             "request_id": f"chaos-{i}"} for i in range(count)]


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_chaos_verify_off(tmp_path, capsys, journal):
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off", CLAIM_JOURNAL=journal,
                   CLAIM_BUSY_TIMEOUT_MS="10000")
    rng = random.Random(f"chaos-{journal}")
    requests = mixed_requests(rng, 2000, ["verify"] * 6 + ["release"] * 2 + ["status"] * 2)
    invocations = chaos(env, requests, seed=journal)
    owners = check_invariants(env, invocations, capsys, f"verify=off journal={journal}")
    assert_nothing_blocked(base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off", CLAIM_JOURNAL=journal),
                           owners)


def test_chaos_with_leetcode(tmp_path, capsys, leetcode):
    # Limits at their maximum: this run is about claims through LeetCode; test_limits.py runs chaos through them.
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="leetcode", CLAIM_BUSY_TIMEOUT_MS="10000",
                   LEETCODE_GRAPHQL_URL=leetcode.https, SSL_CERT_FILE=leetcode.ca, LEETCODE_TIMEOUT_MS="20000",
                   CLAIM_MAX_LIVE_CHALLENGES="100", CLAIM_VERIFY_PER_HOUR="10000", CLAIM_LEETCODE_PER_MINUTE="100000")
    for name in NAMES:
        leetcode.set_profile(name, "")

    def publish(inv):
        r = inv.response
        if r and r["ok"] and inv.request["action"] == "challenge":
            leetcode.add_code(r["result"]["username"], r["result"]["code"])

    rng = random.Random("chaos-leetcode")
    requests = mixed_requests(rng, 2000, ["challenge"] * 3 + ["verify"] * 4 + ["release"] * 2 + ["status"])
    invocations = chaos(env, requests, seed="leetcode", window=0.015, on_result=publish)
    owners = check_invariants(env, invocations, capsys, "verify=leetcode journal=wal")
    assert_nothing_blocked(base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off"), owners)


VERIFY = {"action": "verify", "username": "alice", "user_id": "user-1", "request_id": "r1"}


def as_nobody():
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


def run_as(request, env, preexec, binary=BINARY):
    proc = subprocess.run([binary], input=json.dumps(request).encode(), env=env, capture_output=True, timeout=60,
                          preexec_fn=preexec)
    return check_output(proc.stdout, proc.returncode), proc.returncode


@pytest.mark.parametrize("journal", ["wal", "delete"])
@pytest.mark.parametrize("what", ["file", "folder"])
def test_read_only_database_is_store_unavailable(tmp_path, journal, what):
    """Run as an unprivileged user: root ignores file modes."""
    # pytest's own temporary folders are private to root; nobody must be able to reach the database.
    base = tempfile.mkdtemp(prefix="leetcode-claim-ro-", dir="/tmp")
    os.chmod(base, 0o755)
    # So is the checkout CI runs in, maybe: nobody runs its own copy of the binary.
    binary = shutil.copy(BINARY, os.path.join(base, "leetcode-claim"))
    os.chmod(binary, 0o755)
    env = base_env(pathlib.Path(base), CLAIM_AUTH="trusted", CLAIM_VERIFY="off", CLAIM_JOURNAL=journal)
    assert run(VERIFY, env).status == 200
    folder = os.path.dirname(env["CLAIM_DB"])
    if what == "file":
        os.chmod(folder, 0o777)
        os.chmod(env["CLAIM_DB"], 0o444)
    else:
        os.chmod(env["CLAIM_DB"], 0o666)
        os.chmod(folder, 0o555)
    for request in (VERIFY, {**VERIFY, "action": "status"}, {**VERIFY, "username": "bob", "user_id": "u2"}):
        response, exit_code = run_as(request, env, as_nobody, binary)
        assert (response["status"], response["error"]["code"], exit_code) == (500, "store_unavailable", 70)
        assert "read-only" in response["error"]["message"]
    os.chmod(folder, 0o755)
    assert sqlite(env["CLAIM_DB"], "SELECT claimed_by FROM profiles") == "user-1\n"
    shutil.rmtree(base)


@pytest.fixture
def small_volume(tmp_path):
    """A 160 KiB tmpfs, if this machine lets us mount one."""
    mount_point = tmp_path / "volume"
    mount_point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount_point)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here; the RLIMIT_FSIZE variant covers a full volume")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill_until_refused(env, preexec=None):
    """Claims distinct usernames until the store refuses; returns the acknowledged (username, user) pairs."""
    acknowledged = []
    for i in range(5000):
        request = {"action": "verify", "username": f"n{i}-" + "x" * 50, "user_id": f"u{i}-" + "y" * 100}
        response, exit_code = run_as(request, env, preexec) if preexec else (lambda r: (r.response, r.exit))(
            run(request, env))
        if response["ok"]:
            acknowledged.append((request["username"], request["user_id"]))
            continue
        assert (response["status"], response["error"]["code"], exit_code) == (500, "store_unavailable", 70), \
            response
        return acknowledged, response["error"]["message"]
    pytest.fail("the volume never filled up")


def test_full_volume_is_store_unavailable_and_recovers(small_volume, tmp_path):
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off", CLAIM_DB=str(small_volume / "claims.sqlite"))
    acknowledged, message = fill_until_refused(env)
    assert "full" in message
    subprocess.run(["mount", "-o", "remount,size=4m", str(small_volume)], check=True)
    assert sqlite(env["CLAIM_DB"], "PRAGMA integrity_check").strip() == "ok"
    stored = set(tuple(line.split("|")) for line in
                 sqlite(env["CLAIM_DB"], "SELECT username, claimed_by FROM profiles").splitlines())
    assert set(acknowledged) <= stored, "an acknowledged claim was lost when the volume filled"
    assert run({"action": "verify", "username": "after-space", "user_id": "late"}, env).status == 200


def test_file_size_limit_is_store_unavailable_and_recovers(tmp_path):
    """The portable stand-in for a full volume: RLIMIT_FSIZE, with SIGXFSZ ignored by the binary."""
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off", CLAIM_JOURNAL="delete")
    assert run({"action": "status", "username": "x", "user_id": "u"}, env).status == 200

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (96 * 1024, 96 * 1024))

    acknowledged, _ = fill_until_refused(env, limited)
    assert sqlite(env["CLAIM_DB"], "PRAGMA integrity_check").strip() == "ok"
    stored = set(tuple(line.split("|")) for line in
                 sqlite(env["CLAIM_DB"], "SELECT username, claimed_by FROM profiles").splitlines())
    assert set(acknowledged) <= stored
    assert run({"action": "verify", "username": "after-space", "user_id": "late"}, env).status == 200


def corrupt_variants(tmp_path):
    env = base_env(tmp_path / "src", CLAIM_AUTH="trusted", CLAIM_VERIFY="off", CLAIM_JOURNAL="delete")
    for i in range(300):
        assert run({"action": "verify", "username": f"name-{i}", "user_id": f"user-{i}"}, env).status == 200
    good = open(env["CLAIM_DB"], "rb").read()
    rng = random.Random(7)
    return {
        "random bytes": bytes(rng.randrange(256) for _ in range(16384)),
        "truncated to half": good[: len(good) // 2],
        "truncated mid-page": good[: 4096 * 2 + 1000],
        "truncated to 100 bytes": good[:100],
        "header only garbage": b"SQLite format 3\x00" + bytes(rng.randrange(256) for _ in range(8176)),
        "text file": b"not a database\n" * 100,
    }


def test_corrupt_file_is_store_unavailable_and_never_overwritten(tmp_path):
    for name, content in corrupt_variants(tmp_path).items():
        for journal in ("wal", "delete"):
            env = base_env(tmp_path / f"{name}-{journal}".replace(" ", "_"), CLAIM_AUTH="trusted",
                           CLAIM_VERIFY="off", CLAIM_JOURNAL=journal)
            os.makedirs(os.path.dirname(env["CLAIM_DB"]))
            with open(env["CLAIM_DB"], "wb") as f:
                f.write(content)
            for action in ("verify", "status", "release", "challenge"):
                result = run({"action": action, "username": "name-1", "user_id": "user-1"}, env)
                assert (result.status, result.code, result.exit) == (500, "store_unavailable", 70), \
                    (name, journal, action, result.response)
            assert open(env["CLAIM_DB"], "rb").read() == content, f"{name} was modified"


SCHEMA_V1 = """
CREATE TABLE profiles (username TEXT PRIMARY KEY, claimed_by TEXT, claimed_at TEXT, verified_via TEXT,
    real_name TEXT, avatar_url TEXT, ranking INTEGER, solved_easy INTEGER, solved_medium INTEGER,
    solved_hard INTEGER, solved_all INTEGER, synced_at TEXT);
CREATE UNIQUE INDEX profiles_one_per_user ON profiles (claimed_by) WHERE claimed_by IS NOT NULL;
CREATE TABLE claim_events (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, event TEXT NOT NULL,
    username TEXT NOT NULL, user_id TEXT NOT NULL, request_id TEXT, detail TEXT);
CREATE TRIGGER claim_events_append_only_update BEFORE UPDATE ON claim_events
    BEGIN SELECT RAISE(ABORT, 'claim_events is append-only'); END;
CREATE TRIGGER claim_events_append_only_delete BEFORE DELETE ON claim_events
    BEGIN SELECT RAISE(ABORT, 'claim_events is append-only'); END;
CREATE TABLE challenges (user_id TEXT NOT NULL, username TEXT NOT NULL, code TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL, expires_at TEXT NOT NULL, PRIMARY KEY (user_id, username));
INSERT INTO profiles (username, claimed_by, claimed_at, verified_via)
    VALUES ('alice', 'user-1', '2026-01-02T03:04:05.678Z', 'none');
INSERT INTO claim_events (at, event, username, user_id) VALUES ('2026-01-02T03:04:05.678Z', 'claim', 'alice', 'user-1');
PRAGMA user_version = 1;
"""


def test_older_schema_is_migrated_in_place(tmp_path):
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off")
    os.makedirs(os.path.dirname(env["CLAIM_DB"]))
    subprocess.run(["sqlite3", env["CLAIM_DB"]], input=SCHEMA_V1, text=True, check=True)
    result = run({"action": "status", "username": "alice", "user_id": "user-1"}, env)
    assert result.response["result"] == {"username": "alice", "claimed": True, "mine": True,
                                         "claimed_at": "2026-01-02T03:04:05.678Z"}
    assert sqlite(env["CLAIM_DB"], "PRAGMA user_version") == "3\n"
    assert "challenges_expiry" in sqlite(env["CLAIM_DB"], "SELECT name FROM sqlite_schema WHERE type = 'index'")
    assert sqlite(env["CLAIM_DB"], "SELECT count(*) FROM claim_events") == "1\n"


def test_migrate_command(tmp_path):
    env = base_env(tmp_path)
    proc = subprocess.run([BINARY, "migrate"], env=env, capture_output=True, timeout=60)
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == {"ok": True, "database": env["CLAIM_DB"], "schema_version": 3,
                                       "journal_mode": "wal"}
    newer = base_env(tmp_path / "newer")
    os.makedirs(os.path.dirname(newer["CLAIM_DB"]))
    sqlite(newer["CLAIM_DB"], "PRAGMA user_version = 7")
    proc = subprocess.run([BINARY, "migrate"], env=newer, capture_output=True, timeout=60)
    assert proc.returncode == 70 and json.loads(proc.stdout)["error"]["code"] == "store_unavailable"


@pytest.mark.parametrize("how", ["closed", "broken pipe"])
def test_lost_stdout_exits_74_and_a_retry_is_idempotent(tmp_path, how):
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off")
    if how == "closed":
        proc = subprocess.run(["sh", "-c", f'exec "{BINARY}" >&-'], input=json.dumps(VERIFY).encode(), env=env,
                              stderr=subprocess.PIPE, timeout=60)
    else:
        read_end, write_end = os.pipe()
        os.close(read_end)
        proc = subprocess.run([BINARY], input=json.dumps(VERIFY).encode(), env=env, stdout=write_end,
                              stderr=subprocess.PIPE, timeout=60)
        os.close(write_end)
    assert proc.returncode == 74
    log = json.loads(proc.stderr.decode().splitlines()[-1])
    assert log["outcome"] == "ok" and log["stdout"].startswith("lost")
    committed = sqlite(env["CLAIM_DB"], "SELECT claimed_at FROM profiles WHERE username = 'alice'").strip()
    retry = run(VERIFY, env)
    assert retry.status == 200 and retry.response["result"]["claimed_at"] == committed


def test_sigterm_before_commit_leaves_nothing_half_written(tmp_path):
    """A runtime's timeout SIGTERM while the write lock is held elsewhere: the process dies, nothing is written."""
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off", CLAIM_BUSY_TIMEOUT_MS="30000")
    assert run({"action": "status", "username": "alice", "user_id": "user-1"}, env).status == 200
    holder = subprocess.Popen(["sqlite3", env["CLAIM_DB"]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    holder.stdin.write("BEGIN IMMEDIATE;\nSELECT 'locked';\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "locked"
    proc = subprocess.Popen([BINARY], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdin.write(json.dumps(VERIFY).encode())
    proc.stdin.close()
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM
    assert proc.stdout.read() == b"", "no response was acknowledged"
    holder.stdin.write("ROLLBACK;\n.quit\n")
    holder.stdin.close()
    holder.wait(timeout=10)
    assert sqlite(env["CLAIM_DB"], "SELECT count(*) FROM profiles") == "0\n"
    assert run(VERIFY, env).status == 200
