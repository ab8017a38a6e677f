"""The ladder's phone step in the store: the calls the nights listed, their invoices, their outcomes, and the
phone numbers found wrong."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, text

from recouvrement.db.values import as_date


@dataclass(frozen=True)
class StoredCall:
    call_id: str
    patient_id: str
    level: int
    listed_on: date
    amount_cents: int
    script: str
    status: str               # open | reached | promise | dispute | wrong_number | expired | cancelled
    closed_on: date | None
    invoice_numbers: tuple[str, ...]


_COLUMNS = "call_id, patient_id, level, listed_on, amount_cents, script, status, closed_on"


def _calls(conn: Connection, where: str, values: dict) -> list[StoredCall]:
    rows = conn.execute(text(f"SELECT {_COLUMNS} FROM call_task WHERE {where} ORDER BY listed_on, call_id"),
                        values).all()
    if not rows:
        return []
    ids = [r[0] for r in rows]
    marks = ", ".join(f":c{k}" for k in range(len(ids)))
    items: dict[str, list[str]] = {}
    for call_id, number in conn.execute(text(f"SELECT call_id, invoice_number FROM call_task_item WHERE call_id IN "
                                             f"({marks}) ORDER BY call_id, invoice_number"),
                                        {f"c{k}": c for k, c in enumerate(ids)}):
        items.setdefault(call_id, []).append(number)
    return [StoredCall(r[0], r[1], int(r[2]), as_date(r[3]), int(r[4]), r[5], r[6],
                       as_date(r[7]) if r[7] is not None else None, tuple(items.get(r[0], ())))
            for r in rows]


def calls_up_to(conn: Connection, as_of: date) -> list[StoredCall]:
    """Every call listed on or before `as_of`, oldest first (the ladder's history of phone steps)."""
    return _calls(conn, "listed_on <= :d", {"d": as_of})


def open_calls(conn: Connection) -> list[StoredCall]:
    """The calls still to make (status open), oldest list first."""
    return _calls(conn, "status = 'open'", {})


def get_call(conn: Connection, call_id: str) -> StoredCall | None:
    found = _calls(conn, "call_id = :c", {"c": call_id})
    return found[0] if found else None


def call_ids_of_day(conn: Connection, as_of: date) -> set[str]:
    return set(conn.execute(text("SELECT call_id FROM call_task WHERE listed_on = :d"), {"d": as_of}).scalars())


def insert_call(conn: Connection, call: StoredCall, items: list[tuple[str, int, int]]) -> None:
    """One listed call and its invoices: `items` as (invoice_number, amount_cents, level)."""
    conn.execute(text("INSERT INTO call_task (call_id, patient_id, level, listed_on, amount_cents, script, status) "
                      "VALUES (:c, :p, :l, :d, :a, :s, 'open')"),
                 {"c": call.call_id, "p": call.patient_id, "l": call.level, "d": call.listed_on,
                  "a": call.amount_cents, "s": call.script})
    conn.execute(text("INSERT INTO call_task_item (call_id, invoice_number, amount_cents, level) "
                      "VALUES (:c, :i, :a, :l)"),
                 [{"c": call.call_id, "i": number, "a": int(cents), "l": level} for number, cents, level in items])


def close_call(conn: Connection, call_id: str, status: str, on: date) -> bool:
    """Give an open call its outcome; False when it was not open any more (someone else closed it)."""
    return bool(conn.execute(text("UPDATE call_task SET status = :s, closed_on = :d WHERE call_id = :c "
                                  "AND status = 'open'"), {"s": status, "d": on, "c": call_id}).rowcount)


def mark_phone_unusable(conn: Connection, patient_id: str, phone: str, on: date) -> None:
    exists = conn.execute(text("SELECT 1 FROM unusable_phone WHERE patient_id = :p AND phone = :n"),
                          {"p": patient_id, "n": phone}).first()
    if not exists:
        conn.execute(text("INSERT INTO unusable_phone (patient_id, phone, marked_on) VALUES (:p, :n, :d)"),
                     {"p": patient_id, "n": phone, "d": on})


def usable_phones(conn: Connection) -> dict[str, str]:
    """patient -> their phone number, for every patient with one not found wrong on a call."""
    rows = conn.execute(text("SELECT p.patient_id, p.phone FROM patient p WHERE p.phone IS NOT NULL AND p.phone <> '' "
                             "AND NOT EXISTS (SELECT 1 FROM unusable_phone u WHERE u.patient_id = p.patient_id "
                             "AND u.phone = p.phone)"))
    return {patient: phone for patient, phone in rows if phone.strip()}


def wrong_numbers(conn: Connection) -> set[tuple[str, str]]:
    """(patient, phone) of every number found wrong on a call (the few usable_phones leaves out)."""
    return {(patient, phone) for patient, phone in conn.execute(text("SELECT patient_id, phone FROM unusable_phone"))}


@dataclass(frozen=True)
class CallRow:
    """One line of the call list: the call and whom to phone (name and number; nothing else of the patient)."""

    call_id: str
    patient_id: str
    last_name: str
    first_name: str
    phone: str
    level: int
    amount_cents: int
    listed_on: date
    script: str
    invoice_numbers: tuple[str, ...]


def open_call_rows(conn: Connection) -> list[CallRow]:
    """The open calls with the patient's name and phone number, oldest list first, then by name."""
    calls = open_calls(conn)
    if not calls:
        return []
    ids = sorted({c.patient_id for c in calls})
    marks = ", ".join(f":p{k}" for k in range(len(ids)))
    people = {r[0]: (r[1] or "", r[2] or "", r[3] or "") for r in conn.execute(
        text(f"SELECT patient_id, last_name, first_name, phone FROM patient WHERE patient_id IN ({marks})"),
        {f"p{k}": p for k, p in enumerate(ids)})}
    rows = [CallRow(c.call_id, c.patient_id, *people.get(c.patient_id, ("", "", "")), c.level, c.amount_cents,
                    c.listed_on, c.script, c.invoice_numbers) for c in calls]
    return sorted(rows, key=lambda r: (r.listed_on, r.last_name, r.first_name, r.call_id))
