"""Rows with only new keys are loaded straight into the tables: same result as staging, indexes intact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import inspect, text

from recouvrement.app.imports import LOADED, import_file
from recouvrement.db.loads import newest_details
from tests.app.world import INVOICES, invoices_file, payments_file

PAYMENTS = ["V1;15/01/2025;amo;CPAM;70,00;;F2025-000101;paid;", "V2;16/01/2025;patient;Lefèvre;10,00;;;paid;"]
MORE_PAYMENTS = ["V3;17/02/2025;amc;MGEN;20,00;;F2025-000101;paid;"]
TABLES = ("SELECT * FROM patient ORDER BY patient_id",                 # (line numbers differ, of course)
          "SELECT invoice_number, compact_number, patient_id, issue_date, due_date, total_cents, amo_cents, "
          "amc_cents, patient_cents, amc_payer, batch_id FROM invoice ORDER BY invoice_number",
          "SELECT payment_id, payment_date, payer_type, amount_cents, invoice_number, status, reconciled "
          "FROM payment ORDER BY payment_id")


def rows(engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_a_first_import_leaves_every_index_of_the_loaded_tables_in_place(engine, settings, tmp_path):
    before = {t: {i["name"] for i in inspect(engine).get_indexes(t)} for t in LOADED}
    import_file(engine, invoices_file(tmp_path), settings)
    import_file(engine, payments_file(tmp_path, PAYMENTS), settings)
    assert {t: {i["name"] for i in inspect(engine).get_indexes(t)} for t in LOADED} == before


def test_a_second_file_growing_the_table_by_half_leaves_every_index_in_place(engine, settings, tmp_path):
    before = {i["name"] for i in inspect(engine).get_indexes("payment")}
    import_file(engine, invoices_file(tmp_path), settings)
    import_file(engine, payments_file(tmp_path, PAYMENTS, name="p1.csv"), settings)
    second = import_file(engine, payments_file(tmp_path, MORE_PAYMENTS, name="p2.csv"), settings)   # 1 row onto 2
    assert second.imported == 1 and {i["name"] for i in inspect(engine).get_indexes("payment")} == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT payment_id FROM payment WHERE invoice_number = 'F2025-000101' "
                                 "ORDER BY payment_id")).scalars().all() == ["V1", "V3"]


def test_on_postgresql_a_file_growing_the_table_by_half_has_its_indexes_built_after_it_a_smaller_one_not(
        engine, settings, tmp_path):
    if engine.dialect.name != "postgresql":
        return
    from sqlalchemy import event
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2].strip().upper()))
    import_file(engine, invoices_file(tmp_path), settings)
    import_file(engine, payments_file(tmp_path, PAYMENTS, name="p1.csv"), settings)     # analysed: 2 rows
    statements.clear()
    assert import_file(engine, payments_file(tmp_path, MORE_PAYMENTS, name="p2.csv"), settings).imported == 1
    plain = {s.replace('"', "").replace("PUBLIC.", "").replace(" USING BTREE", "") for s in statements}
    assert {"DROP INDEX IX_PAYMENT_INVOICE_NUMBER", "CREATE INDEX IX_PAYMENT_INVOICE_NUMBER ON PAYMENT (INVOICE_NUMBER)",
            "DROP INDEX IX_PAYMENT_PAYMENT_DATE"} <= plain
    assert not [s for s in statements if " CONSTRAINT " in s]     # its keys are kept (into an empty table only)
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE payment")            # 3 rows
        conn.commit()
    statements.clear()
    grown = import_file(engine, payments_file(tmp_path, ["V4;18/02/2025;amc;MGEN;1,00;;F2025-000101;paid;"],
                                              name="p3.csv"), settings)                 # 1 row onto 3
    assert grown.imported == 1 and not [s for s in statements if s.startswith(("DROP INDEX", "CREATE INDEX",
                                                                              "ALTER TABLE"))]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT payment_id FROM payment WHERE invoice_number = 'F2025-000101' "
                                 "ORDER BY payment_id")).scalars().all() == ["V1", "V3", "V4"]


@pytest.mark.parametrize("range_check_from", [0, 50_000])   # the range probe first (big files), or keys at once
def test_a_file_whose_ids_lie_around_the_stored_ones_is_told_new_or_known_row_by_row(engine, settings, tmp_path,
                                                                                   monkeypatch, range_check_from):
    monkeypatch.setattr("recouvrement.db.loads.RANGE_CHECK_FROM", range_check_from)
    import_file(engine, invoices_file(tmp_path), settings)
    import_file(engine, payments_file(tmp_path, ["V5;15/01/2025;amo;CPAM;70,00;;F2025-000101;paid;"], name="a.csv"),
                settings)
    around = ["V1;16/01/2025;patient;Lefèvre;10,00;;;paid;", "V9;17/02/2025;amc;MGEN;20,00;;F2025-000101;paid;"]
    assert import_file(engine, payments_file(tmp_path, around, name="b.csv"), settings).imported == 2
    again = import_file(engine, payments_file(tmp_path, around + ["V7;18/02/2025;patient;Lefèvre;1,00;;;paid;"],
                                              name="c.csv"), settings)
    assert (again.imported, again.duplicates, again.rejects) == (1, 2, [])
    assert [r[0] for r in rows(engine, "SELECT payment_id FROM payment ORDER BY id")] == ["V5", "V1", "V9", "V7"]
    refused = import_file(engine, payments_file(tmp_path, ["V8;18/02/2025;patient;Lefèvre;0,00;;;paid;"], name="d.csv"),
                          settings)                        # nothing left to load once its one row is refused
    assert (refused.imported, len(refused.rejects)) == (0, 1)


def test_ids_with_quotes_backslashes_and_any_character_are_found_known_on_a_second_import(engine, settings, tmp_path):
    import_file(engine, invoices_file(tmp_path), settings)
    hostile = ['"Q""1";16/01/2025;patient;Lefèvre;10,00;;;paid;', "É\\2;16/01/2025;patient;Lefèvre;10,00;;;paid;",
               "Ω'3;16/01/2025;patient;Lefèvre;10,00;;;paid;", "\U0001F600 4;16/01/2025;patient;Lefèvre;10,00;;;paid;"]
    first = import_file(engine, payments_file(tmp_path, hostile, name="a.csv"), settings)
    again = import_file(engine, payments_file(tmp_path, hostile, name="b.csv"), settings)
    assert (first.imported, first.rejects, again.imported, again.duplicates) == (4, [], 0, 4)
    assert sorted(r[0] for r in rows(engine, "SELECT payment_id FROM payment")) == sorted(
        ['Q"1', "É\\2", "Ω'3", "\U0001F600 4"])


def test_files_split_in_two_give_the_same_tables_as_one_file(engine, settings, tmp_path):
    import_file(engine, invoices_file(tmp_path, INVOICES[:1], name="a.csv"), settings)   # P1 then known:
    import_file(engine, invoices_file(tmp_path, INVOICES[1:], name="b.csv"), settings)   # staged, not loaded
    import_file(engine, payments_file(tmp_path, PAYMENTS, name="p1.csv"), settings)
    second = import_file(engine, payments_file(tmp_path, MORE_PAYMENTS, name="p2.csv"), settings)
    assert (second.imported, second.duplicates, second.rejects) == (1, 0, [])
    split = [rows(engine, sql) for sql in TABLES]
    with engine.begin() as conn:
        for table in ("payment", "invoice", "patient"):
            conn.execute(text(f"DELETE FROM {table}"))
    import_file(engine, invoices_file(tmp_path), settings)
    import_file(engine, payments_file(tmp_path, PAYMENTS + MORE_PAYMENTS, name="p.csv"), settings)
    assert [rows(engine, sql) for sql in TABLES] == split


def test_an_import_sets_the_sqlite_page_cache_back_afterwards(engine, settings, tmp_path):
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    import_file(engine, invoices_file(tmp_path), settings)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == before


def test_an_import_on_sqlite_leaves_the_automatic_checkpoint_as_it_was_and_its_rows_reach_the_file_behind_it(
        engine, settings, tmp_path):
    if engine.dialect.name != "sqlite":
        return
    import shutil
    import sqlite3

    from recouvrement.db.session import wait_for_checkpoint
    with engine.connect() as conn:
        before = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    import_file(engine, invoices_file(tmp_path), settings)      # a few pages: no automatic checkpoint would copy them
    wait_for_checkpoint(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == before
    shutil.copyfile(engine.url.database, tmp_path / "file-alone.db")      # the database file without its WAL
    with sqlite3.connect(tmp_path / "file-alone.db") as alone:
        assert alone.execute("SELECT COUNT(*) FROM invoice").fetchone() == (len(INVOICES),)


def test_while_the_checkpoint_behind_an_import_is_under_way_readers_and_a_copy_of_the_files_see_the_rows(
        engine, settings, tmp_path, monkeypatch):
    """A killed process leaves the database file and its WAL as they are: what was committed is in them."""
    if engine.dialect.name != "sqlite":
        return
    import shutil
    import sqlite3
    import threading

    from recouvrement.db import session
    go, started = threading.Event(), threading.Event()
    checkpoint = session._checkpoint

    def held(engine):
        started.set()
        go.wait(30)
        checkpoint(engine)
    monkeypatch.setattr(session, "_checkpoint", held)
    try:
        import_file(engine, invoices_file(tmp_path), settings)
        assert started.wait(30)
        with sqlite3.connect(engine.url.database) as reader:
            assert reader.execute("SELECT COUNT(*) FROM invoice").fetchone() == (len(INVOICES),)
        for suffix in ("", "-wal"):            # as a process killed now leaves them
            shutil.copyfile(engine.url.database + suffix, tmp_path / f"killed.db{suffix}")
    finally:
        go.set()
    with sqlite3.connect(tmp_path / "killed.db") as reopened:
        assert reopened.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert reopened.execute("SELECT COUNT(*) FROM invoice").fetchone() == (len(INVOICES),)


def test_disposing_of_the_engine_waits_for_the_checkpoint_behind_the_last_import(engine, settings, tmp_path,
                                                                                 monkeypatch):
    if engine.dialect.name != "sqlite":
        return
    import threading
    import time

    from recouvrement.db import session
    checkpoint, done = session._checkpoint, []

    def slow(engine):
        time.sleep(0.5)
        checkpoint(engine)
        done.append(True)
    monkeypatch.setattr(session, "_checkpoint", slow)
    import_file(engine, invoices_file(tmp_path), settings)
    engine.dispose()
    assert done == [True]
    assert not [t for t in threading.enumerate() if t.name == "recouvrement-sqlite-checkpoint"]


def test_on_postgresql_an_import_and_a_reconcile_load_every_big_table_through_copy(engine, settings, tmp_path,
                                                                                 monkeypatch):
    if engine.dialect.name != "postgresql":
        return
    import psycopg
    from sqlalchemy import event

    from recouvrement.app.reconcile import run_reconcile
    copied, inserted = [], []
    real_copy = psycopg.Cursor.copy
    monkeypatch.setattr(psycopg.Cursor, "copy", lambda self, statement, *a, **k: (
        copied.append(statement.split()[1]), real_copy(self, statement, *a, **k))[1])
    event.listen(engine, "before_cursor_execute", lambda *args: inserted.append(args[2]))
    import_file(engine, invoices_file(tmp_path), settings)
    import_file(engine, payments_file(tmp_path, PAYMENTS + ["V9;20/01/2025;patient;Inconnu;5,00;;;paid;"]), settings)
    run_reconcile(engine, set_based=False)
    assert {"patient", "patient_name_key", "invoice", "payment", "allocation", "payment_exception"} <= set(copied)
    big = ("patient ", "patient_name_key ", "invoice ", "payment ", "allocation ", "payment_exception ")
    assert not [s for s in inserted if s.lstrip().upper().startswith("INSERT INTO") and " VALUES" in s.upper()
                and s.split()[2] + " " in big]


def test_text_with_quotes_separators_newlines_and_backslashes_is_stored_as_given_and_empty_apart_from_missing(
        engine):
    import pandas as pd

    from recouvrement.db.bulk import bulk_insert
    names = ['N"Diaye; Maëlle', "Ligne\nsuivante", "\\.", "\\N", "", None]
    frame = pd.DataFrame({"payment_id": [f"V{i}" for i in range(len(names))], "kind": "credit",
                          "remaining_cents": 1, "reason": "r", "patient_id": names})
    with engine.begin() as conn:
        bulk_insert(conn, "payment_exception", frame)
    assert rows(engine, "SELECT patient_id FROM payment_exception ORDER BY payment_id") == [(n,) for n in names]


def test_a_frame_glued_from_an_empty_part_and_a_filled_one_is_stored_as_given(engine):
    import pandas as pd

    from recouvrement.db.bulk import bulk_insert
    part = pd.DataFrame({"payment_id": ["V1", "V2"], "kind": pd.array(["credit", "held"], dtype="str"),
                         "remaining_cents": [1, 2], "reason": "r"})
    with engine.begin() as conn:           # Arrow writes such a text column wrong unless its chunks are joined
        bulk_insert(conn, "payment_exception", pd.concat([part.iloc[:0], part.iloc[1:]]))
    assert rows(engine, "SELECT payment_id, kind FROM payment_exception") == [("V2", "held")]


def test_a_bulk_transaction_on_postgresql_runs_without_jit_compilation_and_leaves_the_setting_after_it(engine):
    # and with work_mem raised to 256 MB, never lowered, and no parallel query plans
    if engine.dialect.name != "postgresql":
        return
    from recouvrement.db.session import BULK_WORK_MEM, bulk_transaction
    with engine.connect() as conn:
        before = conn.exec_driver_sql("SHOW jit").scalar_one()
        memory = conn.exec_driver_sql("SHOW work_mem").scalar_one()
        gather = conn.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar_one()
    with bulk_transaction(engine) as conn:
        assert conn.exec_driver_sql("SHOW jit").scalar_one() == "off"
        assert conn.exec_driver_sql("SHOW work_mem").scalar_one() == "256MB"
        assert conn.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar_one() == "0"
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW jit").scalar_one() == before
        assert conn.exec_driver_sql("SHOW work_mem").scalar_one() == memory
        assert conn.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar_one() == gather
        conn.exec_driver_sql("SET work_mem = '1GB'")            # a server's larger setting is kept
        conn.commit()
        with conn.begin():
            conn.exec_driver_sql(BULK_WORK_MEM)
            assert conn.exec_driver_sql("SHOW work_mem").scalar_one() == "1GB"
        conn.exec_driver_sql("RESET work_mem")
        conn.commit()


def test_a_load_in_statements_of_several_rows_stores_each_cell_as_given_missing_apart_from_empty(engine, monkeypatch):
    import pandas as pd

    from recouvrement.db import bulk
    monkeypatch.setattr(bulk, "ROWS_AT_ONCE", 7)          # 23 rows: chunks of 7, statements of 3 rows and the rest
    monkeypatch.setattr(bulk, "ROWS_A_STATEMENT", 3)
    monkeypatch.setattr(bulk, "SAMPLE", 4)                 # a few distinct values: made once each
    n = 23
    patients = pd.array([None if i % 4 == 0 else ("Lefèvre" if i % 2 else "N'Diaye") for i in range(n)], dtype="str")
    reasons = [["r", "", "ß\u00a0;\"x\"", "Ligne\nsuivante"][i % 4] for i in range(n)]
    frame = pd.DataFrame({"payment_id": pd.array([f"V{i:02d}" for i in range(n)], dtype="str"),
                          "kind": pd.array(["credit"] * n, dtype="str"), "remaining_cents": range(-11, n - 11),
                          "reason": reasons, "patient_id": patients})
    with engine.begin() as conn:
        bulk.bulk_insert(conn, "payment_exception", frame)
    assert rows(engine, "SELECT payment_id, kind, remaining_cents, reason, patient_id FROM payment_exception "
                        "ORDER BY payment_id") == [
        (f"V{i:02d}", "credit", i - 11, reasons[i], None if i % 4 == 0 else patients[i]) for i in range(n)]


NAME_KEYS = "SELECT last_key, first_key, patient_id FROM patient_name_key WHERE patient_id <> 'Z9' ORDER BY 1, 2, 3"
PATIENTS = "SELECT * FROM patient WHERE patient_id <> 'Z9' ORDER BY patient_id"


def test_a_first_load_works_out_its_patients_while_the_invoice_indexes_build_and_stores_the_same_rows(
        engine, settings, tmp_path):
    """Into empty tables the patients and their name keys are prepared in a second thread, beside the invoices'
    load (db.loads._patients_beside); into tables holding another patient only their details are (the keys are
    worked out after, by name_index.refresh_staged)."""
    import_file(engine, invoices_file(tmp_path), settings)
    first = [rows(engine, PATIENTS), rows(engine, NAME_KEYS), rows(engine, TABLES[1])]
    with engine.begin() as conn:
        for table in ("invoice", "patient_name_key", "patient"):
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("INSERT INTO patient (patient_id, last_name, first_name, address, postal_code, city, "
                          "coverage) VALUES ('Z9', 'Zed', 'Zoé', '1 rue', '75001', 'Paris', 'none')"))
    import_file(engine, invoices_file(tmp_path, name="again.csv"), settings)
    assert [rows(engine, PATIENTS), rows(engine, NAME_KEYS), rows(engine, TABLES[1])] == first
    assert first[0] and first[1]


def test_a_file_s_patients_are_worked_out_while_its_invoices_are_inserted(engine, settings, tmp_path, monkeypatch):
    """db.loads: the patients' newest details are made in a second thread while the invoice rows are inserted,
    not after them; the rows stored are the same (the test above)."""
    import threading

    from recouvrement.db import loads
    detailed = threading.Event()
    newest_details, bulk_insert = loads.newest_details, loads.bulk_insert

    def details(*args, **kwargs):
        detailed.set()
        return newest_details(*args, **kwargs)

    def insert(conn, table, frame):
        if table == "invoice":       # the patients' work, started beside, gets under way meanwhile
            assert detailed.wait(timeout=10), "the patients were not worked out while the invoices were inserted"
        bulk_insert(conn, table, frame)

    monkeypatch.setattr(loads, "newest_details", details)
    monkeypatch.setattr(loads, "bulk_insert", insert)
    import_file(engine, invoices_file(tmp_path), settings)
    assert rows(engine, "SELECT COUNT(*) FROM invoice") == [(len(INVOICES),)]


def test_the_patients_newest_details_are_those_of_a_sort_by_date_and_patient_then_the_last_non_empty_of_each():
    """newest_details orders the rows by the rank of their date (an integer), not by the text: the same rows as the
    stable sort on (date, patient) it replaced, on dates and details drawn at random (ties, empty cells)."""
    rng = np.random.default_rng(16)
    rows = 5_000
    patients = pd.DataFrame({
        "patient_id": pd.Series(rng.choice([f"P{i:03d}" for i in range(700)], rows), dtype="string[pyarrow]"),
        "last_name": pd.Series(rng.choice(["Martin", "Durand", None], rows), dtype="string[pyarrow]"),
        "phone": pd.Series(rng.choice(["+33612345678", "+33698765432", None], rows), dtype=object),
        "sms_consent": pd.Series(rng.choice([True, False, None], rows), dtype=object)})
    dates = pd.Series(rng.choice([f"20{y:02d}-{m:02d}-01" for y in (9, 19, 25) for m in (1, 10, 12)], rows),
                      dtype="string[pyarrow]")
    by_text = patients.assign(identity_date=dates.to_numpy()).sort_values(["identity_date", "patient_id"], kind="stable")
    expected = by_text.groupby("patient_id", sort=True, as_index=False).last()
    pd.testing.assert_frame_equal(newest_details(patients, dates), expected)


def test_a_patient_whose_cells_are_all_empty_keeps_them_missing_in_each_kind_of_column():
    """newest_details' last non-missing value of each column, on integer positions, is groupby's own last: a
    column missing on every row of a patient stays missing there (None in an object column), whatever its type."""
    patients = pd.DataFrame({
        "patient_id": pd.Series(["P2", "P1", "P2", "P1", "P3"], dtype="string[pyarrow]"),
        "last_name": pd.Series(["Martin", None, "Durand", None, "Petit"], dtype="string[pyarrow]"),
        "birth_date": pd.Series(["1950-01-01", None, None, None, "1960-02-02"], dtype="str"),
        "phone": pd.Series([None, None, "+33612345678", None, None], dtype=object),
        "sms_consent": pd.Series([True, None, None, None, False], dtype=object)})
    dates = pd.Series(["2026-01-02", "2026-01-01", "2026-01-01", "2026-01-03", "2026-01-01"], dtype="str")
    by_date = patients.assign(identity_date=dates.to_numpy()).sort_values(["identity_date", "patient_id"], kind="stable")
    expected = by_date.groupby("patient_id", sort=True, as_index=False).last()
    newest = newest_details(patients, dates)
    pd.testing.assert_frame_equal(newest, expected)
    assert newest.loc[0, "phone"] is None and newest.loc[0, "sms_consent"] is None
    assert newest["last_name"].isna().tolist() == [True, False, False]


def test_a_file_whose_every_line_was_refused_has_no_patients_to_detail():
    """No rows (every line of the file refused): an empty frame with the columns of groupby's, not an error — d019d48's
    integer positions took the last row of a group that did not exist (the CI run of session 10's stop: 7 tests)."""
    patients = pd.DataFrame({"patient_id": pd.Series([], dtype="string[pyarrow]"),
                             "last_name": pd.Series([], dtype="string[pyarrow]"),
                             "sms_consent": pd.Series([], dtype=object)})
    dates = pd.Series([], dtype="string[pyarrow]")
    newest = newest_details(patients, dates)
    assert newest.empty
    assert list(newest.columns) == ["patient_id", "last_name", "sms_consent", "identity_date"]


def test_an_import_committed_while_the_checkpoint_behind_the_one_before_is_under_way_does_not_wait_for_it(
        engine, settings, tmp_path, monkeypatch):
    """Its frames are copied by the same thread's next pass: the database file alone holds both files' rows."""
    if engine.dialect.name != "sqlite":
        return
    import shutil
    import sqlite3
    import threading
    import time

    from recouvrement.db import session
    go, started, passes = threading.Event(), threading.Event(), []
    checkpoint = session._checkpoint

    def held(engine):
        started.set()
        go.wait(20)
        checkpoint(engine)
        passes.append(True)
    monkeypatch.setattr(session, "_checkpoint", held)
    try:
        import_file(engine, invoices_file(tmp_path), settings)
        assert started.wait(20)
        begun = time.monotonic()
        import_file(engine, payments_file(tmp_path, ["PAY-1;15/01/2025;patient;Lefèvre;10,00;;F2025-000102;;"]),
                    settings)
        assert time.monotonic() - begun < 10          # it did not wait the 20 s the first pass is held
    finally:
        go.set()
    session.wait_for_checkpoint(engine)
    assert passes == [True, True]
    assert not [t for t in threading.enumerate() if t.name == "recouvrement-sqlite-checkpoint"]
    shutil.copyfile(engine.url.database, tmp_path / "file-alone.db")      # the database file without its WAL
    with sqlite3.connect(tmp_path / "file-alone.db") as alone:
        assert alone.execute("SELECT COUNT(*) FROM invoice").fetchone() == (len(INVOICES),)
        assert alone.execute("SELECT COUNT(*) FROM payment").fetchone() == (1,)
