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

import errno
import hashlib
import logging
import os
import shutil
import stat
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from recouvrement.db.queue import queue_counts
from recouvrement.db.runs import RunRow, fail_running_runs, finish_run, insert_run, latest_runs
from recouvrement.db.session import writing
from recouvrement.render.files import write_rejects
from recouvrement.app.agency import export_agency, finish_exports
from recouvrement.app.imports import ImportReport, import_files
from recouvrement.app.plans import refresh_plans
from recouvrement.app.reconcile import run_reconcile
from recouvrement.app.reminders import remind_and_send  # noqa: F401  (imported from here by callers and tests)
from recouvrement.app.segmentation import patient_segments, segment_counts
from recouvrement.app.lock import STALE_AFTER, held
from recouvrement.db.values import as_utc
from recouvrement.audit import append_event, file_sha256
from recouvrement.config import Settings
from recouvrement.core.privacy import redact, safe_file_name, safe_message
from recouvrement.errors import RecouvrementError
from recouvrement.rules import by_email, by_sms, is_postal

log = logging.getLogger(__name__)

PAUSE_HOOK = "RECOUVREMENT_TEST_PAUSE_AFTER_FILE"   # tests: sleep after committing file N, before moving it
# Files still being written by whoever drops them (scp, rsync, a mounted share) are not ours yet.
IN_PROGRESS = (".part", ".tmp", ".partial", ".crdownload", ".filepart")
STAGING = ".staging"                  # in the archive folder: the private copies being imported
MAX_NAME_BYTES = 200                  # leaves room for "-NN", ".rejects.csv" and ".part" within 255 bytes


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
    left: list["Left"] = field(default_factory=list)


def _now(now: datetime | None) -> datetime:
    """Aware UTC, to the second (the run table's columns are UTC timestamps)."""
    return as_utc(now or datetime.now(timezone.utc)).replace(microsecond=0)


# ---------------------------------------------------------------- run history

def _mark_interrupted(engine: Engine, now: datetime) -> int:
    with writing(engine) as conn:
        ids = fail_running_runs(conn, now)
        for run_id in ids:
            append_event(conn, "run_interrupted", {"run": run_id}, at=now)
    return len(ids)


def _start_run(engine: Engine, as_of: date, now: datetime) -> int:
    with writing(engine) as conn:
        return insert_run(conn, as_of, now)


def _finish_run(engine: Engine, result: RunResult, ended_at: datetime) -> None:
    with writing(engine) as conn:
        finish_run(conn, result.run_id, ended_at, result.status, result.counts, "\n".join(result.errors))
        append_event(conn, "nightly_run", {"run": result.run_id, "as_of": result.as_of, "status": result.status,
                                           "counts": result.counts, "errors": len(result.errors)}, at=ended_at)


def list_runs(engine: Engine, limit: int = 20) -> list[RunRow]:
    with engine.connect() as conn:
        return latest_runs(conn, limit)


# ---------------------------------------------------------------- the inbox

@dataclass(frozen=True)
class Left:
    """An inbox entry the run did not take, and why (reported in the run's errors)."""
    name: str
    reason: str


def _shown(name: str) -> str:
    """A name as it can be printed on one line: undecodable bytes escaped, control characters (a newline
    could forge a line of the run's report) replaced by "?", at most 80 characters."""
    text_ = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    text_ = "".join(c if c.isprintable() else "?" for c in text_)
    return text_ if len(text_) <= 80 else f"{text_[:60]}…{text_[-15:]}"


def sort_inbox(inbox: Path) -> tuple[list[Path], list[Left]]:
    """The inbox's regular files by name, and a decision for every other entry, never following a link.

    Left alone, each with its reason: symbolic links (a link may point anywhere: /etc/passwd; it is
    never followed, never copied), sub-folders (not read: files are dropped directly in the inbox),
    hidden entries, files still being uploaded under the `*.part` convention (or .tmp, .partial,
    .crdownload, .filepart: renamed when complete, they are taken the night after), and anything that
    is not a regular file (a pipe, a socket)."""
    if not inbox.is_dir():
        return [], []
    files, left = [], []
    for entry in sorted(os.scandir(inbox), key=lambda e: e.name):
        name = entry.name
        if entry.is_symlink():
            left.append(Left(name, "lien symbolique refusé (jamais suivi hors de la boîte) : déposer le fichier "
                                   "lui-même"))
        elif entry.is_dir(follow_symlinks=False):
            left.append(Left(name, "dossier ignoré : les fichiers se déposent directement dans la boîte"))
        elif name.startswith("."):
            left.append(Left(name, "fichier caché ignoré"))
        elif name.lower().endswith(IN_PROGRESS):
            left.append(Left(name, "dépôt en cours (*.part) : pris une fois renommé"))
        elif name.endswith(".rejects.csv"):
            left.append(Left(name, "liste de lignes refusées : ignorée"))
        elif not entry.is_file(follow_symlinks=False):
            left.append(Left(name, "ni fichier ni dossier : ignoré"))
        else:
            files.append(inbox / name)
    return files, left


def inbox_files(inbox: Path) -> list[Path]:
    """Regular files of the inbox, by name (see sort_inbox for what is left alone)."""
    return sort_inbox(inbox)[0]


def _signature(path: Path) -> tuple[int, int] | None:
    """(size, mtime in ns) of a regular file, without following a link; None if it is gone or not one."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None


def settled(files: list[Path], settle: float, *, clock: Callable[[], float] = time.time,
            sleep: Callable[[float], None] = time.sleep) -> tuple[list[tuple[Path, tuple[int, int]]], list[Left]]:
    """The files whose size and modification time have not changed for `settle` seconds.

    A file modified less than `settle` seconds ago is watched once (one wait for all of them, at most
    `settle` seconds): still changing, or changed too recently, it is left for the next run. A writer
    that pauses longer than `settle` in the middle of a file cannot be told from a finished one:
    such writers use the `*.part` → rename convention."""
    first = {p: _signature(p) for p in files}
    start = clock()
    if settle > 0:
        young = [settle - (start - sig[1] / 1e9) for sig in first.values() if sig is not None]
        wait = max([w for w in young if w > 0], default=0)
        if wait:
            sleep(min(wait, settle))
    ready, left = [], []
    now = clock()
    watched = now - start           # a modification time in the future (a skewed clock) is judged by watching
    for path, before in first.items():
        after = _signature(path)
        if before is None or after is None:
            left.append(Left(path.name, "disparu ou remplacé pendant la lecture de la boîte"))
        elif after != before or (now - after[1] / 1e9 < settle and watched < settle):
            left.append(Left(path.name, f"en cours d'écriture (modifié il y a moins de {settle:g} s) : "
                                        "pris au prochain passage"))
        else:
            ready.append((path, after))
    return ready, left


def stage(path: Path, signature: tuple[int, int], folder: Path) -> Path | None:
    """A private copy of exactly the bytes judged complete, or None when the file changed meanwhile.

    Opened without following a link (O_NOFOLLOW): a file swapped for a link after the listing is
    refused too. The import reads the copy, so it never sees a half-written row."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / path.name
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_size, st.st_mtime_ns) != signature:
            return None
        with os.fdopen(fd, "rb", closefd=False) as source, open(copy, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if (st.st_size, st.st_mtime_ns) != signature or copy.stat().st_size != signature[0]:
        copy.unlink()
        return None
    return copy


def short_name(name: str) -> str:
    """The name, or when it is too long to take our suffixes (`-2`, `.rejects.csv`, `.part`) within the
    255 bytes a file system allows: its start, a hash of the whole and its extension."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= MAX_NAME_BYTES:
        return name
    suffix = Path(name).suffix if len(Path(name).suffix.encode("utf-8", "surrogateescape")) <= 16 else ""
    digest = hashlib.sha256(raw).hexdigest()[:12]
    head = raw[:120].decode("utf-8", "ignore")
    return f"{head}-{digest}{suffix}"


def free_name(folder: Path, name: str) -> Path:
    """folder/name, or folder/stem-2.ext, -3 … when that name is taken."""
    target = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while target.exists() or target.is_symlink():
        n += 1
        target = folder / f"{stem}-{n}{suffix}"
    return target


def _copy_in(source: Path, folder: Path, name: str) -> Path:
    """source's bytes written to folder/name (or a free variant) through a hidden partial file."""
    target = free_name(folder, name)
    partial = folder / f".{target.name}.part"
    shutil.copyfile(source, partial, follow_symlinks=False)
    os.replace(partial, target)
    return target


def move_out(path: Path, folder: Path, content: Path | None = None) -> Path:
    """Move a file out of the inbox without ever losing it: copied under a hidden name, renamed, then unlinked.

    `content` is the staged copy that was imported (the bytes archived); by default the file itself.
    A file with the same name and the same content already there (a run killed after the rename) is
    not copied twice. A name too long for our suffixes is shortened (see short_name)."""
    folder.mkdir(parents=True, exist_ok=True)
    content = content or path
    name = short_name(safe_file_name(path.name))
    same = folder / name
    if same.is_file() and not same.is_symlink() and file_sha256(same) == file_sha256(content):
        path.unlink()
        return same
    target = _copy_in(content, folder, name)
    path.unlink()
    return target


def _quarantine(path: Path, settings: Settings, rows: list[tuple], content: Path | None = None) -> Path:
    """The rejects report first, then the file: killed in between, the file is still in the inbox."""
    folder = settings.paths.quarantine
    folder.mkdir(parents=True, exist_ok=True)
    target = free_name(folder, short_name(safe_file_name(path.name)))
    write_rejects(folder / f"{target.name}.rejects.csv", rows)
    _copy_in(content or path, folder, target.name)
    path.unlink()
    return target


def _failure(exc: BaseException) -> str:
    """An unexpected error for the run history: a database or library message may quote a value."""
    return redact(f"{type(exc).__name__}: {exc}")


def _log_failure(what: str) -> None:
    log.error("%s failed: %s", what, redact(traceback.format_exc()))


def _pause_for_tests(number: int) -> None:
    """Lets a test kill the run at a known point: after file N committed, before it is moved."""
    wanted = os.environ.get(PAUSE_HOOK)
    if wanted and wanted.isdigit() and int(wanted) == number:
        print(f"paused after file {number}", file=sys.stderr, flush=True)
        time.sleep(3600)


def import_inbox(engine: Engine, settings: Settings, as_of: date, result: RunResult) -> None:
    """Every complete inbox file, each in its own transaction, from a private copy of its bytes.

    Refused rows do not hold back the file's good rows (a bank statement with one foreign-currency
    line still carries the patients' payments, and leaving them out would remind patients who paid):
    they are listed in `<file>.rejects.csv` beside the archived file and in the run's errors. A file
    that cannot be read at all goes to quarantine. Entries left in the inbox (links, folders, hidden
    files, files still being written) are reported with their reason. One bad file never stops the
    others: whatever happens to it is reported and the next file is taken."""
    files = result.counts.setdefault("files", {"seen": 0, "imported": 0, "quarantined": 0, "left": 0})
    result.counts.setdefault("rows", {"imported": 0, "duplicates": 0, "refused": 0})
    archive = settings.paths.archive / as_of.isoformat()
    staging = settings.paths.archive / STAGING
    shutil.rmtree(staging, ignore_errors=True)    # a copy left by a killed run: the original is still in the inbox
    candidates, left = sort_inbox(settings.paths.inbox)
    ready, busy = settled(candidates, settings.inbox.settle_seconds)
    for item in left + busy:
        _leave(result, files, item)
    staged: dict[Path, tuple[Path, tuple[int, int], int]] = {}   # copy -> (inbox file, its signature, its number)

    def copies() -> Iterator[Path]:
        """The private copies, made one file ahead of the import (import_files takes the next before storing one:
        it may be read meanwhile)."""
        for number, (path, signature) in enumerate(ready, start=1):
            files["seen"] += 1
            try:
                copy = _stage_one(result, files, path, signature, staging)
            except Exception as exc:   # one file's trouble is reported; the others are still taken
                _unexpected(result, files, path, exc)
                continue
            if copy is not None:
                staged[copy] = (path, signature, number)
                yield copy

    try:
        for copy, outcome in import_files(engine, copies(), settings):
            path, signature, number = staged.pop(copy)
            try:
                _import_one(settings, path, signature, copy, outcome, archive, number, result)
            except Exception as exc:   # one file's trouble is reported; the others are still taken
                _unexpected(result, files, path, exc)
            copy.unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _unexpected(result: RunResult, files: dict, path: Path, exc: Exception) -> None:
    log.error("inbox file %s: %s", _shown(safe_file_name(path.name)),
              redact("".join(traceback.format_exception(exc))))
    what = "erreur de base de données" if isinstance(exc, SQLAlchemyError) else "erreur inattendue"
    _leave(result, files, Left(path.name, f"{what} ({type(exc).__name__}) : laissé dans la boîte, "
                                          "repris au prochain passage"))


def _leave(result: RunResult, files: dict, item: Left) -> None:
    files["left"] += 1
    result.left.append(item)
    result.errors.append(f"boîte de réception : {_shown(safe_file_name(item.name))} : {item.reason}")


def _stage_one(result: RunResult, files: dict, path: Path, signature: tuple[int, int], staging: Path) -> Path | None:
    """The file's private copy (see stage), or None when it is left in the inbox (reported)."""
    try:
        copy = stage(path, signature, staging)
    except OSError as exc:
        why = ("devenu un lien symbolique : refusé" if exc.errno == errno.ELOOP
               else f"illisible ({exc.strerror}) : laissé dans la boîte")
        _leave(result, files, Left(path.name, why))
        return None
    if copy is None:
        _leave(result, files, Left(path.name, "modifié pendant la copie : pris au prochain passage"))
    return copy


def _import_one(settings: Settings, path: Path, signature: tuple[int, int], copy: Path,
                outcome: ImportReport | Exception, archive: Path, number: int, result: RunResult) -> None:
    """What comes of the import of `path` (its copy's: `outcome`, from import_files): archived, its rejects
    listed; quarantined when it could not be read; an unexpected error raised."""
    files, rows = result.counts["files"], result.counts["rows"]
    name = _shown(safe_file_name(path.name))
    if isinstance(outcome, RecouvrementError):
        exc = outcome
        reason = safe_message(str(exc))
        result.quarantined.append(_quarantine(path, settings, [(safe_file_name(path.name), exc.line or "", exc.field or "", reason)],
                                              copy))
        result.errors.append(f"{name} : mis en quarantaine, {reason}")
        files["quarantined"] += 1
        return
    if isinstance(outcome, Exception):
        raise outcome
    report = outcome
    _pause_for_tests(number)
    if report.rejects:
        archive.mkdir(parents=True, exist_ok=True)
        listing = archive / f"{free_name(archive, short_name(safe_file_name(path.name))).name}.rejects.csv"
        write_rejects(listing, [(r.file, r.line, r.field, r.reason) for r in report.rejects])
        result.errors.append(f"{name} : {len(report.rejects)} ligne(s) refusée(s), listées dans {listing.name}")
        rows["refused"] += len(report.rejects)
    if _signature(path) != signature:   # rewritten during the import: what was imported stays, the rest next night
        result.errors.append(f"{name} : modifié pendant l'import, laissé dans la boîte pour le prochain passage")
        files["left"] += 1
    else:
        result.archived.append(move_out(path, archive, copy))
        files["imported"] += 1
    rows["imported"] += report.imported
    rows["duplicates"] += report.duplicates


# ---------------------------------------------------------------- the steps after the import

def _reconcile(engine, settings, as_of, result, now) -> None:
    report = run_reconcile(engine, now=now)
    result.counts["allocations"] = report.allocations
    with engine.connect() as conn:
        result.counts["exceptions"] = queue_counts(conn)


def _plans(engine, settings, as_of, result, now) -> None:
    result.counts["plans"] = refresh_plans(engine, as_of)


def _segments(engine, settings, as_of, result, now) -> None:
    """Segments are computed, never stored: the reminders read them again; the run shows the counts."""
    with engine.connect() as conn:
        result.counts["segments"] = segment_counts(patient_segments(conn, as_of, settings.rules()))


def _remind(engine, settings, as_of, result, now) -> None:
    report = remind_and_send(engine, settings, as_of, settings.paths.output / "relances" / as_of.isoformat())
    result.counts["letters"] = {str(k): v for k, v in sorted(report.letters_by_level.items())}
    result.counts["sent"] = report.emails_sent
    if report.emails_queued or report.emails_failed:
        result.counts["emails"] = {"queued": report.emails_queued, "failed": report.emails_failed}
    if report.letters:   # by means: a letter by post and SMS counts once in each
        result.counts["means"] = {name: sum(1 for w in report.letters if test(w.channel)) for name, test in
                                  (("letter", is_postal), ("email", by_email), ("sms", by_sms))}
    if report.calls_listed or report.calls_closed:   # the phone step: calls put on the list, calls closed
        result.counts["calls"] = {"listed": len(report.calls_listed), "closed": len(report.calls_closed)}
    if report.sms_sent or report.sms_queued or report.sms_failed:
        result.counts["sms"] = {"sent": report.sms_sent, "queued": report.sms_queued, "failed": report.sms_failed}
    result.errors.extend(f"remind: {e}" for e in report.errors)


def _agency(engine, settings, as_of, result, now) -> None:
    folder = settings.paths.output / "agency"   # a second run the same day must not overwrite the first's file
    finish_exports(engine)                      # a file a killed run left to write takes its name first
    report = export_agency(engine, settings, as_of, free_name(folder, f"agency-{as_of.isoformat()}.csv"))
    result.counts["agency_cases"] = int(report.cases)
    if report.below_minimum:     # kept in the building: under rules/agency.toml's min_amount_cents
        result.counts["agency_below_minimum"] = report.below_minimum


STEPS = (("reconcile", _reconcile), ("plans", _plans), ("segments", _segments), ("remind", _remind),
         ("agency", _agency))


def _steps(engine: Engine, settings: Settings, as_of: date, result: RunResult, now: datetime) -> None:
    for name, step in STEPS:
        try:
            step(engine, settings, as_of, result, now)
        except Exception as exc:     # recorded in the run history; the steps after it would act on bad data
            _log_failure(f"nightly step {name}")
            result.errors.append(f"{name}: {_failure(exc)}")
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
        _log_failure("nightly report")
        result.errors.append(f"report: {_failure(exc)}")
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
            result.errors.append("interrupted" if not isinstance(exc, Exception) else _failure(exc))
            try:
                _finish_run(engine, result, _now(clock() if now is None else now))
            finally:
                raise exc
        if result.status == "running":
            result.status = "ok"
        _finish_run(engine, result, _now(clock() if now is None else now))
    return result
