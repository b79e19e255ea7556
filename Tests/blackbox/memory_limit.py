"""Runs the binary under a memory limit and reports its peak RSS (standard library only).

`run_limited` puts the binary in a fresh cgroup (v1 memory controller) limited to 32 MiB of RAM and swap, or under
RLIMIT_AS where no cgroup can be made, and reads its peak RSS from GNU time.
"""
import json
import os
import pathlib
import resource
import subprocess
import tempfile
import time
import uuid

from conftest import BINARY, Result

LIMIT_BYTES = 32 * 1024 * 1024
CGROUP_ROOT = pathlib.Path("/sys/fs/cgroup/memory")


def _own_memory_cgroup():
    """This process's memory cgroup folder (cgroup v1), or None."""
    try:
        for line in pathlib.Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if "memory" in controllers.split(","):
                return CGROUP_ROOT / path.lstrip("/")
    except OSError:
        pass
    return None


class MemoryLimit:
    """A child cgroup of our own limited to LIMIT_BYTES (RAM and swap), or None when none can be made; then the
    child gets RLIMIT_AS instead (`how` says which)."""

    def __init__(self):
        self.folder = None
        self.how = "RLIMIT_AS"
        parent = _own_memory_cgroup()
        for base in (parent, CGROUP_ROOT):
            if base is None or not (base / "memory.limit_in_bytes").exists():
                continue
            folder = base / f"claim-hostile-{uuid.uuid4().hex[:12]}"
            try:
                folder.mkdir()
                (folder / "memory.limit_in_bytes").write_text(str(LIMIT_BYTES))
                if (folder / "memory.memsw.limit_in_bytes").exists():
                    (folder / "memory.memsw.limit_in_bytes").write_text(str(LIMIT_BYTES))
                self.folder = folder
                self.how = "cgroup v1 memory.limit_in_bytes"
                return
            except OSError:
                try:
                    folder.rmdir()
                except OSError:
                    pass

    def enter(self):
        """Runs in the child between fork and exec."""
        if self.folder:
            (self.folder / "cgroup.procs").write_text(str(os.getpid()))
        else:
            resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))

    def oom_killed(self):
        if not self.folder:
            return False
        for line in (self.folder / "memory.oom_control").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1]) > 0
        return int((self.folder / "memory.failcnt").read_text()) > 0

    def remove(self):
        if self.folder:
            for _ in range(50):
                try:
                    self.folder.rmdir()
                    return
                except OSError:
                    time.sleep(0.1)


class LimitedRun:
    """A finished run: the process's stdout, stderr and exit code, and its peak RSS."""

    def __init__(self, proc, peak_rss_kb, limit):
        self.proc = proc
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.peak_rss_bytes = peak_rss_kb * 1024
        self.limit_how = limit.how
        self.oom_killed = limit.oom_killed()

    @property
    def peak_rss_mb(self):
        return self.peak_rss_bytes / 1e6

    def result(self):
        """The checked response (exactly one JSON line, valid, with its exit code): `conftest.Result`."""
        return Result(self.proc)


def run_limited(request, env, argv=(), timeout=120):
    """Runs the binary once under the 32 MiB limit; `request` is a dict (sent as JSON) or bytes.

    The peak RSS is GNU time's `%M` (wait4's ru_maxrss for the binary): a process forked from this one would carry
    the test runner's own RSS in ru_maxrss across exec, so `time` sits in between, itself a few hundred KiB."""
    data = request if isinstance(request, bytes) else json.dumps(request).encode()
    limit = MemoryLimit()
    report = tempfile.NamedTemporaryFile("r", suffix=".rss")
    try:
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", report.name, BINARY, *argv], input=data,
                              capture_output=True, env=env, preexec_fn=limit.enter, timeout=timeout)
        lines = pathlib.Path(report.name).read_text().split()
        if proc.returncode > 128 and lines and lines[0] == "Command":  # "Command terminated by signal 9"
            proc.returncode = -(proc.returncode - 128)
        return LimitedRun(proc, int(lines[-1]), limit)
    finally:
        report.close()
        limit.remove()
