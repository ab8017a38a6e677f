"""The text of a letter read from its HTML by one regular expression is the text html.parser reads (issue #16: the
parser was a tenth of a letter's composing time)."""

from __future__ import annotations

import dataclasses
import itertools
import re

from hypothesis import given, settings, strategies as st

from recouvrement.render.letters import _TextExtractor, _tokens_read, html_to_text, render_html
from recouvrement.render.views import KINDS, specimen


def parsed_text(document: str) -> str:
    """html_to_text as it was: html.parser feeding the same handlers."""
    parser = _TextExtractor()
    parser.feed(document)
    parser.close()
    lines = (line.strip() for line in "".join(parser.parts).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def test_every_kind_of_letter_is_read_without_html_parser_to_the_same_text():
    for kind, invoices, guarantor, first, also in itertools.product(KINDS, (1, 3), (False, True), (False, True), (0, 2)):
        html = render_html(specimen(kind, invoices=invoices, guarantor=guarantor, offer_plan_first=first, also_due=also))
        assert _tokens_read(_TextExtractor(), html), kind          # the quick path, not the fallback
        assert html_to_text(html) == parsed_text(html)


@settings(max_examples=150, deadline=None)
@given(name=st.text(max_size=40), address=st.text(max_size=60), city=st.text(max_size=20),
       patient=st.text(max_size=40), kind=st.sampled_from(KINDS))
def test_any_name_and_address_in_a_letter_read_to_html_parser_s_text(name, address, city, patient, kind):
    view = specimen(kind, invoices=2, guarantor=True)
    view = dataclasses.replace(view, patient_display_name=patient or "x",
                               recipient=dataclasses.replace(view.recipient, name=name or "x", address=address or "x",
                                                             city=city or "x"))
    html = render_html(view)
    assert html_to_text(html) == parsed_text(html)


PIECES = ["<p>", "</p>", "<br>", "<br/>", "<BR />", "<td>", "</td>", "<tr>", "</tr>", "<th class=a>", "<li>", "<ul>",
          "</ul>", "<div data-text=\"skip\">", "<div data-text='skip' >", "<div DATA-TEXT=skip>", "</div>",
          "<span data-text=\"skips\">", "</span>", "<head>", "</head>", "<style>", "p{a:b}", "</style>", "<script>",
          "x<y", "</script>", "<!-- c -->", "<!DOCTYPE html>", "<img src=\"a\" alt=\"b\">", "<a href='&amp;'>", "</a>",
          "&amp;", "&eacute;", "&#233;", "&", "<", ">", "<<p>", "</ p>", "<p/ >", "<?pi?>", "<![CDATA[x]]>", "é",
          "Martin", "  ", "\n", "\t", "\u00a0", "1 234,56 €", "<table>", "</table>", "<h1>", "</h1>", "<section>"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40))
def test_any_markup_reads_to_html_parser_s_text_by_either_path(pieces):
    document = "".join(pieces)
    assert html_to_text(document) == parsed_text(document)
