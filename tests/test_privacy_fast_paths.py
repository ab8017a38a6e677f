"""The scanner's quick paths give what the slow ones gave (issue #16): any text, hostile ones included."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings, strategies as st

from recouvrement.core.privacy import _invisible, _read_as, normalise

# Characters that change under NFKC or around which it composes: the spaces replaced first, combining marks that
# could follow them, ligatures, full-width digits, invisible ones, accented letters in both forms; and those read as
# another: other scripts' digits, look-alike letters (Cyrillic, Greek, dotless i, with an accent), lone marks.
HOSTILE = st.text(alphabet=st.sampled_from(
    list("\u00a0\u202f\u2007\u2009\u2002 \u0301\u0327\u0308e\u00e9E\u00c9c\u00e7\ufb01\uff11\u00b4\u2019\u00ad\u200b"
         "\ufeff1a\n\t\u0661\u0966\u043e\u0406\u0457\u03bf\u0131\u0323\u20dd\u034f\u3164\ufe0f\u2026\u00b5\u20ac")),
    max_size=60)


def as_a_reader_sees_it(text: str) -> str:
    """normalise's definition, character by character, without its quick paths."""
    text = unicodedata.normalize("NFKC", "".join(char for char in text if not _invisible(char)))
    return "".join(char if _read_as(char) is None else _read_as(char) for char in text)


@settings(max_examples=500, deadline=None)
@given(st.one_of(HOSTILE, st.text(max_size=60)))
def test_normalising_gives_nfkc_of_the_text_without_its_invisible_characters_read_as_a_reader_sees_it(text):
    assert normalise(text) == as_a_reader_sees_it(text)


def test_of_the_windows_1252_characters_only_the_soft_hyphen_is_read_as_another():
    """normalise's quick path: a text Windows-1252 can encode needs no reading but for its soft hyphens."""
    characters = bytes(range(256)).decode("cp1252", errors="ignore")
    assert [char for char in characters if _read_as(char) is not None and not char.isascii()] == ["\u00ad"]


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
