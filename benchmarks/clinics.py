"""Two clinics on one PostgreSQL database (issue #16): each clinic's reconcile alone, then both at once in two
processes; prints each time, the ratio, how long the two runs overlapped and whether any backend waited for a
lock meanwhile (pg_locks sampled every 0.1 s). With the locks per clinic the two runs overlap, so "at once" costs
what the cores allow (two runs on two cores ≈ alone), never the sum (which one global lock would impose).

    python benchmarks/clinics.py [--invoices 200000] [--data /tmp/bench-clinics-N] [--db postgresql://…/dbname]

Without --db, a throwaway PostgreSQL server is started (Debian's binaries, as the test setup does) and removed.
Each measurement works on freshly imported schemas: bench_alone, then bench_nord and bench_sud.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _postgres import BULK_SETTINGS, throwaway_server  # noqa: E402
from _scale import ensure_scale_data  # noqa: E402

CHILD = """
import sys, time
sys.path.insert(0, sys.argv[4])
from _scale import import_all
from recouvrement.app.reconcile import run_reconcile
from recouvrement.audit import AuditSeal, seal_engine
from recouvrement.config import Privacy, Settings
from recouvrement.db.session import open_engine
from pathlib import Path
url, schema, data, _, step = sys.argv[1:6]
engine = seal_engine(open_engine(url, schema=schema), AuditSeal(b"bench-audit-key", Path(data) / f"{schema}.checkpoint"))
if step == "import":
    import_all(engine, Settings(privacy=Privacy(nir_key_file=Path(data) / "nir.key")), Path(data),
               lambda *a: None)
else:
    began, started = time.time(), time.perf_counter()
    result = run_reconcile(engine)
    print(f"{time.perf_counter() - started:.2f} {result.payments} {began:.3f} {time.time():.3f}", flush=True)
"""


def child(url: str, schema: str, data: Path, step: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, url, schema, str(data),
                             str(Path(__file__).resolve().parent), step], stdout=subprocess.PIPE, text=True)


def finished(run: subprocess.Popen) -> str:
    out, _ = run.communicate()
    if run.returncode != 0:
        raise SystemExit(f"a child process failed ({run.returncode})")
    return out.strip()


def fresh(url: str, schema: str, data: Path) -> None:
    """Drop the clinic's schema, then import the scale set into it (the first use creates it again)."""
    from sqlalchemy import create_engine
    from recouvrement.db.session import database_url
    engine = create_engine(database_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    engine.dispose()
    finished(child(url, schema, data, "import"))


def measure(url: str, data: Path) -> None:
    started = time.perf_counter()
    for schema in ("bench_alone", "bench_nord", "bench_sud"):
        fresh(url, schema, data)
    print(f"three clinics imported in {time.perf_counter() - started:.1f} s", flush=True)
    alone, payments = finished(child(url, "bench_alone", data, "reconcile")).split()[:2]
    print(f"reconcile alone:            {float(alone):7.2f} s ({int(payments):,} payments)", flush=True)
    started = time.perf_counter()
    runs = [child(url, schema, data, "reconcile") for schema in ("bench_nord", "bench_sud")]
    waits = LockWatch(url, runs)
    outs = [finished(run).split() for run in runs]
    wall = time.perf_counter() - started
    times = [float(out[0]) for out in outs]
    (a0, a1), (b0, b1) = [(float(out[2]), float(out[3])) for out in outs]
    overlap = max(0.0, min(a1, b1) - max(a0, b0))
    print(f"reconcile nord, sud at once: {times[0]:7.2f} s, {times[1]:7.2f} s (wall {wall:.2f} s); "
          f"each {max(times) / float(alone):.2f}x alone (one global lock would make the second ≥ 2x)")
    print(f"  the two runs overlapped {overlap:.1f} s of {max(a1, b1) - min(a0, b0):.1f} s; a backend waiting for a "
          f"lock seen in {waits.waiting} of {waits.samples} samples of pg_locks (every 0.1 s)")


class LockWatch:
    """Samples pg_locks every 0.1 s until the runs end: how many samples showed a lock some backend waits for
    (a clinic's reconcile waiting on another's would show there, for as long as it waits)."""

    def __init__(self, url: str, runs: list[subprocess.Popen]) -> None:
        from sqlalchemy import create_engine

        from recouvrement.db.session import database_url
        self.samples = self.waiting = 0
        engine = create_engine(database_url(url), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            while any(run.poll() is None for run in runs):
                self.samples += 1
                self.waiting += bool(conn.exec_driver_sql("SELECT COUNT(*) FROM pg_locks WHERE NOT granted")
                                     .scalar_one())
                time.sleep(0.1)
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=200_000)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--db", default=None, help="a PostgreSQL database where schemas may be created")
    args = parser.parse_args()
    data = args.data or Path(f"/tmp/bench-clinics-{args.invoices}")
    ensure_scale_data(data, args.invoices)
    if args.db:
        measure(args.db, data)
    else:
        with throwaway_server(BULK_SETTINGS) as url:
            measure(url, data)


if __name__ == "__main__":
    main()
