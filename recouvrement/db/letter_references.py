"""The store's side of letter references: which invoices a letter's RF reference designates."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd
from sqlalchemy import Connection

from recouvrement.db.bulk import read_frame, stage

LETTER_INVOICE_COLUMNS = ["reference", "invoice_number"]   # core.reconcile.LETTER_COLUMNS
_CHUNK = 500                                                # bound parameters per query


def letter_invoices(conn: Connection, references: Sequence[str]) -> pd.DataFrame:
    """(reference, invoice_number) for each invoice listed by the letters of these RF references (compact,
    upper case); references that are no letter's bring no row. Only the references asked are read: the
    letters' table grows every night, a bank statement quotes a few hundred references."""
    if len(references) > _CHUNK and not _any_letter_reference(conn):
        return pd.DataFrame(columns=LETTER_INVOICE_COLUMNS)     # a first run: no letter yet, nothing to sort or stage
    wanted = sorted(set(references))
    if conn.dialect.name == "postgresql" and wanted:
        # One statement, the references as one JSON text the server unnests: a first reconcile at 1M asks for
        # 236k references, 472 statements of 500 parameters each compiled and bound in 1.9 s of wall time.
        return read_frame(conn, "SELECT l.rf_reference AS reference, li.invoice_number FROM letter l "
                                "JOIN letter_item li ON li.letter_id = l.letter_id WHERE l.rf_reference = "
                                "ANY(ARRAY(SELECT json_array_elements_text(CAST(:references AS json)))) "
                                "ORDER BY l.rf_reference, li.invoice_number", {"references": json.dumps(wanted)})
    if len(wanted) > _CHUNK:
        # SQLite, many at once (a first run quotes a hundred thousand): staged and joined in one statement, not a
        # statement per 500 (0.5 s at 1M invoices, even with no letter at all).
        stage(conn, "wanted_reference", pd.DataFrame({"value": pd.Series(wanted, dtype=object)}), {}, index="value")
        return read_frame(conn, "SELECT l.rf_reference AS reference, li.invoice_number FROM wanted_reference w "
                                "CROSS JOIN letter l JOIN letter_item li ON li.letter_id = l.letter_id "
                                "WHERE l.rf_reference = w.value ORDER BY l.rf_reference, li.invoice_number")
    frames = [pd.DataFrame(columns=LETTER_INVOICE_COLUMNS)]
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        names = ", ".join(f":r{i}" for i in range(len(chunk)))
        frames.append(read_frame(conn, "SELECT l.rf_reference AS reference, li.invoice_number FROM letter l "
                                       "JOIN letter_item li ON li.letter_id = l.letter_id "
                                       f"WHERE l.rf_reference IN ({names}) ORDER BY l.rf_reference, li.invoice_number",
                                 {f"r{i}": r for i, r in enumerate(chunk)}))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _any_letter_reference(conn: Connection) -> bool:
    return conn.exec_driver_sql("SELECT 1 FROM letter WHERE rf_reference IS NOT NULL LIMIT 1").first() is not None
