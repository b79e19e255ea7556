"""The binary as its own AWS Lambda custom runtime, under AWS's Runtime Interface Emulator (aws-lambda-rie from
../shared/runtimes): every action as a raw event and as HTTP events of payload formats 2.0 (Function URL, HTTP API)
and 1.0 (REST API, ALB), on SQLite and PostgreSQL; jwt from the Authorization header; the stdin contract applied to
the request as on stdin; init failures; the recipe's zip and image (deploy/lambda/).
"""
import json
import os
import pathlib
import subprocess
import time
import zipfile

import jwt
import pytest

import lambda_emulator as lam
from lambda_emulator import emulators  # noqa: F401 (a fixture)
import runtimes
from conftest import BINARY, ROOT, VALIDATOR, run

SECRET = "lambda-tests-secret-0123456789abcdef"
CASES = ROOT / "Tests" / "blackbox" / "cases"


def token(sub):
    now = int(time.time())
    return jwt.encode({"sub": sub, "aud": "authenticated", "iat": now, "exp": now + 600}, SECRET, algorithm="HS256")


def check(shape, emulator, request, status, code=None, authorization=None):
    """Invokes with `request` arriving as `shape`; the answer must be `status` (and `code`) in that shape."""
    return check_event(shape, emulator, lam.event(shape, request, authorization), status, code)


def check_event(shape, emulator, event, status, code=None):
    response = lam.answer(shape, emulator.invoke_ok(event))
    assert not list(VALIDATOR.iter_errors(response)), response
    assert response["status"] == status and (response.get("error") or {}).get("code") == code, response
    return response


@pytest.mark.parametrize("shape", lam.SHAPES)
def test_every_action_through_each_event_shape(shape, backend, tmp_path, emulators):
    emulator = emulators(backend.env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off"))
    challenge = check(shape, emulator, {"action": "challenge", "username": " Alice ", "user_id": "u1",
                                        "request_id": "c-1"}, 200)
    assert challenge["request_id"] == "c-1" and challenge["result"]["code"].startswith("LCC-")
    won = check(shape, emulator, {"action": "verify", "username": "alice", "user_id": "u1", "request_id": "v-1"}, 200)
    assert won["result"]["claimed_by"] == "u1" and won["result"]["verified_via"] == "none"
    mine = check(shape, emulator, {"action": "status", "username": "alice", "user_id": "u1"}, 200)
    assert mine["result"]["mine"] is True and mine["request_id"] is None
    assert check(shape, emulator, {"action": "status", "username": "alice", "user_id": "u2"}, 200)["result"] == {
        "username": "alice", "claimed": True, "mine": False, "claimed_at": won["result"]["claimed_at"]}
    check(shape, emulator, {"action": "verify", "username": "alice", "user_id": "u2"}, 409, "already_claimed")
    check(shape, emulator, {"action": "challenge", "username": "alice", "user_id": "u2"}, 409, "already_claimed")
    check(shape, emulator, {"action": "release", "username": "alice", "user_id": "u2"}, 403, "not_owner")
    check(shape, emulator, {"action": "release", "username": "alice", "user_id": "u1"}, 200)
    check(shape, emulator, {"action": "release", "username": "alice", "user_id": "u1"}, 404, "not_claimed")
    check(shape, emulator, b"this is not json", 400, "invalid_json")
    check(shape, emulator, {"action": "status", "username": "alice", "user_id": "u1", "extra": 1}, 400,
          "invalid_request")
    check(shape, emulator, {"action": "status", "username": "bad name!", "user_id": "u1"}, 400, "invalid_username")
    check(shape, emulator, {"action": "status", "username": "alice"}, 401, "unauthenticated")
    # One process served them all, one JSON log line each with the invocation's id.
    assert len(emulator.runtime_pids()) == 1
    logs = emulator.our_log_lines()
    reports = emulator.reports()
    print(f"{shape}/{backend.name}: {len(logs)} invocations, Durations (ms): {[d for _, d in reports]}")
    assert [line["aws_request_id"] for line in logs] == [rid for rid, _ in reports]
    assert [line["outcome"] for line in logs] == [
        "ok", "ok", "ok", "ok", "already_claimed", "already_claimed", "not_owner", "ok", "not_claimed",
        "invalid_json", "invalid_request", "invalid_username", "unauthenticated"]


@pytest.mark.parametrize("shape", lam.HTTP_SHAPES)
def test_jwt_from_the_authorization_header(shape, tmp_path, emulators):
    env = dict(PATH=os.environ["PATH"], CLAIM_AUTH="jwt", CLAIM_JWT_SECRET=SECRET, CLAIM_VERIFY="off",
               CLAIM_DB=str(tmp_path / "db" / "claims.sqlite"))
    emulator = emulators(env)
    verify = {"action": "verify", "username": "carol"}
    won = check(shape, emulator, verify, 200, authorization="Bearer " + token("user-1"))
    assert won["result"]["claimed_by"] == "user-1"
    bad = check(shape, emulator, verify, 401, "unauthenticated", authorization="Bearer not-a-token")
    assert "not a JWT" in bad["error"]["message"]
    check(shape, emulator, verify, 401, "unauthenticated", authorization="Basic dXNlcjpwYXNz")
    # Nothing of the first caller is left for a request that brings no token.
    check(shape, emulator, verify, 401, "unauthenticated")
    check(shape, emulator, dict(verify, token=token("user-2")), 400, "invalid_request",
          authorization="Bearer " + token("user-1"))
    check(shape, emulator, dict(verify, token=token("user-2")), 409, "already_claimed")
    check(shape, emulator, {"action": "status", "username": "carol"}, 200, authorization="Bearer " + token("user-1"))


def stdin_cases():
    """Contract cases answerable without setup in trusted mode with verify off, whose answer does not depend on the
    moment (refusals and statuses; no code or time is issued): their request bytes."""
    for case in sorted(CASES.iterdir()):
        env = (case / "env").read_text().split()
        plain = {p.name for p in case.iterdir()} <= {"env", "exit", "expected.json", "request.json", "request.bin"}
        if env != ["CLAIM_AUTH=trusted", "CLAIM_VERIFY=off"] or not plain:
            continue
        expected = json.loads((case / "expected.json").read_text())
        if expected["status"] == 200 and expected["action"] != "status":
            continue
        request = case / "request.json" if (case / "request.json").exists() else case / "request.bin"
        yield case.name, request.read_bytes()


def test_the_stdin_contract_applies_to_the_request_as_on_stdin(tmp_path, emulators):
    """Size, strict JSON, duplicate keys, fields, check order: each contract case's request answered through each
    event shape exactly as through stdin (only request bytes that are UTF-8 fit a non-base64 HTTP body)."""
    env = dict(PATH=os.environ["PATH"], CLAIM_AUTH="trusted", CLAIM_VERIFY="off",
               CLAIM_DB=str(tmp_path / "lambda" / "claims.sqlite"))
    emulator = emulators(env)
    compared = 0
    for name, request in stdin_cases():
        on_stdin = run(request, dict(env, CLAIM_DB=str(tmp_path / "stdin" / "claims.sqlite"))).response
        for shape in lam.SHAPES:
            try:
                request.decode("utf-8")
            except UnicodeDecodeError:
                if shape not in ("raw", "alb"):
                    continue
            assert lam.answer(shape, emulator.invoke_ok(lam.event(shape, request))) == on_stdin, (name, shape)
            compared += 1
    print(f"{compared} (case, shape) pairs answered as on stdin")
    assert compared > 100


@pytest.mark.parametrize("shape", lam.HTTP_SHAPES)
def test_an_http_envelope_that_cannot_carry_a_request_is_a_400(shape, tmp_path, emulators):
    env = dict(PATH=os.environ["PATH"], CLAIM_AUTH="trusted", CLAIM_VERIFY="off",
               CLAIM_DB=str(tmp_path / "db" / "claims.sqlite"))
    emulator = emulators(env)
    base = json.loads(lam.event(shape, {"action": "status", "username": "alice", "user_id": "u1"}))
    for change, message in [({"body": 42}, "body is not a string"),
                            ({"isBase64Encoded": True, "body": "not base64!"}, "not valid base64"),
                            ({"isBase64Encoded": "yes"}, "isBase64Encoded is not a boolean"),
                            ({"headers": {"authorization": 7}}, "authorization header is not a string"),
                            ({"headers": []}, "headers is not an object")]:
        response = check_event(shape, emulator, json.dumps(dict(base, **change)).encode(), 400, "invalid_request")
        assert message in response["error"]["message"], response
    # No body at all is an empty request, as on stdin.
    check_event(shape, emulator, json.dumps({k: v for k, v in base.items() if k != "body"}).encode(), 400,
                "invalid_json")
    # A base64 body over the limit is refused for its size first, as stdin is.
    big = json.dumps(dict(base, isBase64Encoded=True, body="QUFB" * 30000)).encode()
    check_event(shape, emulator, big, 413, "payload_too_large")


def test_an_event_that_is_no_http_event_is_our_400(tmp_path, emulators):
    env = dict(PATH=os.environ["PATH"], CLAIM_AUTH="trusted", CLAIM_VERIFY="off",
               CLAIM_DB=str(tmp_path / "db" / "claims.sqlite"))
    emulator = emulators(env)
    s3 = {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]}
    check("raw", emulator, s3, 400, "invalid_request")
    check("raw", emulator, [1, 2, 3], 400, "invalid_json")
    check("raw", emulator, {"requestContext": {}, "body": "{}"}, 400, "invalid_request")
    check("raw", emulator, {"version": "2.0", "requestContext": {"elb": {}}, "body": "{}"}, 400, "invalid_request")
    check("raw", emulator, {"httpMethod": "POST", "requestContext": [], "body": "{}"}, 400, "invalid_request")


@pytest.mark.parametrize("shape", ["raw", "function-url", "alb"])
def test_a_failure_inside_an_invocation_is_still_a_response(shape, tmp_path, emulators):
    """A store that cannot be opened (CLAIM_DB is a folder) fails each invocation, not the runtime: every one is
    answered 500 store_unavailable in its shape (an HTTP event: statusCode 500), and the store is tried again."""
    folder = tmp_path / "a-folder"
    folder.mkdir()
    emulator = emulators(dict(PATH=os.environ["PATH"], CLAIM_AUTH="trusted", CLAIM_VERIFY="off", CLAIM_DB=str(folder)))
    for _ in range(2):
        check(shape, emulator, {"action": "status", "username": "alice", "user_id": "u1"}, 500, "store_unavailable")
    assert len(emulator.runtime_pids()) == 1
    assert [line["outcome"] for line in emulator.our_log_lines()] == ["store_unavailable"] * 2


def test_init_failure_is_reported_by_the_emulator(tmp_path, emulators):
    """A refused configuration goes to /runtime/init/error before any event is read; the process exits 78."""
    for env, message in [
        ({"CLAIM_VERIFY": "off", "CLAIM_DB": str(tmp_path / "claims.sqlite")}, "CLAIM_AUTH is not set"),
        ({"CLAIM_AUTH": "trusted"}, "CLAIM_DATABASE_URL is not set"),
    ]:
        emulator = emulators(dict(env, PATH=os.environ["PATH"]))
        status, body = emulator.invoke({"action": "status", "username": "alice", "user_id": "u1"})
        log = emulator.log()
        print(f"init failure: HTTP {status}, body {body!r}")
        assert status == 502
        response = json.loads(body)
        assert not list(VALIDATOR.iter_errors(response))
        assert response["error"]["code"] == "misconfigured" and message in response["error"]["message"]
        assert "INIT RTDONE(status: error)" in log and "exit status 78" in log, log
        assert json.loads(next(line for line in log.splitlines() if line.startswith('{"time":')))["outcome"] == \
            "misconfigured"


# --- The recipe: deploy/lambda ---------------------------------------------------------------------------------

def recipe_environment():
    """deploy/lambda/environment.json's Variables (what `aws lambda create-function --environment` is given)."""
    return json.loads((ROOT / "deploy" / "lambda" / "environment.json").read_text())["Variables"]


def test_the_zip_runs_as_bootstrap(tmp_path, emulators):
    """build-zip.sh's zip, unpacked as Lambda unpacks it into /var/task (here a test folder), serves through the
    emulator with the recipe's environment (the test's own database and secret on top)."""
    out = tmp_path / "function.zip"
    subprocess.run([str(ROOT / "deploy" / "lambda" / "build-zip.sh"), str(out)], check=True,
                   env=dict(os.environ, LEETCODE_CLAIM_BIN=BINARY))
    with zipfile.ZipFile(out) as archive:
        entries = {info.filename: info for info in archive.infolist()}
        task = tmp_path / "task"
        archive.extractall(task)
    bootstrap = entries["bootstrap"]
    print(f"zip: {len(entries)} entries, bootstrap {bootstrap.file_size} bytes, mode "
          f"{oct(bootstrap.external_attr >> 16)}")
    assert bootstrap.external_attr >> 16 & 0o777 == 0o755
    assert all(name == "bootstrap" or name.startswith("certs/") for name in entries)
    assert any(name.endswith(".0") for name in entries)
    (task / "bootstrap").chmod(0o755)  # extractall does not restore modes; Lambda's unpacking does
    env = dict(recipe_environment(), PATH=os.environ["PATH"], CLAIM_JWT_SECRET=SECRET, CLAIM_VERIFY="off",
               CLAIM_DB=str(tmp_path / "claims.sqlite"), SSL_CERT_DIR=str(task / "certs"))
    env.pop("CLAIM_DATABASE_URL")
    emulator = emulators(env, command=[str(task / "bootstrap")])
    check("function-url", emulator, {"action": "verify", "username": "dave"}, 200,
          authorization="Bearer " + token("user-1"))


def test_the_image_runs_its_entrypoint(tmp_path_factory, emulators):
    """deploy/lambda/Containerfile built FROM scratch with podman, exported; the emulator runs its entrypoint in the
    exported root (read-only, a fresh /tmp, the database in /tmp as Lambda's only writable place)."""
    runtimes.require_tools()
    podman = runtimes.Podman(tmp_path_factory.mktemp("podman"))  # podman wants a short run root
    try:
        image = podman.build("lambda", runtimes.RUNTIMES_BIN)
        files = image.files()
        print(f"image: {len(files)} files, {sum(s for _, s in files)} bytes; entrypoint {image.command}; "
              f"user {image.user or 'root'}")
        assert image.command == ["/leetcode-claim"]
        assert {p for p, _ in files if not p.startswith("var/task/certs/")} == {"leetcode-claim"}
        root = image.rootfs
        setup = (f"mount --bind {root} {root} && mount -o remount,bind,ro {root} && "
                 f"mount -t tmpfs -o mode=1777 tmpfs {root}/tmp")
        env = {**recipe_environment(), **image.env, "PATH": os.environ["PATH"], "CLAIM_JWT_SECRET": SECRET,
               "CLAIM_VERIFY": "off", "CLAIM_DB": "/tmp/claims.sqlite"}
        env.pop("CLAIM_DATABASE_URL")
        userspec = [f"--userspec={image.user}"] if image.user else []
        wrap = ["unshare", "--mount", "--fork", "--", "sh", "-c", setup + ' && exec "$@"', "image"]
        emulator = emulators(env, command=["chroot", *userspec, str(root), *image.command], wrap=wrap)
        check("rest-api", emulator, {"action": "verify", "username": "erin"}, 200,
              authorization="Bearer " + token("user-1"))
        check("raw", emulator, {"action": "status", "username": "erin", "token": token("user-1")}, 200)
        emulator.stop()
    finally:
        podman.remove_store()
