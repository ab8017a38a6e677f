"""Which queue entries a night tries again: those whose reach (table queue_reach: the invoice numbers, compact
numbers, RF references, name keys and patients their outcome depends on, core.reconcile.payment_reach +
resolve) meets what changed since the last run (db.changes, the allocations made since, the letters now
known), closed over the patients the entries retried may settle (one retry's allocation may take a share
another entry wants). An entry out of that reach would decide today as it did: the whole queue need not
be read (a test holds the outcome equal to retrying every entry)."""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, text

from recouvrement.core.reconcile import name_reach
from recouvrement.db.bulk import bulk_insert, read_frame, stage
from recouvrement.db.changes import take
from recouvrement.db.name_index import patients_named
from recouvrement.db.reconcile import RETRIED, meta, set_meta

COMPLETE = "queue_reach"                 # meta: every waiting entry has its reach (else: retry them all once)
MARK = "queue_allocation_mark"           # meta: the last allocation id when the last run ended


def complete(conn: Connection) -> bool:
    return meta(conn, COMPLETE) == "1"


def _values(conn: Connection, name: str, values: Iterable[str]) -> None:
    stage(conn, name, pd.DataFrame({"value": pd.Series(sorted(set(values)), dtype=object)}), {}, index="value")


def resolve(conn: Connection, reach: pd.DataFrame) -> pd.DataFrame:
    """`reach` (payment_id, key: n:, c:, r:, k: as core.reconcile.payment_reach gives them) with the patients
    they reach now: `p:` the patient of each invoice named or designated and a name's one bearer, `b:` two of a
    name's several bearers (core.reconcile.name_reach); column `named`: the row is a bearer's."""
    kind = reach["key"].str.slice(0, 2)
    value = reach["key"].str.slice(2)
    frames = [reach.assign(named=False)]
    asked = pd.DataFrame({"payment_id": reach["payment_id"], "kind": kind, "value": value})
    asked = asked[kind.isin(["n:", "c:"])]
    if len(asked):
        stage(conn, "reach_number", asked, {}, index="value")
        found = read_frame(conn, "SELECT s.payment_id, i.patient_id FROM reach_number s CROSS JOIN invoice i "
                                 "WHERE s.kind = 'n:' AND i.invoice_number = s.value UNION "
                                 "SELECT s.payment_id, i.patient_id FROM reach_number s CROSS JOIN invoice i "
                                 "WHERE s.kind = 'c:' AND i.compact_number = s.value")
        frames.append(pd.DataFrame({"payment_id": found["payment_id"], "key": "p:" + found["patient_id"],
                                    "named": False}))
    names = reach[kind == "k:"]
    if len(names):
        last, first = _name_parts(names["key"])
        keys = pd.DataFrame({"payment_id": names["payment_id"].to_numpy(), "last": last, "first": first})
        bearers = keys.merge(patients_named(conn, keys), on=["last", "first"])
        by_name = name_reach(bearers).assign(named=True)
        frames.append(by_name)
        # A name two patients bear queues the payment whoever else comes to bear it: only a bearer's new name
        # (`b:`) can change that, not a new bearer (`k:`).
        several = by_name.loc[by_name["key"].str.startswith("b:"), "payment_id"]
        frames[0] = frames[0][~((kind == "k:") & reach["payment_id"].isin(several)).to_numpy()]
    reach = pd.concat(frames, ignore_index=True)
    return reach.drop_duplicates(["payment_id", "key", "named"]).reset_index(drop=True)


def _name_parts(keys: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Name keys (`k:` last, a space, first) cut at their first space, by Arrow: what pandas'
    str.split(" ", n=1, expand=True) gives (a key without a space: all of it the last name, no first name), in a
    third of the time (1M first run: 0.3 s)."""
    text = pc.utf8_slice_codeunits(pa.array(keys, type=pa.string()), 2)
    cut = pc.extract_regex(text, r"(?s)^(?P<last>[^ ]*) (?P<first>.*)$")
    return (pc.coalesce(pc.struct_field(cut, "last"), text).to_numpy(zero_copy_only=False),
            pc.struct_field(cut, "first").to_numpy(zero_copy_only=False))


def entries_to_retry(conn: Connection, patients: Iterable[str]) -> list[str]:
    """The waiting entries (kinds RETRIED) a night must try again besides its new payments, which may settle the
    shares of `patients`: those whose reach meets the changes since the last run, or those patients, closed
    over the patients each entry found may settle. Takes the changes (db.changes.take)."""
    keys = take(conn) | {"p:" + p for p in patients} | _allocated_since_mark(conn)
    found = _letters_now_known(conn)
    frontier_keys, frontier_entries = set(keys), set(found)
    while frontier_keys or frontier_entries:
        reached = _entries_with(conn, frontier_keys) - found
        found |= reached
        frontier_entries |= reached
        frontier_keys = _patients_of(conn, frontier_entries) - keys
        keys |= frontier_keys
        frontier_entries = set()
    return _waiting(conn, found)


def _entries_with(conn: Connection, keys: set[str]) -> set[str]:
    """The entries whose reach holds one of `keys`: the keys sent as one JSON text, each sought in queue_reach's
    primary key (key, payment_id). Not a temporary table loaded row by row and indexed: the 1M history's night
    starts from 12,411 keys (what changed), 20-35 ms that way."""
    if not keys:
        return set()
    listed = ("ARRAY(SELECT json_array_elements_text(CAST(:keys AS json)))" if conn.dialect.name == "postgresql"
              else "(SELECT value FROM json_each(:keys))")
    where = f"q.key = ANY({listed})" if conn.dialect.name == "postgresql" else f"q.key IN {listed}"
    return {p for (p,) in conn.execute(text(f"SELECT DISTINCT q.payment_id FROM queue_reach q WHERE {where}"),
                                       {"keys": json.dumps(sorted(keys), ensure_ascii=False)})}


def _patients_of(conn: Connection, entries: set[str]) -> set[str]:
    """The `p:` keys of these entries: the patients whose shares they read and may settle."""
    if not entries:
        return set()
    _values(conn, "retry_entry", entries)
    return {k for (k,) in conn.execute(text("SELECT DISTINCT q.key FROM retry_entry e CROSS JOIN queue_reach q "
                                            "WHERE q.payment_id = e.value AND q.key >= 'p:' AND q.key < 'p;'"))}


def _allocated_since_mark(conn: Connection) -> set[str]:
    """The patients of the invoices allocated since the last run ended (by hand, by the agency's payments, by
    this run's set-based explicit pass)."""
    mark = int(meta(conn, MARK) or 0)
    return {"p:" + p for (p,) in conn.execute(text(
        "SELECT DISTINCT i.patient_id FROM allocation a JOIN invoice i ON i.invoice_number = a.invoice_number "
        "WHERE a.id > :mark"), {"mark": mark})}


def _letters_now_known(conn: Connection) -> set[str]:
    """Entries quoting an RF reference that was no letter's when they were tried and is one now."""
    return {p for (p,) in conn.execute(text(
        "SELECT q.payment_id FROM queue_reach q JOIN letter l ON l.rf_reference = substr(q.key, 3) "
        "WHERE q.key >= 'r:' AND q.key < 'r;'"))}


def _waiting(conn: Connection, entries: set[str]) -> list[str]:
    if not entries:
        return []
    _values(conn, "retry_entry", entries)
    return sorted(p for (p,) in conn.execute(text(
        "SELECT e.payment_id FROM retry_entry r CROSS JOIN payment_exception e WHERE e.payment_id = r.value "
        f"AND e.kind IN {RETRIED}")))


def replace(conn: Connection, tried: Iterable[str] | None, reach: pd.DataFrame) -> None:
    """The reach of the entries a run left waiting (`reach`: payment_id, key), in place of that of the payments
    it tried (`tried`; None: every entry was tried). Marks the reach complete and the allocations seen."""
    if tried is None:
        conn.execute(text("DELETE FROM queue_reach"))
    else:
        _values(conn, "retry_entry", tried)
        conn.execute(text("DELETE FROM queue_reach WHERE payment_id IN (SELECT value FROM retry_entry)"))
    bulk_insert(conn, "queue_reach", reach[["payment_id", "key"]].drop_duplicates())
    set_meta(conn, COMPLETE, "1")
    set_meta(conn, MARK, str(conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM allocation")).scalar_one()))


def forget(conn: Connection, payment_id: str) -> None:
    """The payment no longer waits (matched or held by hand)."""
    conn.execute(text("DELETE FROM queue_reach WHERE payment_id = :p"), {"p": payment_id})
