#!/usr/bin/env python3
"""`verify` (CLAIM_VERIFY=off, by the owner) latency on PostgreSQL: directly and through PgBouncer per auth setting.

Run through bench/pgbouncer.sh, which starts the server (scripts/postgres.sh) and one PgBouncer per auth setting
(scripts/pgbouncer.sh) and builds the programs. Every (connection, program) pair runs in a rotating order, one
process per request; the report gives medians and p10-p90 per pair, and our side of a SCRAM login measured by
bench/scram_cost.c. Standard library only.
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import sys
import tempfile
import textwrap

from common import evict, percentile, run_once, publish

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN = "<!-- bench/pgbouncer output: begin -->"
END = "<!-- bench/pgbouncer output: end -->"
TARGET_MS = 4.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--program", action="append", required=True, help="LABEL=PATH; the first is under test")
    parser.add_argument("--connection", action="append", required=True,
                        help="LABEL::URL (a postgres:// URL with its sslmode), in report order; LABEL::URL::first "
                             "for a URL only the first program understands (the others' cells say so)")
    parser.add_argument("--scram-cost", help="file with bench/scram_cost's output")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--command", default="bench/pgbouncer.sh")
    options = parser.parse_args()
    # The page cache decides ~0.3 ms of a start-up (BENCHMARKS.md, scenario 1), so each binary runs from a fresh
    # copy held as written, and this tree's also from a copy evicted once and read back from disk.
    copies = tempfile.mkdtemp(prefix="claim-bench-pgbouncer-")
    # Each program its own database (claim, claim_1, … created by pgbouncer.sh): a newer binary migrates the schema
    # past what an older one accepts.
    programs, databases = [], {}
    for j, (label, path) in enumerate(p.split("=", 1) for p in options.program):
        states = ["as written", "evicted"] if j == 0 else ["as written"]
        for state in states:
            copy = os.path.join(copies, f"{j}-{state.replace(' ', '-')}")
            shutil.copy2(path, copy)
            if state == "evicted":
                evict(copy)
            programs.append((f"{label}, {state}", [copy]))
            databases[f"{label}, {state}"] = "claim" if j == 0 else f"claim_{j}"
    connections = [tuple(c.split("::")[:2]) for c in options.connection]
    first_only = {c.split("::")[0] for c in options.connection if c.endswith("::first")}
    first = options.program[0].split("=", 1)[0]
    request = json.dumps({"action": "verify", "username": "alice", "user_id": "owner", "request_id": "bench"}).encode()
    pairs = [(c, p) for c, _ in connections for p, _ in programs if c not in first_only or p.startswith(first + ", ")]
    argv = dict(programs)
    env = {(c, p): {"PATH": "/usr/bin:/bin", "CLAIM_AUTH": "trusted", "CLAIM_VERIFY": "off",
                    "CLAIM_DATABASE_URL": url.replace("/claim?", f"/{databases[p]}?", 1)}
           for c, url in connections for p, _ in programs}
    for c, p in pairs:
        wall, ok, out = run_once(argv[p], request, env[(c, p)])
        assert ok, f"{p} through {c}: {out!r}"
    times = {pair: [] for pair in pairs}
    load = os.getloadavg()[0]
    for i in range(options.runs + 10):
        k = i % len(pairs)
        order = pairs[k:] + pairs[:k]
        if (i // len(pairs)) % 2:
            order.reverse()
        for c, p in order:
            wall, ok, out = run_once(argv[p], request, env[(c, p)])
            if not ok:
                print(f"{p} through {c}: {out!r}", file=sys.stderr)
            if i >= 10:
                times[(c, p)].append(wall)
    shutil.rmtree(copies)
    report(options, connections, programs, times, load)


def report(options, connections, programs, times, load):
    """The table, and the target line for each sslmode=disable connection through PgBouncer with the SCRAM
    secret."""
    labels = [p for p, _ in programs]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [BEGIN, "", textwrap.fill(
        f"Run: {now} · `{options.command}` · {options.runs} runs per connection per program, all pairs in a rotating "
        "order; wall-clock ms from posix_spawn to wait4 of one `verify` (CLAIM_VERIFY=off) by the profile's owner, "
        f"a whole process: connect, log in, schema check, claim, commit. \"As written\": a fresh copy of the binary, "
        "held in the page cache as written; \"evicted\": a fresh copy dropped from the page cache once before the "
        f"runs and read back from disk by the first. Load average at the start {load:.2f}.",
        120, break_long_words=False, break_on_hyphens=False), "",
        "| connection | " + " | ".join(f"{label} median ms (p10–p90)" for label in labels) + " |",
        "|---" * (len(labels) + 1) + "|"]
    for c, url in connections:
        cells = []
        for label in labels:
            t = times.get((c, label))
            cells.append(f"{statistics.median(t):.2f} ({percentile(t, 10):.2f}–{percentile(t, 90):.2f})" if t
                         else "— (no such URL parameter)")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    targets = [c for c, _ in connections
               if c.startswith("PgBouncer, scram-sha-256 (SCRAM secret") and c.endswith("sslmode=disable")]
    if targets:
        lines.append("")
    for target in targets:
        median = statistics.median(times[(target, labels[0])])
        lines.append(f"- {target}: **{median:.2f} ms** median for {labels[0]} (target ≤ {TARGET_MS:.0f} ms: "
                     f"{'**met**' if median <= TARGET_MS else '**not met**'}).")
    if options.scram_cost:
        lines += ["", "Our side of one SCRAM login, each step in a fresh process (`bench/scram_cost.c`, median µs of "
                  "200 processes):", "", "| step | µs |", "|---|---|"]
        for line in open(options.scram_cost):
            us, _, step = line.strip().partition("\t")
            lines.append(f"| {step} | {us} |")
    lines += ["", END]
    block = "\n".join(lines)
    publish(block, options.out, BEGIN, END, write=not options.no_write)


if __name__ == "__main__":
    main()
