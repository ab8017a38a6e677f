"""The one error type a user sees: a message naming the file, line and field at fault."""

from __future__ import annotations

import threading
from typing import overload

_redacting = threading.local()


@overload
def _redacted(text: str, *, file_name: bool = False) -> str: ...
@overload
def _redacted(text: str | None, *, file_name: bool = False) -> str | None: ...
def _redacted(text: str | None, *, file_name: bool = False) -> str | None:
    """The text with medical data described, not echoed (core.privacy.redact); every message a user
    reads goes through here, so a cell quoted by a parser (a NIR, a care word) never reaches the screen."""
    if not text or getattr(_redacting, "active", False):
        return text
    _redacting.active = True  # the scanner's own errors (an unreadable lexicon) must not loop back here
    try:
        from recouvrement.core import privacy
        try:
            return privacy.redact(str(text), file_name=file_name)
        except RecouvrementError:  # no lexicon: codes and NIRs are still masked
            return privacy.redact(str(text), privacy.build_lexicon([]), file_name=file_name)
    finally:
        _redacting.active = False


class RecouvrementError(Exception):
    """A problem the user can fix (bad input, bad settings); printed without a traceback."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        message, file = _redacted(message), _redacted(file, file_name=True)
        self.message, self.file, self.line, self.field = message, file, line, field
        super().__init__(self.located())

    def located(self, field: str | None = None) -> str:
        """The message after its file, line and field (`field` shown instead of the domain's name: the CLI
        shows its option)."""
        field = field or self.field
        where = ":".join(str(p) for p in (self.file, self.line) if p is not None)
        if field:
            where = f"{where} [{field}]" if where else f"[{field}]"
        return f"{where}: {self.message}" if where else self.message
