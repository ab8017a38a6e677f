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
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine

from recouvrement.audit import append_event
from recouvrement.db import users as stored
from recouvrement.errors import RecouvrementError

ROLES = ("accountant", "staff", "auditor")
ROLE_LABELS = {"accountant": "comptable", "staff": "accueil", "auditor": "auditeur"}
MIN_PASSWORD = 12
THROTTLE_FAILURES = 5                      # refused logins of one name within the window ...
THROTTLE_WINDOW = timedelta(minutes=15)    # ... lock that name out until the window has passed
SESSION_IDLE = timedelta(hours=2)
SESSION_MAX = timedelta(hours=12)
_hasher = PasswordHasher()


@cache
def dummy_hash() -> str:
    """Verified when the name is unknown, so an unknown name costs the same time as a wrong password. Made once,
    when the web app is made (create_app) or first needed: not on import, which every command paid (0.13 s)."""
    return _hasher.hash("not-a-password-of-anyone")


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
        raise RecouvrementError(f"rôle inconnu {role!r} (rôles : {', '.join(ROLES)})", field="role")
    if len(password) < MIN_PASSWORD:
        raise RecouvrementError(f"le mot de passe doit faire au moins {MIN_PASSWORD} caractères", field="password")
    at = _now(now)
    with engine.begin() as conn:
        if stored.user_exists(conn, name):
            raise RecouvrementError(f"l'utilisateur {name} existe déjà", field="NAME")
        user_id = stored.insert_user(conn, name, role, _hasher.hash(password), at)
        append_event(conn, "user_added", {"user": name, "role": role}, at=_utc(at), actor=actor)
    return User(user_id, name, role)


def authenticate(engine: Engine, name: str, password: str, *, now: datetime | None = None) -> User:
    """The user if the password is right and the name not throttled; LoginThrottled / LoginRefused else."""
    at = _now(now)
    name = (name or "").strip()[:64]
    with engine.begin() as conn:
        failures = stored.login_failures_since(conn, name, at - THROTTLE_WINDOW)
        if len(failures) >= THROTTLE_FAILURES:
            wait = failures[-THROTTLE_FAILURES] + THROTTLE_WINDOW - at
            raise LoginThrottled(max(1, -(-int(wait.total_seconds()) // 60)))
        row = stored.user_named(conn, name)
        if _password_matches(row.password_hash if row else dummy_hash(), password) and row and not row.disabled:
            stored.clear_login_failures(conn, name)
            if _hasher.check_needs_rehash(row.password_hash):
                stored.set_password_hash(conn, row.id, _hasher.hash(password))
            return User(row.id, row.name, row.role)
        stored.record_login_failure(conn, name, at, forget_before=at - 4 * THROTTLE_WINDOW)
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
        stored.insert_session(conn, _token_hash(token), user.id, secrets.token_urlsafe(32), at, at + SESSION_MAX)
        append_event(conn, "login", {"user": user.name, "role": user.role}, at=_utc(at))
    return token


def session_of(engine: Engine, token: str | None, *, now: datetime | None = None) -> WebSessionInfo | None:
    """The live session a cookie token opens (its idle time refreshed), or None."""
    if not token or len(token) > 100:
        return None
    at = _now(now)
    with engine.begin() as conn:
        row = stored.session_by_token_hash(conn, _token_hash(token))
        if row is None:
            return None
        if row.disabled or at >= row.expires_at or at - row.last_seen > SESSION_IDLE:
            stored.delete_session(conn, row.token_hash)
            return None
        if at - row.last_seen > timedelta(minutes=1):
            stored.touch_session(conn, row.token_hash, at)
    return WebSessionInfo(User(row.user_id, row.name, row.role), row.csrf_token)


def close_session(engine: Engine, token: str | None) -> None:
    if token:
        with engine.begin() as conn:
            stored.delete_session(conn, _token_hash(token))


def same_token(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token."""
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())
