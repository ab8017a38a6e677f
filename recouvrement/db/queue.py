"""The payments queue in the store: payments waiting for a person, credits, dismissed receipts; and the manual
work on it: a queued payment as it stands, allocations by hand, what is left of a payment kept in the queue
(never turned into a credit here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, text

from recouvrement.db.reconcile import insert_allocation
from recouvrement.db.values import as_date
from recouvrement.errors import RecouvrementError

WAITING = ("unmatched", "ambiguous", "held")          # the kinds a person works; credits are listed apart


class NoLongerWaiting(RecouvrementError):
    """The payment left the queue meanwhile (another person matched or dismissed it)."""


@dataclass(frozen=True)
class WaitingPayment:
    payment_id: str
    payment_date: date
    payer_type: str
    payer_name: str
    amount_cents: int
    remaining_cents: int
    reference: str
    kind: str
    reason: str


def _kinds(kinds: tuple[str, ...]) -> tuple[str, dict]:
    marks = ", ".join(f":k{i}" for i in range(len(kinds)))
    return marks, {f"k{i}": kind for i, kind in enumerate(kinds)}


def waiting_payments(conn: Connection, kinds: tuple[str, ...], limit: int) -> list[WaitingPayment]:
    """The first `limit` payments of the queue whose kind is one of `kinds`, oldest first."""
    marks, params = _kinds(kinds)
    rows = conn.execute(text(
        "SELECT p.payment_id, p.payment_date, p.payer_type, p.payer_name, p.amount_cents, e.remaining_cents, "
        "p.reference, e.kind, e.reason FROM payment_exception e JOIN payment p ON p.payment_id = e.payment_id "
        f"WHERE e.kind IN ({marks}) ORDER BY p.payment_date, p.payment_id LIMIT :n"), {**params, "n": limit}).all()
    return [WaitingPayment(r[0], as_date(r[1]), r[2], r[3] or "", int(r[4]), int(r[5]), r[6] or "", r[7], r[8])
            for r in rows]


def waiting_count(conn: Connection, kinds: tuple[str, ...]) -> int:
    """How many payments of the queue have one of `kinds`."""
    marks, params = _kinds(kinds)
    return int(conn.execute(text(f"SELECT COUNT(*) FROM payment_exception WHERE kind IN ({marks})"),
                            params).scalar_one())


def queue_kind(conn: Connection, payment_id: str) -> str | None:
    """The payment's kind in the queue (unmatched, credit, dismissed…), None when it is not there."""
    return conn.execute(text("SELECT kind FROM payment_exception WHERE payment_id = :p"),
                        {"p": payment_id}).scalar_one_or_none()


def dismiss_payment(conn: Connection, payment_id: str, reason: str) -> None:
    """The payment leaves the queue as a receipt that is no patient's (with its reason)."""
    conn.execute(text("UPDATE payment_exception SET kind = 'dismissed', reason = :r, patient_id = NULL "
                      "WHERE payment_id = :p"), {"r": reason, "p": payment_id})


def queue_counts(conn: Connection) -> dict[str, int]:
    """How many payments of each kind the queue holds (kinds in order)."""
    return {k: int(v) for k, v in conn.execute(text("SELECT kind, COUNT(*) FROM payment_exception GROUP BY kind "
                                                    "ORDER BY kind"))}


# -- manual work on the queue: allocations by hand, the rest kept waiting ---------------------------------

@dataclass(frozen=True)
class QueueEntry:
    payment_id: str
    kind: str                  # unmatched | ambiguous | held (waiting), credit | dismissed (not waiting)
    payer_type: str            # amo | amc | patient | agency
    remaining_cents: int       # what is left on the payment, not yet allocated


def queued_payment(conn: Connection, payment_id: str) -> QueueEntry | None:
    """The payment's entry in the queue, None when it has none (fully matched, or unknown)."""
    row = conn.execute(text("SELECT e.payment_id, e.kind, p.payer_type, e.remaining_cents FROM payment_exception e "
                            "JOIN payment p ON p.payment_id = e.payment_id WHERE e.payment_id = :p"),
                       {"p": payment_id}).first()
    return None if row is None else QueueEntry(row[0], row[1], row[2], int(row[3]))


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
    insert_allocation(conn, payment_id, invoice_number, share, cents, "manual", at.replace(tzinfo=None))


def keep_rest_in_queue(conn: Connection, payment_id: str, rest_cents: int, reason: str) -> None:
    """What is left of the payment waits in the queue (its kind unchanged); nothing left: it leaves the queue."""
    if rest_cents > 0:
        conn.execute(text("UPDATE payment_exception SET remaining_cents = :c, reason = :r WHERE payment_id = :p"),
                     {"c": rest_cents, "r": reason, "p": payment_id})
    else:
        conn.execute(text("DELETE FROM payment_exception WHERE payment_id = :p"), {"p": payment_id})
    conn.execute(text("UPDATE payment SET reconciled = TRUE WHERE payment_id = :p"), {"p": payment_id})
