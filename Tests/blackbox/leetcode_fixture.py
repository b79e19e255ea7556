"""The fake LeetCode server as a pytest fixture, shared by the LeetCode and chaos tests."""
import json
import pathlib
import subprocess
import threading
import urllib.request

import pytest

FAKE = pathlib.Path(__file__).resolve().parents[1] / "fake_leetcode"


@pytest.fixture(scope="module")
def leetcode(tmp_path_factory):
    """The fake server with HTTPS (trusted), plain HTTP, an untrusted-CA and a wrong-host listener."""
    root = tmp_path_factory.mktemp("leetcode")
    certs = root / "certs"
    subprocess.run(["sh", str(FAKE / "make_certs.sh"), str(certs)], check=True)
    profiles = root / "profiles.json"
    profiles.write_text("{}")
    server = subprocess.Popen(
        ["python3", str(FAKE / "server.py"), "--cert", str(certs / "server.pem"), "--key", str(certs / "server.key"),
         "--http", "--http-port", "0", "--port", "0", "--profiles", str(profiles), "--slow-seconds", "5",
         "--extra-https", str(certs / "untrusted.pem"), str(certs / "untrusted.key"),
         "--extra-https", str(certs / "wrong-host.pem"), str(certs / "wrong-host.key"), "--watch-stdin"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ports = json.loads(server.stdout.readline())

    class Fake:
        ca = str(certs / "ca.pem")
        https = f"https://localhost:{ports['https_port']}/graphql"
        http = f"http://127.0.0.1:{ports['http_port']}/graphql"
        untrusted = f"https://localhost:{ports['extra_https_ports'][0]}/graphql"
        wrong_host = f"https://localhost:{ports['extra_https_ports'][1]}/graphql"
        port = ports["https_port"]
        cert_dir = certs

        lock = threading.Lock()

        @staticmethod
        def control(path, body=None):
            """The fake's test controls (server.py's docstring): GET /_stats, POST /_reset and /_script."""
            data = None if body is None else json.dumps(body).encode()
            url = f"http://127.0.0.1:{ports['http_port']}{path}"
            with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as response:
                return json.loads(response.read())

        @staticmethod
        def stats():
            """The GraphQL requests the fake received since the last reset: total, by_username, arrivals."""
            return Fake.control("/_stats")

        @staticmethod
        def reset():
            Fake.control("/_reset", {})

        @staticmethod
        def script(*answers):
            """The next requests get these answers, e.g. {"as": "rate-limited", "retry_after": 3}, in order."""
            Fake.control("/_script", {"answers": list(answers)})

        @staticmethod
        def set_profile(username, about_me, **extra):
            with Fake.lock:
                Fake._write_profile(username, about_me, **extra)

        @staticmethod
        def add_code(username, code):
            """Appends a code to the profile's About me (thread-safe)."""
            with Fake.lock:
                data = json.loads(profiles.read_text())
                about = data.get(username, {}).get("aboutMe", "")
                Fake._write_profile(username, f"{about} {code}".strip())

        @staticmethod
        def _write_profile(username, about_me, **extra):
            data = json.loads(profiles.read_text())
            data[username] = {"realName": "Real " + username, "aboutMe": about_me,
                              "userAvatar": f"https://assets.leetcode.com/{username}.png", "ranking": 4242,
                              "easy": 10, "medium": 20, "hard": 5, "all": 35, **extra}
            tmp = profiles.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            tmp.replace(profiles)  # atomic: the server re-reads the file on every request

    yield Fake
    server.stdin.close()
    server.wait(timeout=10)


