"""Writing CSV exports: built from whitelisted columns, scanned for medical data, written atomically.

Free-text cells that come from outside (a bank transfer's label, a payer's name) may carry what a
patient typed ("séance kiné"): those cells are masked when the scanner flags their line, then the
whole document is scanned again and refused if anything is still found.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Iterable, Sequence

from sqlalchemy import Engine, text

from recouvrement.money import format_plain

MASK = "[masqué]"


def csv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_atomically(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.part")
    temporary.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(temporary, path)


def checked_csv(name: str, header: Sequence[str], rows: list[list], free_text: Sequence[str] = ()) -> str:
    """The CSV text, free-text cells masked where the scanner flags their line; PrivacyLeak if still unclean."""
    from recouvrement.core.privacy import scan_text
    from recouvrement.scanner import ensure_clean

    document = csv_text(header, rows)
    columns = [header.index(c) for c in free_text]
    flagged = {finding.line for finding in scan_text(document)} if columns else set()
    if flagged:
        for line in flagged:
            if line >= 2 and line - 2 < len(rows):
                for column in columns:
                    rows[line - 2][column] = MASK
        document = csv_text(header, rows)
    ensure_clean(document, name)
    return document


def write_checked_csv(path: Path, header: Sequence[str], rows: list[list], free_text: Sequence[str] = ()) -> int:
    write_atomically(path, checked_csv(path.name, header, rows, free_text))
    return len(rows)


PAYMENT_EXPORT = ["payment_id", "payment_date", "payer_type", "payer_name", "amount", "reference",
                  "invoice_number", "status", "source_file", "source_line"]


def export_payments(engine: Engine, path: Path) -> int:
    with engine.connect() as conn:
        result = conn.execute(text(
            "SELECT payment_id, payment_date, payer_type, payer_name, amount_cents, reference, invoice_number, "
            "status, source_file, source_line FROM payment ORDER BY payment_date, payment_id"))
        rows = [[pid, str(day), ptype, name, format_plain(amount), ref, inv or "", status, src, line]
                for pid, day, ptype, name, amount, ref, inv, status, src, line in result]
    return write_checked_csv(path, PAYMENT_EXPORT, rows, free_text=("payer_name", "reference"))
