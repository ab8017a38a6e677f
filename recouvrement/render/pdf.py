"""Letters as PDF: one letter on demand, or the day's print batch as one file.

Our letters' HTML is laid out by Typst (render/typst_pdf.py): about 6 ms of CPU a letter where WeasyPrint
needs 150 to 200 (issue #16, benchmarks/letters.py). WeasyPrint stays for an HTML Typst cannot lay out (a
template an installation changed with elements or classes of its own): such a letter, or a batch holding one,
is laid out as before, so nothing is ever printed with a part missing.
Each letter starts on a new page and numbers its own pages ("page 1 / 2"). Large batches are split into
chunks laid out in parallel worker processes, then the chunk PDFs are concatenated (pdfunite, else pypdf).
WeasyPrint speed-ups kept for that path: letter.css is parsed once, a small user-agent sheet replaces
WeasyPrint's HTML5 one, and the cyclic garbage collector pauses during a chunk.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import io
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from typing import TYPE_CHECKING

from pypdf import PdfWriter

from recouvrement.render.letters import TEMPLATES_DIR
from recouvrement.render.typst_pdf import NotTypstable, typst_pdf

if TYPE_CHECKING:  # WeasyPrint is imported when a letter needs it: a PDF worker spares its 1-2 s of import
    from weasyprint import CSS
    from weasyprint.document import Document
    from weasyprint.text.fonts import FontConfiguration

CSS_PATH = TEMPLATES_DIR / "letter.css"
USER_AGENT_PATH = TEMPLATES_DIR / "user-agent.css"
# Below this many letters a batch is laid out in this process: starting workers would cost more.
PARALLEL_FROM = 200
_STYLE = re.compile(r"<style>(.*?)</style>", re.S)
_BETWEEN_TAGS = re.compile(r">[ \t]*\n\s*<")


@functools.cache
def _fonts() -> FontConfiguration:
    from weasyprint.text.fonts import FontConfiguration
    return FontConfiguration()


@functools.cache
def _css_text() -> str:
    return CSS_PATH.read_text(encoding="utf-8").strip()


@functools.cache
def _stylesheet() -> CSS:
    """letter.css parsed once: parsing it again for every letter would cost a third of the layout."""
    from weasyprint import CSS
    return CSS(filename=str(CSS_PATH), font_config=_fonts())


@functools.cache
def _user_agent() -> CSS:
    from weasyprint import CSS
    return CSS(filename=str(USER_AGENT_PATH), font_config=_fonts())


@functools.cache
def _letter_html() -> type:
    from weasyprint import HTML

    class _LetterHTML(HTML):
        """A letter's HTML, styled by the letters' small user-agent sheet (see user-agent.css).

        `_ua_stylesheets` is WeasyPrint's hook for its HTML5 sheet (its own tests override it the same
        way); were it renamed, letters would simply be laid out with the full sheet, a little slower.
        """

        def _ua_stylesheets(self, forms: bool = False) -> list[CSS]:
            return [_user_agent()]
    return _LetterHTML


def _layout(html: str) -> Document:
    """One letter laid out; the inline copy of letter.css is swapped for the parsed one.

    An HTML that is not one of our letters (no inline letter.css) gets WeasyPrint's full sheet.
    """
    match = _STYLE.search(html)
    if match and match.group(1).strip() == _css_text():
        # Line breaks between two tags are the template's layout, not text: dropping them spares
        # the layout a few hundred empty boxes per letter.
        html = _BETWEEN_TAGS.sub("><", html[:match.start()] + html[match.end():])
        document: Document = _letter_html()(string=html, base_url=str(TEMPLATES_DIR)).render(
            stylesheets=[_stylesheet()], font_config=_fonts())
        return document
    from weasyprint import HTML
    return HTML(string=html, base_url=str(TEMPLATES_DIR)).render(font_config=_fonts())


def render_pdf(html: str) -> bytes:
    """A single letter as PDF bytes."""
    try:
        return typst_pdf([html])[0]
    except NotTypstable:
        return weasyprint_pdf(html)


def weasyprint_pdf(html: str) -> bytes:
    """A single letter as PDF bytes, laid out by WeasyPrint."""
    return _layout(html).write_pdf()


@contextlib.contextmanager
def _gc_paused():
    """Layout builds millions of short-lived objects: the cyclic collector would spend a quarter of
    the time scanning them. A chunk is bounded, so its garbage is collected once at the end."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def chunk_pdf(htmls: Sequence[str]) -> tuple[bytes, list[int]]:
    """Several letters in one PDF, each from a new page: (PDF bytes, page count of each letter)."""
    try:
        return typst_pdf(list(htmls))
    except NotTypstable:
        return _weasyprint_chunk(htmls)


def _weasyprint_chunk(htmls: Sequence[str]) -> tuple[bytes, list[int]]:
    with _gc_paused():
        documents = [_layout(html) for html in htmls]
        pages = [page for document in documents for page in document.pages]
        pdf = documents[0].copy(pages).write_pdf()
        counts = [len(document.pages) for document in documents]
    del documents, pages
    gc.collect()
    return pdf, counts


def page_ranges(counts: Sequence[int]) -> list[tuple[int, int]]:
    """1-based (first, last) page of each letter from the page count of each."""
    ranges, last = [], 0
    for count in counts:
        ranges.append((last + 1, last + count))
        last += count
    return ranges


def _concatenate(chunks: Iterable[tuple[bytes, list[int]]]) -> tuple[bytes, list[int]]:
    """One PDF from the chunk PDFs, pages in order, and the page count of each letter."""
    pdfs, counts = [], []
    for pdf, chunk_counts in chunks:
        pdfs.append(pdf)
        counts.extend(chunk_counts)
    return concatenate_pdfs(pdfs), counts


def concatenate_pdfs(pdfs: Sequence[bytes]) -> bytes:
    """One PDF of the given PDFs' pages, in order: by poppler's pdfunite when installed (about 0.4 ms of CPU a letter
    where pypdf, which parses every object in Python, needs about 2: issue #16), else by pypdf."""
    if len(pdfs) == 1:
        return pdfs[0]
    if shutil.which("pdfunite"):
        with tempfile.TemporaryDirectory(prefix="recouvrement-batch-") as folder:
            names = [os.path.join(folder, f"{n:05d}.pdf") for n in range(len(pdfs))]
            for name, pdf in zip(names, pdfs):
                Path(name).write_bytes(pdf)
            done = subprocess.run(["pdfunite", *names, os.path.join(folder, "batch.pdf")], capture_output=True,
                                  timeout=600, check=False)
            if done.returncode == 0:
                return Path(folder, "batch.pdf").read_bytes()
    writer = PdfWriter()
    for pdf in pdfs:
        writer.append(io.BytesIO(pdf))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def render_batch_pdf(htmls: Sequence[str], workers: int | None = None,
                     chunk_size: int = 125) -> tuple[bytes, list[tuple[int, int]]]:
    """The day's print batch as one PDF, and the 1-based (first, last) page range of each letter.

    `workers` defaults to the number of CPUs from PARALLEL_FROM letters on, else to 1 (in process).
    """
    if not htmls:
        raise ValueError("an empty print batch has no PDF")
    if workers is None:
        workers = (os.cpu_count() or 1) if len(htmls) >= PARALLEL_FROM else 1
    if len(htmls) <= chunk_size:
        pdf, counts = chunk_pdf(htmls)
        return pdf, page_ranges(counts)
    # Chunks bound the memory: Typst holds a whole document's layout (1,000 letters in one document peaked at 1.8 GB,
    # 100 at about 300 MB; render/typst_pdf.py forgets each document's layouts after it).
    chunks = [list(htmls[i:i + chunk_size]) for i in range(0, len(htmls), chunk_size)]
    if workers == 1:
        pdf, counts = _concatenate(chunk_pdf(chunk) for chunk in chunks)
        return pdf, page_ranges(counts)
    # spawn, not fork: the caller (scheduler, web) may run threads, which fork does not copy
    # safely; the workers are then our own children, so their CPU and memory show in rusage.
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        pdf, counts = _concatenate(pool.map(chunk_pdf, chunks))
    return pdf, page_ranges(counts)
