"""The store's reads for the books: the money movements of a period, as plain dated records.

What recouvrement books (see core/books.py): receipts allocated to invoice shares, the credits left on
payments, the shares moved to the patient after an insurer's rejection (and moved back when the insurer
pays after all), write-offs and the agency's commissions. Every date returned is a `datetime.date`; amounts
are integer cents.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, text

from recouvrement.db.values import as_date as as_day  # the store's one date converter
from recouvrement.core.books import Commission, Party, PaymentCredit, ReceiptLine, ShareMove, WrittenOff


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
    """The credits left on payments dated from `start` to `end`, as they were made: what is left of them and
    what refunds have paid back since."""
    rows = conn.execute(text(
        "SELECT c.payment_id, p.payment_date, p.payer_type, SUM(c.cents) AS cents, MAX(c.patient_id) AS patient_id "
        "FROM (SELECT payment_id, remaining_cents AS cents, patient_id FROM payment_exception WHERE kind = 'credit' "
        "      UNION ALL SELECT payment_id, amount_cents, patient_id FROM refund WHERE status = 'done') c "
        "JOIN payment p ON p.payment_id = c.payment_id WHERE p.payment_date BETWEEN :start AND :end "
        "GROUP BY c.payment_id, p.payment_date, p.payer_type ORDER BY p.payment_date, c.payment_id"),
        {"start": start, "end": end}).all()
    names = _names(conn, {r.patient_id for r in rows if r.patient_id})
    return [PaymentCredit(r.payment_id, as_day(r.payment_date), r.payer_type, int(r.cents),
                          Party(r.patient_id, *names.get(r.patient_id, ("", ""))))
            for r in rows if int(r.cents) != 0]


def _names(conn: Connection, patient_ids: set[str]) -> dict[str, tuple[str, str]]:
    if not patient_ids:
        return {}
    rows = conn.execute(text("SELECT patient_id, last_name, first_name FROM patient"))
    return {r.patient_id: (r.last_name or "", r.first_name or "") for r in rows if r.patient_id in patient_ids}


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


def write_offs(conn: Connection, start: date, end: date) -> list[WrittenOff]:
    """Debts written off from `start` to `end`."""
    rows = conn.execute(text(
        f"SELECT w.id, w.invoice_number, w.payer_type, w.amount_cents, w.reason, w.written_off_on, {_PARTY} "
        "FROM write_off w LEFT JOIN invoice i ON i.invoice_number = w.invoice_number "
        "LEFT JOIN patient pt ON pt.patient_id = i.patient_id "
        "WHERE w.written_off_on BETWEEN :start AND :end ORDER BY w.written_off_on, w.id"), {"start": start, "end": end})
    return [WrittenOff(int(r.id), r.invoice_number, r.payer_type, int(r.amount_cents), r.reason,
                       as_day(r.written_off_on), _party(r)) for r in rows]


def agency_commissions(conn: Connection, start: date, end: date) -> list[Commission]:
    """The collection agency's commissions booked from `start` to `end`."""
    rows = conn.execute(text("SELECT line_id, case_id, booked_on, amount_cents FROM agency_commission "
                             "WHERE booked_on BETWEEN :start AND :end ORDER BY booked_on, line_id"),
                        {"start": start, "end": end})
    return [Commission(r.line_id, r.case_id, as_day(r.booked_on), int(r.amount_cents)) for r in rows]


def insert_write_off(conn: Connection, *, invoice_number: str, patient_id: str, payer_type: str, amount_cents: int,
                     reason: str, note: str | None, written_off_on: date, written_off_by: str) -> int:
    return int(conn.execute(text(
        "INSERT INTO write_off (invoice_number, patient_id, payer_type, amount_cents, reason, note, written_off_on, "
        "written_off_by) VALUES (:i, :p, :s, :a, :r, :n, :d, :by) RETURNING id"),
        {"i": invoice_number, "p": patient_id, "s": payer_type, "a": amount_cents, "r": reason, "n": note,
         "d": written_off_on, "by": written_off_by}).scalar_one())
