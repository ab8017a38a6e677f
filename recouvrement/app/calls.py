"""The call list: patients to phone today, and the outcome of each call (audited with the user).

Who is on it is the ladder's own answer (`app.remind.run_remind` in a dry run, composed by the web app): a
patient the ladder would send a second-level letter or more today, who has a phone number — a call first,
a person who can listen and offer to spread the payment. A call's outcome takes the patient off today's
list; a promise or a dispute recorded from their page takes them off the ladder itself. The script is
neutral: no threat, no fee, nothing said to an answering machine but the clinic's name and number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import Engine

from recouvrement.audit import append_event
from recouvrement.db import desk
from recouvrement.db.session import writing
from recouvrement.errors import RecouvrementError

CALL_FROM_LEVEL = 2
OUTCOMES = {"reached": "joint", "no_answer": "pas de réponse", "wrong_number": "faux numéro"}


@dataclass(frozen=True)
class Call:
    patient_id: str
    last_name: str
    first_name: str
    phone: str
    level: int
    amount_cents: int


def call_list(engine: Engine, due: list[tuple[str, int, int]], today: date) -> list[Call]:
    """Of the (patient, level, amount asked) the ladder has due today, those to phone: level high enough, a
    phone number, no call recorded today yet."""
    wanted = [(p, level, cents) for p, level, cents in due if level >= CALL_FROM_LEVEL]
    with engine.connect() as conn:
        contacts = desk.patient_contacts(conn, [p for p, _, _ in wanted])
        called = desk.calls_on(conn, today)
    return [Call(p, *contacts[p][:2], contacts[p][2], level, cents) for p, level, cents in wanted
            if p in contacts and contacts[p][2].strip() and p not in called]


def record_call(engine: Engine, patient_id: str, outcome: str, today: date, *, actor: str,
                now: datetime | None = None) -> None:
    if outcome not in OUTCOMES:
        raise RecouvrementError("issue d'appel inconnue", field="issue")
    at = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    with writing(engine) as conn:
        if not desk.patient_exists(conn, patient_id):
            raise RecouvrementError(f"patient inconnu {patient_id!r}", field="patient")
        append_event(conn, "call", {"on": today, "outcome": outcome}, patient_id=patient_id, at=at, actor=actor)
