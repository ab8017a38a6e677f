"""Who may do what in the web app: sessions from the cookie, roles, CSRF tokens, security headers.

Every page goes through `guarded`: no session → the login page; a role outside the page's → 403, before
anything is read or changed; a POST without the session's CSRF token → 403, before anything changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.datastructures import FormData
from starlette.requests import Request

from recouvrement.app.users import User, WebSessionInfo, same_token

SESSION_COOKIE = "recouvrement_session"
LOGIN_CSRF_COOKIE = "recouvrement_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

# What each role may open: accountant everything; staff the desk's pages; auditor read-only proofs.
ACCOUNTANT, STAFF, AUDITOR = "accountant", "staff", "auditor"
DESK = (ACCOUNTANT, STAFF)
BOOKS = (ACCOUNTANT,)
PROOFS = (ACCOUNTANT, AUDITOR)

OWN_POLICY = "content-security-policy"
# A letter's preview: its own inline styles, nothing else (no script, no form, no outside resource).
LETTER_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; "
                 "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


@dataclass
class Visit:
    """One request as a page handler sees it: who, their CSRF token, the form (for a POST)."""
    request: Request
    user: User
    csrf_token: str
    form: dict = field(default_factory=dict)
    lists: dict = field(default_factory=dict)      # every value of a field sent several times (checkboxes)

    @property
    def actor(self) -> str:
        return self.user.name


def csrf_ok(session: WebSessionInfo, request: Request, form: FormData | None) -> bool:
    given = request.headers.get(CSRF_HEADER) or (form.get(CSRF_FIELD) if form is not None else None)
    return same_token(session.csrf_token, given if isinstance(given, str) else None)


class SecurityHeaders:
    """ASGI middleware: the headers above on every response."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                own = message.get("headers", [])
                # A page may narrow or widen its own content policy (a stored letter's preview, styled inline).
                keep = {OWN_POLICY} if any(k.decode().lower() == OWN_POLICY for k, _ in own) else set()
                headers = [(k, v) for k, v in own if k.decode().lower() not in SECURITY_HEADERS or k.decode().lower() in keep]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k not in keep]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
