"""The reconciliation's reads and writes (issue #12: the store owns the SQL), moved verbatim from
`app/reconcile.py`. Each takes the `Connection` of the use case's transaction (`writing` or
`bulk_transaction`); none opens its own."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Integer, text

from recouvrement.db import open_items
from recouvrement.db.bulk import read_columns, stage
from recouvrement.db.changes import changed_since_last_run

RETRIED = ("unmatched", "ambiguous")      # queue entries a later run tries again (new invoices may fit)


@lru_cache(maxsize=1)
def _whole_numbers() -> frozenset[str]:
    """The payment table's columns of whole numbers (read_columns reads the others as text). Read from db.models
    when first needed, not at import: the models bring SQLModel and its tables (0.3 s), which the commands that
    only read (remind, balance) never use."""
    from recouvrement.db.models import Payment
    return frozenset(c.name for c in Payment.__table__.c  # type: ignore[attr-defined]  # SQLModel sets it
                     if isinstance(c.type, Integer))


# -- the run's watermark -------------------------------------------------------------------------

def counts(conn: Connection) -> tuple[int, int]:
    """(invoices, payments) rows: the run's watermark."""
    invoices = conn.execute(text("SELECT COUNT(*) FROM invoice")).scalar_one()
    payments = conn.execute(text("SELECT COUNT(*) FROM payment")).scalar_one()
    return invoices, payments


def anything_new(conn: Connection) -> bool:
    """A payment not reconciled yet, or a change a waiting entry may depend on (db.changes): one row each, by
    primary keys (the payments' range above the mark), whatever the size of the tables."""
    return (conn.execute(text(f"SELECT 1 FROM payment WHERE {unreconciled(conn)} LIMIT 1")).first() is not None
            or changed_since_last_run(conn))


def invoices_about(conn: Connection) -> int:
    """About how many invoices are stored, without counting them: SQLite's last rowid (invoices are never
    deleted), PostgreSQL's statistics (counted when it has none yet)."""
    if conn.dialect.name == "sqlite":
        return conn.execute(text("SELECT COALESCE(MAX(rowid), 0) FROM invoice")).scalar_one()
    estimate = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = 'invoice'::regclass")).scalar_one()
    if estimate is None or estimate <= 0:        # never analysed (-1), or analysed empty
        return conn.execute(text("SELECT COUNT(*) FROM invoice")).scalar_one()
    return int(estimate)


def meta(conn: Connection, key: str) -> str | None:
    return conn.execute(text("SELECT value FROM meta WHERE key = :k"), {"k": key}).scalar_one_or_none()


def set_meta(conn: Connection, key: str, value: str) -> None:
    conn.execute(text("DELETE FROM meta WHERE key = :k"), {"k": key})
    conn.execute(text("INSERT INTO meta (key, value) VALUES (:k, :v)"), {"k": key, "v": value})


def last_payment_row(conn: Connection) -> int:
    return conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM payment")).scalar_one()


# A payment is reconciled when a run has processed it: every payment up to the row id this key holds (each run
# processes all the payments stored before it: the writer lock keeps imports out meanwhile and row ids grow with
# the commits, payments are never deleted), or one its row says is (`payment.reconciled`: matched or unmatched
# by hand, an agency's payment stored reconciled). A run moves the key rather than rewriting each row it
# processed (2.2 million rows on a first run at 1M invoices: 3.1 s on SQLite; every index of the table on
# PostgreSQL); so `payment.reconciled` alone no longer says it: ask `unreconciled`.
RECONCILED_THROUGH = "payments_reconciled_through"


def reconciled_through(conn: Connection) -> int:
    """Every payment up to this row id is reconciled (0: none by a run yet)."""
    value = meta(conn, RECONCILED_THROUGH)
    return int(value) if value is not None else 0


def unreconciled(conn: Connection, table: str | None = None) -> str:
    """SQL saying the payment (of table alias `table`) is not reconciled yet: above the runs' mark and not
    marked on its row. Read by the primary key's range (id > mark): no index on the flag (migration 0018)."""
    prefix = f"{table}." if table else ""
    flag = "0" if conn.dialect.name == "sqlite" else "FALSE"
    return f"{prefix}reconciled = {flag} AND {prefix}id > {reconciled_through(conn)}"


def pending_payments(conn: Connection, last_id: int, columns: Sequence[str],
                     retried: Sequence[str] | None = None, settled: bool = False) -> pd.DataFrame:
    """New payments (up to row `last_id`) and the queue entries to try again (`retried`; None: every entry of the
    kinds RETRIED): the payment table's `columns` (the importers' PAYMENT_COLUMNS), dates as the driver returns
    them. `settled`: the new payments the explicit pass settled (plain_explicit, db.explicit) left out."""
    pending = unreconciled(conn, "p")
    settled_out = " AND p.id NOT IN (SELECT id FROM plain_explicit)" if settled else ""
    new = "SELECT " + ", ".join(columns) + f" FROM payment p WHERE {pending} AND p.id <= :last{settled_out}"
    ints = [c for c in columns if c in _whole_numbers()]
    if retried is None:
        return read_columns(conn, f"{new} OR p.payment_id IN (SELECT payment_id FROM payment_exception WHERE kind "
                            f"IN {RETRIED})", {"last": last_id}, ints)
    stage(conn, "retried_payment", pd.DataFrame({"value": pd.Series(list(retried), dtype=object)}), {}, index="value")
    return read_columns(conn, f"{new} UNION ALL SELECT " + ", ".join(f"p.{c}" for c in columns) + " FROM "
                        f"retried_payment r CROSS JOIN payment p WHERE p.payment_id = r.value AND NOT ({pending} AND "
                        "p.id <= :last)", {"last": last_id}, ints)


# -- the run's writes ----------------------------------------------------------------------------

def waiting_count(conn: Connection) -> int:
    """How many queue entries a later run may try again (kinds RETRIED)."""
    return conn.execute(text(f"SELECT COUNT(*) FROM payment_exception WHERE kind IN {RETRIED}")).scalar_one()


def clear_retried(conn: Connection, retried: Sequence[str] | None = None) -> None:
    """Delete the queue entries tried again (`retried`, staged by pending_payments; None: every entry of the
    kinds RETRIED)."""
    if retried is None:
        conn.execute(text(f"DELETE FROM payment_exception WHERE kind IN {RETRIED}"))
    elif len(retried):
        conn.execute(text("DELETE FROM payment_exception WHERE payment_id IN (SELECT value FROM retried_payment)"))


def reverse_transfer(conn: Connection, transfer_id: int, reversed_on: Any, reversed_by: Any) -> None:
    conn.execute(text("UPDATE share_transfer SET reversed_on = :d, reversed_by = :p WHERE id = :i"),
                 {"d": reversed_on, "p": reversed_by, "i": transfer_id})


def mark_reconciled_up_to(conn: Connection, last_id: int) -> None:
    """Every payment up to row `last_id` is reconciled (see RECONCILED_THROUGH): one key moved, no row written."""
    if last_id > reconciled_through(conn):
        set_meta(conn, RECONCILED_THROUGH, str(last_id))


def reduce_allocation(conn: Connection, payment_id: str, invoice_number: str, cents: int) -> int:
    """Take `cents` back from the payment's patient allocations on the invoice, newest first; returns
    the cents not found (0 when all were)."""
    rows = conn.execute(text("SELECT id, amount_cents FROM allocation WHERE payment_id = :p AND invoice_number = :i "
                             "AND payer_type = 'patient' ORDER BY id DESC"), {"p": payment_id, "i": invoice_number})
    left = cents
    for allocation_id, amount in rows.all():
        cut = min(left, amount)
        conn.execute(text("UPDATE allocation SET amount_cents = amount_cents - :c WHERE id = :i"),
                     {"c": cut, "i": allocation_id})
        conn.execute(text("DELETE FROM allocation WHERE id = :i AND amount_cents = 0"), {"i": allocation_id})
        left -= cut
        if left == 0:
            break
    return left


def add_credit(conn: Connection, payment_id: str, invoice_number: str, cents: int, reason: str) -> None:
    """The payment's queue entry becomes a credit of `cents` more (for the invoice's patient)."""
    existing = conn.execute(text("SELECT remaining_cents FROM payment_exception WHERE payment_id = :p"),
                            {"p": payment_id}).scalar_one_or_none()
    patient = conn.execute(text("SELECT patient_id FROM invoice WHERE invoice_number = :i"),
                           {"i": invoice_number}).scalar_one_or_none()
    conn.execute(text("DELETE FROM payment_exception WHERE payment_id = :p"), {"p": payment_id})
    conn.execute(text("INSERT INTO payment_exception (payment_id, kind, remaining_cents, reason, patient_id) "
                      "VALUES (:p, 'credit', :c, :r, :pt)"),
                 {"p": payment_id, "c": (existing or 0) + cents, "r": reason, "pt": patient})


# -- manual work on the queue --------------------------------------------------------------------

def payment(conn: Connection, payment_id: str):
    """The payment's row (payment_id, payer_type, amount_cents, status), or None."""
    return conn.execute(text("SELECT payment_id, payer_type, amount_cents, status FROM payment WHERE payment_id = :p"),
                        {"p": payment_id}).first()


def queue_kind(conn: Connection, payment_id: str) -> str | None:
    return conn.execute(text("SELECT kind FROM payment_exception WHERE payment_id = :p"),
                        {"p": payment_id}).scalar_one_or_none()


def allocated_cents(conn: Connection, payment_id: str) -> int:
    return conn.execute(text("SELECT COALESCE(SUM(amount_cents), 0) FROM allocation WHERE payment_id = :p"),
                        {"p": payment_id}).scalar_one()


def fill_payment_days(conn: Connection, mark: int) -> None:
    """The allocations after id `mark` written without their payment's day given it from the payment."""
    conn.execute(text("UPDATE allocation SET payment_date = (SELECT p.payment_date FROM payment p WHERE p.payment_id "
                      "= allocation.payment_id) WHERE id > :m AND payment_date IS NULL"), {"m": int(mark)})


def insert_allocation(conn: Connection, payment_id: str, invoice_number: str, share: str, cents: int, rule: str,
                      created_at: Any) -> None:
    """One allocation written by a person or an agency's collection, with its payment's day (allocation.payment_date,
    which settle reads), then its invoice settled if it owes nothing now."""
    conn.execute(text("INSERT INTO allocation (payment_id, invoice_number, payer_type, amount_cents, rule, "
                      "created_at, payment_date) VALUES (:p, :i, :s, :a, :r, :t, "
                      "(SELECT payment_date FROM payment WHERE payment_id = :of))"),
                 {"p": payment_id, "of": payment_id, "i": invoice_number, "s": share, "a": cents, "r": rule,
                  "t": created_at})
    open_items.settle(conn, invoice_number=invoice_number)


def delete_queue_entry(conn: Connection, payment_id: str) -> None:
    conn.execute(text("DELETE FROM payment_exception WHERE payment_id = :p"), {"p": payment_id})
    conn.execute(text("DELETE FROM queue_reach WHERE payment_id = :p"), {"p": payment_id})


def mark_reconciled(conn: Connection, payment_id: str) -> None:
    conn.execute(text("UPDATE payment SET reconciled = TRUE WHERE payment_id = :p"), {"p": payment_id})


def invoice_patient(conn: Connection, invoice_number: str) -> str:
    return conn.execute(text("SELECT patient_id FROM invoice WHERE invoice_number = :i"),
                        {"i": invoice_number}).scalar_one()


def payment_allocations(conn: Connection, payment_id: str) -> Sequence[Any]:
    """(invoice_number, amount_cents, patient_id) of each of the payment's allocations, in order."""
    return conn.execute(text("SELECT a.invoice_number, a.amount_cents, i.patient_id FROM allocation a "
                             "LEFT JOIN invoice i ON i.invoice_number = a.invoice_number "
                             "WHERE a.payment_id = :p ORDER BY a.id"), {"p": payment_id}).all()


def delete_allocations(conn: Connection, payment_id: str) -> None:
    conn.execute(text("DELETE FROM allocation WHERE payment_id = :p"), {"p": payment_id})


def hold_for_manual_match(conn: Connection, payment_id: str, cents: int) -> None:
    conn.execute(text("INSERT INTO payment_exception (payment_id, kind, remaining_cents, reason, patient_id) "
                      "VALUES (:p, 'held', :c, 'unmatched by hand: waits for a manual match', NULL)"),
                 {"p": payment_id, "c": cents})
