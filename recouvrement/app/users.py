"""Web app accounts: users with one role, argon2 password hashes, server-side sessions, login throttling.

The password is never stored, only its argon2id hash; the session cookie carries a random token and the
table only its SHA-256, so a copy of the database opens no session. A name with too many refused logins
in the last minutes is refused even with the right password until the window has passed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, Engine, text

from recouvrement.audit import append_event
from recouvrement.errors import RecouvrementError

ROLES = ("accountant", "staff", "auditor")
ROLE_LABELS = {"accountant": "comptable", "staff": "accueil", "auditor": "auditeur"}
MIN_PASSWORD = 12
THROTTLE_FAILURES = 5                      # refused logins of one name within the window ...
THROTTLE_WINDOW = timedelta(minutes=15)    # ... lock that name out until the window has passed
SESSION_IDLE = timedelta(hours=2)
SESSION_MAX = timedelta(hours=12)
_hasher = PasswordHasher()
# Verified when the name is unknown, so an unknown name costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-password-of-anyone")


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str


@dataclass(frozen=True)
class WebSessionInfo:
    user: User
    csrf_token: str


class LoginRefused(RecouvrementError):
    """Wrong name or password (never says which)."""


class LoginThrottled(RecouvrementError):
    def __init__(self, minutes: int) -> None:
        self.minutes = minutes
        super().__init__(f"trop de tentatives de connexion pour ce compte : réessayez dans {minutes} min")


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(timezone.utc)).replace(tzinfo=None, microsecond=0)


def _naive_utc(value) -> datetime:
    """A stored time as naive UTC, whatever the driver returned (SQLite text, PostgreSQL aware datetimes)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def _utc(at: datetime) -> datetime:
    """A naive UTC time (as the session columns hold it) as the audit trail stamps it."""
    return at.replace(tzinfo=timezone.utc)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        raise RecouvrementError("le nom d'utilisateur doit faire 1 à 64 caractères, sans espace", field="NAME")
    return name


def add_user(engine: Engine, name: str, role: str, password: str, *, now: datetime | None = None,
             actor: str | None = None) -> User:
    """Create a user (audited); refuses a known name, an unknown role, a password under 12 characters."""
    name = _check_name(name)
    if role not in ROLES:
        raise RecouvrementError(f"rôle inconnu {role!r} (rôles : {', '.join(ROLES)})", field="--role")
    if len(password) < MIN_PASSWORD:
        raise RecouvrementError(f"le mot de passe doit faire au moins {MIN_PASSWORD} caractères", field="password")
    at = _now(now)
    with engine.begin() as conn:
        if conn.execute(text("SELECT 1 FROM web_user WHERE name = :n"), {"n": name}).first():
            raise RecouvrementError(f"l'utilisateur {name} existe déjà", field="NAME")
        user_id = conn.execute(text("INSERT INTO web_user (name, role, password_hash, created_at, disabled) "
                                    "VALUES (:n, :r, :h, :t, FALSE) RETURNING id"),
                               {"n": name, "r": role, "h": _hasher.hash(password), "t": at}).scalar_one()
        append_event(conn, "user_added", {"user": name, "role": role}, at=_utc(at), actor=actor)
    return User(user_id, name, role)


def _recent_failures(conn: Connection, name: str, at: datetime) -> list[datetime]:
    rows = conn.execute(text("SELECT at FROM login_failure WHERE name = :n AND at > :since ORDER BY at"),
                        {"n": name, "since": at - THROTTLE_WINDOW}).scalars()
    return [_naive_utc(r) for r in rows]


def authenticate(engine: Engine, name: str, password: str, *, now: datetime | None = None) -> User:
    """The user if the password is right and the name not throttled; LoginThrottled / LoginRefused else."""
    at = _now(now)
    name = (name or "").strip()[:64]
    with engine.begin() as conn:
        failures = _recent_failures(conn, name, at)
        if len(failures) >= THROTTLE_FAILURES:
            wait = failures[-THROTTLE_FAILURES] + THROTTLE_WINDOW - at
            raise LoginThrottled(max(1, -(-int(wait.total_seconds()) // 60)))
        row = conn.execute(text("SELECT id, name, role, password_hash, disabled FROM web_user WHERE name = :n"),
                           {"n": name}).first()
        if _password_matches(row.password_hash if row else _DUMMY_HASH, password) and row and not row.disabled:
            conn.execute(text("DELETE FROM login_failure WHERE name = :n"), {"n": name})
            if _hasher.check_needs_rehash(row.password_hash):
                conn.execute(text("UPDATE web_user SET password_hash = :h WHERE id = :i"),
                             {"h": _hasher.hash(password), "i": row.id})
            return User(row.id, row.name, row.role)
        conn.execute(text("INSERT INTO login_failure (name, at) VALUES (:n, :t)"), {"n": name, "t": at})
        conn.execute(text("DELETE FROM login_failure WHERE at < :old"), {"old": at - 4 * THROTTLE_WINDOW})
    raise LoginRefused("identifiant ou mot de passe incorrect")


def _password_matches(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def open_session(engine: Engine, user: User, *, now: datetime | None = None) -> str:
    """A new session for the user; returns the token for the cookie (only its hash is stored)."""
    at = _now(now)
    token = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM web_session WHERE expires_at < :t"), {"t": at})
        conn.execute(text("INSERT INTO web_session (token_hash, user_id, csrf_token, created_at, last_seen, "
                          "expires_at) VALUES (:h, :u, :c, :t, :t, :e)"),
                     {"h": _token_hash(token), "u": user.id, "c": secrets.token_urlsafe(32), "t": at,
                      "e": at + SESSION_MAX})
        append_event(conn, "login", {"user": user.name, "role": user.role}, at=_utc(at))
    return token


def session_of(engine: Engine, token: str | None, *, now: datetime | None = None) -> WebSessionInfo | None:
    """The live session a cookie token opens (its idle time refreshed), or None."""
    if not token or len(token) > 100:
        return None
    at = _now(now)
    with engine.begin() as conn:
        row = conn.execute(text("SELECT s.token_hash, s.csrf_token, s.last_seen, s.expires_at, u.id, u.name, u.role, "
                                "u.disabled FROM web_session s JOIN web_user u ON u.id = s.user_id "
                                "WHERE s.token_hash = :h"), {"h": _token_hash(token)}).first()
        if row is None:
            return None
        last_seen, expires = _naive_utc(row.last_seen), _naive_utc(row.expires_at)
        if row.disabled or at >= expires or at - last_seen > SESSION_IDLE:
            conn.execute(text("DELETE FROM web_session WHERE token_hash = :h"), {"h": row.token_hash})
            return None
        if at - last_seen > timedelta(minutes=1):
            conn.execute(text("UPDATE web_session SET last_seen = :t WHERE token_hash = :h"),
                         {"t": at, "h": row.token_hash})
    return WebSessionInfo(User(row.id, row.name, row.role), row.csrf_token)


def close_session(engine: Engine, token: str | None) -> None:
    if token:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM web_session WHERE token_hash = :h"), {"h": _token_hash(token)})


def same_token(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token."""
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())
