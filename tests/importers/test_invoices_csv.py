"""The invoices CSV importer's vectorised checks agree with the reference implementations."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.fr import nir

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
    cents, invalid = parse_amounts(pd.Series(values))
    for value, got, bad in zip(values, cents.tolist(), invalid.tolist()):
        try:
            expected = parse_amount(value)
        except ValueError:
            expected = None
        assert (None if bad else got) == expected, value
