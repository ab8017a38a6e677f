"""The named run locks in the store (`run_lock`): one row per lock, its primary key refusing a second holder."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from recouvrement.db.values import as_utc


def lock_holder(conn: Connection, name: str) -> tuple[str, datetime] | None:
    """(holder, acquired_at as aware UTC) of the lock, or None when nobody holds it."""
    row = conn.execute(text("SELECT holder, acquired_at FROM run_lock WHERE name = :n"), {"n": name}).first()
    return (row[0], as_utc(row[1])) if row else None


def insert_lock(conn: Connection, name: str, holder: str, at: datetime) -> None:
    """Take the lock; IntegrityError when someone holds it."""
    conn.execute(text("INSERT INTO run_lock (name, holder, acquired_at) VALUES (:n, :h, :t)"),
                 {"n": name, "h": holder, "t": at})


def delete_lock(conn: Connection, name: str, holder: str) -> bool:
    """Drop the lock if `holder` holds it; whether it did."""
    return conn.execute(text("DELETE FROM run_lock WHERE name = :n AND holder = :h"),
                        {"n": name, "h": holder}).rowcount == 1
