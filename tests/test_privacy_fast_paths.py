"""The scanner's quick paths give what the slow ones gave (issue #16): any text, hostile ones included."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings, strategies as st

from recouvrement.core.privacy import _INVISIBLE, normalise

# Characters that change under NFKC or around which it composes: the spaces replaced first, combining marks that
# could follow them, ligatures, full-width digits, invisible ones, accented letters in both forms.
HOSTILE = st.text(alphabet=st.sampled_from(
    list("\u00a0\u202f\u2007\u2009\u2002 \u0301\u0327\u0308e\u00e9E\u00c9c\u00e7\ufb01\uff11\u00b4\u2019\u00ad\u200b"
         "\ufeff1a\n\t")), max_size=60)


@settings(max_examples=500, deadline=None)
@given(st.one_of(HOSTILE, st.text(max_size=60)))
def test_normalising_gives_nfkc_of_the_text_without_its_invisible_characters(text):
    expected = _INVISIBLE.sub("", text)
    expected = unicodedata.normalize("NFKC", expected)
    assert normalise(text) == expected
