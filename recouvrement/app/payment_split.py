"""Split one queued payment across several invoices by hand (the accountant's workbench), audited with the user.

Under the writer lock and only while the payment still waits in the queue: of two people working the same
payment at once, the second sees what the first left. What is not allocated stays on the payment in the
queue, never a credit (`core.split`). Dues are the matching engine's (`core.ledger.outstanding`, undated).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Engine

from recouvrement.audit import append_event
from recouvrement.core.ledger import outstanding
from recouvrement.core.split import split_refusal
from recouvrement.db import queue as store
from recouvrement.db.ledger import load_snapshot
from recouvrement.db.session import writing
from recouvrement.db.queue import WAITING, NoLongerWaiting
from recouvrement.errors import RecouvrementError

REST_REASON = "reste après une répartition à la main : attend une décision"


def split_payment(engine: Engine, payment_id: str, parts: list[tuple[str, int]], *, actor: str,
                  now: datetime | None = None) -> int:
    """Allocate the (invoice, cents) parts from the queued payment; returns the cents left waiting in the queue."""
    at = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    with writing(engine) as conn:
        queued = store.queued_payment(conn, payment_id)
        if queued is None or queued.kind not in WAITING:
            raise NoLongerWaiting("ce paiement n'est plus dans la file : un autre utilisateur l'a traité entre-temps",
                                  field="paiement")
        share = "patient" if queued.payer_type == "agency" else queued.payer_type
        numbers = list(dict.fromkeys(n for n, _ in parts))
        table = outstanding(load_snapshot(conn, None, invoice_numbers=numbers))
        table = table[table["payer_type"] == share]
        dues = {n: int(c) for n, c in zip(table["invoice_number"], table["due_cents"])}
        refusal = split_refusal(parts, remaining_cents=queued.remaining_cents, dues=dues)
        if refusal:
            raise RecouvrementError(refusal, field="repartition")
        for number, cents in parts:
            store.allocate_by_hand(conn, payment_id, number, share, cents, at)
        rest = queued.remaining_cents - sum(c for _, c in parts)
        store.keep_rest_in_queue(conn, payment_id, rest, REST_REASON)
        owners = store.invoice_patients(conn, numbers)
        for patient in dict.fromkeys(owners[n] for n, _ in parts):
            theirs = [[n, c] for n, c in parts if owners[n] == patient]
            numbers = [n for n, _ in parts if owners[n] == patient]
            append_event(conn, "payment_split", {"payment_id": payment_id, "allocated": theirs, "left_in_queue_cents": rest,
                                                 "invoices": numbers},
                         patient_id=patient, invoice_number=numbers[0] if len(numbers) == 1 else None, at=at,
                         actor=actor)
    return rest
