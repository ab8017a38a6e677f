"""Importing files: detect the format, parse, and store each file in one transaction, set-based.

Policy (documented in README): a row that fails validation is refused and reported with its line,
field and reason; the file's other rows are imported (`strict=True`, as the nightly run uses, refuses
the whole file instead). A row already imported identically is a duplicate and changes nothing; a
row whose id was imported with different content is refused. A file that cannot be read at all, or
any database error, leaves the database exactly as it was.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import multiprocessing
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

import pandas as pd
from sqlalchemy import Connection, Engine

from recouvrement.audit import append_event
from recouvrement.config import Settings
from recouvrement.db import remittances
from recouvrement.db.loads import LOADED, record_import_batch, store_invoices, store_payments  # noqa: F401  (LOADED: the tables loaded straight)
from recouvrement.db.refunds import close_refunds
from recouvrement.db.session import bulk_transaction, release_freed_memory, without_huge_pages
from recouvrement.core.books import OutgoingTransfer
from recouvrement.core.privacy import redact, safe_file_name
from recouvrement.errors import RecouvrementError
from recouvrement.importers.base import ImportReport, Parsed, Reject, read_head  # noqa: F401  (ImportReport: still importable here)

# Each format is recognised by content (header names, XML namespace, record layout), not by file name.
FORMATS = {
    "invoices_csv": "recouvrement.importers.invoices_csv",
    "payments_csv": "recouvrement.importers.payments_csv",
    "camt053": "recouvrement.importers.camt053",
    "cfonb120": "recouvrement.importers.cfonb120",
    "noemie": "recouvrement.importers.noemie",
}


class ImportRefused(RecouvrementError):
    """A strict import refused the whole file; nothing was stored."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        super().__init__(f"{len(report.rejects)} ligne(s) refusée(s), fichier non importé", file=report.file)


KIND_FR = {"invoices": "factures", "payments": "paiements"}


def importer(format_name: str):
    return importlib.import_module(FORMATS[format_name])


def detect_format(path: Path) -> str:
    if not path.is_file():
        raise RecouvrementError("fichier introuvable", file=str(path))
    head = read_head(path)
    for name in FORMATS:
        if importer(name).sniff(head, path.name):
            return name
    raise RecouvrementError("format de fichier inconnu (attendu : un CSV de factures ou de paiements avec nos "
                            "noms de colonnes, un relevé camt.053 XML, un relevé CFONB 120 ou un retour NOEMIE)", file=path.name)


KEYED = ("invoices_csv", "noemie")    # the formats whose NIRs are hashed with the installation's key


def parse_file(path: Path, settings: Settings, expect: str | None = None) -> tuple[str, Parsed]:
    format_name = _checked_format(path, expect)
    return format_name, _read(path, format_name, _nir_key(format_name, settings), settings.privacy.keep_care)


def _checked_format(path: Path, expect: str | None) -> str:
    format_name = detect_format(path)
    kind = importer(format_name).KIND
    if expect and kind != expect:
        raise RecouvrementError(f"ce fichier est de type {KIND_FR.get(kind, kind)} ({format_name}), "
                                f"pas {KIND_FR.get(expect, expect)}", file=path.name)
    return format_name


def _nir_key(format_name: str, settings: Settings) -> bytes:
    return settings.nir_key() if format_name in KEYED else b""


def _read(path: Path, format_name: str, nir_key: bytes, keep_care: bool) -> Parsed:
    module = importer(format_name)
    if format_name == "invoices_csv":
        return module.read(path, nir_key=nir_key, keep_care=keep_care)
    if format_name == "noemie":
        return module.read(path, nir_key=nir_key)
    return module.read(path)


def _read_into(folder: Path, path: Path, format_name: str, nir_key: bytes, keep_care: bool) -> tuple[Path, str]:
    """What ReadAhead's child process does: the file read and checked, written (pickled) into a file of the
    private `folder`, and the file's SHA-256 (as _record_batch). Only the name goes back through the pool's pipe:
    a result of 150 MB read there by the pool's thread, during the parent's store, stole the GIL from it read by
    read (the store's wall time grew by seconds).

    What the reading held is then given back to the system (db.session.release_freed_memory): the worker waits for
    the next file beside the parent's store, and kept it all (the AMO remittance at 1M: 577 MB resident between
    files; 171 MB once given back)."""
    try:
        parsed = _read(path, format_name, nir_key, keep_care)
        handle, name = tempfile.mkstemp(dir=folder, suffix=".parsed")
        with os.fdopen(handle, "wb") as out:
            write_parsed(parsed, out)
        del parsed
    finally:
        release_freed_memory()
    return Path(name), _sha256(path)


def write_parsed(parsed: Parsed, out: BinaryIO) -> None:
    """`parsed` pickled into `out`, its frames' columns one pickle each, after the rest (read_parsed reads it back).
    pandas pickles an Arrow column as one combined copy of its chunks, and a pickle holds what it wrote until its
    end (its memo): pickled whole, the AMO remittance at 1M held 140 MB of copies at once in the child; column by
    column, one column's."""
    frames = {name: value for name, value in vars(parsed).items() if isinstance(value, pd.DataFrame)}
    rest = copy.copy(parsed)
    for name in frames:
        delattr(rest, name)
    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dump((rest, {name: (frame.index, frame.columns) for name, frame in frames.items()}))
    for frame in frames.values():
        for position in range(frame.shape[1]):
            pickler.clear_memo()
            pickler.dump(frame.iloc[:, position])


def read_parsed(handle: BinaryIO) -> Parsed:
    """What write_parsed wrote: the same Parsed, its frames with the same columns, index and dtypes."""
    parsed, layouts = pickle.load(handle)
    for name, (index, columns) in layouts.items():
        frame = pd.DataFrame({position: pickle.load(handle) for position in range(len(columns))}, index=index,
                             copy=False)
        frame.columns = columns
        setattr(parsed, name, frame)
    return parsed


# A file at least this big is stored for long enough (a second and more) to hide the next one's reading, and the
# child process's start (some 0.5 s of the other core); a night's files, smaller, are read one after the other.
READ_AHEAD_FROM = 16 << 20
# The child reads on the CPU the store leaves over: a store keeps the other core busy at times too (the patients'
# work in a thread beside the invoices' insert and index builds, db.loads._patients_beside), and must not wait for it.
CHILD_NICENESS = 10


# The child's private folder, in the system's temporary folder, named after the process that reads ahead: a process
# killed (SIGKILL, the machine's memory) leaves it behind with patients' rows in it; the next one removes it.
READ_FOLDER = "recouvrement-read-"


def remove_left_read_folders(where: Path | None = None) -> list[Path]:
    """Removes the read-ahead folders of processes that are no longer running (ours only: same owner), and says
    which. A folder of a process still running (another import at the same time) is its own and stays."""
    removed = []
    for folder in Path(where or tempfile.gettempdir()).glob(f"{READ_FOLDER}*-*"):
        try:
            pid = int(folder.name[len(READ_FOLDER):].split("-", 1)[0])
            if folder.stat().st_uid != os.getuid() or pid == os.getpid() or _running(pid):
                continue
        except (ValueError, OSError):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:     # someone else's process: running
        pass
    return True


class ReadAhead:
    """Files read and checked in a child process while the one before is stored: `start(path)` early, then
    import_file(…, ahead=this) takes what the child read, or reads the file itself as usual when it was not
    started, or when the child failed otherwise than on the file (killed, its folder gone). Importers never touch
    the database, so a file read there is the same Parsed (its rejects, warnings and errors too: a
    RecouvrementError comes back whole); the child is started with "spawn", a fresh interpreter holding no copy of
    the parent's open database connection. At most one file is read ahead: its rows and the one being stored are
    all that is held at once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: ProcessPoolExecutor | None = None
        self._pending: dict[Path, tuple[str | None, str, Future]] = {}
        self._next: tuple[Path, str | None] | None = None
        self._folder: Path | None = None

    def after_this_one(self, path: Path, expect: str | None = None) -> None:
        """`path` to be started once the file being imported is read (import_file calls `this_one_read`): not
        while it is, which would take the second core from Arrow's reading threads and the child's start."""
        self._next = (path, expect)

    def this_one_read(self) -> None:
        if self._next is not None:
            self.start(*self._next)
            self._next = None

    def start(self, path: Path, expect: str | None = None) -> None:
        try:    # what import_file checks first (format, kind): here, or again there to raise it in its place
            format_name = _checked_format(path, expect)
            nir_key = _nir_key(format_name, self.settings)
        except RecouvrementError:
            return
        if self._pool is None or self._folder is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=os.nice, initargs=(CHILD_NICENESS,))
            remove_left_read_folders()
            self._folder = Path(tempfile.mkdtemp(prefix=f"{READ_FOLDER}{os.getpid()}-"))   # 0700: the rows are private
        self._pending[path] = (expect, format_name, self._pool.submit(_read_into, self._folder, path, format_name,
                                                                      nir_key, self.settings.privacy.keep_care))

    def take(self, path: Path, expect: str | None) -> tuple[str, Parsed, str] | None:
        """(format, what was read, the file's SHA-256) when `path` was started (with the same `expect`); a read's
        RecouvrementError is raised as import_file would. None: import_file reads it itself."""
        expected, format_name, future = self._pending.pop(path, (None, "", None))
        if future is None or expected != expect:
            return None
        try:
            written, sha = future.result()
        except RecouvrementError:      # the file's own fault: as import_file would say it
            raise
        except Exception:              # the child killed (memory), its folder gone or full …: read here, as without it
            self.close()
            return None
        try:
            with open(written, "rb") as handle:
                parsed = read_parsed(handle)
        finally:
            written.unlink()
        return format_name, parsed, sha

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        self._pending.clear()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def import_files(engine: Engine, paths: Iterable[Path], settings: Settings, expect: str | None = None,
                 strict: bool = False, read_ahead_from: int = READ_AHEAD_FROM
                 ) -> Iterator[tuple[Path, ImportReport | Exception]]:
    """Each file imported as import_file does, in the order given (each its own transaction), and what came of it:
    its report, or the exception that stopped it (the next file is still taken). While a file of
    `read_ahead_from` bytes or more is stored, the next one is read and checked in a child process (ReadAhead):
    a million invoices are stored for seconds during which the first remittance file is read. The next path is
    taken from `paths` before the file is stored."""
    with ReadAhead(settings) as ahead:
        queue = iter(paths)
        current = next(queue, None)
        while current is not None:
            following = next(queue, None)
            if following is not None and _size(current) >= read_ahead_from:
                ahead.after_this_one(following, expect)
            outcome: ImportReport | Exception
            try:
                outcome = import_file(engine, current, settings, expect, strict, ahead)
            except Exception as exc:   # the caller says what it means (quarantine, left in the inbox …)
                outcome = exc
            if following is None:      # nothing more to read: the child ends (its memory, its CPU counted) now
                ahead.close()
            yield current, outcome
            current = following


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def import_file(engine: Engine, path: Path, settings: Settings, expect: str | None = None,
                strict: bool = False, ahead: ReadAhead | None = None) -> ImportReport:
    """Read, check and store one file, in one transaction (the report says what was imported, a duplicate, refused).
    What the file's reading held is given back to the system once it is stored (db.session.release_freed_memory):
    the nightly run reconciles in the same process, and a million invoices' parse left 450 MB behind it.
    `ahead`: where the file may have been read already (import_files)."""
    without_huge_pages()     # before the parse, and the read-ahead child it starts (see there)
    try:
        return _import_file(engine, path, settings, expect, strict, ahead)
    finally:
        release_freed_memory()


def _import_file(engine: Engine, path: Path, settings: Settings, expect: str | None, strict: bool,
                 ahead: ReadAhead | None) -> ImportReport:
    with ThreadPoolExecutor(max_workers=1) as hashing:
        sha: str | Future[str]
        try:
            read = ahead.take(path, expect) if ahead is not None else None
            if read is not None:
                format_name, parsed, sha = read
            else:   # the file hashed beside its parse (hashlib reads and hashes without the GIL): 0.4 s at 1M
                sha = hashing.submit(_sha256, path)
                format_name, parsed = parse_file(path, settings, expect)
        finally:    # read, or found unreadable: the next file's reading may start
            if ahead is not None:
                ahead.this_one_read()
        return _store_file(engine, path, format_name, parsed, sha, strict)


def _store_file(engine: Engine, path: Path, format_name: str, parsed: Parsed, sha: str | Future[str],
                strict: bool) -> ImportReport:
    """The file's rows, read, stored in one transaction; `sha`: its SHA-256, or the hashing under way."""
    name = safe_file_name(path.name)   # as stored and shown: a NIR or a care word in a file name is masked
    report = ImportReport(name, format_name, parsed.kind, parsed.rows_read,
                          rejects=list(parsed.rejects), warnings=[redact(w) for w in parsed.warnings])
    if strict and report.rejects:
        raise ImportRefused(report)
    with bulk_transaction(engine) as conn:
        if format_name == "noemie":
            report.rejects += _settle_remittance(conn, parsed, name)
        imported, duplicates, conflicts = _store(conn, parsed, name)
        report.imported, report.duplicates = imported, duplicates
        report.rejects = sorted(report.rejects + conflicts)
        if strict and report.rejects:
            raise ImportRefused(report)
        if imported:
            _record_batch(conn, format_name, report, sha if isinstance(sha, str) else sha.result())
        if parsed.outgoing:    # a bank statement showing refunds we ordered: they are done, their credits closed
            report.refunds_done = _close_refunds(conn, parsed.outgoing)
    return report


def _close_refunds(conn: Connection, outgoing: list[OutgoingTransfer]) -> int:
    """The refunds the statement shows paid are done (db.refunds.close_refunds), one audit event each, in the
    statement's transaction."""
    closed = close_refunds(conn, outgoing)
    for done in closed:
        append_event(conn, "refund_done", {"refund_id": done.id, "payment_id": done.payment_id,
                                           "amount_cents": done.amount_cents, "booked_on": done.done_on,
                                           "end_to_end_id": done.end_to_end_id}, patient_id=done.patient_id)
    return len(closed)




def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:    # read by blocks: the 1M invoices file whole is 244 MB
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _record_batch(conn: Connection, format_name: str, report: ImportReport, sha: str) -> None:
    now = datetime.now(timezone.utc)
    record_import_batch(conn, kind=report.kind, format_name=format_name, source_file=report.file, sha256=sha,
                        imported_at=now, rows_read=report.rows_read, imported=report.imported,
                        duplicates=report.duplicates, rejected=len(report.rejects))
    append_event(conn, "import", {"file": report.file, "sha256": sha, "kind": report.kind, "format": format_name,
                                  "imported": report.imported, "duplicates": report.duplicates,
                                  "rejected": len(report.rejects)})


def _settle_remittance(conn: Connection, parsed: Parsed, file: str) -> list[Reject]:
    """A NOEMIE return's lines name invoices by the mapped number: each becomes the stored invoice number
    (the same, else the one invoice of that compact number). A line whose return gives NIRs none of which is
    the invoice's patient's (as hashed) is refused; the hashes are then dropped, never stored."""
    frame = parsed.frame
    hashes = parsed.__dict__.pop("nir_hashes", None)
    if frame.empty:
        return []
    found = remittances.invoices_by_number(conn, frame["invoice_number"].dropna().tolist())
    exact = found.loc[found["exact"].astype(bool)].drop_duplicates("asked")
    by_compact = found.loc[~found["asked"].isin(exact["asked"])]
    by_compact = by_compact.loc[~by_compact["asked"].duplicated(keep=False)]
    chosen = pd.concat([exact, by_compact]).set_index("asked")
    frame["invoice_number"] = frame["invoice_number"].map(lambda n: chosen["invoice_number"].get(n, n)
                                                          if isinstance(n, str) else n)
    if hashes is None or hashes.empty:
        return []
    patients = frame[["payment_id", "invoice_number", "source_line"]].merge(
        chosen.drop_duplicates("invoice_number")[["invoice_number", "nir_hash"]], on="invoice_number")
    patients = patients[patients["nir_hash"].notna()]
    read = hashes.groupby("payment_id")["nir_hash"].agg(set)
    wrong = patients[patients.apply(lambda r: r["payment_id"] in read.index and r["nir_hash"] not in
                                    read[r["payment_id"]], axis=1)] if len(patients) else patients
    parsed.frame = frame[~frame["payment_id"].isin(wrong["payment_id"])].reset_index(drop=True)
    return [Reject(file, int(r.source_line), "nir", f"le NIR lu dans le retour n'est pas celui du patient de la "
                   f"facture {r.invoice_number} : ligne refusée") for r in wrong.itertuples()]


def _store(conn: Connection, parsed: Parsed, file: str) -> tuple[int, int, list[Reject]]:
    """(imported, duplicates, conflicts) of the parsed rows, stored set-based."""
    if parsed.kind == "invoices":
        imported, duplicates, known = store_invoices(conn, parsed.frame, parsed.patients,  # type: ignore[attr-defined]
                                                     parsed.care)  # type: ignore[attr-defined]
        field_name, reason = "invoice_number", "already imported with a different patient, date or amounts"
    else:
        imported, duplicates, known = store_payments(conn, parsed.frame, file)
        field_name, reason = "payment_id", "already imported with a different date, payer, amount or status"
    return imported, duplicates, [Reject(file, line, field_name, f"{reason}: {key}") for key, line in known]
