"""Inputs a fuzzer once crashed on (Fuzz/regressions/), replayed through the real release binary.

- Fuzz/regressions/request/<name>: stdin bytes. The answer must be one JSON line with a 4xx, like any hostile
  request (Tests/blackbox/test_hostile.py checks the exact code of thousands of those).
- Fuzz/regressions/http/<name>: after the fuzz target's two-byte prefix (body-cap selector, read size), the bytes
  LeetCode's side of the connection sends. A loopback server sends them to a `verify` in CLAIM_VERIFY=leetcode mode
  (plain http is allowed to a loopback host), which must answer one JSON line with the code listed below, or any
  code the contract has for a failed LeetCode exchange, instead of dying. The binary reads with its real 1 MiB
  body cap, not the fuzz target's small ones.

Fuzz/run.sh replays the same files through the fuzz targets before each fuzzing run.
"""
import pathlib
import socket
import threading

import pytest

from conftest import base_env, run

REGRESSIONS = pathlib.Path(__file__).resolve().parents[2] / "Fuzz" / "regressions"
LEETCODE_CODES = {"leetcode_bad_response", "leetcode_unavailable", "leetcode_rate_limited", "leetcode_user_not_found",
                  "code_not_found"}
EXPECTED_HTTP = {"negative-chunk-size": "leetcode_bad_response"}
# (kind, file name) -> why the binary still fails on it; entries leave when the bug is fixed (the xfail is strict).
KNOWN_BUGS: dict = {}


def inputs(kind):
    folder = REGRESSIONS / kind
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    return [pytest.param(p, id=p.name, marks=[pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[(kind, p.name)])]
                         if (kind, p.name) in KNOWN_BUGS else []) for p in files]


@pytest.mark.parametrize("path", inputs("request"))
def test_request_regression(path, tmp_path):
    result = run(path.read_bytes(), base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off"))
    assert 400 <= result.status < 500, result.response


class OneResponseServer:
    """Answers every connection on a loopback port with fixed bytes, after reading the whole request."""

    def __init__(self, payload):
        self.payload = payload
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(10)
                try:
                    self.read_request(connection)
                    connection.sendall(self.payload)
                except OSError:
                    pass

    @staticmethod
    def read_request(connection):
        # Reading all of it first: closing with unread request bytes would make the kernel reset the connection,
        # and the client would see a reset instead of our bytes.
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = connection.recv(65536)
            if not chunk:
                return
            body += chunk

    def close(self):
        self.socket.close()


@pytest.mark.parametrize("path", inputs("http"))
def test_http_regression(path, tmp_path):
    server = OneResponseServer(path.read_bytes()[2:])
    try:
        env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="leetcode", LEETCODE_TIMEOUT_MS="5000",
                       LEETCODE_GRAPHQL_URL=f"http://127.0.0.1:{server.port}/graphql")
        challenge = run({"action": "challenge", "username": "alice", "user_id": "u1"}, env)
        assert challenge.status == 200, challenge.response
        # run() fails unless the answer is one schema-valid JSON line with the contract's exit code.
        result = run({"action": "verify", "username": "alice", "user_id": "u1", "request_id": path.name}, env)
    finally:
        server.close()
    assert result.code == EXPECTED_HTTP.get(path.name, result.code) and result.code in LEETCODE_CODES, result.response
