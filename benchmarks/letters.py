"""Render N synthetic letters as the day's run does: HTML (with its SEPA QR code), text, e-mail, privacy scans,
and one print-batch PDF scanned as a file; print letters per second and CPU ms per letter per stage, total time
and peak memory (this process and the largest PDF worker).

    python benchmarks/letters.py [--letters 10000] [--workers 2] [--out /tmp/batch.pdf]
Target on the 2-core machine (issue #16): 10,000 letters in under 2 minutes.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recouvrement.channels.email import build_email  # noqa: E402
from recouvrement.render.letters import html_to_text, render_html  # noqa: E402
from recouvrement.render.pdf import render_batch_pdf  # noqa: E402
from recouvrement.render.sepa_qr import epc_payload  # noqa: E402
from recouvrement.render.views import KINDS, specimen  # noqa: E402
from recouvrement.scanner import email_text, ensure_clean, html_text, pdf_text  # noqa: E402


def synthetic_views(count: int) -> list:
    """Every kind, one to three invoices, half to a guarantor, a third with the plan offered first."""
    return [specimen(KINDS[i % len(KINDS)], f"BENCH-{i:06d}", invoices=1 + i % 3,
                     guarantor=i % 2 == 1, offer_plan_first=i % 3 == 0) for i in range(count)]


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the PDF workers)."""
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(label: str, count: int, work, stages: list):
    """Run one stage; print wall time, letters per second and CPU time (the machine may be shared)."""
    started, cpu = time.perf_counter(), cpu_seconds()
    result = work()
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    stages.append((label, seconds, cpu))
    print(f"{label:<22} {seconds:8.2f} s  {count / seconds:10.1f} letters/s  {cpu:8.2f} s CPU "
          f"({1000 * cpu / count:6.2f} ms/letter)", flush=True)
    return result


def scan_letters(views: list, htmls: list[str], texts: list[str]) -> None:
    """What app/remind.py scans before writing a letter: its HTML, its text and its QR code's payload."""
    for view, html, text in zip(views, htmls, texts):
        ensure_clean(html_text(html), f"{view.letter_id}.html")
        ensure_clean(text, f"{view.letter_id}.txt")
        ensure_clean(epc_payload(view), f"{view.letter_id} (QR code)")


def emails(views: list, htmls: list[str], texts: list[str]) -> list[bytes]:
    """Each letter as the e-mail app/remind.py writes, scanned whole."""
    import email.policy
    out = []
    for view, html, text in zip(views, htmls, texts):
        data = build_email(view, "facturation@cds-lilas.example", html, text).as_bytes(policy=email.policy.SMTP)
        ensure_clean(email_text(data, f"{view.letter_id}.eml"), f"{view.letter_id}.eml")
        out.append(data)
    return out


def scan_pdf(pdf: bytes) -> None:
    ensure_clean(pdf_text(pdf, "batch.pdf"), "batch.pdf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=None, help="PDF worker processes (default: CPUs)")
    parser.add_argument("--out", type=Path, default=None, help="also write the batch PDF there")
    args = parser.parse_args()
    n, stages = args.letters, []
    views = timed("build views", n, lambda: synthetic_views(n), stages)
    htmls = timed("render HTML", n, lambda: [render_html(v) for v in views], stages)
    texts = timed("render text", n, lambda: [html_to_text(h) for h in htmls], stages)
    timed("privacy scan (letters)", n, lambda: scan_letters(views, htmls, texts), stages)
    timed("e-mails (built, scan)", n, lambda: emails(views, htmls, texts), stages)
    pdf, ranges = timed("batch PDF", n, lambda: render_batch_pdf(htmls, workers=args.workers), stages)
    timed("privacy scan (PDF)", n, lambda: scan_pdf(pdf), stages)
    if args.out:
        args.out.write_bytes(pdf)
    total, total_cpu = (sum(stage[i] for stage in stages) for i in (1, 2))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{'total':<22} {total:8.2f} s  {n / total:10.1f} letters/s  {total_cpu:8.2f} s CPU "
          f"({1000 * total_cpu / n:6.2f} ms/letter; {ranges[-1][1]} pages, {len(pdf) / 1e6:.1f} MB of PDF)")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs (other work on the machine slows the wall time, not the CPU time)")
    print(f"peak memory: {own:.0f} MB (this process), {workers:.0f} MB (largest worker)")


if __name__ == "__main__":
    main()
