"""Holds: pausing every reminder to a patient (hardship, death, legal protection), audited.

The reason is free text about a person's situation: it is kept in the `hold` table for staff and
never enters the audit log, where only its SHA-256 is recorded (proof that it was not rewritten;
note that a very short reason can be guessed from its hash, so the log proves integrity, not secrecy).
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import Connection, Engine

from recouvrement.audit import append_event, text_digest
from recouvrement.core.promises import review_refusal
from recouvrement.db import holds as store
from recouvrement.db.holds import HoldRow, holds, patients_on_hold  # noqa: F401 (reads moved to the store)
from recouvrement.db.patients import patient_exists
from recouvrement.db.session import writing
from recouvrement.errors import RecouvrementError


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(timezone.utc)).replace(microsecond=0)


def _check_patient(conn: Connection, patient_id: str) -> None:
    if not patient_exists(conn, patient_id):
        raise RecouvrementError(f"patient inconnu {patient_id!r}", field="PATIENT_ID")


def place_hold(engine: Engine, patient_id: str, reason: str, *, since: date | None = None,
               review_on: date | None = None, now: datetime | None = None, actor: str | None = None) -> int:
    """Pause all collection for a patient from `since` (default today); returns the hold's id. Letters, plan
    proposals and the agency handover all stop from that day, not before (core.eligibility).
    `review_on`: the day the desk should look at it again (after `since`, within a year), written in the
    same transaction as the hold: a refused date or a failed write leaves no hold at all.
    `actor`: who placed it, for the audit trail (the web app's user; default the OS user)."""
    if not reason.strip():
        raise RecouvrementError("une suspension demande un motif", field="reason")
    at = _now(now)
    since = since or at.date()
    refusal = review_refusal(review_on, since) if review_on is not None else None
    if refusal:
        raise RecouvrementError(refusal, field="review_on")
    with writing(engine) as conn:
        _check_patient(conn, patient_id)
        if store.open_hold(conn, patient_id) is not None:
            raise RecouvrementError(f"le patient {patient_id} est déjà suspendu", field="PATIENT_ID")
        hold_id = store.insert_hold(conn, patient_id, reason, since, review_on)
        append_event(conn, "hold", {"hold_id": hold_id, "since": since, "reason_sha256": text_digest(reason)},
                     patient_id=patient_id, at=at, actor=actor)
        if review_on is not None:
            append_event(conn, "hold_review", {"hold_id": hold_id, "review_on": review_on}, patient_id=patient_id,
                         at=at, actor=actor)
    return hold_id


def release_hold(engine: Engine, patient_id: str, *, on: date | None = None, now: datetime | None = None,
                 actor: str | None = None) -> int:
    """End the patient's hold on `on` (default today): collection resumes from that day. Returns its id."""
    at = _now(now)
    on = on or at.date()
    with writing(engine) as conn:
        _check_patient(conn, patient_id)
        hold = store.open_hold(conn, patient_id)
        if hold is None:
            raise RecouvrementError(f"le patient {patient_id} n'est pas suspendu", field="PATIENT_ID")
        if on < hold.since:
            raise RecouvrementError(f"la suspension a commencé le {hold.since:%d/%m/%Y} : elle ne peut pas finir avant", field="released_on")
        store.release(conn, hold.id, on)
        append_event(conn, "hold_release", {"hold_id": hold.id, "released_on": on}, patient_id=patient_id, at=at,
                     actor=actor)
    return hold.id
