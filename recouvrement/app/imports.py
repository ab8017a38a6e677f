"""Importing files: detect the format, parse, and store each file in one transaction, set-based.

Policy (documented in README): a row that fails validation is refused and reported with its line,
field and reason; the file's other rows are imported (`strict=True`, as the nightly run uses, refuses
the whole file instead). A row already imported identically is a duplicate and changes nothing; a
row whose id was imported with different content is refused. A file that cannot be read at all, or
any database error, leaves the database exactly as it was.
"""

from __future__ import annotations

import hashlib
import importlib
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine

from recouvrement.audit import append_event
from recouvrement.config import Settings
from recouvrement.db import remittances
from recouvrement.db.loads import LOADED, record_import_batch, store_invoices, store_payments  # noqa: F401  (LOADED: the tables loaded straight)
from recouvrement.db.refunds import close_refunds
from recouvrement.db.session import bulk_transaction, release_freed_memory
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


def parse_file(path: Path, settings: Settings, expect: str | None = None) -> tuple[str, Parsed]:
    format_name = detect_format(path)
    module = importer(format_name)
    if expect and module.KIND != expect:
        raise RecouvrementError(f"ce fichier est de type {KIND_FR.get(module.KIND, module.KIND)} ({format_name}), "
                                f"pas {KIND_FR.get(expect, expect)}", file=path.name)
    if format_name == "invoices_csv":
        parsed = module.read(path, nir_key=settings.nir_key(), keep_care=settings.privacy.keep_care)
    elif format_name == "noemie":
        parsed = module.read(path, nir_key=settings.nir_key())
    else:
        parsed = module.read(path)
    return format_name, parsed


def import_file(engine: Engine, path: Path, settings: Settings, expect: str | None = None,
                strict: bool = False) -> ImportReport:
    """Read, check and store one file, in one transaction (the report says what was imported, a duplicate, refused).
    What the file's reading held is given back to the system once it is stored (db.session.release_freed_memory):
    the nightly run reconciles in the same process, and a million invoices' parse left 450 MB behind it."""
    try:
        return _import_file(engine, path, settings, expect, strict)
    finally:
        release_freed_memory()


def _import_file(engine: Engine, path: Path, settings: Settings, expect: str | None, strict: bool) -> ImportReport:
    format_name, parsed = parse_file(path, settings, expect)
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
            _record_batch(conn, path, format_name, report)
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




def _record_batch(conn: Connection, path: Path, format_name: str, report: ImportReport) -> None:
    with open(path, "rb") as handle:    # read by blocks: the 1M invoices file whole is 244 MB
        sha = hashlib.file_digest(handle, "sha256").hexdigest()
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
