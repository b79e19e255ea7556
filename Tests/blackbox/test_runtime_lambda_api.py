"""The Lambda runtime against a Runtime API that misbehaves, which the emulator never does: a hostile peer at the
network edge (a small HTTP/1.1 server speaking the Runtime API's paths). It goes away (the process exits 74), it
refuses a response (the invocation is ended on /error), it sends an event without an id; and the connection to it
is kept alive across invocations.
"""
import json
import queue
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import BINARY, base_env

ROOT = "/2018-06-01/runtime"
GONE = object()


class FakeRuntimeAPI:
    """Hands out the queued events on /invocation/next and records what the runtime posts. `GONE` in the queue
    closes the connection without an answer and stops the server. `refuse` answers a response POST with that
    status instead of 202. `close_after_post` ends the connection after each POST: with a `Connection: close`
    header ("header") or without a word ("silently")."""

    def __init__(self, close_after_post=None):
        self.events = queue.Queue()
        self.posts = []
        self.connections = 0
        self.refuse = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                api.connections += 1
                super().setup()

            def log_message(self, *args):
                pass

            def do_GET(self):
                assert self.path == ROOT + "/invocation/next", self.path
                item = api.events.get(timeout=60)
                if item is GONE:
                    # As when the Runtime API's process ends: the port refuses, this connection closes unanswered.
                    api.server.socket.close()
                    self.close_connection = True
                    return
                request_id, body, headers = item
                self.send_response(200)
                if request_id:
                    self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                headers = {"Lambda-Runtime-Deadline-Ms": "9999999999999", **headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                api.posts.append((self.path, dict(self.headers), body))
                status = api.refuse.get(self.path, 202)
                answer = b'{"status":"OK"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                if close_after_post == "header":
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(answer)
                if close_after_post == "silently":
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            self.server.serve_forever(poll_interval=0.05)
        except (OSError, ValueError):
            pass  # the listening socket was closed under it: the API went away

    def close(self):
        self.server.socket.close()


def serve(api, events, tmp_path, timeout=60):
    """Queues `events` ((request id, body, headers) or GONE) and runs the binary with the fake's address as
    AWS_LAMBDA_RUNTIME_API until it exits: (exit code, log lines). The fake is closed afterwards."""
    for item in events:
        api.events.put(item)
    env = base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off", AWS_LAMBDA_RUNTIME_API=api.address)
    try:
        proc = subprocess.run([BINARY], env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    finally:
        api.close()
    assert proc.stdout == b"", "a Lambda runtime writes nothing on stdout"
    return proc.returncode, [json.loads(line) for line in proc.stderr.decode().splitlines()]


def status_event(user):
    return json.dumps({"action": "status", "username": "alice", "user_id": user}).encode()


def test_one_kept_connection_and_an_exit_when_the_api_goes_away(tmp_path):
    api = FakeRuntimeAPI()
    code, logs = serve(api, [(f"id-{i}", status_event(f"u{i}"), {}) for i in range(3)] + [GONE], tmp_path)
    print(f"exit {code}, {api.connections} connection(s), posts {[p for p, _, _ in api.posts]}, last log {logs[-1]}")
    assert code == 74
    assert [p for p, _, _ in api.posts] == [f"{ROOT}/invocation/id-{i}/response" for i in range(3)]
    assert all(json.loads(body)["status"] == 200 for _, _, body in api.posts)
    assert api.connections == 1, "the Runtime API connection is kept alive from one invocation to the next"
    assert [line["aws_request_id"] for line in logs[:3]] == ["id-0", "id-1", "id-2"]
    assert logs[-1]["outcome"] == "internal" and "Runtime API failed" in logs[-1]["detail"]


def test_a_refused_response_ends_the_invocation_on_its_error_path(tmp_path):
    api = FakeRuntimeAPI()
    api.refuse[f"{ROOT}/invocation/id-0/response"] = 413
    code, logs = serve(api, [("id-0", status_event("u0"), {}), ("id-1", status_event("u1"), {}), GONE], tmp_path)
    paths = [p for p, _, _ in api.posts]
    print(f"exit {code}, posts {paths}")
    assert paths == [f"{ROOT}/invocation/id-0/response", f"{ROOT}/invocation/id-0/error",
                     f"{ROOT}/invocation/id-1/response"]
    _, headers, body = api.posts[1]
    assert headers["Lambda-Runtime-Function-Error-Type"] == "Runtime.ResponseRefused"
    assert json.loads(body) == {"errorMessage": "the Runtime API refused the response with HTTP 413",
                                "errorType": "Runtime.ResponseRefused"}
    assert any("refused the response" in (line.get("detail") or "") for line in logs)
    assert code == 74


def test_an_event_without_a_request_id_stops_the_runtime(tmp_path):
    api = FakeRuntimeAPI()
    code, logs = serve(api, [(None, status_event("u0"), {})], tmp_path)
    print(f"exit {code}, last log {logs[-1]}")
    assert code == 74 and api.posts == []
    assert "Lambda-Runtime-Aws-Request-Id" in logs[-1]["detail"]


def test_request_ids_go_into_the_path_percent_encoded(tmp_path):
    api = FakeRuntimeAPI()
    serve(api, [("a b/c?d", status_event("u0"), {}), GONE], tmp_path)
    assert [p for p, _, _ in api.posts] == [f"{ROOT}/invocation/a%20b%2Fc%3Fd/response"]


@pytest.mark.parametrize("close_after_post", ["header", "silently"])
def test_a_connection_the_api_closes_is_replaced(close_after_post, tmp_path):
    api = FakeRuntimeAPI(close_after_post)
    code, logs = serve(api, [(f"id-{i}", status_event(f"u{i}"), {}) for i in range(5)] + [GONE], tmp_path)
    print(f"{close_after_post}: {len(api.posts)} responses over {api.connections} connections, exit {code}")
    assert [p for p, _, _ in api.posts] == [f"{ROOT}/invocation/id-{i}/response" for i in range(5)]
    assert api.connections >= 5 and code == 74


def test_an_absurd_deadline_header_is_no_deadline(tmp_path):
    api = FakeRuntimeAPI()
    deadlines = ["-9223372036854775808", "9223372036854775807", "99999999999999999999", "soon", "0"]
    code, logs = serve(api, [(f"id-{i}", status_event("u0"), {"Lambda-Runtime-Deadline-Ms": d})
                             for i, d in enumerate(deadlines)] + [GONE], tmp_path)
    answers = [json.loads(body) for _, _, body in api.posts]
    print(f"deadlines {deadlines}: statuses {[a['status'] for a in answers]}, exit {code}")
    assert len(answers) == len(deadlines) and code == 74
    # A deadline already past still gets an answer; the others are answered as without a deadline.
    assert all(a["status"] == 200 for a in answers[:4])
