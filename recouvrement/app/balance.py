"""The aged balance and the reconciliation exports (allocations, exceptions queue)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from recouvrement.audit import record_files
from recouvrement.db import exports
from recouvrement.db.ledger import BUCKETS, aged_balance, outstanding_shares, share_states  # noqa: F401  (still importable here)
from recouvrement.render.csvfile import PLAIN, Amount, Dialect
from recouvrement.render.files import write_checked_csv

def write_balance_csv(table: pd.DataFrame, path: Path, dialect: Dialect = PLAIN) -> int:
    rows = [[group.split(":", 1)[0], group.split(":", 1)[1], *(Amount(v) for v in values)]
            for group, values in zip(table.index, table.to_numpy().tolist())]
    return write_checked_csv(path, ["group", "name", *BUCKETS, "total"], rows, dialect=dialect)


def export_allocations(engine: Engine, path: Path, dialect: Dialect = PLAIN) -> int:
    with engine.connect() as conn:
        data = exports.allocations(conn)
    rows = [[p, i, t, Amount(a), r] for p, i, t, a, r in data.itertuples(index=False, name=None)]
    count = write_checked_csv(path, ["payment_id", "invoice_number", "payer_type", "amount", "rule"], rows,
                              dialect=dialect)
    record_files(engine, "export", [path], export="allocations", rows=count)
    return count


def export_exceptions(engine: Engine, path: Path, dialect: Dialect = PLAIN) -> int:
    with engine.connect() as conn:
        data = exports.exceptions(conn)
    rows = [[pid, str(day), ptype, name, Amount(amount), Amount(left), kind, reason, patient or "", ref]
            for pid, day, ptype, name, amount, left, kind, reason, patient, ref in data.itertuples(index=False, name=None)]
    header = ["payment_id", "payment_date", "payer_type", "payer_name", "amount", "remaining", "kind", "reason",
              "patient_id", "reference"]
    count = write_checked_csv(path, header, rows, free_text=("payer_name", "reference"), dialect=dialect)
    record_files(engine, "export", [path], export="exceptions", rows=count)
    return count
