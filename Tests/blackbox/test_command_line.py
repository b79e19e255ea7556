"""The command line around function mode: --help, --version, usage errors (exit 64), the terminal hint, OpenWhisk's
argv[1], and CLAIM_EXIT_CODES."""
import json
import os
import pty
import subprocess

import pytest

from conftest import BINARY, ROOT, base_env, check_output

VERSION = json.loads((ROOT / "function.json").read_text())["version"]


def invoke(args, env, stdin=b""):
    return subprocess.run([BINARY, *args], input=stdin, env=env, capture_output=True, timeout=60)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_usage_and_exits_0(flag, tmp_path):
    proc = invoke([flag], base_env(tmp_path))
    assert proc.returncode == 0 and proc.stderr == b""
    usage = proc.stdout.decode()
    for word in ("usage: leetcode-claim", "migrate", "--version", "CLAIM_AUTH", "CLAIM_EXIT_CODES", "README.md"):
        assert word in usage


def test_version_prints_the_version(tmp_path):
    proc = invoke(["--version"], base_env(tmp_path))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"leetcode-claim {VERSION}\n".encode(), b"")


@pytest.mark.parametrize("args", [["--verbose"], ["serve"], ['{"action":"status"}'], ["migrate", "now"]])
def test_unknown_argument_is_usage_on_stderr_exit_64(args, tmp_path):
    proc = invoke(args, base_env(tmp_path, CLAIM_AUTH="trusted"), b'{"action":"status"}')
    assert proc.returncode == 64 and proc.stdout == b""
    assert proc.stderr.decode().startswith(f'leetcode-claim: unknown argument "{args[-1]}"\n')
    assert "usage: leetcode-claim" in proc.stderr.decode()
    assert not (tmp_path / "db").exists(), "a usage error must not touch the database"


def test_under_openwhisk_argv1_is_the_parameters_not_a_usage_error(tmp_path):
    parameters = json.dumps({"action": "status", "username": "alice", "user_id": "u-1"})
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off", __OW_ACTION_NAME="/guest/leetcode-claim")
    proc = invoke([parameters], env, parameters.encode())
    response = check_output(proc.stdout, proc.returncode)
    assert response["status"] == 200 and response["result"]["claimed"] is False


def test_stdin_on_a_terminal_gets_a_hint_then_is_read(tmp_path):
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen([BINARY], stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off"))
        os.close(terminal)
        terminal = None
        hint = proc.stderr.readline().decode()
        assert hint.startswith("leetcode-claim: reading one JSON request from stdin")
        os.write(controller, b'{"action":"status","username":"alice","user_id":"u-1"}\n\x04')
        out = proc.stdout.read()
        proc.wait(timeout=60)
        assert check_output(out, proc.returncode)["status"] == 200
    finally:
        os.close(controller)
        if terminal is not None:
            os.close(terminal)


def test_stdin_from_a_pipe_gets_no_hint(tmp_path):
    proc = invoke([], base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off"),
                  b'{"action":"status","username":"alice","user_id":"u-1"}')
    assert check_output(proc.stdout, proc.returncode)["status"] == 200
    assert b"reading one JSON request" not in proc.stderr


@pytest.mark.parametrize("extra, status, sysexit", [
    ({"CLAIM_AUTH": ""}, 500, 78),                       # misconfigured
    ({"CLAIM_DB": "/"}, 500, 70),                         # store_unavailable: a folder is not a database
    ({"CLAIM_JWT_SECRET": "x" * 32, "CLAIM_AUTH": "jwt"}, 401, 0),
])
def test_exit_codes_zero_exits_0_whenever_the_response_was_written(extra, status, sysexit, tmp_path):
    request = b'{"action":"status","username":"alice","user_id":"u-1"}'
    if extra.get("CLAIM_AUTH") == "jwt":
        request = b'{"action":"status","username":"alice"}'
    env = base_env(tmp_path, **{"CLAIM_AUTH": "trusted", "CLAIM_VERIFY": "off", **extra})
    default = invoke([], env, request)
    assert json.loads(default.stdout)["status"] == status and default.returncode == sysexit
    zero = invoke([], dict(env, CLAIM_EXIT_CODES="zero"), request)
    assert zero.stdout == default.stdout and zero.returncode == 0


def test_exit_codes_zero_keeps_74_when_stdout_is_lost(tmp_path):
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off", CLAIM_EXIT_CODES="zero")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([BINARY], input=b'{"action":"status","username":"a","user_id":"u"}', env=env,
                              stdout=write_end, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(write_end)
    assert proc.returncode == 74
    assert json.loads(proc.stderr.decode().splitlines()[-1])["stdout"].startswith("lost")


def test_a_wrong_exit_codes_value_is_misconfigured_with_exit_78(tmp_path):
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off", CLAIM_EXIT_CODES="0")
    proc = invoke([], env, b'{"action":"status","username":"alice","user_id":"u-1"}')
    response = check_output(proc.stdout, proc.returncode)
    assert response["error"] == {"code": "misconfigured", "message": "CLAIM_EXIT_CODES must be one of: sysexits, zero"}
