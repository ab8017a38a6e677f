"""csv_document held equal to the writer as it was before it took its shortcuts (each cell through cell_text,
the key columns' tokens read on every row, the whole document scanned again even when nothing was masked):
same bytes, or the same refusal."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given, settings, strategies as st

from recouvrement.render.csvfile import (EXCEL_FR, MASK, PLAIN, Amount, _Lines, _free_text_rows, _rows_of_lines,
                                         cell_text, csv_document, inert)
from recouvrement.scanner import PrivacyLeak


def reference_line(lines: _Lines, row) -> str:
    dialect, delimiter = lines.dialect, lines.dialect.delimiter
    cells = [inert(value) if type(value) is str else cell_text(value, dialect) for value in row]
    joined = delimiter.join(cells)
    if joined.count(delimiter) != len(cells) - 1 or re.search('["\\r\\n]', joined) or joined == "":
        joined = delimiter.join([lines.field(cell) for cell in cells]) if joined else '""'
    return joined + dialect.line_end


def reference_document(name, header, rows, *, dialect=PLAIN, free_text=()) -> bytes:
    from recouvrement.core.privacy import KEY_COLUMNS, id_tokens, scan_text
    from recouvrement.scanner import ensure_clean

    table = [list(row) for row in rows]
    lines = _Lines(dialect)
    head = reference_line(lines, header)
    body = [reference_line(lines, row) for row in table]
    keys = [index for index, column in enumerate(header) if column in KEY_COLUMNS]
    ids = frozenset(token for row in table for index in keys
                    if isinstance(row[index], str) for token in id_tokens(row[index]))
    columns = [list(header).index(c) for c in free_text]
    if columns:
        found = {finding.line for finding in scan_text(head + "".join(body), ids=ids)}
        flagged = _rows_of_lines(head, body, found) | (_free_text_rows(table, columns) if ids else set())
        for index in flagged:
            for column in columns:
                table[index][column] = MASK
            body[index] = reference_line(lines, table[index])
    document = head + "".join(body)
    ensure_clean(document, name, ids=ids)
    return document.encode(dialect.encoding)


def outcome(write, *args, **kwargs):
    try:
        return write(*args, **kwargs)
    except PrivacyLeak as leak:
        return ("refused", str(leak), leak.findings)


HEADER = ["patient_id", "invoice_number", "last_name", "amount", "count", "issued", "mutuelle"]
MEDICAL = ["séance de kinésithérapie", "J45", "diagnostic J45", "HBQK002", "1 85 05 78 006 084 36"]
ident = st.sampled_from(["P1", "P10", "J45", "F2026-1", "F2026-1, F2026-2", "", "=P2"])
text = st.one_of(st.sampled_from(["MARTIN", "Dupont-Durand", "=1+1", "a;b", 'dit "le", grand', "ligne\nsuite",
                                  "", "MGEN", "Harmonie Mutuelle", *MEDICAL]), st.text(max_size=12))
row = st.tuples(ident, ident, text, st.integers(-10**9, 10**9).map(Amount), st.integers(-5, 10**6),
                st.one_of(st.none(), st.dates(date(2000, 1, 1), date(2030, 12, 31))), st.one_of(st.none(), text))


@settings(max_examples=300, deadline=None)
@given(st.lists(row, max_size=8), st.sampled_from([PLAIN, EXCEL_FR]),
       st.sampled_from([(), ("mutuelle",), ("last_name", "mutuelle")]))
def test_the_document_is_the_one_the_writer_made_before(rows, dialect, free_text):
    assert outcome(csv_document, "x.csv", HEADER, rows, dialect=dialect, free_text=free_text) == \
        outcome(reference_document, "x.csv", HEADER, rows, dialect=dialect, free_text=free_text)


@pytest.mark.parametrize("free_text", [(), ("mutuelle",)])
def test_a_care_word_outside_the_free_text_is_refused_as_before(free_text):
    rows = [("P1", "F1", "séance de kinésithérapie", Amount(100), 1, date(2026, 1, 2), "MGEN")]
    assert outcome(csv_document, "x.csv", HEADER, rows, free_text=free_text)[0] == "refused"
    assert outcome(csv_document, "x.csv", HEADER, rows, free_text=free_text) == \
        outcome(reference_document, "x.csv", HEADER, rows, free_text=free_text)


def test_the_caller_rows_are_left_as_they_were_when_one_is_masked():
    rows = [["P1", "F1", "MARTIN", Amount(100), 1, None, "séance de kinésithérapie"]]
    written = csv_document("x.csv", HEADER, rows, free_text=("mutuelle",)).decode()
    assert MASK in written and rows[0][-1] == "séance de kinésithérapie"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(ident, st.text(max_size=12))))
def test_the_identifiers_tokens_read_in_one_pass_are_each_cells_tokens(values):
    from recouvrement.core.privacy import id_tokens, id_tokens_of
    assert id_tokens_of(values) == frozenset(token for value in values for token in id_tokens(value))


cell = st.one_of(text, ident, st.integers(-10**9, 10**9).map(Amount), st.integers(-5, 10**6), st.booleans().map(int),
                 st.none(), st.dates(date(2000, 1, 1), date(2030, 12, 31)))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(st.lists(cell, min_size=2, max_size=2), max_size=6),
                 st.lists(st.lists(st.sampled_from([Amount(0), Amount(-150), Amount(12345)]), min_size=3, max_size=3),
                          max_size=6),
                 st.lists(st.lists(cell, max_size=3), max_size=6)),
       st.sampled_from([PLAIN, EXCEL_FR]))
def test_lines_spelled_column_by_column_are_the_rows_spelled_one_by_one(rows, dialect):
    lines = _Lines(dialect)
    assert lines.lines(rows) == [reference_line(_Lines(dialect), row) for row in rows]
