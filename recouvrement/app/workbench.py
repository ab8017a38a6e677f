"""The accountant's exceptions workbench: the queue with ranked candidate invoices, and dismissing a receipt.

Matching is the CLI's own use case (`app.reconcile.match_queued`, which the web app calls), under the
database's write lock and only while the payment still waits in the queue: of two people matching the same
payment at once, one wins and the other is told; dismissing is checked the same way. A dismissed receipt
(URSSAF, a supplier's credit note) leaves the queue with its reason and is never a patient's payment or credit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import Engine

from recouvrement.db.ledger import share_states
from recouvrement.audit import append_event, text_digest
from recouvrement.core.candidates import Candidate, OpenShare, rank_candidates
from recouvrement.core.names import normalise_name
from recouvrement.db.patients import patient_and_guarantor_names
from recouvrement.db.queue import (WAITING, NoLongerWaiting, WaitingPayment, dismiss_payment, queue_kind,
                                   waiting_payments)
from recouvrement.db.session import writing
from recouvrement.errors import RecouvrementError
from recouvrement.render.labels import QUEUE_LABELS

QUEUE_PAGE = 50
DISMISS_CATEGORIES = {
    "organisme": "organisme social ou fiscal (URSSAF, impôts…)",
    "fournisseur": "fournisseur (avoir, remboursement)",
    "interne": "virement interne ou de la banque",
    "autre": "autre recette sans patient",
}
KIND_LABELS = QUEUE_LABELS


AlreadyHandled = NoLongerWaiting


@dataclass(frozen=True)
class QueuedPayment:
    """A payment waiting in the queue (as the store reads it) with its best candidate invoices and why."""

    payment: WaitingPayment
    candidates: tuple[Candidate, ...]


def _open_shares(engine: Engine, as_of: date) -> list[OpenShare]:
    with engine.connect() as conn:
        shares = share_states(conn, as_of)
        shares = shares[shares["due_cents"] > 0]
        people = {r[0]: tuple(n for n in (normalise_name(f"{r[2] or ''} {r[1] or ''}"),
                                          normalise_name(f"{r[4] or ''} {r[3] or ''}")) if n)
                  for r in patient_and_guarantor_names(conn)}
    return [OpenShare(n, p, t, int(c), people.get(p, ())) for n, p, t, c in
            shares[["invoice_number", "patient_id", "payer_type", "due_cents"]].itertuples(index=False, name=None)]


def exceptions_queue(engine: Engine, as_of: date, limit: int = QUEUE_PAGE) -> list[QueuedPayment]:
    """The payments waiting for a person (oldest first), each with its best candidate invoices and why."""
    with engine.connect() as conn:
        rows = waiting_payments(conn, WAITING, limit)
    shares = _open_shares(engine, as_of) if rows else []
    return [QueuedPayment(r, tuple(rank_candidates(r.payer_name, r.reference, r.payer_type, r.remaining_cents, shares)))
            for r in rows]


def dismiss(engine: Engine, payment_id: str, category: str, note: str = "", *, actor: str,
            now: datetime | None = None) -> None:
    """Take a receipt that is not a patient's payment out of the queue, with its reason (audited)."""
    if category not in DISMISS_CATEGORIES:
        raise RecouvrementError("motif inconnu", field="motif")
    note = " ".join((note or "").split())[:200]
    at = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    with writing(engine) as conn:
        if queue_kind(conn, payment_id) not in WAITING:
            raise AlreadyHandled("ce paiement n'est plus dans la file : un autre utilisateur l'a traité entre-temps",
                                 field="PAYMENT_ID")
        reason = f"écarté : {DISMISS_CATEGORIES[category]}" + (f" — {note}" if note else "")
        dismiss_payment(conn, payment_id, reason)
        append_event(conn, "payment_dismissed", {"payment_id": payment_id, "category": category,
                                                 "note_sha256": text_digest(note) if note else None},
                     at=at, actor=actor)
