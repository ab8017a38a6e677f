"""The store of letters as the web app shows them: the letters waiting for a person's approval, one letter's
files, approvals. Every date a `datetime.date`, every time naive UTC."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import Connection, text

from recouvrement.db.values import as_date, as_naive_utc

_COLUMNS = ("SELECT l.letter_id, l.patient_id, l.kind, l.level, l.channel, l.as_of, l.amount_cents, l.status, l.folder, "
            "l.file, l.sha256, a.approved_by, a.approved_at FROM letter l "
            "LEFT JOIN letter_approval a ON a.letter_id = l.letter_id")


@dataclass(frozen=True)
class LetterRow:
    letter_id: str
    patient_id: str
    kind: str
    level: int
    channel: str
    as_of: date
    amount_cents: int
    status: str
    folder: str | None
    file: str
    sha256: str
    approved_by: str | None
    approved_at: datetime | None


def _row(r) -> LetterRow:
    return LetterRow(r[0], r[1], r[2], int(r[3]), r[4], as_date(r[5]), int(r[6]), r[7], r[8], r[9], r[10], r[11],
                     as_naive_utc(r[12]) if r[12] is not None else None)


def letter(conn: Connection, letter_id: str) -> LetterRow | None:
    found = conn.execute(text(_COLUMNS + " WHERE l.letter_id = :l"), {"l": letter_id}).first()
    return None if found is None else _row(found)


def letters_to_approve(conn: Connection, since: date, limit: int = 200) -> list[LetterRow]:
    """Letters made since `since` that nobody approved yet, newest day first, then by patient."""
    rows = conn.execute(text(_COLUMNS + " WHERE a.letter_id IS NULL AND l.as_of >= :s ORDER BY l.as_of DESC, "
                                        "l.patient_id LIMIT :n"), {"s": since, "n": limit})
    return [_row(r) for r in rows]


def recorded_digests(conn: Connection, letter_id: str, patient_id: str) -> dict[str, str]:
    """file name -> SHA-256 of each file the reminder run recorded for this letter in the audit trail."""
    rows = conn.execute(text("SELECT payload FROM audit_event WHERE kind = 'reminder' AND patient_id = :p"),
                        {"p": patient_id}).scalars()
    for payload in rows:
        event = json.loads(payload) if isinstance(payload, str) else payload
        if event.get("letter_id") == letter_id:
            return {Path(f["path"]).name: f["sha256"] for f in event.get("files") or []}
    return {}


def record_approval(conn: Connection, letter_id: str, by: str, at: datetime) -> bool:
    """Approve a letter; False when it was approved already (by someone else, meanwhile)."""
    if conn.execute(text("SELECT 1 FROM letter_approval WHERE letter_id = :l"), {"l": letter_id}).first():
        return False
    conn.execute(text("INSERT INTO letter_approval (letter_id, approved_by, approved_at) VALUES (:l, :b, :t)"),
                 {"l": letter_id, "b": by, "t": at.replace(tzinfo=None)})
    return True


@dataclass(frozen=True)
class BatchRow:
    name: str
    as_of: date
    folder: str
    letters: int
    sha256: str | None


def print_batches(conn: Connection, days: list[date]) -> list[BatchRow]:
    """The print batches written for those days (the day's postal letters in one PDF)."""
    if not days:
        return []
    marks = ", ".join(f":d{k}" for k in range(len(days)))
    rows = conn.execute(text(f"SELECT name, as_of, folder, letters, sha256 FROM print_batch WHERE as_of IN ({marks}) "
                             "AND written_at IS NOT NULL ORDER BY as_of DESC, name"),
                        {f"d{k}": d for k, d in enumerate(days)})
    return [BatchRow(r[0], as_date(r[1]), r[2], int(r[3]), r[4]) for r in rows]


def print_batch(conn: Connection, name: str) -> BatchRow | None:
    r = conn.execute(text("SELECT name, as_of, folder, letters, sha256 FROM print_batch WHERE name = :n "
                          "AND written_at IS NOT NULL"), {"n": name}).first()
    return None if r is None else BatchRow(r[0], as_date(r[1]), r[2], int(r[3]), r[4])
