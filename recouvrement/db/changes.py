"""What changed since the last reconcile that a waiting queue entry may depend on (table queue_change), kept by
the writes: new invoices, new or renamed patients, shares a run or a person changed. Keys as db.retries reads
them: `n:` invoice number, `c:` compact number, `k:` name key (last first), `p:` patient (their shares or
names), `b:` patient bearing a name (their names), `t:` patient whose shares the last run itself changed
(read as `p:`; alone, they do not make a run: a run with nothing new is skipped, as it always was). Nothing
is kept while no entry waits: there is nothing to retry then, and the first run after reads everything as
it is."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from sqlalchemy import Connection, text

from recouvrement.db.bulk import stage


def anything_waits(conn: Connection) -> bool:
    """Some queue entry has its reach recorded (db.retries): changes are worth keeping."""
    return conn.execute(text("SELECT 1 FROM queue_reach LIMIT 1")).first() is not None


def note(conn: Connection, keys: Iterable[str]) -> None:
    """Record changed keys (once each)."""
    if not anything_waits(conn):
        return
    values = pd.Series(sorted(set(keys)), dtype=object)
    if values.empty:
        return
    stage(conn, "noted_change", pd.DataFrame({"key": values}), {})
    conn.execute(text("INSERT INTO queue_change (key) SELECT n.key FROM noted_change n WHERE NOT EXISTS "
                      "(SELECT 1 FROM queue_change c WHERE c.key = n.key)"))


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
