"""Rows with only new keys are loaded straight into the tables: same result as staging, indexes intact."""

from __future__ import annotations

from sqlalchemy import inspect, text

from recouvrement.app.imports import LOADED, import_file
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
