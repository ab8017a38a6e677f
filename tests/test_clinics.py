"""Several clinics on one PostgreSQL database (issue #16), one schema each (`[database] schema`), on the real
server of the test setup: each clinic sees only its own data, is created on its first use, has its own audit
chain, and never waits for another clinic's writer or nightly run — while two runs of one clinic take turns.
The settings checks run on SQLite too."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError
from sqlmodel import SQLModel

import recouvrement.db.models  # noqa: F401  (registers the tables)
from recouvrement.app.lock import held
from recouvrement.audit import AuditSeal, append_event, seal_engine, verify
from recouvrement.db.audit import lock_trail_head
from recouvrement.db.session import open_engine, schema_is_current, writing
from recouvrement.errors import RecouvrementError

SAMPLES = Path(__file__).parent.parent / "recouvrement" / "sample_clinic"
NIGHT = "2026-11-23"
_counter = itertools.count()

postgres_only = pytest.mark.skipif(not os.environ.get("RECOUVREMENT_TEST_DB", "sqlite").startswith("postgres"),
                                   reason="several clinics share one PostgreSQL database")


@pytest.fixture
def shared_url(request) -> str:
    """A PostgreSQL database with nothing in it, the clinics' shared home."""
    base, admin = request.getfixturevalue("postgres_server")
    name = f"clinics{os.getpid()}_{next(_counter)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    return f"{base}/{name}"


def clinic(tmp_path: Path, url: str, schema: str) -> Path:
    """A clinic's folder and settings file (the sample clinic's, on `schema` of the shared database)."""
    folder = tmp_path / schema
    folder.mkdir()
    shutil.copytree(SAMPLES / "rules", folder / "rules")
    settings = (SAMPLES / "recouvrement.toml").read_text(encoding="utf-8")
    settings += (f'[database]\nurl = "{url}"\nschema = "{schema}"\n[inbox]\nsettle_seconds = 0\n'
                 f'[privacy]\nnir_key_file = "nir.key"\n')
    (folder / "recouvrement.toml").write_text(settings, encoding="utf-8")
    return folder / "recouvrement.toml"


def command(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", "from recouvrement.cli import main; main()", "--config", str(config), *args]


def run(config: Path, *args: str, wait: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, **({"RECOUVREMENT_WRITER_WAIT": wait} if wait else {}))
    env.pop("RECOUVREMENT_DB", None)
    return subprocess.run(command(config, *args), capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=config.parent)


def night(config: Path, invoices: Path | None = None) -> None:
    """The clinic's nightly run on its inbox: the sample clinic's files, or another invoices file."""
    inbox = config.parent / "inbox"
    inbox.mkdir(exist_ok=True)
    if invoices is None:
        for name in ("invoices.csv", "remittance_amo.csv", "remittance_amc.csv", "bank_camt053.xml"):
            shutil.copyfile(SAMPLES / name, inbox / name)
    else:
        shutil.copyfile(invoices, inbox / "invoices.csv")
    done = run(config, "nightly", "--as-of", NIGHT)
    assert done.returncode in (0, 1), done.stderr


def engine_of(url: str, schema: str, tmp_path: Path):
    return seal_engine(open_engine(url, schema=schema),
                       AuditSeal(os.environ["RECOUVREMENT_AUDIT_KEY"].encode(), tmp_path / f"{schema}.checkpoint"))


def counts(url: str, schema: str, tmp_path: Path) -> dict[str, int]:
    engine = engine_of(url, schema, tmp_path)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                    for t in ("patient", "invoice", "payment", "allocation", "letter", "audit_event")}
    finally:
        engine.dispose()


def invoice_numbers(url: str, schema: str, tmp_path: Path) -> set[str]:
    engine = engine_of(url, schema, tmp_path)
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT invoice_number FROM invoice")).scalars())
    finally:
        engine.dispose()


def tables_in(url: str, schema: str) -> set[str]:
    engine = open_engine(url, migrate=False)
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = :s"),
                                    {"s": schema}).scalars())
    finally:
        engine.dispose()


@postgres_only
def test_two_clinics_in_one_database_never_see_each_others_patients_invoices_payments_letters_or_audit_trail(
        shared_url, tmp_path):
    nord, sud = clinic(tmp_path, shared_url, "clinique_nord"), clinic(tmp_path, shared_url, "clinique_sud")
    night(nord)
    seen = counts(shared_url, "clinique_nord", tmp_path)
    assert all(seen.values()), seen
    assert set(counts(shared_url, "clinique_sud", tmp_path).values()) == {0}

    other = tmp_path / "sud-invoices.csv"
    other.write_text((SAMPLES / "invoices.csv").read_text(encoding="cp1252").replace("F2024-", "S2024-")
                     .replace("F2025-", "S2025-").replace("F2026-", "S2026-"), encoding="cp1252")
    night(sud, other)
    assert counts(shared_url, "clinique_nord", tmp_path) == seen      # nothing of the south went north
    north, south = invoice_numbers(shared_url, "clinique_nord", tmp_path), invoice_numbers(shared_url, "clinique_sud",
                                                                                            tmp_path)
    assert north and south and not north & south
    assert all(n.startswith("S") for n in south)


@postgres_only
def test_first_use_creates_each_clinics_schema_with_its_tables_and_its_own_migration_version(shared_url):
    ours = {t.name for t in SQLModel.metadata.sorted_tables} | {"alembic_version"}
    engine = open_engine(shared_url, schema="clinique_nord")
    try:
        assert schema_is_current(engine)
    finally:
        engine.dispose()
    assert ours <= tables_in(shared_url, "clinique_nord")
    assert tables_in(shared_url, "clinique_sud") == set() and tables_in(shared_url, "public") == set()
    engine = open_engine(shared_url, schema="clinique_sud")
    engine.dispose()
    assert ours <= tables_in(shared_url, "clinique_sud")


@postgres_only
def test_a_clinics_role_works_in_the_schema_made_for_it_and_cannot_read_another_clinics(shared_url, request):
    _base, admin = request.getfixturevalue("postgres_server")
    suffix = f"{os.getpid()}_{next(_counter)}"
    nord, sud, database = f"nord{suffix}", f"sud{suffix}", shared_url.rsplit("/", 1)[1]
    with admin.connect() as conn:
        for role in (nord, sud):
            conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
    owner = create_engine(shared_url, isolation_level="AUTOCOMMIT")
    with owner.connect() as conn:              # the administrator's part (README); the roles may not create schemas
        conn.exec_driver_sql(f"CREATE SCHEMA clinique_nord AUTHORIZATION {nord}")
        conn.exec_driver_sql(f"CREATE SCHEMA clinique_sud AUTHORIZATION {sud}")
        conn.exec_driver_sql(f"REVOKE ALL ON DATABASE {database} FROM PUBLIC")
        conn.exec_driver_sql(f"GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {nord}, {sud}")
    owner.dispose()
    open_engine(shared_url.replace("postgres@", f"{sud}@"), schema="clinique_sud").dispose()
    north = open_engine(shared_url.replace("postgres@", f"{nord}@"), schema="clinique_nord")
    try:
        with north.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM patient")).scalar_one() == 0
            with pytest.raises(ProgrammingError, match="permission denied"):
                conn.execute(text("SELECT COUNT(*) FROM clinique_sud.patient"))
    finally:
        north.dispose()


@postgres_only
def test_the_writer_lock_held_in_one_clinic_does_not_block_a_write_in_another(shared_url, tmp_path):
    sud = clinic(tmp_path, shared_url, "clinique_sud")
    north = engine_of(shared_url, "clinique_nord", tmp_path)
    try:
        with writing(north):                      # as a long reconciliation of the north holds it
            other = run(sud, "reconcile", wait="5")
    finally:
        north.dispose()
    assert other.returncode == 0, other.stderr


@postgres_only
def test_two_writers_of_the_same_clinic_still_take_turns(shared_url, tmp_path):
    nord = clinic(tmp_path, shared_url, "clinique_nord")
    north = engine_of(shared_url, "clinique_nord", tmp_path)
    try:
        with writing(north):
            second = run(nord, "reconcile", wait="1")
    finally:
        north.dispose()
    assert second.returncode == 2 and "base de données occupée" in " ".join(second.stderr.split())


@postgres_only
def test_a_nightly_run_in_progress_in_one_clinic_neither_blocks_another_clinics_nor_lets_its_own_start_twice(
        shared_url, tmp_path):
    nord, sud = clinic(tmp_path, shared_url, "clinique_nord"), clinic(tmp_path, shared_url, "clinique_sud")
    north = engine_of(shared_url, "clinique_nord", tmp_path)
    try:
        with held(north):                         # the north's nightly run is in progress
            south_run = run(sud, "nightly", "--as-of", NIGHT)
            north_again = run(nord, "nightly", "--as-of", NIGHT)
    finally:
        north.dispose()
    assert south_run.returncode == 0, south_run.stderr
    assert north_again.returncode == 3 and "un autre passage nightly est en cours" in north_again.stderr


@postgres_only
def test_each_clinic_has_its_own_audit_chain_appended_without_waiting_for_the_others(shared_url, tmp_path):
    north, south = engine_of(shared_url, "clinique_nord", tmp_path), engine_of(shared_url, "clinique_sud", tmp_path)
    try:
        with north.connect() as conn, conn.begin():
            lock_trail_head(conn)                 # the north appends, its transaction still open
            append_event(conn, "test", payload={"clinique": "nord"})
            with south.connect() as other, other.begin():
                other.exec_driver_sql("SET LOCAL lock_timeout = 2000")
                append_event(other, "test", payload={"clinique": "sud"})
        for engine in (north, south):
            with engine.connect() as conn:
                assert conn.execute(text("SELECT MIN(seq), COUNT(*) FROM audit_event")).one() == (1, 1)
                assert verify(conn).ok
    finally:
        north.dispose()
        south.dispose()


def test_a_schema_name_that_is_not_a_plain_identifier_is_refused_naming_the_setting(tmp_path):
    config = tmp_path / "recouvrement.toml"
    config.write_text('[database]\nschema = "nord; DROP TABLE invoice"\n', encoding="utf-8")
    done = run(config, "runs")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    message = " ".join(done.stderr.split())
    assert "database.schema" in message and "nom de schéma invalide" in message and "DROP" not in message


def test_a_schema_on_sqlite_is_refused_one_file_per_clinic_instead(tmp_path):
    with pytest.raises(RecouvrementError, match="ne vaut que pour PostgreSQL"):
        open_engine(f"sqlite:///{tmp_path / 'nord.db'}", schema="clinique_nord")
    assert not (tmp_path / "nord.db").exists()


@postgres_only
def test_each_clinics_scheduler_keeps_its_nightly_job_in_its_own_schema(shared_url):
    from apscheduler.schedulers.background import BackgroundScheduler

    from recouvrement.config import Database, Settings
    from recouvrement.scheduler import JOB_ID, build_scheduler, pending_fire
    later = datetime.now(timezone.utc) + timedelta(days=400)
    for schema in ("clinique_nord", "clinique_sud"):
        open_engine(shared_url, schema=schema).dispose()        # as `recouvrement schedule` opens it first
        scheduler = build_scheduler(Settings(database=Database(schema=schema)), shared_url,
                                    scheduler_cls=BackgroundScheduler, now=later)
        scheduler.start(paused=True)
        assert scheduler.get_job(JOB_ID) is not None
        scheduler.shutdown(wait=False)
    assert {"apscheduler_jobs"} <= tables_in(shared_url, "clinique_nord")
    assert {"apscheduler_jobs"} <= tables_in(shared_url, "clinique_sud")
    assert "apscheduler_jobs" not in tables_in(shared_url, "public")
    assert pending_fire(shared_url, "clinique_nord") is not None and pending_fire(shared_url, "clinique_sud") is not None


@postgres_only
def test_a_first_load_with_its_keys_set_aside_in_one_clinic_blocks_neither_another_clinics_import_nor_its_reconcile(
        shared_url, tmp_path, monkeypatch):
    import threading

    from recouvrement.app.imports import import_file
    from recouvrement.config import Privacy, Settings
    from recouvrement.db import loads
    sud = clinic(tmp_path, shared_url, "clinique_sud")
    north = engine_of(shared_url, "clinique_nord", tmp_path)
    in_load, go_on = threading.Event(), threading.Event()
    real = loads.bulk_insert

    def held(conn, table, frame):       # the north's invoices held after their COPY: their keys dropped, not yet added
        real(conn, table, frame)
        if table == "invoice" and not in_load.is_set():
            in_load.set()
            assert go_on.wait(120)
    monkeypatch.setattr(loads, "bulk_insert", held)
    loaded = threading.Thread(target=import_file, args=(north, SAMPLES / "invoices.csv",
                                                        Settings(privacy=Privacy(nir_key_file=tmp_path / "nir.key"))))
    loaded.start()
    try:
        assert in_load.wait(120)
        south_import = run(sud, "import", "invoices", str(SAMPLES / "invoices.csv"), timeout=120)
        south_reconcile = run(sud, "reconcile", timeout=120)
    finally:
        go_on.set()
        loaded.join(120)
        north.dispose()
    assert south_import.returncode == 0, south_import.stderr
    assert south_reconcile.returncode == 0, south_reconcile.stderr
    assert counts(shared_url, "clinique_nord", tmp_path)["invoice"] == counts(shared_url, "clinique_sud",
                                                                               tmp_path)["invoice"] > 0
    for schema in ("clinique_nord", "clinique_sud"):
        engine = engine_of(shared_url, schema, tmp_path)
        try:
            with engine.connect() as conn:
                assert set(conn.execute(text(
                    "SELECT conname FROM pg_constraint WHERE connamespace = current_schema()::regnamespace "
                    "AND conrelid::regclass::text IN ('invoice', 'patient')")).scalars()) == {"invoice_pkey",
                                                                                             "patient_pkey"}
        finally:
            engine.dispose()


@postgres_only
def test_a_clinics_run_reads_its_own_ledger_beside_its_pass_in_its_own_schema(shared_url, tmp_path, settings,
                                                                             monkeypatch):
    """A clinic's run reads its whole ledger on a second connection beside its explicit pass (app.reconcile.
    _LedgerBeside, in the run's snapshot and on its search_path): the clinic's own invoices, never another clinic's
    of the same database (fails without the change: nothing read beside on PostgreSQL)."""
    from recouvrement.app import reconcile as use_case
    from recouvrement.app.imports import import_file
    from tests.app.world import INVOICES, invoices_file, ledger_reads_beside, payments_file
    for folder in ("nord", "sud"):
        (tmp_path / folder).mkdir()
    north, south = engine_of(shared_url, "clinique_nord", tmp_path), engine_of(shared_url, "clinique_sud", tmp_path)
    try:
        import_file(south, invoices_file(tmp_path / "sud", [row.replace("F2025-", "S2025-") for row in INVOICES]),
                    settings)
        import_file(north, invoices_file(tmp_path / "nord"), settings)
        import_file(north, payments_file(tmp_path / "nord", ["A1;2025-03-01;amo;CPAM DE PARIS;70,00;;F2025-000101;paid;",
                                                             "B3;2025-03-07;patient;INCONNU PAUL;12,00;;;;"]), settings)
        read = ledger_reads_beside(monkeypatch)
        report = use_case.run_reconcile(north, incremental=False)
        assert report.allocations == 1 and len(read) == 1 and read[0] is not None
        assert sorted(read[0].invoices["invoice_number"]) == [f"F2025-00010{k}" for k in range(1, 5)]
        assert sorted(read[0].patients["patient_id"]) == ["P1", "P2", "P3"]
    finally:
        north.dispose()
        south.dispose()
