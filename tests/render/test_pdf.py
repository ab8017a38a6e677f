"""Letters as PDF: the text a reader sees, and the day's print batch with one page range per letter."""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess

import pytest
from pypdf import PdfReader
from weasyprint import HTML

from recouvrement.core.privacy import scan_text
from recouvrement.core.references import format_rf
from recouvrement.money import format_eur
from recouvrement.render.letters import TEMPLATES_DIR, render_html
from recouvrement.render.pdf import USER_AGENT_PATH, render_batch_pdf, render_pdf, weasyprint_pdf
from recouvrement.render.typst_pdf import NotTypstable, letter_markup
from recouvrement.render.views import KINDS, specimen
from recouvrement.scanner import extract_text

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


def pdf_text(pdf: bytes, first: int | None = None, last: int | None = None) -> str:
    """The text layer as pdftotext reads it, on one line, pages first..last."""
    pages = [arg for flag, page in (("-f", first), ("-l", last)) if page for arg in (flag, str(page))]
    out = subprocess.run(["pdftotext", *pages, "-", "-"], input=pdf, capture_output=True, check=True)
    return re.sub(r"\s+", " ", out.stdout.decode("utf-8"))


def producer(pdf: bytes) -> str:
    """The program that laid the PDF out, from its metadata."""
    info = PdfReader(io.BytesIO(pdf)).metadata or {}
    return f"{info.get('/Producer', '')} {info.get('/Creator', '')}"


@pytest.fixture(scope="module")
def letters():
    """One PDF per kind, two invoices each, the plan offered first (the longest letters)."""
    views = [specimen(kind, f"L-{kind}", invoices=2, offer_plan_first=True) for kind in KINDS]
    return [(view, render_pdf(render_html(view))) for view in views]


def test_a_letter_is_a_pdf(letters):
    for _, pdf in letters:
        assert pdf.startswith(b"%PDF-")


def test_the_pdf_shows_invoices_total_iban_and_payment_references(letters):
    for view, pdf in letters:
        text = pdf_text(pdf)
        for line in view.lines:
            assert line.invoice_number in text
            # One reference per letter (issue #14): the invoices' own only where the letter has none (a plan).
            assert (format_rf(line.rf_reference) in text) == (view.payment_reference == "")
        assert re.sub(r"\s", " ", format_eur(view.total_due_cents)) in text
        if view.payment_reference:
            assert text.count(format_rf(view.payment_reference)) == 1
        assert "FR76 3000 6000 0112 3456 7890 189" in text


def test_the_pdf_invites_a_call_and_offers_to_spread_payments(letters):
    for _, pdf in letters:
        text = pdf_text(pdf)
        assert "Appelez-nous au 01 43 62 00 00" in text
        assert "plusieurs fois" in text


def test_the_pdf_claims_no_fees_beyond_saying_there_are_none(letters):
    for view, pdf in letters:
        text = pdf_text(pdf).lower().replace("aucuns frais ni intérêts ne vous seront réclamés", "")
        assert "frais" not in text, view.kind
        assert "intérêts de retard" not in text and "intérêt" not in text, view.kind


def test_the_pdf_passes_the_privacy_scan_as_a_file(letters, tmp_path):
    for view, pdf in letters:
        path = tmp_path / f"{view.letter_id}.pdf"
        path.write_bytes(pdf)
        assert scan_text(extract_text(path)) == []


def test_the_recipient_address_is_in_the_envelope_window(letters):
    _, pdf = letters[0]
    out = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", "-", "-"], input=pdf,
                         capture_output=True, check=True).stdout.decode("utf-8")
    # "Mme" opens the recipient block, its only occurrence on the first page of an avis_rejet.
    x, y = (float(v) for v in re.search(r'xMin="([\d.]+)" yMin="([\d.]+)"[^>]*>Mme<', out).groups())
    mm = 72 / 25.4
    assert 108 * mm < x < 115 * mm  # 110 mm from the left edge of the sheet
    assert 48 * mm < y < 56 * mm  # first line 50 mm from the top edge


# WeasyPrint lays out only what Typst cannot (render/pdf.py): its small user-agent sheet still has to be right there.
@pytest.mark.parametrize("kind", KINDS)
def test_the_small_user_agent_sheet_lays_out_every_word_where_the_full_one_does(kind):
    html = render_html(specimen(kind, invoices=3, guarantor=True, offer_plan_first=True))
    full = HTML(string=html, base_url=str(TEMPLATES_DIR)).write_pdf()  # WeasyPrint's HTML5 sheet
    boxes = [subprocess.run(["pdftotext", "-bbox", "-", "-"], input=pdf, capture_output=True, check=True).stdout
             for pdf in (weasyprint_pdf(html), full)]
    assert boxes[0] == boxes[1]


def test_every_element_of_the_letters_is_styled_by_the_small_user_agent_sheet():
    sheet = USER_AGENT_PATH.read_text(encoding="utf-8")
    tags = {tag for kind in KINDS for tag in re.findall(r"<([a-z][a-z0-9]*)", render_html(specimen(kind, invoices=2)))}
    assert tags and all(re.search(rf"(^|[\s,]){tag}[\s,{{:]", sheet, re.M) for tag in tags), tags


def test_a_batch_gives_one_page_range_per_letter_and_the_right_page_count():
    views = [specimen(KINDS[i % len(KINDS)], f"B-{i:03d}", invoices=1 + i % 3) for i in range(7)]
    pdf, ranges = render_batch_pdf([render_html(v) for v in views])
    assert len(ranges) == len(views)
    assert ranges[0][0] == 1
    assert all(first <= last for first, last in ranges)
    assert all(nxt[0] == prev[1] + 1 for prev, nxt in zip(ranges, ranges[1:]))
    assert len(PdfReader(io.BytesIO(pdf)).pages) == ranges[-1][1]


def test_each_letter_of_a_batch_starts_on_its_own_page():
    views = [specimen(KINDS[i % len(KINDS)], f"B-{i:03d}") for i in range(5)]
    pdf, ranges = render_batch_pdf([render_html(v) for v in views])
    for view, (first, last) in zip(views, ranges):
        assert f"Référence du courrier : {view.letter_id}" in pdf_text(pdf, first, first)
        others = pdf_text(pdf, first, last)
        assert all(v.letter_id not in others for v in views if v is not view)


def test_a_batch_split_across_worker_processes_keeps_order_and_ranges():
    views = [specimen(KINDS[i % len(KINDS)], f"P-{i:03d}") for i in range(7)]
    htmls = [render_html(v) for v in views]
    parallel_pdf, parallel_ranges = render_batch_pdf(htmls, workers=2, chunk_size=3)
    _, serial_ranges = render_batch_pdf(htmls, workers=1)
    assert parallel_ranges == serial_ranges
    assert len(PdfReader(io.BytesIO(parallel_pdf)).pages) == serial_ranges[-1][1]
    for view, (first, _) in zip(views, parallel_ranges):
        assert view.letter_id in pdf_text(parallel_pdf, first, first)


def test_a_batch_split_into_chunks_in_one_process_gives_the_same_ranges():
    htmls = [render_html(specimen(KINDS[i % len(KINDS)], f"S-{i:03d}", invoices=1 + i % 3)) for i in range(5)]
    chunked_pdf, chunked = render_batch_pdf(htmls, workers=1, chunk_size=2)
    _, whole = render_batch_pdf(htmls, workers=1)
    assert chunked == whole
    assert len(PdfReader(io.BytesIO(chunked_pdf)).pages) == whole[-1][1]


def test_an_empty_batch_is_refused():
    with pytest.raises(ValueError):
        render_batch_pdf([])


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_letter_is_laid_out_by_typst_not_the_slow_fallback(kind):
    for view in (specimen(kind, invoices=3, guarantor=True, offer_plan_first=True, also_due=1),
                 specimen(kind, invoices=1)):
        assert "#letter-head[" in letter_markup(render_html(view))


def test_an_element_typst_does_not_know_is_refused_and_the_letter_laid_out_by_weasyprint():
    html = render_html(specimen("relance_1")).replace("<h1>", "<h1><em>Important</em> ")
    with pytest.raises(NotTypstable):
        letter_markup(html)
    pdf = render_pdf(html)
    assert "WeasyPrint" in producer(pdf) and "Important Rappel de paiement" in pdf_text(pdf)


def test_markup_characters_in_a_name_are_printed_as_they_are():
    name = 'Mme Zoé #set text(size: 40pt) *Dupont* $x$ "\\" ] [ <a> @b = / ~'
    view = dataclasses.replace(specimen("relance_1"), recipient=dataclasses.replace(specimen().recipient, name=name))
    pdf = render_pdf(render_html(view))
    assert "Typst" in producer(pdf) and name in pdf_text(pdf)


def test_each_letter_of_a_batch_numbers_its_own_pages():
    views = [specimen(KINDS[i % len(KINDS)], f"N-{i:03d}", invoices=1 + 2 * (i % 2), also_due=i % 2,
                      offer_plan_first=i % 2 == 1) for i in range(6)]
    pdf, ranges = render_batch_pdf([render_html(v) for v in views])
    for first, last in ranges:
        for page in range(first, last + 1):
            assert f"page {page - first + 1} / {last - first + 1}" in pdf_text(pdf, page, page)


def test_a_page_with_a_style_of_its_own_is_laid_out_by_weasyprint_with_its_style():
    html = "<!DOCTYPE html><html><head><style>p { color: red }</style></head><body><p>Relevé de compte</p></body></html>"
    with pytest.raises(NotTypstable):
        letter_markup(html)
    assert "WeasyPrint" in producer(render_pdf(html))
