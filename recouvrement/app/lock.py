"""A named lock in the database, so that two nightly runs never overlap (on one host or several).

Taking the lock is an INSERT into `run_lock`: the primary key makes a second INSERT fail, on
SQLite and PostgreSQL alike, whatever process or host tries. Releasing is a DELETE by the holder.
A holder killed without releasing leaves its row: the row is *stale*, and may be taken over, when
it is older than `stale_after` AND its holder ("hostname:pid") runs on this host with a pid that is
no longer alive. A holder on another host is never presumed dead: a person releases it
(`recouvrement unlock`) after checking that host.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from recouvrement.db.run_lock import (STALE_AFTER, delete_lock, insert_lock, is_stale, lock_holder,  # noqa: F401
                                       pid_alive, this_holder)
from recouvrement.db.session import writing
from recouvrement.db.values import as_utc
from recouvrement.audit import append_event
from recouvrement.errors import RecouvrementError

NIGHTLY = "nightly"
POLL_SECONDS = 0.5


class LockHeld(RecouvrementError):
    """Another process holds the lock; the caller waited as long as it was allowed to."""

    def __init__(self, name: str, holder: str, since: datetime | None) -> None:
        self.name, self.holder, self.since = name, holder, since
        when = f" depuis le {since:%d/%m/%Y %H:%M} UTC" if since else ""
        super().__init__(f"un autre passage {name} est en cours ({holder}{when}) ; réessayer plus tard", field="lock")


@dataclass(frozen=True)
class Holding:
    name: str
    holder: str
    took_over: str | None = None     # the stale holder this lock was taken from, if any


def _utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def current_holder(engine: Engine, name: str = NIGHTLY) -> tuple[str, datetime] | None:
    with engine.connect() as conn:
        return lock_holder(conn, name)


def try_acquire(engine: Engine, name: str = NIGHTLY, holder: str | None = None, *,
                stale_after: timedelta = STALE_AFTER, now: datetime | None = None) -> Holding | None:
    """One attempt: the lock, or None when someone alive holds it."""
    holder = holder or this_holder()
    now = as_utc(now) if now else _utc_now()
    try:
        with writing(engine) as conn:
            insert_lock(conn, name, holder, now)
        return Holding(name, holder)
    except IntegrityError:
        pass
    found = current_holder(engine, name)
    if found is None:                 # released between our INSERT and our SELECT: the caller tries again
        return None
    old, since = found
    if not is_stale(old, since, now, stale_after):
        return None
    return _take_over(engine, name, holder, old, since, now)


def _take_over(engine: Engine, name: str, holder: str, old: str, since: datetime, now: datetime) -> Holding | None:
    """Replace the stale row only if it is still the dead holder's: of two takers, one deletes it, one finds
    nothing (a dead "host:pid" never takes the lock again, so the holder alone identifies the row)."""
    with writing(engine) as conn:
        if not delete_lock(conn, name, old):
            return None
        insert_lock(conn, name, holder, now)
        append_event(conn, "lock_takeover", {"lock": name, "stale_holder": old, "since": since, "holder": holder})
    return Holding(name, holder, took_over=old)


def acquire(engine: Engine, name: str = NIGHTLY, *, wait: float = 0, holder: str | None = None,
            stale_after: timedelta = STALE_AFTER, sleep: Callable[[float], None] = time.sleep) -> Holding:
    """The lock, waiting up to `wait` seconds for it; LockHeld when it is still held."""
    deadline = time.monotonic() + max(wait, 0)
    while True:
        holding = try_acquire(engine, name, holder, stale_after=stale_after)
        if holding:
            return holding
        if time.monotonic() >= deadline:
            found = current_holder(engine, name)
            raise LockHeld(name, found[0] if found else "unknown", found[1] if found else None)
        sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0.01)))


def release(engine: Engine, holding: Holding) -> bool:
    with writing(engine) as conn:
        return delete_lock(conn, holding.name, holding.holder)


def force_release(engine: Engine, name: str = NIGHTLY) -> str | None:
    """A person's decision (the holder's host was checked): drop the lock, audited."""
    found = current_holder(engine, name)
    if found is None:
        return None
    with writing(engine) as conn:
        delete_lock(conn, name, found[0])
        append_event(conn, "lock_released_by_hand", {"lock": name, "holder": found[0], "since": found[1]})
    return found[0]


@contextmanager
def held(engine: Engine, name: str = NIGHTLY, *, wait: float = 0,
         stale_after: timedelta = STALE_AFTER) -> Iterator[Holding]:
    holding = acquire(engine, name, wait=wait, stale_after=stale_after)
    try:
        yield holding
    finally:
        release(engine, holding)
