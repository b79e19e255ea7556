"""Shared helpers for the black-box tests: they run the real static release binary over stdin/stdout."""
import json
import os
import pathlib
import subprocess

import jsonschema
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("LEETCODE_CLAIM_BIN", str(ROOT / ".build" / "leetcode-claim"))
RESPONSE_SCHEMA = json.loads((ROOT / "schemas" / "response.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(RESPONSE_SCHEMA)
LOG_KEYS = {"time", "level", "request_id", "action", "username", "outcome", "status", "duration_ms"}
EXIT_CODES = {"misconfigured": 78}


def expected_exit(status, code):
    """The contract's exit code for a response."""
    if code == "misconfigured":
        return 78
    if status == 503:
        return 75
    if status >= 500:
        return 70
    return 0


class Result:
    def __init__(self, proc):
        self.exit = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.response = check_output(proc.stdout, proc.returncode)
        self.logs = [json.loads(line) for line in proc.stderr.decode().splitlines() if line.strip()]

    @property
    def code(self):
        return (self.response.get("error") or {}).get("code")

    @property
    def status(self):
        return self.response["status"]


def check_output(stdout, exit_code):
    """Every invocation: exactly one JSON line on stdout, valid against the schema, with the right exit code."""
    text = stdout.decode("utf-8")
    assert text.endswith("\n") and text.count("\n") == 1, f"stdout must be exactly one line: {text!r}"
    response = json.loads(text)
    errors = [e.message for e in VALIDATOR.iter_errors(response)]
    assert not errors, f"response violates schema: {errors}: {text}"
    code = (response.get("error") or {}).get("code")
    assert exit_code == expected_exit(response["status"], code), f"exit {exit_code} for {text}"
    return response


def base_env(tmp_path, **extra):
    """A minimal environment: PATH, a database in the test's own folder, and the given variables."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CLAIM_DB": str(tmp_path / "db" / "claims.sqlite")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(request, env, timeout=60):
    """Runs the binary once; `request` is a dict (sent as JSON) or raw bytes."""
    data = request if isinstance(request, bytes) else json.dumps(request).encode()
    proc = subprocess.run([BINARY], input=data, env=env, capture_output=True, timeout=timeout)
    result = Result(proc)
    for log in result.logs:
        assert LOG_KEYS <= log.keys(), f"log line lacks keys: {log}"
    return result


@pytest.fixture
def trusted_env(tmp_path):
    return base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off")
