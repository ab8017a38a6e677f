"""PostgreSQL's loads straight into an empty table (db.loads._load_if_all_new): the table's keys (primary, unique)
set aside with its indexes and added again after the COPY, sorted, in the import's own transaction. PostgreSQL's
DDL is transactional: an import that fails or is killed rolls the keys' drop back with its rows. The keys are
back before the commit: another import of the clinic, waiting for its writer lock, finds every row known; another
clinic's tables are never touched. A duplicate within one file never reaches the load (the importers refuse its
second line); one that did would be refused by the key added after the COPY, and nothing stored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

from recouvrement.app.imports import import_file
from recouvrement.cli import database_message
from recouvrement.db import loads
from tests.app.world import INVOICES, invoices_file, payments_file

postgres_only = pytest.mark.skipif(not os.environ.get("RECOUVREMENT_TEST_DB", "sqlite").startswith("postgres"),
                                   reason="PostgreSQL's keys; SQLite keeps its keys (its rowid tables need them)")

LOADED = ("invoice", "patient", "payment")
KEYS = ("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype IN "
        "('p', 'u') AND connamespace = current_schema()::regnamespace AND conrelid::regclass::text IN "
        "('invoice', 'patient', 'payment') ORDER BY 1, 2")
INDEXES = ("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
           "AND tablename IN ('invoice', 'patient', 'payment') ORDER BY 1, 2")
PAYMENTS = ["V1;15/01/2025;amo;CPAM;70,00;;F2025-000101;paid;", "V2;16/01/2025;patient;Lefèvre;10,00;;;paid;"]


def catalog(engine) -> tuple[list[tuple], list[tuple]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(KEYS))], [tuple(r) for r in conn.execute(text(INDEXES))]


def count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def watched(engine, monkeypatch) -> list[str]:
    """The statements the engine runs, COPYs included (psycopg's copy, which SQLAlchemy's events do not see)."""
    import psycopg
    statements: list[str] = []
    real_copy = psycopg.Cursor.copy
    monkeypatch.setattr(psycopg.Cursor, "copy", lambda self, statement, *a, **k: (
        statements.append(str(statement)), real_copy(self, statement, *a, **k))[1])
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2].strip()))
    return statements


def first(statements: list[str], start: str) -> int:
    return next(i for i, s in enumerate(statements) if s.startswith(start))


@postgres_only
def test_on_postgresql_a_first_load_drops_each_key_before_its_copy_and_adds_it_again_after(engine, settings, tmp_path,
                                                                                          monkeypatch):
    keys, indexes = catalog(engine)
    statements = watched(engine, monkeypatch)
    import_file(engine, invoices_file(tmp_path), settings)
    import_file(engine, payments_file(tmp_path, PAYMENTS), settings)
    for table, name, _ in keys:
        dropped = first(statements, f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        added = first(statements, f'ALTER TABLE {table} ADD CONSTRAINT "{name}"')
        assert dropped < first(statements, f"COPY {table} ") < added
    assert catalog(engine) == (keys, indexes)
    assert {name for _, name, _ in keys} == {"invoice_pkey", "patient_pkey", "payment_pkey", "payment_payment_id_key"}


def test_the_keys_added_again_after_a_first_load_refuse_a_known_key(engine, settings, tmp_path):
    import_file(engine, invoices_file(tmp_path), settings)
    import_file(engine, payments_file(tmp_path, PAYMENTS), settings)
    again = import_file(engine, invoices_file(tmp_path, name="again.csv"), settings)
    assert (again.imported, again.duplicates) == (0, len(INVOICES))
    for insert in ("INSERT INTO invoice (invoice_number, compact_number, patient_id, issue_date, due_date) "
                   "VALUES ('F2025-000101', 'F2025000101', 'P9', '2025-01-01', '2025-01-01')",
                   "INSERT INTO patient (patient_id, last_name, first_name) VALUES ('P1', 'X', 'Y')",
                   "INSERT INTO payment (payment_id, payment_date, payer_type) VALUES ('V1', '2025-01-01', 'amo')"):
        with engine.connect() as conn, pytest.raises(IntegrityError):
            conn.execute(text(insert))
    assert (count(engine, "invoice"), count(engine, "patient"), count(engine, "payment")) == (4, 3, 2)


def test_a_file_holding_the_same_invoice_number_twice_on_an_empty_database_stores_the_first_and_refuses_the_second(
        engine, settings, tmp_path):
    twice = INVOICES + [INVOICES[2].replace("50,00;21,00;6,00;23,00", "60,00;21,00;6,00;33,00")]
    report = import_file(engine, invoices_file(tmp_path, twice), settings)
    assert report.imported == len(INVOICES)
    assert [(r.line, r.field) for r in report.rejects] == [(len(twice) + 1, "invoice_number")]
    assert "figure deux fois dans ce fichier : F2025-000103" in report.rejects[0].reason
    with engine.connect() as conn:
        assert conn.execute(text("SELECT total_cents FROM invoice WHERE invoice_number = 'F2025-000103'")
                            ).scalars().all() == [5000]


@postgres_only
def test_on_postgresql_a_key_twice_in_a_load_into_an_empty_table_is_refused_when_the_key_is_added_and_nothing_stays(
        engine):
    keys, indexes = catalog(engine)
    frame = pd.DataFrame({"patient_id": ["P1", "P2", "P1"], "last_name": ["A", "B", "C"], "first_name": ["a", "b", "c"],
                          "address": "", "postal_code": "", "city": "", "coverage": "none"})
    with engine.connect() as conn:
        with pytest.raises(IntegrityError) as refused:
            loads._load_if_all_new(conn, "patient", "patient_id", frame)
        conn.rollback()
    assert database_message(refused.value) == ("la base de données a refusé l'opération : could not create unique "
                                               'index "patient_pkey"')       # the command's one line (status 4)
    assert count(engine, "patient") == 0 and catalog(engine) == (keys, indexes)


@postgres_only
def test_on_postgresql_an_import_killed_while_its_keys_are_set_aside_leaves_them_in_place_and_no_row(
        engine, db_url, settings, tmp_path):
    keys, indexes = catalog(engine)
    loaded = tmp_path / "loaded"
    # The import's process, stopped just after its invoices' COPY (the keys dropped, not yet added), then killed.
    stop = ("import time, pathlib, recouvrement.db.loads as loads\n"
            "real = loads.bulk_insert\n"
            "def stopped(conn, table, frame):\n"
            "    real(conn, table, frame)\n"
            f"    pathlib.Path({str(loaded)!r}).touch()\n"
            "    time.sleep(600)\n"
            "loads.bulk_insert = stopped\n"
            "from recouvrement.cli import main; main()\n")
    config = tmp_path / "recouvrement.toml"
    config.write_text(f'[privacy]\nnir_key_file = "{settings.privacy.nir_key_file}"\n', encoding="utf-8")
    child = subprocess.Popen([sys.executable, "-c", stop, "--db", db_url, "--config", str(config), "import",
                              "invoices", str(invoices_file(tmp_path))], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not loaded.exists():
            assert child.poll() is None and time.monotonic() < deadline, child.stderr.read() if child.stderr else ""
            time.sleep(0.05)
        with engine.connect() as conn:     # the import holds the table alone: its key dropped, in its transaction
            assert "AccessExclusiveLock" in conn.execute(text(
                "SELECT mode FROM pg_locks WHERE relation = 'invoice'::regclass AND granted")).scalars().all()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stderr:
            child.stderr.close()
    with engine.connect() as conn:         # the server sees its client gone and rolls the transaction back
        deadline = time.monotonic() + 60
        while conn.execute(text("SELECT COUNT(*) FROM pg_locks WHERE relation = 'invoice'::regclass")).scalar_one():
            assert time.monotonic() < deadline
            time.sleep(0.05)
            conn.rollback()
    assert catalog(engine) == (keys, indexes)
    assert (count(engine, "invoice"), count(engine, "patient")) == (0, 0)
    assert import_file(engine, invoices_file(tmp_path), settings).imported == len(INVOICES)
    assert catalog(engine) == (keys, indexes)


@postgres_only
def test_on_postgresql_a_key_another_table_s_foreign_key_points_to_is_kept_through_a_first_load(
        engine, settings, tmp_path, monkeypatch):
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE invoice_note (invoice_number varchar REFERENCES invoice (invoice_number))")
    keys, indexes = catalog(engine)
    statements = watched(engine, monkeypatch)
    assert import_file(engine, invoices_file(tmp_path), settings).imported == len(INVOICES)
    assert not [s for s in statements if s.startswith('ALTER TABLE invoice DROP CONSTRAINT "invoice_pkey"')]
    assert first(statements, 'ALTER TABLE patient DROP CONSTRAINT "patient_pkey"') < first(statements, "COPY patient ")
    assert catalog(engine) == (keys, indexes)


@postgres_only
def test_on_postgresql_a_second_import_waits_for_a_first_load_with_its_keys_aside_and_finds_every_row_known(
        engine, settings, tmp_path, monkeypatch):
    keys, indexes = catalog(engine)
    in_load, go_on = threading.Event(), threading.Event()
    real = loads.bulk_insert

    def held(conn, table, frame):                     # the first import's invoices: held after their COPY
        real(conn, table, frame)
        if table == "invoice" and not in_load.is_set():
            in_load.set()
            assert go_on.wait(60)
    monkeypatch.setattr(loads, "bulk_insert", held)
    reports: dict[str, object] = {}
    first_import = threading.Thread(target=lambda: reports.update(
        first=import_file(engine, invoices_file(tmp_path, name="a.csv"), settings)))
    first_import.start()
    assert in_load.wait(60)
    second_import = threading.Thread(target=lambda: reports.update(
        second=import_file(engine, invoices_file(tmp_path, name="b.csv"), settings)))
    second_import.start()
    time.sleep(1)
    assert second_import.is_alive() and "second" not in reports          # waiting for the clinic's writer lock
    go_on.set()
    first_import.join(60)
    second_import.join(60)
    assert (reports["first"].imported, reports["second"].imported,          # type: ignore[attr-defined]
            reports["second"].duplicates) == (len(INVOICES), 0, len(INVOICES))  # type: ignore[attr-defined]
    assert count(engine, "invoice") == len(INVOICES) and catalog(engine) == (keys, indexes)
