"""Import + reconcile the scale data set; print rows per second per stage, wall time, peak memory, and the
ratio of the total to what pyarrow alone takes to parse the same CSV files (measured in the same run).

    python benchmarks/reconcile.py [--invoices 1000000] [--data /tmp/scale] [--db /tmp/bench-reconcile.db]
Targets (issue 4) on the 2-core machine: under 45 s, under 3 GB, ratio under 30x; a re-run with nothing new under 5 s.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scale import arguments, bare_parse_seconds, ensure_scale_data, fresh_database, import_all, peak_memory_mb  # noqa: E402,E501

from sqlalchemy import text  # noqa: E402

from recouvrement.app.reconcile import run_reconcile  # noqa: E402


def accuracy(engine, truth: Path) -> str:
    """Allocations compared with the generator's ground truth: payments settled on an invoice not meant for them."""
    if not truth.exists():
        return "no expected.csv"
    meant = {}
    with open(truth, encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            meant[row["payment_id"]] = set(row["invoice_numbers"].split())
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT payment_id, invoice_number FROM allocation")).all()
    wrong = sum(1 for pid, inv in rows if pid in meant and meant[pid] and inv not in meant[pid])
    noise = sum(1 for pid, inv in rows if pid in meant and not meant[pid])
    return f"{len(rows):,} allocations, {wrong:,} to an invoice not meant, {noise:,} from noise"


def main() -> None:
    args = arguments("/tmp/bench-reconcile.db")
    ensure_scale_data(args.data, args.invoices)
    floor = bare_parse_seconds(args.data)
    engine, settings = fresh_database(args)
    started = time.perf_counter()
    rows = import_all(engine, settings, args.data, lambda name, r, seconds: print(
        f"import {name:<24}{r.rows_read:>11,} rows {seconds:>7.1f} s {r.rows_read / seconds:>11,.0f} rows/s",
        flush=True))
    imported = time.perf_counter()
    result = run_reconcile(engine)
    done = time.perf_counter()
    print(f"reconcile {result.payments:>29,} payments {done - imported:>5.1f} s "
          f"{result.payments / (done - imported):>11,.0f} rows/s; by rule {result.by_rule}; queue {result.exceptions}")
    total = done - started
    print(f"import + reconcile: {total:.1f} s wall ({rows:,} input rows, {rows / total:,.0f} rows/s)")
    print(f"bare pyarrow parse of the same files: {floor:.2f} s; ratio {total / floor:.1f}x")
    t0 = time.perf_counter()
    again = run_reconcile(engine)
    print(f"re-run with nothing new: {time.perf_counter() - t0:.2f} s (skipped={again.skipped})")
    print(f"peak memory: {peak_memory_mb():,.0f} MB")
    print(f"accuracy: {accuracy(engine, args.data / 'expected.csv')}")


if __name__ == "__main__":
    main()
