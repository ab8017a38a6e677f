"""Holds: pausing every reminder to a patient (hardship, death, legal protection), audited.

The reason is free text about a person's situation: it is kept in the `hold` table for staff and
never enters the audit log, where only its SHA-256 is recorded (proof that it was not rewritten;
note that a very short reason can be guessed from its hash, so the log proves integrity, not secrecy).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import Connection, Engine, text

from recouvrement.db.session import writing
from recouvrement.app.disputes import as_date, text_digest
from recouvrement.audit import append_event
from recouvrement.errors import RecouvrementError


@dataclass(frozen=True)
class HoldRow:
    id: int
    patient_id: str
    reason: str
    since: date
    released_on: date | None


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(timezone.utc)).replace(microsecond=0)


def _check_patient(conn: Connection, patient_id: str) -> None:
    known = conn.execute(text("SELECT 1 FROM patient WHERE patient_id = :p"), {"p": patient_id}).first()
    if known is None:
        raise RecouvrementError(f"patient inconnu {patient_id!r}", field="PATIENT_ID")


def _active_hold_id(conn: Connection, patient_id: str) -> int | None:
    return conn.execute(text("SELECT id FROM hold WHERE patient_id = :p AND released_on IS NULL"),
                        {"p": patient_id}).scalar_one_or_none()


def place_hold(engine: Engine, patient_id: str, reason: str, *, since: date | None = None,
               now: datetime | None = None, actor: str | None = None) -> int:
    """Pause all collection for a patient from `since` (default today); returns the hold's id.
    `actor`: who placed it, for the audit trail (the web app's user; default the OS user)."""
    if not reason.strip():
        raise RecouvrementError("une suspension demande un motif", field="--reason")
    at = _now(now)
    since = since or at.date()
    with writing(engine) as conn:
        _check_patient(conn, patient_id)
        if _active_hold_id(conn, patient_id) is not None:
            raise RecouvrementError(f"le patient {patient_id} est déjà suspendu", field="PATIENT_ID")
        hold_id = conn.execute(text("INSERT INTO hold (patient_id, reason, since) VALUES (:p, :r, :s) RETURNING id"),
                               {"p": patient_id, "r": reason, "s": since}).scalar_one()
        append_event(conn, "hold", {"hold_id": hold_id, "since": since, "reason_sha256": text_digest(reason)},
                     patient_id=patient_id, at=at, actor=actor)
    return hold_id


def release_hold(engine: Engine, patient_id: str, *, on: date | None = None, now: datetime | None = None,
                 actor: str | None = None) -> int:
    """End the patient's hold on `on` (default today): collection resumes from that day. Returns its id."""
    at = _now(now)
    on = on or at.date()
    with writing(engine) as conn:
        _check_patient(conn, patient_id)
        hold_id = _active_hold_id(conn, patient_id)
        if hold_id is None:
            raise RecouvrementError(f"le patient {patient_id} n'est pas suspendu", field="PATIENT_ID")
        since = as_date(conn.execute(text("SELECT since FROM hold WHERE id = :h"), {"h": hold_id}).scalar_one())
        if on < since:
            raise RecouvrementError(f"la suspension a commencé le {since:%d/%m/%Y} : elle ne peut pas finir avant", field="--on")
        conn.execute(text("UPDATE hold SET released_on = :o WHERE id = :h"), {"o": on, "h": hold_id})
        append_event(conn, "hold_release", {"hold_id": hold_id, "released_on": on}, patient_id=patient_id, at=at,
                     actor=actor)
    return hold_id


def patients_on_hold(conn: Connection, as_of: date) -> set[str]:
    """Patients with a hold in force on as_of: begun by then, not yet released (released that day = free)."""
    rows = conn.execute(text("SELECT DISTINCT patient_id FROM hold WHERE since <= :a "
                             "AND (released_on IS NULL OR released_on > :a)"), {"a": as_of})
    return {r[0] for r in rows}


def holds(conn: Connection, patient_id: str | None = None) -> list[HoldRow]:
    sql, params = "SELECT id, patient_id, reason, since, released_on FROM hold", {}
    if patient_id:
        sql, params = sql + " WHERE patient_id = :p", {"p": patient_id}
    rows = conn.execute(text(sql + " ORDER BY id"), params)
    return [HoldRow(r[0], r[1], r[2], as_date(r[3]), as_date(r[4])) for r in rows]
