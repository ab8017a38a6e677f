"""The payments queue in the store: payments waiting for a person, credits, dismissed receipts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, text

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
