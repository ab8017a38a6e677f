"""Payments in the store: the payments export's rows."""

from __future__ import annotations

from sqlalchemy import Connection, text

from recouvrement.db.values import as_date


def payments_for_export(conn: Connection) -> list[tuple]:
    """(payment_id, payment_date, payer_type, payer_name, amount_cents, reference, invoice_number, status,
    source_file, source_line) of every payment, by date then id."""
    result = conn.execute(text(
        "SELECT payment_id, payment_date, payer_type, payer_name, amount_cents, reference, invoice_number, "
        "status, source_file, source_line FROM payment ORDER BY payment_date, payment_id"))
    return [(r[0], as_date(r[1]), *r[2:]) for r in result]
