"""The one error type a user sees: a message naming the file, line and field at fault."""

from __future__ import annotations

import threading
from typing import Callable, overload

# How a message is made safe to show (text, file_name) -> text: core.privacy's redact, handed in by
# core.privacy itself when it is imported (`scrub_messages_with`); this leaf knows no detector.
Scrub = Callable[[str, bool], str]
_scrub: Scrub | None = None
_redacting = threading.local()


def scrub_messages_with(scrub: Scrub | None) -> None:
    """Every message and file name an error is given goes through `scrub` from now on (None: unchanged). The
    places that show messages (the CLI, the web app, the nightly run's records) scrub what they show as well."""
    global _scrub
    _scrub = scrub


@overload
def _redacted(text: str, *, file_name: bool = False) -> str: ...
@overload
def _redacted(text: str | None, *, file_name: bool = False) -> str | None: ...
def _redacted(text: str | None, *, file_name: bool = False) -> str | None:
    """The text with medical data described, not echoed (the scrub core.privacy handed in); so a cell quoted
    by a parser (a NIR, a care word) never reaches the screen, whoever shows the error."""
    if not text or _scrub is None or getattr(_redacting, "active", False):
        return text
    _redacting.active = True  # the scanner's own errors (an unreadable lexicon) must not loop back here
    try:
        return _scrub(str(text), file_name)
    finally:
        _redacting.active = False


class RecouvrementError(Exception):
    """A problem the user can fix (bad input, bad settings); printed without a traceback."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        message, file = _redacted(message), _redacted(file, file_name=True)
        self.message, self.file, self.line, self.field = message, file, line, field
        super().__init__(self.located())

    def __reduce__(self):
        """Pickled as it is (a file read in a child process, app.imports.ReadAhead): its parts, not its shown text
        made into a new message (Exception's way), nor scrubbed again."""
        return _rebuilt, (type(self), self.__dict__)

    def located(self, field: str | None = None) -> str:
        """The message after its file, line and field (`field` shown instead of the domain's name: the CLI
        shows its option)."""
        field = field or self.field
        where = ":".join(str(p) for p in (self.file, self.line) if p is not None)
        if field:
            where = f"{where} [{field}]" if where else f"[{field}]"
        return f"{where}: {self.message}" if where else self.message


def _rebuilt(kind: type[RecouvrementError], state: dict) -> RecouvrementError:
    error = kind.__new__(kind)
    error.__dict__.update(state)
    Exception.__init__(error, error.located())
    return error
