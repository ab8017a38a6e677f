"""One night on a database holding the history: the scale set split into its history and its last day(s),
the history imported and reconciled, then the day; prints both times, the ratio, and the accuracy of the
allocations against the generator's ground truth (as benchmarks/reconcile.py does).

    python benchmarks/incremental.py [--invoices 1000000] [--days 1] [--pile] [--data DIR] [--db FILE]
                                     [--history-db FILE]
Target (issue 16) on the 2-core machine: the day (about 1,300 invoices and 3,000 payment lines at 1M) imported
and reconciled in under 2 % of the history's time and under 2 s.

The generator clips every late payment onto the day before its as-of date (tools.split_days): that day holds
a pile of many ordinary days' payments. The day measured is the last ordinary day (and the `--days` before
it); `--pile` adds the pile day. Rows after the day are left out of both runs.

`--history-db FILE` keeps the history: when FILE does not exist, the history is built as usual and FILE is a
copy of the database just after it (with its audit checkpoint and the history's figures beside it, in
FILE.json); when it exists, the history is not built again: `--db` becomes a fresh copy of FILE, the
history's figures are read back from FILE.json, and only the night runs (the 1M history takes about a
minute; a night can so be measured again and again on the same history).

Which process runs the night matters by about a fifth of it: a fresh process (`recouvrement run` started by
cron, or this script on a kept history) pays its libraries' first uses in the night (the importers and the
phone numbers' module loaded, Arrow's reader and kernels, pandas' first conversions, regular expressions): about
0.2 s at 1M. `recouvrement schedule` runs every night in one long-running process, a new engine (and so a cold
page cache) each night. `--again` (with --history-db) replays the night in this process on a second fresh copy of
the history, as that scheduler's next night; both figures are printed, the first labelled by how its process
came (the history's own process when the history was built in this run).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))   # tools.split_days, from any folder
from _scale import FILES, ensure_scale_data, fresh_database, peak_memory_mb  # noqa: E402
from reconcile import accuracy  # noqa: E402

from recouvrement.app.imports import import_file  # noqa: E402
from recouvrement.app.reconcile import run_reconcile  # noqa: E402
from recouvrement.db.reconcile import waiting_count  # noqa: E402
from tools.split_days import last_dated_day, ordinary_last_day, split  # noqa: E402


def arguments():
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=1, help="how many last ordinary days make the night")
    parser.add_argument("--pile", action="store_true", help="add the generator's pile day to the night")
    parser.add_argument("--data", type=Path, default=None, help="default: /tmp/bench-scale-<invoices>")
    parser.add_argument("--db", type=Path, default=Path("/tmp/bench-incremental.db"))
    parser.add_argument("--history-db", type=Path, default=None,
                        help="keep the history's database there, or run the night on a fresh copy of it")
    parser.add_argument("--again", action="store_true",
                        help="with --history-db: the night again, in this process, on another fresh copy")
    args = parser.parse_args()
    if args.again and not args.history_db:
        parser.error("--again needs --history-db (the night is replayed on a fresh copy of it)")
    args.data = args.data or Path(f"/tmp/bench-scale-{args.invoices}")
    return args


def queue_size(engine) -> int:
    with engine.connect() as conn:
        return waiting_count(conn)


def cpu() -> float:
    """CPU seconds (user + sys) of this process and its children so far."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def night(engine, settings, folder: Path) -> tuple[float, float, float, float, int, object]:
    """Import every file of `folder`, then reconcile: (import seconds, reconcile seconds, import CPU seconds,
    reconcile CPU seconds, rows read, report)."""
    started, cpu_started = time.perf_counter(), cpu()
    rows = sum(import_file(engine, folder / name, settings).rows_read for name in FILES if (folder / name).exists())
    imported, cpu_imported = time.perf_counter(), cpu()
    report = run_reconcile(engine)
    return (imported - started, time.perf_counter() - imported, cpu_imported - cpu_started, cpu() - cpu_imported,
            rows, report)


def _files(db: Path) -> list[tuple[Path, str]]:
    return [(Path(f"{db}{suffix}"), suffix) for suffix in ("", "-wal", "-shm", ".audit-checkpoint")]


def keep_history(engine, args, figures: dict) -> None:
    """Copy the database just built (and its audit checkpoint) to --history-db, its figures to FILE.json."""
    engine.dispose()
    for path, suffix in _files(args.db):
        if path.exists():
            shutil.copyfile(path, f"{args.history_db}{suffix}")
    Path(f"{args.history_db}.json").write_text(json.dumps(figures))


def history_copy(args):
    """A fresh copy of --history-db as --db, opened as fresh_database opens it, and the history's figures."""
    for path, _suffix in _files(args.db):
        path.unlink(missing_ok=True)
    for path, suffix in _files(args.history_db):
        if path.exists():
            shutil.copyfile(path, f"{args.db}{suffix}")
    os.sync()   # the copy's pages on disk now: else the night's first checkpoint waits for a gigabyte to be written
    engine, settings = fresh_database(args, keep=True)
    return engine, settings, json.loads(Path(f"{args.history_db}.json").read_text())


def one_night(engine, settings, folder: Path, label: str, history: float, h_cpu: float) -> None:
    """The night of `folder` run and printed under `label`, with the queue after it and its ratio to the history."""
    d_import, d_reconcile, d_cpu_import, d_cpu_reconcile, d_rows, d_report = night(engine, settings, folder)
    day, d_cpu = d_import + d_reconcile, d_cpu_import + d_cpu_reconcile
    print(label)
    print(f"night:   import {d_import:.3f} s + reconcile {d_reconcile:.3f} s = {day:.3f} s wall; "
          f"CPU {d_cpu_import:.3f} + {d_cpu_reconcile:.3f} = {d_cpu:.3f} s "
          f"({d_rows:,} rows; {d_report.payments:,} payments reconciled: the new lines and the queue entries what "
          f"changed can reach; by rule {d_report.by_rule}; queue {d_report.exceptions})")
    print(f"queue after the night: {queue_size(engine):,} entries waiting (unmatched or ambiguous)")
    print(f"ratio night / history: wall {100 * day / history:.2f} %, CPU {100 * d_cpu / h_cpu:.2f} % "
          f"(target < 2 % and < 2 s)", flush=True)


def main() -> None:
    args = arguments()
    ensure_scale_data(args.data, args.invoices)
    last = last_dated_day(args.data) if args.pile else ordinary_last_day(args.data)
    first = ordinary_last_day(args.data) - timedelta(days=args.days - 1)
    work = args.data.parent / f"{args.data.name}-split-{first}-{last}"
    counts = split(args.data, work / "history", work / "day", first, last)
    print(f"history: before {first}, {sum(counts.history.values()):,} rows; night {first}..{last}: "
          + ", ".join(f"{name} {n:,}" for name, n in counts.day.items())
          + f"; left out (later): {sum(counts.dropped.values()):,} rows", flush=True)
    copied = bool(args.history_db and args.history_db.exists())
    if copied:
        engine, settings, figures = history_copy(args)
        print(f"history: copied from {args.history_db} (built earlier; its figures below are that run's)")
    else:
        engine, settings = fresh_database(args)
        h_import, h_reconcile, h_cpu_import, h_cpu_reconcile, h_rows, h_report = night(
            engine, settings, work / "history")
        figures = {"import": h_import, "reconcile": h_reconcile, "cpu_import": h_cpu_import,
                   "cpu_reconcile": h_cpu_reconcile, "rows": h_rows, "payments": h_report.payments}
        if args.history_db:
            keep_history(engine, args, figures)
    history = figures["import"] + figures["reconcile"]
    h_cpu = figures["cpu_import"] + figures["cpu_reconcile"]
    print(f"history: import {figures['import']:.2f} s + reconcile {figures['reconcile']:.2f} s = {history:.2f} s "
          f"wall; CPU {figures['cpu_import']:.2f} + {figures['cpu_reconcile']:.2f} = {h_cpu:.2f} s "
          f"({figures['rows']:,} rows, {figures['payments']:,} payments reconciled)", flush=True)
    came = "a fresh process, as a cron job's" if copied else "the history's own process"
    one_night(engine, settings, work / "day", f"night ({came}):", history, h_cpu)
    if args.again:
        engine.dispose()
        engine, settings, _ = history_copy(args)
        one_night(engine, settings, work / "day", "night again (this process's second, on a fresh copy of the "
                  "history, as `recouvrement schedule`'s next night):", history, h_cpu)
    print(f"peak memory: {peak_memory_mb():,.0f} MB")
    print(f"accuracy: {accuracy(engine, args.data / 'expected.csv')}")


if __name__ == "__main__":
    main()
