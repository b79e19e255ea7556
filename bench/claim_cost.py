#!/usr/bin/env python3
"""Cost of one claim, A/B: this tree's binary against a build of an older commit (and the C floor), in one run.

Each program gets its own database, created by its own first request. Three scenarios, one process per request,
the programs alternating in a rotating order run by run so that a noisy neighbour hits all alike:
  verify (off) by the owner again (a `reverify` event, the row rewritten), verify (off) by a new user on a free
  profile (an INSERT and a `claim` event), and `status` (read-only).
Then, per program, `strace` counts fsync/fdatasync calls over consecutive new-user claims and statuses, and the
size of `-wal` after every scenario is reported (it must stay bounded: see SQLiteConnection.checkpointFrames).

    bench/claim_cost.sh                  # builds this tree, commit 27eb8ec and the floor; rewrites its section
    python3 bench/claim_cost.py --program new=PATH --program main=PATH --runs 200 --no-write

Standard library only (and strace, which claim_cost.sh installs).
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

from common import evict, percentile, run_once, publish

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN = "<!-- bench/claim_cost output: begin -->"
END = "<!-- bench/claim_cost output: end -->"


def request(action, username, user_id):
    return json.dumps({"action": action, "username": username, "user_id": user_id, "request_id": "bench"}).encode()


def fsyncs(argv, env, requests):
    """fsync + fdatasync calls per process over `requests`, counted by strace."""
    calls = 0
    with tempfile.NamedTemporaryFile("r") as trace:
        for stdin in requests:
            subprocess.run(["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", trace.name, *argv],
                           input=stdin, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            trace.seek(0)
            calls += sum(1 for line in trace if "sync(" in line)
    return calls / len(requests)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--program", action="append", required=True,
                        help="LABEL=PATH[,VAR=VALUE...]; the first is the one under test, the second its baseline")
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--fsync-runs", type=int, default=100)
    parser.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--command", default="bench/claim_cost.sh")
    parser.add_argument("--note", default="", help="a sentence for the report (what the programs are)")
    options = parser.parse_args()

    work = tempfile.mkdtemp(prefix="claim-cost-")
    programs = []
    for spec in options.program:
        label, _, rest = spec.partition("=")
        path, *pairs = rest.split(",")
        folder = os.path.join(work, label)
        os.makedirs(folder)
        env = {"PATH": "/usr/bin:/bin", "CLAIM_DB": os.path.join(folder, "claims.sqlite"), "CLAIM_AUTH": "trusted",
               "CLAIM_VERIFY": "off", **dict(p.split("=", 1) for p in pairs)}
        programs.append((label, [os.path.abspath(path)], env))
        evict(os.path.abspath(path))

    for label, argv, env in programs:
        assert run_once(argv, request("verify", "alice", "owner"), env)[1], f"{label}: the first verify failed"

    scenarios = [
        ("verify (off) by the owner", lambda i: request("verify", "alice", "owner")),
        ("verify (off) by a new user, free profile", lambda i: request("verify", f"free-{i}", f"new-user-{i}")),
        ("status of a claimed profile", lambda i: request("status", "alice", "owner")),
    ]
    results = {}
    wal = {}
    load = {}
    for name, make in scenarios:
        load[name] = os.getloadavg()[0]
        print(f"{name} ...", file=sys.stderr)
        times = {label: [] for label, _, _ in programs}
        bad = {label: 0 for label, _, _ in programs}
        for i in range(options.runs + 20):
            k = i % len(programs)
            order = programs[k:] + programs[:k]
            if (i // len(programs)) % 2:
                order.reverse()
            for label, argv, env in order:
                wall, ok, _ = run_once(argv, make(i), env)
                bad[label] += not ok
                if i >= 20:
                    times[label].append(wall)
        results[name] = (times, bad)
        for label, _, env in programs:
            path = env["CLAIM_DB"] + "-wal"
            wal.setdefault(label, []).append(os.path.getsize(path) if os.path.exists(path) else 0)

    counts = {}
    if shutil.which("strace"):
        for label, argv, env in programs:
            print(f"fsyncs: {label} ...", file=sys.stderr)
            claims = [request("verify", f"sync-{i}", f"sync-user-{i}") for i in range(options.fsync_runs)]
            counts[label] = (fsyncs(argv, env, claims),
                             fsyncs(argv, env, [request("status", "alice", "owner")] * 20))
    shutil.rmtree(work)
    report(options, programs, scenarios, results, wal, counts, load)


def report(options, programs, scenarios, results, wal, counts, load):
    labels = [label for label, _, _ in programs]
    new, old = labels[0], labels[1]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [BEGIN, "",
             f"Run: {now} · `{options.command}` · {options.runs} timed runs per program per scenario (after 20 "
             "warm-up), programs alternating in a rotating order; wall-clock ms from posix_spawn to wait4; binaries "
             "evicted from the page cache once before the first scenario. Load average at each scenario's start: "
             + ", ".join(f"{v:.2f}" for v in load.values()) + ".", ""]
    if options.note:
        lines += [options.note, ""]
    lines += ["| scenario | " + " | ".join(f"{label} median (p10–p90)" for label in labels)
              + f" | {new} / {old} | target |", "|---" * (len(labels) + 3) + "|"]
    for name, _ in scenarios:
        times, bad = results[name]
        cells = [f"{statistics.median(times[l]):.2f} ({percentile(times[l], 10):.2f}–{percentile(times[l], 90):.2f})"
                 + (f" ⚠ {bad[l]} bad" if bad[l] else "") for l in labels]
        ratio = statistics.median(times[new]) / statistics.median(times[old])
        target = ""
        if name.startswith("verify"):
            target = f"≤ 0.80 ({'**met**' if ratio <= 0.8 else '**not met**'})"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio:.2f} | {target} |")
    lines.append("")
    if counts:
        lines += ["| per process | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|",
                  f"| fsync + fdatasync, verify (off) by a new user (mean of {options.fsync_runs}) | "
                  + " | ".join(f"{counts[l][0]:.2f}" for l in labels) + " |",
                  "| fsync + fdatasync, status (mean of 20) | " + " | ".join(f"{counts[l][1]:.2f}" for l in labels)
                  + " |"]
    lines.append("| `-wal` bytes after each scenario | " + " | ".join(
        " / ".join(str(b) for b in wal[l]) for l in labels) + " |")
    lines += ["", END]
    block = "\n".join(lines)
    publish(block, options.out, BEGIN, END, write=not options.no_write)


if __name__ == "__main__":
    main()
