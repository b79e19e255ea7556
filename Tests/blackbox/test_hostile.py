"""Hostile input (issue 4): more than 10,000 generated malformed requests through the real release binary.

The cases are generated deterministically (HOSTILE_SEED, default 4), and the answer each one must get is computed
by `expect()`, a reference model of README's contract written from the README, never from the binary's output:

    size (413 payload_too_large) -> JSON (400 invalid_json) -> environment (500 misconfigured)
    -> fields (400 invalid_request) -> username rule (400 invalid_username)
    -> caller (401 unauthenticated; 400 invalid_request for a user_id in jwt mode) -> the action

Every case must answer exactly one schema-valid JSON line with the model's status and code, the contract's exit
code, the contract's echo of `action` and `request_id`, and exactly one log line whose outcome is that code.
Nothing may be written: every worker has its own database, created with `leetcode-claim migrate`, whose row counts
must be the same before and after. Requests that would legitimately write are never sent; the few requests that
legitimately succeed are read-only `status` calls, counted separately as controls that must succeed.

Besides the generated suite: a test that a known token and secret never appear on stdout, stderr or in the
database, and a test that SQL in every field is bound (tables intact, values stored verbatim). All three run
against SQLite and against PostgreSQL (`backend`).
"""
import base64
import collections
import concurrent.futures
import dataclasses
import hashlib
import hmac
import json
import os
import random
import re
import subprocess
import time
import unicodedata

import pytest

from conftest import BINARY, base_env, db_query, expected_exit, run

SEED = int(os.environ.get("HOSTILE_SEED", "4"))
WORKERS = int(os.environ.get("HOSTILE_WORKERS", "8"))
MIN_HOSTILE = 10_000

MAX_BYTES = 65536
MAX_DEPTH = 64
FIELDS = ("action", "username", "user_id", "token", "request_id")
ACTIONS = ("challenge", "verify", "release", "status")
USERNAME_RULE = re.compile(r"[a-z0-9._-]{1,64}")
USERNAME_TRIM = " \t\n\v\f\r"  # the ASCII whitespace the binary trims (0x09-0x0D and space)
STATUS = {
    "invalid_json": 400, "invalid_request": 400, "invalid_username": 400, "unauthenticated": 401,
    "payload_too_large": 413, "misconfigured": 500,
}
JWT_SECRET = "hostile-suite-jwt-secret-0123456789abcdef"
MODES = {
    "trusted": {"CLAIM_AUTH": "trusted", "CLAIM_VERIFY": "off"},
    "jwt": {"CLAIM_AUTH": "jwt", "CLAIM_VERIFY": "off", "CLAIM_JWT_SECRET": JWT_SECRET},
    "unset": {"CLAIM_VERIFY": "off"},  # CLAIM_AUTH missing: misconfigured, once the JSON is fine
}


# ---------------------------------------------------------------------------------------------------------------
# The reference model


class Num:
    """A JSON number, kept as text: the contract rejects it by type, whatever its size."""

    def __init__(self, text):
        self.text = text


class Obj(list):
    """A JSON object as its (key, value) members in source order."""


class InvalidJSON(Exception):
    pass


def _reject_constant(name):
    raise InvalidJSON(f"{name} is not JSON")


def _has_surrogate(text):
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def _object(pairs):
    # Duplicate keys are refused at any depth. The binary compares keys as Swift compares strings, by canonical
    # equivalence, so "K" and the Kelvin sign U+212A are the same key; NFC gives the same classes.
    seen = set()
    for key, _ in pairs:
        if _has_surrogate(key):
            raise InvalidJSON("lone surrogate in a key")
        canonical = unicodedata.normalize("NFC", key)
        if canonical in seen:
            raise InvalidJSON("duplicate key")
        seen.add(canonical)
    return Obj(pairs)


def _well_formed(value, depth):
    if isinstance(value, (Obj, list)):
        if depth > MAX_DEPTH:
            return False
        children = (v for _, v in value) if isinstance(value, Obj) else value
        return all(_well_formed(child, depth + 1) for child in children)
    if isinstance(value, str):
        return not _has_surrogate(value)
    return True


def parse_json(data):
    """The contract's JSON: RFC 8259 over strict UTF-8, no lone surrogate, no duplicate key, depth <= 64."""
    try:
        text = data.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_object, parse_int=Num, parse_float=Num,
                           parse_constant=_reject_constant)
    except (ValueError, RecursionError, InvalidJSON):
        return None
    return value if _well_formed(value, 1) else None


def normalize_username(raw):
    return "".join(chr(ord(c) | 0x20) if "A" <= c <= "Z" else c for c in raw.strip(USERNAME_TRIM))


def valid_user_id(text):
    data = text.encode("utf-8")
    return 1 <= len(data) <= 128 and all(0x21 <= b <= 0x7E for b in data)


@dataclasses.dataclass
class Expect:
    code: object  # an error code, None for success, "WRITE" for a request that would write (never sent)
    action: object = None  # the echoed action
    request_id: object = None  # the echoed request_id
    username: object = None  # the normalized username of a successful status

    @property
    def status(self):
        return 200 if self.code is None else STATUS[self.code]


VALID_TOKENS = {}  # token -> sub, for tokens signed with JWT_SECRET whose claims are all valid


def expect(data, mode):
    """What the contract says the binary answers to stdin `data` in `mode`."""
    if len(data) > MAX_BYTES:
        return Expect("payload_too_large")
    obj = parse_json(data)
    if not isinstance(obj, Obj):
        return Expect("invalid_json")
    members = [(unicodedata.normalize("NFC", k), v) for k, v in obj]
    fields = dict(members)
    action, request_id = fields.get("action"), fields.get("request_id")
    echo = {
        "action": action if isinstance(action, str) and action in ACTIONS else None,
        "request_id": request_id if isinstance(request_id, str) and request_id_ok(request_id) else None,
    }
    if mode == "unset":
        return Expect("misconfigured", **echo)
    for key, value in members:
        if key not in FIELDS or not isinstance(value, str):
            return Expect("invalid_request", **echo)
    if action not in ACTIONS:
        return Expect("invalid_request", **echo)
    if request_id is not None and not request_id_ok(request_id):
        return Expect("invalid_request", **echo)
    if "username" not in fields:
        return Expect("invalid_request", **echo)
    username = normalize_username(fields["username"])
    if not USERNAME_RULE.fullmatch(username):
        return Expect("invalid_username", **echo)
    if mode == "trusted":
        if "user_id" not in fields or not valid_user_id(fields["user_id"]):
            return Expect("unauthenticated", **echo)
    else:
        if "user_id" in fields:
            return Expect("invalid_request", **echo)
        if fields.get("token") not in VALID_TOKENS:
            return Expect("unauthenticated", **echo)
    if action == "status":
        return Expect(None, username=username, **echo)
    return Expect("WRITE", **echo)


# ---------------------------------------------------------------------------------------------------------------
# Building blocks


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jws(header, payload, secret=JWT_SECRET, alg=hashlib.sha256):
    """A compact JWS; `header` and `payload` are dicts or raw bytes."""
    def part(x):
        return b64url(x if isinstance(x, bytes) else json.dumps(x, separators=(",", ":")).encode())
    signing_input = f"{part(header)}.{part(payload)}"
    signature = hmac.new(secret.encode(), signing_input.encode(), alg).digest()
    return f"{signing_input}.{b64url(signature)}"


HS256 = {"alg": "HS256", "typ": "JWT"}
FAR = 253_402_300_799  # 9999-12-31T23:59:59Z, the latest NumericDate the binary accepts


def claims(sub="jwt-user-1", **extra):
    base = {"sub": sub, "aud": "authenticated", "exp": FAR, "iat": 1_700_000_000}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


for _header, _payload in [
    (HS256, claims()),
    ({"alg": "HS256"}, claims("jwt-user-2", aud=["other", "authenticated"])),
    ({"alg": "HS256", "typ": "jwt"}, claims("x');DROP/**/TABLE/**/profiles;--", nbf=1_600_000_000)),
]:
    VALID_TOKENS[jws(_header, _payload)] = _payload["sub"]
VALID_TOKEN_LIST = sorted(VALID_TOKENS)
_signed = VALID_TOKEN_LIST[0]
_head, _body, _sig = _signed.split(".")

# Tokens that must all be refused: garbage, and HS256 tokens whose signature or claims are wrong.
BAD_TOKENS = [
    "", " ", ".", "..", "...", "a.b.c", "a.b", "a.b.c.d", "Bearer " + _signed, _signed + " ", " " + _signed,
    _signed + ".", _signed[:-1], _signed + "A", _head + "." + _body + ".", _head + "." + _body,
    _head + "." + _body + "." + _sig + "=", _head + "=." + _body + "." + _sig,
    _signed.replace("-", "+").replace("_", "/") if ("-" in _signed or "_" in _signed) else _signed[::-1],
    _head + "." + _body + "." + b64url(b"\x00" * 32), _head + "." + _body + "." + b64url(b"\x00" * 31),
    jws(HS256, claims(), secret="some-other-secret-that-is-long-enough-0123"),
    jws(HS256, claims(exp=1_000_000_000)), jws(HS256, claims(exp=FAR + 1)), jws(HS256, claims(exp=None)),
    jws(HS256, claims(exp="9999999999")), jws(HS256, claims(exp=-1)), jws(HS256, claims(exp=1e300)),
    jws(HS256, claims(aud="anon")), jws(HS256, claims(aud=None)), jws(HS256, claims(aud=["anon", 1])),
    jws(HS256, claims(aud=[])), jws(HS256, claims(aud=1)), jws(HS256, claims(sub=None)), jws(HS256, claims(sub=7)),
    jws(HS256, claims(sub="")), jws(HS256, claims(sub="has space")), jws(HS256, claims(sub="x" * 129)),
    jws(HS256, claims(sub="caf\u00e9")), jws(HS256, claims(sub="a\u0000b")), jws(HS256, claims(nbf=FAR)),
    jws(HS256, claims(iat=FAR)), jws(HS256, claims(nbf="0")),
    jws({"alg": "none"}, claims()).rsplit(".", 1)[0] + ".", jws({"alg": "none"}, claims()),
    jws({"alg": "HS512"}, claims(), alg=hashlib.sha512), jws({"alg": "hs256"}, claims()),
    jws({"alg": "RS256"}, claims()), jws({"typ": "JWT"}, claims()), jws({"alg": ["HS256"]}, claims()),
    jws({"alg": "HS256", "typ": "JWS"}, claims()), jws({"alg": "HS256", "typ": 1}, claims()),
    jws({"alg": "HS256", "crit": ["exp"]}, claims()),
    jws(b'{"alg":"HS256","alg":"HS256"}', claims()), jws(HS256, b'{"sub":"a","sub":"b","aud":"authenticated"}'),
    jws(b"[]", claims()), jws(HS256, b"[]"), jws(HS256, b"not json"), jws(b"\xff\xfe", claims()),
    jws(HS256, b'{"sub":"jwt-user-1","aud":"authenticated","exp":' + str(FAR).encode() + b',"x":"\\ud800"}'),
    "\u212a" + _signed[1:], _signed.upper(), _signed.lower(), "x" * 8192, "x" * 8193, "é" * 4096, "é" * 4097,
    "eyJhbGciOiJIUzI1NiJ9." * 3, "%00", "'; DROP TABLE profiles;--", "../../etc/passwd", JWT_SECRET,
]
assert not set(BAD_TOKENS) & set(VALID_TOKENS)


class Raw(bytes):
    """Bytes spliced verbatim into the JSON text: invalid UTF-8, raw NULs, hand-written escapes."""


def enc(value, rng=None):
    if isinstance(value, Raw):
        return bytes(value)
    if isinstance(value, str):
        ascii_only = rng.random() < 0.5 if rng else True
        return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    if isinstance(value, Num):
        return value.text.encode()
    return json.dumps(value).encode()


def obj(pairs, rng=None):
    """A JSON object from (key, value) pairs, with random insignificant whitespace when `rng` is given."""
    def ws():
        return rng.choice([b"", b"", b"", b" ", b"\n", b"\t", b"\r\n  "]) if rng else b""
    members = [ws() + enc(k, rng) + ws() + b":" + ws() + enc(v, rng) + ws() for k, v in pairs]
    return ws() + b"{" + b",".join(members) + b"}" + ws()


USERNAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789._-"


def valid_username(rng):
    name = "".join(rng.choice(USERNAME_CHARS) for _ in range(rng.randint(1, 24)))
    return "".join(c.upper() if rng.random() < 0.3 else c for c in name)


def valid_uid(rng):
    return "".join(chr(rng.randint(0x21, 0x7E)) for _ in range(rng.randint(1, 40)))


def request_id_ok(request_id):
    """README: at most 128 characters (Unicode scalars), none a control character (below 0x20, or DEL)."""
    return len(request_id) <= 128 and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in request_id)


def valid_request_id(rng):
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_ :'\";\\/%\u00e9\u212a\U0001F600\u2028"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))


def base_pairs(rng, mode, action=None):
    """A request that is valid in `mode` (it would succeed: always add a defect, or it becomes a control)."""
    pairs = [("action", action or rng.choice(ACTIONS)), ("username", valid_username(rng))]
    if mode == "jwt":
        pairs.append(("token", rng.choice(VALID_TOKEN_LIST)))
    else:
        pairs.append(("user_id", valid_uid(rng)))
    if rng.random() < 0.5:
        pairs.append(("request_id", valid_request_id(rng)))
    rng.shuffle(pairs)
    return pairs


def setf(pairs, key, value):
    """`pairs` with `key` set to `value` (replaced in place, else appended)."""
    out = [(k, value if k == key else v) for k, v in pairs]
    return out if any(k == key for k, _ in pairs) else out + [(key, value)]


def drop(pairs, key):
    return [(k, v) for k, v in pairs if k != key]


WRONG_TYPES = [None, True, False, Num("0"), Num("-1"), Num("1.5"), Num("1e400"), Num("-0.0E-0"), [], {}, ["x"],
               {"k": "v"}, [None], [[[]]], Num("9" * 5000)]

LOOKALIKES = [
    "\u212aelvin", "\u0430lice", "\uff41lice", "\u0131nfo", "\u017fam", "al\u0131ce", "\u0391lice",
    "alic\u0435", "b\u043eb", "x\u200dy", "x\u200by", "\u00a0alice", "alice\u00a0", "\u3000alice", "alice\u2028",
    "a\u0301", "\u00e9", "e\u0301", "\u202ealice", "\ufeffalice", "\U0001d41a\U0001d425\U0001d422\U0001d41c\U0001d41e",
    "\u0130stanbul", "stra\u00dfe", "\u2160", "\u2170", "\u1e9e", "\u0041\u030a", "\u2126", "\u2024", "\uff0e",
    "\u2010", "\u2011", "\u2012", "\u00ad", "\u0660", "\uff10", "\U0001F600", "\u0000", "alice\u0000",
    "\x1calice", "alice\x1f", "\x7f", "al ice", "al\tice", "alice!", "a@b", "a+b", "a/b", "a\\b", "a:b", "a,b",
    "a;b", "a'b", 'a"b', "a#b", "a%b", "a*b", "a?b", "a~b", "a=b", "a(b)", "a[b]", "a{b}", "a|b", "a<b>", "a`b",
    "a$b", "a^b", "a&b", "", " ", "\t\n\r\f\v", "\u0085",
]
MIXED_CASE = ["Alice", "ALICE", "aLiCe", " Bob ", "\tBoB.Smith_42-x\n", "\f\rZ\v", "MiXeD.CaSe-01",
              "  A  ", "Q" * 64, " " + "Q" * 64 + "\t"]

SQL_AND_PATHS = [
    "'; DROP TABLE profiles;--", "x');DROP/**/TABLE/**/profiles;--", "' OR '1'='1", "'OR'1'='1", '" OR 1=1 --',
    "1;DELETE/**/FROM/**/claim_events", "admin'--", "robert'); DROP TABLE students;--", "%00", "%27", "%2e%2e%2f",
    "../../etc/passwd", "..\\..\\windows\\system32", "/etc/passwd", "....//....//etc/passwd",
    "file:///etc/passwd", "$(reboot)", "`id`", "||id", "<script>alert(1)</script>", "{{7*7}}",
    "${jndi:ldap://x/a}", "\\x00", "..", ".", "_", "-", "NULL", "null", "%s%s%s%n", "\r\nSet-Cookie:a=b",
    "ATTACH/**/DATABASE/**/'/tmp/x'/**/AS/**/x;--", "';PRAGMA/**/writable_schema=1;--", "\u0000';--",
]

UNKNOWN_KEYS = [
    "", " ", "Action", "USERNAME", "user-id", "userId", "userid", "user_id ", " user_id", "__proto__",
    "constructor", "prototype", "$where", "admin", "is_admin", "role", "claimed_by", "username\u0000",
    "user\u0000name", "us\u0435rname", "\uff55sername", "a" * 1000, "\u212aey", "token2", "requestId", "id", "0",
    "null", "toString", "hasOwnProperty", "action\u200b", "usernam\u0065\u0301", "\U0001F600", "user_id\n",
]

BAD_ACTIONS = ["", " ", "Verify", "VERIFY", " verify", "verify ", "verify\u0000", "ver\u0456fy", "delete",
               "claim", "admin", "status;", "verify,status", "challenge\n", "r\u0435lease", "*", "'; DROP TABLE x;--"]

BAD_USER_IDS = ["", " ", "has space", "tab\there", "x" * 129, "caf\u00e9", "\u212a", "\u037e", "a\u0000b",
                "a\x7fb", "a\nb", "\u00a0", "user\u2028", "\U0001F600", "x');DROP TABLE profiles;--"]

INVALID_UTF8 = [b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xe0\x9f\xbf", b"\xf0\x80\x80\x80",
                b"\xf0\x8f\xbf\xbf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\xbd\xed\xb8\x80", b"\xff",
                b"\xfe", b"\xfe\xff", b"\xe2\x82", b"\xf0\x9f\x98", b"\xc3", b"\x80", b"\xbf", b"\xf5\x80\x80\x80",
                b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80", b"\xc3\x28",
                b"\xe2\x28\xa1", b"\xa0\xa1"]

BAD_ESCAPES = [rb"\ud800", rb"\udfff", rb"\ud800\u0041", rb"\ud800\ud800", rb"\udc00\ud800", rb"\ud800\\",
               rb"\ud83d", rb"\ude00", rb"\u12", rb"\uZZZZ", rb"\u00g0", rb"\x41", rb"\a", rb"\'", rb"\U0001F600",
               rb"\0", rb"\ ", b"\\\t", rb"\u", rb"\ud800\u", rb"\ud800\udc0"]
GOOD_ESCAPES = [rb"\u00e9", rb"\ud83d\ude00", rb"\u0000", rb"\u001f", rb"\/", rb"\"", rb"\\", rb"\b\f\n\r\t",
                rb"\u2028", rb"\uFFFF", rb"\uDBFF\uDFFF"]

NUMBERS_BAD = ["01", "-", "+1", ".5", "1.", "1e", "1e+", "0x10", "NaN", "Infinity", "-Infinity", "1_000",
               "--1", "1.2.3", "١", "0.e1", "1E1.5", "tru", "nul", "True", "None", "undefined"]
NUMBERS_GOOD = ["0", "-0", "1e999999999", "-1e-999999999", "123456789012345678901234567890",
                "9" * 5000, "0." + "0" * 3000 + "1", "1E+2", "-0.0e-0", "18446744073709551616"]


# ---------------------------------------------------------------------------------------------------------------
# Generation


@dataclasses.dataclass
class Case:
    family: str
    data: bytes
    mode: str
    expect: Expect
    message: str = None  # a substring the error message must contain


class Generator:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.cases = []
        self.dropped = 0

    def add(self, family, data, mode, intent=None, message=None, control_ok=False):
        """Adds a case; `intent` is the code the generator meant, checked against the model."""
        data = bytes(data)
        result = expect(data, mode)
        if intent is not None:
            assert result.code == intent, f"{family}: meant {intent}, model says {result.code}: {data[:200]!r}"
        if result.code == "WRITE" or (result.code is None and not control_ok):
            self.dropped += 1
            return False
        self.cases.append(Case(family, data, mode, result, message))
        return True

    def add_pairs(self, family, pairs, mode, intent=None, message=None, shape=True):
        """Adds a request built from pairs; one that would write becomes a read-only `status` control."""
        rng = self.rng if shape else None
        data = obj(pairs, rng)
        if expect(data, mode).code == "WRITE":
            pairs = setf(pairs, "action", "status")
            data = obj(pairs, rng)
        return self.add(family, data, mode, intent, message, control_ok=True)

    def mode(self, i, modes=("trusted", "jwt", "unset")):
        return modes[i % len(modes)]

    # -- the families -------------------------------------------------------------------------------------------

    def empty_and_whitespace(self):
        for i, data in enumerate([b"", b" ", b"\n", b"\r\n", b"\t \r\n ", b"\x00", b"\xef\xbb\xbf",
                                  b"\xef\xbb\xbf{}", b"\x00{}", b"{}\x00", b"\x0c{}", b"\x0b{}", b"{}\x1a"]):
            for mode in MODES:
                self.add("empty", data, mode, "invalid_json")

    def sizes(self):
        rng = self.rng
        bodies = [
            ("pad-bad-username", [("action", "status"), ("username", "Bad Name"), ("user_id", "u1")],
             "invalid_username"),
            ("pad-unknown-field", [("action", "verify"), ("username", "a"), ("user_id", "u1"), ("x", "")],
             "invalid_request"),
            ("pad-missing-user-id", [("action", "release"), ("username", "alice")], "unauthenticated"),
        ]
        for name, pairs, intent in bodies:
            text = obj(pairs)
            for size in (MAX_BYTES, MAX_BYTES + 1):
                for pad in (b" ", b"\n", b"\t", b"\r\n"):
                    data = (text + pad * size)[:size]
                    for mode in ("trusted", "jwt"):
                        self.add("size-" + name, data, mode, "payload_too_large" if size > MAX_BYTES else intent)
        # The payload inside one string field: every field at the byte limit and one past it (a read-only
        # status, so that the token, which trusted mode ignores, makes a control that succeeds at 65536 bytes).
        for field, filler, intent in [
            ("username", "a", "invalid_username"), ("user_id", "u", "unauthenticated"),
            ("request_id", "r", "invalid_request"), ("token", "t", None), ("zzz", "z", "invalid_request"),
            ("username", "\u00e9", "invalid_username"), ("request_id", "\U0001F600", "invalid_request"),
        ]:
            pairs = setf([("action", "status"), ("username", "alice"), ("user_id", "u1")], field, "")
            skeleton = len(obj(pairs))
            for size in (MAX_BYTES, MAX_BYTES + 1):
                unit = filler.encode()
                value = Raw(b'"' + unit * ((size - skeleton) // len(unit)) + b'"')
                data = obj(setf(pairs, field, value))
                data += b" " * (size - len(data))
                assert len(data) == size
                want = "payload_too_large" if size > MAX_BYTES else intent
                self.add(f"size-{field}", data, "trusted", want, control_ok=True)
                self.add(f"size-{field}", data, "unset", "payload_too_large" if size > MAX_BYTES else "misconfigured")
        # A status that succeeds at exactly the limit: 65536 bytes are accepted.
        control = obj([("action", "status"), ("username", "Size.Limit"), ("user_id", "u1")])
        self.add("size-control", control + b" " * (MAX_BYTES - len(control)), "trusted", control_ok=True)
        self.add("size-control", control + b" " * (MAX_BYTES + 1 - len(control)), "trusted", "payload_too_large")
        # Nesting 100,000 levels deep is over the size cap before it is deep.
        for data in [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
                     b"[" * 100_000, b'{"username":' + b"[" * 100_000, b"[" * MAX_BYTES, b"[" * (MAX_BYTES + 1),
                     b"{" * MAX_BYTES, b'"' + b"a" * (MAX_BYTES - 2) + b'"', bytes(rng.randrange(256) for _ in range(4 << 20))]:
            for mode in MODES:
                self.add("size-raw", data, mode, "payload_too_large" if len(data) > MAX_BYTES else "invalid_json")

    def nesting(self):
        for depth in (1, 2, 10, 62, 63, 64, 65, 66, 100, 1000, 10_000, 30_000):
            arrays = b"[" * depth + b"]" * depth
            objects = b'{"a":' * depth + b"1" + b"}" * depth
            mixed = b'[{"a":' * (depth // 2) + b"null" + b"}]" * (depth // 2)
            for inner, label in [(arrays, "arrays"), (objects, "objects"), (mixed, "mixed")]:
                for mode in ("trusted", "jwt", "unset"):
                    # The top-level object is level 1, so an inner value may nest 63 levels. (Arrays stay under
                    # the size cap at every depth here; the others are checked by the model alone.)
                    inside = obj([("action", "status"), ("username", "a"), ("user_id", Raw(inner))])
                    deep = "invalid_json" if depth + 1 > MAX_DEPTH else None
                    self.add("nesting-in-field", inside, mode, deep if label == "arrays" else None)
                    unknown = obj([("action", "status"), ("username", "a"), ("deep", Raw(inner))])
                    self.add("nesting-unknown-field", unknown, mode, deep if label == "arrays" else None)
                    self.add("nesting-top-level", inner, mode, "invalid_json" if label == "arrays" else None)
        for depth in (63, 64, 65):
            chain = b'{"a":' * (depth - 1) + b'{"action":"status","username":"a","user_id":"u"}' + b"}" * (depth - 1)
            self.add("nesting-top-object", chain, "trusted", "invalid_json" if depth > MAX_DEPTH else "invalid_request")

    def truncation(self):
        bases = [
            obj([("action", "verify"), ("username", "Alice"), ("user_id", "user-1"), ("request_id", "r1")]),
            obj([("action", "status"), ("username", "caf\u00e9\U0001F600"), ("token", VALID_TOKEN_LIST[0])]),
            b'{"action":"release","username":"a\\u0041\\ud83d\\ude00","user_id":"\\"x\\\\"}',
            b'{ "action" : "challenge" , "username" : [1, -2.5e+10, true, false, null, {"k": {}}] }',
            obj([("request_id", "\u2028\u0000"), ("action", "status"), ("user_id", "u"), ("username", "Bob")]),
            b'{"action":"verify","username":"bob","user_id":"u","n":-12.5e-3}',
        ]
        i = 0
        for base in bases:
            assert parse_json(base) is not None
            for end in range(len(base)):
                self.add("truncated", base[:end], self.mode(i), "invalid_json")
                i += 1

    def bad_bytes(self):
        i = 0
        template = [("action", "verify"), ("username", "alice"), ("user_id", "u1"), ("token", "t"),
                    ("request_id", "r1")]
        for seq in INVALID_UTF8 + [b"\x00", b"\x01", b"\x1f", b"\n", b"\t"]:
            for field in FIELDS:
                key = Raw(b'"' + field.encode()[:2] + seq + field.encode()[2:] + b'"')
                self.add("bad-bytes-key", obj([(key if k == field else k, v) for k, v in template]),
                         self.mode(i), "invalid_json")
                value = Raw(b'"a' + seq + b'b"')
                self.add("bad-bytes-value", obj(setf(template, field, value)), self.mode(i + 1), "invalid_json")
                i += 2
            whole = obj(template)
            for at in (0, 1, len(whole) // 2, len(whole) - 1, len(whole)):
                data = whole[:at] + seq + whole[at:]
                self.add("bad-bytes-outside", data, self.mode(i))
                i += 1

    def escapes(self):
        i = 0
        for esc in BAD_ESCAPES + GOOD_ESCAPES:
            for field in FIELDS:
                pairs = base_pairs(self.rng, self.mode(i, ("trusted", "jwt")))
                value = Raw(b'"x' + esc + b'y"')
                self.add_pairs("escape-value", setf(pairs, field, value), self.mode(i, ("trusted", "jwt")),
                               "invalid_json" if esc in BAD_ESCAPES else None)
                key = Raw(b'"' + esc + b"z" + field.encode() + b'"')  # z: not a hex digit
                self.add_pairs("escape-key", pairs + [(key, "v")], self.mode(i + 1),
                               "invalid_json" if esc in BAD_ESCAPES else None)
                i += 2

    def nuls(self):
        i = 0
        for field in FIELDS:
            for value in [Raw(b'"\x00"'), Raw(b'"a\x00b"'), "\u0000", "a\u0000", "\u0000a", "a\u0000b"]:
                pairs = base_pairs(self.rng, self.mode(i, ("trusted", "jwt")), "verify")
                self.add_pairs("nul-value", setf(pairs, field, value), self.mode(i, ("trusted", "jwt")),
                               "invalid_json" if isinstance(value, Raw) else None)
                i += 1
            for key in [Raw(b'"' + field.encode() + b'\x00"'), field + "\u0000", "\u0000" + field]:
                pairs = base_pairs(self.rng, "trusted")
                self.add_pairs("nul-key", pairs + [(key, "v")], self.mode(i),
                               "invalid_json" if isinstance(key, Raw) else None)
                i += 1

    def numbers(self):
        i = 0
        for text in NUMBERS_BAD + NUMBERS_GOOD:
            good = text in NUMBERS_GOOD
            for field in FIELDS + ("extra",):
                pairs = base_pairs(self.rng, self.mode(i, ("trusted", "jwt")))
                self.add_pairs("number", setf(pairs, field, Raw(text.encode())), self.mode(i, ("trusted", "jwt")),
                               "invalid_request" if good else "invalid_json")
                i += 1
            self.add("number-top-level", text.encode(), self.mode(i), "invalid_json")
            inside = obj([("action", "status"), ("username", "a"), ("user_id", Raw(b"[" + text.encode() + b"]"))])
            self.add("number-in-array", inside, self.mode(i), None)
            i += 1

    def duplicates(self):
        i = 0
        escaped = {
            "action": ["\\u0061ction", "act\\u0069on", "\\u0061\\u0063\\u0074\\u0069\\u006f\\u006e"],
            "username": ["user\\u006eame", "\\u0075sername", "usernam\\u0065", "\\u0075\\u0073\\u0065\\u0072\\u006E\\u0061\\u006D\\u0065"],
            "user_id": ["user\\u005fid", "us\\u0065r_id", "\\u0075ser_id"],
            "token": ["\\u0074oken", "toke\\u006E"],
            "request_id": ["request\\u005Fid", "\\u0072equest_id"],
        }
        for mode in ("trusted", "jwt", "unset"):
            for field in FIELDS:
                pairs = base_pairs(self.rng, "jwt" if mode == "jwt" else "trusted")
                pairs = setf(pairs, field, dict(pairs).get(field, "v"))
                value = dict(pairs)[field]
                for dup_value in (value, "b", Num("1"), None):
                    for where in (0, len(pairs)):
                        data = obj(pairs[:where] + [(field, dup_value)] + pairs[where:], self.rng)
                        self.add("duplicate-key", data, mode, "invalid_json")
                for spelled in escaped[field]:
                    data = obj(pairs + [(Raw(b'"' + spelled.encode() + b'"'), value)], self.rng)
                    self.add("duplicate-escaped-key", data, mode, "invalid_json")
                    i += 1
                # Escapes that spell a *different* key are not duplicates: an unknown field.
                upper = Raw(b'"\\u00' + format(ord(field[0].upper()), "x").encode() + field[1:].encode() + b'"')
                self.add("escaped-other-key", obj(pairs + [(upper, value)]), mode,
                         "misconfigured" if mode == "unset" else "invalid_request")
            base = obj([("action", "status"), ("username", "a")])[:-1]
            for nested in [b'{"a":1,"a":2}', b'[{"a":1,"a":1}]', b'{"x":{"y":{"k":1,"\\u006b":2}}}',
                           b'[[[[{"a":[],"b":{},"a":null}]]]]', b'{"K":1,"\\u212a":2}', b'{";":1,"\\u037e":2}',
                           b'{"\\u00e9":1,"e\\u0301":2}', b'{"`":1,"\xe1\xbf\xaf":2}',
                           b'[' * 60 + b'{"d":1,"d":2}' + b']' * 60]:
                for field in ("user_id", "zzz", "token"):
                    self.add("duplicate-nested", base + b',"' + field.encode() + b'":' + nested + b"}", mode,
                             "invalid_json")
            # Canonically equivalent keys at the top level are duplicates too.
            for a, b in [("K", "\u212a"), (";", "\u037e"), ("\u00e9", "e\u0301"), ("\u00c5", "\u212b"),
                         ("\u1e69", "s\u0323\u0307")]:
                self.add("duplicate-canonical", obj([("action", "status"), (a, 1), (b, 2)]), mode, "invalid_json")
            # Keys that only look alike are different keys: unknown field, not a duplicate.
            for a, b in [("username", "usernam\u0435"), ("username", "username "), ("user_id", "user_Id"),
                         ("action", "\uff41ction")]:
                pairs = [(a, "x"), (b, "y")] + [(k, "a") for k in ("username", "user_id") if k != a]
                pairs = pairs if a == "action" else [("action", "verify")] + pairs
                self.add("lookalike-keys", obj(pairs), mode, "misconfigured" if mode == "unset" else "invalid_request")

    def wrong_types(self):
        i = 0
        for mode in ("trusted", "jwt", "unset"):
            for field in FIELDS:
                for value in WRONG_TYPES:
                    for action in (ACTIONS if i % 3 == 0 else (self.rng.choice(ACTIONS),)):
                        pairs = base_pairs(self.rng, "jwt" if mode == "jwt" else "trusted", action)
                        self.add_pairs("wrong-type", setf(pairs, field, value), mode,
                                       "misconfigured" if mode == "unset" else "invalid_request")
                        i += 1

    def missing_fields(self):
        for mode in ("trusted", "jwt"):
            for mask in range(1 << len(FIELDS)):
                for action in ACTIONS:
                    pairs = base_pairs(self.rng, mode, action)
                    pairs = setf(pairs, "token", self.rng.choice(VALID_TOKEN_LIST) if mode == "jwt" else "ignored")
                    pairs = setf(pairs, "user_id", valid_uid(self.rng))
                    pairs = setf(pairs, "request_id", valid_request_id(self.rng))
                    kept = [(k, v) for k, v in pairs if mask >> FIELDS.index(k) & 1]
                    self.add_pairs("missing-fields", kept, mode)

    def unknown_fields(self):
        i = 0
        for key in UNKNOWN_KEYS:
            for mode in ("trusted", "jwt", "unset"):
                pairs = base_pairs(self.rng, "jwt" if mode == "jwt" else "trusted")
                for where in (0, len(pairs)):
                    value = self.rng.choice(["x", Num("1"), None, [], {}])
                    self.add_pairs("unknown-field", pairs[:where] + [(key, value)] + pairs[where:], mode,
                                   "misconfigured" if mode == "unset" else "invalid_request")
                    i += 1

    def usernames(self):
        for name in LOOKALIKES:
            for action in ACTIONS:
                self.add_pairs("lookalike-username", [("action", action), ("username", name), ("user_id", "u1")],
                               "trusted", "invalid_username")
                # The username rule comes before the caller: a bad caller does not change the answer.
                self.add_pairs("lookalike-username-no-caller", [("action", action), ("username", name)], "trusted",
                               "invalid_username")
            for token in (VALID_TOKEN_LIST[0], "garbage"):
                self.add_pairs("lookalike-username-jwt", [("action", "verify"), ("username", name), ("token", token)],
                               "jwt", "invalid_username")
        for name in MIXED_CASE:
            for action in ACTIONS:
                # Valid once normalized: with a caller it is a read-only control, without one it is 401.
                self.add_pairs("mixed-case-username", [("action", action), ("username", name), ("user_id", "u1")],
                               "trusted")
                self.add_pairs("mixed-case-no-caller", [("action", action), ("username", name)], "trusted",
                               "unauthenticated")
                self.add_pairs("mixed-case-bad-token", [("action", action), ("username", name), ("token", "x.y.z")],
                               "jwt", "unauthenticated")
        for length in (63, 64, 65, 100, 1000):
            for action in ACTIONS:
                for pad in ("", "  ", "\t\n"):
                    name = pad + "".join(self.rng.choice(USERNAME_CHARS.upper()) for _ in range(length)) + pad
                    self.add_pairs("username-length", [("action", action), ("username", name), ("user_id", "u")],
                                   "trusted", "invalid_username" if length > 64 else None)

    def fragments(self):
        i = 0
        for fragment in SQL_AND_PATHS:
            for field in FIELDS:
                for mode in ("trusted", "jwt"):
                    pairs = base_pairs(self.rng, mode, ACTIONS[i % 4])
                    self.add_pairs("sql-path-" + field, setf(pairs, field, fragment), mode)
                    i += 1
            for mode in ("trusted", "jwt"):
                self.add_pairs("sql-path-key", base_pairs(self.rng, mode) + [(fragment, "x")], mode,
                               "invalid_request")
            self.add_pairs("sql-path-action", [("action", fragment), ("username", "a"), ("user_id", "u")], "trusted",
                           "invalid_request")

    def limits(self):
        for action in ACTIONS:
            for mode in ("trusted", "unset"):
                def add(family, pairs, intent):
                    self.add_pairs(family, pairs, mode, "misconfigured" if mode == "unset" else intent)
                for n, intent in ((1, None), (127, None), (128, None), (129, "unauthenticated"),
                                  (1000, "unauthenticated")):
                    uid = "".join(chr(0x21 + (k * 7) % 94) for k in range(n))
                    add("user-id-length", [("action", action), ("username", "ok"), ("user_id", uid)], intent)
                    # A valid user id does not rescue a bad username.
                    add("user-id-length-bad-username", [("action", action), ("username", "no way"), ("user_id", uid)],
                        "invalid_username")
                add("user-id-empty", [("action", action), ("username", "ok"), ("user_id", "")], "unauthenticated")
                for uid in BAD_USER_IDS:
                    add("user-id-bad", [("action", action), ("username", "ok"), ("user_id", uid)], "unauthenticated")
                for unit, label in (("r", "ascii"), ("\U0001F600", "astral"), ("\u00e9", "latin"),
                                    ("\u0000", "nul"), ("\u2028", "separator")):
                    for n in (127, 128, 129, 1000):
                        rid = unit * n
                        refused = n > 128 or label == "nul"  # a control character is refused at any length
                        add(f"request-id-{label}", [("action", action), ("username", "ok"), ("user_id", "u1"),
                                                    ("request_id", rid)], "invalid_request" if refused else None)
                        add(f"request-id-{label}-bad-username", [("action", action), ("username", "b@d"),
                            ("user_id", "u1"), ("request_id", rid)],
                            "invalid_request" if refused else "invalid_username")
                # Combining marks count as scalars: 64 x (e + U+0301) is 128 scalars, 65 x is 130.
                for n in (64, 65):
                    add("request-id-combining", [("action", action), ("username", "x"), ("request_id", "e\u0301" * n)],
                        "invalid_request" if n > 64 else "unauthenticated")
            # Tokens at and past the 8192-byte limit, in jwt mode: refused either way, for different reasons.
            for token, message in (("t" * 8192, "not a JWT"), ("t" * 8193, "longer than 8192 bytes"),
                                   ("\u00e9" * 4096, "not a JWT"), ("\u00e9" * 4097, "longer than 8192 bytes"),
                                   ("a." * 4095 + "bc", "not a JWT"), (VALID_TOKEN_LIST[0] + "x" * 8192, "longer")):
                self.add_pairs("token-length", [("action", action), ("username", "ok"), ("token", token)], "jwt",
                               "unauthenticated", message=message)
                # Ignored in trusted mode, whatever its size: the answer comes from the other fields.
                self.add_pairs("token-length-trusted", [("action", action), ("username", "ok"), ("token", token)],
                               "trusted", "unauthenticated")

    def jwt_slice(self):
        i = 0
        for token in BAD_TOKENS:
            for action in ACTIONS:
                pairs = [("action", action), ("username", valid_username(self.rng)), ("token", token)]
                if i % 2:
                    pairs.append(("request_id", valid_request_id(self.rng)))
                self.add_pairs("jwt-bad-token", pairs, "jwt", "unauthenticated")
                i += 1
        for action in ACTIONS:
            for token in VALID_TOKEN_LIST + BAD_TOKENS[:10] + [None]:
                pairs = [("action", action), ("username", "alice"), ("user_id", "u1")]
                if token is not None:
                    pairs.append(("token", token))
                self.add_pairs("jwt-user-id", pairs, "jwt", "invalid_request")
                self.add_pairs("jwt-user-id-bad-username", setf(pairs, "username", "\u212aelvin"), "jwt",
                               "invalid_username")
            self.add_pairs("jwt-missing-token", [("action", action), ("username", "alice")], "jwt", "unauthenticated")
        for _ in range(600):
            token = self.random_token()
            pairs = [("action", self.rng.choice(ACTIONS)), ("username", valid_username(self.rng)), ("token", token)]
            self.add_pairs("jwt-random-token", pairs, "jwt", "unauthenticated")

    def random_token(self):
        rng = self.rng
        kind = rng.randrange(5)
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        if kind == 0:
            return "".join(rng.choice(alphabet + ".=+/ ") for _ in range(rng.randint(0, 300)))
        if kind == 1:
            return ".".join("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(3))
        if kind == 2:
            token = list(rng.choice(VALID_TOKEN_LIST))
            for _ in range(rng.randint(1, 3)):
                at = rng.randrange(len(token))
                token[at] = rng.choice((alphabet + ".").replace(token[at], ""))
            return "".join(token)
        if kind == 3:
            payload = claims(rng.choice(["b c", "x" * 200, ""]),  # never a valid sub exp=rng.choice([0, FAR, None, "x", FAR + 5]),
                             aud=rng.choice(["authenticated", "x", None, ["authenticated"]]))
            return jws(HS256, payload, secret=rng.choice([JWT_SECRET, "wrong-secret-wrong-secret-wrong-secret!"]))
        return "".join(chr(rng.randint(1, 0x2FF)) for _ in range(rng.randint(1, 80)))

    def random_garbage(self, count):
        rng = self.rng
        alphabets = [bytes(range(256)), b'{}[]:,"\\ ', b'{}[]:,"\\ actionusername_idtokenrequest0123456789.-eE',
                     bytes(range(0x20, 0x7F)), b'{"\\u0\xc0\x80\xed\xa0\xff"}']
        for i in range(count):
            alphabet = alphabets[i % len(alphabets)]
            data = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
            self.add("garbage", data, self.mode(i))

    def random_mutations(self, count):
        rng = self.rng
        tokens = [b"\\u0000", b"\\ud800", b"null", b"[", b"]", b"{}", b',"x":1', b'"username":"a",', b'"', b"\\",
                  b"\x00", b"\xc0\x80", b"\xff", b"1e999", b",", b":", b"\\u006e", b"\xe2\x84\xaa", b" ", b"\n"]
        added = 0
        while added < count:
            mode = self.mode(added, ("trusted", "jwt", "trusted", "jwt", "unset"))
            data = bytearray(obj(base_pairs(rng, "jwt" if mode == "jwt" else "trusted"), rng))
            for _ in range(rng.randint(1, 4)):
                op = rng.randrange(7)
                at = rng.randrange(len(data) + 1)
                if op == 0 and data:
                    data[min(at, len(data) - 1)] ^= 1 << rng.randrange(8)
                elif op == 1 and data:
                    data[min(at, len(data) - 1)] = rng.choice(b'\x00\x80\xc0\xff"\\{}[],:aZ0 ')
                elif op == 2:
                    data[at:at] = rng.choice(tokens)
                elif op == 3:
                    del data[at:at + rng.randint(1, 8)]
                elif op == 4:
                    end = min(len(data), at + rng.randint(1, 20))
                    data[at:at] = data[at:end]
                elif op == 5:
                    del data[at:]
                else:
                    data[at:at] = bytes([rng.randrange(256)])
            if self.add("mutated", data, mode):
                added += 1

    def random_defects(self, count):
        """Valid requests with one to three defects from the catalogs above, in random combination."""
        rng = self.rng
        added = 0
        while added < count:
            mode = self.mode(added, ("trusted", "jwt", "trusted", "jwt", "unset"))
            pairs = base_pairs(rng, "jwt" if mode == "jwt" else "trusted")
            for _ in range(rng.randint(1, 3)):
                defect = rng.randrange(9)
                if defect == 0:
                    pairs = setf(pairs, rng.choice(FIELDS), rng.choice(WRONG_TYPES))
                elif defect == 1:
                    pairs = drop(pairs, rng.choice(FIELDS))
                elif defect == 2:
                    pairs.insert(rng.randint(0, len(pairs)), (rng.choice(UNKNOWN_KEYS), "x"))
                elif defect == 3:
                    pairs = setf(pairs, "username", rng.choice(LOOKALIKES + SQL_AND_PATHS))
                elif defect == 4:
                    pairs = setf(pairs, "user_id", rng.choice(BAD_USER_IDS + SQL_AND_PATHS))
                elif defect == 5:
                    pairs = setf(pairs, "request_id", valid_request_id(rng) + "r" * rng.choice([89, 129, 500]))
                elif defect == 6:
                    pairs = setf(pairs, "action", rng.choice(BAD_ACTIONS + SQL_AND_PATHS))
                elif defect == 7:
                    pairs = setf(pairs, "token", rng.choice(BAD_TOKENS))
                else:
                    pairs = setf(pairs, "username", "".join(rng.choice(USERNAME_CHARS) for _ in range(65)))
            data = obj(pairs, rng)
            if self.add("defects", data, mode):
                added += 1


def generate(seed=SEED):
    g = Generator(seed)
    g.empty_and_whitespace()
    g.sizes()
    g.nesting()
    g.truncation()
    g.bad_bytes()
    g.escapes()
    g.nuls()
    g.numbers()
    g.duplicates()
    g.wrong_types()
    g.missing_fields()
    g.unknown_fields()
    g.usernames()
    g.fragments()
    g.limits()
    g.jwt_slice()
    g.random_garbage(1500)
    g.random_mutations(3000)
    g.random_defects(3000)
    return g.cases


# ---------------------------------------------------------------------------------------------------------------
# Running


# SQLite and PostgreSQL (PgBouncer changes nothing about input handling; the contract and race tests cover it).
BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)

ROW_COUNTS = ("SELECT 'profiles', count(*) FROM profiles; SELECT 'claim_events', count(*) FROM claim_events; "
              "SELECT 'challenges', count(*) FROM challenges; ")
TABLES = {
    "sqlite": "SELECT 'tables', group_concat(name) FROM (SELECT name FROM sqlite_master ORDER BY name);",
    "postgres": "SELECT 'tables', string_agg(name, ',' ORDER BY name) FROM (SELECT tablename AS name FROM pg_tables "
                "WHERE schemaname = 'public' UNION ALL SELECT indexname FROM pg_indexes WHERE schemaname = 'public' "
                "UNION ALL SELECT tgname FROM pg_trigger WHERE NOT tgisinternal) objects;",
}


def snapshot(backend, env):
    """Row counts of the three tables and the names of every table, index and trigger."""
    return db_query(env, ROW_COUNTS + TABLES["sqlite" if backend.name == "sqlite" else "postgres"])


def rows(env, sql):
    """The rows of `sql` as dicts, from the sqlite3 shell's -json or PostgreSQL's json_agg."""
    if env.get("CLAIM_DATABASE_URL"):
        return json.loads(db_query(env, f"SELECT coalesce(json_agg(q), '[]') FROM ({sql}) q;"))
    return json.loads(subprocess.run(["sqlite3", "-json", env["CLAIM_DB"]], input=sql + ";", capture_output=True,
                                     text=True, check=True).stdout or "[]")


def integrity(backend, env):
    """SQLite's integrity_check, or amcheck over PostgreSQL's indexes: "ok" when sound."""
    if backend.name == "sqlite":
        return db_query(env, "PRAGMA integrity_check;").strip()
    backend.server.admin_sql("CREATE EXTENSION IF NOT EXISTS amcheck; SELECT bt_index_check(c.oid, true) FROM pg_index i "
                             "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                             "WHERE n.nspname = 'public';", backend.database)
    return "ok"


def worker_databases(backend, tmp_path, count):
    """`count` databases created with `leetcode-claim migrate`, each selected by an environment without CLAIM_AUTH;
    returns the environments and a function that drops the PostgreSQL ones."""
    envs, extra = [], []
    for w in range(count):
        env = base_env(tmp_path / f"worker{w}")
        if backend.name != "sqlite":
            database = backend.server.create_database()
            extra.append(database)
            del env["CLAIM_DB"]
            env["CLAIM_DATABASE_URL"] = backend.server.url_for(database)
        proc = subprocess.run([BINARY, "migrate"], env=env, capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        envs.append(env)
    return envs, lambda: [backend.server.drop_database(d) for d in extra]


def check_case(case, env):
    """Runs one case; returns None when the answer is the contract's, else what was wrong."""
    want = case.expect
    try:
        result = run(case.data, env)
    except Exception as error:  # not one JSON line, schema violation, wrong exit for the status, a crash, a hang
        return f"{type(error).__name__}: {error}", None
    got = result.code
    problems = []
    if result.status != want.status or got != want.code:
        problems.append(f"answered {result.status} {got}, expected {want.status} {want.code}")
    if result.exit != expected_exit(want.status, want.code):
        problems.append(f"exit {result.exit}")
    if result.response["action"] != want.action or result.response["request_id"] != want.request_id:
        problems.append(f"echo {result.response['action']!r}/{result.response['request_id']!r}, expected "
                        f"{want.action!r}/{want.request_id!r}")
    if len(result.logs) != 1 or result.logs[0]["outcome"] != (want.code or "ok"):
        problems.append(f"log lines {result.logs!r}")
    if want.code is None and result.response.get("result", {}).get("username") != want.username:
        problems.append(f"result {result.response.get('result')!r}, expected username {want.username!r}")
    if case.message and case.message not in result.response.get("error", {}).get("message", ""):
        problems.append(f"message lacks {case.message!r}")
    return ("; ".join(problems) or None), got


def test_generation_is_deterministic():
    first, second = generate(), generate()
    assert [(c.family, c.data, c.mode) for c in first] == [(c.family, c.data, c.mode) for c in second]


@BACKENDS
def test_hostile_requests(tmp_path, capsys, backend):
    cases = generate()
    hostile = [c for c in cases if c.expect.code is not None]
    controls = [c for c in cases if c.expect.code is None]
    assert len(hostile) >= MIN_HOSTILE

    databases, drop = worker_databases(backend, tmp_path, WORKERS)
    try:
        hostile_requests(cases, hostile, controls, databases, backend, capsys)
    finally:
        drop()


def hostile_requests(cases, hostile, controls, databases, backend, capsys):
    before = [snapshot(backend, db) for db in databases]
    envs = [{mode: {**db, **extra} for mode, extra in MODES.items()} for db in databases]

    def work(worker):
        out = []
        for case in cases[worker::WORKERS]:
            out.append((case, *check_case(case, envs[worker][case.mode])))
        return out

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        results = [r for chunk in pool.map(work, range(WORKERS)) for r in chunk]
    elapsed = time.monotonic() - started
    after = [snapshot(backend, db) for db in databases]

    failures = [(case, problem) for case, problem, _ in results if problem]
    by_code = collections.Counter(got or "ok" for _, _, got in results)
    by_family = collections.Counter(case.family.split("-")[0] for case in cases)
    with capsys.disabled():
        print(f"\nhostile requests ({backend.name}): {len(cases)} cases ({len(hostile)} hostile, {len(controls)} "
              f"read-only controls that must succeed), seed {SEED}, {WORKERS} workers, {elapsed:.1f} s")
        print("  answered: " + ", ".join(f"{code} {n}" for code, n in sorted(by_code.items())))
        print("  by mode: " + ", ".join(f"{m} {n}" for m, n in
                                         sorted(collections.Counter(c.mode for c in cases).items())))
        print("  by family: " + ", ".join(f"{f} {n}" for f, n in sorted(by_family.items())))
        rows = ", ".join(line.replace("|", " ") for line in after[0].splitlines() if not line.startswith("tables"))
        print(f"  {len(databases)} databases, {'unchanged' if before == after else 'CHANGED'}: {rows}")
        for case, problem in failures[:25]:
            print(f"  FAIL {case.family} [{case.mode}] {case.data[:160]!r}: {problem}")
    assert before == after, "a hostile request wrote to the database"
    assert not failures, f"{len(failures)} of {len(cases)} cases answered against the contract (listed above)"


# ---------------------------------------------------------------------------------------------------------------
# Secrets never leak


@BACKENDS
def test_token_and_secret_never_appear_in_output(tmp_path, backend):
    jwt = pytest.importorskip("jwt")
    secret = "leak-check-secret-7f3a9c1e5b2d4a6f8e0c9b7a5d3f1e2c"
    now = int(time.time())
    good = {"sub": "leak-user", "aud": "authenticated", "exp": now + 600, "iat": now}
    valid = jwt.encode(good, secret, algorithm="HS256")
    tokens = {
        "valid": valid,
        "other-secret": jwt.encode(good, "another-secret-another-secret-0123456789", algorithm="HS256"),
        "expired": jwt.encode({**good, "exp": now - 3600}, secret, algorithm="HS256"),
        "wrong-aud": jwt.encode({**good, "aud": "someone-else"}, secret, algorithm="HS256"),
        "bad-sub": jwt.encode({**good, "sub": "has a space"}, secret, algorithm="HS256"),
        "hs512": jwt.encode(good, secret + secret, algorithm="HS512"),
        "alg-none": b64url(b'{"alg":"none"}') + "." + valid.split(".")[1] + ".",
        "tampered": valid.rsplit(".", 1)[0] + "." + b64url(b"\x01" * 32),
        "secret-as-token": secret,
        "secret-inside": f"{b64url(secret.encode())}.{secret}.{secret}",
        "oversized": valid + "A" * 9000,
    }
    env = backend.env(tmp_path, CLAIM_AUTH="jwt", CLAIM_VERIFY="off", CLAIM_JWT_SECRET=secret)
    runs = []
    for name, token in tokens.items():
        for action in ACTIONS:
            runs.append((name, {"action": action, "username": "leak-check", "token": token}, env))
            runs.append((name, {"action": action, "username": "Bad Name", "token": token}, env))
            runs.append((name, {"action": action, "username": "leak-check", "token": token, "user_id": "u"}, env))
            runs.append((name, {"action": action, "username": "leak-check", "token": token, "x": 1}, env))
            runs.append((name, {"action": action, "username": "leak-check"},
                         {**env, "Http_Authorization": f"Bearer {token}"}))
            runs.append((name, {"action": action, "username": "leak-check", "token": token},
                         {**env, "Http_Authorization": "Bearer someone-elses-token"}))
            runs.append((name, {"action": action, "username": "leak-check", "token": token, "user_id": "u"},
                         {**env, "CLAIM_AUTH": "trusted"}))
            runs.append((name, {"action": action, "username": "leak-check", "token": token},
                         {**env, "CLAIM_JWT_LEEWAY_S": "-5"}))
        runs.append((name, json.dumps({"action": "status", "username": "leak-check", "token": token})[:-2].encode(),
                     env))
    for short in (secret[:31], "short-" + secret[:8]):
        runs.append(("short-secret", {"action": "status", "username": "a", "token": valid},
                     {**env, "CLAIM_JWT_SECRET": short}))
    answered = collections.Counter()
    for name, request, run_env in runs:
        result = run(request, run_env)
        answered[result.code or "ok"] += 1
        output = result.stdout + result.stderr
        run_secret = run_env.get("CLAIM_JWT_SECRET", "")
        token = tokens.get(name, "")
        for needle in [secret, run_secret, token, *token.split(".")]:
            if len(needle) >= 8:
                assert needle.encode() not in output, f"{name}: {needle[:20]}... appears in the output: {output!r}"
    # The valid token did authenticate: its verify claimed the profile for its sub.
    assert answered["ok"] > 0 and answered["unauthenticated"] > 0 and answered["misconfigured"] > 0, answered
    assert "leak-user" in db_query(env, "SELECT user_id FROM claim_events WHERE event = 'claim';")
    dump = json.dumps([rows(env, f"SELECT * FROM {table}") for table in ("profiles", "claim_events", "challenges")])
    for needle in [secret, *tokens.values()]:
        assert needle not in dump, "a token or the secret was stored in the database"


# ---------------------------------------------------------------------------------------------------------------
# SQL is bound


@BACKENDS
def test_sql_in_fields_is_bound(tmp_path, backend):
    env = backend.env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off")
    # Printable ASCII without spaces is a legal user_id: /**/ stands in for the spaces SQL would need.
    owner = "x');DROP/**/TABLE/**/profiles;--"
    intruder = "'OR'1'='1"
    request_id = "r'); DROP TABLE claim_events; --"

    def ok(request, **want):
        result = run(request, env)
        assert result.status == 200, result.response
        for key, value in want.items():
            assert result.response["result"][key] == value, result.response
        return result

    ok({"action": "verify", "username": "Bobby-Tables", "user_id": owner, "request_id": request_id},
       username="bobby-tables", claimed_by=owner)
    ok({"action": "status", "username": "bobby-tables", "user_id": owner}, claimed=True, mine=True)
    ok({"action": "status", "username": "bobby-tables", "user_id": intruder}, claimed=True, mine=False)
    assert run({"action": "verify", "username": "bobby-tables", "user_id": intruder}, env).code == "already_claimed"
    assert run({"action": "release", "username": "bobby-tables", "user_id": intruder}, env).code == "not_owner"
    ok({"action": "challenge", "username": "other.profile", "user_id": intruder}, username="other.profile")
    # LIKE wildcards are not wildcards: "a_c" and "abc" are different profiles, "u%" and "u_" different users.
    ok({"action": "verify", "username": "a_c", "user_id": "u%"}, claimed_by="u%")
    ok({"action": "status", "username": "abc", "user_id": "u_"}, claimed=False, mine=False)
    ok({"action": "verify", "username": "abc", "user_id": "u_"}, claimed_by="u_")
    ok({"action": "verify", "username": "--", "user_id": "--"}, username="--", claimed_by="--")
    for fragment in SQL_AND_PATHS:
        result = run({"action": "verify", "username": fragment, "user_id": "sql-user"}, env)
        assert result.code == ("invalid_username" if not USERNAME_RULE.fullmatch(normalize_username(fragment))
                               else None), (fragment, result.response)
        if result.code is None:
            run({"action": "release", "username": fragment, "user_id": "sql-user"}, env)
    ok({"action": "release", "username": "bobby-tables", "user_id": owner, "request_id": request_id},
       released=True)

    held = {row["username"]: row["claimed_by"] for row in rows(env, "SELECT username, claimed_by FROM profiles")}
    assert held["bobby-tables"] is None and held["a_c"] == "u%" and held["abc"] == "u_" and held["--"] == "--"
    events = rows(env, "SELECT event, username, user_id, request_id FROM claim_events "
                       "WHERE username = 'bobby-tables' ORDER BY id")
    assert [(e["event"], e["user_id"], e["request_id"]) for e in events] == [
        ("claim", owner, request_id), ("release", owner, request_id)], events
    challenge = rows(env, "SELECT user_id FROM challenges WHERE username = 'other.profile'")
    assert challenge == [{"user_id": intruder}]
    tables = snapshot(backend, env).splitlines()[-1].split("|", 1)[1].split(",")
    assert {"profiles", "claim_events", "challenges"} <= set(tables)
    assert integrity(backend, env) == "ok"
