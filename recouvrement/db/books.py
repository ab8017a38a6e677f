"""The store's reads for the books: the money movements of a period, as plain dated records.

What recouvrement books (see core/books.py): receipts allocated to invoice shares, the credits left on
payments, and the shares moved to the patient after an insurer's rejection (and moved back when the
insurer pays after all). Every date returned is a `datetime.date`; amounts are integer cents.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Connection, text

from recouvrement.core.books import Party, PaymentCredit, ReceiptLine, ShareMove


def as_day(value) -> date | None:
    """A date from what the driver returned: SQLite text ('2026-03-01', '2026-03-01 10:00:00.000000'),
    PostgreSQL date or datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


_PARTY = "i.patient_id, pt.last_name, pt.first_name, i.amc_payer"


def _party(row) -> Party:
    return Party(row.patient_id, row.last_name or "", row.first_name or "", row.amc_payer)


def receipt_lines(conn: Connection, start: date, end: date) -> list[ReceiptLine]:
    """Every allocation of a payment dated from `start` to `end` (both included)."""
    rows = conn.execute(text(
        f"SELECT a.payment_id, p.payment_date, p.payer_type, a.payer_type AS share, a.invoice_number, "
        f"a.amount_cents, a.created_at, {_PARTY} FROM allocation a "
        "JOIN payment p ON p.payment_id = a.payment_id "
        "LEFT JOIN invoice i ON i.invoice_number = a.invoice_number "
        "LEFT JOIN patient pt ON pt.patient_id = i.patient_id "
        "WHERE p.payment_date BETWEEN :start AND :end AND a.amount_cents <> 0 "
        "ORDER BY p.payment_date, a.payment_id, a.id"), {"start": start, "end": end})
    return [ReceiptLine(r.payment_id, as_day(r.payment_date), r.payer_type, r.share, r.invoice_number,
                        int(r.amount_cents), as_day(r.created_at) or as_day(r.payment_date), _party(r))
            for r in rows]


def payment_credits(conn: Connection, start: date, end: date) -> list[PaymentCredit]:
    """The credits left on payments dated from `start` to `end`."""
    rows = conn.execute(text(
        "SELECT e.payment_id, p.payment_date, p.payer_type, e.remaining_cents, e.patient_id, pt.last_name, "
        "pt.first_name, NULL AS amc_payer FROM payment_exception e "
        "JOIN payment p ON p.payment_id = e.payment_id "
        "LEFT JOIN patient pt ON pt.patient_id = e.patient_id "
        "WHERE e.kind = 'credit' AND p.payment_date BETWEEN :start AND :end "
        "ORDER BY p.payment_date, e.payment_id"), {"start": start, "end": end})
    return [PaymentCredit(r.payment_id, as_day(r.payment_date), r.payer_type, int(r.remaining_cents), _party(r))
            for r in rows if int(r.remaining_cents) != 0]


def share_moves(conn: Connection, start: date, end: date) -> list[ShareMove]:
    """The shares moved to a patient, or moved back, from `start` to `end`."""
    rows = conn.execute(text(
        f"SELECT t.id, t.invoice_number, t.from_payer, t.amount_cents, t.transfer_date, t.payment_id, "
        f"t.reversed_on, t.reversed_by, {_PARTY} FROM share_transfer t "
        "LEFT JOIN invoice i ON i.invoice_number = t.invoice_number "
        "LEFT JOIN patient pt ON pt.patient_id = i.patient_id "
        "WHERE (t.transfer_date BETWEEN :start AND :end OR t.reversed_on BETWEEN :start AND :end) "
        "AND t.amount_cents <> 0 ORDER BY t.transfer_date, t.id"), {"start": start, "end": end})
    return [ShareMove(int(r.id), r.invoice_number, r.from_payer, int(r.amount_cents), as_day(r.transfer_date),
                      r.payment_id, as_day(r.reversed_on), r.reversed_by, _party(r)) for r in rows]
