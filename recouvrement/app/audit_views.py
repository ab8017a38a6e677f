"""Read-only views of the audit trail for the `audit` commands: verification and the filtered log."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from recouvrement.audit import Verification, file_sha256, verify
from recouvrement.db.audit import events_about, events_naming_files
from recouvrement.render.files import waiting_in_private_folder

SUMMARY_CHARS = 80
DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class AuditRow:
    seq: int
    at: str
    kind: str
    patient_id: str | None
    invoice_number: str | None
    payload: str
    actor: str | None = None

    def summary(self, width: int = SUMMARY_CHARS) -> str:
        return payload_summary(self.payload, width)


def verify_log(engine: Engine) -> Verification:
    with engine.connect() as conn:
        return verify(conn)


def payload_summary(payload: str, width: int = SUMMARY_CHARS) -> str:
    """`key=value` pairs on one line, cut to width; digests shortened (they are for machines)."""
    try:
        data = json.loads(payload)
    except ValueError:
        data = payload
    if isinstance(data, dict):
        text_ = " ".join(f"{key}={_short(value)}" for key, value in data.items())
    else:
        text_ = _short(data)
    return text_ if len(text_) <= width else text_[:width - 1] + "…"


def _short(value) -> str:
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12] + "…"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def audit_log(engine: Engine, *, patient_id: str | None = None, invoice_number: str | None = None,
              limit: int = DEFAULT_LIMIT) -> list[AuditRow]:
    """The latest `limit` events matching the filters, oldest first.

    An event is about an invoice when it names it in its `invoice_number` column or in its payload's
    `invoices` (a letter, a plan, an agency case, an unmatched payment cover several); about a patient
    when it names the patient. Events about one of the invoice's are read from its patient's history."""
    rows: list[AuditRow] = []
    with engine.connect() as conn:
        # Events about an invoice are filtered here (its payload's `invoices`): all are read, newest first.
        events = events_about(conn, patient_id=patient_id, invoice_number=invoice_number,
                              limit=None if invoice_number else limit)
        for seq, at, kind, patient, invoice, actor, payload in events:
            if invoice_number and invoice != invoice_number and invoice_number not in _invoices(payload):
                continue
            rows.append(AuditRow(seq, at, kind, patient, invoice, payload, actor))
            if len(rows) == limit:
                events.close()
                break
    return rows[::-1]


def _invoices(payload: str) -> list[str]:
    try:
        named = json.loads(payload).get("invoices") or []
    except (ValueError, AttributeError):
        return []
    return named if isinstance(named, list) else []


# -- the files the trail vouches for -----------------------------------------------------------------------

@dataclass(frozen=True)
class FileCheck:
    checked: int                       # files the trail names under the folder
    modified: list[tuple[str, int]]    # (path, seq of the event that recorded it)
    missing: list[tuple[str, int]]
    # Not in place yet, whole in the private folder of a run killed or stopped after recording its letters: (path,
    # where it waits); the next reminder run moves it into place. Not a fault of the trail nor of the file.
    waiting: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.modified and not self.missing


def verify_files(engine: Engine, folder: Path) -> FileCheck:
    """Every file the trail recorded under `folder` (letters, PDFs, exports, manifests, reports), against the
    SHA-256 of its latest record: modified or missing ones are named."""
    root = folder.resolve()
    latest: dict[str, tuple[str, int]] = {}
    with engine.connect() as conn:
        for seq, payload in events_naming_files(conn):
            try:
                files = json.loads(payload).get("files") or []
            except (ValueError, AttributeError):
                continue
            for entry in files:
                if isinstance(entry, dict) and "path" in entry and "sha256" in entry:
                    latest[entry["path"]] = (entry["sha256"], seq)
    modified, missing, waiting = [], [], []
    for name, (digest, seq) in sorted(latest.items()):
        path = Path(name)
        if not path.is_relative_to(root):
            continue
        if not path.is_file():
            left = waiting_in_private_folder(path)
            if left is not None and file_sha256(left) == digest:
                waiting.append((name, str(left)))
            else:
                missing.append((name, seq))
        elif file_sha256(path) != digest:
            modified.append((name, seq))
    checked = sum(1 for name in latest if Path(name).is_relative_to(root))
    return FileCheck(checked, modified, missing, waiting)


