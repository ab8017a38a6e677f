"""The store of the desk's actions taken in the web app: promises to pay, hold review dates, and the few reads
the patient page's forms need (is the patient known, whose invoice is it, is a dispute already open on it).

Every date returned is a `datetime.date`.
"""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import Connection, text

from recouvrement.core.promises import Promise
from recouvrement.db.values import as_date


# -- reads ---------------------------------------------------------------------------------------------

def patient_exists(conn: Connection, patient_id: str) -> bool:
    return conn.execute(text("SELECT 1 FROM patient WHERE patient_id = :p"), {"p": patient_id}).first() is not None


def invoice_patient(conn: Connection, invoice_number: str) -> str | None:
    """The patient an invoice belongs to, None for an unknown invoice."""
    return conn.execute(text("SELECT patient_id FROM invoice WHERE invoice_number = :i"),
                        {"i": invoice_number}).scalar_one_or_none()


def dispute_open_on(conn: Connection, invoice_number: str) -> bool:
    """Whether a dispute not yet closed concerns this invoice."""
    return conn.execute(text("SELECT 1 FROM dispute WHERE invoice_number = :i AND status <> 'closed'"),
                        {"i": invoice_number}).first() is not None


def promises_of(conn: Connection, patient_id: str) -> list[Promise]:
    """Every promise the patient made, newest first."""
    rows = conn.execute(text("SELECT id, made_on, pay_by, amount_cents, cancelled_on FROM promise "
                             "WHERE patient_id = :p ORDER BY made_on DESC, id DESC"), {"p": patient_id})
    return [Promise(as_date(r[1]), as_date(r[2]), None if r[3] is None else int(r[3]), as_date(r[4]), r[0])
            for r in rows]


def promised_until(conn: Connection, as_of: date) -> dict[str, date]:
    """patient -> the last day a promise in force on as_of holds their reminders (made by then, not past,
    not cancelled by then)."""
    rows = conn.execute(text("SELECT patient_id, MAX(pay_by) FROM promise WHERE made_on <= :d AND pay_by >= :d "
                             "AND (cancelled_on IS NULL OR cancelled_on > :d) GROUP BY patient_id"), {"d": as_of})
    return {patient: as_date(day) for patient, day in rows}


def hold_reviews(conn: Connection, patient_id: str | None = None) -> dict[int, date]:
    """hold id -> its review date (of one patient's holds, or of all)."""
    sql, params = "SELECT r.hold_id, r.review_on FROM hold_review r JOIN hold h ON h.id = r.hold_id", {}
    if patient_id is not None:
        sql, params = sql + " WHERE h.patient_id = :p", {"p": patient_id}
    return {int(h): as_date(d) for h, d in conn.execute(text(sql), params)}


def holds_to_review(conn: Connection, as_of: date) -> list[tuple[str, int, date]]:
    """(patient, hold id, review date) of holds still in force whose review date has come by as_of, oldest first."""
    rows = conn.execute(text("SELECT h.patient_id, h.id, r.review_on FROM hold_review r JOIN hold h ON h.id = r.hold_id "
                             "WHERE h.released_on IS NULL AND r.review_on <= :d ORDER BY r.review_on, h.id"),
                        {"d": as_of})
    return [(p, int(h), as_date(d)) for p, h, d in rows]


# -- writes ---------------------------------------------------------------------------------------------

def insert_promise(conn: Connection, patient_id: str, made_on: date, pay_by: date, amount_cents: int | None) -> int:
    return conn.execute(text("INSERT INTO promise (patient_id, made_on, pay_by, amount_cents) "
                             "VALUES (:p, :m, :b, :a) RETURNING id"),
                        {"p": patient_id, "m": made_on, "b": pay_by, "a": amount_cents}).scalar_one()


def set_hold_review(conn: Connection, hold_id: int, review_on: date) -> None:
    """Set (or move) a hold's review date."""
    conn.execute(text("DELETE FROM hold_review WHERE hold_id = :h"), {"h": hold_id})
    conn.execute(text("INSERT INTO hold_review (hold_id, review_on) VALUES (:h, :r)"), {"h": hold_id, "r": review_on})


def hold_in_force_of(conn: Connection, patient_id: str) -> int | None:
    """The id of the patient's hold not yet released, if any."""
    return conn.execute(text("SELECT id FROM hold WHERE patient_id = :p AND released_on IS NULL"),
                        {"p": patient_id}).scalar_one_or_none()


def patient_contacts(conn: Connection, patient_ids: list[str]) -> dict[str, tuple[str, str, str]]:
    """patient -> (last name, first name, phone), for the patients named."""
    if not patient_ids:
        return {}
    marks = ", ".join(f":p{k}" for k in range(len(patient_ids)))
    rows = conn.execute(text(f"SELECT patient_id, last_name, first_name, phone FROM patient WHERE patient_id IN ({marks})"),
                        {f"p{k}": p for k, p in enumerate(patient_ids)})
    return {r[0]: (r[1] or "", r[2] or "", r[3] or "") for r in rows}


def calls_on(conn: Connection, day: date) -> dict[str, str]:
    """patient -> the last outcome of a call recorded for that day (the audit trail is the call log)."""
    rows = conn.execute(text("SELECT patient_id, payload FROM audit_event WHERE kind = 'call' ORDER BY seq"))
    found = {}
    for patient, payload in rows:
        event = json.loads(payload) if isinstance(payload, str) else payload
        if event.get("on") == day.isoformat():
            found[patient] = event.get("outcome")
    return found
