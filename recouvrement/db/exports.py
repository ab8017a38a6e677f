"""The reconciliation's exports read from the store: the allocations and the payments' queue."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection

from recouvrement.db.bulk import read_frame


def allocations(conn: Connection) -> pd.DataFrame:
    """Every allocation: payment_id, invoice_number, payer_type, amount_cents, rule; by payment, invoice, row."""
    return read_frame(conn, "SELECT payment_id, invoice_number, payer_type, amount_cents, rule FROM allocation "
                            "ORDER BY payment_id, invoice_number, id")


def exceptions(conn: Connection) -> pd.DataFrame:
    """Every payment waiting in the queue with its payment's facts: payment_id, payment_date, payer_type,
    payer_name, amount_cents, remaining_cents, kind, reason, patient_id, reference; by payment date and id."""
    return read_frame(conn, "SELECT e.payment_id, p.payment_date, p.payer_type, p.payer_name, p.amount_cents, "
                            "e.remaining_cents, e.kind, e.reason, e.patient_id, p.reference FROM payment_exception e "
                            "JOIN payment p ON p.payment_id = e.payment_id ORDER BY p.payment_date, e.payment_id")
