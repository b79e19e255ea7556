"""CLAIM_AUTH=jwt over the real binary, with tokens minted by PyJWT exactly as Supabase mints them."""
import base64
import json
import subprocess
import time
import uuid

import jwt
import pytest

from conftest import base_env, run

# PyJWT warns that this secret is short for HS512; the HS512 token is a hostile case on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key is")

SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
ISSUER = "https://abcdefghijklmnop.supabase.co/auth/v1"
SUB = str(uuid.UUID(int=0x5EED))


def supabase_claims(**overrides):
    now = int(time.time())
    claims = {"aud": "authenticated", "exp": now + 3600, "iat": now, "iss": ISSUER, "sub": SUB,
              "email": "user@example.com", "phone": "", "role": "authenticated", "aal": "aal1",
              "session_id": str(uuid.uuid4()), "is_anonymous": False,
              "app_metadata": {"provider": "email", "providers": ["email"]}, "user_metadata": {}}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def mint(secret=SECRET, algorithm="HS256", headers=None, **overrides):
    return jwt.encode(supabase_claims(**overrides), secret, algorithm=algorithm, headers=headers)


def b64(data):
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


def jwt_env(tmp_path, **extra):
    return base_env(tmp_path, CLAIM_AUTH="jwt", CLAIM_VERIFY="off", CLAIM_JWT_SECRET=SECRET, **extra)


def verify(token, username="alice"):
    return {"action": "verify", "username": username, "token": token}


def test_supabase_token_claims_as_sub(tmp_path):
    result = run(verify(mint()), jwt_env(tmp_path))
    assert result.status == 200, result.response
    assert result.response["result"]["claimed_by"] == SUB


def test_token_from_openfaas_authorization_header(tmp_path):
    env = jwt_env(tmp_path, Http_Authorization="Bearer " + mint())
    result = run({"action": "status", "username": "alice"}, env)
    assert result.status == 200 and result.response["result"]["mine"] is False


def test_same_token_in_field_and_header_is_accepted(tmp_path):
    token = mint()
    result = run(verify(token), jwt_env(tmp_path, Http_Authorization="Bearer " + token))
    assert result.status == 200


def test_audience_list_and_issuer_check(tmp_path):
    env = jwt_env(tmp_path, CLAIM_JWT_ISSUER=ISSUER)
    assert run(verify(mint(aud=["other", "authenticated"])), env).status == 200


def tampered_payload():
    header, payload, signature = mint().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = str(uuid.uuid4())
    return f"{header}.{b64(claims)}.{signature}"


def header_swapped(alg):
    _, payload, signature = mint().split(".")
    return f"{b64({'alg': alg, 'typ': 'JWT'})}.{payload}.{signature}"


REJECTIONS = {
    "alg none": (lambda: jwt.encode(supabase_claims(), None, algorithm="none"), "JWT alg is not supported"),
    "signature stripped": (lambda: mint().rsplit(".", 1)[0] + ".", "JWT signature is missing"),
    "header swapped to HS512": (lambda: header_swapped("HS512"), "JWT alg is not supported"),
    "header swapped to RS256": (lambda: header_swapped("RS256"), "JWT alg is not supported"),
    "alg missing": (lambda: f"{b64({'typ': 'JWT'})}.{mint().split('.', 1)[1]}", "JWT header has no alg"),
    "HS512 signed": (lambda: mint(algorithm="HS512"), "JWT alg is not supported"),
    "payload edited after signing": (tampered_payload, "JWT signature does not verify"),
    "wrong secret": (lambda: mint(secret="another-secret-that-is-also-32-bytes-long!!"), "JWT signature does not verify"),
    "expired": (lambda: mint(exp=int(time.time()) - 120), "JWT has expired"),
    "exp missing": (lambda: mint(exp=None), "JWT has no exp claim"),
    "nbf in the future": (lambda: mint(nbf=int(time.time()) + 600), "JWT is not valid yet"),
    "iat in the future": (lambda: mint(iat=int(time.time()) + 600), "JWT was issued in the future"),
    "wrong audience": (lambda: mint(aud="anon"), 'JWT aud does not include "authenticated"'),
    "sub missing": (lambda: mint(sub=None), "JWT has no sub claim"),
    "over 8 KiB": (lambda: mint(secret=SECRET, user_metadata={"pad": "x" * 8200}), "bearer token is longer than 8192 bytes"),
    "not base64url": (lambda: "e30!.e30.sig", "JWT header is not valid base64url"),
    "two parts": (lambda: "abc.def", "bearer token is not a JWT"),
}


@pytest.mark.parametrize("name", sorted(REJECTIONS))
def test_hostile_token_is_unauthenticated(tmp_path, name):
    make, reason = REJECTIONS[name]
    token = make()
    result = run(verify(token), jwt_env(tmp_path))
    assert (result.status, result.code, result.exit) == (401, "unauthenticated", 0), result.response
    assert reason in result.response["error"]["message"]
    for stream in (result.stdout, result.stderr):
        assert token.encode() not in stream and SECRET.encode() not in stream


def test_wrong_issuer_when_configured(tmp_path):
    result = run(verify(mint(iss="https://evil.example/auth/v1")), jwt_env(tmp_path, CLAIM_JWT_ISSUER=ISSUER))
    assert result.code == "unauthenticated" and "iss" in result.response["error"]["message"]


def test_expired_within_leeway_is_accepted(tmp_path):
    assert run(verify(mint(exp=int(time.time()) - 10)), jwt_env(tmp_path)).status == 200
    assert run(verify(mint(exp=int(time.time()) - 10)), jwt_env(tmp_path, CLAIM_JWT_LEEWAY_S="0")).code == \
        "unauthenticated"


def test_rejected_token_writes_nothing(tmp_path):
    env = jwt_env(tmp_path)
    assert run({"action": "status", "username": "alice", "token": mint()}, env).status == 200
    assert run(verify(tampered_payload()), env).code == "unauthenticated"
    out = subprocess.run(["sqlite3", env["CLAIM_DB"], "SELECT count(*) FROM profiles; SELECT count(*) FROM claim_events"],
                         capture_output=True, text=True, check=True).stdout
    assert out == "0\n0\n"
