"""Contract fixtures: one folder per case under cases/, run through the real binary.

A case folder holds:
  request.json or request.bin   stdin, sent byte for byte
  env                           KEY=VALUE lines added to the base environment (KEY= unsets); {tmp} is the
                                case's temporary folder
  setup.jsonl                   optional requests run first with the same environment (each must answer < 500)
  setup.sql                     optional SQL run on the database before anything else (sqlite3 shell or psql)
  db.bin                        optional bytes copied to CLAIM_DB before anything else (SQLite only)
  expected.json                 the whole expected response; "<timestamp>" matches any RFC 3339 UTC time,
                                "$setup[N].a.b" the value at a.b in the N-th setup response, "re:<regex>" a
                                string matching the regular expression
  exit                          the expected exit code
  check.sql / check.out         optional: after the run, the output of check.sql (sqlite3 shell, or psql -At -F '|')
                                must equal check.out
  backends                      optional: the backends the case applies to, one a line (sqlite, postgres);
                                without it, all. `postgres` means the server directly and through PgBouncer
                                (the `pgbouncer` backend). Each case runs once per backend it applies to.
"""
import json
import pathlib
import re
import shutil

import pytest

from conftest import BACKENDS, db_query, run

CASES = pathlib.Path(__file__).parent / "cases"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def load_env(case, tmp_path, backend):
    env = backend.env(tmp_path)
    env_file = case / "env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            key, _, value = line.partition("=")
            if value:
                env[key] = value.replace("{tmp}", str(tmp_path))
            else:
                env.pop(key, None)
    return env


def resolve(expected, setups):
    """Replaces placeholders in the expected response with what they stand for."""
    if isinstance(expected, dict):
        return {k: resolve(v, setups) for k, v in expected.items()}
    if isinstance(expected, list):
        return [resolve(v, setups) for v in expected]
    if isinstance(expected, str) and expected.startswith("$setup["):
        index, path = re.match(r"^\$setup\[(\d+)\]\.(.+)$", expected).groups()
        value = setups[int(index)]
        for part in path.split("."):
            value = value[part]
        return value
    return expected


def matches(expected, actual):
    if expected == "<timestamp>":
        return isinstance(actual, str) and bool(TIMESTAMP.match(actual))
    if isinstance(expected, str) and expected.startswith("re:"):
        return isinstance(actual, str) and bool(re.match(expected[3:], actual))
    if isinstance(expected, dict):
        return isinstance(actual, dict) and expected.keys() == actual.keys() and all(
            matches(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(
            matches(e, a) for e, a in zip(expected, actual)
        )
    return expected == actual and type(expected) is type(actual)


def backends_of(folder):
    marker = folder / "backends"
    names = marker.read_text().split() if marker.exists() else ["sqlite", "postgres"]
    assert set(names) <= {"sqlite", "postgres"}, f"{marker}: unknown backend"
    return [b for b in BACKENDS if b in names or (b == "pgbouncer" and "postgres" in names)]


CASE_RUNS = [(p.name, b) for p in sorted(CASES.iterdir()) if p.is_dir() for b in backends_of(p)]


@pytest.mark.parametrize("case,backend", CASE_RUNS, indirect=["backend"])
def test_case(case, backend, tmp_path):
    folder = CASES / case
    env = load_env(folder, tmp_path, backend)
    if (folder / "db.bin").exists():
        db = pathlib.Path(env["CLAIM_DB"])
        db.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / "db.bin", db)
    if (folder / "setup.sql").exists():
        if "CLAIM_DB" in env:
            pathlib.Path(env["CLAIM_DB"]).parent.mkdir(parents=True, exist_ok=True)
        db_query(env, (folder / "setup.sql").read_text())
    setups = []
    if (folder / "setup.jsonl").exists():
        for line in (folder / "setup.jsonl").read_text().splitlines():
            if line.strip():
                result = run(json.loads(line), env)
                assert result.status < 500, f"setup failed: {result.response}"
                setups.append(result.response)
    request_file = folder / "request.json" if (folder / "request.json").exists() else folder / "request.bin"
    result = run(request_file.read_bytes(), env)
    expected = resolve(json.loads((folder / "expected.json").read_text()), setups)
    assert matches(expected, result.response), f"\nexpected {expected}\n     got {result.response}"
    assert result.exit == int((folder / "exit").read_text())
    if (folder / "db.bin").exists():
        assert pathlib.Path(env["CLAIM_DB"]).read_bytes() == (folder / "db.bin").read_bytes(), \
            "a database that is not ours was modified"
    if (folder / "check.sql").exists():
        assert db_query(env, (folder / "check.sql").read_text()) == (folder / "check.out").read_text()


def test_every_reachable_code_has_a_case():
    """Each error code the binary can answer without a network peer appears in some fixture."""
    seen = set()
    for expected in CASES.glob("*/expected.json"):
        error = json.loads(expected.read_text()).get("error")
        if error:
            seen.add(error["code"])
    reachable = {
        "invalid_json", "invalid_request", "invalid_username", "unauthenticated", "not_owner", "not_claimed",
        "already_claimed", "user_has_other_profile", "payload_too_large", "no_active_challenge",
        "store_unavailable", "store_unreachable", "misconfigured",
    }
    assert reachable <= seen, f"no fixture for {sorted(reachable - seen)}"
