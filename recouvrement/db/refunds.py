"""The store's reads and writes for refunds: credits waiting to be paid back, refunds and their transfer files.

A refund's life: `approved` (the accountant approved it, with the account to pay), `sent` (in a pain.001
file, itself stored before it is written to disk), `done` (a bank statement shows the transfer: the credit
is closed by as much), or `cancelled`. Every date returned is a `datetime.date`; amounts are integer cents.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import Connection, text

from recouvrement.core.books import OutgoingTransfer, Party, RefundDone
from recouvrement.db.books import as_day

ACTIVE = ("approved", "sent")


@dataclass(frozen=True)
class Refundable:
    """A credit left on a payment, less what refunds under way will pay back."""

    payment_id: str
    payment_date: date
    payer_type: str
    payer_name: str
    patient_id: str | None
    patient_name: str
    credit_cents: int          # the credit as it stands
    pending_cents: int         # approved or sent, not yet seen on a statement
    reason: str                # the reconciliation's own words (English, internal)

    @property
    def available_cents(self) -> int:
        return self.credit_cents - self.pending_cents


@dataclass(frozen=True)
class RefundRow:
    id: int
    payment_id: str
    patient_id: str | None
    amount_cents: int
    beneficiary: str
    iban: str
    bic: str | None
    end_to_end_id: str
    status: str
    approved_on: date
    approved_by: str
    message_id: str | None
    sent_on: date | None
    done_on: date | None


_REFUNDABLE = (
    "SELECT e.payment_id, p.payment_date, p.payer_type, p.payer_name, e.patient_id, pt.last_name, pt.first_name, "
    "e.remaining_cents, e.reason, COALESCE((SELECT SUM(r.amount_cents) FROM refund r WHERE r.payment_id = "
    "e.payment_id AND r.status IN ('approved', 'sent')), 0) AS pending FROM payment_exception e "
    "JOIN payment p ON p.payment_id = e.payment_id LEFT JOIN patient pt ON pt.patient_id = e.patient_id "
    "WHERE e.kind = 'credit' AND e.remaining_cents > 0")


def _refundable(row) -> Refundable:
    name = f"{row.last_name or ''} {row.first_name or ''}".strip()
    return Refundable(row.payment_id, as_day(row.payment_date), row.payer_type, row.payer_name or "", row.patient_id,
                      name, int(row.remaining_cents), int(row.pending), row.reason or "")


def refundable_credits(conn: Connection) -> list[Refundable]:
    """Every credit with something left to refund, oldest payment first."""
    rows = conn.execute(text(_REFUNDABLE + " ORDER BY p.payment_date, e.payment_id"))
    return [c for c in map(_refundable, rows) if c.available_cents > 0]


def refundable_credit(conn: Connection, payment_id: str) -> Refundable | None:
    row = conn.execute(text(_REFUNDABLE + " AND e.payment_id = :p"), {"p": payment_id}).first()
    return _refundable(row) if row is not None else None


_REFUND = ("SELECT id, payment_id, patient_id, amount_cents, beneficiary, iban, bic, end_to_end_id, status, "
           "approved_on, approved_by, message_id, sent_on, done_on FROM refund")


def _refund(row) -> RefundRow:
    return RefundRow(int(row.id), row.payment_id, row.patient_id, int(row.amount_cents), row.beneficiary, row.iban,
                     row.bic, row.end_to_end_id, row.status, as_day(row.approved_on), row.approved_by,
                     row.message_id, as_day(row.sent_on), as_day(row.done_on))


def refunds(conn: Connection, statuses: tuple[str, ...] = ("approved", "sent", "done", "cancelled")) -> list[RefundRow]:
    placeholders = ", ".join(f":s{i}" for i in range(len(statuses)))
    rows = conn.execute(text(f"{_REFUND} WHERE status IN ({placeholders}) ORDER BY id"),
                        {f"s{i}": s for i, s in enumerate(statuses)})
    return [_refund(r) for r in rows]


def refund(conn: Connection, refund_id: int) -> RefundRow | None:
    row = conn.execute(text(f"{_REFUND} WHERE id = :i"), {"i": refund_id}).first()
    return _refund(row) if row is not None else None


def insert_refund(conn: Connection, *, payment_id: str, patient_id: str | None, amount_cents: int, beneficiary: str,
                  iban: str, bic: str | None, end_to_end_id: str, approved_on: date, approved_by: str) -> int:
    return int(conn.execute(text(
        "INSERT INTO refund (payment_id, patient_id, amount_cents, beneficiary, iban, bic, end_to_end_id, status, "
        "approved_on, approved_by) VALUES (:p, :pt, :a, :b, :iban, :bic, :e, 'approved', :d, :by) RETURNING id"),
        {"p": payment_id, "pt": patient_id, "a": amount_cents, "b": beneficiary, "iban": iban, "bic": bic,
         "e": end_to_end_id, "d": approved_on, "by": approved_by}).scalar_one())


def cancel_refund(conn: Connection, refund_id: int) -> None:
    conn.execute(text("UPDATE refund SET status = 'cancelled' WHERE id = :i"), {"i": refund_id})


def mark_sent(conn: Connection, refund_ids: list[int], message_id: str, on: date) -> None:
    for refund_id in refund_ids:
        conn.execute(text("UPDATE refund SET status = 'sent', message_id = :m, sent_on = :d WHERE id = :i "
                          "AND status = 'approved'"), {"m": message_id, "d": on, "i": refund_id})


# -- transfer files: stored with their refunds, then written; a run killed in between leaves the next to write it

@dataclass(frozen=True)
class TransferFile:
    message_id: str
    path: str
    document: bytes


def store_transfer_file(conn: Connection, message_id: str, path: str, document: bytes, created_at: datetime) -> None:
    conn.execute(text("INSERT INTO refund_file (message_id, path, document, created_at) VALUES (:m, :p, :d, :t)"),
                 {"m": message_id, "p": path, "d": document, "t": created_at.replace(tzinfo=None)})


def unwritten_transfer_files(conn: Connection) -> list[TransferFile]:
    rows = conn.execute(text("SELECT message_id, path, document FROM refund_file WHERE written_at IS NULL "
                             "ORDER BY created_at, message_id"))
    return [TransferFile(r.message_id, r.path, bytes(r.document)) for r in rows]


def mark_transfer_file_written(conn: Connection, message_id: str, at: datetime) -> None:
    conn.execute(text("UPDATE refund_file SET written_at = :t WHERE message_id = :m"),
                 {"t": at.replace(tzinfo=None), "m": message_id})


# -- a statement shows the transfer: the refund is done and the credit closed by as much

def close_refunds(conn: Connection, outgoing: list[OutgoingTransfer]) -> list[RefundRow]:
    """Refunds sent whose transfer a statement shows (same end-to-end id, same amount): done on its booking
    date, the payment's credit reduced by as much (and gone at zero). Returns them as now stored (done, with
    their `done_on`), for the caller to audit in the same transaction."""
    closed = []
    for transfer in outgoing:
        row = conn.execute(text(f"{_REFUND} WHERE end_to_end_id = :e AND status = 'sent'"),
                           {"e": transfer.end_to_end_id}).first()
        if row is None or int(row.amount_cents) != transfer.amount_cents:
            continue
        found = _refund(row)
        booked = date.fromisoformat(transfer.booked)
        conn.execute(text("UPDATE refund SET status = 'done', done_on = :d, bank_reference = :r WHERE id = :i"),
                     {"d": booked, "r": transfer.bank_reference or None, "i": found.id})
        conn.execute(text("UPDATE payment_exception SET remaining_cents = remaining_cents - :a WHERE payment_id = :p "
                          "AND kind = 'credit'"), {"a": found.amount_cents, "p": found.payment_id})
        conn.execute(text("DELETE FROM payment_exception WHERE payment_id = :p AND kind = 'credit' "
                          "AND remaining_cents <= 0"), {"p": found.payment_id})
        closed.append(replace(found, status="done", done_on=booked))
    return closed


# -- for the books

def refunds_done(conn: Connection, start: date, end: date) -> list[RefundDone]:
    """Refunds the bank paid from `start` to `end`."""
    rows = conn.execute(text(
        "SELECT r.id, r.payment_id, r.amount_cents, r.end_to_end_id, r.done_on, r.patient_id, pt.last_name, "
        "pt.first_name FROM refund r LEFT JOIN patient pt ON pt.patient_id = r.patient_id "
        "WHERE r.status = 'done' AND r.done_on BETWEEN :start AND :end ORDER BY r.done_on, r.id"),
        {"start": start, "end": end})
    return [RefundDone(int(r.id), r.payment_id, int(r.amount_cents), r.end_to_end_id, as_day(r.done_on),
                       Party(r.patient_id, r.last_name or "", r.first_name or "")) for r in rows]

