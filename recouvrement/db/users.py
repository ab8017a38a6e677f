"""Web app accounts in the store: users, server-side sessions (by token hash), refused logins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from recouvrement.db.values import as_naive_utc


@dataclass(frozen=True)
class StoredUser:
    id: int
    name: str
    role: str
    password_hash: str
    disabled: bool


@dataclass(frozen=True)
class StoredSession:
    token_hash: str
    csrf_token: str
    last_seen: datetime          # naive UTC
    expires_at: datetime         # naive UTC
    user_id: int
    name: str
    role: str
    disabled: bool


def user_exists(conn: Connection, name: str) -> bool:
    return conn.execute(text("SELECT 1 FROM web_user WHERE name = :n"), {"n": name}).first() is not None


def insert_user(conn: Connection, name: str, role: str, password_hash: str, at: datetime) -> int:
    """A new enabled user; returns its id."""
    return conn.execute(text("INSERT INTO web_user (name, role, password_hash, created_at, disabled) "
                             "VALUES (:n, :r, :h, :t, FALSE) RETURNING id"),
                        {"n": name, "r": role, "h": password_hash, "t": at}).scalar_one()


def user_named(conn: Connection, name: str) -> StoredUser | None:
    row = conn.execute(text("SELECT id, name, role, password_hash, disabled FROM web_user WHERE name = :n"),
                       {"n": name}).first()
    return None if row is None else StoredUser(row.id, row.name, row.role, row.password_hash, bool(row.disabled))


def set_password_hash(conn: Connection, user_id: int, password_hash: str) -> None:
    conn.execute(text("UPDATE web_user SET password_hash = :h WHERE id = :i"), {"h": password_hash, "i": user_id})


def login_failures_since(conn: Connection, name: str, since: datetime) -> list[datetime]:
    """The refused logins of `name` after `since`, oldest first (naive UTC)."""
    rows = conn.execute(text("SELECT at FROM login_failure WHERE name = :n AND at > :since ORDER BY at"),
                        {"n": name, "since": since}).scalars()
    return [as_naive_utc(r) for r in rows]


def clear_login_failures(conn: Connection, name: str) -> None:
    conn.execute(text("DELETE FROM login_failure WHERE name = :n"), {"n": name})


def record_login_failure(conn: Connection, name: str, at: datetime, forget_before: datetime) -> None:
    """One more refused login of `name`; refused logins older than `forget_before` are forgotten."""
    conn.execute(text("INSERT INTO login_failure (name, at) VALUES (:n, :t)"), {"n": name, "t": at})
    conn.execute(text("DELETE FROM login_failure WHERE at < :old"), {"old": forget_before})


def insert_session(conn: Connection, token_hash: str, user_id: int, csrf_token: str, at: datetime,
                   expires_at: datetime) -> None:
    """A new session (expired ones are deleted first)."""
    conn.execute(text("DELETE FROM web_session WHERE expires_at < :t"), {"t": at})
    conn.execute(text("INSERT INTO web_session (token_hash, user_id, csrf_token, created_at, last_seen, "
                      "expires_at) VALUES (:h, :u, :c, :t, :t, :e)"),
                 {"h": token_hash, "u": user_id, "c": csrf_token, "t": at, "e": expires_at})


def session_by_token_hash(conn: Connection, token_hash: str) -> StoredSession | None:
    row = conn.execute(text("SELECT s.token_hash, s.csrf_token, s.last_seen, s.expires_at, u.id, u.name, u.role, "
                            "u.disabled FROM web_session s JOIN web_user u ON u.id = s.user_id "
                            "WHERE s.token_hash = :h"), {"h": token_hash}).first()
    if row is None:
        return None
    return StoredSession(row.token_hash, row.csrf_token, as_naive_utc(row.last_seen), as_naive_utc(row.expires_at),
                         row.id, row.name, row.role, bool(row.disabled))


def delete_session(conn: Connection, token_hash: str) -> None:
    conn.execute(text("DELETE FROM web_session WHERE token_hash = :h"), {"h": token_hash})


def touch_session(conn: Connection, token_hash: str, at: datetime) -> None:
    conn.execute(text("UPDATE web_session SET last_seen = :t WHERE token_hash = :h"), {"t": at, "h": token_hash})
