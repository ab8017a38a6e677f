"""The store of manual work on the payments queue: a queued payment as it stands, allocations by hand, and
what is left of a payment kept in the queue (never turned into a credit here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text


@dataclass(frozen=True)
class QueuedPayment:
    payment_id: str
    kind: str                  # unmatched | ambiguous | held (waiting), credit | dismissed (not waiting)
    payer_type: str            # amo | amc | patient | agency
    remaining_cents: int       # what is left on the payment, not yet allocated


def queued_payment(conn: Connection, payment_id: str) -> QueuedPayment | None:
    """The payment's entry in the queue, None when it has none (fully matched, or unknown)."""
    row = conn.execute(text("SELECT e.payment_id, e.kind, p.payer_type, e.remaining_cents FROM payment_exception e "
                            "JOIN payment p ON p.payment_id = e.payment_id WHERE e.payment_id = :p"),
                       {"p": payment_id}).first()
    return None if row is None else QueuedPayment(row[0], row[1], row[2], int(row[3]))


def invoice_patients(conn: Connection, numbers: list[str]) -> dict[str, str]:
    """invoice -> its patient, for the known ones."""
    if not numbers:
        return {}
    marks = ", ".join(f":n{k}" for k in range(len(numbers)))
    rows = conn.execute(text(f"SELECT invoice_number, patient_id FROM invoice WHERE invoice_number IN ({marks})"),
                        {f"n{k}": n for k, n in enumerate(numbers)})
    return dict(rows.all())


def allocate_by_hand(conn: Connection, payment_id: str, invoice_number: str, share: str, cents: int,
                     at: datetime) -> None:
    conn.execute(text("INSERT INTO allocation (payment_id, invoice_number, payer_type, amount_cents, rule, created_at) "
                      "VALUES (:p, :i, :s, :a, 'manual', :t)"),
                 {"p": payment_id, "i": invoice_number, "s": share, "a": cents, "t": at.replace(tzinfo=None)})


def keep_rest_in_queue(conn: Connection, payment_id: str, rest_cents: int, reason: str) -> None:
    """What is left of the payment waits in the queue (its kind unchanged); nothing left: it leaves the queue."""
    if rest_cents > 0:
        conn.execute(text("UPDATE payment_exception SET remaining_cents = :c, reason = :r WHERE payment_id = :p"),
                     {"c": rest_cents, "r": reason, "p": payment_id})
    else:
        conn.execute(text("DELETE FROM payment_exception WHERE payment_id = :p"), {"p": payment_id})
    conn.execute(text("UPDATE payment SET reconciled = TRUE WHERE payment_id = :p"), {"p": payment_id})
