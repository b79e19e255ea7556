"""State across invocations of the Lambda runtime, under the emulator: 200 invocations on one process (the store
kept, nothing of one invocation in the next, a store_busy then a success, PostgreSQL restarted in between), a dead
PostgreSQL connection replaced within the invocation, waits cut to Lambda's deadline, a consumed challenge, and 50
emulators racing for one profile.
"""
import os
import pathlib
import random
import socket
import subprocess
import threading
import time

import pytest

import lambda_emulator as lam
from lambda_emulator import emulators  # noqa: F401 (a fixture)
from conftest import POSTGRES_SCRIPT, VALIDATOR, base_env, db_query, start_postgres
from leetcode_fixture import leetcode  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def private_postgres():
    """A server of this module's own: it is restarted, and one database gets an idle-session timeout."""
    server, stop = start_postgres()
    try:
        yield server
    finally:
        stop()


def postgres_env(server, database, tmp_path, port=None, **extra):
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off", **extra)
    del env["CLAIM_DB"]
    url = server.url_for(database)
    env["CLAIM_DATABASE_URL"] = url if port is None else url.replace(f":{server.port}/", f":{port}/")
    return env


def sqlite_env(tmp_path, **extra):
    return base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off", **extra)


def backend_pids(server, database):
    """The server processes serving our connections to `database` (application_name leetcode-claim)."""
    rows = server.admin_sql(f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}' "
                            "AND application_name = 'leetcode-claim' ORDER BY pid")
    return [int(pid) for pid in rows.split()]


def database_fds(pid, path):
    """The runtime's open file descriptors on the SQLite file: (fd, inode)."""
    fds = []
    for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == str(path):
                fds.append((int(fd.name), os.stat(fd).st_ino))
        except OSError:
            pass
    return sorted(fds)


def ask(emulator, shape, request, status, code=None):
    response = lam.answer(shape, emulator.invoke_ok(lam.event(shape, request)))
    assert not list(VALIDATOR.iter_errors(response)), response
    assert response["status"] == status and (response.get("error") or {}).get("code") == code, (request, response)
    return response


class Model:
    """Who owns what, as the contract says it must be after each answer."""

    def __init__(self):
        self.owner = {}
        self.held = {}

    def expect(self, action, user, name):
        owner, held = self.owner.get(name), self.held.get(user)
        if action == "status":
            return 200, None
        if action == "release":
            if owner is None:
                return 404, "not_claimed"
            if owner != user:
                return 403, "not_owner"
            del self.owner[name], self.held[user]
            return 200, None
        if owner not in (None, user):
            return 409, "already_claimed"
        if held not in (None, name):
            return 409, "user_has_other_profile"
        if action == "verify":
            self.owner[name], self.held[user] = user, name
        return 200, None


class Hold:
    """A lock held by another client of the store: the sqlite3 shell's exclusive transaction, or psql's
    `LOCK TABLE profiles IN EXCLUSIVE MODE` (reads go on, writes wait)."""

    def __init__(self, env):
        if env.get("CLAIM_DATABASE_URL"):
            command = ["psql", "-X", "-q", "-At", env["CLAIM_DATABASE_URL"]]
            sql = "BEGIN;\nLOCK TABLE profiles IN EXCLUSIVE MODE;\nSELECT 'locked';\n"
        else:
            command = ["sqlite3", env["CLAIM_DB"]]
            sql = "BEGIN EXCLUSIVE;\nSELECT 'locked';\n"
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.proc.stdin.write(sql)
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "locked"

    def release(self):
        self.proc.stdin.write("ROLLBACK;\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=lam.TIMEOUT)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_two_hundred_invocations_on_one_process(store, private_postgres, tmp_path, emulators):
    if store == "postgres":
        database = private_postgres.create_database()
        env = postgres_env(private_postgres, database, tmp_path, CLAIM_BUSY_TIMEOUT_MS="300")
    else:
        env = sqlite_env(tmp_path, CLAIM_BUSY_TIMEOUT_MS="300")
    emulator = emulators(env)
    model, rng, sent, outcomes = Model(), random.Random(11), [], {}
    kept = []  # the store's identity: the SQLite file's descriptors, or PostgreSQL's serving process
    for i in range(200):
        shape = lam.SHAPES[i % len(lam.SHAPES)]
        request_id = f"r-{i}" if i % 3 else None
        if i == 100:
            # A store_busy answer, then the same request succeeds: the failed transaction left nothing open.
            hold = Hold(env)
            try:
                busy = ask(emulator, shape, {"action": "verify", "username": "busy", "user_id": "u-busy"}, 503,
                           "store_busy")
                assert busy["error"]["retry_after_s"] >= 1
            finally:
                hold.release()
            sent.append(None)
            outcomes["store_busy"] = outcomes.get("store_busy", 0) + 1
        if store == "postgres" and i == 150:
            subprocess.run([str(POSTGRES_SCRIPT), "halt", str(private_postgres.folder)], check=True)
            subprocess.run([str(POSTGRES_SCRIPT), "resume", str(private_postgres.folder)], check=True)
        if i % 11 == 5:
            request, (status, code) = b"{not json", (400, "invalid_json")
        else:
            user, name = f"u{rng.randrange(8)}", f"p{rng.randrange(12)}"
            action = rng.choice(["verify", "verify", "status", "release", "challenge"])
            if i == 100:
                user, name, action = "u-busy", "busy", "verify"
            request = {"action": action, "username": name}
            if i % 7 == 3:
                status, code = 401, "unauthenticated"  # no user_id: nothing of the last caller is reused
            else:
                request["user_id"] = user
                status, code = model.expect(action, user, name)
            if request_id:
                request["request_id"] = request_id
        response = ask(emulator, shape, request, status, code)
        sent.append(request_id if isinstance(request, dict) else None)
        assert response["request_id"] == (request_id if isinstance(request, dict) else None)
        if isinstance(request, dict) and status == 200 and request["action"] == "status":
            owner = model.owner.get(request["username"])
            assert response["result"]["claimed"] == (owner is not None)
            assert response["result"]["mine"] == (owner == request.get("user_id"))
        outcomes[code or "ok"] = outcomes.get(code or "ok", 0) + 1
        if i in (1, 149, 199):
            pid = emulator.runtime_pid()
            kept.append(backend_pids(private_postgres, database) if store == "postgres"
                        else database_fds(pid, env["CLAIM_DB"]))
    logs = emulator.our_log_lines()
    print(f"{store}: {len(logs)} invocations on pid {emulator.runtime_pid()}: {sorted(outcomes.items())}; "
          f"store kept as {kept}")
    assert len(emulator.runtime_pids()) == 1
    assert [line["aws_request_id"] for line in logs] == [rid for rid, _ in emulator.reports()]
    assert [line["request_id"] for line in logs] == sent
    if store == "postgres":
        # One connection, kept; replaced once, after the restart.
        assert all(len(pids) == 1 for pids in kept)
        assert kept[0] == kept[1] != kept[2]
    else:
        assert kept[0] and kept[0] == kept[1] == kept[2]


class DroppingProxy:
    """A TCP relay in front of PostgreSQL that, once told, drops the next connection on which the client speaks:
    the server never sees the statement and the client reads end of file (what a connection that died while idle
    does when nothing came back to say so)."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.drop = threading.Event()
        self.dropped = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source, target, from_client):
        try:
            while data := source.recv(65536):
                if from_client and self.drop.is_set():
                    self.drop.clear()
                    self.dropped += 1
                    break
                target.sendall(data)
        except OSError:
            pass
        for s in (source, target):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.listener.close()


@pytest.mark.parametrize("how", ["restart", "terminated", "idle_session_timeout", "dropped_at_first_use"])
def test_a_dead_postgres_connection_is_replaced_within_the_invocation(how, private_postgres, tmp_path, emulators):
    server = private_postgres
    database = server.create_database()
    proxy = DroppingProxy(server.port) if how == "dropped_at_first_use" else None
    if how == "idle_session_timeout":
        server.admin_sql(f"ALTER DATABASE {database} SET idle_session_timeout = '1s'")
    env = postgres_env(server, database, tmp_path, port=proxy.port if proxy else None)
    emulator = emulators(env)
    try:
        ask(emulator, "raw", {"action": "verify", "username": "gina", "user_id": "u1"}, 200)
        before = backend_pids(server, database)
        if how == "restart":
            subprocess.run([str(POSTGRES_SCRIPT), "halt", str(server.folder)], check=True)
            # No server: the one reconnection fails, and the answer says so.
            down = ask(emulator, "function-url", {"action": "status", "username": "gina", "user_id": "u1"}, 503,
                       "store_unreachable")
            assert down["error"]["retry_after_s"] == 1
            subprocess.run([str(POSTGRES_SCRIPT), "resume", str(server.folder)], check=True)
        elif how == "terminated":
            server.admin_sql(f"SELECT pg_terminate_backend({before[0]})")
        elif how == "idle_session_timeout":
            deadline = time.monotonic() + lam.TIMEOUT
            while backend_pids(server, database) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not backend_pids(server, database), "the server did not end the idle session"
        else:
            proxy.drop.set()
        won = ask(emulator, "rest-api", {"action": "verify", "username": "gina", "user_id": "u1"}, 200)
        after = backend_pids(server, database)
        print(f"{how}: served by backend {before} then {after}; outcomes "
              f"{[line['outcome'] for line in emulator.our_log_lines()]}"
              + (f"; proxy dropped {proxy.dropped}" if proxy else ""))
        assert won["result"]["claimed_by"] == "u1"
        assert len(before) == 1 and len(after) == 1 and before != after
        assert len(emulator.runtime_pids()) == 1
        if proxy:
            assert proxy.dropped == 1
    finally:
        if proxy:
            proxy.close()


def test_a_transaction_on_a_replaced_connection_runs_from_begin(private_postgres, tmp_path, emulators):
    """A kept connection found dead at a challenge's first round trip (its BEGIN and lock_timeout travel in that
    round trip) is replaced and the whole transaction runs again from BEGIN: a row lock held by another client is
    then met by lock_timeout (store_busy), not waited for without one until the connection's deadline."""
    server = private_postgres
    database = server.create_database()
    proxy = DroppingProxy(server.port)
    env = postgres_env(server, database, tmp_path, port=proxy.port, CLAIM_BUSY_TIMEOUT_MS="1000")
    emulator = emulators(env)
    try:
        code = ask(emulator, "raw", {"action": "challenge", "username": "jane", "user_id": "u1"}, 200)
        hold = subprocess.Popen(["psql", "-X", "-q", "-At", server.url_for(database)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        hold.stdin.write("BEGIN;\nSELECT 'locked' FROM challenges WHERE user_id = 'u1' FOR UPDATE;\n")
        hold.stdin.flush()
        assert hold.stdout.readline().strip() == "locked"
        try:
            proxy.drop.set()
            ask(emulator, "raw", {"action": "challenge", "username": "jane", "user_id": "u1"}, 503, "store_busy")
        finally:
            hold.stdin.write("ROLLBACK;\n")
            hold.stdin.close()
            hold.wait(timeout=lam.TIMEOUT)
        again = ask(emulator, "raw", {"action": "challenge", "username": "jane", "user_id": "u1"}, 200)
        print(f"challenge on a replaced connection: outcomes {[line['outcome'] for line in emulator.our_log_lines()]}"
              f"; proxy dropped {proxy.dropped}")
        assert again["result"]["code"] == code["result"]["code"] and proxy.dropped == 1
    finally:
        proxy.close()


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_long_lock_wait_is_cut_to_the_deadline(store, private_postgres, tmp_path, emulators):
    """CLAIM_BUSY_TIMEOUT_MS=60000 under a 3 s function timeout: the wait ends in time to answer 503 store_busy
    (the emulator would otherwise answer "Task timed out" and kill the process)."""
    if store == "postgres":
        env = postgres_env(private_postgres, private_postgres.create_database(), tmp_path,
                           CLAIM_BUSY_TIMEOUT_MS="60000")
    else:
        env = sqlite_env(tmp_path, CLAIM_BUSY_TIMEOUT_MS="60000")
    emulator = emulators(env, timeout_s=3)
    ask(emulator, "raw", {"action": "status", "username": "hal", "user_id": "u1"}, 200)
    pid = emulator.runtime_pid()
    hold = Hold(env)
    try:
        ask(emulator, "http-api", {"action": "verify", "username": "hal", "user_id": "u1"}, 503, "store_busy")
    finally:
        hold.release()
    ask(emulator, "raw", {"action": "verify", "username": "hal", "user_id": "u1"}, 200)
    log = emulator.log()
    print(f"{store}: {[line['outcome'] for line in emulator.our_log_lines()]}, REPORTs {emulator.reports()}")
    assert "Task timed out" not in log and emulator.runtime_pids() == [pid]


def test_a_slow_leetcode_is_answered_before_the_deadline(leetcode, tmp_path, emulators):  # noqa: F811
    """LEETCODE_TIMEOUT_MS is 5000 and the fake's `slow` user takes 5 s; the function's timeout is 3 s, so only the
    deadline's cap lets the answer (503) out in time, and the same process serves the next invocation."""
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="leetcode", LEETCODE_GRAPHQL_URL=leetcode.http)
    emulator = emulators(env, timeout_s=3)
    ask(emulator, "raw", {"action": "challenge", "username": "slow", "user_id": "u1"}, 200)
    pid = emulator.runtime_pid()
    slow = ask(emulator, "function-url", {"action": "verify", "username": "slow", "user_id": "u1"}, 503,
               "leetcode_unavailable")
    ask(emulator, "raw", {"action": "status", "username": "slow", "user_id": "u1"}, 200)
    (line,) = [line for line in emulator.our_log_lines() if line["outcome"] == "leetcode_unavailable"]
    budget = int(line["detail"].split("within ")[1].split(" ms")[0])
    print(f"slow LeetCode: {slow['error']}, log detail {line['detail']!r}; REPORTs {emulator.reports()}")
    assert budget < 3000  # the exchange was given less than the function's whole time, not LEETCODE_TIMEOUT_MS
    assert "Task timed out" not in emulator.log() and emulator.runtime_pids() == [pid]


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_slow_leetcode_then_a_held_lock_still_answers_in_time(store, private_postgres, leetcode, tmp_path,
                                                                emulators):  # noqa: F811
    """The waits of one invocation share its time: after LeetCode took its share, the write of the verify_failed
    audit event meets a lock held by another client and may wait only for part of what is left, not for a share of
    the whole invocation again (the busy timeout is 60 s, the function's timeout 3 s). The lock is taken once the
    request reached LeetCode, i.e. after the verify took its LeetCode request slot, a write of its own."""
    if store == "postgres":
        env = postgres_env(private_postgres, private_postgres.create_database(), tmp_path,
                           CLAIM_BUSY_TIMEOUT_MS="60000")
    else:
        env = sqlite_env(tmp_path, CLAIM_BUSY_TIMEOUT_MS="60000")
    env.update(CLAIM_VERIFY="leetcode", LEETCODE_GRAPHQL_URL=leetcode.http)
    emulator = emulators(env, timeout_s=3)
    ask(emulator, "raw", {"action": "challenge", "username": "slow", "user_id": "u1"}, 200)
    pid = emulator.runtime_pid()
    start = leetcode.stats()["total"]
    answered = {}

    def verify():
        try:
            answered["response"] = ask(emulator, "function-url",
                                       {"action": "verify", "username": "slow", "user_id": "u1"}, 503,
                                       "leetcode_unavailable")
        except BaseException as error:  # re-raised below, in the test's thread
            answered["error"] = error

    invocation = threading.Thread(target=verify)
    invocation.start()
    deadline = time.monotonic() + 30
    while leetcode.stats()["total"] == start and time.monotonic() < deadline:
        time.sleep(0.01)
    assert leetcode.stats()["total"] == start + 1, "the verify's request reached LeetCode"
    if store == "postgres":
        # The audit event is an insert into claim_events: an EXCLUSIVE table lock makes it wait, reads go on.
        hold = subprocess.Popen(["psql", "-X", "-q", "-At", env["CLAIM_DATABASE_URL"]], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        hold.stdin.write("BEGIN;\nLOCK TABLE claim_events IN EXCLUSIVE MODE;\nSELECT 'locked';\n")
        hold.stdin.flush()
        assert hold.stdout.readline().strip() == "locked"
    else:
        held = Hold(env)
    try:
        invocation.join(timeout=lam.TIMEOUT)
        assert not invocation.is_alive(), "no answer"
        if "error" in answered:
            raise answered["error"]
    finally:
        if store == "postgres":
            hold.stdin.write("ROLLBACK;\n")
            hold.stdin.close()
            hold.wait(timeout=lam.TIMEOUT)
        else:
            held.release()
    ask(emulator, "raw", {"action": "status", "username": "slow", "user_id": "u1"}, 200)
    print(f"{store}: slow LeetCode then a held lock: REPORTs {emulator.reports()}")
    assert "Task timed out" not in emulator.log() and emulator.runtime_pids() == [pid]


def test_a_consumed_challenge_stays_consumed(leetcode, tmp_path, emulators):  # noqa: F811
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="leetcode", LEETCODE_GRAPHQL_URL=leetcode.http)
    emulator = emulators(env)
    code = ask(emulator, "raw", {"action": "challenge", "username": "ivy", "user_id": "u1"}, 200)["result"]["code"]
    leetcode.set_profile("ivy", f"proof {code}")
    won = ask(emulator, "alb", {"action": "verify", "username": "ivy", "user_id": "u1"}, 200)
    assert won["result"]["verified_via"] == "leetcode"
    ask(emulator, "raw", {"action": "release", "username": "ivy", "user_id": "u1"}, 200)
    # The code is still in the profile, but the challenge it answered was used up by the claim.
    ask(emulator, "raw", {"action": "verify", "username": "ivy", "user_id": "u1"}, 400, "no_active_challenge")


def test_fifty_emulators_race_for_one_profile_on_postgres(postgres_server, tmp_path):
    database = postgres_server.create_database()
    env = postgres_env(postgres_server, database, tmp_path, CLAIM_BUSY_TIMEOUT_MS="60000")
    racers = []
    try:
        for i in range(50):
            racers.append(lam.Emulator(env, tmp_path / f"rie-{i}.log"))

        def warm(emulator):  # each process started, configured and connected before the race
            ask(emulator, "raw", {"action": "status", "username": "contested", "user_id": "warm"}, 200)

        threads = [threading.Thread(target=warm, args=(e,)) for e in racers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        start = threading.Barrier(len(racers))
        answers = [None] * len(racers)

        def race(i, emulator):
            start.wait()
            answers[i] = lam.answer("function-url", emulator.invoke_ok(lam.event(
                "function-url", {"action": "verify", "username": "contested", "user_id": f"racer-{i}"})))

        threads = [threading.Thread(target=race, args=(i, e)) for i, e in enumerate(racers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for emulator in racers:
            emulator.stop()
    statuses = sorted(a["status"] for a in answers)
    print(f"50 emulators: {statuses.count(200)} x 200, {statuses.count(409)} x 409")
    assert statuses == [200] + [409] * 49, statuses
    winner = next(a["result"]["claimed_by"] for a in answers if a["status"] == 200)
    assert db_query(env, "SELECT claimed_by FROM profiles WHERE username = 'contested'").strip() == winner
    postgres_server.drop_database(database)
