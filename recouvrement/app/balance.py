"""The aged balance and the reconciliation exports (allocations, exceptions queue)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from recouvrement.audit import record_files
from recouvrement.db import exports
from recouvrement.db.ledger import BUCKETS, share_states  # noqa: F401  (still importable here)
from recouvrement.render.csvfile import PLAIN, Amount, Dialect
from recouvrement.render.files import write_checked_csv

def outstanding_shares(engine: Engine, as_of: date) -> pd.DataFrame:
    """Every share with money still due at the end of `as_of`: invoice, patient, payer type, payer, age, cents."""
    shares = share_states(engine, as_of)
    shares = shares[shares["due_cents"] > 0].copy()
    return shares[["invoice_number", "patient_id", "payer_type", "payer", "issue_date", "due_date", "bucket",
                   "due_cents"]]


def aged_balance(engine: Engine, as_of: date) -> pd.DataFrame:
    """Rows: by payer type, then by mutuelle; columns: the age buckets (days since issue) and the total, in cents."""
    shares = outstanding_shares(engine, as_of)
    by_type = shares.pivot_table(index="payer_type", columns="bucket", values="due_cents", aggfunc="sum",
                                 fill_value=0, observed=False)
    amc = shares[shares["payer_type"] == "amc"]
    by_payer = amc.pivot_table(index="payer", columns="bucket", values="due_cents", aggfunc="sum", fill_value=0,
                               observed=False)
    by_type.index = [f"type:{i}" for i in by_type.index]
    by_payer.index = [f"mutuelle:{i}" for i in by_payer.index]
    table = pd.concat([by_type, by_payer]).reindex(columns=list(BUCKETS), fill_value=0).fillna(0).astype("int64")
    table["total"] = table.sum(axis=1)
    return table


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
