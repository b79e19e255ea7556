"""function.json must describe the binary that is built: its variables, schemas and handler."""
import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
MANIFEST = json.loads((ROOT / "function.json").read_text())
SOURCES = ROOT / "Sources"


def config_variables():
    """The names in Config.variables, the one list through which the library reads the environment."""
    text = (SOURCES / "ClaimCore" / "Config.swift").read_text()
    block = re.search(r"static let variables[^=]*=\s*\[(.*?)\n    \]", text, re.S).group(1)
    return re.findall(r'\(\s*"([^"]+)"', block)


def test_manifest_lists_exactly_the_variables_the_binary_reads():
    assert set(MANIFEST["environment"]) == set(config_variables())


def test_defaults_agree():
    text = (SOURCES / "ClaimCore" / "Config.swift").read_text()
    for name, spec in MANIFEST["environment"].items():
        default = re.search(r'\(\s*"%s",\s*(nil|"[^"]*")\)' % re.escape(name), text).group(1)
        assert (None if default == "nil" else default.strip('"')) == spec["default"], name


def test_environment_is_read_only_through_config():
    """getenv only in main.swift (which hands a lookup to the handler); the lookup only called from Config."""
    for path in SOURCES.rglob("*.swift"):
        text = path.read_text()
        if path.name != "main.swift":
            assert "getenv(" not in text, f"{path} reads the environment directly"
        if path.name not in ("Config.swift", "main.swift"):
            assert not re.search(r'environment\(\s*"', text), f"{path} looks a variable up outside Config"


def test_schemas_and_handler_exist():
    for key in ("request_schema", "response_schema"):
        json.loads((ROOT / MANIFEST["protocol"][key]).read_text())
    assert MANIFEST["handler"] == "leetcode-claim"
