"""Patient accounts as the reminder ladder sees them, read from the store in bulk on a given date.

The ladder's input: the dated snapshot (db.ledger.load_snapshot) judged by the core (core.ledger's
outstanding and patient money, core.recipients), with the dated facts the ladder decides on (disputes,
plans, holds, promises, hand-overs, the letters already sent, segments)."""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import Connection, text

from recouvrement.db.ledger import OPEN_ON, PatientRange, as_dates, open_snapshot
from recouvrement.db.segments import segments_of
from recouvrement.core.ledger import Snapshot, outstanding, patient_money, queued_payments
from recouvrement.core.ladder import (CALL_DONE, PENDING_PAYMENT_REASON, PRE_DUE_LEVEL, QUEUED_PAYMENT_REASON,
                                      Account, CallFacts, LetterHistory, Listing, OpenItem)
from recouvrement.core.contact import is_mobile_many
from recouvrement.core.eligibility import is_minor as minor_on
from recouvrement.core.recipients import consented, has_guarantor, is_minor, recipient_email, text_of
from recouvrement.core.reconcile import payer_candidates
from recouvrement.db.calls import calls_up_to, wrong_numbers
from recouvrement.db.letters import letters_up_to, listings_up_to
from recouvrement.db.eligibility import dispute_spans, handover_days, hold_spans, plan_facts, promise_spans
from recouvrement.rules import Rules


def open_items_frame(snapshot: Snapshot, rules: Rules) -> pd.DataFrame:
    """One row per invoice with patient money due at the end of the snapshot's day (core.ledger.outstanding's
    patient rows: due_cents, awaited_cents, due dates shifted per the rejection notice), by patient and due date."""
    return _patient_items(outstanding(snapshot, rejection_due_after_days=rules.ladder.rejection_notice.due_after_days))


def _patient_items(shares: pd.DataFrame) -> pd.DataFrame:
    items = shares[(shares["payer_type"] == "patient") & (shares["due_cents"] > 0)]
    return items.sort_values(["patient_id", "due_date", "invoice_number"])


def _last_letters(conn: Connection, as_of: date) -> dict[str, LetterHistory]:
    letters = letters_up_to(conn, as_of)
    if not letters.empty:
        letters = letters[letters["level"] != PRE_DUE_LEVEL]   # the pre-due notice does not delay the ladder
    if letters.empty:
        return {}
    letters["as_of"] = as_dates(letters["as_of"])
    latest = letters.sort_values(["as_of", "level", "letter_id"]).drop_duplicates("patient_id", keep="last")
    return {p: LetterHistory(int(level), day) for p, level, day in
            zip(latest["patient_id"], latest["level"], latest["as_of"])}


def queued_payment_candidates(snapshot: Snapshot, items: pd.DataFrame) -> dict[str, list[str]]:
    """Patients a payment waiting in the queue in nobody's name may belong to, with its id: the payer's name
    is theirs and one of their open shares on the snapshot's day equals the amount (core.reconcile.payer_candidates).
    Each of them is held until a person decides: chasing one would chase a patient who may have paid."""
    queued = queued_payments(snapshot)
    if queued.empty or items.empty:
        return {}
    shares = pd.DataFrame({"patient_id": items["patient_id"], "amount_cents": items["due_cents"].astype("int64"),
                           "issue_date": items["issue_date"]})
    found = payer_candidates(queued, snapshot.patients, shares)
    theirs: dict[str, list[str]] = {}
    for payment, patient in zip(found["payment_id"].tolist(), found["patient_id"].tolist()):
        theirs.setdefault(patient, []).append(payment)
    return theirs


def queued_payment_holds(conn: Connection, as_of: date, rules: Rules) -> dict[str, str]:
    """Every patient whose reminders wait for a payment in the queue on as_of, with the reason (French, no
    medical detail): a payment in their name, or one in nobody's name that may be theirs."""
    snapshot = open_snapshot(conn, as_of)
    money = patient_money(snapshot)
    held = {p: PENDING_PAYMENT_REASON for p in money.index[money["pending_cents"] > 0]}
    candidates = queued_payment_candidates(snapshot, open_items_frame(snapshot, rules))
    return {**{p: QUEUED_PAYMENT_REASON for p in candidates}, **held}


def letter_listings(conn: Connection, as_of: date) -> dict[str, tuple[Listing, ...]]:
    """invoice number -> the letters that listed it by as_of (its own level, the letter's date), oldest first."""
    rows = listings_up_to(conn, as_of)
    if rows.empty:
        return {}
    rows["as_of"] = as_dates(rows["as_of"])
    rows = rows.sort_values(["invoice_number", "as_of", "level"])
    listings: dict[str, tuple[Listing, ...]] = {}
    for number, level, day in zip(rows["invoice_number"], rows["level"], rows["as_of"]):
        listings[number] = listings.get(number, ()) + (Listing(int(level), day),)
    return listings


def call_history(conn: Connection, as_of: date) -> tuple[dict[str, tuple[CallFacts, ...]],
                                                          dict[str, tuple[Listing, ...]]]:
    """(patient -> their phone steps listed by as_of, invoice -> the done phone steps as listings at the call's
    level on the day of the outcome: a call reached counts as that level's letter for the ladder)."""
    calls: dict[str, tuple[CallFacts, ...]] = {}
    listings: dict[str, tuple[Listing, ...]] = {}
    for call in calls_up_to(conn, as_of):
        # An outcome recorded after as_of is not known yet on that day (a night replayed).
        status = call.status if call.closed_on is None or call.closed_on <= as_of else "open"
        calls[call.patient_id] = calls.get(call.patient_id, ()) + (
            CallFacts(call.level, call.listed_on, status, call.invoice_numbers),)
        if status in CALL_DONE and call.closed_on is not None:
            for number in call.invoice_numbers:
                listings[number] = listings.get(number, ()) + (Listing(call.level, call.closed_on),)
    return calls, listings


def load_accounts(conn: Connection, as_of: date, rules: Rules, patients: PatientRange | None = None) -> list[Account]:
    """Every patient with patient money due on as_of (of the range of ids `patients` only, when given), with all
    the facts the ladder decides on; read from the invoices open on that day only (db.ledger.open_snapshot, the
    allocations summed per share in the database)."""
    snapshot = open_snapshot(conn, as_of, summed=True, patients=patients)
    shares = outstanding(snapshot, rejection_due_after_days=rules.ladder.rejection_notice.due_after_days)
    items = _patient_items(shares)
    if items.empty:
        return []
    # Dated facts: core.eligibility judges each on as_of (a hold that starts later stops nothing yet).
    disputes, plans, holds = dispute_spans(conn, as_of), plan_facts(conn, as_of), hold_spans(conn, as_of)
    promises = promise_spans(conn, as_of)
    handed, listings = handover_days(conn, as_of), letter_listings(conn, as_of)
    money = patient_money(snapshot, table=shares)
    maybe_theirs = queued_payment_candidates(snapshot, items)
    calls, called = call_history(conn, as_of)
    wrong = wrong_numbers(conn)
    # Plain dicts and tuples, read once: pandas' per-row access costs more than the ladder's decisions.
    owing = set(items["patient_id"])
    # The owing patients' segments only (every one is a known patient: people[patient_id] below).
    letters, segments = _last_letters(conn, as_of), segments_of(conn, as_of, rules, owing)
    owners = snapshot.patients[snapshot.patients["patient_id"].isin(owing)]
    people = {p["patient_id"]: p for p in _records(owners, _PERSON_COLUMNS)}
    mobiles = _sms_reachable(people)
    # The index as a list first: patient_money's index holds Arrow strings, which Python iterates one scalar at a
    # time (1M, remind's parent part, 86,755 patients: 0.11-0.12 -> 0.03 s CPU, the same dict).
    credits = dict(zip(money.index.tolist(), zip(money["credit_cents"].tolist(), money["pending_cents"].tolist())))
    columns = ("patient_id", "invoice_number", "issue_date", "due_date", "due_cents", "awaited_cents", "shifted_from",
               "notified")
    by_patient: dict[str, list[tuple]] = {}
    for row in zip(*(items[c].tolist() for c in columns)):
        by_patient.setdefault(row[0], []).append(row[1:])
    accounts = []
    for patient_id in sorted(by_patient):
        open_items = tuple(
            OpenItem(number, issue, due, int(amount), int(awaited), shifted_from=shifted, notified=bool(notified),
                     history=_history(listings.get(number, ()), called.get(number)),
                     disputes=disputes.get(number, ()),
                     handed_over_on=handed.get(number))
            for number, issue, due, amount, awaited, shifted, notified in by_patient[patient_id])
        person = people[patient_id]
        credit_cents, pending_cents = credits[patient_id]
        accounts.append(Account(
            patient_id=patient_id, coverage=str(person["coverage"] or "none"), items=open_items,
            holds=holds.get(patient_id, ()), plans=plans.get(patient_id, ()), has_email=bool(recipient_email(person)) and consented(person, "email_consent"),
            has_mobile=patient_id in mobiles,
            is_minor=_minor(person["birth_date"], as_of), has_guarantor=has_guarantor(person),
            pending_credit_cents=int(pending_cents),
            queued_payment_may_be_theirs=patient_id in maybe_theirs,
            segment=segments[patient_id].segment,
            last_letter=letters.get(patient_id),
            credit_cents=int(credit_cents),
            promises=promises.get(patient_id, ()),
            phone_usable=_phone_usable(patient_id, person["phone"], wrong), calls=calls.get(patient_id, ())))
    return accounts




def _sms_reachable(people: dict[str, dict]) -> set[str]:
    """The patients core.recipients.recipient_mobile would text (their own consented mobile, no guarantor), the
    numbers typed all at once (core.contact.is_mobile_many) rather than parsed one by one."""
    asked = {patient: text_of(person["phone"]) for patient, person in people.items()
             if not has_guarantor(person) and consented(person, "sms_consent")}
    if not asked:
        return set()
    mobile = is_mobile_many(pd.Series(list(asked.values()), index=list(asked), dtype=object))
    return set(mobile.index[mobile.to_numpy()])


# What the ladder reads of a patient (core.recipients' mappings): read as plain dicts of these columns only.
_PERSON_COLUMNS = ("patient_id", "coverage", "birth_date", "email", "email_consent", "sms_consent", "phone",
                   "guarantor_last_name", "guarantor_address", "guarantor_email")


def _records(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[dict]:
    present = [c for c in columns if c in frame.columns]
    return [dict(zip(present, values)) for values in zip(*(frame[c].tolist() for c in present))]


def _history(listed: tuple[Listing, ...], called: tuple[Listing, ...] | None) -> tuple[Listing, ...]:
    """An invoice's letters and done calls by date then level (letter_listings' own order when no call)."""
    if not called:
        return listed
    return tuple(sorted(listed + called, key=lambda x: (x.sent_on, x.level)))


def _phone_usable(patient_id: str, phone, wrong: set[tuple[str, str]]) -> bool:
    """db.calls.usable_phones for one owing patient: a number, not found wrong on a call."""
    return isinstance(phone, str) and bool(phone.strip()) and (patient_id, phone) not in wrong


def _minor(born, as_of: date) -> bool:
    """core.recipients.is_minor, straight from the date the store read (it parses text first)."""
    return minor_on(born, as_of) if born is None or isinstance(born, date) else is_minor(born, as_of)


def patient_count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT COUNT(*) FROM patient")).scalar_one())


def patient_split(conn: Connection, as_of: date, fraction: float, at_least: int) -> str | None:
    """The patient id that `fraction` of the invoices open on as_of come before, by their patients' ids: where a
    part of the patients starts (app.remind reads the day's accounts in two processes). The work follows the open
    invoices, not the patients: at 1M, on 2026-11-23, the lower 52 % of the patient ids held 63 % of the open
    invoices and their part took 10.8 s of CPU, the upper part 7.7 s; split at 53 % of the open invoices, 9.7 and
    8.3 s. Found on a sample of the open invoices, one in `step` by rowid, sorted here (1M: 16k of 240k, 0.09 s
    CPU, where sorting them all in SQLite took 0.5 s); by the patients' ids alone when none is open. None with fewer
    than `at_least` patients."""
    count = patient_count(conn)
    if count < at_least:
        return None
    open_count = int(conn.execute(text(_OPEN_COUNT), {"d": as_of}).scalar_one())
    step = max(1, open_count // _SAMPLE)
    sample = sorted(conn.execute(text(_OPEN_SAMPLE), {"d": as_of, "step": step}).scalars())
    if sample:
        return sample[min(int(len(sample) * fraction), len(sample) - 1)]
    return conn.execute(text("SELECT patient_id FROM patient ORDER BY patient_id LIMIT 1 OFFSET :k"),
                        {"k": int(count * fraction)}).scalar_one()


# The invoices that may be open on :d (db.ledger.OPEN_ON; open_snapshot reads those issued by :d), from the index on
# settled_on alone, and a sample of their patients' ids, one invoice in :step by rowid. Neither asks for the issue
# date (a lookup of every open invoice: 0.18 s for the sample instead of 0.09) nor orders in SQL (SQLite then walks
# the index on patient_id, every invoice: 0.33 s).
_OPEN_COUNT = "SELECT COUNT(*) FROM invoice WHERE " + OPEN_ON
_OPEN_SAMPLE = "SELECT patient_id FROM invoice WHERE " + OPEN_ON + " AND rowid % :step = 0"
# About this many open invoices sampled: the split lands within a fraction of a percent of the work.
_SAMPLE = 16_000
