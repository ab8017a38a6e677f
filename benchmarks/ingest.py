"""Import the scale data set into a fresh SQLite database; print rows per second per file and peak memory.

    python benchmarks/ingest.py [--invoices 1000000] [--data /tmp/scale] [--db /tmp/bench-ingest.db]
Target (issue 3): the 1,000,000-invoice set (about 2.2 million payment lines) in under 30 s, under 3 GB.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scale import arguments, ensure_scale_data, fresh_database, import_all, peak_memory_mb  # noqa: E402


def main() -> None:
    args = arguments("/tmp/bench-ingest.db")
    ensure_scale_data(args.data, args.invoices)
    engine, settings = fresh_database(args)
    started = time.perf_counter()
    print(f"{'file':<24}{'rows':>11}{'imported':>11}{'refused':>9}{'seconds':>9}{'rows/s':>11}")
    total_rows = import_all(engine, settings, args.data, lambda name, r, seconds: print(
        f"{name:<24}{r.rows_read:>11,}{r.imported:>11,}{len(r.rejects):>9,}{seconds:>9.1f}"
        f"{r.rows_read / seconds:>11,.0f}", flush=True))
    wall = time.perf_counter() - started
    print(f"{'total':<24}{total_rows:>11,}{'':>20}{wall:>9.1f}{total_rows / wall:>11,.0f}")
    print(f"peak memory: {peak_memory_mb():,.0f} MB")


if __name__ == "__main__":
    main()
