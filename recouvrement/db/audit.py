"""The audit trail in the store: its head, its events in order, appending one, and the filtered reads.

An event row is the tuple (seq, at, kind, patient_id, invoice_number, actor, payload, prev_hash, hash), its
`at` the ISO text it was hashed with (never converted: the MAC covers it as written)."""

from __future__ import annotations

from typing import Generator

from sqlalchemy import Connection, text

from recouvrement.db.session import clinic_lock

COLUMNS = "seq, at, kind, patient_id, invoice_number, actor, payload, prev_hash, hash"
PG_LOCK_ID = 0x72656361            # "reca": the advisory lock kind that orders a clinic's appends on PostgreSQL


def lock_trail_head(conn: Connection) -> None:
    """Hold, until the caller's transaction ends, the lock that makes reading the head and appending after it
    one step. On SQLite a write statement takes the database's write lock (waiting for it like any write);
    on PostgreSQL a transaction-scoped advisory lock, the clinic's (a row lock on the head would let a second writer read
    the old head again once the first commits)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(clinic_lock(PG_LOCK_ID))
    elif conn.dialect.name == "sqlite":
        conn.execute(text("UPDATE audit_event SET seq = seq WHERE seq < 0"))


def trail_head(conn: Connection) -> tuple | None:
    """The last event row, or None for an empty trail."""
    row = conn.execute(text(f"SELECT {COLUMNS} FROM audit_event ORDER BY seq DESC LIMIT 1")).first()
    return None if row is None else tuple(row)


def trail_events(conn: Connection) -> Generator[tuple, None, None]:
    """Every event row in sequence order, streamed (close the iterator to stop early)."""
    result = conn.execute(text(f"SELECT {COLUMNS} FROM audit_event ORDER BY seq"))
    try:
        for row in result:
            yield tuple(row)
    finally:
        result.close()


def event_hash(conn: Connection, seq: int) -> str | None:
    return conn.execute(text("SELECT hash FROM audit_event WHERE seq = :s"), {"s": seq}).scalar()


def insert_event(conn: Connection, seq: int, at: str, kind: str, patient_id: str | None,
                 invoice_number: str | None, actor: str | None, payload: str, prev_hash: str, digest: str) -> None:
    conn.execute(text(f"INSERT INTO audit_event ({COLUMNS}) VALUES (:seq, :at, :kind, :p, :i, :actor, :payload, "
                      ":prev, :hash)"),
                 {"seq": seq, "at": at, "kind": kind, "p": patient_id, "i": invoice_number, "actor": actor,
                  "payload": payload, "prev": prev_hash, "hash": digest})


def insert_events(conn: Connection, rows: list[tuple]) -> None:
    """Event rows (seq, at, kind, patient_id, invoice_number, actor, payload, prev_hash, hash), in one statement."""
    conn.execute(text(f"INSERT INTO audit_event ({COLUMNS}) VALUES (:seq, :at, :kind, :p, :i, :actor, :payload, "
                      ":prev, :hash)"),
                 [{"seq": seq, "at": at, "kind": kind, "p": patient_id, "i": invoice_number, "actor": actor,
                   "payload": payload, "prev": prev_hash, "hash": digest}
                  for seq, at, kind, patient_id, invoice_number, actor, payload, prev_hash, digest in rows])


def events_about(conn: Connection, *, patient_id: str | None = None, invoice_number: str | None = None,
                 limit: int | None = None) -> Generator[tuple, None, None]:
    """(seq, at, kind, patient_id, invoice_number, actor, payload) of the events naming the patient, or the
    invoice or its patient, newest first; at most `limit` of them (all when None)."""
    where: list[str] = []
    params: dict[str, object] = {}
    if patient_id:
        where.append("patient_id = :p")
        params["p"] = patient_id
    if invoice_number:
        where.append("(invoice_number = :i OR patient_id IN (SELECT patient_id FROM invoice WHERE invoice_number = :i))")
        params["i"] = invoice_number
    sql = ("SELECT seq, at, kind, patient_id, invoice_number, actor, payload FROM audit_event"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq DESC")
    if limit is not None:
        sql, params = sql + " LIMIT :n", {**params, "n": limit}
    result = conn.execute(text(sql), params)
    try:
        for row in result:
            yield tuple(row)
    finally:
        result.close()


def events_naming_files(conn: Connection) -> list[tuple[int, str]]:
    """(seq, payload) of the events whose payload may name written files, in sequence order."""
    return [tuple(r) for r in conn.execute(text("SELECT seq, payload FROM audit_event WHERE payload LIKE :f "
                                                "ORDER BY seq"), {"f": '%"files"%'})]
