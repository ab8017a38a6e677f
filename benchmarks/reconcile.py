"""Import + reconcile the scale data set, on SQLite or PostgreSQL; print per stage the rows, the wall time and the
CPU time (this process's, and the PostgreSQL server's: its processes are not our children), the ratio of the
total to what pyarrow alone takes to parse the same CSV files (measured in the same run), peak memory, and the
accuracy of the allocations against the generator's ground truth.

The files are imported as the nightly run imports its inbox (app.imports.import_files: the next file read and
checked in a child process while a big one is stored); each file's line is the time from the end of the one
before to its own end, waiting for its reading included. The child's CPU is counted once it has ended, in the
last file's line (getrusage counts a child's CPU when it has been waited for).

    python benchmarks/reconcile.py [--invoices 1000000] [--data /tmp/scale] [--db /tmp/bench-reconcile.db]
    python benchmarks/reconcile.py --postgresql [URL] [--invoices …] [--data …]

`--postgresql` alone starts a throwaway server (as the test setup does, with the settings README's deployment
section advises, see benchmarks/_postgres.py) and removes it afterwards; with a URL, the database
`bench_reconcile` is dropped and created again on that server (its CPU is shown only when it runs on this
machine).
Targets (issue 16) on the 2-core machine: SQLite under 30 s and 20x the bare parse, under 2 GB; PostgreSQL
(loaded with COPY) under 45 s.
"""

from __future__ import annotations

import csv
import resource
import sys
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scale import FILES, arguments, bare_parse_seconds, ensure_scale_data, fresh_database, peak_memory_mb  # noqa: E402,E501
from _scale import MemorySampler  # noqa: E402

from sqlalchemy import text  # noqa: E402

from recouvrement.app.imports import import_files  # noqa: E402
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


def cpu_seconds() -> float:
    """User + system CPU of this process and its waited-for children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Meter:
    """Wall and CPU time of stages, this process's and (on PostgreSQL) the server's."""

    def __init__(self, server=None) -> None:
        self.server = server
        self.total = [0.0, 0.0, 0.0]

    def start(self) -> tuple:
        return time.perf_counter(), cpu_seconds(), self.server.seconds() if self.server else None

    def line(self, started: tuple, label: str) -> str:
        wall, cpu = time.perf_counter() - started[0], cpu_seconds() - started[1]
        server = self.server.seconds() if self.server else None
        spent = server - started[2] if server is not None and started[2] is not None else None
        self.total = [self.total[0] + wall, self.total[1] + cpu, self.total[2] + (spent or 0.0)]
        return f"{label}  wall {wall:6.1f} s  cpu {cpu:6.1f} s" + (f"  server cpu {spent:6.1f} s" if spent is not None
                                                                    else "")


def open_database(args, stack: ExitStack):
    """The engine and settings to import with, and the server whose CPU to count (None on SQLite)."""
    if args.postgresql is None:
        engine, settings = fresh_database(args)
        return engine, settings, None
    from _postgres import BULK_SETTINGS, ServerCpu, fresh_database as fresh_pg, throwaway_server

    from recouvrement.audit import seal_engine, settings_seal
    from recouvrement.config import Audit, Privacy, Settings
    from recouvrement.db.session import open_engine
    server = args.postgresql if args.postgresql != "throwaway" else stack.enter_context(
        throwaway_server(BULK_SETTINGS))
    url = fresh_pg(server, "bench_reconcile")
    settings = Settings(privacy=Privacy(nir_key_file=args.data / "nir.key"),
                        audit=Audit(args.data / "audit.key", Path("/tmp/bench-reconcile-pg.audit-checkpoint")))
    Path("/tmp/bench-reconcile-pg.audit-checkpoint").unlink(missing_ok=True)
    engine = seal_engine(open_engine(url), settings_seal(settings))
    return engine, settings, ServerCpu(engine)


def main() -> None:
    args = arguments("/tmp/bench-reconcile.db", postgresql=True)
    ensure_scale_data(args.data, args.invoices)
    parse_cpu = cpu_seconds()
    floor = bare_parse_seconds(args.data)
    parse_cpu = cpu_seconds() - parse_cpu
    with ExitStack() as stack:
        engine, settings, server = open_database(args, stack)
        print(f"database: {engine.dialect.name}" + (f" (server cpu from /proc: {'yes' if server.postmaster else 'no'})"
                                                    if server else ""), flush=True)
        meter = Meter(server)
        memory = MemorySampler()
        rows = 0
        started = meter.start()
        for path, report in import_files(engine, [args.data / name for name in FILES], settings):
            if isinstance(report, Exception):
                raise report
            rows += report.rows_read
            print(meter.line(started, f"import {path.name:<22}{report.rows_read:>11,} rows"), flush=True)
            started = meter.start()
        started = meter.start()
        result = run_reconcile(engine)
        print(meter.line(started, f"reconcile {result.payments:>25,} paymt"), flush=True)
        for stage, (stage_wall, stage_cpu) in result.stages.items():
            print(f"  reconcile: {stage:<23} wall {stage_wall:6.1f} s  cpu {stage_cpu:6.1f} s")
        print(f"  by rule {result.by_rule}; queue {result.exceptions}")
        wall, cpu, server_cpu = meter.total
        print(f"import + reconcile: {wall:.1f} s wall, {cpu:.1f} s cpu here"
              + (f" + {server_cpu:.1f} s cpu in the server" if server and server.postmaster else "")
              + f" ({rows:,} input rows, {rows / wall:,.0f} rows/s)")
        print(f"bare pyarrow parse of the same files: {floor:.2f} s wall, {parse_cpu:.2f} s cpu; "
              f"ratio {wall / floor:.1f}x wall, {(cpu + server_cpu) / parse_cpu:.1f}x cpu (ours + the server's)")
        t0 = time.perf_counter()
        again = run_reconcile(engine)
        print(f"re-run with nothing new: {time.perf_counter() - t0:.2f} s (skipped={again.skipped})")
        together, child = memory.stop()
        print(f"peak memory: {peak_memory_mb():,.0f} MB (this process); {together:,.0f} MB this process and its "
              f"read-ahead child together, the child's own peak {child:,.0f} MB (sampled every 20 ms)")
        print(f"accuracy: {accuracy(engine, args.data / 'expected.csv')}")
        if server and server.postmaster:
            print("server cpu since its start, by process: " + ", ".join(
                f"{kind} {seconds:.1f} s" for kind, seconds in sorted(server.by_process().items(), key=lambda kv: -kv[1])))
        engine.dispose()


if __name__ == "__main__":
    main()
