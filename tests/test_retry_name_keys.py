"""db.retries cuts the name keys of the reach by Arrow: the same last and first names as pandas' split at the
first space, on hostile keys (no space, several, leading, a lone space, line breaks, letters Arrow and Python
case differently)."""

import random

import pandas as pd

from recouvrement.db.retries import _name_parts


def _by_pandas(keys: pd.Series) -> tuple[list, list]:
    split = keys.str.slice(2).str.split(" ", n=1, expand=True)
    first = split[1] if 1 in split.columns else pd.Series([None] * len(keys))
    return split[0].tolist(), [None if pd.isna(v) else v for v in first]


def test_the_name_keys_are_cut_as_pandas_cuts_them():
    random.seed(16)
    lasts = ["DUPONT", "LE GALL", "N'DIAYE", "É", "", "STRASSE ß", "A\nB", " ", "ﬁN"]
    firsts = [" MARIE", " JEAN PIERRE", " ", "", "  ANNE", "\nX", " ÉLODIE "]
    keys = pd.Series(["k:" + random.choice(lasts) + random.choice(firsts) for _ in range(3_000)] + ["k:", "k: "])
    last, first = _name_parts(keys)
    expected_last, expected_first = _by_pandas(keys)
    assert last.tolist() == expected_last
    assert [None if pd.isna(v) else v for v in first] == expected_first
    assert any(v is None for v in expected_first) and any(" " in v for v in expected_first if v)
