"""The SQLite WAL stays bounded without a checkpoint at every close, and opening the file does not get dearer.

Processes no longer checkpoint when they close (SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE); a commit that leaves
SQLiteConnection.checkpointFrames (40) frames or more checkpoints and truncates the WAL. The trap this guards
against: a WAL that only grows, which every process opening the file alone must index from the start.
"""
import json
import os
import re
import subprocess
import tempfile
import time

from conftest import BINARY, base_env, check_output, db_query

FRAME = 4096 + 24  # a page and its frame header
WAL_HEADER = 32
# 40 frames trigger the checkpoint; the commit that crosses the line adds at most a claim's frames (about 5).
BOUND = WAL_HEADER + 64 * FRAME
CLAIMS = 5000


def spawn_claim(env, i):
    """One verify (off) of a new user on a free profile, started with posix_spawn (cheaper than subprocess)."""
    request = json.dumps({"action": "verify", "username": f"name-{i}", "user_id": f"user-{i}"}).encode()
    r_in, w_in = os.pipe()
    os.write(w_in, request)
    os.close(w_in)
    r_out, w_out = os.pipe()
    pid = os.posix_spawn(BINARY, [BINARY], env, file_actions=[
        (os.POSIX_SPAWN_DUP2, r_in, 0), (os.POSIX_SPAWN_DUP2, w_out, 1),
        (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)])
    os.close(r_in)
    os.close(w_out)
    _, status = os.waitpid(pid, 0)
    out = b""
    while chunk := os.read(r_out, 65536):
        out += chunk
    os.close(r_out)
    return check_output(out, os.waitstatus_to_exitcode(status))


def status_ms(env, runs=21):
    """The median wall-clock time of a `status` process: printed next to the bytes read, never asserted on."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run([BINARY], env=env, capture_output=True, timeout=60,
                              input=json.dumps({"action": "status", "username": "name-0", "user_id": "x"}).encode())
        times.append((time.perf_counter() - started) * 1000)
        check_output(proc.stdout, proc.returncode)
    return sorted(times)[len(times) // 2]


def wal_bytes_read_at_open(env):
    """Bytes a `status` process reads from -wal (strace): the index it rebuilds when it opens the file alone."""
    with tempfile.NamedTemporaryFile("r") as trace:
        proc = subprocess.run(["strace", "-qq", "-e", "trace=openat,read,pread64", "-e", "signal=none", "-o",
                               trace.name, BINARY], env=env, capture_output=True, timeout=60,
                              input=json.dumps({"action": "status", "username": "name-0", "user_id": "x"}).encode())
        check_output(proc.stdout, proc.returncode)
        fd, total = None, 0
        for line in trace:
            opened = re.match(r'openat\(.*"[^"]*-wal".*\) = (\d+)$', line.strip())
            if opened:
                fd = opened.group(1)
                continue
            read = re.match(r"(?:pread64|read)\((\d+),.*\) = (\d+)$", line.strip())
            if read and read.group(1) == fd:
                total += int(read.group(2))
        return total


def test_wal_stays_bounded_over_5000_claims_and_opening_does_not_get_dearer(tmp_path, capsys):
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off")
    wal = env["CLAIM_DB"] + "-wal"
    sizes, reads, times = [], {}, {}
    for i in range(CLAIMS):
        assert spawn_claim(env, i)["status"] == 200
        sizes.append(os.path.getsize(wal))
        if i + 1 in (100, 1000, CLAIMS):
            reads[i + 1] = wal_bytes_read_at_open(env)
            times[i + 1] = status_ms(env)
    truncations = sum(1 for before, after in zip(sizes, sizes[1:]) if after < before)
    with capsys.disabled():
        print(f"\n  {CLAIMS} claims: -wal at most {max(sizes)} bytes (bound {BOUND}), truncated {truncations} times; "
              "bytes of -wal read by a status after " + ", ".join(f"{n}: {b}" for n, b in reads.items())
              + "; its median time " + ", ".join(f"{n}: {t:.2f} ms" for n, t in times.items()))
    assert max(sizes) <= BOUND, "the WAL grew past the checkpoint threshold"
    assert truncations >= CLAIMS * 5 // 64, "the WAL was not checkpointed as it filled"
    assert all(b <= BOUND for b in reads.values()), "opening the file read more than the bounded WAL"
    assert db_query(env, "SELECT count(*) FROM profiles;") == f"{CLAIMS}\n"
    assert db_query(env, "PRAGMA integrity_check;").strip() == "ok"
    # Every acknowledged claim is in the database file itself or its WAL: reopening finds all of them.
    assert db_query(env, "SELECT count(*) FROM claim_events WHERE event = 'claim';") == f"{CLAIMS}\n"
