"""Test worlds on real databases: an SQLite file per test, or a real PostgreSQL server.

RECOUVREMENT_TEST_DB=postgresql starts a PostgreSQL server (Debian's postgresql binaries, run as the
`postgres` user when we are root) in a temporary folder for the session; each test gets a fresh
database cloned from a migrated template.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from recouvrement.config import Settings
from recouvrement.db.session import open_engine

# Speed is measured in benchmarks/, never in tests: hypothesis's per-example deadline (200 ms) is a timing
# assertion that fails on a loaded machine, so no property test has one (tests may still set their own
# max_examples).
hypothesis_settings.register_profile("recouvrement", deadline=None)
hypothesis_settings.load_profile("recouvrement")

PG_BIN = Path("/usr/lib/postgresql/15/bin")
_counter = itertools.count()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="session")
def postgres_server():
    folder = Path(tempfile.mkdtemp(prefix="recouvrement-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = _free_port()
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                                 "--encoding=UTF8", "--locale=C.UTF-8"]), check=True, capture_output=True)
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-o",
                                 f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                                 "-c synchronous_commit=off -c full_page_writes=off", "start"]),
                   check=True, capture_output=True)
    base = f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    try:
        import sqlalchemy
        admin = sqlalchemy.create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE template_recouvrement")
        open_engine(f"{base}/template_recouvrement").dispose()
        yield base, admin
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _use_postgres() -> bool:
    return os.environ.get("RECOUVREMENT_TEST_DB", "sqlite").startswith("postgres")


@pytest.fixture
def db_url(request, tmp_path) -> str:
    """A fresh, migrated database for one test."""
    if not _use_postgres():
        return f"sqlite:///{tmp_path / 'recouvrement.db'}"
    base, admin = request.getfixturevalue("postgres_server")
    name = f"t{os.getpid()}_{next(_counter)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE template_recouvrement")
    return f"{base}/{name}"


TEST_AUDIT_KEY = "test-audit-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def audit_key(monkeypatch) -> bytes:
    """Every test, and every process it starts, seals the audit trail with one known key (as
    RECOUVREMENT_AUDIT_KEY does in production), so no key file is ever created in the current folder."""
    monkeypatch.setenv("RECOUVREMENT_AUDIT_KEY", TEST_AUDIT_KEY)
    return TEST_AUDIT_KEY.encode()


@pytest.fixture(autouse=True)
def data_home_per_test(monkeypatch, tmp_path) -> None:
    """Commands run without a settings file keep their audit checkpoint in $XDG_DATA_HOME: one per test, so a
    test never meets another test's trail head."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))


@pytest.fixture
def checkpoint_file(tmp_path) -> Path:
    """Where the command line finds the checkpoint when it runs without a settings file."""
    return tmp_path / "data-home" / "recouvrement" / "audit.checkpoint"


@pytest.fixture
def engine(db_url, audit_key, checkpoint_file):
    from recouvrement.audit import AuditSeal, seal_engine
    engine = seal_engine(open_engine(db_url), AuditSeal(audit_key, checkpoint_file))
    yield engine
    engine.dispose()


@pytest.fixture
def settings(tmp_path) -> Settings:
    from recouvrement.config import Privacy
    return Settings(privacy=Privacy(nir_key_file=tmp_path / "nir.key"))


@pytest.fixture(autouse=True, scope="session")
def _nir_key_home(tmp_path_factory):
    """Commands run without a settings file keep their NIR key in the user's data folder: a test's, not ours."""
    previous = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("data-home"))
    yield
    if previous is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = previous
