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


def html_text_as_it_was(raw: str) -> str:
    """scanner.html_text before its tags were kept: each tag blanked by a fresh call."""
    import html
    import re

    from recouvrement.scanner import _INLINE_TAGS, _KEPT_ATTRIBUTES, _TAG

    def blank(match: re.Match[str]) -> str:
        name = (match[1] or "").lower()
        values = " ".join(v.strip("\"'") for v in _KEPT_ATTRIBUTES.findall(match[0]))
        newlines = "\n" * match[0].count("\n")
        if name in _INLINE_TAGS and not values and not newlines:
            return ""
        return f" {values} {newlines}" if values else f" {newlines}"
    return html.unescape(_TAG.sub(blank, raw))


TAGS = ["<p>", "</p>", "<B>", "</b>", "<span\n>", "<img alt='psy' src=x>", "<div title=\"a\nb\">", "<!--", "-->",
        "<![CDATA[", "]]>", "<", ">", "<<b>p>", "<a href=x>", "<br/>", "&amp;", "&#233;", "chiatrie", "psy", "\n", " ",
        "<meta content=cardiologie>", "<Span>", "<x-y:z>", "</>", "<?xml?>", "<!DOCTYPE html>"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(TAGS), max_size=30))
def test_an_html_page_s_text_is_what_it_was_with_every_tag_blanked_afresh(pieces):
    from recouvrement.scanner import html_text
    page = "".join(pieces)
    assert html_text(page) == html_text_as_it_was(page)
    assert html_text(page) == html_text_as_it_was(page)       # read again: from the kept tags
