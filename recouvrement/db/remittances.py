"""Store reads for insurer remittances (NOEMIE returns): invoice numbers, patients' NIR hashes, insurer
allocations. Set-based: one query per file or run, whatever its size."""

from __future__ import annotations

import json

import pandas as pd
from sqlalchemy import Connection

from recouvrement.db.bulk import read_frame


def _in(conn: Connection, column: str, values: list[str]) -> tuple[str, dict]:
    """`column IN (the values)` with one parameter, on PostgreSQL and SQLite (JSON1, built in)."""
    if conn.dialect.name == "postgresql":
        return f"{column} = ANY(:values)", {"values": values}
    return f"{column} IN (SELECT value FROM json_each(:values))", {"values": json.dumps(values)}


def invoices_by_number(conn: Connection, numbers: list[str]) -> pd.DataFrame:
    """The stored invoices whose number or compact number (letters and digits, upper case) is one of
    `numbers` (given compact or not).

    Columns: asked (the number as given), invoice_number, patient_id, nir_hash (the patient's, or None),
    exact (True when the stored number is the one given).
    """
    asked = sorted({n for n in numbers if isinstance(n, str) and n})
    if not asked:
        return pd.DataFrame(columns=["asked", "invoice_number", "patient_id", "nir_hash", "exact"])
    compact = {n: "".join(c for c in n if c.isalnum()).upper() for n in asked}
    exact_sql, exact_params = _in(conn, "i.invoice_number", asked)
    compact_sql, compact_params = _in(conn, "i.compact_number", sorted(set(compact.values())))
    compact_params = {"compact": compact_params["values"]}
    compact_sql = compact_sql.replace(":values", ":compact")
    found = read_frame(conn, "SELECT i.invoice_number, i.compact_number, i.patient_id, p.nir_hash FROM invoice i "
                             "LEFT JOIN patient p ON p.patient_id = i.patient_id "
                             f"WHERE {exact_sql} OR {compact_sql}", {**exact_params, **compact_params})
    rows = []
    for number in asked:
        for hit in found.itertuples():
            if hit.invoice_number == number or hit.compact_number == compact[number]:
                rows.append((number, hit.invoice_number, hit.patient_id, hit.nir_hash, hit.invoice_number == number))
    return pd.DataFrame(rows, columns=["asked", "invoice_number", "patient_id", "nir_hash", "exact"])


def insurer_allocations(conn: Connection, invoice_numbers: list[str] | None = None) -> pd.DataFrame:
    """Net cents allocated to insurer shares (what a clawback may reverse): invoice_number, payer_type,
    amount_cents; only for `invoice_numbers` when given."""
    where, params = ("", {}) if invoice_numbers is None else _in(conn, "invoice_number", sorted(set(invoice_numbers)))
    frame = read_frame(conn, "SELECT invoice_number, payer_type, SUM(amount_cents) AS amount_cents FROM allocation "
                             "WHERE payer_type IN ('amo', 'amc')" + (f" AND {where}" if where else "")
                             + " GROUP BY invoice_number, payer_type", params)
    return frame.astype({"amount_cents": "int64"}) if len(frame) else \
        pd.DataFrame({"invoice_number": pd.Series(dtype="object"), "payer_type": pd.Series(dtype="object"),
                      "amount_cents": pd.Series(dtype="int64")})
