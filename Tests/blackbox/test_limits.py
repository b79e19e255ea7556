"""Abuse limits kept in the claim store: live challenges per caller, LeetCode requests per caller per hour and for
everyone per minute, and the breaker every process shares in front of LeetCode.

Black-box over the real binary, on SQLite (wal and delete) and PostgreSQL (directly and through PgBouncer in
transaction mode). The fake LeetCode counts the GraphQL
requests it receives (Tests/fake_leetcode/server.py's test controls), so "no request was made" is observed at the
peer, not inferred from our own answers. Each test prints the counts it saw.
"""
import collections
import datetime
import json
import os
import random
import signal
import subprocess
import time

import pytest

from conftest import BINARY, base_env, check_output, db_query, run
from leetcode_fixture import leetcode  # noqa: F401 (a fixture)
from test_faults import chaos, check_invariants
from test_race import counts, integrity, run_all

STORES = [("sqlite", "wal"), ("sqlite", "delete"), ("postgres", None), ("pgbouncer", None)]
IDS = ["sqlite-wal", "sqlite-delete", "postgres", "pgbouncer"]
TTL_S = 900
HOUR_S, MINUTE_S = 3600, 60


def limits_env(backend, tmp_path, leetcode, journal, **extra):
    """Verification through the fake, generous lock and LeetCode timeouts (this is not about timeouts)."""
    settings = {"CLAIM_BUSY_TIMEOUT_MS": "60000", "LEETCODE_TIMEOUT_MS": "30000", **extra}
    env = backend.env(tmp_path, url_params={"connect_timeout": 60}, CLAIM_AUTH="trusted", CLAIM_VERIFY="leetcode",
                      LEETCODE_GRAPHQL_URL=leetcode.https, SSL_CERT_FILE=leetcode.ca, **settings)
    if journal:
        env["CLAIM_JOURNAL"] = journal
    return env


def tag(backend, journal):
    """A store's part in usernames, so that tests sharing the fake do not share profiles (usernames are lowercase)."""
    return f"{backend.name}-{journal or 'server'}"


def ask(action, username, user):
    return {"action": action, "username": username, "user_id": user}


def report(capsys, name, seen):
    with capsys.disabled():
        print(f"\n  limits {name}: " + ", ".join(f"{k}={v}" for k, v in sorted(seen.items())))


def challenge_all(env, pairs):
    """Live challenges for (username, user) pairs, in parallel; returns their codes."""
    results = run_all([ask("challenge", name, user) for name, user in pairs], env, concurrency=50)
    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]][:3]
    return [r["result"]["code"] for r in results]


def retry_after(response):
    return response["error"].get("retry_after_s")


def rfc3339(seconds):
    """The store's timestamp text for a Unix time."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def unix(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def breaker(env):
    """The breaker's state: a JSON object of the fields not at their defaults, {} when closed and clean."""
    return json.loads(db_query(env, "SELECT state FROM leetcode_breaker;"))


def end_pause(env):
    """Moves the breaker's pause into the past, as if its time had passed (the doubling would otherwise take
    minutes of real time to observe)."""
    state = {**breaker(env), "paused_until": rfc3339(time.time() - 1)}
    db_query(env, f"UPDATE leetcode_breaker SET state = '{json.dumps(state)}';")


def slot_times(env):
    return [unix(t) for t in db_query(env, "SELECT at FROM leetcode_requests ORDER BY at;").split()]


def most_in_a_minute(times):
    """The most slots any rolling minute holds (slots closer than 60 s share a minute)."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= MINUTE_S:
            start += 1
        best = max(best, end - start + 1)
    return best


# --- CLAIM_MAX_LIVE_CHALLENGES ---

@pytest.mark.parametrize("backend,journal", STORES, ids=IDS, indirect=["backend"])
def test_50_parallel_challenges_by_one_caller_hold_3(backend, tmp_path, leetcode, capsys, journal):
    env = limits_env(backend, tmp_path, leetcode, journal, CLAIM_MAX_LIVE_CHALLENGES="3",
                     CLAIM_CHALLENGE_TTL_S=str(TTL_S))
    results = run_all([ask("challenge", f"name-{i}", "user-1") for i in range(50)], env)
    seen = counts(results)
    report(capsys, f"50 parallel challenges, one caller, limit 3, {tag(backend, journal)}", seen)
    assert seen == {"200": 3, "rate_limited": 47}
    for r in results:
        if not r["ok"]:
            assert r["status"] == 429 and 1 <= retry_after(r) <= TTL_S, r
            assert r["error"]["message"].startswith("you already hold 3 live challenges"), r
    held = [r["result"] for r in results if r["ok"]]
    assert db_query(env, "SELECT count(*) FROM challenges WHERE user_id = 'user-1';") == "3\n"
    # Asking again for a username they hold returns it, not counted twice; another caller is not affected.
    again = run(ask("challenge", held[0]["username"], "user-1"), env)
    assert again.status == 200 and again.response["result"]["code"] == held[0]["code"]
    assert run(ask("challenge", "name-0", "user-2"), env).status == 200
    # A live one expiring (or being consumed) makes room: the retry_after_s is honest.
    db_query(env, f"UPDATE challenges SET expires_at = '{rfc3339(time.time() - 1)}' "
                  f"WHERE user_id = 'user-1' AND username = '{held[0]['username']}';")
    refreshed = run(ask("challenge", "one-more", "user-1"), env)
    assert refreshed.status == 200, refreshed.response
    assert db_query(env, "SELECT count(*) FROM challenges WHERE user_id = 'user-1';") == "3\n", "expired are swept"


# --- CLAIM_VERIFY_PER_HOUR ---

@pytest.mark.parametrize("backend,journal", STORES, ids=IDS, indirect=["backend"])
def test_40_parallel_failing_verifies_by_one_caller_reach_leetcode_10_times(backend, tmp_path, leetcode, capsys,
                                                                              journal):
    env = limits_env(backend, tmp_path, leetcode, journal, CLAIM_VERIFY_PER_HOUR="10")
    name = f"hourly-{tag(backend, journal)}"
    leetcode.set_profile(name, "no code here")
    challenge_all(env, [(name, "user-1")])
    # Answers given without a network call take no slot.
    assert run(ask("verify", "never-challenged", "user-1"), env).code == "no_active_challenge"
    assert run(ask("status", name, "user-1"), env).status == 200
    assert run(ask("release", name, "user-1"), env).code == "not_claimed"
    before = leetcode.stats()["by_username"].get(name, 0)
    results = run_all([ask("verify", name, "user-1")] * 40, env)
    reached = leetcode.stats()["by_username"].get(name, 0) - before
    seen = counts(results)
    report(capsys, f"40 parallel verifies, one caller, 10/hour, {tag(backend, journal)}",
           {**seen, "fake saw": reached})
    assert reached == 10, "every one of the 10 slots was used, and no more"
    assert seen == {"code_not_found": 10, "rate_limited": 30}
    for r in results:
        if not r["ok"] and r["error"]["code"] == "rate_limited":
            assert r["status"] == 429 and 1 <= retry_after(r) <= HOUR_S, r
    # Never limited: status, release, and verify with CLAIM_VERIFY=off; nor another caller.
    assert run(ask("status", name, "user-1"), env).status == 200
    assert run(ask("verify", name, "user-1"), {**env, "CLAIM_VERIFY": "off"}).status == 200
    assert run(ask("release", name, "user-1"), env).status == 200
    other = f"other-{tag(backend, journal)}"
    challenge_all(env, [(other, "user-2")])
    assert run(ask("verify", other, "user-2"), env).code == "leetcode_user_not_found"
    assert db_query(env, "SELECT count(*) FROM leetcode_requests WHERE user_id = 'user-1';") == "10\n"


@pytest.mark.parametrize("backend,journal", STORES, ids=IDS, indirect=["backend"])
def test_a_claim_in_hand_takes_no_slot_an_owners_resync_does_and_old_slots_go(backend, tmp_path, leetcode, capsys,
                                                                              journal):
    env = limits_env(backend, tmp_path, leetcode, journal, CLAIM_VERIFY_PER_HOUR="1")
    name = f"inhand-{tag(backend, journal)}"
    # Slots from two hours ago count for nothing and go: SQLite prunes after every 64th slot, so 63 old ones make the
    # next slot the 64th.
    assert subprocess.run([BINARY, "migrate"], env=env, capture_output=True).returncode == 0
    old = rfc3339(time.time() - 2 * HOUR_S)
    db_query(env, "INSERT INTO leetcode_requests (seq, at, user_id) VALUES "
                  + ", ".join(f"({i + 1}, '{old}', 'user-{i % 3}')" for i in range(63)) + ";")
    code = challenge_all(env, [(name, "user-1")])[0]
    leetcode.set_profile(name, code)
    claimed = run(ask("verify", name, "user-1"), env)
    assert claimed.status == 200, "the one slot of the hour; the claim transaction itself takes none"
    assert db_query(env, "SELECT user_id FROM leetcode_requests;") == "user-1\n", "old slots were pruned"
    # The 409 pre-checks answer without LeetCode and take no slot (user-2 has a whole hour's budget of one).
    other = f"other-{name}"
    challenge_all(env, [(other, "user-2")])
    taken = run(ask("verify", name, "user-2"), env)
    assert (taken.status, taken.code) == (409, "already_claimed"), taken.response
    second = run(ask("verify", other, "user-1"), env)
    assert (second.status, second.code) == (409, "user_has_other_profile"), second.response
    assert db_query(env, "SELECT user_id FROM leetcode_requests;") == "user-1\n", "no slot for a 409"
    resync = run(ask("verify", name, "user-1"), env)
    assert (resync.status, resync.code) == (429, "rate_limited"), "an owner's re-sync counts"
    assert resync.response["error"]["message"] == "you have used your 1 LeetCode verification for this hour; try again later"
    assert 3590 <= retry_after(resync.response) <= HOUR_S
    assert run(ask("verify", other, "user-2"), env).code == "leetcode_user_not_found", "user-2 had its one slot"
    report(capsys, f"claim in hand, {tag(backend, journal)}",
           {"old slots pruned": 63, "claim": claimed.status, "409s": f"{taken.code}/{second.code}",
            "re-sync": resync.code, "slots": int(db_query(env, "SELECT count(*) FROM leetcode_requests;"))})


# --- CLAIM_LEETCODE_PER_MINUTE ---

@pytest.mark.parametrize("backend,journal", STORES, ids=IDS, indirect=["backend"])
def test_200_parallel_verifies_by_200_callers_reach_leetcode_at_most_20_times(backend, tmp_path, leetcode, capsys,
                                                                               journal):
    env = limits_env(backend, tmp_path, leetcode, journal, CLAIM_LEETCODE_PER_MINUTE="20")
    names = [f"minute-{tag(backend, journal)}-{i}" for i in range(200)]
    challenge_all(env, [(n, f"caller-{i}") for i, n in enumerate(names)])
    before = leetcode.stats()["by_username"]
    results = run_all([ask("verify", n, f"caller-{i}") for i, n in enumerate(names)], env)
    finished = time.time()
    after = leetcode.stats()["by_username"]
    reached = sum(after.get(n, 0) - before.get(n, 0) for n in names)
    seen = counts(results)
    times = slot_times(env)
    report(capsys, f"200 parallel verifies by 200 callers, 20/minute, {tag(backend, journal)}",
           {**seen, "fake saw": reached, "slots": len(times), "most slots in a minute": most_in_a_minute(times)})
    assert most_in_a_minute(times) <= 20
    assert reached <= len(times), "every request LeetCode saw had a slot"
    if finished - times[0] < MINUTE_S:  # the usual case: every verify answered within a minute of the first slot
        assert reached == 20, "the budget is used, not just respected"
        assert seen == {"leetcode_user_not_found": 20, "leetcode_rate_limited": 180}
    assert seen.get("leetcode_user_not_found", 0) == reached
    assert seen.get("leetcode_rate_limited", 0) == 200 - reached
    for r in results:
        if not r["ok"] and r["error"]["code"] == "leetcode_rate_limited":
            assert r["status"] == 503 and 1 <= retry_after(r) <= MINUTE_S, r


# --- the shared breaker ---

def trip(backend, tmp_path, leetcode, journal, name, callers, *answers, **settings):
    """Callers user-0… each holding a live challenge for a username of their own; the fake answers the next
    requests with `answers`, the first of which meets user-0's verify. Returns the environment, a verify request
    by caller i, and user-0's result."""
    env = limits_env(backend, tmp_path, leetcode, journal, **{"CLAIM_LEETCODE_PER_MINUTE": "1000", **settings})
    prefix = f"{name}-{tag(backend, journal)}"
    challenge_all(env, [(f"{prefix}-user-{i}", f"user-{i}") for i in range(callers)])
    leetcode.script(*answers)

    def verify(i):
        return ask("verify", f"{prefix}-user-{i}", f"user-{i}")

    return env, verify, run(verify(0), env)


@pytest.mark.parametrize("backend,journal", STORES, ids=IDS, indirect=["backend"])
def test_breaker_429_retry_after_3_pauses_every_process(backend, tmp_path, leetcode, capsys, journal):
    env, verify, first = trip(backend, tmp_path, leetcode, journal, "b429", 103,
                              {"as": "rate-limited", "retry_after": 3})
    assert (first.status, first.code, retry_after(first.response)) == (503, "leetcode_rate_limited", 3)
    paused_until = breaker(env)["paused_until"]
    assert breaker(env)["cause"] == "leetcode_rate_limited"
    start = leetcode.stats()["total"]
    results = run_all([verify(i) for i in range(1, 101)], env)
    finished = time.time()
    stats = leetcode.stats()
    reached = stats["total"] - start
    seen = counts(results)
    report(capsys, f"breaker 429 Retry-After 3, 100 parallel verifies, {tag(backend, journal)}",
           {**seen, "fake saw": reached, "all answered within the pause": finished < unix(paused_until)})
    # No request reached LeetCode before the pause ended; the fake's clock and ours are this machine's.
    assert all(t >= unix(paused_until) for t, _ in stats["arrivals"][start:]), "a request went out while paused"
    for r in results:
        if not r["ok"] and r["error"]["code"] == "leetcode_rate_limited":
            assert 1 <= retry_after(r) <= 3, r
    assert seen.get("leetcode_user_not_found", 0) == reached, "only requests that went out got LeetCode's answer"
    if finished < unix(paused_until):  # the usual case: all 100 answered within the 3 s
        assert reached == 0 and seen == {"leetcode_rate_limited": 100}
    # After the pause requests flow again: one probes and closes the breaker, then the others go.
    time.sleep(max(0.0, unix(paused_until) - time.time()) + 0.05)
    probe = run(verify(101), env)
    assert probe.code == "leetcode_user_not_found", probe.response
    assert breaker(env) == {}, "closed and clean"
    assert run(verify(102), env).code == "leetcode_user_not_found"


@pytest.mark.parametrize("backend,journal", STORES, ids=IDS, indirect=["backend"])
def test_breaker_cloudflare_page_pauses_and_doubles_while_it_repeats(backend, tmp_path, leetcode, capsys, journal):
    env, verify, first = trip(backend, tmp_path, leetcode, journal, "bcf", 109, *[{"as": "cf-blocked"}] * 7)
    assert (first.status, first.code, retry_after(first.response)) == (503, "leetcode_unavailable", 30)
    start = leetcode.stats()["total"]
    results = run_all([verify(i) for i in range(1, 101)], env)
    reached = leetcode.stats()["total"] - start
    seen = counts(results)
    assert reached == 0 and seen == {"leetcode_unavailable": 100}
    assert all(1 <= retry_after(r) <= 30 for r in results)
    # Each pause over, the one probe meets the page again: the pause doubles, up to 15 minutes.
    pauses = [30]
    for i, expected in enumerate([60, 120, 240, 480, 900, 900]):
        end_pause(env)
        probe = run(verify(101 + i), env)
        assert (probe.code, retry_after(probe.response)) == ("leetcode_unavailable", expected), probe.response
        pauses.append(expected)
        waiting = run(verify(0), env)
        assert waiting.code == "leetcode_unavailable" and expected - 2 <= retry_after(waiting.response) <= expected
    assert leetcode.stats()["total"] - start == 6, "only the probes reached LeetCode"
    # The block lifts: the probe gets an answer, which closes the breaker and resets the doubling.
    end_pause(env)
    assert run(verify(107), env).code == "leetcode_user_not_found"
    assert breaker(env) == {}
    leetcode.script({"as": "cf-blocked"})
    again = run(verify(108), env)
    assert (again.code, retry_after(again.response)) == ("leetcode_unavailable", 30)
    report(capsys, f"breaker Cloudflare page, {tag(backend, journal)}",
           {**seen, "fake saw while paused": reached, "pauses": "/".join(map(str, pauses)),
            "after an answer": retry_after(again.response)})


@pytest.mark.parametrize("backend,journal", STORES, ids=IDS, indirect=["backend"])
def test_breaker_opens_after_failures_in_a_row(backend, tmp_path, leetcode, capsys, journal):
    # Two 500s, an answer (which breaks the row), two more 500s: never three in a row.
    env, request, first = trip(backend, tmp_path, leetcode, journal, "bfail", 8, {"as": "server-error"},
                               {"as": "server-error"}, CLAIM_BREAKER_FAILURES="3")

    def verify(i):
        return run(request(i), env)

    assert [first.code, verify(1).code] == ["leetcode_unavailable"] * 2
    assert verify(2).code == "leetcode_user_not_found"
    leetcode.script({"as": "server-error"}, {"as": "server-error"}, {"as": "server-error"})
    assert [verify(i).code for i in (3, 4)] == ["leetcode_unavailable"] * 2
    assert breaker(env) == {"failures": 2, "failures_since": breaker(env)["failures_since"]}, "two do not pause"
    third = verify(5)
    assert (third.code, retry_after(third.response)) == ("leetcode_unavailable", 30)
    start = leetcode.stats()["total"]
    refused = [verify(i) for i in (6, 7)]
    reached = leetcode.stats()["total"] - start
    assert all(r.code == "leetcode_unavailable" and 1 <= retry_after(r.response) <= 30 for r in refused)
    assert reached == 0, "paused: no request"
    report(capsys, f"breaker 3 failures in a row, {tag(backend, journal)}",
           {"pause after the third": retry_after(third.response), "refused while paused": len(refused),
            "fake saw while paused": reached})


@pytest.mark.parametrize("backend,journal", STORES, ids=IDS, indirect=["backend"])
def test_a_killed_probe_does_not_keep_the_breaker_stuck(backend, tmp_path, leetcode, capsys, journal):
    """The probe's lease (LEETCODE_TIMEOUT_MS + 1 s) is all a probe killed mid-request costs."""
    env, verify, first = trip(backend, tmp_path, leetcode, journal, "bkill", 4,
                              {"as": "rate-limited", "retry_after": 60}, {"as": "slow"}, LEETCODE_TIMEOUT_MS="2000")
    assert first.code == "leetcode_rate_limited"
    end_pause(env)
    start = leetcode.stats()["total"]
    probe = subprocess.Popen([BINARY], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             env=env)
    probe.stdin.write(json.dumps(verify(1)).encode())
    probe.stdin.close()
    deadline = time.monotonic() + 60
    while leetcode.stats()["total"] == start and time.monotonic() < deadline:
        time.sleep(0.02)
    assert leetcode.stats()["total"] == start + 1, "the probe's request reached LeetCode"
    probe.send_signal(signal.SIGKILL)
    probe.wait(timeout=30)
    lease = breaker(env)["probe_until"]
    waiting = run(verify(2), env)
    within_lease = time.time() < unix(lease)
    if within_lease:  # still inside the dead probe's lease (the usual case): refused, no request
        assert (waiting.code, retry_after(waiting.response)) == ("leetcode_rate_limited", 1)
    time.sleep(max(0.0, unix(lease) - time.time()) + 0.05)
    after = run(verify(3), env)
    assert after.code == "leetcode_user_not_found", after.response
    assert breaker(env) == {}
    report(capsys, f"killed probe, {tag(backend, journal)}",
           {"inside the lease": waiting.code if within_lease else "lease over before the check",
            "after the lease": after.code})


# --- kill -9 through the limiter ---

CHAOS_USERS = [f"c{i}" for i in range(30)]
# Both windows bind: 30 callers x 2 an hour could take 60 slots, the minute allows 50.
CHAOS_LIMITS = {"CLAIM_MAX_LIVE_CHALLENGES": 2, "CLAIM_VERIFY_PER_HOUR": 2, "CLAIM_LEETCODE_PER_MINUTE": 50}
OLD_SLOTS = 500


@pytest.mark.parametrize("backend,journal", STORES, ids=IDS, indirect=["backend"])
def test_chaos_through_the_limiter(backend, tmp_path, leetcode, capsys, journal):
    """1200 invocations from 32 workers, ~12 % killed with SIGKILL and ~3 % with SIGTERM at a random moment.

    Each caller verifies only its own usernames, so the fake's count per username is a count per caller."""
    env = limits_env(backend, tmp_path, leetcode, journal, CLAIM_BUSY_TIMEOUT_MS="10000", LEETCODE_TIMEOUT_MS="20000",
                     **{k: str(v) for k, v in CHAOS_LIMITS.items()})
    names = {u: [f"{u}-{tag(backend, journal)}-n{j}" for j in range(3)] for u in CHAOS_USERS}
    for user_names in names.values():
        for name in user_names:
            leetcode.set_profile(name, "")
    leetcode.reset()

    def publish(inv):
        r = inv.response
        if r and r["ok"] and inv.request["action"] == "challenge":
            leetcode.add_code(r["result"]["username"], r["result"]["code"])

    rng = random.Random(f"limits-{tag(backend, journal)}")
    actions = ["challenge"] * 3 + ["verify"] * 5 + ["release"] + ["status"]
    requests = []
    for i in range(1200):
        user = rng.choice(CHAOS_USERS)
        requests.append({**ask(rng.choice(actions), rng.choice(names[user]), user), "request_id": f"chaos-{i}"})
    # 500 slots from two hours ago, 2 s apart: pruning must remove them at its own pace while processes die.
    assert subprocess.run([BINARY, "migrate"], env=env, capture_output=True).returncode == 0
    old_start = time.time() - 2 * HOUR_S
    db_query(env, "INSERT INTO leetcode_requests (seq, at, user_id) VALUES "
                  + ", ".join(f"({i + 1}, '{rfc3339(old_start + 2 * i)}', 'old-{i}')" for i in range(OLD_SLOTS))
                  + ";")
    invocations = chaos(env, requests, seed=f"limits-{tag(backend, journal)}", window=0.015, on_result=publish)
    check_invariants(env, invocations, capsys, f"through the limiter {tag(backend, journal)}")

    per_caller = collections.Counter()
    for name, n in leetcode.stats()["by_username"].items():
        per_caller[name.split("-")[0]] += n
    hour_ago = time.time() - HOUR_S
    times = [t for t in slot_times(env) if t > hour_ago]
    old_left = int(db_query(env, f"SELECT count(*) FROM leetcode_requests WHERE at <= '{rfc3339(hour_ago)}';"))
    last = int(db_query(env, "SELECT max(seq) FROM leetcode_requests;"))
    prunes = sum(1 for seq in range(OLD_SLOTS + 1, last + 1) if seq % 64 == 0)
    slots_per_caller = collections.Counter(
        db_query(env, f"SELECT user_id FROM leetcode_requests WHERE at > '{rfc3339(hour_ago)}';").split())
    live = collections.Counter(db_query(env, "SELECT user_id FROM challenges;").split())
    refused = collections.Counter(
        inv.response["error"]["code"] for inv in invocations
        if inv.response and not inv.response["ok"] and inv.response["status"] in (429, 503))
    report(capsys, f"chaos through the limiter {tag(backend, journal)}",
           {"LeetCode requests": sum(per_caller.values()), "slots": len(times), "old slots left": old_left,
            "prunes": prunes,
            "most per caller": max(per_caller.values(), default=0), "most slots in a minute": most_in_a_minute(times),
            "most live challenges": max(live.values(), default=0), **refused})
    assert max(per_caller.values(), default=0) <= CHAOS_LIMITS["CLAIM_VERIFY_PER_HOUR"], per_caller
    assert max(slots_per_caller.values(), default=0) <= CHAOS_LIMITS["CLAIM_VERIFY_PER_HOUR"]
    assert most_in_a_minute(times) <= CHAOS_LIMITS["CLAIM_LEETCODE_PER_MINUTE"]
    # Both limits were reached, not merely respected (some 600 verifies were sent).
    assert max(slots_per_caller.values(), default=0) == CHAOS_LIMITS["CLAIM_VERIFY_PER_HOUR"], slots_per_caller
    assert len(times) == CHAOS_LIMITS["CLAIM_LEETCODE_PER_MINUTE"] or times[-1] - times[0] >= MINUTE_S, len(times)
    assert sum(per_caller.values()) <= len(times), "every request LeetCode saw had a slot"
    # Bounded: slots are numbered without gaps whatever was killed (a killed reservation rolls back), and every 64th
    # one removed up to 128 of the oldest, so exactly this many old slots are left; one breaker row; live challenges
    # within the limit.
    assert len(times) == last - OLD_SLOTS, "numbered without gaps"
    assert old_left == max(0, OLD_SLOTS - 128 * prunes), (old_left, prunes)
    assert db_query(env, "SELECT count(*) FROM leetcode_breaker;") == "1\n"
    assert max(live.values(), default=0) <= CHAOS_LIMITS["CLAIM_MAX_LIVE_CHALLENGES"]
    events = int(db_query(env, "SELECT count(*) FROM claim_events;"))
    assert integrity(backend, env, events) == "ok"
    # Nothing is stuck: a new caller's challenge and verify go through to LeetCode (with room in the minute).
    roomy = {**env, "CLAIM_LEETCODE_PER_MINUTE": "100000"}
    fresh = f"fresh-{tag(backend, journal)}"
    code = run(ask("challenge", fresh, "fresh-user"), roomy).response["result"]["code"]
    leetcode.set_profile(fresh, code)
    assert run(ask("verify", fresh, "fresh-user"), roomy).status == 200


# --- hostile settings ---

HOSTILE = ["0", "-1", "abc", "1.5", "1e3", "0x10", " 3", "3 ", "99999999999999999999999", "\u0663", "3\n", "+-3"]
RANGES = {"CLAIM_MAX_LIVE_CHALLENGES": (1, 100), "CLAIM_VERIFY_PER_HOUR": (1, 10000),
          "CLAIM_LEETCODE_PER_MINUTE": (1, 100000), "CLAIM_BREAKER_FAILURES": (1, 1000)}


@pytest.mark.parametrize("variable", sorted(RANGES))
def test_hostile_values_are_misconfigured(tmp_path, capsys, variable):
    low, high = RANGES[variable]
    env = base_env(tmp_path, CLAIM_AUTH="trusted")
    answered = collections.Counter()
    for value in HOSTILE + [str(high + 1), str(low - 1)]:
        for action in ("challenge", "verify", "status", "release"):
            result = run(ask(action, "alice", "user-1"), {**env, variable: value})
            assert (result.status, result.code, result.exit) == (500, "misconfigured", 78), (value, result.response)
            assert result.response["error"]["message"] == f"{variable} must be an integer from {low} to {high}"
            answered[result.code] += 1
    assert not os.path.exists(env["CLAIM_DB"]), "the store is not touched before the settings are known"
    for value in (str(low), str(high), ""):
        assert run(ask("challenge", "alice", "user-1"), {**env, variable: value}).status == 200, value
    assert answered == {"misconfigured": 4 * (len(HOSTILE) + 2)}
    report(capsys, f"hostile {variable}", answered)


# --- schema version 3 in place ---

@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_version_2_database_is_migrated_to_3_in_place(backend, tmp_path):
    """A version 2 database is exactly version 3 without the two limiter tables."""
    env = backend.env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off")
    assert subprocess.run([BINARY, "migrate"], env=env, capture_output=True).returncode == 0
    assert run(ask("verify", "alice", "user-1"), env).status == 200
    assert run(ask("challenge", "bob", "user-2"), env).status == 200
    if backend.name == "sqlite":
        db_query(env, "DROP TABLE leetcode_requests; DROP TABLE leetcode_breaker; PRAGMA user_version = 2;")
    else:
        db_query(env, "DROP TABLE leetcode_requests; DROP TABLE leetcode_breaker; UPDATE schema_version SET version = 2;")
    proc = subprocess.run([BINARY, "migrate"], env=env, capture_output=True, timeout=60)
    assert proc.returncode == 0 and json.loads(proc.stdout)["schema_version"] == 3, proc.stdout
    version = "PRAGMA user_version;" if backend.name == "sqlite" else "SELECT version FROM schema_version;"
    assert db_query(env, version) == "3\n"
    assert db_query(env, "SELECT id, state FROM leetcode_breaker;") == "1|{}\n"
    assert db_query(env, "SELECT count(*) FROM leetcode_requests;") == "0\n"
    assert db_query(env, "SELECT claimed_by FROM profiles;") == "user-1\n"
    assert db_query(env, "SELECT user_id, username FROM challenges;") == "user-2|bob\n"
    assert run(ask("status", "alice", "user-1"), env).response["result"]["mine"] is True


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_version_2_database_is_migrated_by_the_first_request(backend, tmp_path):
    """Without `migrate`: the first request finds version 2 (on PostgreSQL in the round trip that also carries its
    own statements, which it then runs again), migrates and answers as on version 3."""
    env = backend.env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off")
    assert subprocess.run([BINARY, "migrate"], env=env, capture_output=True).returncode == 0
    assert run(ask("challenge", "bob", "user-2"), env).status == 200
    if backend.name == "sqlite":
        db_query(env, "DROP TABLE leetcode_requests; DROP TABLE leetcode_breaker; PRAGMA user_version = 2;")
    else:
        db_query(env, "DROP TABLE leetcode_requests; DROP TABLE leetcode_breaker; UPDATE schema_version SET version = 2;")
    again = run(ask("challenge", "bob", "user-2"), env)
    assert again.status == 200, again.response
    version = "PRAGMA user_version;" if backend.name == "sqlite" else "SELECT version FROM schema_version;"
    assert db_query(env, version) == "3\n"
    assert db_query(env, "SELECT count(*) FROM challenges;") == "1\n", "the live challenge was returned, once"
    assert db_query(env, "SELECT id, state FROM leetcode_breaker;") == "1|{}\n"


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_newer_schema_whose_tables_moved_is_refused_by_name(backend, tmp_path):
    """The first round trip carries the version check with the request's statements; when a newer schema makes
    those fail (here: a table renamed), the answer is still the newer schema, not the statement's error."""
    env = backend.env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off")
    assert subprocess.run([BINARY, "migrate"], env=env, capture_output=True).returncode == 0
    db_query(env, "ALTER TABLE profiles RENAME TO profiles_v4; UPDATE schema_version SET version = 4;")
    for action in ("status", "verify", "release", "challenge"):
        refused = run(ask(action, "alice", "user-1"), env)
        assert (refused.status, refused.code) == (500, "store_unavailable"), refused.response
        assert "schema version 4" in refused.response["error"]["message"], refused.response


@pytest.mark.parametrize("backend", ["postgres", "pgbouncer"], indirect=True)
def test_a_newer_schema_with_the_same_tables_is_refused_and_nothing_is_written(backend, tmp_path):
    """The version check rides with a process's first statements: on a newer schema whose tables still take those
    statements, nothing they did may be committed (not a claim, not its event, not a challenge) before the answer
    names the newer schema. (A COMMIT sent in the same round trip as an unchecked version would fail this.)"""
    env = backend.env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off")
    assert subprocess.run([BINARY, "migrate"], env=env, capture_output=True).returncode == 0
    assert run(ask("verify", "bob", "user-2"), env).status == 200
    assert run(ask("challenge", "carol", "user-3"), env).status == 200
    tables = "SELECT (SELECT count(*) FROM profiles), (SELECT count(*) FROM claim_events), " \
        "(SELECT count(*) FROM challenges), (SELECT count(*) FROM leetcode_requests);"
    before = db_query(env, tables)
    db_query(env, "UPDATE schema_version SET version = 4;")
    for action, user in (("verify", "user-1"), ("verify", "user-2"), ("release", "user-2"), ("challenge", "user-1"),
                         ("status", "user-1")):
        refused = run(ask(action, "alice" if user == "user-1" else "bob", user), env)
        assert (refused.status, refused.code) == (500, "store_unavailable"), (action, refused.response)
        assert "schema version 4" in refused.response["error"]["message"], refused.response
    assert db_query(env, tables) == before
    assert db_query(env, "SELECT username, claimed_by FROM profiles;") == "bob|user-2\n"
    assert db_query(env, "SELECT version FROM schema_version;") == "4\n"


def test_schema_requires_status_429_and_retry_after_with_rate_limited():
    """check_output (conftest) validates every response above against the schema, which holds rate_limited to
    status 429 and a retry_after_s of at least 1: a line without one is refused."""
    line = json.dumps({"ok": False, "status": 429, "action": "challenge", "request_id": None,
                       "error": {"code": "rate_limited", "message": "m"}}).encode() + b"\n"
    with pytest.raises(AssertionError, match="retry_after_s"):
        check_output(line, 0)
    check_output(line.replace(b'"m"}', b'"m", "retry_after_s": 1}'), 0)
