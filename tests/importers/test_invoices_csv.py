"""The invoices CSV importer's vectorised checks agree with the reference implementations."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.fr import nir

from recouvrement.importers import invoices_csv
from recouvrement.importers.invoices_csv import nir_valid
from recouvrement.money import parse_amount, parse_amounts

digits = st.text("0123456789", min_size=1, max_size=16)
nir_like = st.builds(lambda a, dept, b, key, sep: (a + dept + b + key).replace("", sep)[: 40],
                     st.text("0123456789", min_size=5, max_size=5), st.sampled_from(["75", "2A", "2B", "13", "9A"]),
                     st.text("0123456789", min_size=6, max_size=6), st.text("0123456789", min_size=2, max_size=2),
                     st.sampled_from(["", "", " "]))


def with_right_key(text: str) -> str:
    compact = text.replace(" ", "")
    if len(compact) != 15:
        return text
    body = compact[:13].replace("2A", "19").replace("2B", "18")
    return compact[:13] + f"{97 - int(body) % 97:02d}" if body.isdigit() else text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(nir_like, nir_like.map(with_right_key), digits), min_size=1, max_size=20))
def test_the_vectorised_nir_check_agrees_with_stdnum(values):
    assert nir_valid(pd.Series(values)).tolist() == [nir.is_valid(v) for v in values]


amount_text = st.one_of(
    st.integers(-10**9, 10**9).map(lambda c: f"{'-' if c < 0 else ''}{abs(c) // 100},{abs(c) % 100:02d}"),
    st.integers(0, 10**9).map(lambda c: f"{c // 100:,}.{c % 100:02d}"),
    st.integers(0, 10**9).map(lambda c: f"{c // 100:,}".replace(",", " ") + f",{c % 100:02d} €"),
    st.text("0123456789,.- €ab", max_size=12))


@settings(max_examples=300, deadline=None)
@given(st.lists(amount_text, min_size=1, max_size=20))
def test_vectorised_amount_parsing_agrees_with_the_one_by_one_parser(values):
    cents, invalid = parse_amounts(pd.Series(values), one_by_one_below=0)
    for value, got, bad in zip(values, cents.tolist(), invalid.tolist()):
        try:
            expected = parse_amount(value)
        except ValueError:
            expected = None
        assert (None if bad else got) == expected, value


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(amount_text, st.none(), st.sampled_from(["", "1" * 16, "-" + "9" * 15 + ",99", "+3,5"])),
                min_size=1, max_size=20))
def test_a_few_amounts_read_one_by_one_are_read_as_the_vectorised_parser_reads_them(values):
    few, few_invalid = parse_amounts(pd.Series(values, dtype=object))
    many, many_invalid = parse_amounts(pd.Series(values, dtype=object), one_by_one_below=0)
    assert few.tolist() == many.tolist() and few_invalid.tolist() == many_invalid.tolist()


# --- rows refused: a NIR as patient id, and the bounds of a line -------------------------------

HEADER = ("invoice_number;issue_date;due_date;patient_id;last_name;first_name;address;postal_code;city;"
          "birth_date;total_amount;amo_amount;amc_amount;patient_amount;amc_payer")


def row(number: str = "F1", patient: str = "P1", issue: str = "10/01/2025", due: str = "", birth: str = "",
        total: str = "100,00", amo: str = "70,00", patient_amount: str = "30,00") -> str:
    return (f"{number};{issue};{due};{patient};Martin;Claire;5 rue Haute;75011;Paris;{birth};{total};{amo};0;"
            f"{patient_amount};")


def read_rows(tmp_path, *rows: str):
    path = tmp_path / "factures.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return invoices_csv.read(path, nir_key=b"k")


A_NIR = "185057800608491"   # check key: 97 - 1850578006084 % 97 = 91


@pytest.mark.parametrize("written", [A_NIR, "1 85 05 78 006 084 91", "1-85-05-78-006-084-91",
                                     "1.85.05.78.006.084.91"])
def test_a_valid_nir_used_as_patient_id_is_refused_without_being_echoed(tmp_path, written):
    assert nir.is_valid(A_NIR)
    parsed = read_rows(tmp_path, row("F1", "P1"), row("F2", written))
    assert parsed.frame["invoice_number"].tolist() == ["F1"]
    assert [(r.line, r.field, r.reason) for r in parsed.rejects] == [
        (3, "patient_id", "un NIR n'est pas accepté comme identifiant patient")]
    assert re.findall(r"\d+", str(parsed.rejects[0])) == ["3"]          # the line, and no digit of the NIR


def test_a_long_patient_id_that_is_not_a_nir_is_accepted(tmp_path):
    not_a_nir = A_NIR[:-2] + "37"
    parsed = read_rows(tmp_path, row("F1", not_a_nir), row("F2", "PAT-000000000000012"))
    assert parsed.rejects == [] and parsed.frame["patient_id"].tolist() == [not_a_nir, "PAT-000000000000012"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(nir_like, nir_like.map(with_right_key), digits,
                          nir_like.map(with_right_key).map(lambda t: t.replace(" ", "-")),
                          st.text("0123456789AB .-", max_size=22)), min_size=1, max_size=20))
def test_the_patient_id_nir_check_agrees_with_stdnum_on_the_id_without_punctuation(ids):
    expected = [nir.is_valid(re.sub(r"[^0-9A-Za-z]", "", i)) for i in ids]
    assert invoices_csv._holds_a_nir(pd.Series(ids, dtype="string[pyarrow]")).tolist() == expected


def test_an_amount_above_ten_million_euros_is_refused_with_its_line(tmp_path):
    parsed = read_rows(tmp_path, row("F1", total="10 000 000,00", amo="0", patient_amount="10 000 000,00"),
                       row("F2", total="10 000 000,01", amo="0", patient_amount="10 000 000,01"))
    assert parsed.frame["invoice_number"].tolist() == ["F1"]
    assert [(r.line, r.field, r.reason) for r in parsed.rejects] == [
        (3, "total_amount", "montant supérieur au maximum admis (10 000 000,00 € par ligne)")]


@pytest.mark.parametrize(("cells", "field"), [
    ({"issue": "31/12/1899"}, "issue_date"), ({"due": "01/01/2101"}, "due_date"),
    ({"birth": "1899-12-31"}, "birth_date")])
def test_a_date_outside_1900_to_2100_is_refused_with_its_line_and_field(tmp_path, cells, field):
    parsed = read_rows(tmp_path, row("F1", birth="01/01/1900"), row("F2", **cells))
    assert parsed.frame["invoice_number"].tolist() == ["F1"]
    assert [(r.line, r.field, r.reason) for r in parsed.rejects] == [
        (3, field, "date hors de la période admise (1900 à 2100)")]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["", "a@b.fr", "a@b", "Jean <j@x.fr>", "ß@straße.de", "06 54 91 92 31", "+1 202 555 0143",
                                 "12", "oui", " Non ", "peut-être", "31/02/1990", "1990-01-02", "288127595492701"]),
                min_size=1, max_size=30))
def test_a_check_done_once_per_distinct_cell_gives_each_row_what_the_row_by_row_check_gives(cells):
    """invoices_csv.Distinct: the patients' checks run on the distinct cells, spread back to the rows."""
    column = pd.Series(cells, dtype="string[pyarrow]", index=range(5, 5 + len(cells)))
    distinct = invoices_csv.Distinct(column)
    for check in (invoices_csv.valid_emails, lambda c: c.str.upper(), lambda c: c.str.len(), nir_valid):
        spread, direct = distinct.spread(check(distinct.values)), check(column)
        assert spread.index.equals(column.index)
        assert spread.tolist() == direct.tolist()


@settings(max_examples=50, deadline=None)
@given(st.lists(nir_like, max_size=10), st.binary(min_size=0, max_size=80))
def test_the_nirs_hashed_together_are_hashed_as_one_by_one(values, key):
    assert invoices_csv.nir_hash_many(values, key) == [invoices_csv.nir_hash(value, key) for value in values]


PATIENT_HEADER = ("invoice_number;issue_date;patient_id;last_name;first_name;address;postal_code;city;total_amount;"
                  "amo_amount;patient_amount;phone;email;guarantor_email;nir")
PATIENT_ROWS = [f"F{n};10/01/2025;P{n % 3};Martin;Claire;5 rue Haute;75011;Paris;100,00;70,00;30,00;{phone};{email};"
                f"{guarantor};{number}"
                for n, (phone, email, guarantor, number) in enumerate([
                    ("06 54 91 92 31", "a@b.fr", "", A_NIR), ("12", "a@b.fr", "", ""), ("", "Jean <j@x.fr>", "", ""),
                    ("+1 202 555 0143", "", "g@x", A_NIR), ("06 54 91 92 31", "", "", "185057800608492"),
                    ("", "c@d.fr", "", "1 85 05 78 006 084 91"), ("06.54.91.92.31", "c@d.fr", "", "")])]


def test_the_patients_columns_encoded_in_a_second_thread_give_what_the_reading_thread_gives(tmp_path, monkeypatch):
    """read encodes the phones, e-mails and NIRs (ENCODED_BESIDE) in a second thread beside the invoices' checks:
    the same rows, refusals and patients' values as when every column is encoded in the reading thread."""
    path = tmp_path / "factures.csv"
    path.write_text("\n".join([PATIENT_HEADER, *PATIENT_ROWS, PATIENT_ROWS[0]]) + "\n", encoding="utf-8")
    beside = invoices_csv.read(path, nir_key=b"k")
    monkeypatch.setattr(invoices_csv, "ENCODED_BESIDE", ())
    here = invoices_csv.read(path, nir_key=b"k")
    assert [(r.line, r.field) for r in beside.rejects] == [(3, "phone"), (4, "email"), (5, "guarantor_email"),
                                                           (6, "nir"), (9, "invoice_number")]
    assert beside.rejects == here.rejects
    pd.testing.assert_frame_equal(beside.frame, here.frame)
    pd.testing.assert_frame_equal(beside.patients, here.patients)
    assert beside.frame["invoice_number"].tolist() == ["F0", "F5", "F6"]
    assert beside.patients["phone"].fillna("").tolist() == ["+33654919231", "", "+33654919231"]
    assert beside.patients["nir_hash"].notna().tolist() == [True, True, False]


def test_a_failure_in_the_second_thread_is_the_reading_s_own(tmp_path, monkeypatch):
    path = tmp_path / "factures.csv"
    path.write_text("\n".join([PATIENT_HEADER, *PATIENT_ROWS]) + "\n", encoding="utf-8")
    real = invoices_csv.Distinct

    def failing_on_nirs(cells):
        if cells.name == "nir":
            raise MemoryError("nir")
        return real(cells)

    monkeypatch.setattr(invoices_csv, "Distinct", failing_on_nirs)
    with pytest.raises(MemoryError, match="nir"):
        invoices_csv.read(path, nir_key=b"k")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="aZ09-/ .éß\u00a0_", max_size=8), max_size=6))
def test_compacted_invoice_numbers_are_those_of_the_core_one_by_one_with_dashes_or_anything_else(numbers):
    from recouvrement.core.references import compact_invoice_number
    cells = pd.Series(numbers, dtype="string[pyarrow]", name="invoice_number")
    compacted = invoices_csv.compact_invoice_numbers(cells)
    assert compacted.tolist() == [compact_invoice_number(n) for n in numbers]
    assert compacted.dtype == cells.dtype and compacted.name == cells.name


def test_invoice_numbers_of_ascii_letters_digits_and_dashes_are_compacted_without_the_pattern(monkeypatch):
    """Taking the dashes out gives what the pattern would (the test above): the pattern is not run on them."""
    def no_pattern(*args, **kwargs):
        raise AssertionError("the pattern was run")
    monkeypatch.setattr(pd.core.strings.accessor.StringMethods, "replace", no_pattern)
    numbers = pd.Series(["F2024-000001", "f2024-000002", "", "AB-12-cd"], dtype="string[pyarrow]")
    assert invoices_csv.compact_invoice_numbers(numbers).tolist() == ["F2024000001", "F2024000002", "", "AB12CD"]


def test_a_repeated_invoice_number_is_refused_on_its_second_line_whether_the_file_lists_them_in_order_or_not(tmp_path):
    for numbers, line in ((["F1", "F2", "F2", "F3"], 4), (["F2", "F1", "F2"], 4), (["F1", "F3", "F1"], 4)):
        parsed = read_rows(tmp_path, *(row(number) for number in numbers))
        assert [(r.line, r.field, r.reason) for r in parsed.rejects] == [
            (line, "invoice_number", f"figure deux fois dans ce fichier : {numbers[line - 2]}")], numbers
        assert parsed.frame["invoice_number"].tolist() == list(dict.fromkeys(numbers))


def test_invoice_numbers_in_order_are_known_distinct_without_hashing_them(tmp_path, monkeypatch):
    """Each number greater than the one before: no duplicated() over the column (a million numbers hashed)."""
    def no_hashing(*args, **kwargs):
        raise AssertionError("the numbers were hashed")
    monkeypatch.setattr(pd.Series, "duplicated", no_hashing)
    parsed = read_rows(tmp_path, row("F2024-000001"), row("F2024-000002"), row("F2024-000010"))
    assert parsed.rejects == [] and len(parsed.frame) == 3


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["", "", "a@b.fr", "Harmonie Mutuelle", "Élodie", " ", "€"]), max_size=12),
       st.integers(0, 3))
def test_empty_cells_made_missing_are_those_where_gives(cells, start):
    """missing_when_empty keeps the text's buffers and makes a validity bitmap: the same cells, dtype, index and
    name as where(cells != "", None), for one chunk as read_table gives it, and through where() for a column cut
    past its start, already holding a missing cell, or of another dtype."""
    column = pd.Series(pd.array(cells, dtype="string[pyarrow]"), index=range(7, 7 + len(cells)), name="email")
    shapes = [column, column.iloc[min(start, len(cells)):], column.where(column != "€", None), column.astype(object)]
    for cells_of in shapes:
        made, expected = invoices_csv.missing_when_empty(cells_of), cells_of.where(cells_of != "", None)
        pd.testing.assert_series_equal(made, expected)
        assert made.isna().tolist() == expected.isna().tolist()


def test_the_phones_and_nirs_are_checked_and_hashed_in_the_second_thread(tmp_path, monkeypatch):
    """The NIRs' hashing (Python, per distinct NIR) and the phones' reading run beside the invoices' own checks,
    not in the reading thread; their refusals are the reading thread's (the test above: the same). Fails without
    the change: only their encoding ran beside, hashed and read in the reading thread."""
    import threading
    threads = []
    hash_many, e164_many = invoices_csv.nir_hash_many, invoices_csv.e164_many

    def hashing(*args):
        threads.append(("nir", threading.current_thread() is threading.main_thread()))
        return hash_many(*args)

    def reading(*args):
        threads.append(("phone", threading.current_thread() is threading.main_thread()))
        return e164_many(*args)
    monkeypatch.setattr(invoices_csv, "nir_hash_many", hashing)
    monkeypatch.setattr(invoices_csv, "e164_many", reading)
    path = tmp_path / "factures.csv"
    path.write_text("\n".join([PATIENT_HEADER, *PATIENT_ROWS]) + "\n", encoding="utf-8")
    parsed = invoices_csv.read(path, nir_key=b"k")
    assert sorted(threads) == [("nir", False), ("phone", False)]
    assert [(r.line, r.field) for r in parsed.rejects] == [(3, "phone"), (4, "email"), (5, "guarantor_email"),
                                                           (6, "nir")]
