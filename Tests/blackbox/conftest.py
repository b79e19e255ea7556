"""Shared helpers for the black-box tests: they run the real static release binary over stdin/stdout."""
import json
import os
import pathlib
import subprocess
import tempfile
import uuid

import jsonschema
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("LEETCODE_CLAIM_BIN", str(ROOT / ".build" / "leetcode-claim"))
RESPONSE_SCHEMA = json.loads((ROOT / "schemas" / "response.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(RESPONSE_SCHEMA)
LOG_KEYS = {"time", "level", "request_id", "action", "username", "outcome", "status", "duration_ms"}
EXIT_CODES = {"misconfigured": 78}


def expected_exit(status, code):
    """The contract's exit code for a response."""
    if code == "misconfigured":
        return 78
    if status == 503:
        return 75
    if status >= 500:
        return 70
    return 0


class Result:
    def __init__(self, proc):
        self.exit = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.response = check_output(proc.stdout, proc.returncode)
        self.logs = [json.loads(line) for line in proc.stderr.decode().splitlines() if line.strip()]

    @property
    def code(self):
        return (self.response.get("error") or {}).get("code")

    @property
    def status(self):
        return self.response["status"]


def check_output(stdout, exit_code):
    """Every invocation: exactly one JSON line on stdout, valid against the schema, with the right exit code."""
    text = stdout.decode("utf-8")
    assert text.endswith("\n") and text.count("\n") == 1, f"stdout must be exactly one line: {text!r}"
    response = json.loads(text)
    errors = [e.message for e in VALIDATOR.iter_errors(response)]
    assert not errors, f"response violates schema: {errors}: {text}"
    code = (response.get("error") or {}).get("code")
    assert exit_code == expected_exit(response["status"], code), f"exit {exit_code} for {text}"
    return response


def base_env(tmp_path, **extra):
    """A minimal environment: PATH, a database in the test's own folder, and the given variables."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CLAIM_DB": str(tmp_path / "db" / "claims.sqlite")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(request, env, timeout=60):
    """Runs the binary once; `request` is a dict (sent as JSON) or raw bytes."""
    data = request if isinstance(request, bytes) else json.dumps(request).encode()
    proc = subprocess.run([BINARY], input=data, env=env, capture_output=True, timeout=timeout)
    result = Result(proc)
    for log in result.logs:
        assert LOG_KEYS <= log.keys(), f"log line lacks keys: {log}"
    return result


@pytest.fixture
def trusted_env(tmp_path):
    return base_env(tmp_path, CLAIM_AUTH="trusted", CLAIM_VERIFY="off")


# --- Storage backends: SQLite, a real PostgreSQL server, and that server through PgBouncer (transaction pooling). ---

POSTGRES_SCRIPT = ROOT / "scripts" / "postgres.sh"
PGBOUNCER_SCRIPT = ROOT / "scripts" / "pgbouncer.sh"
BACKENDS = ("sqlite", "postgres", "pgbouncer")


class PostgresServer:
    """A server started by scripts/postgres.sh: `url` for the test role, `admin` psql options for the superuser."""

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self.url = (self.folder / "url").read_text().strip()
        self.admin = (self.folder / "admin").read_text().split()
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

    def admin_sql(self, sql, database="postgres"):
        return subprocess.run(["psql", "-X", "-q", "-At", "-F", "|", "-v", "ON_ERROR_STOP=1", *self.admin,
                               "-d", database], input=sql, capture_output=True, text=True, check=True).stdout

    def url_for(self, database, **params):
        return url_for(self.url, database, **params)

    def create_database(self):
        name = "t_" + uuid.uuid4().hex[:16]
        self.admin_sql(f"CREATE DATABASE {name} OWNER claim")
        return name

    def drop_database(self, name):
        self.admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def url_for(url, database, **params):
    """`url` naming `database` instead, with `params` as its query."""
    url = url.rsplit("/", 1)[0] + "/" + database
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return url


class PgBouncer:
    """PgBouncer started by scripts/pgbouncer.sh in front of a PostgresServer; `url` for the test role."""

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self.url = (self.folder / "url").read_text().strip()

    def url_for(self, database, **params):
        return url_for(self.url, database, **params)


def start_pgbouncer(server, auth="scram-secret"):
    """PgBouncer in front of `server` (a PostgresServer), in a new folder under /tmp; returns it and a stopper."""
    folder = pathlib.Path(tempfile.gettempdir()) / f"claim-pgbouncer-{uuid.uuid4().hex[:12]}"
    subprocess.run([str(PGBOUNCER_SCRIPT), "start", str(folder), str(server.folder), auth], check=True,
                   stdout=subprocess.DEVNULL)
    return PgBouncer(folder), lambda: subprocess.run([str(PGBOUNCER_SCRIPT), "stop", str(folder)], check=False)


def start_postgres():
    """Starts a private server with scripts/postgres.sh in a new folder under /tmp (the postgres user must be able
    to reach it, which pytest's 0700 folders do not allow); returns it and a function that stops it."""
    folder = pathlib.Path(tempfile.gettempdir()) / f"claim-pg-{uuid.uuid4().hex[:12]}"
    subprocess.run([str(POSTGRES_SCRIPT), "start", str(folder)], check=True, stdout=subprocess.DEVNULL)
    return PostgresServer(folder), lambda: subprocess.run([str(POSTGRES_SCRIPT), "stop", str(folder)], check=False)


@pytest.fixture(scope="session")
def postgres_server():
    """The server scripts/test.sh started (CLAIM_TEST_POSTGRES_DIR), else one started for this session."""
    folder = os.environ.get("CLAIM_TEST_POSTGRES_DIR")
    if folder:
        yield PostgresServer(folder)
        return
    server, stop = start_postgres()
    try:
        yield server
    finally:
        stop()


@pytest.fixture(scope="session")
def pgbouncer(postgres_server):
    """The PgBouncer scripts/test.sh started (CLAIM_TEST_PGBOUNCER_DIR), else one started for this session in front
    of `postgres_server`, with the role's SCRAM secret in its auth_file."""
    folder = os.environ.get("CLAIM_TEST_PGBOUNCER_DIR")
    if folder:
        yield PgBouncer(folder)
        return
    pooler, stop = start_pgbouncer(postgres_server)
    try:
        yield pooler
    finally:
        stop()


class Backend:
    """One storage backend for one test: the environment that selects it and a way to look inside. `pgbouncer` is the
    PostgreSQL backend reached through the pooler: `server` is still the server behind it."""

    def __init__(self, name, server=None, database=None, pooler=None):
        self.name = name
        self.server = server
        self.database = database
        self.pooler = pooler

    @property
    def is_postgres(self):
        return self.name in ("postgres", "pgbouncer")

    def env(self, tmp_path, url_params=None, **extra):
        """base_env for this backend: CLAIM_DB in the test's folder, or CLAIM_DATABASE_URL of a fresh database
        (through the pooler for `pgbouncer`)."""
        env = base_env(tmp_path, **extra)
        if self.is_postgres:
            del env["CLAIM_DB"]
            env["CLAIM_DATABASE_URL"] = (self.pooler or self.server).url_for(self.database, **(url_params or {}))
        return env


def db_query(env, sql):
    """Runs `sql` on the database `env` selects, as another service would, and returns the shell's output: the
    sqlite3 shell on CLAIM_DB, or psql on CLAIM_DATABASE_URL (`-At -F '|'` prints what sqlite3 prints)."""
    if env.get("CLAIM_DATABASE_URL"):
        command = ["psql", "-X", "-q", "-At", "-F", "|", "-v", "ON_ERROR_STOP=1", env["CLAIM_DATABASE_URL"]]
    else:
        command = ["sqlite3", env["CLAIM_DB"]]
    return subprocess.run(command, input=sql, capture_output=True, text=True, check=True).stdout


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each backend in turn; a PostgreSQL backend gets a database of its own, dropped afterwards."""
    if request.param == "sqlite":
        yield Backend("sqlite")
        return
    server = request.getfixturevalue("postgres_server")
    pooler = request.getfixturevalue("pgbouncer") if request.param == "pgbouncer" else None
    database = server.create_database()
    try:
        yield Backend(request.param, server, database, pooler)
    finally:
        server.drop_database(database)
