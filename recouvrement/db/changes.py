"""What changed since the last reconcile that a waiting queue entry may depend on (table queue_change), kept by
the writes: new invoices, new or renamed patients, shares a run or a person changed. Keys as db.retries reads
them: `n:` invoice number, `c:` compact number, `k:` name key (last first), `p:` patient (their shares or
names), `b:` patient bearing a name (their names), `t:` patient whose shares the last run itself changed
(read as `p:`; alone, they do not make a run: a run with nothing new is skipped, as it always was). Nothing
is kept while no entry waits: there is nothing to retry then, and the first run after reads everything as
it is."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, text

from recouvrement.db.bulk import stage


def anything_waits(conn: Connection) -> bool:
    """Some queue entry has its reach recorded (db.retries): changes are worth keeping."""
    return conn.execute(text("SELECT 1 FROM queue_reach LIMIT 1")).first() is not None


def note(conn: Connection, keys: Iterable[str]) -> None:
    """Record changed keys (once each)."""
    if not anything_waits(conn):
        return
    values = _once_each_in_order(keys)
    if not values:
        return
    # The keys as one JSON text, those already recorded skipped by the primary key: no temporary table loaded
    # row by row, then joined (the 1M history's night: 10,806 keys of its invoices, 19-45 ms). No key holds a NUL
    # (the importers refuse a file with one), which SQLite's JSON would cut at.
    unnest = ("json_array_elements_text(CAST(:keys AS json))" if conn.dialect.name == "postgresql"
              else "value FROM json_each(:keys) WHERE true")
    conn.execute(text(f"INSERT INTO queue_change (key) SELECT {unnest} ON CONFLICT DO NOTHING"),
                 {"keys": json.dumps(values, ensure_ascii=False)})


def _once_each_in_order(keys: Iterable[str]) -> list[str]:
    """The keys once each, in order. A Series of Arrow text (the invoices' and patients' keys) by Arrow's kernels:
    its cells made Python strings one by one for a set took 20 ms for the 10,806 keys of the 1M history's night,
    beside the patients' thread that wants the GIL. The same order as Python's: Arrow compares the UTF-8 bytes,
    whose order is the code points' (sorted's, for str)."""
    if isinstance(keys, pd.Series) and isinstance(keys.dtype, pd.StringDtype) and keys.dtype.storage == "pyarrow" \
            and not keys.hasnans:
        text = keys.array.__arrow_array__()
        distinct = pc.unique(text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text)
        return distinct.take(pc.array_sort_indices(distinct)).to_pylist()
    return sorted(set(keys))


def note_invoices(conn: Connection, invoices: pd.DataFrame) -> None:
    """Invoices just written (invoice_number, compact_number, patient_id): an entry naming one, or one of their
    patient's, may now settle."""
    if len(invoices) and anything_waits(conn):
        note(conn, pd.concat(["n:" + invoices["invoice_number"], "c:" + invoices["compact_number"],
                              "p:" + invoices["patient_id"]]))


def note_patients(conn: Connection, name_keys: pd.DataFrame) -> None:
    """Patients just written or renamed, with their name keys as stored (last_key, first_key, patient_id) and
    those without any (patient_id alone, the keys NaN)."""
    if len(name_keys) and anything_waits(conn):
        ids = name_keys["patient_id"].drop_duplicates()
        keyed = name_keys.dropna(subset=["last_key", "first_key"])
        note(conn, pd.concat(["p:" + ids, "b:" + ids, "k:" + keyed["last_key"] + " " + keyed["first_key"]]))


def note_patients_of(conn: Connection, invoice_numbers: Iterable[str]) -> None:
    """The patients of these invoices, whose shares just changed."""
    numbers = sorted(set(invoice_numbers))
    if numbers and anything_waits(conn):
        stage(conn, "changed_invoice", pd.DataFrame({"value": pd.Series(numbers, dtype=object)}), {}, index="value")
        note(conn, ["p:" + patient for (patient,) in conn.execute(text(
            "SELECT DISTINCT i.patient_id FROM changed_invoice c CROSS JOIN invoice i "
            "WHERE i.invoice_number = c.value"))])


def changed_since_last_run(conn: Connection) -> bool:
    """Something other than the last run itself changed what a waiting entry may depend on."""
    return conn.execute(text("SELECT 1 FROM queue_change WHERE key < 't:' OR key >= 't;' LIMIT 1")).first() is not None


def take(conn: Connection) -> set[str]:
    """The keys recorded since the last run (`t:` read as `p:`), forgotten (the run that takes them retries
    what they reach)."""
    keys = {"p:" + key[2:] if key.startswith("t:") else key
            for (key,) in conn.execute(text("SELECT key FROM queue_change"))}
    if keys:
        conn.execute(text("DELETE FROM queue_change"))
    return keys
