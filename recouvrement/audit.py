"""The audit trail: an append-only event log sealed with a key, anchored outside the database, and its verification.

Each event's `hash` is an HMAC-SHA256, keyed with the installation's audit key (kept outside the
database, like the NIR key), over the previous event's hash and the event's canonical JSON (sequence
number, time, kind, patient, invoice, actor, payload). Whoever holds only the database file can
neither edit an event nor re-chain the log after an edit: every MAC from that point on would need
the key. Deleting the *last* events leaves a shorter chain that is still whole, so the head (its
sequence number and MAC) is also written outside the database after each writing command, in the
checkpoint file (`[audit] checkpoint_file`): `verify` compares the log with it and names what is
missing. The head also goes into run reports and agency manifests.

Trails written before the key existed were chained with a plain SHA-256 (`legacy_hash`). They are
carried, never rewritten: the first event appended with the key is an `audit_sealed` event that
records how many legacy events it seals and their head, and its MAC covers that head — from then on
editing a legacy event needs the key too. `verify` checks the legacy prefix with SHA-256 and
everything after it with the key.

Two processes appending at once never fork the chain: the head is read under a lock held until the
caller's transaction ends (a transaction-scoped advisory lock on PostgreSQL, the write lock on SQLite).
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from sqlalchemy import Connection, Engine

from recouvrement.db.audit import (event_hash, insert_event, insert_events, lock_trail_head, trail_events,
                                    trail_head)
from recouvrement.errors import RecouvrementError

GENESIS = "0" * 64
SEALED_KIND = "audit_sealed"
SEAL_OPTION = "recouvrement_audit_seal"


@dataclass(frozen=True)
class AuditSeal:
    """What seals and anchors the trail of one database: the key, and where the checkpoint is kept."""
    key: bytes
    checkpoint: Path | None = None


def seal_engine(engine: Engine, seal: AuditSeal) -> Engine:
    """Events appended through this engine are sealed with `seal` (every connection it opens inherits it)."""
    engine.update_execution_options(**{SEAL_OPTION: seal})
    return engine


def settings_seal(settings) -> AuditSeal:
    return AuditSeal(settings.audit_key(), settings.audit_checkpoint())


def seal_of(conn: Connection) -> AuditSeal:
    """The seal attached to the connection's engine; else the installation's (RECOUVREMENT_AUDIT_KEY or the
    key file of the settings found as the command line finds them), attached from then on."""
    seal = conn.get_execution_options().get(SEAL_OPTION)
    if seal is None:
        from recouvrement.config import load_settings
        seal = settings_seal(load_settings())
        seal_engine(conn.engine, seal)
    return seal


def os_actor() -> str:
    """Who runs this process: the OS user (the actor of command-line and scheduled work)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


# -- sealing -----------------------------------------------------------------------------------------------

def _canonical(values: list) -> bytes:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()


def legacy_hash(prev_hash: str, seq: int, at: str, kind: str, patient_id, invoice_number, payload: str) -> str:
    """The plain SHA-256 link of trails written before the key (no actor): kept only to verify them."""
    return hashlib.sha256(prev_hash.encode() + _canonical([seq, at, kind, patient_id, invoice_number, payload])
                          ).hexdigest()


def event_mac(key: bytes, prev_hash: str, seq: int, at: str, kind: str, patient_id, invoice_number, actor,
              payload: str) -> str:
    message = prev_hash.encode() + _canonical([seq, at, kind, patient_id, invoice_number, actor, payload])
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _json_default(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value))


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (letters, exports and inbox files alike)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def text_digest(value: str) -> str:
    """The SHA-256 of a free text (a hold's reason, a dispute's note): the audit log proves it was not
    rewritten without holding it (a very short text can be guessed from its hash: integrity, not secrecy)."""
    return hashlib.sha256(value.encode()).hexdigest()


def file_record(path: Path, data: bytes | None = None) -> dict:
    """How a written file is named in an event's `files`: its absolute path and SHA-256 (of `data`, else read)."""
    content = data if data is not None else Path(path).read_bytes()
    return {"path": str(Path(path).resolve()), "sha256": hashlib.sha256(content).hexdigest()}


def record_files(engine: Engine, kind: str, paths, *, actor: str | None = None, **payload) -> str:
    """One event naming files just written (an export, a report, a manifest) with their SHA-256, as they are
    on disk, so that `audit verify --files` can check them later. Returns the new head."""
    with engine.begin() as conn:
        return append_event(conn, kind, {**payload, "files": [file_record(Path(p)) for p in paths]}, actor=actor)


def _row_is_sealed(key: bytes, row) -> bool:
    seq, at, kind, patient_id, invoice_number, actor, payload, prev_hash, digest = row
    return hmac.compare_digest(event_mac(key, prev_hash, seq, _text(at), kind, patient_id, invoice_number, actor,
                                         payload), digest)


def _row_is_legacy(row) -> bool:
    seq, at, kind, patient_id, invoice_number, actor, payload, prev_hash, digest = row
    return actor is None and legacy_hash(prev_hash, seq, _text(at), kind, patient_id, invoice_number,
                                         payload) == digest


def _insert(conn: Connection, key: bytes, seq: int, prev: str, kind: str, payload: dict, patient_id,
            invoice_number, actor: str, at: datetime | None) -> str:
    at_text, body = _stamp(at), _body(payload)
    digest = event_mac(key, prev, seq, at_text, kind, patient_id, invoice_number, actor, body)
    insert_event(conn, seq, at_text, kind, patient_id, invoice_number, actor, body, prev, digest)
    return digest


def _stamp(at: datetime | None) -> str:
    return (at or datetime.now(timezone.utc)).replace(microsecond=0).isoformat()


def _body(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, default=_json_default)


def append_event(conn: Connection, kind: str, payload: dict, *, patient_id: str | None = None,
                 invoice_number: str | None = None, at: datetime | None = None, actor: str | None = None) -> str:
    """Append one event in the caller's transaction, sealed with the key; returns its MAC (the new head).

    `actor` is who acted: the web app passes the logged-in user; by default the OS user running the
    process. Refused (RecouvrementError) when the head does not verify with this key: appending would
    chain the trail to a key it was not sealed with (a key file recreated elsewhere) or to a forged head."""
    seal = seal_of(conn)
    seq, prev = _next_link(conn, seal.key, at)
    return _insert(conn, seal.key, seq, prev, kind, payload, patient_id, invoice_number, actor or os_actor(), at)


@dataclass(frozen=True)
class Event:
    """One event to append with `append_events`."""
    kind: str
    payload: dict
    patient_id: str | None = None
    invoice_number: str | None = None


def append_events(conn: Connection, events: Sequence[Event], *, actor: str | None = None) -> str | None:
    """The events appended in order in the caller's transaction, each sealed and chained as `append_event` would
    append it, the head read and checked once and the rows inserted in one statement (a night's letters: one event
    each, 0.5 ms apiece one by one, issue #16). Returns the new head (None when there is no event)."""
    if not events:
        return None
    seal = seal_of(conn)
    seq, prev = _next_link(conn, seal.key, None)
    who = actor or os_actor()
    rows = []
    for event in events:
        at_text, body = _stamp(None), _body(event.payload)
        digest = event_mac(seal.key, prev, seq, at_text, event.kind, event.patient_id, event.invoice_number, who,
                           body)
        rows.append((seq, at_text, event.kind, event.patient_id, event.invoice_number, who, body, prev, digest))
        seq, prev = seq + 1, digest
    insert_events(conn, rows)
    return prev


def _next_link(conn: Connection, key: bytes, at: datetime | None) -> tuple[int, str]:
    """(seq, previous MAC) of the next event, the head locked until the transaction ends and checked with the key
    (a trail written before the key is sealed first)."""
    lock_trail_head(conn)
    head = trail_head(conn)
    if head is None:
        return 1, GENESIS
    if _row_is_sealed(key, head):
        return head[0] + 1, head[-1]
    if _row_is_legacy(head):
        return head[0] + 2, _seal_legacy(conn, key, head, at)
    raise RecouvrementError(f"le dernier événement du journal d'audit ({head[0]}) ne se vérifie pas avec la "
                            "clé d'audit (clé différente ou journal falsifié) : rien n'est écrit ; lancer "
                            "`recouvrement audit verify`", field="audit.key_file")


def _seal_legacy(conn: Connection, key: bytes, head, at: datetime | None) -> str:
    """Seal a trail written before the key: one `audit_sealed` event after its head (which its MAC covers),
    recording what the plain chain verified to. Returns the sealing event's MAC."""
    legacy = verify_legacy(conn)
    payload = {"legacy_events": head[0], "legacy_head": head[-1], "legacy_intact": legacy.first_bad is None,
               "legacy_first_bad": legacy.first_bad}
    return _insert(conn, key, head[0] + 1, head[-1], SEALED_KIND, payload, None, None, os_actor(), at)


def verify_legacy(conn: Connection) -> "Verification":
    """The plain SHA-256 chain of a trail not yet sealed (used once, when sealing it)."""
    prev, expected = GENESIS, 1
    for row in trail_events(conn):
        if row[0] != expected or row[-2] != prev or not _row_is_legacy(row):
            return Verification(expected - 1, prev, expected - 1, expected, "chaîne ancienne rompue")
        prev, expected = row[-1], expected + 1
    return Verification(expected - 1, prev, expected - 1, None, None)


def _text(at) -> str:
    return at if isinstance(at, str) else at.isoformat()


# -- the checkpoint: the head, outside the database ----------------------------------------------------------

@dataclass(frozen=True)
class Checkpoint:
    seq: int
    mac: str
    at: str
    sealed: bool            # its own MAC verifies with the key (else it was written by someone without it)


def _checkpoint_mac(key: bytes, seq: int, mac: str, at: str) -> str:
    return hmac.new(key, f"checkpoint:{seq}:{mac}:{at}".encode(), hashlib.sha256).hexdigest()


def read_checkpoint(path: Path | None, key: bytes) -> Checkpoint | None:
    if path is None or not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        seq, mac, at, seal = int(data["seq"]), str(data["mac"]), str(data["at"]), str(data["seal"])
    except (ValueError, KeyError, TypeError):
        return Checkpoint(0, "", "", False)
    return Checkpoint(seq, mac, at, hmac.compare_digest(_checkpoint_mac(key, seq, mac, at), seal))


def write_checkpoint(engine: Engine, now: datetime | None = None) -> Checkpoint | None:
    """Anchor the head outside the database (written aside, then renamed into place). Only ever moves forward,
    and only from a head that verifies with the key and still holds the checkpointed event: a log that was
    truncated or rewritten keeps the evidence against it. Two processes finishing at once take turns (a lock
    file beside it). Returns the checkpoint now on disk."""
    with engine.connect() as conn:
        seal = seal_of(conn)
    if seal.checkpoint is None:
        return None
    path = seal.checkpoint
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _advance_checkpoint(engine, seal, path, now)


def _advance_checkpoint(engine: Engine, seal: AuditSeal, path: Path, now: datetime | None) -> Checkpoint | None:
    current = read_checkpoint(path, seal.key)
    with engine.connect() as conn:
        head = trail_head(conn)
        if head is None or not _row_is_sealed(seal.key, head):
            return current
        if current is not None:
            if not current.sealed or head[0] <= current.seq:
                return current
            kept = event_hash(conn, current.seq)
            if kept != current.mac:
                return current
    at = (now or datetime.now(timezone.utc)).replace(microsecond=0).isoformat()
    record = {"seq": head[0], "mac": head[-1], "at": at, "seal": _checkpoint_mac(seal.key, head[0], head[-1], at)}
    aside = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(aside, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(aside, path)
    return Checkpoint(head[0], head[-1], at, True)


# -- verification -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verification:
    events: int
    head: str
    head_seq: int
    first_bad: int | None        # seq of the first event that does not verify
    problem: str | None
    legacy: int = 0              # events chained before the key (plain SHA-256), sealed by the key after them
    checkpoint: Checkpoint | None = None
    missing_after: int | None = None     # the log ends at this seq, but the checkpoint attests more events
    warnings: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.first_bad is None and self.missing_after is None


def verify(conn: Connection, seal: AuditSeal | None = None) -> Verification:
    """Every link and MAC, then the head against the checkpoint. French messages (they are read as they are)."""
    seal = seal or seal_of(conn)
    prev, expected, count, legacy, keyed = GENESIS, 1, 0, 0, False
    checkpoint = read_checkpoint(seal.checkpoint, seal.key)
    checkpoint_hash = None
    rows = trail_events(conn)
    for row in rows:
        seq, digest = row[0], row[-1]
        problem = None
        if seq != expected:
            problem = f"l'événement {expected} manque (le suivant est le {seq})"
        elif row[-2] != prev:
            problem = "ne suit pas l'événement précédent (supprimé ou déplacé)"
        elif _row_is_sealed(seal.key, row):
            keyed = True
        elif not keyed and _row_is_legacy(row):
            legacy += 1
        elif keyed or row[5] is not None:
            problem = ("MAC invalide : clé d'audit différente, ou événement modifié (et peut-être rechaîné) "
                       "sans la clé")
        else:
            problem = "son contenu a été modifié après son écriture"
        if problem:
            rows.close()
            return Verification(count, prev, expected - 1, expected, problem, legacy, checkpoint)
        if checkpoint is not None and seq == checkpoint.seq:
            checkpoint_hash = digest
        prev, expected, count = digest, seq + 1, count + 1
    return _against_checkpoint(Verification(count, prev, expected - 1, None, None, legacy, checkpoint),
                               checkpoint, checkpoint_hash, seal.checkpoint, keyed)


def _against_checkpoint(result: Verification, checkpoint: Checkpoint | None, checkpoint_hash: str | None,
                        path: Path | None, keyed: bool) -> Verification:
    from dataclasses import replace
    warnings = []
    if result.legacy and not keyed:
        warnings.append(f"{result.legacy} événement(s) chaîné(s) sans clé (avant la mise à jour) : ils seront "
                        "scellés par la clé au prochain événement écrit")
    if checkpoint is None:
        warnings.append(f"aucun point de contrôle encore ({path or 'non configuré'}) : la suppression des "
                        "derniers événements ne peut pas être détectée")
        return replace(result, warnings=tuple(warnings))
    if not checkpoint.sealed:
        return replace(result, first_bad=checkpoint.seq or 1, warnings=tuple(warnings),
                       problem=f"le point de contrôle {path} n'est pas scellé par la clé d'audit (modifié, ou "
                               "autre clé)")
    if result.head_seq < checkpoint.seq:
        missing = (f"l'événement {checkpoint.seq}" if checkpoint.seq == result.head_seq + 1
                   else f"les événements {result.head_seq + 1} à {checkpoint.seq}")
        return replace(result, missing_after=result.head_seq, warnings=tuple(warnings),
                       problem=f"{missing} manque(nt) : le journal s'arrête à l'événement {result.head_seq}, le "
                               f"point de contrôle du {checkpoint.at} en attestait {checkpoint.seq}")
    if checkpoint_hash != checkpoint.mac:
        return replace(result, first_bad=checkpoint.seq, warnings=tuple(warnings),
                       problem=f"l'événement {checkpoint.seq} n'est plus celui du point de contrôle du "
                               f"{checkpoint.at} (journal réécrit)")
    return replace(result, warnings=tuple(warnings))
