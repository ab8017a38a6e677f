"""The Fichier des Écritures Comptables (article A47 A-1 du LPF) and the accounting journal CSV.

The FEC as the tax administration reads it (and DGFiP's Test Compta Demat checks it):

- a flat file, one record per line (CR LF), the first line naming the 18 fields in their order;
- fields separated by a pipe (default) or a tab, a character that appears nowhere else in the file;
- characters of ISO 8859-15 (what it cannot spell is written without its accent, else ``?``);
- dates ``AAAAMMJJ``; amounts with a decimal comma, no thousands separator, both ``Debit`` and
  ``Credit`` written on every line (one of them ``0,00``): one line per debit or per credit;
- named ``<SIREN>FEC<AAAAMMJJ>.txt``, the date being the closing day of the fiscal year.

>>> from datetime import date
>>> fec_file_name("84512367800011", date(2026, 12, 31))
'845123678FEC20261231.txt'
>>> fec_amount(123456), fec_amount(0), fec_date(date(2026, 3, 2))
('1234,56', '0,00', '20260302')
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Iterable

from recouvrement.core.books import Entry

FEC_COLUMNS = ("JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib",
               "CompAuxNum", "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit",
               "EcritureLet", "DateLet", "ValidDate", "Montantdevise", "Idevise")
SEPARATORS = {"tab": "\t", "pipe": "|"}
ENCODING = "iso-8859-15"
AUX_LABEL = FEC_COLUMNS.index("CompAuxLib")
MASK = "[masqué]"

JOURNAL_COLUMNS = ["journal", "libelle_journal", "ecriture", "date", "compte", "libelle_compte",
                   "compte_auxiliaire", "libelle_auxiliaire", "piece", "date_piece", "libelle", "debit", "credit",
                   "date_validation"]


def fec_file_name(siret_or_siren: str, closing: date) -> str:
    siren = re.sub(r"\D", "", siret_or_siren)[:9]
    return f"{siren}FEC{closing:%Y%m%d}.txt"


def fec_date(day: date) -> str:
    return f"{day:%Y%m%d}"


def fec_amount(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    units, frac = divmod(abs(int(cents)), 100)
    return f"{sign}{units},{frac:02d}"


def spelt_latin9(text: str) -> str:
    """The text in characters ISO 8859-15 has: an accent it lacks dropped, anything else as '?'.

    >>> spelt_latin9("Łukasz Nowak – Œuvre")
    'Lukasz Nowak ? Œuvre'
    """
    out = []
    for char in text:
        try:
            char.encode(ENCODING)
            out.append(char)
        except UnicodeEncodeError:
            bare = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
            bare = {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ø": "O", "ø": "o"}.get(char, bare)
            out.append(bare if bare and all(_latin9(c) for c in bare) else "?")
    return "".join(out)


def _latin9(char: str) -> bool:
    try:
        char.encode(ENCODING)
        return True
    except UnicodeEncodeError:
        return False


_BREAKS = re.compile(r"[\t|\r\n\x00-\x1f\x7f\u2028\u2029]+")


def fec_text_field(value: str) -> str:
    """A text zone on one line, free of both separators, spelt in ISO 8859-15."""
    return spelt_latin9(_BREAKS.sub(" ", value or "")).strip()


def fec_rows(entries: Iterable[Entry]) -> list[list[str]]:
    """One row of 18 zones per line of each entry."""
    rows = []
    for entry in entries:
        for line in entry.lines:
            rows.append([entry.journal.code, entry.journal.label, entry.number, fec_date(entry.entry_date),
                         line.account.number, line.account.label, line.aux_number, line.aux_label,
                         entry.piece_ref, fec_date(entry.piece_date), line.label, fec_amount(line.debit_cents),
                         fec_amount(line.credit_cents), "", "", fec_date(entry.valid_date), "", ""])
    return [[fec_text_field(cell) for cell in row] for row in rows]


def fec_lines(rows: list[list[str]], separator: str = "\t") -> list[str]:
    """The header and each row as a line of the file (CR LF ended)."""
    return [separator.join(row) + "\r\n" for row in [list(FEC_COLUMNS), *rows]]


def fec_bytes(lines: list[str]) -> bytes:
    return "".join(lines).encode(ENCODING)


def journal_rows(entries: Iterable[Entry]) -> list[list]:
    """The same lines for the accounting journal CSV (render.csvfile; amounts as `Amount`)."""
    from recouvrement.render.csvfile import Amount
    rows = []
    for entry in entries:
        for line in entry.lines:
            rows.append([entry.journal.code, entry.journal.label, entry.number, entry.entry_date,
                         line.account.number, line.account.label, line.aux_number, line.aux_label,
                         entry.piece_ref, entry.piece_date, line.label, Amount(line.debit_cents),
                         Amount(line.credit_cents), entry.valid_date])
    return rows

