"""Opening the database: URL from --db / RECOUVREMENT_DB (default SQLite file), schema upgraded on first use;
the writer lock every writing use case takes (`writing`, `bulk_transaction`, `session_scope`).

One writer at a time, whatever the process or host: every transaction that reads in order to write
takes the database's own lock first, so what it read is still true when it writes, and a second
`reconcile` started at the same moment waits, then finds nothing new. On SQLite it is `BEGIN
IMMEDIATE` (the database's write lock, taken before the first read); on PostgreSQL a transaction-level
advisory lock. Both are released at commit or rollback, and by the server or the OS when the process
dies, so a killed run never leaves a lock behind. Readers are never blocked (WAL on SQLite, MVCC on
PostgreSQL). Never nest two writer transactions in one process: the inner one would wait for the outer.

Several clinics on one PostgreSQL database: each opens the engine on its own schema (`[database] schema`,
set as the connection's search_path when it starts, so every table, the alembic version table and every
migration are the clinic's), and every advisory lock is keyed by (kind, the connection's search_path): one
clinic's writer never waits for another's.
"""

from __future__ import annotations

import ast
import ctypes
import gc
import os
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Iterator
from weakref import WeakKeyDictionary, WeakSet

from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlmodel import Session

from recouvrement.config import valid_schema
from recouvrement.errors import RecouvrementError

DEFAULT_URL = "sqlite:///recouvrement.db"
MIGRATIONS = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_MS = 30000            # SQLite: how long a plain statement waits for the write lock
WRITER_WAIT = 600.0                # seconds a writer waits for the one before it (a big reconciliation)
WRITER_WAIT_ENV = "RECOUVREMENT_WRITER_WAIT"
WRITER_LOCK_KEY = 0x7265636F       # PostgreSQL advisory lock kind of the writer ("reco"), keyed per clinic
MIGRATION_LOCK_KEY = WRITER_LOCK_KEY + 1


def clinic_lock(kind: int) -> str:
    """The statement taking PostgreSQL's transaction-level advisory lock `kind` of this connection's clinic: the
    lock's second key is a hash of the search_path, which names the clinic's schema (the same text for every
    process of one clinic, another for each other clinic; advisory locks are per database already)."""
    return f"SELECT pg_advisory_xact_lock({int(kind)}, hashtext(current_setting('search_path')))"


class WriterBusy(RecouvrementError):
    """Another process kept the database's write lock longer than this one was allowed to wait."""

    def __init__(self, waited: float) -> None:
        super().__init__(f"base de données occupée : une autre commande y écrit depuis plus de {waited:g} s "
                         f"(import, rapprochement, relances ou run de nuit) ; réessayez quand elle aura fini",
                         field="database")


def writer_wait() -> float:
    """Seconds to wait for the writer lock: RECOUVREMENT_WRITER_WAIT, else WRITER_WAIT."""
    value = os.environ.get(WRITER_WAIT_ENV, "")
    try:
        return max(float(value), 0.0) if value else WRITER_WAIT
    except ValueError:
        raise RecouvrementError(f"{WRITER_WAIT_ENV}={value!r} is not a number of seconds",
                                field=WRITER_WAIT_ENV) from None


def database_url(explicit: str | None = None) -> str:
    url = explicit or os.environ.get("RECOUVREMENT_DB") or DEFAULT_URL
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def create_clinic_schema(conn: Connection) -> None:
    """PostgreSQL, first use of a clinic: create the schema the connection was opened on (`[database] schema`),
    inside the migration's transaction and lock. Skipped when it exists (a role without the right to create
    schemas works in the one its administrator made for it)."""
    if conn.dialect.name != "postgresql":
        return
    schema = conn.exec_driver_sql("SHOW search_path").scalar_one()
    if not valid_schema(schema):          # the server's default ("$user", public): nothing to create
        return
    if conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}).first() is None:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")      # checked above: a plain lowercase identifier


def schema_is_current(engine: Engine) -> bool:
    """The database's schema version is our migrations' head. Asked at every command's start: the head is read
    from the scripts' own lines (`head_revision`) and the version straight from alembic_version, so alembic is
    loaded (~0.2 s) only to upgrade, or when the scripts are not a plain chain."""
    head = head_revision()
    if head is None:
        from alembic.script import ScriptDirectory
        head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        return stored_revision(conn) == head


@lru_cache(maxsize=4)
def head_revision(versions: Path = MIGRATIONS / "versions") -> str | None:
    """The last of our migrations, read from each script's `revision = "…"` and `down_revision = "…"` lines; None
    (ask alembic) unless they make one plain chain: every script with exactly one of each, one first script
    (down_revision None), no revision two scripts follow. Held equal to alembic's head by tests/test_migrations."""
    revisions: dict[str, str | None] = {}
    for script in sorted(versions.glob("*.py")):
        found: dict[str, object] = {}
        for node in ast.parse(script.read_text(encoding="utf-8")).body:
            value: ast.expr | None
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign):
                target, value = node.target, node.value
            else:
                continue
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                if target.id in found or not isinstance(value, ast.Constant):
                    return None
                found[target.id] = value.value
        revision, down = found.get("revision"), found.get("down_revision")
        if not isinstance(revision, str) or "down_revision" not in found or not (down is None or isinstance(down, str)):
            return None
        if revision in revisions:
            return None
        revisions[revision] = down
    downs = list(revisions.values())
    if downs.count(None) != 1 or len(set(downs)) != len(downs) or not set(downs) - {None} <= set(revisions):
        return None
    heads = set(revisions) - set(downs)
    return heads.pop() if len(heads) == 1 else None


def stored_revision(conn: Connection) -> str | None:
    """The schema version the database holds (alembic_version, in the connection's schema); None when it holds
    none, or several (branches: alembic sorts them out)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def clear_interrupted_first_use(conn: Connection, metadata) -> None:
    """A database with some of our tables but no schema version is a first use killed half-way (before
    migrations ran in one transaction): when those tables are all empty they are dropped, and the upgrade
    creates the schema afresh; with data in them the database is refused, untouched."""
    names = set(inspect(conn).get_table_names())
    if "alembic_version" in names and conn.execute(text("SELECT COUNT(*) FROM alembic_version")).scalar_one():
        return
    ours = [t for t in reversed(metadata.sorted_tables) if t.name in names]
    if not ours:
        return
    filled = [t.name for t in ours if conn.execute(text(f"SELECT COUNT(*) FROM {t.name}")).scalar_one()]
    if filled:
        raise RecouvrementError(f"la base a des tables de recouvrement avec des données ({', '.join(filled)}) mais "
                                "aucune version de schéma : elle n'est pas mise à jour ; vérifiez l'URL --db",
                                field="database")
    for table in ours:
        table.drop(conn)


TEST_PAUSE_ENV = "RECOUVREMENT_TEST_PAUSE_IN_MIGRATION"   # tests: stop after N tables created, to be killed


def pause_for_tests(conn: Connection) -> None:
    wanted = os.environ.get(TEST_PAUSE_ENV, "")
    if not wanted.isdigit():
        return
    created = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("CREATE TABLE"):
            created.append(statement)
            if len(created) == int(wanted):
                print(f"paused after {wanted} tables", file=sys.stderr, flush=True)
                time.sleep(3600)
    event.listen(conn, "after_cursor_execute", count)


def upgrade(engine: Engine) -> None:
    """Bring the schema to the latest migration (a no-op when it already is)."""
    if not schema_is_current(engine):
        from alembic import command
        command.upgrade(alembic_config(engine), "head")


def open_engine(url: str | None = None, *, migrate: bool = True, schema: str = "") -> Engine:
    """The database at `url` (see `database_url`), its schema upgraded unless `migrate` is False. `schema`
    (PostgreSQL only) is the clinic's: every connection works in it alone (its search_path), created on first
    use; SQLite keeps one file per clinic."""
    url = database_url(url)
    try:
        engine = create_engine(url, future=True, connect_args=_connect_args(url, schema))
    except (ArgumentError, ImportError) as exc:
        raise RecouvrementError("adresse de base de données inutilisable (--db ou RECOUVREMENT_DB) : "
                                f"{type(exc).__name__}", field="database") from None   # the URL may hold a password
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        if migrate:
            upgrade(engine)
    except OperationalError as exc:
        raise RecouvrementError(f"impossible d'ouvrir la base {engine.url.render_as_string(hide_password=True)} : "
                                f"{exc.orig}", field="database") from None
    return engine


def _connect_args(url: str, schema: str) -> dict:
    """PostgreSQL's startup options, after the URL's own: the session's time zone UTC, whatever the server's, as
    every time the store writes is (a naive one, sent by COPY or as a parameter, is read in the session's zone:
    under a server's Europe/Paris it was stored an hour off); the search_path set to the clinic's `schema`."""
    if schema and not valid_schema(schema):
        raise RecouvrementError("nom de schéma invalide : lettres minuscules, chiffres et _ (63 au plus), sans "
                                "commencer par un chiffre ni par pg_", field="database.schema")
    try:
        parsed = make_url(url)
    except ArgumentError:
        return {}                        # create_engine says why, in one line
    if parsed.get_backend_name() != "postgresql":
        if schema:
            raise RecouvrementError("[database] schema ne vaut que pour PostgreSQL (SQLite : un fichier par "
                                    "clinique)", field="database.schema")
        return {}
    own = parsed.query.get("options", "")
    own = " ".join(own) if isinstance(own, tuple) else own
    return {"options": (f"{own} -c TimeZone=UTC" + (f" -c search_path={schema}" if schema else "")).strip()}


SMALL_CACHE_KIB = 2 * 1024    # SQLite's default
BULK_CACHE_KIB = 256 * 1024   # SQLite page cache for bulk work: the indexes of ~2 M payments fit in it
# PostgreSQL, for a bulk transaction's duration: work_mem raised to 256 MB, never lowered (the server's own may be
# larger). The first reconcile at 1M hashes two million allocations and groups them by invoice: with the 64 MB
# advised for everyday work the hashes spilled to disk (settle's grouping: 6.4-8.4 -> 5.1-5.3 s of server CPU).
# One bulk transaction at a time per clinic (the writer lock), so a clinic adds at most a few times 256 MB.
BULK_WORK_MEM = ("SELECT set_config('work_mem', '256MB', true) WHERE (SELECT setting::bigint FROM pg_settings "
                 "WHERE name = 'work_mem') < 256 * 1024")

# PostgreSQL, for a bulk transaction's duration: no parallel query plans (index builds keep their parallel
# workers, max_parallel_maintenance_workers). Its statements join whole tables to aggregates of millions of rows,
# and a parallel plan has each worker build the whole inner side again: settle's grouping of 2.1M allocations by
# invoice, at 1M, was built three times over (leader and two workers), 8.4 s wall and 12.3 s of server CPU where
# the same plan alone takes 4.5 s and 4.3 s.
BULK_NO_PARALLEL_QUERY = "SET LOCAL max_parallel_workers_per_gather = 0"


def take_writer_lock(conn: Connection, wait: float | None = None, key: int = WRITER_LOCK_KEY) -> None:
    """The first statement of a writer transaction: the database's write lock, waiting up to `wait` seconds
    (WriterBusy after that)."""
    wait = writer_wait() if wait is None else wait
    try:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(f"PRAGMA busy_timeout={int(wait * 1000)}")
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            finally:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        else:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {max(int(wait * 1000), 1)}")
            conn.exec_driver_sql(clinic_lock(key))
            conn.exec_driver_sql("SET LOCAL lock_timeout TO DEFAULT")
    except OperationalError as exc:
        if _is_lock_timeout(exc):
            raise WriterBusy(wait) from None
        raise


def _is_lock_timeout(exc: DBAPIError) -> bool:
    """SQLite: 'database is locked'; PostgreSQL: lock_not_available (55P03)."""
    return "database is locked" in str(exc.orig) or getattr(exc.orig, "sqlstate", None) == "55P03"


@contextmanager
def writing(engine: Engine, wait: float | None = None) -> Iterator[Connection]:
    """One writer transaction: the write lock first, then the caller's reads and writes; committed when
    the block ends, rolled back on any error. The one way a use case (or the web app) writes."""
    with engine.connect() as conn:
        with conn.begin():
            take_writer_lock(conn, wait)
            yield conn


@contextmanager
def bulk_transaction(engine: Engine) -> Iterator[Connection]:
    """One writer transaction (see `writing`) for bulk work (an import, a reconciliation). On PostgreSQL, without
    JIT compilation nor parallel query plans, with a larger work_mem. On SQLite, for its duration: a page cache
    that holds the indexes being loaded (the default 2 MB makes a million-row load re-read the same pages over and
    over), temporary tables in memory and no checkpoint at the commit; all three set back afterwards (which also
    drops the temporary tables), and the WAL the commit wrote is checkpointed behind, in a thread
    (`checkpoint_behind`), while the caller goes on."""
    wal = False
    without_huge_pages()
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            before = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar_one() for p in BULK_PRAGMAS}
            wal = wal_mode(conn)
            conn.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
            conn.exec_driver_sql("PRAGMA temp_store=MEMORY")
            conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
            conn.commit()
        try:
            with conn.begin():
                take_writer_lock(conn)
                if not sqlite:   # JIT compiles each big statement for seconds (5 of the 10 s of the explicit
                    conn.exec_driver_sql("SET LOCAL jit = off")   # pass at 100k) to save less than that
                    conn.exec_driver_sql(BULK_WORK_MEM)
                    conn.exec_driver_sql(BULK_NO_PARALLEL_QUERY)
                yield conn
        finally:
            if sqlite:
                conn.rollback()
                for pragma, value in before.items():
                    conn.exec_driver_sql(f"PRAGMA {pragma}={int(value)}")
                conn.commit()
    if wal:
        checkpoint_behind(engine)
    release_freed_memory()


def sqlite_file(engine: Engine) -> str | None:
    """The SQLite file the engine opens; None for a server database, or an in-memory one (no file to share)."""
    database = engine.url.database
    return database if engine.dialect.name == "sqlite" and database and database != ":memory:" else None


def released_for_fork(engine: Engine) -> bool:
    """SQLite file: the engine's idle connections closed (its pool disposed of), then whether this process may fork
    a child that opens the file anew: no thread of ours but this one (the checkpoint behind a bulk commit, a server's
    workers: a lock one of them holds would stay held in the child), and no descriptor left open on the file, its WAL
    or its shared memory (a connection checked out somewhere). SQLite's rule is that a connection never crosses a
    fork(): it keeps its locks per process, in memory, per file, so a connection the child opens beside an inherited
    one would take the parent's locks for its own and read unprotected. Linux only (it reads /proc/self/fd); False
    elsewhere, for a server or in-memory database, and without disposing of anything when another thread runs."""
    database = sqlite_file(engine)
    if database is None or sys.platform != "linux":
        return False
    if threading.active_count() > 1:
        return False
    engine.dispose()
    path = os.path.realpath(database)
    files = {path, path + "-wal", path + "-shm", path + "-journal"}
    if not _opened(files):
        return True
    # A connection checked out while its pool was disposed of goes back, when released, into the pool disposed of,
    # which nothing closes but the cycle collector (the pool and its connections refer to each other): its file
    # stays open until the collector runs. Collected once, then looked at again: a connection still in use keeps
    # the fork refused.
    gc.collect()
    return not _opened(files)


def _opened(files: set[str]) -> bool:
    """Whether this process holds a descriptor open on one of `files` (real paths)."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:          # the listing's own descriptor, closed once read
            continue
        if target in files:
            return True
    return False


def wal_mode(conn: Connection) -> bool:
    """SQLite: whether the database is in WAL mode (a file: an in-memory database says 'memory'), where another
    connection reads what was committed while this one writes, and a checkpoint may run beside a writer."""
    return str(conn.exec_driver_sql("PRAGMA journal_mode").scalar_one()).lower() == "wal"


# PostgreSQL: how long a statement on a connection reading beside a writer's transaction waits for a lock. The only
# locks it could wait for are the writer's own (the writer lock keeps every other writer out), which the writer
# releases only once the reader is done: a wait would never end (PostgreSQL sees no deadlock, one side waits in
# Python), so it fails instead and the writer reads for itself.
BESIDE_LOCK_WAIT_MS = 1000


@dataclass(frozen=True)
class Beside:
    """What a connection opened beside a writer's transaction needs to read what that transaction sees
    (`reading_beside`): on PostgreSQL the transaction's snapshot, exported, and its search_path (the clinic's
    schema); nothing on SQLite, where another connection sees what was committed before the writer wrote."""
    snapshot: str | None = None
    search_path: str | None = None


def view_beside(conn: Connection) -> Beside | None:
    """How another connection may read, while this one's transaction writes, what this transaction sees before it
    writes; None when none may: SQLite not in WAL mode (an in-memory database). On PostgreSQL the snapshot is
    exported (pg_export_snapshot): the other connection sees what this transaction saw of what was committed, by
    construction, whatever commits after (none: the writer lock); never what this transaction writes."""
    if conn.dialect.name == "sqlite":
        return Beside() if wal_mode(conn) else None
    snapshot, path = conn.exec_driver_sql("SELECT pg_export_snapshot(), current_setting('search_path')").one()
    return Beside(snapshot, path)


@contextmanager
def reading_beside(engine: Engine, seen: Beside) -> Iterator[Connection]:
    """A connection of `engine`'s reading what the writer's transaction that gave `seen` (`view_beside`) sees. On
    PostgreSQL: a read-only repeatable-read transaction in its exported snapshot and on its search_path, whose
    statements fail (OperationalError, lock_not_available) rather than wait more than BESIDE_LOCK_WAIT_MS for a
    lock (see there). Rolled back at the end (it writes nothing), which releases what it locked."""
    with engine.connect() as other:
        try:
            if seen.snapshot is not None:
                other.execution_options(isolation_level="REPEATABLE READ")
                other.exec_driver_sql("SET TRANSACTION READ ONLY")
                other.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{_snapshot_id(seen.snapshot)}'")
                other.execute(text("SELECT set_config('search_path', :p, true)"), {"p": seen.search_path})
                other.exec_driver_sql(f"SET LOCAL lock_timeout = {BESIDE_LOCK_WAIT_MS}")
            yield other
        finally:
            other.rollback()


def _snapshot_id(snapshot: str) -> str:
    """pg_export_snapshot's identifier (hexadecimal digits and dashes), checked before it is written into the
    statement (SET TRANSACTION SNAPSHOT takes no parameter)."""
    if not snapshot or set(snapshot) - set("0123456789ABCDEFabcdef-"):
        raise ValueError(f"not a snapshot identifier: {snapshot!r}")
    return snapshot


# SQLite settings a bulk transaction changes, set back after it.
BULK_PRAGMAS = ("cache_size", "temp_store", "wal_autocheckpoint")
_CHECKPOINTS: WeakKeyDictionary[Engine, threading.Thread] = WeakKeyDictionary()
_AGAIN: WeakSet[Engine] = WeakSet()         # engines committed to while their checkpoint was under way
_CHECKPOINTS_HELD = threading.Lock()        # guards both


def checkpoint_behind(engine: Engine) -> None:
    """SQLite: the WAL's frames copied into the database file (a PASSIVE checkpoint) on a connection of their own,
    in a thread, while the caller goes on (the next file's store, the reconciliation's reads). The bulk commit's own
    automatic checkpoint did it in the commit: at 1M the AMO remittance's commit took 0.84-1.91 s of CPU with it,
    0.36-0.65 s without, its checkpoint then 0.29-0.35 s of CPU, 0.52-0.61 s wall with the file's sync; the first
    reconcile's commit 3.0-3.1 s of CPU, 0.9-1.0 s without. A writer goes on beside a checkpoint (it appends to
    the WAL), and readers read the committed rows from the WAL meanwhile.
    One checkpoint at a time per engine: a commit made while one is under way is not held until it ends (the
    night's AMO remittance, stored in 0.1 s, waited for the checkpoint of the invoices' 41 MB); the thread passes
    again once done, and copies its frames then. Disposing of the engine waits for the last pass (so does the
    interpreter at its end: the thread is not a daemon); a process killed meanwhile leaves the frames in the WAL,
    which the next connection to the file reads (and checkpoints) as if nothing happened."""
    if not event.contains(engine, "engine_disposed", wait_for_checkpoint):
        event.listen(engine, "engine_disposed", wait_for_checkpoint)
    with _CHECKPOINTS_HELD:
        if engine in _CHECKPOINTS:
            _AGAIN.add(engine)
            return
        thread = threading.Thread(target=_checkpoints, args=(engine,), name="recouvrement-sqlite-checkpoint")
        _CHECKPOINTS[engine] = thread
        try:
            thread.start()
        except BaseException:
            del _CHECKPOINTS[engine]
            raise


def _checkpoints(engine: Engine) -> None:
    """checkpoint_behind's thread: a pass, and another while a commit came during the one before. Whether to pass
    again and the thread's leaving are decided under one hold of the lock: a commit is never left behind it."""
    done = False
    try:
        while not done:
            _checkpoint(engine)
            with _CHECKPOINTS_HELD:
                done = engine not in _AGAIN
                _AGAIN.discard(engine)
                if done:
                    del _CHECKPOINTS[engine]
    finally:
        if not done:        # the pass raised: the next commit starts a thread again
            with _CHECKPOINTS_HELD:
                _CHECKPOINTS.pop(engine, None)
                _AGAIN.discard(engine)


def wait_for_checkpoint(engine: Engine) -> None:
    """The checkpoint `checkpoint_behind` started for `engine`, if any, waited for (with its passes again)."""
    with _CHECKPOINTS_HELD:
        thread = _CHECKPOINTS.get(engine)
    if thread is not None:
        thread.join()


def _checkpoint(engine: Engine) -> None:
    # A failure is left as SQLite leaves its own automatic checkpoint's (it ignores it): the frames stay in the
    # WAL, committed and read from there, and the next checkpoint (the next bulk commit's, another writer's
    # automatic one, the last connection's close) copies them.
    # The connection is closed when done, not kept in the pool: one kept there after the engine's disposal
    # (which waits for this thread) would hold the WAL open until the garbage collector closed it.
    try:
        with engine.connect() as conn:
            conn.detach()
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
    except DBAPIError:
        pass


def bulk_cache(conn: Connection, big: bool) -> None:
    """SQLite, within bulk_transaction: the bulk page cache (`big`) or the default small one, while the work is
    in Python (the reconciliation's engine): its 256 MB then only hold pages of the writes done, which SQLite
    writes out to the WAL as it reads on (they are written at the commit anyway)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB if big else SMALL_CACHE_KIB}")


# Free bytes in the C heap below which it is not trimmed: giving back a few tens of megabytes costs more than they
# are worth (malloc_trim walks and unmaps every free page, and the next stage takes them again, page fault by page
# fault: the 1M history's night held 43-52 MB free at each of its 14 calls, and spent 30-40 ms trimming them); the
# stages of a 1M run and a big file's parse leave hundreds of megabytes.
TRIM_FROM_BYTES = 64 << 20


# prctl(2)'s option that keeps a process's memory out of transparent huge pages (<linux/prctl.h>).
PR_SET_THP_DISABLE = 41


@lru_cache(maxsize=1)
def without_huge_pages() -> bool:
    """This process's memory in the system's 4 KiB pages from now on, never in transparent huge pages (Linux's
    prctl PR_SET_THP_DISABLE, kept by the processes it starts: the read-ahead child too), and whether it holds
    (elsewhere, or refused: False, nothing changed). Once per process; called before bulk work (an import's parse,
    a bulk transaction).

    Arrow's allocator (mimalloc) asks for huge pages on each arena it reserves (madvise, 1 GiB at a time), and the
    kernel then zeroes a whole 2 MiB page at the first touch of any part of one, and again after a part was given
    back (released, or purged by mimalloc a second after it was freed): Arrow's reading of the 1M invoices file and
    its columns made one chunk, the first in a process, took 5.4-7.6 s of CPU, 2.9-6.2 s of it the kernel's
    (perf: clear_page_erms), against 1.7 s in small pages. The 1M full run (benchmarks/reconcile.py, SQLite): the
    invoices' import 16.9-23.7 -> 13.3-17.4 s wall, 20.0-22.0 -> 15.6-16.1 s CPU; the reconcile 31.1-33.9 -> 29.0-29.4
    s CPU; the peak 1,868-1,871 -> 1,816-1,850 MB. No memory is given a huge page then, numpy's big arrays neither
    (the reconcile's CPU says they did not gain by them)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    return prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0


def release_freed_memory() -> None:
    """Give the system back the pages the allocators hold free: Arrow's pool (mimalloc keeps what the 1M invoice
    import parsed: 687 -> 301 MB after it) and the C heap (glibc's malloc_trim; elsewhere nothing: SQLite's
    sorts, the cells of a read, numpy's arrays), which keep hundreds of megabytes while Python's own objects take
    fresh pages elsewhere; the C heap only when TRIM_FROM_BYTES or more are free in it (as glibc's mallinfo2
    counts them; without mallinfo2, always). Called after each bulk transaction and between the reconciliation's
    stages."""
    pyarrow = sys.modules.get("pyarrow")     # not imported: its pool holds nothing (and every command starts quicker)
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None and _heap_free_bytes() >= TRIM_FROM_BYTES:
        trim(0)


@lru_cache(maxsize=1)
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):     # a C library without it (musl)
        return None


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


@lru_cache(maxsize=1)
def _mallinfo2():
    try:
        function = ctypes.CDLL(None).mallinfo2      # glibc 2.33 and later
    except (OSError, AttributeError):
        return None
    function.restype = _MallInfo2
    return function


def _heap_free_bytes() -> int | float:
    """The bytes free in the C heap's arenas (glibc's mallinfo2: fordblks, all arenas), infinite when unknown."""
    mallinfo2 = _mallinfo2()
    return float("inf") if mallinfo2 is None else mallinfo2().fordblks


@contextmanager
def session_scope(engine: Engine, wait: float | None = None) -> Iterator[Session]:
    """A SQLModel session in one writer transaction (see `writing`), for the web app: committed when the
    block ends, rolled back on any error."""
    from sqlmodel import Session
    with writing(engine, wait) as conn, Session(bind=conn, expire_on_commit=False) as session:
        yield session
        session.flush()
