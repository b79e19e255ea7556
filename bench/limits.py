#!/usr/bin/env python3
"""What the abuse limits add to a verify through the LeetCode fake, on SQLite and on PostgreSQL.

Driven by bench/limits.sh, which builds both programs: "limiter", this tree with every limit at its maximum (the
limiter cannot be switched off: at their maximum the limits never refuse, but every verify still takes its slot and
reads the breaker), and "before", the tree just before the limiter was added. The timed request is an owner's
re-sync verify: one reservation (limiter only), one GraphQL request to the fake, one resync transaction. Run i is
owner i mod 50's, as requests come from many callers: a caller's own window holds few slots (one caller re-syncing
a thousand times an hour would walk a thousand index entries of their own). The fake is
reached over plain http://127.0.0.1, so that the TLS handshake's few milliseconds of variance do not hide a
difference of a tenth of one. The two programs alternate run by run (A B, then B A), each on its own database.
Rewrites only its own section of BENCHMARKS.md. Measures, asserts nothing.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import check, fmt, interleave, machine, median, met, para, percentile, request, run_once, toolchain  # noqa: E402
from common import publish  # noqa: E402

BEGIN = "<!-- bench/limits output: begin -->"
END = "<!-- bench/limits output: end -->"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAXIMUM = {"CLAIM_MAX_LIVE_CHALLENGES": "100", "CLAIM_VERIFY_PER_HOUR": "10000",
           "CLAIM_LEETCODE_PER_MINUTE": "100000", "CLAIM_BREAKER_FAILURES": "1000"}
TARGET_MS = 0.3  # on SQLite
OWNERS = 50


def start_fake(work):
    fake = os.path.join(ROOT, "Tests", "fake_leetcode", "server.py")
    profiles = os.path.join(work, "profiles.json")
    with open(profiles, "w") as f:
        json.dump({}, f)
    server = subprocess.Popen([sys.executable, fake, "--profiles", profiles, "--http", "--watch-stdin"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    port = json.loads(server.stdout.readline())["http_port"]
    return server, f"http://127.0.0.1:{port}/graphql", profiles


def psql(admin, sql):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *admin, "-d", "postgres", "-c", sql], check=True,
                   capture_output=True)


def owner_of_a_profile(program, env, username, profiles, owner="owner"):
    """challenge, the code into the fake's profile, the claiming verify: afterwards every verify is a re-sync."""
    _, _, code, response = run_once(program, request("challenge", username, owner), env)
    if not check(response, code, 200):
        raise SystemExit(f"challenge answered {response}")
    with open(profiles) as f:
        data = json.load(f)
    data[username] = {"realName": "Bench", "aboutMe": response["result"]["code"], "ranking": 1234, "easy": 1,
                      "medium": 2, "hard": 3, "all": 6}
    with open(profiles, "w") as f:
        json.dump(data, f)
    _, _, code, response = run_once(program, request("verify", username, owner), env)
    if not check(response, code, 200):
        raise SystemExit(f"the claiming verify answered {response}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limiter", required=True, help="this tree's stripped static binary")
    parser.add_argument("--before", required=True, help="the binary built from the tree before the limiter")
    parser.add_argument("--before-rev", required=True, help="that tree's revision, for the report")
    parser.add_argument("--work", required=True, help="scratch folder for databases and the fake's profiles")
    parser.add_argument("--postgres-dir", required=True, help="a server started by scripts/postgres.sh")
    parser.add_argument("--pgbouncer-url", required=True, help="its URL through scripts/pgbouncer.sh")
    parser.add_argument("--runs", type=int, default=1000, help="timed runs per program per backend")
    parser.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    parser.add_argument("--command", default="bench/limits.sh")
    options = parser.parse_args()
    runs = options.runs
    programs = {"limiter": [os.path.abspath(options.limiter)], "before": [os.path.abspath(options.before)]}
    work = os.path.abspath(options.work)
    url = open(os.path.join(options.postgres_dir, "url")).read().strip()
    admin = open(os.path.join(options.postgres_dir, "admin")).read().split()
    server, graphql, profiles = start_fake(work)
    results, load = {}, {}
    try:
        for backend in ("sqlite", "postgres", "postgres via PgBouncer"):
            cases = []
            for name, program in programs.items():
                env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "CLAIM_AUTH": "trusted",
                       "CLAIM_VERIFY": "leetcode", "LEETCODE_GRAPHQL_URL": graphql, **MAXIMUM}
                tag = f"{backend.split()[-1].lower()}-{name}"
                if backend == "sqlite":
                    env["CLAIM_DB"] = os.path.join(work, name, "claims.sqlite")
                else:
                    database = f"bench_limits_{tag}".replace("-", "_")
                    psql(admin, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
                    psql(admin, f"CREATE DATABASE {database} OWNER claim")
                    base = (options.pgbouncer_url if "PgBouncer" in backend else url).rsplit("/", 1)[0]
                    env["CLAIM_DATABASE_URL"] = f"{base}/{database}?sslmode=disable"
                for k in range(OWNERS):
                    owner_of_a_profile(program, env, f"{tag}-{k}", profiles, f"owner-{k}")
                cases.append((name, program, env,
                              lambda i, u=tag: request("verify", f"{u}-{i % OWNERS}", f"owner-{i % OWNERS}"), 200))
            load[backend] = os.getloadavg()[0]
            print(f"{backend}: {runs} runs per program ...", file=sys.stderr)
            results[backend] = interleave(cases, runs, 20)
    finally:
        server.stdin.close()
        server.wait(timeout=10)
    write_report(options, runs, results, load)


def write_report(options, runs, results, load):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [BEGIN, "", f"Run: {now} · machine: {machine()}", "", para(f"Toolchain: {toolchain()}"), "",
           para(f"Command: `{options.command}` · {runs} timed runs per program per backend (after 20 warm-up), "
                f"alternated ABBA, each an owner's re-sync (run i by owner i mod {OWNERS}); \"before\" is revision "
                f"{options.before_rev}, the tree just before the limiter; \"limiter\" has every limit at its "
                "maximum. Times are wall-clock from posix_spawn to wait4 "
                "(includes fork/exec and the fake's answer); CPU is the child's user+sys. Load average (1 min) at "
                "the start: " + ", ".join(f"{k} {v:.2f}" for k, v in load.items()) + "."), "",
           "| backend | before: median ms (p10–p90), p99 | limiter: median ms (p10–p90), p99 | added: difference of "
           "medians | added: median of paired differences | added CPU (medians) | target | |",
           "|---|---|---|---|---|---|---|---|"]
    for backend, r in results.items():
        def cell(x):
            w = x["wall"]
            return (f"{fmt(median(w))} ({fmt(percentile(w, 10))}–{fmt(percentile(w, 90))}), "
                    f"{fmt(percentile(w, 99))}")
        added = median(r["limiter"]["wall"]) - median(r["before"]["wall"])
        # Runs i of both programs are neighbours in time: their differences cancel a load that drifts.
        paired = median([a - b for a, b in zip(r["limiter"]["wall"], r["before"]["wall"])])
        cpu = median(r["limiter"]["cpu"]) - median(r["before"]["cpu"])
        target = f"≤ {TARGET_MS} ms" if backend == "sqlite" else "—"
        verdict = met(added <= TARGET_MS) if backend == "sqlite" else ""
        out.append(f"| {backend} | {cell(r['before'])} | {cell(r['limiter'])} | {added:+.3f} ms | {paired:+.3f} ms "
                   f"| {cpu:+.3f} ms | {target} | {verdict} |")
        bad = {k: v["bad"] for k, v in r.items() if v["bad"]}
        if bad:
            out.append(f"| {backend}: unexpected answers | {bad} | | | | | | |")
    out += ["", END]
    publish("\n".join(out), options.out, BEGIN, END)


if __name__ == "__main__":
    main()
