"""Contract fixtures: one folder per case under cases/, run through the real binary.

A case folder holds:
  request.json or request.bin   stdin, sent byte for byte
  env                           KEY=VALUE lines added to the base environment (KEY= unsets); {tmp} is the
                                case's temporary folder
  setup.jsonl                   optional requests run first with the same environment (each must answer < 500)
  setup.sql                     optional SQL run with the sqlite3 shell on CLAIM_DB before anything else
  db.bin                        optional bytes copied to CLAIM_DB before anything else
  expected.json                 the whole expected response; "<timestamp>" matches any RFC 3339 UTC time,
                                "$setup[N].a.b" the value at a.b in the N-th setup response, "re:<regex>" a
                                string matching the regular expression
  exit                          the expected exit code
  check.sql / check.out         optional: after the run, the sqlite3 shell's output of check.sql must equal check.out
"""
import json
import pathlib
import re
import shutil
import subprocess

import pytest

from conftest import base_env, run

CASES = pathlib.Path(__file__).parent / "cases"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def load_env(case, tmp_path):
    env = base_env(tmp_path)
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


def sqlite(db, sql):
    return subprocess.run(["sqlite3", db], input=sql, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_case(case, tmp_path):
    folder = CASES / case
    env = load_env(folder, tmp_path)
    db = pathlib.Path(env.get("CLAIM_DB", tmp_path / "db" / "claims.sqlite"))
    if (folder / "db.bin").exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / "db.bin", db)
    if (folder / "setup.sql").exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        sqlite(str(db), (folder / "setup.sql").read_text())
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
        assert db.read_bytes() == (folder / "db.bin").read_bytes(), "a database that is not ours was modified"
    if (folder / "check.sql").exists():
        assert sqlite(str(db), (folder / "check.sql").read_text()) == (folder / "check.out").read_text()


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
        "store_unavailable", "misconfigured",
    }
    assert reachable <= seen, f"no fixture for {sorted(reachable - seen)}"
