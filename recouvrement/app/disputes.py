"""The complaints register: disputes about an invoice, their notes and answer deadlines, audited.

A dispute moves open → forwarded (to the practitioner) → answered → closed; the desk may answer
without forwarding, and may close at any point (a patient can withdraw). Closed is final. While a
dispute is open, its invoice is neither chased, nor put in a plan, nor handed over: from the day it was
received to the day it is closed (core.eligibility). The reason and the notes are
internal free text: they stay in the dispute tables and never enter the audit payload (only their
SHA-256, to prove later that they were not rewritten), letters or exports.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import Connection, Engine

from recouvrement.audit import append_event, text_digest
from recouvrement.db import disputes as store
from recouvrement.db.values import as_date  # noqa: F401 (other modules import it from here)
from recouvrement.db.disputes import (ANSWER_DAYS, NEAR_DAYS, DisputeNote, DisputeRow, dispute_notes,  # noqa: F401
                                      disputed_invoices, list_disputes)  # noqa: F401 (reads moved to the store)
from recouvrement.db.session import writing
from recouvrement.errors import RecouvrementError

CHANNELS = ("phone", "email", "letter", "desk")
CATEGORIES = ("amount", "billing-error", "insurer", "service", "other")
STATUSES = ("open", "forwarded", "answered", "closed")
STATUS_FR = {"open": "ouverte", "forwarded": "transmise", "answered": "répondue", "closed": "close"}
# action → (statuses it may start from, status it leads to)
TRANSITIONS = {
    "forward": (("open",), "forwarded"),
    "answer": (("open", "forwarded"), "answered"),
    "close": (("open", "forwarded", "answered"), "closed"),
}


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(timezone.utc)).replace(microsecond=0, tzinfo=None)


def _choice(value: str, choices: tuple[str, ...], field: str) -> str:
    if value not in choices:
        raise RecouvrementError(f"{value!r} n'est pas parmi {', '.join(choices)}", field=field)
    return value


def _invoice_patient(conn: Connection, invoice_number: str) -> str:
    patient = store.invoice_patient(conn, invoice_number)
    if patient is None:
        raise RecouvrementError(f"facture inconnue {invoice_number!r}", field="INVOICE_NUMBER")
    return patient


def get_dispute(conn: Connection, dispute_id: int) -> DisputeRow:
    found = store.dispute(conn, dispute_id)
    if found is None:
        raise RecouvrementError(f"réclamation inconnue n° {dispute_id}", field="ID")
    return found


def _audit(conn: Connection, kind: str, dispute: DisputeRow, payload: dict, at: datetime, actor: str | None) -> None:
    append_event(conn, kind, {"dispute_id": dispute.id, **payload}, patient_id=dispute.patient_id,
                 invoice_number=dispute.invoice_number, at=at.replace(tzinfo=timezone.utc), actor=actor)


def open_dispute(engine: Engine, invoice_number: str, reason: str, *, channel: str = "desk",
                 category: str = "other", received: date | None = None, now: datetime | None = None,
                 actor: str | None = None) -> int:
    """Register a complaint about an invoice; returns its id. Its collection pauses until it is closed.
    `actor` (here and below): who acted, for the audit trail (the web app's user; default the OS user)."""
    if not reason.strip():
        raise RecouvrementError("une réclamation demande un motif", field="reason")
    _choice(channel, CHANNELS, "channel")
    _choice(category, CATEGORIES, "category")
    at = _now(now)
    received = received or at.date()
    with writing(engine) as conn:
        _invoice_patient(conn, invoice_number)
        dispute_id = store.insert_dispute(conn, invoice_number, received, channel, category, reason,
                                          received + timedelta(days=ANSWER_DAYS))
        store.insert_note(conn, dispute_id, "open", "", at)
        dispute = get_dispute(conn, dispute_id)
        _audit(conn, "dispute_open", dispute, {
            "received_on": received, "channel": channel, "category": category,
            "answer_due": dispute.answer_due, "reason_sha256": text_digest(reason)}, at, actor)
    return dispute_id


def add_note(engine: Engine, dispute_id: int, note: str, *, now: datetime | None = None,
             actor: str | None = None) -> None:
    """Append a note to a dispute, whatever its status; it changes nothing else."""
    if not note.strip():
        raise RecouvrementError("la note est vide", field="TEXT")
    at = _now(now)
    with writing(engine) as conn:
        dispute = get_dispute(conn, dispute_id)
        store.insert_note(conn, dispute_id, "note", note, at)
        _audit(conn, "dispute_note", dispute, {"note_sha256": text_digest(note)}, at, actor)


def _transition(engine: Engine, dispute_id: int, action: str, note: str | None, now: datetime | None,
                on: date | None = None, actor: str | None = None) -> str:
    sources, target = TRANSITIONS[action]
    at = _now(now)
    with writing(engine) as conn:
        dispute = get_dispute(conn, dispute_id)
        if dispute.status not in sources:
            raise RecouvrementError(f"la réclamation n° {dispute_id} est {STATUS_FR.get(dispute.status, dispute.status)} : elle ne peut "
                                    f"pas devenir {STATUS_FR.get(target, target)} (seulement depuis "
                                    f"{' ou '.join(STATUS_FR.get(s, s) for s in sources)})", field="ID")
        closed_on = (on or at.date()) if target == "closed" else None
        store.set_status(conn, dispute_id, target, closed_on)
        store.insert_note(conn, dispute_id, action, note or "", at)
        payload: dict[str, object] = {"from": dispute.status, "to": target}
        if note:
            payload["note_sha256"] = text_digest(note)
        if closed_on:
            payload["closed_on"] = closed_on
        _audit(conn, f"dispute_{action}", dispute, payload, at, actor)
    return target


def forward_dispute(engine: Engine, dispute_id: int, note: str | None = None, *, now: datetime | None = None,
                    actor: str | None = None) -> str:
    """open → forwarded: the practitioner has the complaint."""
    return _transition(engine, dispute_id, "forward", note, now, actor=actor)


def answer_dispute(engine: Engine, dispute_id: int, note: str, *, now: datetime | None = None,
                   actor: str | None = None) -> str:
    """open or forwarded → answered; the note says what was answered."""
    if not note or not note.strip():
        raise RecouvrementError("une réponse demande une note disant ce qui a été répondu", field="note")
    return _transition(engine, dispute_id, "answer", note, now, actor=actor)


def close_dispute(engine: Engine, dispute_id: int, note: str | None = None, *, on: date | None = None,
                  now: datetime | None = None, actor: str | None = None) -> str:
    """Any status but closed → closed: the invoice's collection resumes."""
    return _transition(engine, dispute_id, "close", note, now, on, actor)
