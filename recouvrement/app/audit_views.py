"""Read-only views of the audit trail for the `audit` commands: verification and the filtered log."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Engine, text

from recouvrement.audit import Verification, verify

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
    """The latest `limit` events matching the filters, oldest first."""
    where, params = [], {"n": limit}
    if patient_id:
        where.append("patient_id = :p")
        params["p"] = patient_id
    if invoice_number:
        where.append("invoice_number = :i")
        params["i"] = invoice_number
    sql = ("SELECT seq, at, kind, patient_id, invoice_number, payload FROM audit_event"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq DESC LIMIT :n")
    with engine.connect() as conn:
        rows = [AuditRow(*r) for r in conn.execute(text(sql), params)]
    return rows[::-1]
