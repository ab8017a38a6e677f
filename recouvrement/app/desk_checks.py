"""What the patient page's forms check before another use case acts: the invoice is this patient's, no
dispute is already open on it. Read-only; French refusals, one line each."""

from __future__ import annotations

from sqlalchemy import Engine

from recouvrement.db import desk


def dispute_refusal(engine: Engine, patient_id: str, invoice_number: str) -> str | None:
    """Why a dispute may not be opened from this patient's page on that invoice, or None."""
    with engine.connect() as conn:
        owner = desk.invoice_patient(conn, invoice_number)
        if owner != patient_id:
            return f"la facture {invoice_number!r} n'est pas une facture de ce patient"
        if desk.dispute_open_on(conn, invoice_number):
            return f"une contestation est déjà en cours sur la facture {invoice_number}"
    return None
