"""A first use killed half-way (a real process SIGKILLed while creating the schema, or a database left with
some tables and no schema version) leaves a database the next command upgrades."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

import recouvrement.db.models  # noqa: F401
from recouvrement.db.session import TEST_PAUSE_ENV, database_url, open_engine, schema_is_current
from recouvrement.errors import RecouvrementError

_counter = itertools.count()


@pytest.fixture
def empty_url(request, tmp_path) -> str:
    """A database with nothing in it (not even the schema)."""
    if not os.environ.get("RECOUVREMENT_TEST_DB", "sqlite").startswith("postgres"):
        return f"sqlite:///{tmp_path / 'first.db'}"
    base, admin = request.getfixturevalue("postgres_server")
    name = f"empty{os.getpid()}_{next(_counter)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    return f"{base}/{name}"


def assert_complete(url: str) -> None:
    engine = open_engine(url)
    try:
        assert schema_is_current(engine)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
    finally:
        engine.dispose()


def test_a_first_use_killed_while_creating_the_schema_is_upgraded_by_the_next_command(empty_url):
    run = subprocess.Popen([sys.executable, "-c", "from recouvrement.cli import main; main()", "--db", empty_url,
                            "db", "upgrade"], env={**os.environ, TEST_PAUSE_ENV: "5"},
                           stderr=subprocess.PIPE, text=True)
    try:
        assert "paused after 5 tables" in run.stderr.readline()
        os.kill(run.pid, signal.SIGKILL)
        run.wait(30)
    finally:
        if run.poll() is None:
            run.kill()
    assert_complete(empty_url)


def test_empty_tables_without_a_schema_version_are_made_again(empty_url):
    engine = create_engine(database_url(empty_url))
    SQLModel.metadata.create_all(engine, tables=[SQLModel.metadata.tables["invoice"],
                                                 SQLModel.metadata.tables["patient"]])
    engine.dispose()
    assert_complete(empty_url)


def test_tables_with_data_but_no_schema_version_are_refused_and_left_untouched(empty_url):
    engine = create_engine(database_url(empty_url))
    SQLModel.metadata.create_all(engine, tables=[SQLModel.metadata.tables["meta"]])
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO meta (key, value) VALUES ('k', 'v')"))
    with pytest.raises(RecouvrementError, match="aucune version de schéma"):
        open_engine(empty_url)
    assert inspect(engine).get_table_names() == ["meta"]
    engine.dispose()
