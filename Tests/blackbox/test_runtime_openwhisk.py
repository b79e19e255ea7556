"""Through Apache OpenWhisk's docker-skeleton action proxy (the pinned actionproxy.py): the native action zip that
deploy/openwhisk/build-zip.sh packs (exec wrapper + claim.env + binary) is sent with /init as the invoker sends it,
and each activation with /run, as a plain action and as a web action (parameters as OpenWhisk's controller builds
them). The proxy's answer is the action's result; for a web action the controller turns statusCode, headers and
body into the HTTP response, so those are checked exactly.
"""
import shutil
import subprocess
import time

import jwt
import pytest

import runtimes
from conftest import VALIDATOR

SECRET = "openwhisk-tests-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def built():
    runtimes.require_tools()


def token(sub):
    now = int(time.time())
    return jwt.encode({"sub": sub, "aud": "authenticated", "iat": now, "exp": now + 600}, SECRET, algorithm="HS256")


def start(folder, count=1, **overrides):
    """`count` proxies (each one a container: one activation at a time), initialised with the recipe's zip whose
    claim.env has the recipe's CLAIM_AUTH=jwt and the test's database, secret and CLAIM_VERIFY=off."""
    settings = dict(CLAIM_AUTH="jwt", CLAIM_JWT_SECRET=SECRET, CLAIM_VERIFY="off",
                    CLAIM_DB=str(folder / "data" / "claims.sqlite"), **overrides)
    action = runtimes.build_zip(settings)
    proxies = []
    try:
        for i in range(count):
            proxy = runtimes.OpenWhiskProxy(folder / f"proxy-{i}", folder / f"proxy-{i}.log")
            proxies.append(proxy)
            proxy.init(action)
    except BaseException:
        for proxy in proxies:
            proxy.stop()
        raise
    return proxies, folder / "data" / "claims.sqlite"


def result_of(response):
    """The proxy answered 200 with the action's result: exactly one JSON object."""
    assert response.status == 200, (response.status, response.body)
    assert response.header("content-type") == "application/json"
    return runtimes.one_json_object(response.body)


def check_web(response, status, code=None):
    """A web action's result: statusCode = our status, our headers, and our response object as the body."""
    result = result_of(response)
    print(f"openwhisk web: proxy HTTP {response.status}, result: {response.body!r}")
    headers = {"content-type": "application/json"}
    if status == 503:
        headers["Retry-After"] = str(result["body"]["error"]["retry_after_s"])
    assert set(result) == {"statusCode", "headers", "body"}
    assert result["statusCode"] == status and result["headers"] == headers
    return check_body(result["body"], status, code)


def check_plain(response, status, code=None):
    result = result_of(response)
    print(f"openwhisk plain: proxy HTTP {response.status}, result: {response.body!r}")
    return check_body(result, status, code)


def check_body(body, status, code):
    assert not list(VALIDATOR.iter_errors(body)), body
    assert body["status"] == status and (body.get("error") or {}).get("code") == code
    return body


def hold_write_lock(database):
    holder = subprocess.Popen(["sqlite3", str(database)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    holder.stdin.write("BEGIN EXCLUSIVE;\nSELECT 'locked';\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "locked"
    return holder


def release(holder):
    holder.stdin.write("ROLLBACK;\n.quit\n")
    holder.stdin.close()
    holder.wait(timeout=30)


def test_web_action_carries_our_status_headers_and_body(built, tmp_path):
    (proxy,), database = start(tmp_path, CLAIM_BUSY_TIMEOUT_MS="300")
    try:
        verify = {"action": "verify", "username": "alice", "request_id": "r-1"}
        won = check_web(proxy.run(runtimes.web_parameters(verify, "Bearer " + token("user-1"))), 200)
        assert won["result"]["claimed_by"] == "user-1"
        check_web(proxy.run(runtimes.web_parameters(verify, "Bearer " + token("user-2"))), 409, "already_claimed")
        # A body that is not JSON reaches a (non-raw) web action as __ow_body, without our fields.
        garbage = runtimes.web_parameters({"__ow_body": "this is not json"})
        check_web(proxy.run(garbage), 400, "invalid_request")
        check_web(proxy.run(runtimes.web_parameters(verify, "Bearer not-a-token")), 401, "unauthenticated")
        holder = hold_write_lock(database)
        try:
            check_web(proxy.run(runtimes.web_parameters(verify, "Bearer " + token("user-3"))), 503, "store_busy")
        finally:
            release(holder)
    finally:
        proxy.stop()
    log = proxy.sandbox.log()
    for outcome in ("ok", "already_claimed", "invalid_request", "unauthenticated", "store_busy"):
        assert f'"outcome":"{outcome}"' in log, f"the log line for {outcome} is not in the proxy's log:\n{log}"


def test_plain_action_result_is_our_response(built, tmp_path):
    (proxy,), _ = start(tmp_path)
    try:
        verify = {"action": "verify", "username": "bob", "token": token("user-1")}
        check_plain(proxy.run(verify), 200)
        check_plain(proxy.run(dict(verify, token=token("user-2"))), 409, "already_claimed")
        check_plain(proxy.run({"garbage": True}), 400, "invalid_request")
        check_plain(proxy.run(dict(verify, token="not-a-token")), 401, "unauthenticated")
        # Runtime-owned names are the runtime's, whatever their values; other unknown fields stay refused.
        check_plain(proxy.run(dict(verify, __ow_anything=[1, {"x": None}])), 200)
    finally:
        proxy.stop()


def test_binary_as_exec_with_settings_in_the_environment(built, tmp_path):
    """The other way to configure it: the binary itself as `exec` (argv[1] holds the parameters) and the settings
    in the container's environment, as an image built on the skeleton with ENV would have them."""
    folder = tmp_path
    exec_only = folder / "exec-only"
    exec_only.mkdir()
    subprocess.run(["install", "-m", "755", runtimes.BINARY, str(exec_only / "exec")], check=True)
    subprocess.run(["python3", "-m", "zipfile", "-c", str(folder / "exec.zip"), "exec"], cwd=exec_only, check=True)
    action = (folder / "exec.zip").read_bytes()
    shutil.rmtree(exec_only)
    (folder / "exec.zip").unlink()
    env = {"CLAIM_AUTH": "jwt", "CLAIM_JWT_SECRET": SECRET, "CLAIM_VERIFY": "off",
           "CLAIM_DB": str(folder / "data" / "claims.sqlite")}
    proxy = runtimes.OpenWhiskProxy(folder / "proxy", folder / "proxy.log", env=env)
    try:
        proxy.init(action)
        check_web(proxy.run(runtimes.web_parameters({"action": "status", "username": "carol"},
                                                    "Bearer " + token("user-1"))), 200)
    finally:
        proxy.stop()


def test_fifty_way_race_through_five_proxies_has_one_winner(built, tmp_path):
    """OpenWhisk runs one activation at a time per container: five containers share the database."""
    proxies, database = start(tmp_path, count=5, CLAIM_BUSY_TIMEOUT_MS="60000")
    try:
        requests = [proxies[i % 5].run_argv(runtimes.web_parameters(
            {"action": "verify", "username": "contested"}, "Bearer " + token(f"racer-{i}"))) for i in range(50)]
        responses = runtimes.curl_many(requests)
    finally:
        for proxy in proxies:
            proxy.stop()
    results = [result_of(r) for r in responses]
    statuses = sorted(r["statusCode"] for r in results)
    print(f"openwhisk: 50-way race over 5 proxies: {statuses.count(200)} × 200, {statuses.count(409)} × 409")
    assert statuses == [200] + [409] * 49, statuses
    assert all(r["body"]["error"]["code"] == "already_claimed" for r in results if r["statusCode"] == 409)
    owner = subprocess.run(["sqlite3", str(database), "SELECT claimed_by FROM profiles WHERE username = 'contested'"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert owner == next(r["body"]["result"]["claimed_by"] for r in results if r["statusCode"] == 200)
