"""The scanner's quick paths give what the slow ones gave (issue #16): any text, hostile ones included."""

from __future__ import annotations

import math
import re
import unicodedata
from unittest import mock

from hypothesis import given, settings, strategies as st
from stdnum.fr import nir

from recouvrement.core import privacy
from recouvrement.core.privacy import _invisible, _read_as, fold, load_lexicon, normalise, scan_text

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


# ---------------------------------------------------------------- the detectors' quick paths (issue #16)

# What _UPPER_TOKEN and the lexicon's patterns were before their quick paths: every token of 1 to 3 capitals before a
# number matched (and refused in Python when no NGAP key), and each term's word start looked behind first.
UPPER_TOKEN_AS_IT_WAS = re.compile(
    r"[A-Z](?<![\w.\-/].)(?:"
    r"(?P<ccam>(?<=[A-HJ-NP-Z])[A-HJ-NP-Z]{3}\d{3}(?:[-/.]\d){0,2}(?!\w))"
    r"|(?P<cim>\d{2}\.\d{1,2}[+*]?(?!\w|\.\d))"
    r"|(?P<key>[A-Z]{0,2}(?=[ \t]?\d))"
    r")")


def whole_words_as_they_were(phrases) -> re.Pattern[str] | None:
    sequences = [privacy._term_atoms(p) for p in phrases if p.strip()]
    return re.compile(r"(?<!\w)" + privacy._trie_regex(sequences) + r"(?!\w)") if sequences else None


def lexicon_as_it_was(lexicon: privacy.Lexicon) -> privacy.Lexicon:
    streets = [] if lexicon.street_pattern is None else [t for t in lexicon.terms
                                                          if lexicon.street_pattern.fullmatch(fold(t.strip()))]
    return privacy.Lexicon(lexicon.terms, lexicon.allowed, whole_words_as_they_were(lexicon.terms),
                           whole_words_as_they_were(lexicon.allowed), whole_words_as_they_were(streets))


LEXICON = load_lexicon()
LEXICON_AS_IT_WAS = lexicon_as_it_was(LEXICON)


def findings_as_they_were(text: str, ids: frozenset[str] = frozenset()) -> list:
    """scan_text with the patterns as they were, every stretch of digits walked by the regex engine."""
    with mock.patch.object(privacy, "_UPPER_TOKEN", UPPER_TOKEN_AS_IT_WAS), \
            mock.patch.object(privacy, "_SORTED_FROM", math.inf):
        return scan_text(text, LEXICON_AS_IT_WAS, ids=ids)


def findings_sorted(text: str, ids: frozenset[str] = frozenset()) -> list:
    """scan_text with the stretches of digits taken from the sorted characters, however short the text."""
    with mock.patch.object(privacy, "_SORTED_FROM", 0):
        return scan_text(text, LEXICON, ids=ids)


def nir_bodies():
    """13 characters of a NIR that passes its first check (sex), Corsica's 2A and 2B among them."""
    return st.one_of(st.from_regex(r"[1-478][0-9]{12}", fullmatch=True),
                     st.from_regex(r"[1-478][0-9]{4}2[ABab][0-9]{6}", fullmatch=True))


SEPARATORS = ["", " ", "  ", "\t", "-", ".", "_", "/", " - ", " . ", "\u2013", "\u2212", "\u00b7", "\u2022", "\u30fb",
              ",", ";", "\n"]
NIR_FIELDS = (0, 1, 3, 5, 7, 10, 13, 15)


@st.composite
def nirs_as_typed(draw) -> str:
    """A NIR as people type it: glued, cut between its fields (one separator for all, or each its own), one character
    per box of a form, after a word naming it with look-alike letters, its key right or wrong, or without it."""
    body = draw(nir_bodies())
    number = body + (nir.calc_check_digits(body.upper()) if draw(st.booleans()) else draw(st.from_regex(r"[0-9]{2}",
                                                                                                     fullmatch=True)))
    number = number[:13] if draw(st.integers(0, 9)) == 0 else number
    fields = [number[a:b] for a, b in zip(NIR_FIELDS, NIR_FIELDS[1:]) if number[a:b]]
    shape = draw(st.sampled_from(["glued", "one", "each", "boxed", "keyword"]))
    if shape == "glued":
        typed = number
    elif shape == "one":
        typed = draw(st.sampled_from(SEPARATORS)).join(fields)
    elif shape == "each":
        typed = "".join(field + draw(st.sampled_from(SEPARATORS)) for field in fields).rstrip()
    elif shape == "boxed":
        typed = draw(st.sampled_from([" ", "-", ".", "_", "/", "\t"])).join(number)
    else:
        typed = draw(st.sampled_from(["NIR ", "n° SS : ", "numéro de sécurité sociale ", "INSEE:", "sécu "])) \
            + number.replace("0", draw(st.sampled_from(["0", "O", "o"]))).replace("1", draw(st.sampled_from(["1", "l"])))
    return draw(st.sampled_from(["", "F2025-000201", "NIR", "1", "FR76", "a", "camt-"])) + typed


CODES = ["HBLD038", "hbld038", "Hbld038", "DEQP003-1-0", "yyyy010", "camt053", "marc123@x.fr", "page123", "abab123",
         "1 abab123", "J45.0", "E11", "D49", ";AMI;", ",CS,", "AMI 3", "AMI3", "K 50", "C 1", "Bâtiment C 1", "TC12",
         "FR76 3000 TC12", "cotation AMI", "acte: KE", "diagnostic P10", "CIM-10 : J45", "ald E11", "P10", "FACT001",
         "F2025-000123", "P000015", "2024-09-22", "12,50", "88.32", "0.00", ">90", "MGEN", "AXA", "Alan"]


@st.composite
def lines_of_a_document(draw) -> str:
    """Lines of cells as the product writes them (CSV, letters), with NIRs, codes, care words and noise."""
    terms = draw(st.lists(st.sampled_from(LEXICON.terms + LEXICON.allowed), max_size=3))
    pieces = draw(st.lists(st.one_of(nirs_as_typed(), st.sampled_from(CODES), st.sampled_from(terms or ["x"]),
                                     st.sampled_from(["12 rue de la Maternité", "Place de l'Hôpital", "rue Haute",
                                                      "Assurance Maladie", "Lefèvre", "Éloïse", "N'Diaye"]),
                                     st.text(alphabet="0123456789 -.,;aAbBhbldé\u2013\n", max_size=20)),
                           max_size=12))
    separators = draw(st.lists(st.sampled_from([",", ";", "\t", " ", "\n", ", ", "|", '"']), min_size=len(pieces),
                               max_size=len(pieces)))
    return "".join(piece + separator for piece, separator in zip(pieces, separators))


@settings(max_examples=1500, deadline=None)
@given(lines_of_a_document())
def test_a_document_s_findings_are_those_the_detectors_found_before_their_quick_paths(document):
    found = findings_as_they_were(document)
    assert scan_text(document, LEXICON) == found
    assert findings_sorted(document) == found


STRETCH_PIECES = [*"0123456789 \t-._/\\,;\n\u00b7\u2010\u2013\u2212\u30fbAaBbhbldxyz\u00e9\u00c9\u0661\u0663\u0966\u2026\u20ac",
                  "\U000104a1", "\U0001d7ce", "HBLD", "hbld", "abab", "2A", "camt"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(STRETCH_PIECES), max_size=40).map("".join))
def test_the_stretches_taken_from_the_sorted_characters_are_those_the_regex_engine_walks(text):
    folded = fold(text)
    walked = [m.span() for m in privacy._DIGITS_AROUND.finditer(text)]
    kinds = privacy._char_kinds(text)
    assert privacy._long_stretches(text, kinds) == [(a, b) for a, b in walked if b - a >= 15]
    assert privacy._folded_ccam_spans(text, folded, privacy._ccam_starts(folded, kinds)) \
        == privacy._folded_ccam_spans(text, folded, [a for a, _ in walked])


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(LEXICON.terms + LEXICON.allowed),
                          st.sampled_from([*" -'\n\u2019_a1é", "x", "psy", "s", "-x", "rue de la "])), max_size=12))
def test_the_lexicon_s_patterns_find_what_they_found_looking_behind_first(pieces):
    folded = fold(normalise("".join(pieces)))
    for now, was in ((LEXICON.pattern, LEXICON_AS_IT_WAS.pattern), (LEXICON.allowed_pattern,
                                                                    LEXICON_AS_IT_WAS.allowed_pattern)):
        assert [m.span() for m in now.finditer(folded)] == [m.span() for m in was.finditer(folded)]


def test_a_long_document_is_scanned_through_its_sorted_characters_and_finds_its_nir_on_its_line():
    line = "F2024-000002,P000015,2024-09-22,2024-10-22,88.32,69.02,0.00,0.00,19.30,0.00,19.30,Alan,>90,awaited\n"
    document = line * 300 + "F2024-000003,P000016,1-84-12-76-451-089-46,hbld038\n" + line * 300
    assert len(document) > privacy._SORTED_FROM
    with mock.patch.object(privacy, "_DIGITS_AROUND", None):    # not walked: a walk would fail
        findings = scan_text(document)
    assert [(f.line, f.kind) for f in findings] == [(301, "nir"), (301, "ccam")]
    assert findings == findings_as_they_were(document)


GLUED = ["", "s", "a", "l'", "x", "-", " ", "_", "'", "1", "é", "\u2019", ".", "\n"]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(GLUED), st.sampled_from(LEXICON.terms + LEXICON.allowed),
                          st.sampled_from(GLUED)).map("".join) | st.text(max_size=12), max_size=6).map(" ".join))
def test_a_short_text_the_lexicon_finds_a_term_in_holds_a_word_a_term_begins_with(text):
    folded = fold(normalise(text))
    if LEXICON.pattern.search(folded):
        assert privacy._may_hold_a_term(folded)
    assert scan_text(text) == scan_text(text, LEXICON)


def test_a_file_name_without_a_word_a_term_begins_with_is_scanned_without_compiling_the_lexicon():
    with mock.patch.object(privacy, "load_lexicon", side_effect=AssertionError("compiled")) as load:
        assert privacy.redact("remittance_amo_2026-11-21.csv", file_name=True) == "remittance_amo_2026-11-21.csv"
        assert privacy.redact("paiements patients 2026-11-21.csv") == "paiements patients 2026-11-21.csv"
        assert not load.called
    assert privacy.redact("releve_kine.csv", file_name=True) == "releve_masque-lexicon.csv"
    assert privacy.redact("releve_kines.csv", file_name=True) == "releve_masque-lexicon.csv"
