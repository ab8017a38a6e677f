"""Render N synthetic letters: HTML, text, privacy scan, and one print-batch PDF; print letters per second
per stage, total time and peak memory (this process and the largest PDF worker).

    python benchmarks/letters.py [--letters 10000] [--workers 2] [--out /tmp/batch.pdf]
Target on the 2-core machine: 10,000 letters in under 5 minutes.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recouvrement.render.letters import render_html, render_text  # noqa: E402
from recouvrement.render.pdf import render_batch_pdf  # noqa: E402
from recouvrement.render.views import KINDS, specimen  # noqa: E402

try:
    from recouvrement.core.privacy import scan_text
except ImportError:  # the scanner is optional for this benchmark
    scan_text = None


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
    print(f"{label:<22} {seconds:8.2f} s  {count / seconds:10.1f} letters/s  {cpu:8.2f} s CPU", flush=True)
    return result


def scan_all(texts: list[str]) -> int:
    findings = sum(len(scan_text(text)) for text in texts)
    if findings:
        raise SystemExit(f"privacy scan: {findings} findings in synthetic letters")
    return findings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=None, help="PDF worker processes (default: CPUs)")
    parser.add_argument("--out", type=Path, default=None, help="also write the batch PDF there")
    args = parser.parse_args()
    n, stages = args.letters, []
    views = timed("build views", n, lambda: synthetic_views(n), stages)
    htmls = timed("render HTML", n, lambda: [render_html(v) for v in views], stages)
    texts = timed("render text", n, lambda: [render_text(v) for v in views], stages)
    if scan_text is not None:
        timed("privacy scan (text)", n, lambda: scan_all(texts), stages)
    pdf, ranges = timed("batch PDF", n, lambda: render_batch_pdf(htmls, workers=args.workers), stages)
    if args.out:
        args.out.write_bytes(pdf)
    total, total_cpu = (sum(stage[i] for stage in stages) for i in (1, 2))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{'total':<22} {total:8.2f} s  {n / total:10.1f} letters/s  {total_cpu:8.2f} s CPU  "
          f"({ranges[-1][1]} pages, {len(pdf) / 1e6:.1f} MB of PDF)")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs (other work on the machine slows the wall time, not the CPU time)")
    print(f"peak memory: {own:.0f} MB (this process), {workers:.0f} MB (largest worker)")


if __name__ == "__main__":
    main()
