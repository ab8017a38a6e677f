"""Opening the database: URL from --db / RECOUVREMENT_DB (default SQLite file), schema upgraded on first use."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import Session

from recouvrement.errors import RecouvrementError

DEFAULT_URL = "sqlite:///recouvrement.db"
MIGRATIONS = Path(__file__).with_name("migrations")


def database_url(explicit: str | None = None) -> str:
    url = explicit or os.environ.get("RECOUVREMENT_DB") or DEFAULT_URL
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def schema_is_current(engine: Engine) -> bool:
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head


def upgrade(engine: Engine) -> None:
    """Bring the schema to the latest migration (a no-op when it already is)."""
    if not schema_is_current(engine):
        command.upgrade(alembic_config(engine), "head")


def open_engine(url: str | None = None, *, migrate: bool = True) -> Engine:
    url = database_url(url)
    try:
        engine = create_engine(url, future=True)
    except (ArgumentError, ImportError) as exc:
        raise RecouvrementError("adresse de base de données inutilisable (--db ou RECOUVREMENT_DB) : "
                                f"{type(exc).__name__}", field="--db") from None   # the URL may hold a password
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        if migrate:
            upgrade(engine)
    except OperationalError as exc:
        raise RecouvrementError(f"impossible d'ouvrir la base {engine.url.render_as_string(hide_password=True)} : "
                                f"{exc.orig}", field="--db") from None
    return engine


BULK_CACHE_KIB = 256 * 1024   # SQLite page cache for bulk work: the indexes of ~2 M payments fit in it


@contextmanager
def bulk_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction for bulk work (an import, a reconciliation). On SQLite, for its duration: a page
    cache that holds the indexes being loaded (the default 2 MB makes a million-row load re-read the same
    pages over and over) and temporary tables in memory; both set back afterwards (which also drops the
    temporary tables)."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            before = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("cache_size", "temp_store")}
            conn.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
            conn.exec_driver_sql("PRAGMA temp_store=MEMORY")
            conn.commit()
        try:
            with conn.begin():
                yield conn
        finally:
            if sqlite:
                conn.rollback()
                for pragma, value in before.items():
                    conn.exec_driver_sql(f"PRAGMA {pragma}={int(value)}")
                conn.commit()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
