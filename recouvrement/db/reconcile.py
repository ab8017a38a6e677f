"""The reconciliation's reads and writes (issue #12: the store owns the SQL), moved verbatim from
`app/reconcile.py`. Each takes the `Connection` of the use case's transaction (`writing` or
`bulk_transaction`); none opens its own."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
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


# The payment lines the explicit pass may settle (db.explicit's _PAIDS: a paid line of an insurer or of the patient,
# on an invoice it names): the others go to the engine whatever the pass finds, and may be read before it.
PASS_LINE = "p.status = 'paid' AND p.payer_type IN ('amo', 'amc', 'patient')"
_PASSABLE = f"{PASS_LINE} AND p.invoice_number IS NOT NULL"


def pending_payments(conn: Connection, last_id: int, columns: Sequence[str],
                     retried: Sequence[str] | None = None, settled: bool = False,
                     aside: pd.DataFrame | None = None) -> pd.DataFrame:
    """New payments (up to row `last_id`) and the queue entries to try again (`retried`; None: every entry of the
    kinds RETRIED): the payment table's `columns` (the importers' PAYMENT_COLUMNS), dates as the driver returns
    them. `settled`: the new payments the explicit pass settled (plain_explicit, db.explicit) left out. `aside`: the
    new payments the pass never settles, already read (payments_the_pass_leaves, with their `id`): only the others
    are read here, and the two put back in row order, as one read gives them."""
    pending = unreconciled(conn, "p")
    settled_out = " AND p.id NOT IN (SELECT id FROM plain_explicit)" if settled else ""
    new_rows = f"{pending} AND p.id <= :last{settled_out}" + (f" AND {_PASSABLE}" if aside is not None else "")
    ints = [c for c in columns if c in _whole_numbers()]
    # With `aside` after the pass, the new rows left are those the pass took out (plain_left), read by row id; none of
    # them is among those it settled (no lookup in plain_explicit: on PostgreSQL, a hash of its 1.7M ids at 1M).
    left = aside is not None and settled
    left_rows = f"{pending} AND p.id <= :last AND {_PASSABLE}"
    # With `aside`, each row's id and whether it is a new payment's (else a queue entry's), to put the rows in order.
    marks, queued_marks = ((["p.id", f"({left_rows if left else new_rows}) AS is_new"], ["p.id", "FALSE"])
                           if aside is not None else ([], []))
    new = "SELECT " + ", ".join([*marks, *columns]) + (" FROM plain_left l CROSS JOIN payment p WHERE p.id = l.id AND "
                                                        + left_rows if left else " FROM payment p WHERE " + new_rows)
    if retried is None and left:
        read = read_columns(conn, f"{new} UNION ALL SELECT * FROM (SELECT " + ", ".join(
                            [*queued_marks, *(f"p.{c}" for c in columns)]) + " FROM payment p WHERE p.payment_id IN "
                            f"(SELECT payment_id FROM payment_exception WHERE kind IN {RETRIED}) AND NOT ({new_rows}) "
                            "ORDER BY p.id) queued", {"last": last_id}, ["id", "is_new", *ints])
    elif retried is None:
        read = read_columns(conn, f"{new} OR p.payment_id IN (SELECT payment_id FROM payment_exception WHERE kind "
                            f"IN {RETRIED})", {"last": last_id}, ["id", "is_new", *ints])
    else:
        stage(conn, "retried_payment", pd.DataFrame({"value": pd.Series(list(retried), dtype=object)}), {},
              index="value")
        read = read_columns(conn, f"{new} UNION ALL SELECT " + ", ".join([*queued_marks, *(f"p.{c}" for c in columns)])
                            + " FROM retried_payment r CROSS JOIN payment p WHERE p.payment_id = r.value AND NOT "
                            f"({pending} AND p.id <= :last)", {"last": last_id}, ["id", "is_new", *ints])
    return read if aside is None else _in_row_order(read, aside, columns, ints)


def payments_the_pass_leaves(conn: Connection, pending: str, last_id: int, columns: Sequence[str]) -> pd.DataFrame:
    """The new payments (up to row `last_id`; `pending`: unreconciled's condition as the run's connection states it)
    that the explicit pass never settles (not a PASS_LINE, or naming no invoice): their `id` and `columns`, in row
    order. Read on another connection while the pass runs (app.reconcile._LedgerBeside); pending_payments takes
    them (`aside`)."""
    ints = ["id", *(c for c in columns if c in _whole_numbers())]
    return read_columns(conn, f"SELECT p.id, {', '.join(columns)} FROM payment p WHERE {pending} AND p.id <= :last "
                        f"AND NOT ({_PASSABLE})", {"last": last_id}, ints)


def _in_row_order(read: pd.DataFrame, aside: pd.DataFrame, columns: Sequence[str], ints: Sequence[str]) -> pd.DataFrame:
    """One read's rows made of two: the new payments (`aside`, and `read`'s rows marked `new`) in row order, then
    `read`'s queue entries not among them, as read: `columns`, each of whole numbers (`ints`) int64 when none is
    missing, as db.bulk.read_columns gives it."""
    columns = list(columns)
    marked = read["is_new"].to_numpy(dtype=object).astype(bool) if len(read) else np.zeros(0, dtype=bool)
    new = pd.concat([aside[["id", *columns]], read.loc[marked, ["id", *columns]]], ignore_index=True)
    new = new.take(np.argsort(new["id"].to_numpy(dtype=np.int64), kind="stable"))
    queued = read.loc[~marked]
    queued = queued[~queued["id"].isin(aside["id"])]
    rows = pd.concat([new[columns], queued[columns]], ignore_index=True)
    for column in ints:
        if rows[column].dtype == object and len(rows) and not rows[column].isna().any():
            rows[column] = rows[column].astype("int64")
    return rows


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
