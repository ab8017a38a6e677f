"""The explicit-reference pass done set-based, in SQL where the rows are (the store's side of app.reconcile)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from recouvrement.db.bulk import build_indexes, set_aside_indexes
from recouvrement.db.reconcile import unreconciled

# The plain case of the explicit rule, done in SQL where the rows are: a paid line naming a known
# invoice, on an invoice with no rejection pending and no share moved to the patient. It allocates
# exactly as core.reconcile does (each payer its own share, payments in (date, id) order, what is left
# a credit); a test holds the two equal. Everything else goes through the pure engine, including a
# patient's line on a share with nothing left to pay: whether it is the patient's credit or a stranger's
# mistyped reference depends on the payer's name (core.reconcile), which SQL does not compare.
# Invoices the plain pass leaves to the engine: a share moved to the patient (looked up for the invoices the
# new lines name only), a rejection pending, or a queued payment naming them (which the engine takes in date
# order with the new ones).
_BLOCKED = """
CREATE TEMPORARY TABLE plain_blocked AS
SELECT t.invoice_number FROM payment p CROSS JOIN share_transfer t
      WHERE {unreconciled} AND p.id <= :last AND t.invoice_number = p.invoice_number AND t.reversed_on IS NULL
UNION SELECT p.invoice_number FROM payment p WHERE p.status IN ('rejected', 'clawback') AND {unreconciled}
      AND p.id <= :last
UNION {queued}
"""
# The invoices a waiting queue entry names, of those the new lines name: read from the queue when it is the
# smaller side (a first run: empty), else from the new lines (a night: a few thousand lines, a queue of tens
# of thousands whose every payment would be looked up).
_QUEUED_FROM_QUEUE = """SELECT q.invoice_number FROM payment_exception e JOIN payment q ON q.payment_id = e.payment_id
      WHERE e.kind IN ('unmatched', 'ambiguous') AND q.invoice_number IS NOT NULL"""
_QUEUED_FROM_NEW = """SELECT q.invoice_number FROM payment p CROSS JOIN payment q CROSS JOIN payment_exception e
      WHERE {unreconciled} AND p.id <= :last AND q.invoice_number = p.invoice_number
      AND e.payment_id = q.payment_id AND e.kind IN ('unmatched', 'ambiguous')"""
_PLAIN = """
CREATE TEMPORARY TABLE plain_explicit AS
SELECT c.id, c.payment_id, c.invoice_number, c.payer_type, c.amount_cents, c.patient_id,
       CASE WHEN c.due - c.before_cents <= 0 THEN 0
            WHEN c.due - c.before_cents >= c.amount_cents THEN c.amount_cents
            ELSE c.due - c.before_cents END AS paid
FROM (
    SELECT p.id, p.payment_id, p.invoice_number, p.payer_type, p.amount_cents, i.patient_id,
           CASE p.payer_type WHEN 'amo' THEN i.amo_cents WHEN 'amc' THEN i.amc_cents ELSE i.patient_cents END
             - COALESCE((SELECT SUM(a.amount_cents) FROM allocation a WHERE a.invoice_number = p.invoice_number
                         AND a.payer_type = p.payer_type), 0) AS due,
           COALESCE(SUM(p.amount_cents) OVER (PARTITION BY p.invoice_number, p.payer_type
                    ORDER BY p.payment_date, p.payment_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
             AS before_cents
    FROM payment p JOIN invoice i ON i.invoice_number = p.invoice_number
    WHERE {unreconciled} AND p.id <= :last AND p.status = 'paid'
      AND p.payer_type IN ('amo', 'amc', 'patient')
      AND NOT EXISTS (SELECT 1 FROM plain_blocked b WHERE b.invoice_number = p.invoice_number)
) c
WHERE NOT (c.payer_type = 'patient' AND c.due - c.before_cents <= 0)
"""



def _queue_is_larger(conn: Connection, last_id: int) -> bool:
    """More entries wait in the queue than new lines wait to be reconciled (each counted by its own index or a
    small table)."""
    waiting = conn.execute(text("SELECT COUNT(*) FROM payment_exception WHERE kind IN ('unmatched', 'ambiguous')"))
    new = conn.execute(text(f"SELECT COUNT(*) FROM payment WHERE {unreconciled(conn)} AND id <= :last"),
                       {"last": last_id})
    return waiting.scalar_one() > new.scalar_one()


def settle_plain_explicit(conn: Connection, last_id: int, now: datetime) -> tuple[int, int, int, int, int]:
    """Allocate the plain explicit payments up to row `last_id`, leave what is over as credits, mark them
    reconciled; (payments, allocations, cents allocated, credits, checksum of the allocations)."""
    for table in ("plain_explicit", "plain_blocked"):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    pending = unreconciled(conn, "p.reconciled")
    queued = _QUEUED_FROM_NEW if _queue_is_larger(conn, last_id) else _QUEUED_FROM_QUEUE
    conn.execute(text(_BLOCKED.format(unreconciled=pending, queued=queued.format(unreconciled=pending))),
                 {"last": last_id})
    conn.exec_driver_sql("CREATE INDEX plain_blocked_invoice ON plain_blocked (invoice_number)")
    conn.execute(text(_PLAIN.format(unreconciled=pending)), {"last": last_id})
    stamp = now.replace(tzinfo=None)
    # The first run fills an empty allocation table with most of its rows: its indexes are built once after that
    # (PostgreSQL: its keys too), sorted, rather than updated row by row; the run's later lookups find them in place.
    empty = conn.execute(text("SELECT 1 FROM allocation LIMIT 1")).first() is None
    set_aside = set_aside_indexes(conn, "allocation") if empty else []
    conn.execute(text("INSERT INTO allocation (payment_id, invoice_number, payer_type, amount_cents, rule, created_at) "
                      "SELECT payment_id, invoice_number, payer_type, paid, 'explicit', :t FROM plain_explicit "
                      "WHERE paid > 0 ORDER BY id"), {"t": stamp})
    build_indexes(conn, set_aside, analyse="allocation")
    conn.execute(text(
        "INSERT INTO payment_exception (payment_id, kind, remaining_cents, reason, patient_id) "
        "SELECT payment_id, 'credit', amount_cents - paid, CASE WHEN paid = 0 THEN 'invoice ' || invoice_number || "
        "': nothing left to pay on the ' || payer_type || ' share' ELSE 'paid more than was due: the excess is a "
        "credit to refund or use' END, CASE WHEN payer_type = 'patient' THEN patient_id END "
        "FROM plain_explicit WHERE paid < amount_cents"))
    conn.execute(text("UPDATE payment SET reconciled = TRUE WHERE id IN (SELECT id FROM plain_explicit)"))
    row = conn.execute(text("SELECT COUNT(*), COALESCE(SUM(CASE WHEN paid > 0 THEN 1 ELSE 0 END), 0), "
                            "COALESCE(SUM(paid), 0), COALESCE(SUM(CASE WHEN paid < amount_cents THEN 1 ELSE 0 END), 0),"
                            " COALESCE(SUM(paid * (id % 9973)), 0) FROM plain_explicit")).one()
    count, allocations, cents, credits, checksum = (int(v) for v in row)
    return count, allocations, cents, credits, checksum
