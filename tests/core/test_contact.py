"""The one rule for e-mail addresses we send to, and names kept on one line."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, strategies as st

from recouvrement.core.contact import e164, e164_many, is_mobile, is_mobile_many, is_valid_email, one_line
from recouvrement.importers.invoices_csv import valid_emails

VALID = ["claire.martin@example.org", "marc+factures@ok.example", "o'neil@ok.example", "a@b.fr",
         "x@xn--caf-dma.example", "jean-pierre.dupont@sous.domaine.example"]
INVALID = ["marc@ok.example, evil@attacker.example", "marc@ok.example;evil@attacker.example",
           "Marc <marc@ok.example>", "marc@ok.example (Marc)", '"marc"@ok.example', "marc @ok.example",
           "marc@ok.example\r\nBcc: evil@attacker.example", "marc@ok.example\n", "marc@ok", "@ok.example",
           "marc@", "marc..d@ok.example", ".marc@ok.example", "marc@-ok.example", "marc@ok-.example",
           "marc@[192.0.2.1]", "marc@192.0.2.1", "élise@ok.example", "marc@café.example", "marc@ok.e",
           "a" * 65 + "@ok.example", "a@" + "b" * 250 + ".fr", "marc@@ok.example", ""]


@pytest.mark.parametrize("address", VALID)
def test_a_bare_address_is_valid(address):
    assert is_valid_email(address)


@pytest.mark.parametrize("address", INVALID)
def test_lists_names_comments_quotes_line_breaks_and_malformed_addresses_are_refused(address):
    assert not is_valid_email(address)


def test_the_import_check_is_the_same_rule_an_empty_cell_meaning_no_address():
    cells = pd.Series(VALID + INVALID, dtype="string[pyarrow]")
    assert valid_emails(cells).tolist() == [True] * len(VALID) + [False] * (len(INVALID) - 1) + [True]


@given(st.text(alphabet=st.sampled_from("ab.@-+,; <>\"()\r\n\tz0é"), max_size=30))
def test_the_import_check_agrees_with_the_rule_on_any_text(text):
    assert valid_emails(pd.Series([text], dtype="string[pyarrow]")).iloc[0] == (text == "" or is_valid_email(text))


@given(st.text())
def test_a_name_on_one_line_holds_no_line_break_or_control_character(name):
    flat = one_line(name)
    assert not any(c in flat for c in "\r\n\x0b\x0c\x85\u2028\u2029")
    assert all(c.isprintable() or c == " " for c in flat if ord(c) < 0xA0)


def _phone_cells() -> list[str]:
    """Every French national prefix 0X, 0XY and 0XYZ with a random tail, in the shapes exports write, plus
    numbers that only look French: + and a code, 00…, overseas, too short, too long, letters."""
    import random
    rng = random.Random(16)
    cells = []
    for head in range(100, 1000):
        digits = f"0{head}" + "".join(rng.choice("0123456789") for _ in range(6))
        pairs = " ".join(digits[i:i + 2] for i in range(0, 10, 2))
        cells += [digits, pairs, pairs.replace(" ", "."), digits[:4] + " " + digits[4:]]
    cells += [f"0{rng.randrange(10 ** 9):09d}" for _ in range(2000)]
    cells += ["+33 6 12 34 56 78", "+33612345678", "0033612345678", "+33 (0)6.12.34.56.78", "06 92 12 34 56",
              "0692123456", "0590 12 34 56", "06 12", "06 12 34 56 78 9", "0612345678 ", " 0612345678",
              "06-12-34-56-78", "06 12  34 56 78", "06..12.34.56.78", "O6 12 34 56 78", "+1 202 555 0143",
              "00 12 34 56 78", "0000000000", "6 12 34 56 78", "0٦12345678", "", "x" * 41]
    return cells


def test_the_vectorised_phone_numbers_are_e164_of_each_cell():
    cells = pd.Series(_phone_cells() + [None], dtype=object)
    found = e164_many(cells.astype("string[pyarrow]"))
    assert found.tolist() == [e164(c) for c in cells]
    assert found.notna().sum() > 3000          # most of them are valid numbers: the fast path was exercised


def test_the_vectorised_mobile_check_is_is_mobile_of_each_cell():
    stored = [e164(c) for c in _phone_cells()]                      # as the importers store them: +33…
    cells = pd.Series(_phone_cells() + [c for c in stored if c] + [None, "07 12 34 56 78", "+262 692 12 34 56",
                                                                  "+44 7911 123456", "+33012345678", "+336123456789"],
                      dtype=object)
    found = is_mobile_many(cells)
    assert found.tolist() == [is_mobile(c) for c in cells]
    assert found.sum() > 300                   # many mobiles among them: the typed path was exercised


def test_the_vectorised_mobile_check_of_french_numbers_only_or_of_none():
    cells = pd.Series(["06 12 34 56 78", "01 42 00 00 00"], dtype=object)
    assert is_mobile_many(cells).tolist() == [True, False]
    assert is_mobile_many(pd.Series([], dtype=object)).tolist() == []


def test_each_number_type_is_tried_only_on_the_numbers_no_type_tried_before_admits(monkeypatch):
    """Mobiles first: a file of mobiles is typed by the general pattern and the mobile one alone."""
    from recouvrement.core import contact
    sizes = []
    real = contact._matching

    def watched(national, desc):
        sizes.append(len(national))
        return real(national, desc)
    monkeypatch.setattr(contact, "_matching", watched)
    cells = pd.Series(["06 12 34 56 78", "07.56.34.56.78", "0612345679", "01 42 00 00 00"], dtype="string[pyarrow]")
    assert e164_many(cells).tolist() == ["+33612345678", "+33756345678", "+33612345679", "+33142000000"]
    assert sizes == [4, 4, 1]          # the general pattern, mobile, then fixed line on the one left


def test_the_number_types_tried_first_are_all_the_types():
    from recouvrement.core import contact
    assert sorted(contact._MOST_USED_FIRST) == sorted(contact._NUMBER_TYPES)
