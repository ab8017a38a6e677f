"""The audit trail: an append-only, hash-chained event log, and its verification.

Each event's hash is SHA-256 over the previous hash and the event's canonical JSON, so an
edited, deleted or reordered event breaks the chain from that point on. The head hash is
printed by `audit verify` and written into run reports and export manifests, so that
truncating the tail of the log is detectable against any copy of a later head.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import Connection, text

GENESIS = "0" * 64


def _canonical(seq: int, at: str, kind: str, patient_id, invoice_number, payload: str) -> bytes:
    return json.dumps([seq, at, kind, patient_id, invoice_number, payload], ensure_ascii=False,
                      separators=(",", ":")).encode()


def event_hash(prev_hash: str, seq: int, at: str, kind: str, patient_id, invoice_number, payload: str) -> str:
    return hashlib.sha256(prev_hash.encode() + _canonical(seq, at, kind, patient_id, invoice_number, payload)).hexdigest()


def _json_default(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(type(value))


def append_event(conn: Connection, kind: str, payload: dict, *, patient_id: str | None = None,
                 invoice_number: str | None = None, at: datetime | None = None) -> str:
    """Append one event in the caller's transaction; returns its hash."""
    last = conn.execute(text("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1")).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    stamp = (at or datetime.now(timezone.utc)).replace(microsecond=0)
    at_text = stamp.isoformat()
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=_json_default)
    digest = event_hash(prev, seq, at_text, kind, patient_id, invoice_number, body)
    conn.execute(text("INSERT INTO audit_event (seq, at, kind, patient_id, invoice_number, payload, prev_hash, hash) "
                      "VALUES (:seq, :at, :kind, :p, :i, :payload, :prev, :hash)"),
                 {"seq": seq, "at": at_text, "kind": kind, "p": patient_id, "i": invoice_number,
                  "payload": body, "prev": prev, "hash": digest})
    return digest


@dataclass(frozen=True)
class Verification:
    events: int
    head: str
    first_bad: int | None        # seq of the first event that does not verify
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.first_bad is None


def verify(conn: Connection) -> Verification:
    rows = conn.execute(text("SELECT seq, at, kind, patient_id, invoice_number, payload, prev_hash, hash "
                             "FROM audit_event ORDER BY seq")).all()
    prev, expected_seq = GENESIS, 1
    for seq, at, kind, patient_id, invoice_number, payload, prev_hash, digest in rows:
        at_text = at if isinstance(at, str) else at.isoformat()
        problem = None
        if seq != expected_seq:
            problem = f"l'événement {expected_seq} manque (le suivant est {seq})"
        elif prev_hash != prev:
            problem = "ne suit pas l'événement précédent (supprimé ou déplacé)"
        elif event_hash(prev, seq, at_text, kind, patient_id, invoice_number, payload) != digest:
            problem = "son contenu a été modifié après son écriture"
        if problem:
            return Verification(len(rows), prev, seq if seq == expected_seq else expected_seq, problem)
        prev, expected_seq = digest, seq + 1
    return Verification(len(rows), prev, None, None)
