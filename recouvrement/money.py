"""Exact euro amounts as integer cents: parsing French and ISO notations, formatting for letters.

Money never touches float: "1 234,56" → 123456, and back to "1 234,56 €".

>>> parse_amount("1 234,56")
123456
>>> parse_amount("-12.5")
-1250
>>> format_eur(123456)
'1\u202f234,56\xa0€'
"""

from __future__ import annotations

import re

import pandas as pd

# Thousands separators seen in real exports: space, no-break space, narrow no-break space, apostrophe.
_SPACES = "[ \u00a0\u202f']"
_AMOUNT = re.compile(r"^([+-]?)(\d+)(?:[.,](\d{1,2}))?$")


class AmountError(ValueError):
    """The text is not an amount of euros with at most two decimals."""


def _normalise(text: str) -> str:
    text = re.sub(_SPACES, "", text.strip()).removesuffix("€").removesuffix("EUR").strip()
    # "1.234,56" (French with dot thousands) or "1,234.56" (English): the last separator is decimal.
    if "," in text and "." in text:
        decimal = "," if text.rfind(",") > text.rfind(".") else "."
        text = text.replace("." if decimal == "," else ",", "")
    return text


def parse_amount(text: str) -> int:
    """Cents from an amount written by a person or a spreadsheet; AmountError when it is not one."""
    match = _AMOUNT.match(_normalise(str(text)))
    if not match:
        raise AmountError(f"not an amount: {text!r}")
    sign, units, frac = match.groups()
    cents = int(units) * 100 + int((frac or "0").ljust(2, "0"))
    return -cents if sign == "-" else cents


def parse_amounts(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Vectorised parse_amount: (cents as Int64 with <NA> where invalid, mask of invalid entries).

    Empty cells are invalid too; the caller decides whether an empty cell is allowed.
    """
    text = values.astype("string").str.strip()
    text = text.str.replace(_SPACES, "", regex=True).str.replace(r"(€|EUR)$", "", regex=True)
    both = text.str.contains(",", regex=False) & text.str.contains(".", regex=False)
    comma_last = text.str.rfind(",") > text.str.rfind(".")
    text = text.mask(both & comma_last, text.str.replace(".", "", regex=False))
    text = text.mask(both & ~comma_last, text.str.replace(",", "", regex=False))
    parts = text.str.extract(r"^([+-]?)(\d{1,15})(?:[.,](\d{1,2}))?$")
    invalid = parts[1].isna()
    units = pd.to_numeric(parts[1], errors="coerce").astype("Int64")
    frac = pd.to_numeric(parts[2].fillna("0").str.ljust(2, "0"), errors="coerce").astype("Int64")
    cents = units * 100 + frac
    cents = cents.where(parts[0] != "-", -cents)
    return cents.where(~invalid), invalid


def format_eur(cents: int) -> str:
    """French notation with a narrow no-break space for thousands: 1 234,56 €."""
    sign = "-" if cents < 0 else ""
    units, frac = divmod(abs(int(cents)), 100)
    grouped = f"{units:,}".replace(",", "\u202f")
    return f"{sign}{grouped},{frac:02d}\u00a0€"


def format_plain(cents: int) -> str:
    """Machine notation for CSV exports: 1234.56 (dot decimal, no grouping)."""
    sign = "-" if cents < 0 else ""
    units, frac = divmod(abs(int(cents)), 100)
    return f"{sign}{units}.{frac:02d}"
