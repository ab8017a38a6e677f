"""Closing the books: the FEC of a fiscal year and its accounting journal CSV.

Reads the year's movements through the store (db.books), makes the entries (core.books), renders them
(render.fec), scans both files for medical data (a patient's name on a line where the scanner finds
something is masked; anything else refuses the file) and writes them atomically, recorded in the audit
trail with their SHA-256.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import Engine

from recouvrement.render.files import write_atomically
from recouvrement.audit import record_files
from recouvrement.config import Settings
from recouvrement.core.books import Entry, book_entries
from recouvrement.core.privacy import scan_text
from recouvrement.db import books as store
from recouvrement.db import refunds as refund_store
from recouvrement.errors import RecouvrementError
from recouvrement.render.csvfile import EXCEL_FR, csv_document
from recouvrement.render.fec import (AUX_LABEL, JOURNAL_COLUMNS, MASK, fec_bytes, fec_file_name, fec_lines, fec_rows,
                                     journal_rows)
from recouvrement.rules import AccountingRules
from recouvrement.scanner import ensure_clean, known_texts


@dataclass(frozen=True)
class BooksExport:
    fec: Path
    journal: Path
    entries: int
    lines: int
    debit_cents: int
    credit_cents: int
    masked: int


def year_entries(engine: Engine, rules: AccountingRules, start: date, end: date) -> list[Entry]:
    """The period's entries, balanced and numbered in date order."""
    with engine.connect() as conn:
        receipts = store.receipt_lines(conn, start, end)
        credits = store.payment_credits(conn, start, end)
        moves = store.share_moves(conn, start, end)
        refunds = refund_store.refunds_done(conn, start, end)
        write_offs = store.write_offs(conn, start, end)
        commissions = store.agency_commissions(conn, start, end)
    return book_entries(receipts, credits, moves, rules, start, end, refunds=refunds, write_offs=write_offs,
                        commissions=commissions)


def fec_path(out: Path, settings: Settings, closing: date) -> Path:
    """`out` itself, or the conventional <SIREN>FEC<AAAAMMJJ>.txt inside `out` when it is a folder."""
    if not out.is_dir():
        return out
    if not settings.creditor.siret:
        raise RecouvrementError("le nom du FEC commence par le SIREN : renseigner creditor.siret dans les réglages, "
                                "ou nommer le fichier de sortie", field="creditor.siret")
    return out / fec_file_name(settings.creditor.siret, closing)


def export_fec(engine: Engine, settings: Settings, rules: AccountingRules, year: int, out: Path, *,
               separator: str = "|") -> BooksExport:
    """The FEC of the calendar year `year` in `out` (a file, or a folder for the conventional name), and the
    accounting journal CSV beside it (<name>.journal.csv, French Excel dialect)."""
    start, end = date(year, 1, 1), date(year, 12, 31)
    entries = year_entries(engine, rules, start, end)
    path = fec_path(out, settings, end)
    known = known_texts(settings)
    rows = fec_rows(entries)
    # Scanned with its zones cut by pipes whatever the separator: a tab between two digit zones (a bank
    # reference, then a date) reads to the scanner like the spaces inside a NIR, a pipe never does.
    flagged = {finding.line - 2 for finding in scan_text("".join(fec_lines(rows, "|")), known=known)
               if finding.line >= 2}
    for index in flagged:
        rows[index][AUX_LABEL] = MASK
    ensure_clean("".join(fec_lines(rows, "|")), path.name, known=known)
    lines = fec_lines(rows, separator)
    journal = path.with_name(path.stem + ".journal.csv")
    document = csv_document(journal.name, JOURNAL_COLUMNS, journal_rows(entries), dialect=EXCEL_FR,
                            free_text=("libelle_auxiliaire",))
    write_atomically(path, fec_bytes(lines))
    write_atomically(journal, document)
    debit = sum(e.debit_cents for e in entries)
    credit = sum(e.credit_cents for e in entries)
    record_files(engine, "export", [path, journal], export="fec", year=year, entries=len(entries),
                 lines=len(rows), debit_cents=debit, credit_cents=credit)
    return BooksExport(path, journal, len(entries), len(rows), debit, credit, len(flagged))
