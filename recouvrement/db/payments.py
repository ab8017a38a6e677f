"""Payments in the store: the payments export's rows."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, text

from recouvrement.db.reconcile import unreconciled
from recouvrement.db.values import as_date


def payments_for_export(conn: Connection) -> list[tuple]:
    """(payment_id, payment_date, payer_type, payer_name, amount_cents, reference, invoice_number, status,
    source_file, source_line) of every payment, by date then id."""
    result = conn.execute(text(
        "SELECT payment_id, payment_date, payer_type, payer_name, amount_cents, reference, invoice_number, "
        "status, source_file, source_line FROM payment ORDER BY payment_date, payment_id"))
    return [(r[0], as_date(r[1]), *r[2:]) for r in result]


def matching_summary(conn: Connection) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """(payments carrying money, [(rule, payments allocated by it)], [(queue kind, payments)]), the demo's
    summary of a reconciliation."""
    total = int(conn.execute(text("SELECT COUNT(*) FROM payment WHERE status = 'paid'")).scalar_one())
    by_rule = [(r, int(n)) for r, n in conn.execute(text("SELECT rule, COUNT(DISTINCT payment_id) FROM allocation "
                                                         "GROUP BY rule ORDER BY rule"))]
    queue = [(k, int(n)) for k, n in conn.execute(text("SELECT kind, COUNT(*) FROM payment_exception GROUP BY kind "
                                                       "ORDER BY kind"))]
    return total, by_rule, queue


def payments_mark(conn: Connection) -> tuple[int, int]:
    """The row ids of the last payment stored and of the last allocation made: a payment imported, reconciled or
    matched by hand since a reading moves it (every such write holds the writer lock, so ids follow commits)."""
    last_payment, last_allocation = conn.execute(text(
        "SELECT (SELECT MAX(id) FROM payment), (SELECT MAX(id) FROM allocation)")).one()
    return int(last_payment or 0), int(last_allocation or 0)


def invoices_mark(conn: Connection) -> int:
    """The row id of the last invoices file imported: an import since a reading may have changed a patient's
    address, coverage (CSS, AME), birth date or guarantor (the import holds the writer lock: ids follow commits)."""
    return int(conn.execute(text("SELECT MAX(id) FROM import_batch WHERE kind = 'invoices'")).scalar_one() or 0)


def unreconciled_count(conn: Connection, as_of: date) -> int:
    """Payments dated on or before as_of (so counted in that day's balances) that no reconciliation has
    processed yet (imported since the last `reconcile`: above the runs' mark and not matched by hand, see
    db.reconcile.unreconciled). A payment the reconcile put in the queue (unmatched, ambiguous, a credit) is
    processed: it does not count."""
    # SQLite, left to itself, walks every payment dated by as_of (2.2 million at 1M invoices, 0.4 s) rather than
    # the few above the runs' mark (the primary key's range): the unary + keeps it off the date's index.
    day = "+payment_date" if conn.dialect.name == "sqlite" else "payment_date"
    return int(conn.execute(text(f"SELECT COUNT(*) FROM payment WHERE {unreconciled(conn)} AND {day} <= :d"),
                            {"d": as_of}).scalar_one())
