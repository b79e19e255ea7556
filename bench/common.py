"""What the benchmark drivers in bench/ share: one timed process, percentiles, page-cache eviction, and rewriting a
script's own section of BENCHMARKS.md. Standard library only."""

import json
import os
import time


def spawn(argv, stdin, env):
    """Starts one process with `stdin` on fd 0 and stderr to /dev/null; returns its pid and its stdout's read end."""
    r_in, w_in = os.pipe()
    os.write(w_in, stdin)  # a request fits in the pipe buffer
    os.close(w_in)
    r_out, w_out = os.pipe()
    actions = [(os.POSIX_SPAWN_DUP2, r_in, 0), (os.POSIX_SPAWN_DUP2, w_out, 1),
               (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)]
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    os.close(r_in)
    os.close(w_out)
    return pid, r_out


def collect(r_out):
    """Everything the process writes to stdout, until it closes it."""
    chunks = []
    while chunk := os.read(r_out, 65536):
        chunks.append(chunk)
    os.close(r_out)
    return b"".join(chunks)


def run_once(argv, stdin, env):
    """Runs one process: (wall ms from posix_spawn to wait4, whether it answered 200 with exit 0, its stdout)."""
    start = time.perf_counter_ns()
    pid, r_out = spawn(argv, stdin, env)
    _, status, _ = os.wait4(pid, 0)
    wall = (time.perf_counter_ns() - start) / 1e6
    out = collect(r_out)
    try:
        response = json.loads(out)
    except ValueError:
        response = None
    ok = isinstance(response, dict) and response.get("status") == 200 and os.waitstatus_to_exitcode(status) == 0
    return wall, ok, out


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def evict(path):
    """Drops a file's pages from the page cache (written back first), so the next exec reads it from disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def publish(block, path, begin, end, write=True):
    """Prints `block` (which starts with `begin` and ends with `end`) and, when `write`, puts it in `path` in place
    of what lies between the two markers there, or at the end when they are not there."""
    print(block)
    if not write:
        return
    text = open(path).read()
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)
