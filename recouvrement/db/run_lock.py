"""The named run locks in the store (`run_lock`): one row per lock, its primary key refusing a second holder."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import Connection, text

from recouvrement.db.values import as_utc

STALE_AFTER = timedelta(hours=6)


def this_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # it exists, run by another user
        return True
    return _not_a_zombie(pid)


def _not_a_zombie(pid: int) -> bool:
    """A killed child not yet reaped by its parent still answers kill(0); /proc tells the truth."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_stale(holder: str, acquired_at: datetime, now: datetime, stale_after: timedelta = STALE_AFTER,
             host: str | None = None, alive: Callable[[int], bool] = pid_alive) -> bool:
    """Old enough, held from this host, and its process is gone."""
    now, acquired_at = as_utc(now), as_utc(acquired_at)
    host = host or socket.gethostname()
    holder_host, _, pid = holder.rpartition(":")
    if holder_host != host or not pid.isdigit():
        return False
    return now - acquired_at >= stale_after and not alive(int(pid))


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
