"""Holds (a patient's collection paused) in the store: named reads (dates as `date`) and named writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, text

from recouvrement.db.values import as_date


@dataclass(frozen=True)
class HoldRow:
    id: int
    patient_id: str
    reason: str
    since: date
    released_on: date | None


def patients_on_hold(conn: Connection, as_of: date) -> set[str]:
    """Patients with a hold in force on as_of: begun by then, not yet released (released that day = free)."""
    rows = conn.execute(text("SELECT DISTINCT patient_id FROM hold WHERE since <= :a "
                             "AND (released_on IS NULL OR released_on > :a)"), {"a": as_of})
    return {r[0] for r in rows}


def holds(conn: Connection, patient_id: str | None = None) -> list[HoldRow]:
    """Every hold (of one patient, if named), in the order they were placed."""
    sql, params = "SELECT id, patient_id, reason, since, released_on FROM hold", {}
    if patient_id:
        sql, params = sql + " WHERE patient_id = :p", {"p": patient_id}
    rows = conn.execute(text(sql + " ORDER BY id"), params)
    return [HoldRow(r[0], r[1], r[2], as_date(r[3]), as_date(r[4])) for r in rows]


def open_hold(conn: Connection, patient_id: str) -> HoldRow | None:
    """The patient's hold not yet released (whatever its first day), if any."""
    found = [h for h in holds(conn, patient_id) if h.released_on is None]
    return found[0] if found else None


def insert_hold(conn: Connection, patient_id: str, reason: str, since: date, review_on: date | None = None) -> int:
    """Place a hold, with its review date when given: both rows on the caller's connection, so in one
    transaction (a hold is never left without the review date it was placed with). Returns its id."""
    hold_id = int(conn.execute(text("INSERT INTO hold (patient_id, reason, since) VALUES (:p, :r, :s) RETURNING id"),
                               {"p": patient_id, "r": reason, "s": since}).scalar_one())
    if review_on is not None:
        conn.execute(text("INSERT INTO hold_review (hold_id, review_on) VALUES (:h, :r)"),
                     {"h": hold_id, "r": review_on})
    return hold_id


def release(conn: Connection, hold_id: int, on: date) -> None:
    conn.execute(text("UPDATE hold SET released_on = :o WHERE id = :h"), {"o": on, "h": hold_id})
