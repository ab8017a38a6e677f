"""A night's letters composed in worker processes: each letter's HTML (with its QR code), its text and its e-mail,
each privacy-scanned, and the postal ones laid out chunk by chunk into the parts of the print batch, each part's
text scanned too.

The caller (app/remind.py) builds the letters' views and keeps everything that writes: files, the database, the
audit. Here nothing is written and nothing is decided; a letter the scanner refuses comes back refused, with the
refusal's message, and nothing made for it. Letters are composed in chunks, in the jobs' order, by spawned workers
(they import neither pandas nor the database: see `recouvrement.money`), so that the HTML, the e-mails and the
Typst layout of one chunk overlap with the others' and with the caller's writing (issue #16: 10,000 letters in
under 2 minutes on 2 cores).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat
from multiprocessing import get_context

from recouvrement.core.privacy import Finding, scan_text
from recouvrement.errors import RecouvrementError
from recouvrement.render.views import LetterView
from recouvrement.scanner import email_text, ensure_clean, html_text, pdf_text

# Below this many letters they are composed in the caller's process: starting workers would cost more.
PARALLEL_FROM = 200
# Letters a worker composes at a time; its postal ones are one Typst document (Typst holds a document's whole layout:
# 100 letters, about 300 MB in the worker; see render/pdf.py).
CHUNK = 100
STAGES = ("HTML", "text", "scans", "e-mail", "PDF layout", "PDF scan")


@dataclass(frozen=True)
class LetterJob:
    view: LetterView
    email: bool     # also sent by e-mail: its .eml is made and scanned
    postal: bool    # printed: laid out in the print batch


@dataclass(frozen=True)
class Composed:
    letter_id: str
    html: str = ""
    text: str = ""
    eml: bytes | None = None
    refused: str | None = None      # why the letter was refused (a leak, an address refused); nothing else made


@dataclass(frozen=True)
class BatchPart:
    """A chunk's postal letters laid out as one PDF: their ids in order, the page count of each, and what the
    scanner found in its text (lines counted from the part's first; `lines` to number the next part's)."""
    letter_ids: tuple[str, ...]
    pdf: bytes
    counts: tuple[int, ...]
    findings: tuple[Finding, ...]
    lines: int


@dataclass
class ComposedChunk:
    letters: list[Composed]
    part: BatchPart | None
    cpu: dict[str, float] = field(default_factory=dict)   # seconds of CPU by stage (STAGES), the workers' own


def compose(jobs: Sequence[LetterJob], sender: str, known: tuple[str, ...] = (), *, workers: int | None = None,
            chunk_size: int | None = None) -> Iterator[ComposedChunk]:
    """The jobs composed, chunk after chunk in their order (lazily: the caller writes one while the next are made).
    `workers` defaults to the CPUs from PARALLEL_FROM letters on, else 1 (in this process)."""
    size = chunk_size or CHUNK
    chunks = [list(jobs[i:i + size]) for i in range(0, len(jobs), size)]
    if workers is None:
        workers = (os.cpu_count() or 1) if len(jobs) >= PARALLEL_FROM else 1
    if workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            yield compose_chunk(chunk, sender, known)
        return
    # spawn, not fork: the caller (scheduler, web) may run threads, which fork does not copy safely; the workers
    # are then our own children, so their CPU and memory show in rusage.
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=get_context("spawn")) as pool:
        yield from pool.map(compose_chunk, chunks, repeat(sender), repeat(known))


def compose_chunk(jobs: Sequence[LetterJob], sender: str, known: tuple[str, ...] = ()) -> ComposedChunk:
    """Each letter of the chunk composed and scanned; then its postal letters, those not refused, laid out as one
    PDF whose text is scanned."""
    cpu = dict.fromkeys(STAGES, 0.0)
    letters = [compose_letter(job, sender, known, cpu) for job in jobs]
    printed = [(job.view.letter_id, made.html) for job, made in zip(jobs, letters) if job.postal and not made.refused]
    return ComposedChunk(letters, _batch_part(printed, known, cpu) if printed else None, cpu)


def compose_letter(job: LetterJob, sender: str, known: tuple[str, ...] = (),
                   cpu: dict[str, float] | None = None) -> Composed:
    """One letter's HTML, text and (if it goes by e-mail) .eml bytes, each scanned before anything is kept, in
    the order app/remind.py always scanned them: HTML, text, the QR code's payload, the e-mail."""
    from recouvrement.render.letters import html_to_text, render_html
    from recouvrement.render.sepa_qr import epc_payload
    view, lid = job.view, job.view.letter_id
    clock = _Clock(cpu)
    html = clock("HTML", render_html, view)
    text = clock("text", html_to_text, html)  # what render_text(view) gives, without rendering the HTML again
    try:
        clock("scans", ensure_clean, html_text(html), f"{lid}.html", known=known)
        clock("scans", ensure_clean, text, f"{lid}.txt", known=known)
        clock("scans", ensure_clean, epc_payload(view), f"{lid} (QR code)", known=known)
        eml = clock("e-mail", _email, view, sender, html, text, known) if job.email else None
    except RecouvrementError as refused:    # a leak, or an address refused when the message is built
        return Composed(lid, refused=str(refused))
    return Composed(lid, html, text, eml)


def _email(view: LetterView, sender: str, html: str, text: str, known: tuple[str, ...]) -> bytes:
    """The e-mail as .eml bytes, refused (PrivacyLeak) if its whole text, read back as a reader would, says anything
    medical."""
    from recouvrement.channels.email import email_bytes, email_html
    data = email_bytes(view, sender, html, text)
    # The message is parsed back whole, every header read; its text and HTML parts, when they decode to the letter's
    # text and HTML just scanned, are not read by the detectors a second time (about 3 ms a letter).
    read_back = email_text(data, f"{view.letter_id}.eml", scanned=(text, email_html(view, html)))
    ensure_clean(read_back, f"{view.letter_id}.eml", known=known)
    return data


def _batch_part(printed: list[tuple[str, str]], known: tuple[str, ...], cpu: dict[str, float]) -> BatchPart:
    from recouvrement.render.pdf import chunk_pdf
    clock = _Clock(cpu)
    pdf, counts = clock("PDF layout", chunk_pdf, [html for _, html in printed])
    text = clock("PDF scan", pdf_text, pdf, "batch")    # pdftotext, a child process: its CPU is counted
    findings = clock("PDF scan", scan_text, text, None, known)
    return BatchPart(tuple(lid for lid, _ in printed), pdf, tuple(counts), tuple(findings), text.count("\n"))


class _Clock:
    """Adds each call's CPU time (this process and its finished children) to its stage."""

    def __init__(self, cpu: dict[str, float] | None) -> None:
        self.cpu = cpu

    def __call__(self, stage: str, function, *args, **kwargs):
        if self.cpu is None:
            return function(*args, **kwargs)
        started = _cpu()
        try:
            return function(*args, **kwargs)
        finally:
            self.cpu[stage] = self.cpu.get(stage, 0.0) + _cpu() - started


def _cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime
