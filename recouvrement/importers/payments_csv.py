"""Payments CSV: insurer remittances (AMO, AMC) and any payment list in our documented columns.

A rejection line (status `rejected`) usually carries 0.00: the insurer paid nothing and refuses its
share. It is read as a rejection like any other, so reconciliation moves that share to the patient.
A clawback line (status `clawback`, a negative amount) is an insurer taking back what it paid on its
share of the invoice (as a NOEMIE return's `retenue`): reconciliation reverses its allocations there.
"""

from __future__ import annotations

from pathlib import Path


from recouvrement.importers.base import AMOUNT_TOO_LARGE, DATE_OUT_OF_RANGE, PAYER_TYPES, PAYMENT_COLUMNS, Parsed
from recouvrement.importers.tabular import (RejectCollector, dates_out_of_range, parse_dates, read_table,
                                            repeated_cells)
from recouvrement.money import MAX_LINE_CENTS, parse_amounts

KIND = "payments"
REQUIRED = ["payment_id", "payment_date", "payer_type", "payer_name", "amount", "reference"]
OPTIONAL = ["invoice_number", "status", "reject_reason", "currency"]


def sniff(head: bytes, name: str) -> bool:
    first = head.decode("utf-8", errors="replace").lstrip("\ufeff").splitlines()[:1]
    return bool(first) and "payment_id" in first[0].lower() and "payer_type" in first[0].lower()


def read(path: Path, **_options) -> Parsed:
    raw, warnings = read_table(path, REQUIRED, OPTIONAL)
    rejects = RejectCollector(path.name, raw["source_line"])
    out = raw[["payment_id", "payer_name", "reference", "source_line"]].copy()
    rejects.add(raw["payment_id"] == "", "payment_id", "vide")
    repeated = repeated_cells(raw["payment_id"])
    # Each reason naming a cell is worded for the refused rows only (RejectCollector.add takes it so): a million rows.
    rejects.add(repeated, "payment_id", "figure deux fois dans ce fichier : " + raw["payment_id"][repeated])
    out["payment_date"], bad = parse_dates(raw["payment_date"])
    rejects.add(bad, "payment_date", "pas une date (attendu jj/mm/aaaa ou aaaa-mm-jj) : " + raw["payment_date"][bad])
    rejects.add(dates_out_of_range(out["payment_date"]), "payment_date", DATE_OUT_OF_RANGE)
    payer_type = raw["payer_type"].str.lower()
    bad = ~payer_type.isin(PAYER_TYPES)
    rejects.add(bad, "payer_type", "doit valoir amo, amc, patient ou agency : " + raw["payer_type"][bad])
    out["payer_type"] = payer_type
    currency = raw["currency"].str.upper()
    bad = ~currency.isin(["", "EUR", "€"])
    rejects.add(bad, "currency", "devise " + raw["currency"][bad] + " refusée : les montants sont en euros")
    status = raw["status"].str.lower().replace({"": "paid"})
    out["amount_cents"], bad = parse_amounts(raw["amount"])
    rejects.add(bad, "amount", "pas un montant en euros : " + raw["amount"][bad].str.slice(0, 40))
    rejects.add(out["amount_cents"] > MAX_LINE_CENTS, "amount", AMOUNT_TOO_LARGE)
    nothing_paid = (out["amount_cents"] == 0) & (status == "rejected")
    clawback = status == "clawback"
    rejects.add(clawback & (out["amount_cents"] >= 0), "amount", "une reprise (clawback) retire de l'argent : le montant doit être négatif")
    rejects.add((out["amount_cents"] <= 0) & ~nothing_paid & ~clawback, "amount", "doit être positif")
    rejects.add(out["amount_cents"] < -MAX_LINE_CENTS, "amount", AMOUNT_TOO_LARGE)
    bad = ~status.isin(["paid", "rejected", "clawback"])
    rejects.add(bad, "status", "doit valoir paid, rejected ou clawback : " + raw["status"][bad])
    rejects.add(status.isin(["rejected", "clawback"]) & ~payer_type.isin(["amo", "amc"]), "status",
                "seul un assureur (amo, amc) peut rejeter sa part ou reprendre ce qu'il a payé")
    rejects.add(status.isin(["rejected", "clawback"]) & (raw["invoice_number"] == ""), "invoice_number",
                "un rejet ou une reprise doit indiquer la facture")
    out["status"] = status
    out["invoice_number"] = raw["invoice_number"].where(raw["invoice_number"] != "", None)
    out["reject_reason"] = raw["reject_reason"].where(raw["reject_reason"] != "", None)
    frame = out[PAYMENT_COLUMNS] if not rejects.bad.any() else out.loc[~rejects.bad, PAYMENT_COLUMNS]
    frame = frame.reset_index(drop=True)
    frame["amount_cents"] = frame["amount_cents"].astype("int64")
    return Parsed(KIND, frame, sorted(rejects.rejects), warnings, rows_read=len(raw))
