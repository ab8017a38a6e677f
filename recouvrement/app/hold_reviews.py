"""A review date on a patient's hold: the day the desk should look at it again (shown on Aujourd'hui).

The hold itself is placed and released by `app.holds`; this only dates its review, audited with the user.
A review date does not end the hold: a person decides.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import Engine

from recouvrement.audit import append_event
from recouvrement.core.promises import review_refusal
from recouvrement.db import desk
from recouvrement.db.session import writing
from recouvrement.errors import RecouvrementError


def check_review_date(review_on: date, today: date) -> None:
    """RecouvrementError (French) when the review date is not acceptable (moving a hold's review date)."""
    refusal = review_refusal(review_on, today)
    if refusal:
        raise RecouvrementError(refusal, field="revue")


def review_hold(engine: Engine, patient_id: str, review_on: date, today: date, *, actor: str,
                now: datetime | None = None) -> int:
    """Date the review of the patient's hold in force; returns the hold's id."""
    check_review_date(review_on, today)
    at = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    with writing(engine) as conn:
        hold_id = desk.hold_in_force_of(conn, patient_id)
        if hold_id is None:
            raise RecouvrementError(f"le patient {patient_id} n'est pas suspendu", field="patient")
        desk.set_hold_review(conn, hold_id, review_on)
        append_event(conn, "hold_review", {"hold_id": hold_id, "review_on": review_on}, patient_id=patient_id,
                     at=at, actor=actor)
    return hold_id


def reviews(engine: Engine, patient_id: str) -> dict[int, date]:
    """hold id -> review date, for the patient's holds."""
    with engine.connect() as conn:
        return desk.hold_reviews(conn, patient_id)


def holds_to_review(engine: Engine, as_of: date) -> list[tuple[str, int, date]]:
    """(patient, hold id, review date) of holds in force whose review day has come."""
    with engine.connect() as conn:
        return desk.holds_to_review(conn, as_of)
