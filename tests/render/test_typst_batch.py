"""The Typst print batch at scale: the letters' HTML read fast and alike, and a worker's memory bounded chunk after chunk."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from recouvrement.render import typst_pdf
from recouvrement.render.letters import render_html
from recouvrement.render.views import KINDS, specimen


def parsed_by_htmlparser(html: str) -> typst_pdf._TreeBuilder:
    builder = typst_pdf._TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder


def every_letter() -> list[str]:
    return [render_html(specimen(kind, f"T-{n:03d}", invoices=invoices, guarantor=guarantor, offer_plan_first=plan,
                                 also_due=also_due))
            for n, (kind, invoices, guarantor, plan, also_due) in enumerate(
                (kind, invoices, guarantor, plan, also_due) for kind in KINDS for invoices in (1, 3)
                for guarantor in (False, True) for plan in (False, True) for also_due in (0, 2))]


def test_every_kind_of_letter_is_read_by_the_fast_reader_into_the_tree_htmlparser_builds():
    for html in every_letter():
        fast, slow = typst_pdf._fast_tree(html), parsed_by_htmlparser(html)
        assert fast.root == slow.root and fast.style == slow.style


@pytest.mark.parametrize("html", [
    "<p>a &amp; b &lt; c &eacute;&#233;&#xe9;</p>",
    '<p class="muted">x<br/>y<br >z</p><!-- <p>not this</p> --><img class="qr" src="a&amp;b" alt>',
    "<!DOCTYPE html><html><head><title>T &amp; t</title><style>p > b { color: red }</style></head>"
    "<body><P CLASS=\"muted\">Up</P></body></html>",
    "<p>text  with\n spaces</p >\n",
])
def test_the_fast_reader_builds_the_tree_htmlparser_builds(html):
    fast, slow = typst_pdf._fast_tree(html), parsed_by_htmlparser(html)
    assert fast.root == slow.root and fast.style == slow.style


@pytest.mark.parametrize("html", [
    "<p>1 < 2</p>", "<p class='single'>quoted</p>", "<p class=bare>unquoted</p>", "<script>if (a < b) {}</script>",
    "<style>p { color: red }", "<?xml version='1.0'?><p>x</p>",
])
def test_html_the_fast_reader_does_not_know_is_read_by_htmlparser_into_the_same_tree(html):
    with pytest.raises(typst_pdf._NotSimple):
        typst_pdf._fast_tree(html)
    tree, slow = typst_pdf._tree(html), parsed_by_htmlparser(html)
    assert tree.root == slow.root and tree.style == slow.style


MEMORY = textwrap.dedent("""
    import resource
    from recouvrement.render.typst_pdf import typst_pdf
    from recouvrement.render.letters import render_html
    from recouvrement.render.views import KINDS, specimen
    peaks = []
    for chunk in range(12):
        typst_pdf([render_html(specimen(KINDS[n % len(KINDS)], f"M-{chunk:03d}-{n:03d}", invoices=1 + (chunk + n) % 3))
                   for n in range(15)])
        peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    print(peaks[3], peaks[-1])
""")


def test_a_process_laying_out_chunk_after_chunk_keeps_its_memory_bounded():
    # Without the blank compiles, this process grew by about 12 MB a chunk (the typst package's memoized layouts).
    done = subprocess.run([sys.executable, "-c", MEMORY], capture_output=True, text=True, check=True)
    after_four, after_twelve = (int(mb) for mb in done.stdout.split())
    assert after_twelve - after_four < 25, (after_four, after_twelve)


def page_text(pdf: bytes, page: int) -> str:
    out = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), "-", "-"], input=pdf, capture_output=True,
                         check=True)
    return " ".join(out.stdout.decode("utf-8").split())


# Whatever the guess of which letters may run long (none, the default, every one), each page says its letter's page
# number and page count: a letter guessed short that takes two pages is laid out again counting them.
@pytest.mark.parametrize("one_page_at_most", [10**9, typst_pdf._ONE_PAGE_AT_MOST, 0])
def test_each_letter_numbers_its_own_pages_whichever_letters_were_guessed_long(monkeypatch, one_page_at_most):
    monkeypatch.setattr(typst_pdf, "_ONE_PAGE_AT_MOST", one_page_at_most)
    views = [specimen(KINDS[n % len(KINDS)], f"G-{n:03d}", invoices=1 + 2 * (n % 2), also_due=n % 2,
                      offer_plan_first=n % 2 == 1) for n in range(6)]
    pdf, counts = typst_pdf.typst_pdf([render_html(view) for view in views])
    assert 1 in counts and 2 in counts and len(counts) == len(views)
    page = 0
    for view, count in zip(views, counts):
        for n in range(1, count + 1):
            page += 1
            text = page_text(pdf, page)
            assert f"page {n} / {count}" in text and (n > 1 or view.letter_id in text)


def test_a_chunk_of_one_page_letters_prints_page_1_of_1_on_each_without_counting():
    htmls = [render_html(specimen("relance_1", f"S-{n:03d}")) for n in range(3)]
    assert not any(typst_pdf._may_run_long(typst_pdf.letter_markup(html)) for html in htmls)
    pdf, counts = typst_pdf.typst_pdf(htmls)
    assert counts == [1, 1, 1]
    assert all("page 1 / 1" in page_text(pdf, page) for page in (1, 2, 3))
