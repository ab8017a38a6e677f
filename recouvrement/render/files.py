"""Writing files: atomically, and every CSV through the one safe writer (`render.csvfile`).

A CSV is built from whitelisted columns, its text cells made inert in a spreadsheet, its free-text
cells that come from outside (a bank transfer's label, a payer's name: they may carry what a patient
typed, "séance kiné") masked when the scanner flags their row, then scanned whole and refused if
anything is still found.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from recouvrement.render.csvfile import PLAIN, Dialect, csv_document


def write_atomically(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.part")
    temporary.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(temporary, path)


def write_checked_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence], free_text: Sequence[str] = (), *,
                      dialect: Dialect = PLAIN) -> int:
    """Write the CSV atomically (see render.csvfile for what it guarantees); the number of rows."""
    write_atomically(path, csv_document(path.name, header, rows, dialect=dialect, free_text=free_text))
    return len(rows)


REJECTS_HEADER = ["file", "line", "field", "reason"]


def rejects_document(name: str, rejects: Iterable[tuple]) -> bytes:
    """The refused rows (file, line, field, reason) as CSV; file names and reasons echo outside text,
    so they are masked on a row where the scanner finds anything medical."""
    rows = [[file, line if isinstance(line, int) else str(line or ""), field or "", reason]
            for file, line, field, reason in rejects]
    return csv_document(name, REJECTS_HEADER, rows, free_text=("file", "reason"))


def write_rejects(path: Path, rejects: Iterable[tuple]) -> int:
    """The refused rows as CSV, written atomically (an import's rejects file, `<file>.rejects.csv` of the
    nightly run)."""
    rows = list(rejects)
    write_atomically(path, rejects_document(path.name, rows))
    return len(rows)
