"""The aged balance and the reconciliation exports (allocations, exceptions queue)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from recouvrement.app.exports import Amount, write_checked_csv
from recouvrement.audit import record_files
from recouvrement.db.bulk import read_frame as frame
from recouvrement.render.csvfile import PLAIN, Dialect

BUCKETS = ("0-30", "31-60", "61-90", ">90")


def share_states(engine: Engine, as_of: date, patient_id: str | None = None) -> pd.DataFrame:
    """Every share of every invoice (or of one patient's) at the end of `as_of`: what was expected, paid,
    moved to the patient by an insurer's rejection (out of the insurer's share, into the patient's) and what
    is still due, in cents, with the payer's name and the age bucket.

    Only what was known on that date counts: invoices issued, payments dated and transfers made by then.
    """
    params = {"d": as_of, "p": patient_id}
    only = " AND i.patient_id = :p" if patient_id is not None else ""
    with engine.connect() as conn:
        invoices = frame(conn, "SELECT invoice_number, patient_id, issue_date, due_date, amo_cents, amc_cents, "
                               "patient_cents, amc_payer FROM invoice i WHERE issue_date <= :d" + only, params)
        allocated = frame(conn, "SELECT a.invoice_number, a.payer_type, SUM(a.amount_cents) AS cents FROM allocation a "
                                "JOIN payment p ON p.payment_id = a.payment_id "
                                + ("JOIN invoice i ON i.invoice_number = a.invoice_number " if only else "")
                                + "WHERE p.payment_date <= :d" + only + " GROUP BY a.invoice_number, a.payer_type",
                          params)
        moved = frame(conn, "SELECT t.invoice_number, t.from_payer, SUM(t.amount_cents) AS cents FROM share_transfer t "
                            + ("JOIN invoice i ON i.invoice_number = t.invoice_number " if only else "")
                            + "WHERE t.transfer_date <= :d AND (t.reversed_on IS NULL OR t.reversed_on > :d)" + only
                            + " GROUP BY t.invoice_number, t.from_payer", params)
    shares = invoices.melt(id_vars=["invoice_number", "patient_id", "issue_date", "due_date", "amc_payer"],
                           value_vars=["amo_cents", "amc_cents", "patient_cents"], var_name="payer_type",
                           value_name="expected")
    shares["payer_type"] = shares["payer_type"].str.removesuffix("_cents")
    key = ["invoice_number", "payer_type"]
    shares = shares.merge(allocated.rename(columns={"cents": "paid"}), on=key, how="left")
    out_of = moved.rename(columns={"from_payer": "payer_type", "cents": "moved_out"})
    shares = shares.merge(out_of, on=key, how="left")
    into = moved.groupby("invoice_number", as_index=False)["cents"].sum().rename(columns={"cents": "moved_in"})
    into["payer_type"] = "patient"
    shares = shares.merge(into, on=key, how="left")
    for column in ("expected", "paid", "moved_out", "moved_in"):
        shares[column] = shares[column].fillna(0).astype("int64")
    shares["due_cents"] = shares["expected"] - shares["paid"] - shares["moved_out"] + shares["moved_in"]
    shares["payer"] = shares["payer_type"].map({"amo": "Assurance Maladie", "patient": "Patients"})
    shares.loc[shares["payer_type"] == "amc", "payer"] = shares["amc_payer"].fillna("Mutuelle")
    age = (pd.Timestamp(as_of) - pd.to_datetime(shares["issue_date"].astype(str))).dt.days
    shares["bucket"] = pd.cut(age, [-10**6, 30, 60, 90, 10**6], labels=BUCKETS).astype(str)
    return shares


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
        data = frame(conn, "SELECT payment_id, invoice_number, payer_type, amount_cents, rule FROM allocation "
                           "ORDER BY payment_id, invoice_number, id")
    rows = [[p, i, t, Amount(a), r] for p, i, t, a, r in data.itertuples(index=False, name=None)]
    count = write_checked_csv(path, ["payment_id", "invoice_number", "payer_type", "amount", "rule"], rows,
                              dialect=dialect)
    record_files(engine, "export", [path], export="allocations", rows=count)
    return count


def export_exceptions(engine: Engine, path: Path, dialect: Dialect = PLAIN) -> int:
    with engine.connect() as conn:
        data = frame(conn, "SELECT e.payment_id, p.payment_date, p.payer_type, p.payer_name, p.amount_cents, "
                           "e.remaining_cents, e.kind, e.reason, e.patient_id, p.reference FROM payment_exception e "
                           "JOIN payment p ON p.payment_id = e.payment_id ORDER BY p.payment_date, e.payment_id")
    rows = [[pid, str(day), ptype, name, Amount(amount), Amount(left), kind, reason, patient or "", ref]
            for pid, day, ptype, name, amount, left, kind, reason, patient, ref in data.itertuples(index=False, name=None)]
    header = ["payment_id", "payment_date", "payer_type", "payer_name", "amount", "remaining", "kind", "reason",
              "patient_id", "reference"]
    count = write_checked_csv(path, header, rows, free_text=("payer_name", "reference"), dialect=dialect)
    record_files(engine, "export", [path], export="exceptions", rows=count)
    return count
