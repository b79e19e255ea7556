#!/usr/bin/env python3
"""Warm invokes through AWS's Lambda Runtime Interface Emulator (aws-lambda-rie, from ../shared/runtimes): our
binary as its own runtime (the native loop) beside the shell+curl bootstrap of AWS's tutorial piping each event into
ours in function mode (the former recipe), and into the C floor (bench/floor.c, SQLite only). `status` and `verify`
(CLAIM_VERIFY=off, the owner again: a write transaction every time) on SQLite and on PostgreSQL; medians and p99 of
the emulator's REPORT Duration and of the client's round trip; the runtime's peak memory; the first invoke's init.
Run through bench/lambda.sh, which builds everything and starts a PostgreSQL server first. Rewrites only the part of
BENCHMARKS.md between its own two marker lines. Standard library only.

Every program has its own emulator (own ports), database and cgroup; invokes alternate between the programs round
by round (A B C, then C B A), so a noisy neighbour hits all alike. Every answer is checked for `"status":200`.
"""
import argparse
import datetime
import http.client
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from bench import evict, percentile  # bench/bench.py, beside this script
from common import publish  # bench/common.py, beside this script

BEGIN = "<!-- bench/lambda output: begin -->"
END = "<!-- bench/lambda output: end -->"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHELL_BOOTSTRAP = os.path.join(ROOT, "bench", "lambda-bootstrap.sh")
MEMORY_CGROUP = "/sys/fs/cgroup/memory"
REQUESTS = {
    "status": {"action": "status", "username": "bench", "user_id": "owner"},
    "verify": {"action": "verify", "username": "bench", "user_id": "owner"},
}


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class Cgroup:
    """A cgroup v1 memory group for one runtime's processes: its peak usage is the nearest thing here to Lambda's
    Max Memory Used (the emulator only echoes the configured memory size). None where none can be made."""

    def __init__(self):
        self.path = None
        if os.path.isdir(MEMORY_CGROUP) and os.access(MEMORY_CGROUP, os.W_OK):
            path = os.path.join(MEMORY_CGROUP, f"bench-lambda-{uuid.uuid4().hex[:10]}")
            try:
                os.mkdir(path)
                self.path = path
            except OSError:
                pass

    def wrap(self, command):
        """`command` started inside the group, by a shell that joins it and execs (once, at the runtime's start)."""
        if not self.path:
            return command
        return ["sh", "-c", f'echo $$ > {self.path}/cgroup.procs && exec "$@"', "join", *command]

    def reset_peak(self):
        if self.path:
            with open(os.path.join(self.path, "memory.max_usage_in_bytes"), "w") as f:
                f.write("0")

    def peak_mb(self):
        if not self.path:
            return None
        with open(os.path.join(self.path, "memory.max_usage_in_bytes")) as f:
            return int(f.read()) / 1e6

    def remove(self):
        if self.path:
            for _ in range(50):
                try:
                    os.rmdir(self.path)
                    return
                except OSError:
                    time.sleep(0.1)


class Emulator:
    def __init__(self, rie, command, env, log_path):
        self.port, api_port = free_ports(2)
        self.cgroup = Cgroup()
        self.log_path = log_path
        self.log = open(log_path, "wb")
        argv = [rie, "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}",
                "--runtime-api-address", f"127.0.0.1:{api_port}", *self.cgroup.wrap(command)]
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit(f"the emulator did not start: {open(log_path).read()}")
                time.sleep(0.02)
        self.client = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def invoke(self, request):
        """One invoke over a kept-alive connection: the client's round trip in ms; the answer must be a 200."""
        body = json.dumps(request).encode()
        started = time.perf_counter_ns()
        self.client.request("POST", "/2015-03-31/functions/function/invocations", body=body)
        response = self.client.getresponse()
        answer = response.read()
        elapsed = (time.perf_counter_ns() - started) / 1e6
        if response.status != 200 or json.loads(answer).get("status") != 200:
            raise SystemExit(f"unexpected answer {response.status} {answer!r}: {self.text()[-3000:]}")
        return elapsed

    def text(self):
        return open(self.log_path, errors="replace").read()

    def durations(self):
        """REPORT Duration (ms) of every invoke so far, in order."""
        return [float(d) for d in re.findall(r"REPORT RequestId: \S+\t(?:Init Duration: [\d.]+ ms\t)?"
                                             r"Duration: ([\d.]+) ms", self.text())]

    def init_ms(self):
        """rapid's INIT REPORT: from starting the runtime to its first /next (the REPORT's own Init Duration is
        measured around an asynchronous call and means nothing)."""
        return [float(x) for x in re.findall(r"INIT REPORT\(durationMs: ([\d.]+)\)", self.text())]

    def runtime_pids(self):
        pids = []
        for task in os.listdir(f"/proc/{self.proc.pid}/task"):
            with open(f"/proc/{self.proc.pid}/task/{task}/children") as f:
                pids += [int(p) for p in f.read().split()]
        return pids

    def stop(self):
        self.client.close()
        # The emulator starts the runtime in a process group of its own: both go by their ids.
        for pid in self.runtime_pids() + [self.proc.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.log.close()
        self.cgroup.remove()


def vm_hwm_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return int(fields["VmHWM"].split()[0]) * 1024 / 1e6


# --- the run ------------------------------------------------------------------------------------------------------

def programs_for(args, backend):
    programs = {"native loop": [args.ours], "shell+curl → ours": [SHELL_BOOTSTRAP]}
    if backend == "SQLite":
        programs["shell+curl → C floor"] = [SHELL_BOOTSTRAP]
    return programs


def environment(args, backend, program, databases, index):
    env = {"PATH": "/usr/bin:/bin", "CLAIM_AUTH": "trusted", "CLAIM_VERIFY": "off"}
    if program.startswith("shell"):
        env["CLAIM_COMMAND"] = args.floor if "floor" in program else args.ours
    if backend == "SQLite":
        env["CLAIM_DB"] = os.path.join(databases, f"p{index}", "claims.sqlite")
        os.makedirs(os.path.dirname(env["CLAIM_DB"]), exist_ok=True)
    else:
        name = f"bench_{uuid.uuid4().hex[:12]}"
        subprocess.run(["psql", "-X", "-q", *args.pg_admin, "-d", "postgres", "-c",
                        f"CREATE DATABASE {name} OWNER claim"], check=True)
        env["CLAIM_DATABASE_URL"] = args.pg_url.rsplit("/", 1)[0] + "/" + name
    return env


def measure_backend(args, backend, work, databases):
    programs = programs_for(args, backend)
    emulators = {}
    first = {}
    try:
        for index, (name, command) in enumerate(programs.items()):
            env = environment(args, backend, name, databases, index)
            emulators[name] = Emulator(args.emulator, command, env, os.path.join(work, f"{backend}-{index}.log"))
            client = emulators[name].invoke(REQUESTS["verify"])  # the claim; the runtime starts here
            first[name] = (emulators[name].init_ms()[0], emulators[name].durations()[0], client)
        names = list(programs)
        results = {}
        for action, request in REQUESTS.items():
            load = os.getloadavg()[0]
            for _ in range(args.warmup):
                for name in names:
                    emulators[name].invoke(request)
            for emulator in emulators.values():
                emulator.cgroup.reset_peak()
            before = {name: len(e.durations()) for name, e in emulators.items()}
            clients = {name: [] for name in names}
            for round_ in range(args.invokes):
                for name in names if round_ % 2 == 0 else reversed(names):
                    clients[name].append(emulators[name].invoke(request))
            time.sleep(0.2)  # the last REPORT lines
            for name, emulator in emulators.items():
                durations = emulator.durations()[before[name]:]
                assert len(durations) == args.invokes, (name, len(durations))
                results[(action, name)] = dict(
                    duration=(statistics.median(durations), percentile(durations, 99)),
                    client=(statistics.median(clients[name]), percentile(clients[name], 99)),
                    peak_mb=emulator.cgroup.peak_mb(), load=load,
                    hwm_mb=vm_hwm_mb(emulator.runtime_pids()[0]) if name == "native loop" else None)
                print(f"{backend} {action} {name}: {results[(action, name)]}", file=sys.stderr)
        return first, results
    finally:
        for emulator in emulators.values():
            emulator.stop()


def cold_init(args, work, databases):
    """The native loop's and the shell bootstrap's init with their binaries re-read from disk (page cache dropped
    for ours, the floor and the bootstrap script): INIT REPORT and the first invoke."""
    rows = {}
    for index, (name, command) in enumerate(programs_for(args, "SQLite").items()):
        if "floor" in name:
            continue
        for path in (args.ours, SHELL_BOOTSTRAP):
            evict(path)
        env = environment(args, "SQLite", name, databases, 100 + index)
        emulator = Emulator(args.emulator, command, env, os.path.join(work, f"cold-{index}.log"))
        try:
            client = emulator.invoke(REQUESTS["verify"])
            rows[name] = (emulator.init_ms()[0], emulator.durations()[0], client)
        finally:
            emulator.stop()
    return rows


def render(args, measured, cold):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    lines = [BEGIN, "",
             f"Run: {now} · machine: {os.cpu_count()} cores, {cpu}, Linux {platform.release()} · command: "
             f"`{args.command}`", "",
             f"{args.invokes} timed warm invokes per program and action (after {args.warmup} untimed), alternated "
             f"round by round; `CLAIM_AUTH=trusted`, `CLAIM_VERIFY=off`, `status` and `verify` by the profile's "
             f"owner (`verify` writes every time: SQLite `synchronous=FULL` on `{args.db_dir}`, PostgreSQL 15 on "
             f"loopback with fsync on). Duration is the emulator's REPORT (from the invoke until the runtime asks "
             f"for the next event); the client's round trip adds the emulator's own HTTP. Peak memory is the "
             f"runtime's cgroup (every process it starts) over the timed invokes; VmHWM is the native process's "
             f"peak RSS since it started. Binaries warm in the page cache (as built).", ""]
    verify_native = []
    speedups = []
    for backend, (first, results) in measured.items():
        lines += [f"#### {backend}", "",
                  "| action | program | Duration median ms | Duration p99 ms | client median ms | client p99 ms | "
                  "peak memory MB | VmHWM MB | Duration vs native | load |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for (action, name), r in results.items():
            native = results[(action, "native loop")]["duration"][0]
            ratio = r["duration"][0] / native
            if name == "native loop" and action == "verify":
                verify_native.append((backend, r["duration"][0]))
            if name == "shell+curl → ours":
                speedups.append((backend, action, ratio))
            peak = f"{r['peak_mb']:.1f}" if r["peak_mb"] is not None else "n/a"
            hwm = f"{r['hwm_mb']:.1f}" if r["hwm_mb"] is not None else "—"
            lines.append(f"| `{action}` | {name} | {r['duration'][0]:.2f} | {r['duration'][1]:.2f} | "
                         f"{r['client'][0]:.2f} | {r['client'][1]:.2f} | {peak} | {hwm} | {ratio:.1f}× | "
                         f"{r['load']:.2f} |")
        lines += ["", "First invoke (a fresh emulator; the runtime starts on it): init is rapid's `INIT REPORT` "
                      "(from starting the runtime to its first request for an event; ours opens the store "
                      "there), then the first invoke (the claim).", "",
                  "| program | init ms | first invoke Duration ms | first invoke client ms |", "|---|---|---|---|"]
        for name, (init, duration, client) in first.items():
            lines.append(f"| {name} | {init:.2f} | {duration:.2f} | {client:.2f} |")
        lines.append("")
    lines += ["#### Init with the binaries re-read from disk (SQLite)", "",
              "| program | init ms | first invoke Duration ms | first invoke client ms |", "|---|---|---|---|"]
    for name, (init, duration, client) in cold.items():
        lines.append(f"| {name} | {init:.2f} | {duration:.2f} | {client:.2f} |")
    worst_verify = max(d for _, d in verify_native)
    least_speedup = min(s for _, _, s in speedups)
    lines += ["", f"Warm `verify` (off), native loop, median Duration: "
                  + ", ".join(f"{b} {d:.2f} ms" for b, d in verify_native)
                  + f" (target ≤ 2 ms on either backend: **{'met' if worst_verify <= 2 else 'not met'}**). "
                  f"Native loop against the shell bootstrap running ours, median Duration: "
                  + ", ".join(f"{b} `{a}` {s:.1f}×" for b, a, s in speedups)
                  + f" (target ≥ 10×: **{'met' if least_speedup >= 10 else 'not met'}**).", "", END]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ours", required=True)
    parser.add_argument("--floor", required=True)
    parser.add_argument("--emulator", required=True, help="aws-lambda-rie")
    parser.add_argument("--postgres-dir", required=True, help="a server started by scripts/postgres.sh")
    parser.add_argument("--invokes", type=int, default=500, help="timed invokes per program and action")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--db-dir", default=tempfile.gettempdir(), help="where the SQLite files live")
    parser.add_argument("--command", default="bench/lambda.sh")
    parser.add_argument("--output", default=os.path.join(ROOT, "BENCHMARKS.md"))
    args = parser.parse_args()
    args.pg_url = open(os.path.join(args.postgres_dir, "url")).read().strip()
    args.pg_admin = open(os.path.join(args.postgres_dir, "admin")).read().split()
    with tempfile.TemporaryDirectory(prefix="bench-lambda-") as work, \
            tempfile.TemporaryDirectory(prefix="bench-lambda-", dir=args.db_dir) as databases:
        measured = {backend: measure_backend(args, backend, work, databases) for backend in ("SQLite", "PostgreSQL")}
        cold = cold_init(args, work, databases)
    section = render(args, measured, cold)
    publish(section, args.output, BEGIN, END)


if __name__ == "__main__":
    main()
