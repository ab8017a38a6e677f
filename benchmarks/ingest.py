"""Import the scale data set into a fresh SQLite database; print rows per second per file and peak memory.

    python benchmarks/ingest.py [--invoices 1000000] [--data /tmp/scale] [--db /tmp/bench-ingest.db]
Target (issue 3): the 1,000,000-invoice set (about 2.2 million payment lines) in under 30 s, under 3 GB.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scale import FILES, ensure_scale_data, peak_memory_mb  # noqa: E402

from recouvrement.app.imports import import_file  # noqa: E402
from recouvrement.config import Privacy, Settings  # noqa: E402
from recouvrement.db.session import open_engine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=Path("/tmp/bench-scale"))
    parser.add_argument("--db", type=Path, default=Path("/tmp/bench-ingest.db"))
    args = parser.parse_args()
    ensure_scale_data(args.data, args.invoices)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    settings = Settings(privacy=Privacy(nir_key_file=args.data / "nir.key"))
    engine = open_engine(f"sqlite:///{args.db}")
    total_rows, started = 0, time.perf_counter()
    print(f"{'file':<24}{'rows':>11}{'imported':>11}{'refused':>9}{'seconds':>9}{'rows/s':>11}")
    for name in FILES:
        t0 = time.perf_counter()
        report = import_file(engine, args.data / name, settings)
        seconds = time.perf_counter() - t0
        total_rows += report.rows_read
        print(f"{name:<24}{report.rows_read:>11,}{report.imported:>11,}{len(report.rejects):>9,}{seconds:>9.1f}"
              f"{report.rows_read / seconds:>11,.0f}", flush=True)
    wall = time.perf_counter() - started
    print(f"{'total':<24}{total_rows:>11,}{'':>20}{wall:>9.1f}{total_rows / wall:>11,.0f}")
    print(f"peak memory: {peak_memory_mb():,.0f} MB")


if __name__ == "__main__":
    main()
