"""The nightly runs' history in the store."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, text

from recouvrement.db.values import as_date, as_utc


@dataclass(frozen=True)
class RunRow:
    id: int
    started_at: datetime         # aware UTC
    ended_at: datetime | None
    as_of: date
    status: str
    counts: dict
    errors: str


def fail_running_runs(conn: Connection, now: datetime) -> list[int]:
    """Runs still 'running' (left by a killed process) become 'failed', noted 'interrupted'; their ids."""
    ids = [r[0] for r in conn.execute(text("SELECT id FROM run WHERE status = 'running' ORDER BY id"))]
    for run_id in ids:
        conn.execute(text("UPDATE run SET status = 'failed', ended_at = :t, errors = CASE WHEN errors = '' "
                          "THEN 'interrupted' ELSE errors || '\ninterrupted' END WHERE id = :i"),
                     {"t": now, "i": run_id})
    return ids


def insert_run(conn: Connection, as_of: date, started_at: datetime) -> int:
    """A new 'running' run; its id (the caller holds the run lock: its run is the last one)."""
    conn.execute(text("INSERT INTO run (started_at, as_of, status, counts, errors) "
                      "VALUES (:t, :a, 'running', '{}', '')"), {"t": started_at, "a": as_of})
    return conn.execute(text("SELECT MAX(id) FROM run")).scalar_one()


def finish_run(conn: Connection, run_id: int, ended_at: datetime, status: str, counts: dict, errors: str) -> None:
    conn.execute(text("UPDATE run SET ended_at = :t, status = :s, counts = :c, errors = :e WHERE id = :i"),
                 {"t": ended_at, "s": status, "c": json.dumps(counts, sort_keys=True), "e": errors, "i": run_id})


def latest_runs(conn: Connection, limit: int = 20) -> list[RunRow]:
    """The last `limit` runs, newest first."""
    rows = conn.execute(text("SELECT id, started_at, ended_at, as_of, status, counts, errors FROM run "
                             "ORDER BY id DESC LIMIT :n"), {"n": limit}).all()
    return [RunRow(r[0], as_utc(r[1]), as_utc(r[2]) if r[2] else None, as_date(r[3]), r[4],
                   json.loads(r[5] or "{}"), r[6]) for r in rows]
