"""Loading parsed files into the store, set-based: straight bulk loads into empty or unknown keys, else staged
rows compared with the stored ones (duplicates change nothing, conflicts are reported), in the caller's
transaction. Conflicts come back as (key, source line) pairs; the caller words them."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from recouvrement.db.bulk import build_indexes, bulk_insert, set_aside_indexes, stage
from recouvrement.db import changes, name_index
from recouvrement.db.models import Invoice, Patient, Payment

# Tables a file may be loaded straight into; their indexes are rebuilt after a load into an empty one.
LOADED = {model.__tablename__: model.__table__  # type: ignore[union-attr]  # SQLModel sets it, its stubs do not say
          for model in (Invoice, Patient, Payment)}


def record_import_batch(conn: Connection, *, kind: str, format_name: str, source_file: str, sha256: str,
                        imported_at: datetime, rows_read: int, imported: int, duplicates: int, rejected: int) -> None:
    conn.execute(text("INSERT INTO import_batch (kind, format, source_file, sha256, imported_at, rows_read, "
                      "rows_imported, rows_duplicate, rows_rejected) VALUES (:k, :f, :s, :h, :t, :r, :i, :d, :x)"),
                 {"k": kind, "f": format_name, "s": source_file, "h": sha256, "t": imported_at, "r": rows_read,
                  "i": imported, "d": duplicates, "x": rejected})


INVOICE_TYPES = {"issue_date": "date", "due_date": "date", "total_cents": "int", "amo_cents": "int",
                 "amc_cents": "int", "patient_cents": "int", "source_line": "int"}
INVOICE_SAME = ("i.patient_id = s.patient_id AND i.issue_date = s.issue_date AND i.due_date = s.due_date "
                "AND i.total_cents = s.total_cents AND i.amo_cents = s.amo_cents AND i.amc_cents = s.amc_cents "
                "AND i.patient_cents = s.patient_cents AND COALESCE(i.amc_payer, '') = COALESCE(s.amc_payer, '')")
PATIENT_DETAILS = ("last_name", "first_name", "birth_date", "address", "postal_code", "city", "email", "phone",
                   "sms_consent", "email_consent",
                   "coverage", "nir_hash", "guarantor_last_name", "guarantor_first_name", "guarantor_address",
                   "guarantor_postal_code", "guarantor_city", "guarantor_email")


def _conflicts(conn: Connection, sql: str) -> list[tuple[str, int]]:
    return [(key, int(line)) for key, line in conn.execute(text(sql))]


def store_invoices(conn: Connection, invoices: pd.DataFrame, patients: pd.DataFrame,
                   care: pd.DataFrame) -> tuple[int, int, list[tuple[str, int]]]:
    """Invoices (with their patients, and their care details when kept): (imported, duplicates, conflicts as
    (invoice_number, source_line): known numbers with a different patient, date or amounts)."""
    # The patients' rows are worked out in a second thread while the invoices are stored (see _patients_beside).
    first_patients = conn.execute(text("SELECT 1 FROM patient LIMIT 1")).first() is None
    with ThreadPoolExecutor(max_workers=1) as beside:
        prepared = beside.submit(_patients_beside, patients, invoices["issue_date"], first_patients)
        changes.note_invoices(conn, invoices)
        if _load_if_all_new(conn, "invoice", "invoice_number", invoices):
            imported, duplicates, conflicts = len(invoices), 0, list[tuple[str, int]]()
        else:
            imported, duplicates, conflicts = _store_invoices_staged(conn, invoices)
        _store_patients(conn, *prepared.result())
    if len(care):
        stage(conn, "stage_care", care, {"care_description": "text"})
        conn.execute(text("INSERT INTO invoice_care (invoice_number, care_description, act_codes) "
                          "SELECT invoice_number, care_description, act_codes FROM stage_care s WHERE NOT EXISTS "
                          "(SELECT 1 FROM invoice_care c WHERE c.invoice_number = s.invoice_number)"))
    return imported, duplicates, conflicts


def _patients_beside(patients: pd.DataFrame, issue_dates: pd.Series,
                     first_patients: bool) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """What _store_patients is given: the patients' newest details and, into an empty patient table, their name keys.
    Worked out from the parsed frames alone (no database), in a second thread while the invoices are stored: most of
    it is Arrow's takes and numpy's sorts, which hold no GIL, beside the insert's binding of cells, which does, and
    SQLite's own work on the invoices (their rows, their indexes' builds), which does not."""
    newest = newest_details(patients, issue_dates)
    return newest, name_index.key_rows(newest) if first_patients else None


def _store_invoices_staged(conn: Connection, invoices: pd.DataFrame) -> tuple[int, int, list[tuple[str, int]]]:
    """Some invoice numbers are known: each row is compared with the stored one (duplicate or conflict)."""
    stage(conn, "stage_invoice", invoices, INVOICE_TYPES, index="invoice_number")
    conflicts = _conflicts(conn, "SELECT s.invoice_number, s.source_line FROM stage_invoice s JOIN invoice i "
                           f"ON i.invoice_number = s.invoice_number WHERE NOT ({INVOICE_SAME})")
    duplicates = conn.execute(text("SELECT COUNT(*) FROM stage_invoice s JOIN invoice i "
                                   f"ON i.invoice_number = s.invoice_number WHERE {INVOICE_SAME}")).scalar_one()
    columns = ", ".join(c for c in invoices.columns)
    imported = conn.execute(text(
        f"INSERT INTO invoice ({columns}, batch_id) SELECT {columns}, NULL FROM stage_invoice s "
        "WHERE NOT EXISTS (SELECT 1 FROM invoice i WHERE i.invoice_number = s.invoice_number)")).rowcount
    return imported, duplicates, conflicts


def _load_if_all_new(conn: Connection, table: str, key: str, frame: pd.DataFrame) -> bool:
    """Loads `frame` straight into `table` when no stored row holds one of its keys (then there is nothing
    to compare, and staging + comparing would cost several times the load) and says whether it did.

    Into an empty table the secondary indexes are built once after the load, sorted, rather than updated
    row by row (a million invoices: 40 % less time), and on PostgreSQL the keys too (primary and unique, through
    set_aside_indexes; SQLite's rowid tables keep theirs) and the table is analysed: the reconcile that follows
    plans on its statistics (autovacuum would analyse it later, maybe after the reconcile). On PostgreSQL the
    secondary indexes are built after a load that grows the table by half or more too (_grows_by_half), not the
    keys: the AMC file's 741,417 payments onto 958,537 took 0.5 s more of the server's CPU with them set aside.

    PostgreSQL runs the drops and the builds in the import's transaction (its DDL is transactional): a failure or
    a killed process rolls them back with the rows, and the keys are back before the commit, so another import
    of the clinic (waiting for its writer lock) finds every row known. A key twice in `frame` (the importers
    refuse a repeated key's second line first) is refused as its key is added again: nothing stored."""
    empty = conn.execute(text(f"SELECT 1 FROM {table} LIMIT 1")).first() is None
    if not empty and _any_known(conn, table, key, frame[key]):
        return False
    aside = empty or _grows_by_half(conn, table, len(frame))
    statements = set_aside_indexes(conn, table, keys=empty) if aside else []   # (SQLite: never its keys)
    bulk_insert(conn, table, frame)
    build_indexes(conn, statements)
    if empty and conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ANALYZE {table}")   # the planner's statistics said empty: the next reads plan on them
    return True


def _grows_by_half(conn: Connection, table: str, rows: int) -> bool:
    """PostgreSQL: `rows` are at least half the rows the table holds (its planner's estimate, which the ANALYZE
    after a first load set): their secondary indexes are then cheaper built again after the load than updated
    row by row. The AMC remittance at 1M, 741,417 rows onto the AMO's 958,537 (indexes on the invoice number and
    the payment date; the keys stay): 6.5-7.4 s of the server's CPU kept, 4.7-4.8 s set aside with the builds; the
    patients' 496,172 onto 1.7M would be even (the builds sort every row), hence the half. Readers of the table
    wait for the import's commit, as after a first load. SQLite: not measured, kept as it was (False)."""
    if conn.dialect.name != "postgresql":
        return False
    # The estimate scaled to the table's pages now, as the planner does: a load since the last ANALYZE counts.
    stored = conn.exec_driver_sql(
        "SELECT CASE WHEN relpages > 0 THEN reltuples / relpages * (pg_relation_size(oid) / "
        f"current_setting('block_size')::int) ELSE reltuples END FROM pg_class WHERE oid = '{table}'::regclass").scalar()
    return stored is not None and 0 < stored <= 2 * rows         # never analysed: -1


RANGE_CHECK_FROM = 50_000     # keys: below, PostgreSQL looks each up by its index rather than scan for a range


def _any_known(conn: Connection, table: str, key: str, keys: pd.Series) -> bool:
    if keys.empty:
        return False
    # PostgreSQL's range check scans the table (see _any_between): worth it for a big file only; a night's few
    # thousand keys are looked up one by one through the key's index at once.
    big = conn.dialect.name != "postgresql" or len(keys) > RANGE_CHECK_FROM
    if big and not _any_between(conn, table, key, keys.min(), keys.max()):
        return False
    values = keys.tolist()
    if conn.dialect.name == "postgresql":   # the keys as one JSON text: psycopg adapts a list's items one by one
        found = conn.execute(text(f"SELECT 1 FROM {table} WHERE {key} = ANY(ARRAY(SELECT json_array_elements_text("
                                  "CAST(:keys AS json)))) LIMIT 1"), {"keys": json.dumps(values)})
    else:                                  # one parameter for any number of keys (SQLite's JSON1, built in)
        found = conn.execute(text(f"SELECT 1 FROM {table} WHERE {key} IN (SELECT value FROM json_each(:keys)) "
                                  "LIMIT 1"), {"keys": json.dumps(values)})
    return found.first() is not None


def _any_between(conn: Connection, table: str, key: str, low: str, high: str) -> bool:
    """Some stored key lies between the file's lowest and highest (SQLite compares text by its bytes, as min and
    max do by code points: the same order). One probe of the key's index; mostly none does (another payer's ids,
    a later month's numbers), and then there is no need to look each of a million keys up. PostgreSQL compares
    in its "C" collation (by bytes: the same order again) rather than the database's, which its index follows:
    a scan of the table, comparing bytes (958,537 stored payments: 0.05-0.1 s), where sending the AMC file's
    741,417 keys for `= ANY` took 1.0-1.3 s of the server's CPU and the client's making of the list."""
    compared = f'{key} COLLATE "C"' if conn.dialect.name == "postgresql" else key
    return conn.execute(text(f"SELECT 1 FROM {table} WHERE {compared} BETWEEN :low AND :high LIMIT 1"),
                        {"low": low, "high": high}).first() is not None


def newest_details(patients: pd.DataFrame, issue_dates: pd.Series) -> pd.DataFrame:
    """One row per patient (by patient_id), with identity_date: the details of their most recent invoice (by issue
    date), the newest non-empty value of each (an export that leaves a cell empty erases nothing)."""
    # Each patient's rows by date, then in the file's order (what a stable sort on (date, patient) gives them): the
    # few thousand distinct dates ranked once and the rows ordered by (patient, date rank, file order), integers
    # (1M rows: 0.36 s of text sorting -> 0.1 s).
    codes, dates = pd.factorize(issue_dates)
    if (codes < 0).any() or not len(codes):   # a missing date (never from the importer): the text sort places it;
        # no rows at all (every line of the file refused): groupby's empty frame, with its columns
        by_date = patients.assign(identity_date=issue_dates.to_numpy()).sort_values(["identity_date", "patient_id"],
                                                                                    kind="stable")
        return by_date.groupby("patient_id", sort=True, as_index=False).last()
    rank = np.empty(len(dates), dtype=np.int64)
    rank[np.argsort(np.asarray(dates, dtype=object), kind="stable")] = np.arange(len(dates))
    ids, known = pd.factorize(patients["patient_id"], sort=True)
    order = np.lexsort((rank[codes], ids))
    grouped = ids[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    newest = _last_of_each(patients.drop(columns="patient_id"), order, starts)
    newest.insert(0, "patient_id", pd.Series(known, dtype=patients["patient_id"].dtype))
    newest["identity_date"] = np.asarray(dates, dtype=object)[codes[order[np.r_[starts[1:], len(order)] - 1]]]
    return newest


def _last_of_each(columns: pd.DataFrame, order: np.ndarray, starts: np.ndarray) -> pd.DataFrame:
    """What groupby(…).last() gives for the rows taken in `order`, grouped (each group's first place in `order`:
    `starts`): each column's last non-missing value of each group, found on integer positions. groupby's own last
    factorized each of the twenty text columns again (1M rows: 2.6 s of the store, the longest part of what runs
    beside the invoice indexes' build, against 1.3 s)."""
    ends = np.r_[starts[1:], len(order)] - 1
    positions = np.arange(len(order))
    found = {}
    for name in columns.columns:
        column = columns[name]
        present = column.notna().to_numpy()[order]
        if present.all():
            found[name] = _taken(column, order[ends])
            continue
        last = np.maximum.reduceat(np.where(present, positions, -1), starts)
        found[name] = _taken(column, np.where(last >= 0, order[last], -1))
    return pd.DataFrame(found)


def _taken(column: pd.Series, rows: np.ndarray) -> pd.Series:
    """column's values at the positions `rows` (-1: missing, None in an object column as groupby gives it)."""
    if column.dtype == object:
        values = column.to_numpy()[rows]
        values[rows < 0] = None
        return pd.Series(values, dtype=object)
    return pd.Series(column.array.take(rows, allow_fill=True), dtype=column.dtype)


def _store_patients(conn: Connection, patients: pd.DataFrame, name_keys: pd.DataFrame | None = None) -> None:
    """New patients are added; known ones take the details of their most recent invoice (`patients` as
    newest_details gives them), so the result does not depend on the order in which files are imported.
    `name_keys`: the new patients' name keys, when already worked out (name_index.key_rows)."""
    if _load_if_all_new(conn, "patient", "patient_id", patients):
        name_index.add_new(conn, patients, name_keys)
        return
    stage(conn, "stage_patient", patients, {"birth_date": "date", "identity_date": "date", "sms_consent": "bool",
                                            "email_consent": "bool"}, index="patient_id")
    columns = ", ".join(patients.columns)
    # Known patients first, so that the rows inserted just after are not written twice. The newer
    # invoice's details win; an older file still fills what the newer left empty.
    newer = "s.identity_date >= patient.identity_date"
    written = {c: f"CASE WHEN {newer} THEN COALESCE(s.{c}, patient.{c}) ELSE COALESCE(patient.{c}, s.{c}) END"
               for c in PATIENT_DETAILS}
    renamed = name_index.renamed_by(conn, "stage_patient", written)
    assignments = [f"{c} = {value}" for c, value in written.items()]
    assignments.append(f"identity_date = CASE WHEN {newer} THEN s.identity_date ELSE patient.identity_date END")
    conn.execute(text(f"UPDATE patient SET {', '.join(assignments)} FROM stage_patient s "
                      "WHERE patient.patient_id = s.patient_id"))
    conn.execute(text(f"INSERT INTO patient ({columns}) SELECT {columns} FROM stage_patient s WHERE NOT EXISTS "
                      "(SELECT 1 FROM patient p WHERE p.patient_id = s.patient_id)"))
    name_index.refresh_staged(conn, renamed)


PAYMENT_TYPES = {"payment_date": "date", "amount_cents": "int", "source_line": "int", "reference": "text"}
PAYMENT_SAME = ("p.payment_date = s.payment_date AND p.payer_type = s.payer_type AND p.amount_cents = s.amount_cents "
                "AND p.status = s.status AND COALESCE(p.invoice_number, '') = COALESCE(s.invoice_number, '')")


def store_payments(conn: Connection, payments: pd.DataFrame, file: str) -> tuple[int, int, list[tuple[str, int]]]:
    """Payments read from `file`: (imported, duplicates, conflicts as (payment_id, source_line): known ids with a
    different date, payer, amount or status)."""
    frame = payments.copy()
    frame["source_file"] = file
    if _load_if_all_new(conn, "payment", "payment_id", frame.assign(reconciled=False)):
        return len(frame), 0, []
    stage(conn, "stage_payment", frame, PAYMENT_TYPES, index="payment_id")
    conflicts = _conflicts(conn, "SELECT s.payment_id, s.source_line FROM stage_payment s JOIN payment p "
                           f"ON p.payment_id = s.payment_id WHERE NOT ({PAYMENT_SAME})")
    duplicates = conn.execute(text("SELECT COUNT(*) FROM stage_payment s JOIN payment p "
                                   f"ON p.payment_id = s.payment_id WHERE {PAYMENT_SAME}")).scalar_one()
    columns = ", ".join(frame.columns)
    imported = conn.execute(text(
        f"INSERT INTO payment ({columns}, reconciled) SELECT {columns}, FALSE FROM stage_payment s "
        "WHERE NOT EXISTS (SELECT 1 FROM payment p WHERE p.payment_id = s.payment_id)")).rowcount
    return imported, duplicates, conflicts
