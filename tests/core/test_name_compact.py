"""The patients' names compacted once per distinct value (issue #16) are each name's own compact form."""

from __future__ import annotations

import re
import unicodedata

import pandas as pd
from hypothesis import given, strategies as st

from recouvrement.core.reconcile import _compact


def _one(name: str | None) -> str:
    """The rule, one name at a time: NFKD, accents and anything not ASCII dropped, capitals, letters only."""
    text = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode("ascii").upper()
    return re.sub(r"[^A-Z]", "", text)


NAMES = st.sampled_from(["Éloïse", "DE LA FONTAINE", "Ørsted-Ñuñez", "ﬁlou", "ß", "  ", "", "o'neil", "Lefèvre",
                         "lefevre", None])


@given(st.lists(st.one_of(NAMES, st.text(max_size=12), st.none()), max_size=40))
def test_each_name_is_compacted_as_on_its_own_whatever_the_names_around_it(names):
    """_compact gives each value's code and the distinct compact names (70fd396): the name behind each code is the
    value's own compact form, in the values' order whatever their index, and two values share a code exactly when
    they compact alike."""
    codes, distinct = _compact(pd.Series(names, dtype=object, index=range(100, 100 + len(names))))
    expected = [_one(n) for n in names]
    assert len(codes) == len(names) and [distinct[c] for c in codes] == expected
    assert len(set(distinct)) == len(distinct)      # so two values share a code exactly when they compact alike
