"""Promises to pay taken at the desk: recorded (audited with the user), read back for the patient page.

Through the promised day the ladder sends the patient nothing and the agency takes nothing (core.eligibility,
reading `db.eligibility.promise_spans`); the day after, if money is still owed, it resumes by itself. The rule of what may be promised is
`core.promises.promise_refusal`.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import Engine

from recouvrement.audit import append_event
from recouvrement.core.promises import Promise, promise_in_force, promise_refusal
from recouvrement.db import desk
from recouvrement.db.session import writing
from recouvrement.errors import RecouvrementError


def record_promise(engine: Engine, patient_id: str, pay_by: date, today: date, *, owed_cents: int,
                   amount_cents: int | None = None, actor: str, now: datetime | None = None) -> int:
    """Record the patient's promise to pay by `pay_by`; returns its id. RecouvrementError (French) when refused.
    `owed_cents`: what the patient owes net of credits today, as the account page shows it."""
    at = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    with writing(engine) as conn:
        if not desk.patient_exists(conn, patient_id):
            raise RecouvrementError(f"patient inconnu {patient_id!r}", field="patient")
        current = promise_in_force(desk.promises_of(conn, patient_id), today)
        refusal = promise_refusal(pay_by, today, owed_cents=owed_cents, amount_cents=amount_cents,
                                  pending_until=current.pay_by if current else None)
        if refusal:
            raise RecouvrementError(refusal, field="promesse")
        promise_id = desk.insert_promise(conn, patient_id, today, pay_by, amount_cents)
        append_event(conn, "promise", {"promise_id": promise_id, "made_on": today, "pay_by": pay_by,
                                       "amount_cents": amount_cents}, patient_id=patient_id, at=at, actor=actor)
    return promise_id


def promises(engine: Engine, patient_id: str) -> list[Promise]:
    """The patient's promises, newest first."""
    with engine.connect() as conn:
        return desk.promises_of(conn, patient_id)
