"""The everyday reads on a big database: `balance` (and its two details), `report`, `remind --dry-run` and the web
app's patient page;
wall and CPU time each, and the rows each read from the database.

    python benchmarks/reads.py --db /work/bench/base-1m.db         # a copy of it, never the file itself
    python benchmarks/reads.py --invoices 20000 --data /tmp/scale-20k  # a database built from a scale set
    python benchmarks/reads.py --db /work/bench/base-1m.db --only remind   # one read (repeatable)

Targets (issue 16): each batch command under 10 s on the 1M database, one patient's page under 100 ms (a
patient with many invoices and a typical one). The use cases are called as the CLI calls them; the page is
asked through the ASGI app with an HTTP client (Starlette's TestClient), signed in as the desk, the app's startup
heap frozen as `recouvrement web` freezes it. The details are timed as read, then as `balance --detail … --out`
writes them (the scanned CSV writer).
`remind`'s rows read are this process's only: on a big ledger a child process reads and decides part of the
patients (app.remind.read_and_decide).
The database is copied first (with its -wal/-shm): the schema is upgraded on the copy (the upgrade's time is
printed apart), the benchmark's user and the report's audit record are written to it.
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scale import ensure_scale_data, fresh_database, import_all, peak_memory_mb  # noqa: E402

from sqlalchemy import text  # noqa: E402

PASSWORD = "banc-d-essai-lectures"
READS = ("balance", "report", "remind", "page")


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class RowCounter:
    """Rows the database handed back: SQLAlchemy results and the bulk reads' own sqlite3 cursors."""

    def __init__(self) -> None:
        self.rows = 0

    def install(self) -> None:
        from sqlalchemy.engine import cursor as sa_cursor

        from recouvrement.db import bulk
        counter = self
        for name in ("_fetchall_impl", "_fetchmany_impl"):
            original = getattr(sa_cursor.CursorResult, name)

            def counted(self, *args, _original=original, **kwargs):
                rows = _original(self, *args, **kwargs)
                counter.rows += len(rows)
                return rows
            setattr(sa_cursor.CursorResult, name, counted)
        original_one = sa_cursor.CursorResult._fetchone_impl

        def one(self, *args, **kwargs):
            row = original_one(self, *args, **kwargs)
            counter.rows += row is not None
            return row
        sa_cursor.CursorResult._fetchone_impl = one
        original_read = bulk.read_frame

        def read_frame(conn, sql, params=None):
            if conn.dialect.name != "sqlite":
                return original_read(conn, sql, params)      # counted through SQLAlchemy's result
            frame = original_read(conn, sql, params)
            counter.rows += len(frame)
            return frame
        bulk.read_frame = read_frame
        for module in list(sys.modules.values()):
            if getattr(module, "__name__", "").startswith("recouvrement.") and \
                    getattr(module, "read_frame", None) is original_read:
                module.read_frame = read_frame


COUNTER = RowCounter()


@contextmanager
def measured(label: str):
    rows, wall, cpu = COUNTER.rows, time.perf_counter(), cpu_seconds()
    yield
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    print(f"{label:<44}{wall:>9.3f} s wall {cpu:>9.3f} s CPU {COUNTER.rows - rows:>12,} rows read", flush=True)


def working_copy(source: Path, into: Path) -> Path:
    """The database at `source` copied with its companion files into the folder `into` (same name), or to the
    path `into` when that is not a folder."""
    target = into / source.name if into.is_dir() else into
    for suffix in ("", "-wal", "-shm", ".audit-checkpoint"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
    return target


def built_database(args, folder: Path) -> Path:
    from recouvrement.app.reconcile import run_reconcile
    ensure_scale_data(args.data, args.invoices)
    args.db = folder / "reads.db"
    engine, settings = fresh_database(args)
    import_all(engine, settings, args.data, lambda name, r, seconds: None)
    run_reconcile(engine)
    engine.dispose()
    return args.db


def bench_settings(data: Path, db: Path):
    """The settings the database was made with (benchmarks/_scale.fresh_database): the scale set's keys, the
    audit checkpoint next to the database."""
    from recouvrement.config import Audit, Paths, Privacy, Settings
    return Settings(privacy=Privacy(nir_key_file=data / "nir.key"),
                    audit=Audit(data / "audit.key", Path(f"{db}.audit-checkpoint")), paths=Paths(output=db.parent / "out"))


def pick_patients(engine) -> tuple[str, int, str, int, date]:
    """(the patient with most invoices, their count, a typical patient, theirs, the day to read on)."""
    with engine.connect() as conn:
        counts = conn.execute(text("SELECT patient_id, COUNT(*) AS n FROM invoice GROUP BY patient_id "
                                   "ORDER BY n DESC, patient_id")).all()
        last_payment = conn.execute(text("SELECT MAX(payment_date) FROM payment")).scalar_one()
        last_invoice = conn.execute(text("SELECT MAX(issue_date) FROM invoice")).scalar_one()
    from recouvrement.db.values import as_date
    day = max(d for d in (as_date(last_payment), as_date(last_invoice)) if d is not None)
    busiest, typical = counts[0], counts[len(counts) // 2]
    return busiest[0], busiest[1], typical[0], typical[1], day


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, help="an imported and reconciled SQLite database (copied first)")
    parser.add_argument("--invoices", type=int, default=20_000, help="without --db: the scale set's size")
    parser.add_argument("--data", type=Path, default=None,
                        help="the scale set's folder (its keys; default: /tmp/bench-scale-<invoices>, or "
                             "/work/bench/scale-1000000 with --db)")
    parser.add_argument("--as-of", type=date.fromisoformat, default=None, help="default: the last payment's day")
    parser.add_argument("--work", type=Path, default=None, help="where the copy goes (default: a temporary folder)")
    parser.add_argument("--only", choices=READS, action="append", default=None,
                        help="run only that read (repeatable; default: all of them)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="without --db: keep the built database there too (give it later as --db with --data)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="write a cProfile of the reads there (python -m pstats, snakeviz)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-reads-", dir=args.work))
    try:
        run(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(args, folder: Path) -> None:
    from recouvrement.audit import seal_engine, settings_seal
    from recouvrement.db.session import open_engine
    if args.db is not None:
        args.data = args.data or Path("/work/bench/scale-1000000")
        with measured("copy of the database"):
            path = working_copy(args.db, folder)
    else:
        args.data = args.data or Path(f"/tmp/bench-scale-{args.invoices}")
        with measured(f"build a {args.invoices:,}-invoice database"):
            path = built_database(args, folder)
        if args.keep is not None:
            working_copy(path, args.keep)
    COUNTER.install()
    with measured("open (schema upgraded if needed)"):
        settings = bench_settings(args.data, path)
        engine = seal_engine(open_engine(f"sqlite:///{path}"), settings_seal(settings))
    busiest, many, typical, few, last_day = pick_patients(engine)
    as_of = args.as_of or last_day + timedelta(days=1)
    with engine.connect() as conn:
        invoices = conn.execute(text("SELECT COUNT(*) FROM invoice")).scalar_one()
    print(f"{invoices:,} invoices; as of {as_of}; busiest patient {many} invoices, typical {few}", flush=True)

    only = set(args.only or READS)
    profiler = None
    if args.profile is not None:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    from recouvrement.app.balance import balance_detail, balance_table, write_balance_detail
    from recouvrement.app.reminders import remind_and_send
    from recouvrement.app.report import write_report
    if "balance" in only:
        with measured("balance (balance_table)"):
            table = balance_table(engine, as_of)
        print(f"  grand total {int(table.loc['total:all', 'total']):,} cents", flush=True)
        for detail in ("patients", "invoices"):
            with measured(f"balance --detail {detail} (balance_detail)"):
                rows = balance_detail(engine, as_of, detail)
            print(f"  {len(rows):,} rows", flush=True)
            # What `balance --detail … --out` runs: the detail read again, written through the scanned CSV writer.
            with measured(f"balance --detail {detail} --out (CSV)"):
                count, due = write_balance_detail(engine, as_of, detail, folder / f"balance-{detail}.csv")
            print(f"  {count:,} rows, {due:,} cents due", flush=True)
    if "report" in only:
        with measured("report (write_report)"):
            write_report(engine, settings, as_of, folder / "rapport.html")
    if "remind" in only:
        with measured("remind --dry-run (remind_and_send)"):
            report = remind_and_send(engine, settings, as_of, folder / "out", dry_run=True)
        print(f"  {len(report.decisions):,} letters due, {len(report.exclusions):,} exclusions", flush=True)
    if "page" in only:
        page_times(engine, settings, as_of, busiest, typical)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    print(f"peak memory: {peak_memory_mb():,.0f} MB")


def page_times(engine, settings, as_of: date, busiest: str, typical: str) -> None:
    from starlette.testclient import TestClient

    from recouvrement.app.users import add_user
    from recouvrement.web.app import create_app, freeze_startup_heap
    add_user(engine, "banc", "staff", PASSWORD)
    app = create_app(engine, today=lambda: as_of, settings=settings)
    freeze_startup_heap()        # as `recouvrement web` does before it serves
    with TestClient(app, base_url="https://testserver") as client:
        page = client.get("/connexion")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        signed = client.post("/connexion", data={"csrf_token": token, "nom": "banc", "mot_de_passe": PASSWORD},
                             follow_redirects=False)
        assert signed.status_code == 303, signed.status_code
        for label, patient in (("many invoices", busiest), ("typical", typical)):
            client.get(f"/patients/{patient}")           # warm: templates compiled, connection pool filled
            for attempt in range(3):
                with measured(f"patient page, {label} (run {attempt + 1})"):
                    response = client.get(f"/patients/{patient}")
                assert response.status_code == 200, response.status_code


if __name__ == "__main__":
    main()
