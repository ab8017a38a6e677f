"""The one error type a user sees: a message naming the file, line and field at fault."""

from __future__ import annotations


class RecouvrementError(Exception):
    """A problem the user can fix (bad input, bad settings); printed without a traceback."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.file, self.line, self.field = file, line, field
        where = ":".join(str(p) for p in (file, line) if p is not None)
        if field:
            where = f"{where} [{field}]" if where else f"[{field}]"
        super().__init__(f"{where}: {message}" if where else message)
