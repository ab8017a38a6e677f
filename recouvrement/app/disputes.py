"""The complaints register: disputes about an invoice, their notes and answer deadlines, audited.

A dispute moves open → forwarded (to the practitioner) → answered → closed; the desk may answer
without forwarding, and may close at any point (a patient can withdraw). Closed is final. While a
dispute is not closed, its invoice is not chased (`disputed_invoices`). The reason and the notes are
internal free text: they stay in the dispute tables and never enter the audit payload (only their
SHA-256, to prove later that they were not rewritten), letters or exports.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import Connection, Engine, text

from recouvrement.db.session import writing
from recouvrement.audit import append_event
from recouvrement.errors import RecouvrementError

ANSWER_DAYS = 60      # answer due within 60 days of receipt
NEAR_DAYS = 10        # "nears": due within this many days
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


@dataclass(frozen=True)
class DisputeNote:
    at: datetime
    action: str               # open | note | forward | answer | close
    text: str


@dataclass(frozen=True)
class DisputeRow:
    id: int
    invoice_number: str
    patient_id: str
    received_on: date
    channel: str
    category: str
    status: str
    reason: str
    answer_due: date
    closed_on: date | None

    def days_left(self, as_of: date) -> int:
        return (self.answer_due - as_of).days

    def deadline(self, as_of: date) -> str:
        """"answered"/"closed" once the patient has an answer, else "overdue", "nears" or "in time"."""
        if self.status in ("answered", "closed"):
            return self.status
        left = self.days_left(as_of)
        return "overdue" if left < 0 else "nears" if left <= NEAR_DAYS else "in time"

    def is_overdue(self, as_of: date) -> bool:
        return self.deadline(as_of) == "overdue"


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(timezone.utc)).replace(microsecond=0, tzinfo=None)


def text_digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _choice(value: str, choices: tuple[str, ...], field: str) -> str:
    if value not in choices:
        raise RecouvrementError(f"{value!r} n'est pas parmi {', '.join(choices)}", field=field)
    return value


def _invoice_patient(conn: Connection, invoice_number: str) -> str:
    patient = conn.execute(text("SELECT patient_id FROM invoice WHERE invoice_number = :i"),
                           {"i": invoice_number}).scalar_one_or_none()
    if patient is None:
        raise RecouvrementError(f"facture inconnue {invoice_number!r}", field="INVOICE_NUMBER")
    return patient


_SELECT = ("SELECT d.id, d.invoice_number, i.patient_id, d.received_on, d.channel, d.category, d.status, "
           "d.reason, d.answer_due, d.closed_on FROM dispute d JOIN invoice i ON i.invoice_number = d.invoice_number")


def as_date(value) -> date | None:
    """A DATE column's value as a date (SQLite hands back ISO text, PostgreSQL a date or a datetime)."""
    if isinstance(value, datetime):
        return value.date()
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _row(record) -> DisputeRow:
    values = list(record)
    for index in (3, 8, 9):
        values[index] = as_date(values[index])
    return DisputeRow(*values)


def get_dispute(conn: Connection, dispute_id: int) -> DisputeRow:
    record = conn.execute(text(_SELECT + " WHERE d.id = :d"), {"d": dispute_id}).first()
    if record is None:
        raise RecouvrementError(f"réclamation inconnue n° {dispute_id}", field="ID")
    return _row(record)


def _add_note(conn: Connection, dispute_id: int, action: str, note: str, at: datetime) -> None:
    conn.execute(text("INSERT INTO dispute_note (dispute_id, at, action, text) VALUES (:d, :at, :a, :t)"),
                 {"d": dispute_id, "at": at, "a": action, "t": note})


def _audit(conn: Connection, kind: str, dispute: DisputeRow, payload: dict, at: datetime, actor: str | None) -> None:
    append_event(conn, kind, {"dispute_id": dispute.id, **payload}, patient_id=dispute.patient_id,
                 invoice_number=dispute.invoice_number, at=at.replace(tzinfo=timezone.utc), actor=actor)


def open_dispute(engine: Engine, invoice_number: str, reason: str, *, channel: str = "desk",
                 category: str = "other", received: date | None = None, now: datetime | None = None,
                 actor: str | None = None) -> int:
    """Register a complaint about an invoice; returns its id. Its collection pauses until it is closed.
    `actor` (here and below): who acted, for the audit trail (the web app's user; default the OS user)."""
    if not reason.strip():
        raise RecouvrementError("une réclamation demande un motif", field="--reason")
    _choice(channel, CHANNELS, "--channel")
    _choice(category, CATEGORIES, "--category")
    at = _now(now)
    received = received or at.date()
    with writing(engine) as conn:
        _invoice_patient(conn, invoice_number)
        dispute_id = conn.execute(text(
            "INSERT INTO dispute (invoice_number, received_on, channel, category, status, reason, answer_due) "
            "VALUES (:i, :r, :ch, :ca, 'open', :reason, :due) RETURNING id"),
            {"i": invoice_number, "r": received, "ch": channel, "ca": category, "reason": reason,
             "due": received + timedelta(days=ANSWER_DAYS)}).scalar_one()
        _add_note(conn, dispute_id, "open", "", at)
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
        _add_note(conn, dispute_id, "note", note, at)
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
        conn.execute(text("UPDATE dispute SET status = :s, closed_on = :c WHERE id = :d"),
                     {"s": target, "c": closed_on, "d": dispute_id})
        _add_note(conn, dispute_id, action, note or "", at)
        payload = {"from": dispute.status, "to": target}
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
        raise RecouvrementError("une réponse demande une note disant ce qui a été répondu", field="--note")
    return _transition(engine, dispute_id, "answer", note, now, actor=actor)


def close_dispute(engine: Engine, dispute_id: int, note: str | None = None, *, on: date | None = None,
                  now: datetime | None = None, actor: str | None = None) -> str:
    """Any status but closed → closed: the invoice's collection resumes."""
    return _transition(engine, dispute_id, "close", note, now, on, actor)


def list_disputes(conn: Connection, *, include_closed: bool = False) -> list[DisputeRow]:
    where = "" if include_closed else " WHERE d.status <> 'closed'"
    return [_row(r) for r in conn.execute(text(_SELECT + where + " ORDER BY d.answer_due, d.id"))]


def dispute_notes(conn: Connection, dispute_id: int) -> list[DisputeNote]:
    rows = conn.execute(text("SELECT at, action, text FROM dispute_note WHERE dispute_id = :d ORDER BY id"),
                        {"d": dispute_id})
    return [DisputeNote(r[0] if isinstance(r[0], datetime) else datetime.fromisoformat(str(r[0])), r[1], r[2])
            for r in rows]


def disputed_invoices(conn: Connection, as_of: date | None = None) -> set[str]:
    """Invoices whose collection is paused by a dispute that is not closed (received by as_of, if given)."""
    sql = "SELECT DISTINCT invoice_number FROM dispute WHERE status <> 'closed'"
    params = {}
    if as_of is not None:
        sql += " AND received_on <= :a"
        params["a"] = as_of
    return {r[0] for r in conn.execute(text(sql), params)}
