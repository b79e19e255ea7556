"""Store faults reachable with the sqlite3 shell as the other process."""
import subprocess
import time

import pytest

from conftest import base_env, run

VERIFY = {"action": "verify", "username": "alice", "user_id": "user-1"}


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_lock_held_longer_than_timeout_is_store_busy_then_succeeds(tmp_path, journal):
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off", CLAIM_JOURNAL=journal,
                   CLAIM_BUSY_TIMEOUT_MS="300")
    assert run({"action": "status", "username": "alice", "user_id": "user-1"}, env).status == 200
    holder = subprocess.Popen(["sqlite3", env["CLAIM_DB"]], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        holder.stdin.write("BEGIN EXCLUSIVE;\nSELECT 'locked';\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "locked"
        busy = run(VERIFY, env)
        assert busy.status == 503 and busy.code == "store_busy" and busy.exit == 75
        assert busy.response["error"]["retry_after_s"] >= 1
    finally:
        holder.stdin.write("ROLLBACK;\n.quit\n")
        holder.stdin.close()
        holder.wait(timeout=10)
    done = run(VERIFY, env)
    assert done.status == 200 and done.response["result"]["claimed_by"] == "user-1"


def test_writers_queue_held_longer_than_timeout_is_store_busy_and_reads_go_on(tmp_path):
    """Another process holds the writers' queue (an exclusive flock on the database file, util-linux's flock here):
    a claim waits CLAIM_BUSY_TIMEOUT_MS in the queue and answers 503; a status is not a writer and answers at once."""
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off", CLAIM_BUSY_TIMEOUT_MS="300")
    assert run(VERIFY, env).status == 200
    holder = subprocess.Popen(["flock", "--exclusive", env["CLAIM_DB"], "sh", "-c", "echo held; read line"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = run({**VERIFY, "username": "bob"}, env)
        assert (busy.status, busy.code, busy.exit) == (503, "store_busy", 75)
        assert busy.response["error"]["retry_after_s"] >= 1
        assert "writers' queue" in busy.logs[-1]["detail"]
        status = run({**VERIFY, "action": "status"}, env)
        assert status.status == 200 and status.response["result"]["mine"] is True
    finally:
        holder.stdin.write("done\n")
        holder.stdin.close()
        holder.wait(timeout=10)
    done = run({**VERIFY, "username": "bob", "user_id": "user-2"}, env)
    assert done.status == 200
