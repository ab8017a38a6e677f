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
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported by parse_amounts only: a letter worker formats amounts without loading pandas (issue #16)
    import pandas as pd

# The largest amount one input line may carry: 10 000 000,00 €. A clinic's invoice or payment never comes
# near it; a cell beyond it is a typo (a reference pasted into the amount column) or an attack on the totals.
MAX_LINE_CENTS = 1_000_000_000

# Thousands separators seen in real exports: space, no-break space, narrow no-break space, apostrophe.
_SPACES = "[ \u00a0\u202f']"
_AMOUNT = re.compile(r"^([+-]?)(\d+)(?:[.,](\d{1,2}))?$")


class AmountError(ValueError):
    """The text is not an amount of euros with at most two decimals."""


def _normalise(text: str) -> str:
    text = re.sub(_SPACES, "", text.strip()).replace("€", "").replace("EUR", "")
    # "1.234,56" (French with dot thousands) or "1,234.56" (English): the last separator is decimal.
    if "," in text and "." in text:
        decimal = "," if text.rfind(",") > text.rfind(".") else "."
        text = text.replace("." if decimal == "," else ",", "")
    return text


def parse_amount(text: str) -> int:
    """Cents from an amount written by a person or a spreadsheet; AmountError when it is not one."""
    match = _AMOUNT.match(_normalise(str(text)))
    if not match:
        raise AmountError(f"pas un montant : {text!r}")
    sign, units, frac = match.groups()
    cents = int(units) * 100 + int((frac or "0").ljust(2, "0"))
    return -cents if sign == "-" else cents


# Below this many cells, parsing one by one costs less than Arrow's set-up (a night's small files).
ONE_BY_ONE_BELOW = 512


def parse_amounts(values: pd.Series, one_by_one_below: int = ONE_BY_ONE_BELOW) -> tuple[pd.Series, pd.Series]:
    """Vectorised parse_amount: (cents as Int64 with <NA> where invalid, mask of invalid entries).

    Empty cells are invalid too; the caller decides whether an empty cell is allowed. The digits are
    converted by Arrow's exact string-to-decimal cast: no float on the way. Fewer than `one_by_one_below`
    cells are read one by one by the same rule (15 digits of euros at most), with no Arrow set-up.
    """
    import pandas as pd
    if len(values) < one_by_one_below:
        cents = pd.Series([_cents_or_none(v) for v in values.tolist()], index=values.index, dtype="Int64")
        return cents, cents.isna()
    import pyarrow as pa
    import pyarrow.compute as pc
    text = values.astype("string[pyarrow]").fillna("").str.strip()
    for character in (" ", "\u00a0", "\u202f", "'", "€", "EUR"):
        if text.str.contains(character, regex=False).any():
            text = text.str.replace(character, "", regex=False)
    both = text.str.contains(",", regex=False) & text.str.contains(".", regex=False)
    if both.any():                       # "1.234,56" or "1,234.56": rare, done the slow, careful way
        text = text.mask(both, text[both].map(_normalise))
    text = text.str.replace(",", ".", regex=False)
    valid = text.str.match(r"^[+-]?\d{1,15}(?:\.\d{1,2})?$").fillna(False).astype(bool)
    digits = pa.array(text.where(valid, "0"))
    scaled = pc.multiply(pc.cast(digits, pa.decimal128(20, 2)), pa.scalar(100, pa.decimal128(5, 0)))
    cents = pd.Series(pc.cast(scaled, pa.int64()).to_numpy(zero_copy_only=False), index=values.index).astype("Int64")
    return cents.where(valid), ~valid


def _cents_or_none(value) -> int | None:
    """parse_amounts' rule for one cell: parse_amount, at most 15 digits of euros; None when not an amount."""
    if not isinstance(value, str):
        return None                       # an empty cell (NaN, None, NA)
    match = _AMOUNT.match(_normalise(value))
    if not match or len(match.group(2)) > 15:
        return None
    sign, units, frac = match.groups()
    cents = int(units) * 100 + int((frac or "0").ljust(2, "0"))
    return -cents if sign == "-" else cents


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
