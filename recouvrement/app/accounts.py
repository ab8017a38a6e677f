"""Patient accounts as the reminder ladder sees them, read from the database in bulk on a given date."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
from sqlalchemy import Connection

from recouvrement.app.recipients import has_guarantor, is_minor, recipient_email
from recouvrement.db.bulk import read_frame as frame
from recouvrement.app.segmentation import patient_segments
from recouvrement.core.ladder import (PENDING_PAYMENT_REASON, QUEUED_PAYMENT_REASON, Account, LetterHistory,
                                      Listing, OpenItem)
from recouvrement.core.reconcile import payer_candidates
from recouvrement.db.eligibility import dispute_spans, handover_days, hold_spans, plan_facts, promise_spans
from recouvrement.rules import Rules

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
_PATIENTS = ("SELECT patient_id, coverage, birth_date, email, last_name, first_name, guarantor_last_name, "
             "guarantor_first_name, guarantor_address, guarantor_email FROM patient")
# Money in a patient's name not yet matched holds their letters; a known credit is deducted.
_CREDITS = ("SELECT e.patient_id, SUM(CASE WHEN e.kind = 'credit' THEN 0 ELSE e.remaining_cents END) AS pending, "
            "SUM(CASE WHEN e.kind = 'credit' THEN e.remaining_cents ELSE 0 END) AS credit "
            "FROM payment_exception e JOIN payment p ON p.payment_id = e.payment_id "
            "WHERE e.patient_id IS NOT NULL AND p.payment_date <= :d GROUP BY e.patient_id")
# Money in nobody's name yet (the payer's name fits several patients, or was unmatched by hand).
_QUEUED = ("SELECT e.payment_id, e.remaining_cents AS amount_cents, p.payer_name, p.payment_date "
           "FROM payment_exception e JOIN payment p ON p.payment_id = e.payment_id "
           "WHERE e.kind <> 'credit' AND e.patient_id IS NULL AND p.payer_type = 'patient' AND p.payment_date <= :d")
_LETTERS = "SELECT patient_id, level, as_of, letter_id FROM letter WHERE as_of <= :d"
# Every listing of an invoice in a letter, at the invoice's own level: each invoice's own ladder.
_LISTINGS = ("SELECT i.invoice_number, i.level, l.as_of FROM letter_item i JOIN letter l ON l.letter_id = i.letter_id "
             "WHERE l.as_of <= :d")


def _dates(values: pd.Series) -> pd.Series:
    """Dates as `date` objects whatever the driver returned (SQLite text, PostgreSQL dates)."""
    return pd.to_datetime(values.astype(str).str[:10]).dt.date


def _int(values: pd.Series) -> pd.Series:
    return values.fillna(0).astype("int64")


def open_items_frame(conn: Connection, as_of: date, rules: Rules) -> pd.DataFrame:
    """One row per invoice with patient money still due at the end of as_of, with what the ladder needs."""
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
    _shifted_due_dates(items, rules)
    return items.sort_values(["patient_id", "due_date", "invoice_number"])


def _shifted_due_dates(items: pd.DataFrame, rules: Rules) -> None:
    """A share moved onto the patient falls due `due_after_days` after the rejection, not before its invoice."""
    shifted = items["transfer_date"].notna()
    items["shifted_from"] = None
    items.loc[shifted & (items["moved_amo"] > 0), "shifted_from"] = "amo"
    items.loc[shifted & (items["moved_amc"] > 0), "shifted_from"] = "amc"
    items.loc[shifted & (items["moved_amo"] > 0) & (items["moved_amc"] > 0), "shifted_from"] = "amo amc"
    items["notified"] = ~shifted | (items["notified"].fillna(1).astype("int64") == 1)
    if shifted.any():
        delay = timedelta(days=rules.ladder.rejection_notice.due_after_days)
        moved_due = _dates(items.loc[shifted, "transfer_date"]).map(lambda d: d + delay)
        items.loc[shifted, "due_date"] = [max(a, b) for a, b in zip(items.loc[shifted, "due_date"], moved_due)]


def _last_letters(conn: Connection, as_of: date) -> dict[str, LetterHistory]:
    letters = frame(conn, _LETTERS, {"d": as_of})
    if letters.empty:
        return {}
    letters["as_of"] = _dates(letters["as_of"])
    latest = letters.sort_values(["as_of", "level", "letter_id"]).drop_duplicates("patient_id", keep="last")
    return {p: LetterHistory(int(level), day) for p, level, day in
            zip(latest["patient_id"], latest["level"], latest["as_of"])}


def queued_payment_candidates(conn: Connection, as_of: date, items: pd.DataFrame,
                              patients: pd.DataFrame) -> dict[str, list[str]]:
    """Patients a payment waiting in the queue in nobody's name may belong to, with its id: the payer's name
    is theirs and one of their open shares on as_of equals the amount (core.reconcile.payer_candidates).
    Each of them is held until a person decides: chasing one would chase a patient who may have paid."""
    queued = frame(conn, _QUEUED, {"d": as_of})
    if queued.empty or items.empty:
        return {}
    queued["payment_date"] = _dates(queued["payment_date"])
    queued["amount_cents"] = queued["amount_cents"].astype("int64")
    shares = pd.DataFrame({"patient_id": items["patient_id"], "amount_cents": items["amount"].astype("int64"),
                           "issue_date": items["issue_date"]})
    found = payer_candidates(queued, patients.reset_index(), shares)
    return {patient: list(group["payment_id"]) for patient, group in found.groupby("patient_id")}


def queued_payment_holds(conn: Connection, as_of: date, rules: Rules) -> dict[str, str]:
    """Every patient whose reminders wait for a payment in the queue on as_of, with the reason (French, no
    medical detail): a payment in their name, or one in nobody's name that may be theirs."""
    credits = frame(conn, _CREDITS, {"d": as_of})
    held = {p: PENDING_PAYMENT_REASON for p, pending in zip(credits["patient_id"], credits["pending"]) if pending > 0}
    items = open_items_frame(conn, as_of, rules)
    candidates = queued_payment_candidates(conn, as_of, items, frame(conn, _PATIENTS))
    return {**{p: QUEUED_PAYMENT_REASON for p in candidates}, **held}


def letter_listings(conn: Connection, as_of: date) -> dict[str, tuple[Listing, ...]]:
    """invoice number -> the letters that listed it by as_of (its own level, the letter's date), oldest first."""
    rows = frame(conn, _LISTINGS, {"d": as_of})
    if rows.empty:
        return {}
    rows["as_of"] = _dates(rows["as_of"])
    rows = rows.sort_values(["invoice_number", "as_of", "level"])
    listings: dict[str, tuple[Listing, ...]] = {}
    for number, level, day in zip(rows["invoice_number"], rows["level"], rows["as_of"]):
        listings[number] = listings.get(number, ()) + (Listing(int(level), day),)
    return listings


def load_accounts(conn: Connection, as_of: date, rules: Rules) -> list[Account]:
    """Every patient with patient money due on as_of, with all the facts the ladder decides on."""
    items = open_items_frame(conn, as_of, rules)
    if items.empty:
        return []
    # Dated facts: core.eligibility judges each on as_of (a hold that starts later stops nothing yet).
    disputes, plans, holds = dispute_spans(conn, as_of), plan_facts(conn, as_of), hold_spans(conn, as_of)
    promises = promise_spans(conn, as_of)
    handed, listings = handover_days(conn, as_of), letter_listings(conn, as_of)
    patients = frame(conn, _PATIENTS).set_index("patient_id")
    credits = frame(conn, _CREDITS, {"d": as_of}).set_index("patient_id")
    letters, segments = _last_letters(conn, as_of), patient_segments(conn, as_of, rules)
    maybe_theirs = queued_payment_candidates(conn, as_of, items, patients)
    accounts = []
    for patient_id, rows in items.groupby("patient_id", sort=True):
        open_items = tuple(
            OpenItem(number, issue, due, int(amount), int(awaited), shifted_from=shifted, notified=bool(notified),
                     history=listings.get(number, ()), disputes=disputes.get(number, ()),
                     handed_over_on=handed.get(number))
            for number, issue, due, amount, awaited, shifted, notified in zip(
                rows["invoice_number"], rows["issue_date"], rows["due_date"], rows["amount"], rows["awaited"],
                rows["shifted_from"], rows["notified"]))
        person = patients.loc[patient_id]
        money = credits.loc[patient_id] if patient_id in credits.index else None
        accounts.append(Account(
            patient_id=patient_id, coverage=str(person["coverage"] or "none"), items=open_items,
            holds=holds.get(patient_id, ()), plans=plans.get(patient_id, ()), has_email=bool(recipient_email(person)),
            is_minor=is_minor(person["birth_date"], as_of), has_guarantor=has_guarantor(person),
            pending_credit_cents=int(money["pending"]) if money is not None else 0,
            queued_payment_may_be_theirs=patient_id in maybe_theirs,
            segment=segments[patient_id].segment if patient_id in segments else "one_off",
            last_letter=letters.get(patient_id),
            credit_cents=int(money["credit"]) if money is not None else 0,
            promises=promises.get(patient_id, ())))
    return accounts


