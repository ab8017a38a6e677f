"""Split a scale data set into its history and its last day(s): the input of the incremental benchmark and test.

Each CSV file (invoices by issue date, payments by payment date) is cut line by line, its bytes kept as
written (encoding, byte-order mark, line ends): rows dated before `first_day` go to the history folder,
rows dated from `first_day` to `last_day` to the day folder, later rows nowhere. The generator's files
quote nothing (tools.samples), so a line is a row.

The generator puts every late payment on the day before its `as_of` (it clips them there): that day holds
a pile of several ordinary days' payments. `ordinary_last_day` is the day before it, the last ordinary day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

FILES = {"invoices.csv": "issue_date", "remittance_amo.csv": "payment_date", "remittance_amc.csv": "payment_date",
         "payments_patient.csv": "payment_date"}


@dataclass(frozen=True)
class Split:
    history: dict[str, int]      # rows per file
    day: dict[str, int]
    dropped: dict[str, int]


def _encoding(data: bytes) -> tuple[str, bytes]:
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8", b"\xef\xbb\xbf"
    try:
        data.decode("utf-8")
        return "utf-8", b""
    except UnicodeDecodeError:
        return "cp1252", b""


def _date(text: str) -> date:
    if "/" in text:
        day, month, year = text.split("/")
        return date(int(year), int(month), int(day))
    return date.fromisoformat(text)


def last_dated_day(folder: Path) -> date:
    """The latest payment date of the set (the generator's pile day)."""
    latest = date.min
    for name, column in FILES.items():
        if column == "payment_date" and (folder / name).exists():
            _, rows = _rows(folder / name, column)
            latest = max([latest, *(d for d, _ in rows)])
    return latest


def ordinary_last_day(folder: Path) -> date:
    return last_dated_day(folder) - timedelta(days=1)


def _rows(path: Path, column: str) -> tuple[bytes, list[tuple[date, bytes]]]:
    data = path.read_bytes()
    encoding, bom = _encoding(data)
    body = data[len(bom):]
    newline = b"\r\n" if b"\r\n" in body[:4096] else b"\n"
    lines = body.split(newline)
    header = lines[0].decode(encoding)
    separator = max(";,\t", key=header.count)
    at = [c.strip() for c in header.split(separator)].index(column)
    sep = separator.encode(encoding)
    rows = [(_date(line.split(sep)[at].decode(encoding)), line + newline) for line in lines[1:] if line]
    return bom + lines[0] + newline, rows


def split(folder: Path, history: Path, day: Path, first_day: date, last_day: date | None = None) -> Split:
    """Write the history (rows before first_day) and the day (first_day to last_day, default first_day)."""
    last_day = last_day or first_day
    counts: Split = Split({}, {}, {})
    for target in (history, day):
        target.mkdir(parents=True, exist_ok=True)
    for name, column in FILES.items():
        if not (folder / name).exists():
            continue
        header, rows = _rows(folder / name, column)
        old = [line for d, line in rows if d < first_day]
        new = [line for d, line in rows if first_day <= d <= last_day]
        (history / name).write_bytes(header + b"".join(old))
        (day / name).write_bytes(header + b"".join(new))
        counts.history[name], counts.day[name], counts.dropped[name] = len(old), len(new), len(rows) - len(old) - len(new)
    return counts
