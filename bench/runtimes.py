#!/usr/bin/env python3
"""Throughput and latency of `verify` (CLAIM_VERIFY=off, the owner again) through the OpenFaaS classic watchdog and
the of-watchdog (streaming), and by direct invocation, at several concurrencies: ours beside the C floor
(bench/floor.c) under the same runtime, runs alternated ABBA. Run through bench/runtimes.sh, which builds everything
first. Rewrites only the part of BENCHMARKS.md between its own two marker lines. Standard library only.

Each watchdog runs in a network namespace of its own (its ports 8080/8081 are fixed) and wrk runs inside it
(nsenter). Direct invocation is this driver keeping N processes alive, each fed the request on stdin, timing
posix_spawn to wait4. Every response is checked: wrk's Lua script counts bodies without "status":200, the direct
driver parses every stdout.
"""
import argparse
import datetime
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from common import publish  # bench/common.py, beside this script

BEGIN = "<!-- bench/runtimes output: begin -->"
END = "<!-- bench/runtimes output: end -->"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUEST = {"action": "verify", "username": "bench", "user_id": "owner"}
WATCHDOGS = {
    # name: (binary in RUNTIMES, the recipe's settings for it)
    "classic watchdog 0.2.2": ("fwatchdog", {"combine_output": "false", "content_type": "application/json",
                                             "CLAIM_EXIT_CODES": "zero"}),
    "of-watchdog 0.9.12 (streaming)": ("of-watchdog", {"mode": "streaming", "content_type": "application/json",
                                                       "prefix_logs": "false"}),
}
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '%s'
local bad = 0
response = function(status, headers, body)
  if status ~= 200 or not string.find(body, '"status":200', 1, true) then bad = bad + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("bad-responses: %%d\\n", bad))
end
"""


def program_env(db):
    return {"PATH": "/usr/bin:/bin", "CLAIM_AUTH": "trusted", "CLAIM_VERIFY": "off", "CLAIM_DB": db}


def claim_once(program, env):
    """The owner claims the profile once, so every timed request is the idempotent re-verify (a write each time)."""
    out = subprocess.run([program], input=json.dumps(REQUEST).encode(), env=env, capture_output=True, check=True)
    assert json.loads(out.stdout)["status"] == 200, out.stdout


# --- through a watchdog -------------------------------------------------------------------------------------------

class Watchdog:
    def __init__(self, binary, settings, program, env, log):
        script = 'ip link set lo up\nexec "$@"'
        full = dict(env, fprocess=program, **settings)
        self.proc = subprocess.Popen(["unshare", "--net", "--fork", "--", "sh", "-c", script, "watchdog", binary],
                                     env=full, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while subprocess.run(self.netns(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                         "http://127.0.0.1:8080/_/health"]), capture_output=True).stdout != b"200":
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"{binary} did not start")
            time.sleep(0.05)

    def netns(self, argv):
        return ["nsenter", f"--net=/proc/{self.proc.pid}/ns/net", *argv]

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def to_ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(watchdog, script, concurrency, seconds):
    threads = min(concurrency, os.cpu_count() or 1)
    out = subprocess.run(watchdog.netns(["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{seconds}s",
                                         "--latency", "-s", script, "http://127.0.0.1:8080/"]),
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"\n\s+50%\s+(\S+)", out).group(1))
    p99 = to_ms(re.search(r"\n\s+99%\s+(\S+)", out).group(1))
    errors = int(re.search(r"bad-responses: (\d+)", out).group(1))
    errors += int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return rps, p50, p99, errors


# --- direct invocation --------------------------------------------------------------------------------------------

def direct(program, env, concurrency, seconds):
    """Keeps `concurrency` processes alive for `seconds`: requests/s, p50 and p99 ms, and the responses not 200."""
    body = json.dumps(REQUEST).encode()
    alive = {}
    latencies = []
    errors = 0

    def spawn():
        r_in, w_in = os.pipe()
        os.write(w_in, body)
        os.close(w_in)
        r_out, w_out = os.pipe()
        actions = [(os.POSIX_SPAWN_DUP2, r_in, 0), (os.POSIX_SPAWN_DUP2, w_out, 1),
                   (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)]
        started = time.perf_counter_ns()
        pid = os.posix_spawn(program, [program], env, file_actions=actions)
        os.close(r_in)
        os.close(w_out)
        alive[pid] = (started, r_out)

    start = time.monotonic()
    for _ in range(concurrency):
        spawn()
    while alive:
        pid, status = os.wait()
        started, r_out = alive.pop(pid)
        latencies.append((time.perf_counter_ns() - started) / 1e6)
        out = b""
        while chunk := os.read(r_out, 65536):
            out += chunk
        os.close(r_out)
        try:
            ok = json.loads(out)["status"] == 200 and os.waitstatus_to_exitcode(status) == 0
        except ValueError:
            ok = False
        errors += not ok
        if time.monotonic() - start < seconds:
            spawn()
    elapsed = time.monotonic() - start
    latencies.sort()
    return len(latencies) / elapsed, percentile(latencies, 50), percentile(latencies, 99), errors


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))]


# --- the run ------------------------------------------------------------------------------------------------------

def measure(args, work, databases):
    programs = {"ours": args.ours, "floor": args.floor}
    envs = {name: program_env(os.path.join(databases, name, "claims.sqlite")) for name in programs}
    for name, program in programs.items():
        os.makedirs(os.path.join(databases, name))
        claim_once(program, envs[name])
    script = os.path.join(work, "verify.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT % json.dumps(REQUEST))
    rows = []
    order = ["ours", "floor", "floor", "ours"] * (args.rounds // 2)
    paths = [("direct invocation", None)] + [(name, spec) for name, spec in WATCHDOGS.items()]
    for path, spec in paths:
        for concurrency in args.concurrency:
            runs = {"ours": [], "floor": []}
            load = os.getloadavg()[0]
            for name in order:
                if spec is None:
                    runs[name].append(direct(programs[name], envs[name], concurrency, args.seconds))
                    continue
                binary, settings = spec
                with open(os.path.join(work, f"{name}.log"), "ab") as log:
                    watchdog = Watchdog(os.path.join(args.runtimes, binary), settings, programs[name], envs[name],
                                        log)
                    try:
                        runs[name].append(wrk(watchdog, script, concurrency, args.seconds))
                    finally:
                        watchdog.stop()
            rows.append((path, concurrency, load, {k: summarize(v) for k, v in runs.items()}))
            print(f"{path} c={concurrency}: {rows[-1][3]}", file=sys.stderr)
    return rows


def summarize(runs):
    """Medians over the rounds of requests/s, p50 and p99; errors summed."""
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
            statistics.median(r[2] for r in runs), sum(r[3] for r in runs))


def render(args, rows):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    lines = [BEGIN, "",
             f"Run: {now} · machine: {os.cpu_count()} cores, {cpu}, Linux {platform.release()} · command: "
             f"`{args.command}`", "",
             f"`verify` with `CLAIM_VERIFY=off` by the profile's owner (a write transaction every time), "
             f"`CLAIM_AUTH=trusted`, each program with its own SQLite database in `{args.db_dir}` (tmpfs by "
             f"default, so that the figures are about processes and runtimes, not the disk's fsync). Each cell: "
             f"{args.rounds} runs of {args.seconds} s per program, alternated ABBA, median of the runs' figures; "
             f"latency is what the HTTP client (wrk, keep-alive connections) or the direct driver saw. Binaries "
             f"warm in the page cache (as built, run over and over). Watchdogs with the recipes' settings.", "",
             "| path | concurrency | ours req/s | floor req/s | floor/ours | ours p50 ms | floor p50 ms | "
             "ours p99 ms | floor p99 ms | errors | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    worst = 0.0
    for path, concurrency, load, r in rows:
        ours, floor = r["ours"], r["floor"]
        ratio = floor[0] / ours[0]
        if path != "direct invocation":
            worst = max(worst, ratio)
        lines.append(f"| {path} | {concurrency} | {ours[0]:.0f} | {floor[0]:.0f} | {ratio:.2f}× | {ours[1]:.2f} | "
                     f"{floor[1]:.2f} | {ours[2]:.2f} | {floor[2]:.2f} | {ours[3] + floor[3]} | {load:.2f} |")
    lines += ["", "What each runtime itself costs, at concurrency 1 (p50 through it − p50 direct, same program):", "",
              "| runtime | ours | floor |", "|---|---|---|"]
    base = {r[0]: r[3] for r in rows if r[0] == "direct invocation" and r[1] == 1}.get("direct invocation")
    for path, concurrency, _, r in rows:
        if base and path != "direct invocation" and concurrency == 1:
            lines.append(f"| {path} | {r['ours'][1] - base['ours'][1]:+.2f} ms | "
                         f"{r['floor'][1] - base['floor'][1]:+.2f} ms |")
    verdict = "met" if worst <= 1.3 else "not met"
    lines += ["", f"Largest floor/ours throughput ratio through a watchdog: **{worst:.2f}×** (target ≤ 1.3×: "
                  f"**{verdict}**). `errors` counts responses that were not HTTP 200 with `\"status\":200` in the "
                  f"body (and wrk's socket errors).", "", END]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ours", required=True)
    parser.add_argument("--floor", required=True)
    parser.add_argument("--runtimes", required=True, help="folder with fwatchdog and of-watchdog")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=int, default=3, help="length of one run")
    parser.add_argument("--rounds", type=int, default=4, help="runs per program per cell (even: ABBA)")
    parser.add_argument("--db-dir", default="/dev/shm", help="where the databases live (default: tmpfs)")
    parser.add_argument("--command", default="bench/runtimes.sh")
    parser.add_argument("--output", default=os.path.join(ROOT, "BENCHMARKS.md"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-runtimes-") as work, \
            tempfile.TemporaryDirectory(prefix="bench-runtimes-", dir=args.db_dir) as databases:
        rows = measure(args, work, databases)
    section = render(args, rows)
    publish(section, args.output, BEGIN, END)


if __name__ == "__main__":
    main()
