"""The nightly run: inbox → import → reconcile → plans → segments → reminders → agency → report, recorded.

Crash safety: each file is imported in its own transaction and moved out of the inbox only after
that transaction committed. A run killed between the commit and the move leaves the file in the
inbox; the next run imports it again, which is idempotent (every row is a duplicate), and moves it.
So a run killed anywhere leaves every file either processed or still in the inbox, and the next run
finishes the job. A run left 'running' in the history by a killed process is marked 'failed'
("interrupted") by the next run, which holds the lock and so knows that nobody else is running.

Steps after the import stop at the first failure (reminding patients on a half-reconciled ledger
could chase someone who paid); the report is still written, and the run is recorded as failed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable

from sqlalchemy import Engine, text

from recouvrement.app.exports import write_rejects
from recouvrement.app.agency import export_agency
from recouvrement.app.imports import import_file
from recouvrement.app.plans import refresh_plans
from recouvrement.app.reconcile import run_reconcile
from recouvrement.app.remind import run_remind
from recouvrement.app.segmentation import patient_segments, segment_counts
from recouvrement.app.lock import STALE_AFTER, as_utc, held
from recouvrement.audit import append_event
from recouvrement.config import Settings
from recouvrement.errors import RecouvrementError
from recouvrement.rules import load_rules

log = logging.getLogger(__name__)

PAUSE_HOOK = "RECOUVREMENT_TEST_PAUSE_AFTER_FILE"   # tests: sleep after committing file N, before moving it
# Files still being written by whoever drops them (scp, rsync, a mounted share) are not ours yet.
IN_PROGRESS = (".part", ".tmp", ".partial", ".crdownload", ".filepart")


@dataclass
class RunResult:
    run_id: int
    as_of: date
    status: str = "running"                   # running | ok | failed
    counts: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    report: Path | None = None
    archived: list[Path] = field(default_factory=list)
    quarantined: list[Path] = field(default_factory=list)


def _now(now: datetime | None) -> datetime:
    """Aware UTC, to the second (the run table's columns are UTC timestamps)."""
    return as_utc(now or datetime.now(timezone.utc)).replace(microsecond=0)


# ---------------------------------------------------------------- run history

def _mark_interrupted(engine: Engine, now: datetime) -> int:
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM run WHERE status = 'running' ORDER BY id"))]
        for run_id in ids:
            conn.execute(text("UPDATE run SET status = 'failed', ended_at = :t, errors = CASE WHEN errors = '' "
                              "THEN 'interrupted' ELSE errors || '\ninterrupted' END WHERE id = :i"),
                         {"t": now, "i": run_id})
            append_event(conn, "run_interrupted", {"run": run_id}, at=now)
    return len(ids)


def _start_run(engine: Engine, as_of: date, now: datetime) -> int:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO run (started_at, as_of, status, counts, errors) "
                          "VALUES (:t, :a, 'running', '{}', '')"), {"t": now, "a": as_of})
        return conn.execute(text("SELECT MAX(id) FROM run")).scalar_one()   # we hold the lock: ours is the last


def _finish_run(engine: Engine, result: RunResult, ended_at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE run SET ended_at = :t, status = :s, counts = :c, errors = :e WHERE id = :i"),
                     {"t": ended_at, "s": result.status, "c": json.dumps(result.counts, sort_keys=True),
                      "e": "\n".join(result.errors), "i": result.run_id})
        append_event(conn, "nightly_run", {"run": result.run_id, "as_of": result.as_of, "status": result.status,
                                           "counts": result.counts, "errors": len(result.errors)}, at=ended_at)


@dataclass(frozen=True)
class RunRow:
    id: int
    started_at: datetime
    ended_at: datetime | None
    as_of: date
    status: str
    counts: dict
    errors: str


def list_runs(engine: Engine, limit: int = 20) -> list[RunRow]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, started_at, ended_at, as_of, status, counts, errors FROM run "
                                 "ORDER BY id DESC LIMIT :n"), {"n": limit}).all()
    return [RunRow(r[0], _dt(r[1]), _dt(r[2]) if r[2] else None, _day(r[3]), r[4], json.loads(r[5] or "{}"), r[6])
            for r in rows]


def _dt(value) -> datetime:
    return as_utc(value)


def _day(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


# ---------------------------------------------------------------- the inbox

def inbox_files(inbox: Path) -> list[Path]:
    """Regular files of the inbox, by name; hidden files and files still being written are left alone."""
    if not inbox.is_dir():
        return []
    return sorted((p for p in inbox.iterdir() if p.is_file() and not p.name.startswith(".")
                   and not p.name.lower().endswith(IN_PROGRESS) and not p.name.endswith(".rejects.csv")),
                  key=lambda p: p.name)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def free_name(folder: Path, name: str) -> Path:
    """folder/name, or folder/stem-2.ext, -3 … when that name is taken."""
    target = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while target.exists():
        n += 1
        target = folder / f"{stem}-{n}{suffix}"
    return target


def move_out(path: Path, folder: Path) -> Path:
    """Move a file out of the inbox without ever losing it: copied under a hidden name, renamed, then unlinked.

    A file with the same name and the same content already there (a run killed after the rename) is
    not copied twice."""
    folder.mkdir(parents=True, exist_ok=True)
    same = folder / path.name
    if same.exists() and same.is_file() and _sha256(same) == _sha256(path):
        path.unlink()
        return same
    target = free_name(folder, path.name)
    partial = folder / f".{target.name}.part"
    partial.write_bytes(path.read_bytes())
    os.replace(partial, target)
    path.unlink()
    return target


def _quarantine(path: Path, settings: Settings, rows: list[tuple]) -> Path:
    """The rejects report first, then the file: killed in between, the file is still in the inbox."""
    folder = settings.paths.quarantine
    folder.mkdir(parents=True, exist_ok=True)
    target = free_name(folder, path.name)
    write_rejects(folder / f"{target.name}.rejects.csv", rows)
    partial = folder / f".{target.name}.part"
    partial.write_bytes(path.read_bytes())
    os.replace(partial, target)
    path.unlink()
    return target


def _pause_for_tests(number: int) -> None:
    """Lets a test kill the run at a known point: after file N committed, before it is moved."""
    wanted = os.environ.get(PAUSE_HOOK)
    if wanted and wanted.isdigit() and int(wanted) == number:
        print(f"paused after file {number}", file=sys.stderr, flush=True)
        time.sleep(3600)


def import_inbox(engine: Engine, settings: Settings, as_of: date, result: RunResult) -> None:
    """Every inbox file, each in its own transaction. Refused rows do not hold back the file's good rows
    (a bank statement with one foreign-currency line still carries the patients' payments, and leaving
    them out would remind patients who paid): they are listed in `<file>.rejects.csv` beside the archived
    file and in the run's errors. Only a file that cannot be read at all goes to quarantine."""
    files = result.counts.setdefault("files", {"seen": 0, "imported": 0, "quarantined": 0})
    rows = result.counts.setdefault("rows", {"imported": 0, "duplicates": 0, "refused": 0})
    archive = settings.paths.archive / as_of.isoformat()
    for number, path in enumerate(inbox_files(settings.paths.inbox), start=1):
        files["seen"] += 1
        try:
            report = import_file(engine, path, settings)
        except RecouvrementError as exc:
            result.quarantined.append(_quarantine(path, settings, [(path.name, exc.line or "", exc.field or "",
                                                                     str(exc))]))
            result.errors.append(f"{path.name}: quarantined, {exc}")
            files["quarantined"] += 1
            continue
        _pause_for_tests(number)
        if report.rejects:
            archive.mkdir(parents=True, exist_ok=True)
            listing = archive / f"{free_name(archive, path.name).name}.rejects.csv"
            write_rejects(listing, [(r.file, r.line, r.field, r.reason) for r in report.rejects])
            result.errors.append(f"{path.name}: {len(report.rejects)} row(s) refused, listed in {listing.name}")
            rows["refused"] += len(report.rejects)
        result.archived.append(move_out(path, archive))
        files["imported"] += 1
        rows["imported"] += report.imported
        rows["duplicates"] += report.duplicates


# ---------------------------------------------------------------- the steps after the import

def _reconcile(engine, settings, as_of, result, now) -> None:
    report = run_reconcile(engine, now=now)
    result.counts["allocations"] = report.allocations
    with engine.connect() as conn:
        result.counts["exceptions"] = {k: int(v) for k, v in conn.execute(text(
            "SELECT kind, COUNT(*) FROM payment_exception GROUP BY kind ORDER BY kind"))}


def _plans(engine, settings, as_of, result, now) -> None:
    result.counts["plans"] = refresh_plans(engine, as_of)


def _segments(engine, settings, as_of, result, now) -> None:
    """Segments are computed, never stored: the reminders read them again; the run shows the counts."""
    with engine.connect() as conn:
        result.counts["segments"] = segment_counts(patient_segments(conn, as_of, load_rules()))


def _remind(engine, settings, as_of, result, now) -> None:
    report = run_remind(engine, settings, as_of, settings.paths.output / "relances" / as_of.isoformat())
    result.counts["letters"] = {str(k): v for k, v in sorted(report.letters_by_level.items())}
    result.counts["sent"] = report.emails_sent
    result.errors.extend(f"remind: {e}" for e in report.errors)


def _agency(engine, settings, as_of, result, now) -> None:
    folder = settings.paths.output / "agency"   # a second run the same day must not overwrite the first's file
    report = export_agency(engine, settings, as_of, free_name(folder, f"agency-{as_of.isoformat()}.csv"))
    result.counts["agency_cases"] = int(report.cases)


STEPS = (("reconcile", _reconcile), ("plans", _plans), ("segments", _segments), ("remind", _remind),
         ("agency", _agency))


def _steps(engine: Engine, settings: Settings, as_of: date, result: RunResult, now: datetime) -> None:
    for name, step in STEPS:
        try:
            step(engine, settings, as_of, result, now)
        except Exception as exc:     # recorded in the run history; the steps after it would act on bad data
            log.exception("nightly step %s failed", name)
            result.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            result.status = "failed"
            later = [n for n, _ in STEPS[[n for n, _ in STEPS].index(name) + 1:]]
            if later:
                result.errors.append(f"not run after that failure: {', '.join(later)}")
            return


def _report(engine: Engine, settings: Settings, as_of: date, result: RunResult) -> None:
    from recouvrement.app.report import write_report
    try:
        result.report = write_report(engine, settings, as_of,
                                     settings.paths.output / "reports" / f"report-{as_of.isoformat()}.html")
    except Exception as exc:
        log.exception("nightly report failed")
        result.errors.append(f"report: {type(exc).__name__}: {exc}")
        result.status = "failed"


# ---------------------------------------------------------------- the run

def run_nightly(engine: Engine, settings: Settings, as_of: date, now: datetime | None = None, *,
                wait: float = 0, clock: Callable[[], datetime] | None = None) -> RunResult:
    """One nightly run under the lock; LockHeld when another run holds it longer than `wait` seconds."""
    clock = clock or (lambda: datetime.now(timezone.utc))
    with held(engine, wait=wait, stale_after=STALE_AFTER):
        started = _now(now or clock())
        interrupted = _mark_interrupted(engine, started)
        result = RunResult(_start_run(engine, as_of, started), as_of)
        if interrupted:
            result.counts["interrupted_runs_closed"] = interrupted
        try:
            import_inbox(engine, settings, as_of, result)
            _steps(engine, settings, as_of, result, started)
            _report(engine, settings, as_of, result)
        except BaseException as exc:   # SIGTERM, ^C, a database gone: the history says so
            result.status = "failed"
            result.errors.append("interrupted" if not isinstance(exc, Exception) else f"{type(exc).__name__}: {exc}")
            try:
                _finish_run(engine, result, _now(clock() if now is None else now))
            finally:
                raise exc
        if result.status == "running":
            result.status = "ok"
        _finish_run(engine, result, _now(clock() if now is None else now))
    return result
