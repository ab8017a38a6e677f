"""The paths that computed "what is still owed" before core.ledger, kept here (and only here) as the
independent recomputation tests/test_ledger_equality.py holds the one outstanding() equal to. Their SQL and
arithmetic are those of app/accounts.py, app/balance.py, app/reconcile.py and app/plans.py as they were
before issue #12 (commit 474633e): do not "fix" them, they are the reference."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import text

from recouvrement.db.bulk import read_frame as frame

SHARE_OF_PAYER = {"amo": 0, "amc": 1, "patient": 2, "agency": 2}

_INVOICES = ("SELECT invoice_number, patient_id, issue_date, due_date, amo_cents, amc_cents, patient_cents "
             "FROM invoice WHERE issue_date <= :d")
_PAID = ("SELECT a.invoice_number, "
         "SUM(CASE WHEN a.payer_type = 'amo' THEN a.amount_cents ELSE 0 END) AS paid_amo, "
         "SUM(CASE WHEN a.payer_type = 'amc' THEN a.amount_cents ELSE 0 END) AS paid_amc, "
         "SUM(CASE WHEN a.payer_type = 'patient' THEN a.amount_cents ELSE 0 END) AS paid_patient "
         "FROM allocation a JOIN payment p ON p.payment_id = a.payment_id WHERE p.payment_date <= :d "
         "GROUP BY a.invoice_number")
_MOVED = ("SELECT invoice_number, "
          "SUM(CASE WHEN from_payer = 'amo' THEN amount_cents ELSE 0 END) AS moved_amo, "
          "SUM(CASE WHEN from_payer = 'amc' THEN amount_cents ELSE 0 END) AS moved_amc, "
          "MAX(transfer_date) AS transfer_date, MIN(CASE WHEN notified THEN 1 ELSE 0 END) AS notified "
          "FROM share_transfer WHERE transfer_date <= :d AND (reversed_on IS NULL OR reversed_on > :d) "
          "GROUP BY invoice_number")
CREDITS = ("SELECT e.patient_id, SUM(CASE WHEN e.kind = 'credit' THEN 0 ELSE e.remaining_cents END) AS pending, "
           "SUM(CASE WHEN e.kind = 'credit' THEN e.remaining_cents ELSE 0 END) AS credit "
           "FROM payment_exception e JOIN payment p ON p.payment_id = e.payment_id "
           "WHERE e.patient_id IS NOT NULL AND p.payment_date <= :d GROUP BY e.patient_id")


def _dates(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values.astype(str).str[:10]).dt.date


def _int(values: pd.Series) -> pd.Series:
    return values.fillna(0).astype("int64")


def open_items_frame(conn, as_of: date, due_after_days: int) -> pd.DataFrame:
    """app/accounts.py: one row per invoice with patient money due at the end of as_of."""
    params = {"d": as_of}
    invoices = frame(conn, _INVOICES, params)
    items = invoices.merge(frame(conn, _PAID, params), on="invoice_number", how="left")
    items = items.merge(frame(conn, _MOVED, params), on="invoice_number", how="left")
    for column in ("amo_cents", "amc_cents", "patient_cents", "paid_amo", "paid_amc", "paid_patient",
                   "moved_amo", "moved_amc"):
        items[column] = _int(items[column])
    items["amount"] = items["patient_cents"] - items["paid_patient"] + items["moved_amo"] + items["moved_amc"]
    items = items[items["amount"] > 0].copy()
    awaited_amo = (items["amo_cents"] - items["paid_amo"] - items["moved_amo"]).clip(lower=0)
    awaited_amc = (items["amc_cents"] - items["paid_amc"] - items["moved_amc"]).clip(lower=0)
    items["awaited"] = awaited_amo + awaited_amc
    items["issue_date"], items["due_date"] = _dates(items["issue_date"]), _dates(items["due_date"])
    shifted = items["transfer_date"].notna()
    items["shifted_from"] = None
    items.loc[shifted & (items["moved_amo"] > 0), "shifted_from"] = "amo"
    items.loc[shifted & (items["moved_amc"] > 0), "shifted_from"] = "amc"
    items.loc[shifted & (items["moved_amo"] > 0) & (items["moved_amc"] > 0), "shifted_from"] = "amo amc"
    items["notified"] = ~shifted | (items["notified"].fillna(1).astype("int64") == 1)
    if shifted.any():
        delay = timedelta(days=due_after_days)
        moved_due = _dates(items.loc[shifted, "transfer_date"]).map(lambda d: d + delay)
        items.loc[shifted, "due_date"] = [max(a, b) for a, b in zip(items.loc[shifted, "due_date"], moved_due)]
    return items


def share_states(conn, as_of: date) -> pd.DataFrame:
    """app/balance.py: every share of every invoice at the end of as_of."""
    params = {"d": as_of}
    invoices = frame(conn, "SELECT invoice_number, patient_id, issue_date, due_date, amo_cents, amc_cents, "
                           "patient_cents, amc_payer FROM invoice i WHERE issue_date <= :d", params)
    allocated = frame(conn, "SELECT a.invoice_number, a.payer_type, SUM(a.amount_cents) AS cents FROM allocation a "
                            "JOIN payment p ON p.payment_id = a.payment_id WHERE p.payment_date <= :d "
                            "GROUP BY a.invoice_number, a.payer_type", params)
    moved = frame(conn, "SELECT t.invoice_number, t.from_payer, SUM(t.amount_cents) AS cents FROM share_transfer t "
                        "WHERE t.transfer_date <= :d AND (t.reversed_on IS NULL OR t.reversed_on > :d) "
                        "GROUP BY t.invoice_number, t.from_payer", params)
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
    return shares


def ledger_outstanding(conn) -> tuple[list[str], np.ndarray]:
    """app/reconcile.py load_ledger: (invoice numbers in order, what is due on each share, everything counted)."""
    invoices = frame(conn, "SELECT invoice_number, amo_cents, amc_cents, patient_cents FROM invoice "
                           "ORDER BY invoice_number")
    outstanding = invoices[["amo_cents", "amc_cents", "patient_cents"]].to_numpy(dtype="int64").copy()
    index = pd.Index(invoices["invoice_number"])
    allocated = frame(conn, "SELECT invoice_number, payer_type, SUM(amount_cents) AS cents FROM allocation "
                            "GROUP BY invoice_number, payer_type")
    _subtract(outstanding, index, allocated["invoice_number"], allocated["payer_type"], allocated["cents"])
    transfers = frame(conn, "SELECT id AS transfer_id, invoice_number, from_payer, amount_cents FROM share_transfer "
                            "WHERE reversed_on IS NULL")
    _subtract(outstanding, index, transfers["invoice_number"], transfers["from_payer"], transfers["amount_cents"])
    _subtract(outstanding, index, transfers["invoice_number"], pd.Series("patient", index=transfers.index),
              -transfers["amount_cents"])
    return list(invoices["invoice_number"]), outstanding


def _subtract(outstanding: np.ndarray, index: pd.Index, numbers, payer_types, cents) -> None:
    if len(numbers) == 0:
        return
    pos = index.get_indexer(numbers)
    col = payer_types.map(SHARE_OF_PAYER).to_numpy()
    known = pos >= 0
    np.subtract.at(outstanding, (pos[known], col[known]), cents.to_numpy(dtype="int64")[known])


def share_outstanding(conn, invoice_number: str, share: str) -> int:
    """app/reconcile.py share_outstanding: one share, now."""
    invoice = conn.execute(text(f"SELECT {share}_cents FROM invoice WHERE invoice_number = :i"),
                           {"i": invoice_number}).scalar_one()
    allocated = conn.execute(text("SELECT COALESCE(SUM(amount_cents), 0) FROM allocation WHERE invoice_number = :i "
                                  "AND payer_type = :s"), {"i": invoice_number, "s": share}).scalar_one()
    moved = conn.execute(text("SELECT COALESCE(SUM(amount_cents), 0) FROM share_transfer WHERE invoice_number = :i "
                              "AND reversed_on IS NULL AND (from_payer = :s OR :s = 'patient')"),
                         {"i": invoice_number, "s": share}).scalar_one()
    return int(invoice) - int(allocated) + (int(moved) if share == "patient" else -int(moved))


def all_time_credit_cents(conn, patient_id: str) -> int:
    """app/plans.py patient_credit_cents (and app/patient_account.py): every credit, whatever its date."""
    return int(conn.execute(text("SELECT COALESCE(SUM(remaining_cents), 0) FROM payment_exception "
                                 "WHERE kind = 'credit' AND patient_id = :p"), {"p": patient_id}).scalar_one())
