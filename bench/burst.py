#!/usr/bin/env python3
"""Burst fairness: 300 processes at once against one SQLite file, with the default settings.

Shapes: one caller claiming 300 usernames, and 300 callers claiming one username; each on a file that does not
exist yet ("fresh") and on one `leetcode-claim migrate` made ("existing"), with CLAIM_JOURNAL=wal and delete.
Every process is started first and blocks reading stdin; then every request is written, so they reach the store
as close together as the machine allows. A process's latency runs from the write of its request to its exit
(reaped with wait4). A run passes when every answer is 200 or 409 with the contract's exit code, exactly one is
200, and the database holds exactly that claim.

    bench/burst.sh                       # builds the release binary, 10 runs of every shape, rewrites its section
    python3 bench/burst.py --binary B --runs 1 --no-write   # one run per shape, print only

Standard library only; the `sqlite3` module reads the database afterwards as another process would.
"""

import argparse
import collections
import datetime
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time

from common import percentile, publish

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN = "<!-- bench/burst output: begin -->"
END = "<!-- bench/burst output: end -->"


def burst(binary, env, requests):
    """Starts one process per request, then writes every request; returns [(ms, exit code, response)]."""
    procs = []
    for request in requests:
        r_in, w_in = os.pipe()
        r_out, w_out = os.pipe()
        actions = [(os.POSIX_SPAWN_DUP2, r_in, 0), (os.POSIX_SPAWN_DUP2, w_out, 1),
                   (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)]
        pid = os.posix_spawn(binary, [binary], env, file_actions=actions)
        os.close(r_in)
        os.close(w_out)
        procs.append([pid, w_in, r_out, request])
    started = {}
    for pid, w_in, _, request in procs:
        os.write(w_in, json.dumps(request).encode())
        started[pid] = time.perf_counter_ns()
        os.close(w_in)
    ended = {}
    status = {}
    cpu = {}
    while len(ended) < len(procs):
        pid, code, usage = os.wait4(-1, 0)
        ended[pid] = time.perf_counter_ns()
        status[pid] = os.waitstatus_to_exitcode(code)
        cpu[pid] = (usage.ru_utime + usage.ru_stime) * 1e3
    results = []
    for pid, _, r_out, _ in procs:
        chunks = []
        while chunk := os.read(r_out, 65536):
            chunks.append(chunk)
        os.close(r_out)
        try:
            response = json.loads(b"".join(chunks))
        except ValueError:
            response = None
        results.append(((ended[pid] - started[pid]) / 1e6, status[pid], response, cpu[pid]))
    return results


def outcome(response, code):
    if not isinstance(response, dict) or not isinstance(response.get("status"), int):
        return f"no answer (exit {code})"
    status = response["status"]
    key = "200" if status == 200 else f"{status} {response.get('error', {}).get('code')}"
    exit_ok = code == (0 if status < 500 else 75 if status == 503 else 70)
    return key if exit_ok else f"{key} (exit {code})"


SHAPES = [
    ("1 caller × 300 usernames", lambda n: [
        {"action": "verify", "username": f"name-{i}", "user_id": "greedy"} for i in range(n)]),
    ("300 callers × 1 username", lambda n: [
        {"action": "verify", "username": "contested", "user_id": f"user-{i}"} for i in range(n)]),
]


def one_run(binary, work, shape, fresh, journal, n):
    folder = tempfile.mkdtemp(dir=work)
    db = os.path.join(folder, "claims.sqlite")
    env = {"PATH": "/usr/bin:/bin", "CLAIM_DB": db, "CLAIM_AUTH": "trusted", "CLAIM_VERIFY": "off",
           "CLAIM_JOURNAL": journal}
    if not fresh:
        pid = os.posix_spawn(binary, [binary, "migrate"], env, file_actions=[
            (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)])
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0, "migrate failed"
    requests = dict(SHAPES)[shape](n)
    results = burst(binary, env, requests)
    seen = collections.Counter(outcome(r, c) for _, c, r, _ in results)
    wins = [r["result"] for _, _, r, _ in results if isinstance(r, dict) and r.get("ok")]
    good = set(seen) <= {"200", "409 already_claimed", "409 user_has_other_profile"} and seen["200"] == 1
    if good:
        with sqlite3.connect(db) as c:
            held = c.execute("SELECT username, claimed_by, claimed_at FROM profiles WHERE claimed_by IS NOT NULL")
            good = held.fetchall() == [(wins[0]["username"], wins[0]["claimed_by"], wins[0]["claimed_at"])]
            good = good and c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        if not good:
            seen["database does not hold exactly the one acknowledged claim"] += 1
    for name in os.listdir(folder):
        os.unlink(os.path.join(folder, name))
    os.rmdir(folder)
    return [ms for ms, _, _, _ in results], seen, good, sum(c for *_, c in results)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--processes", type=int, default=300)
    parser.add_argument("--journal", action="append", choices=["wal", "delete"])
    parser.add_argument("--work", default=None, help="folder for the databases (default: a temporary one)")
    parser.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    parser.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    parser.add_argument("--command", default="bench/burst.sh")
    options = parser.parse_args()
    binary = os.path.abspath(options.binary)
    work = options.work or tempfile.mkdtemp(prefix="claim-burst-")
    journals = options.journal or ["wal", "delete"]
    combos = [(shape, fresh, journal) for journal in journals for fresh in (True, False) for shape, _ in SHAPES]
    stats = {c: {"ms": [], "runs": [], "cpu": [], "bad": collections.Counter()} for c in combos}
    load = os.getloadavg()[0]
    for run in range(options.runs):
        # Run i of every shape, then run i + 1: a slow minute of the shared machine hits every shape alike.
        for combo in combos:
            shape, fresh, journal = combo
            ms, seen, good, cpu = one_run(binary, work, shape, fresh, journal, options.processes)
            s = stats[combo]
            s["ms"] += ms
            s["cpu"].append(cpu)
            s["runs"].append((good, max(ms)))
            if not good:
                s["bad"].update({k: v for k, v in seen.items() if not k.startswith("409") and k != "200"} or seen)
            print(f"run {run + 1} {journal} {'fresh' if fresh else 'existing'} {shape}: "
                  f"p50 {percentile(ms, 50):.0f} ms, max {max(ms):.0f} ms, CPU {cpu:.0f} ms, "
                  + ", ".join(f"{k} {v}" for k, v in sorted(seen.items())), file=sys.stderr)
    if not options.work:
        os.rmdir(work)
    report(options, combos, stats, load)


def report(options, combos, stats, load):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [BEGIN, "",
             f"Run: {now} · `{options.command}` · {options.runs} consecutive runs of each shape, "
             f"{options.processes} processes per run, default settings (CLAIM_BUSY_TIMEOUT_MS 3000, CLAIM_SYNC "
             f"full) · load average at the start {load:.2f}",
             "",
             "| journal | file | shape | runs with only 200/409 | p50 ms | p99 ms | max ms | CPU ms per run (median) "
             "| failures |",
             "|---|---|---|---|---|---|---|---|---|"]
    for combo in combos:
        shape, fresh, journal = combo
        s = stats[combo]
        ok = sum(1 for good, _ in s["runs"] if good)
        bad = ", ".join(f"{k}: {v}" for k, v in sorted(s["bad"].items())) or "none"
        lines.append(f"| {journal} | {'fresh' if fresh else 'existing'} | {shape} | {ok}/{len(s['runs'])} | "
                     f"{percentile(s['ms'], 50):.0f} | {percentile(s['ms'], 99):.0f} | {max(s['ms']):.0f} | "
                     f"{statistics.median(s['cpu']):.0f} | {bad} |")
    lines += ["", "Latency: from the write of a process's request to its exit, over every process of every run of "
              "the shape. CPU: user + system time of all processes of one run (wait4), the cost of waiting included.",
              "", END]
    block = "\n".join(lines)
    publish(block, options.out, BEGIN, END, write=not options.no_write)


if __name__ == "__main__":
    main()
