"""AWS's Lambda Runtime Interface Emulator (aws-lambda-rie, built from ../shared/runtimes) in front of the binary, and
the events it is given.

What the tests rely on, read from the emulator's pinned source (src/aws-lambda-rie, commit d9bbbf1):

- `aws-lambda-rie --runtime-interface-emulator-address H:P --runtime-api-address H:P BOOTSTRAP [ARGS]` (both
  addresses free ports here, so emulators run side by side). The bootstrap starts at the first invoke (init), with
  the emulator's own environment plus AWS_LAMBDA_RUNTIME_API; it is one child process of the emulator.
- Invoke: POST /2015-03-31/functions/function/invocations with the event as the body; the answer is the body the
  runtime posted. One invoke at a time (a second one meanwhile is refused with 400).
- The event's headers: Lambda-Runtime-Aws-Request-Id, Lambda-Runtime-Deadline-Ms (Unix epoch ms: the invoke's
  start plus AWS_LAMBDA_FUNCTION_TIMEOUT, whole seconds, default 300), Lambda-Runtime-Invoked-Function-Arn.
- At the timeout it resets the sandbox (kills the runtime) and answers "Task timed out after N.00 seconds".
- Init failure (the runtime posts /runtime/init/error and exits): HTTP 502 with the body that was posted; the log
  says "INIT RTDONE(status: error)" and the exit status. The next invoke starts the runtime again.
- Its log (stdout) holds the runtime's stdout and stderr, rapid's own lines, and per invoke `START`, `END` and
  `REPORT RequestId: … Duration: … ms …`. Duration runs from the invoke to the runtime's next /next. The REPORT's
  "Init Duration" measures nothing (init is started asynchronously): the real one is rapid's
  "INIT REPORT(durationMs: …)" line. "Max Memory Used" just repeats AWS_LAMBDA_FUNCTION_MEMORY_SIZE, so memory is
  read from /proc (VmHWM, VmRSS) instead.
"""
import base64
import copy
import functools
import http.client
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import time

import pytest

import runtimes
from conftest import BINARY

EVENTS = pathlib.Path(__file__).resolve().parent / "lambda_events"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"
TIMEOUT = runtimes.TIMEOUT


@functools.lru_cache(maxsize=None)
def emulator_binary():
    """aws-lambda-rie, built once into .build/runtimes by the pinned build.sh; skips (fails under CI) without it."""
    if not runtimes.SHARED_RUNTIMES.is_dir():
        runtimes.unavailable(f"{runtimes.SHARED_RUNTIMES} (the FaaS runtimes' pinned source; it sits beside the "
                             "checkout)")
    subprocess.run([str(runtimes.SHARED_RUNTIMES / "build.sh"), str(runtimes.RUNTIMES_BIN)], check=True,
                   stdout=subprocess.DEVNULL)
    return runtimes.RUNTIMES_BIN / "aws-lambda-rie"


def free_ports(count):
    """`count` distinct loopback ports that were free a moment ago (all bound at once, then released)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Emulator:
    """One aws-lambda-rie with its own ports, running `command` (default: the binary itself as the bootstrap)."""

    def __init__(self, env, log_path, command=None, timeout_s=None, wrap=None):
        self.log_path = pathlib.Path(log_path)
        env = dict(env)
        if timeout_s is not None:
            env["AWS_LAMBDA_FUNCTION_TIMEOUT"] = str(timeout_s)
        # A port taken between finding it free and the emulator binding it ends the emulator at once: new ports.
        for _ in range(3):
            self.invoke_port, api_port = free_ports(2)
            self.log_file = open(self.log_path, "wb")
            argv = [str(emulator_binary()), "--runtime-interface-emulator-address", f"127.0.0.1:{self.invoke_port}",
                    "--runtime-api-address", f"127.0.0.1:{api_port}", *(command or [BINARY])]
            self.proc = subprocess.Popen((wrap or []) + argv, env=env, stdout=self.log_file,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            if self._listening():
                return
            self.log_file.close()
        raise AssertionError(f"the emulator did not start: {self.log()}")

    def _listening(self):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.invoke_port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.02)
        raise AssertionError(f"the emulator is not listening after {TIMEOUT} s: {self.log()}")

    def invoke(self, event):
        """Invokes once with `event` (a dict, sent as JSON, or bytes as they are): (HTTP status, body bytes)."""
        data = event if isinstance(event, bytes) else json.dumps(event).encode()
        connection = http.client.HTTPConnection("127.0.0.1", self.invoke_port, timeout=TIMEOUT)
        try:
            connection.request("POST", INVOKE_PATH, body=data)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def invoke_ok(self, event):
        """Invokes; the emulator must answer 200: the body is what the runtime posted as the response."""
        status, body = self.invoke(event)
        assert status == 200, (status, body, self.log()[-4000:])
        return body

    @staticmethod
    def _children(pid):
        children = []
        for task in pathlib.Path(f"/proc/{pid}/task").glob("*"):
            try:
                children += [int(p) for p in (task / "children").read_text().split()]
            except FileNotFoundError:
                pass
        return children

    def _descendants(self, pid):
        children = self._children(pid)
        return children + [d for child in children for d in self._descendants(child)]

    def runtime_pids(self):
        """The emulator's child processes: the bootstrap, once the first invoke started it."""
        rie = str(emulator_binary().resolve())
        for pid in [self.proc.pid] + self._descendants(self.proc.pid):
            try:
                if os.readlink(f"/proc/{pid}/exe") == rie:
                    return self._children(pid)
            except OSError:
                pass
        return []

    def runtime_pid(self):
        (pid,) = self.runtime_pids()
        return pid

    def log(self):
        return self.log_path.read_text(errors="replace")

    def our_log_lines(self):
        """The binary's JSON log lines, in order."""
        return [json.loads(line) for line in self.log().splitlines() if line.startswith('{"time":')]

    def reports(self):
        """(request id, Duration ms) of every REPORT line, in order."""
        return [(m.group(1), float(m.group(2)))
                for m in re.finditer(r"REPORT RequestId: (\S+)\t(?:Init Duration: [\d.]+ ms\t)?Duration: ([\d.]+) ms", self.log())]

    def init_reports(self):
        """rapid's INIT REPORT durations (ms): the time from starting the runtime to its first /next."""
        return [float(x) for x in re.findall(r"INIT REPORT\(durationMs: ([\d.]+)\)", self.log())]

    def stop(self):
        # The emulator starts the runtime in a process group of its own: every process it started goes by its id.
        for pid in [self.proc.pid] + self._descendants(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=TIMEOUT)
        self.log_file.close()


@pytest.fixture
def emulators(tmp_path):
    """Starts emulators for a test (`start(env, **Emulator options)`) and stops them all afterwards."""
    started = []

    def start(env, **kwargs):
        emulator = Emulator(env, tmp_path / f"rie-{len(started)}.log", **kwargs)
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


# --- Events ---------------------------------------------------------------------------------------------------------

SHAPES = ("raw", "function-url", "http-api", "rest-api", "alb")
HTTP_SHAPES = SHAPES[1:]


def event(shape, request, authorization=None):
    """The event Lambda delivers for `request` (a dict sent as JSON, or the body's bytes) arriving as `shape`."""
    body = request if isinstance(request, bytes) else json.dumps(request).encode()
    if shape == "raw":
        assert authorization is None, "a raw event has no headers"
        return body
    template = copy.deepcopy(json.loads((EVENTS / f"{shape}.json").read_text()))
    if template["isBase64Encoded"]:
        template["body"] = base64.b64encode(body).decode()
    else:
        template["body"] = body.decode("utf-8")
    if authorization is not None:
        name = "Authorization" if shape == "rest-api" else "authorization"
        template["headers"][name] = authorization
        if "multiValueHeaders" in template:
            template["multiValueHeaders"][name] = [authorization]
    return json.dumps(template).encode()


def answer(shape, emulator_body):
    """Our response object from the invocation's answer, checking an HTTP event's envelope exactly:
    {"statusCode": <our status>, "headers": {content-type, Retry-After on a retry}, "body": "<our JSON>",
    "isBase64Encoded": false}."""
    result = json.loads(emulator_body)
    if shape == "raw":
        return result
    assert set(result) == {"statusCode", "headers", "body", "isBase64Encoded"}, result
    assert result["isBase64Encoded"] is False
    response = json.loads(result["body"])
    assert result["statusCode"] == response["status"], result
    headers = {"content-type": "application/json"}
    retry = (response.get("error") or {}).get("retry_after_s")
    if retry is not None:
        headers["Retry-After"] = str(retry)
    assert result["headers"] == headers, result
    return response
