"""Through the real runtimes that answer HTTP: the OpenFaaS classic watchdog, the of-watchdog (streaming) and Fn's
hotwrap, each running the image deploy/<runtime>/Containerfile builds (exported, entrypoint run in its own root),
with the recipe's settings (the image's environment plus stack.yml / func.yaml) and only the test's database,
JWT secret, CLAIM_VERIFY=off and busy timeout on top. What an HTTP client receives is checked byte for byte.
"""
import json
import subprocess
import time

import jwt
import pytest
import yaml

import runtimes
from conftest import ROOT, VALIDATOR

SECRET = "runtime-tests-secret-0123456789abcdef"
RECIPES = {
    "openfaas-classic": ("openfaas-classic/stack.yml", runtimes.Watchdog),
    "openfaas": ("openfaas/stack.yml", runtimes.Watchdog),
    "fn": ("fn/func.yaml", runtimes.Hotwrap),
}
# What a client can read the outcome from: none of these runtimes lets the process set the HTTP status.
HTTP_STATUS = 200


def recipe_environment(runtime):
    """The environment the recipe file gives the function: stack.yml's `environment`, func.yaml's `config`."""
    spec = yaml.safe_load((ROOT / "deploy" / RECIPES[runtime][0]).read_text())
    if runtime == "fn":
        return {k: str(v) for k, v in spec["config"].items()}
    (function,) = spec["functions"].values()
    return {k: str(v) for k, v in function["environment"].items()}


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    """The three images, built once per session into a private podman store, exported."""
    runtimes_bin = runtimes.build_runtimes()
    podman = runtimes.Podman(tmp_path_factory.mktemp("podman"))
    try:
        yield {runtime: podman.build(runtime, runtimes_bin) for runtime in RECIPES}
    finally:
        podman.remove_store()


def token(sub):
    now = int(time.time())
    return jwt.encode({"sub": sub, "aud": "authenticated", "iat": now, "exp": now + 600}, SECRET, algorithm="HS256")


def start(runtime, image, folder, **overrides):
    """The runtime with the image's and the recipe's settings, the database in `folder`/data."""
    data = folder / "data"
    data.mkdir(mode=0o777)
    data.chmod(0o777)  # the image's user (nobody) writes the database there
    env = dict(image.env, **recipe_environment(runtime), CLAIM_DB="/data/claims.sqlite", CLAIM_JWT_SECRET=SECRET,
               CLAIM_VERIFY="off", **overrides)
    env.pop("CLAIM_DATABASE_URL", None)
    return RECIPES[runtime][1](image, env, data, folder / "runtime.log"), data / "claims.sqlite"


def check(runtime, response, status, code=None):
    """The client got HTTP 200 with exactly our one JSON object, whose status (and error code) is as expected."""
    body = runtimes.one_json_object(response.body)
    content_type = response.header("content-type")
    print(f"{runtime}: HTTP {response.status}, Content-Type: {content_type}, "
          f"Fn-Http-Status: {response.header('fn-http-status')}, body: {response.body!r}")
    assert response.status == HTTP_STATUS
    if runtime == "fn":
        # hotwrap never sets a Content-Type: Go's HTTP server sniffs one from the body; the agent passes it on.
        assert content_type == "text/plain; charset=utf-8"
        assert response.header("fn-http-status") == "200"
    else:
        assert content_type == "application/json"
    assert response.body.endswith(b"}\n") and response.body.count(b"\n") == 1
    assert not list(VALIDATOR.iter_errors(body)), body
    assert body["status"] == status and body["ok"] == (status == 200)
    assert (body.get("error") or {}).get("code") == code
    return body


@pytest.mark.parametrize("runtime", list(RECIPES))
def test_each_outcome_reaches_the_client_as_exactly_our_json(runtime, images, tmp_path):
    server, database = start(runtime, images[runtime], tmp_path, CLAIM_BUSY_TIMEOUT_MS="300")
    try:
        verify = json.dumps({"action": "verify", "username": "alice", "request_id": "r-1"}).encode()
        won = check(runtime, server.post(verify, authorization="Bearer " + token("user-1")), 200)
        assert won["result"]["claimed_by"] == "user-1" and won["request_id"] == "r-1"
        check(runtime, server.post(verify, authorization="Bearer " + token("user-2")), 409, "already_claimed")
        check(runtime, server.post(b"this is not json", content_type="text/plain"), 400, "invalid_json")
        check(runtime, server.post(verify, authorization="Bearer not-a-token"), 401, "unauthenticated")
        holder = subprocess.Popen(["sqlite3", str(database)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        try:
            holder.stdin.write("BEGIN EXCLUSIVE;\nSELECT 'locked';\n")
            holder.stdin.flush()
            assert holder.stdout.readline().strip() == "locked"
            busy = check(runtime, server.post(verify, authorization="Bearer " + token("user-3")), 503, "store_busy")
            assert busy["error"]["retry_after_s"] >= 1
        finally:
            holder.stdin.write("ROLLBACK;\n.quit\n")
            holder.stdin.close()
            holder.wait(timeout=30)
    finally:
        server.stop()
    log = server.sandbox.log()
    for outcome in ("ok", "already_claimed", "invalid_json", "unauthenticated", "store_busy"):
        assert f'"outcome":"{outcome}"' in log, f"the log line for {outcome} is not in the runtime's log:\n{log}"


@pytest.mark.parametrize("runtime", list(RECIPES))
def test_fifty_way_race_through_the_runtime_has_one_winner(runtime, images, tmp_path):
    server, database = start(runtime, images[runtime], tmp_path, CLAIM_BUSY_TIMEOUT_MS="60000")
    try:
        verify = json.dumps({"action": "verify", "username": "contested"}).encode()
        requests = [server.request_argv(verify, authorization="Bearer " + token(f"racer-{i}")) for i in range(50)]
        responses = runtimes.curl_many(requests)
    finally:
        server.stop()
    bodies = [runtimes.one_json_object(r.body) for r in responses]
    statuses = sorted(b["status"] for b in bodies)
    print(f"{runtime}: 50-way race: {statuses.count(200)} × 200, {statuses.count(409)} × 409")
    assert all(r.status == HTTP_STATUS for r in responses)
    assert statuses == [200] + [409] * 49, statuses
    assert all(b["error"]["code"] == "already_claimed" for b in bodies if b["status"] == 409)
    owner = subprocess.run(["sqlite3", str(database), "SELECT claimed_by FROM profiles WHERE username = 'contested'"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert owner == next(b["result"]["claimed_by"] for b in bodies if b["status"] == 200)


def test_images_hold_only_what_the_function_needs(images):
    """Every file of each image, printed for the README's table; nothing beyond the binaries, /bin/sh for hotwrap
    and the CA certificates."""
    for runtime, image in images.items():
        files = image.files()
        print(f"{runtime}: {len(files)} files, {sum(s for _, s in files)} bytes; user {image.user or 'root'}")
        for path, size in files:
            if not path.startswith("etc/ssl/certs/"):
                print(f"  /{path} {size}")
        others = {p for p, _ in files if not p.startswith("etc/ssl/certs/")}
        expected = {"leetcode-claim", "hotwrap", "bin/sh"} if runtime == "fn" else {"leetcode-claim", "fwatchdog"}
        assert others == expected, others
        assert all(p.endswith((".0", ".1", ".2")) for p, _ in files if p.startswith("etc/ssl/certs/"))
