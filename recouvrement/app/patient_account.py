"""A patient's account as the front desk reads it: found by name, patient id or invoice number; every invoice
with its three shares and their state, payments, credits, letters, plans, disputes, holds, agency cases.

Read through the same functions as letters, plans and the balance (`core.ledger`, `holds`, `list_disputes`,
`db.plans.patient_plan_summaries`): no figure computed twice. Never a care detail: nothing here reads `invoice_care`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date

import pandas as pd
from sqlalchemy import Connection, Engine

from recouvrement.db.disputes import DisputeRow, list_disputes
from recouvrement.db.holds import HoldRow, holds
from recouvrement.render.recipients import text_of
from recouvrement.core.ledger import outstanding, patient_money
from recouvrement.core.names import normalise_name
from recouvrement.core.references import compact_invoice_number
from recouvrement.db.patients import (all_patient_cards, invoice_totals, patient_agency_cases, patient_allocations,
                                      patient_card, patient_cards_by_invoice, patient_contact, patient_letters)
from recouvrement.db.ledger import load_snapshot
from recouvrement.db.plans import PlanSummary, patient_plan_summaries
from recouvrement.db.values import as_date
from recouvrement.rules import Rules

SEARCH_LIMIT = 20
TOKEN_SIMILARITY = 0.75     # a misspelt word still finds its name ("Andre Martn" → MARTIN ANDRÉ)
PAYER_LABELS = {"amo": "Assurance Maladie (CPAM)", "amc": "Mutuelle", "patient": "Patient", "agency": "Agence"}


@dataclass(frozen=True)
class Found:
    patient_id: str
    last_name: str
    first_name: str
    city: str
    why: str                 # "identifiant", "facture F-…", "nom"


def _name_score(query_tokens: list[str], name_tokens: list[str]) -> float:
    """Mean over the query's words of the best similarity with a word of the name (order ignored)."""
    if not query_tokens or not name_tokens:
        return 0.0
    best = []
    for word in query_tokens:
        score = max((1.0 if token.startswith(word) and len(word) >= 2 else
                     difflib.SequenceMatcher(None, word, token).ratio()) for token in name_tokens)
        best.append(score)
    return min(best) * 0.5 + sum(best) / len(best) * 0.5


def search_patients(conn: Connection, query: str, limit: int = SEARCH_LIMIT) -> list[Found]:
    """Patients matching a patient id, an invoice number (any punctuation or case) or a name (accents, order
    of the names and one or two typos ignored), best first."""
    query = (query or "").strip()[:100]
    if not query:
        return []
    found: dict[str, Found] = {}
    row = patient_card(conn, query)
    if row:
        found[row[0]] = Found(row[0], row[1], row[2], row[3], why="identifiant patient")
    compact = compact_invoice_number(query)
    if compact:
        for row in patient_cards_by_invoice(conn, compact):
            found.setdefault(row[0], Found(row[0], row[1], row[2], row[3], why=f"facture {row[4]}"))
    words = normalise_name(query).split()
    if words and not found:
        scored = []
        for patient_id, last, first, city in all_patient_cards(conn):
            score = _name_score(words, normalise_name(f"{last} {first}").split())
            if score >= TOKEN_SIMILARITY:
                scored.append((-score, last, first, patient_id, city))
        for _, last, first, patient_id, city in sorted(scored)[:limit]:
            found[patient_id] = Found(patient_id, last, first, city, why="nom")
    return list(found.values())[:limit]


@dataclass(frozen=True)
class ShareView:
    payer_type: str          # amo | amc | patient
    payer: str               # "Assurance Maladie (CPAM)", the mutuelle's name, "Patient"
    expected_cents: int
    paid_cents: int
    moved_out_cents: int     # an insurer's rejection moved this to the patient
    moved_in_cents: int      # the patient's share grew by the insurers' rejections
    due_cents: int
    state: str               # in French, for the desk


@dataclass(frozen=True)
class InvoiceView:
    invoice_number: str
    issue_date: date
    due_date: date
    total_cents: int
    shares: tuple[ShareView, ...]
    disputed: bool
    in_plan: bool
    with_agency: bool

    @property
    def patient_due_cents(self) -> int:
        return sum(s.due_cents for s in self.shares if s.payer_type == "patient")


@dataclass(frozen=True)
class PaymentView:
    payment_id: str
    payment_date: date
    payer_type: str
    invoice_number: str
    amount_cents: int
    rule: str


@dataclass(frozen=True)
class LetterView:
    letter_id: str
    as_of: date
    kind: str
    level: int
    channel: str
    amount_cents: int
    status: str


@dataclass
class PatientAccount:
    patient_id: str
    last_name: str
    first_name: str
    address: str
    postal_code: str
    city: str
    phone: str
    email: str
    guarantor: str
    invoices: list[InvoiceView] = field(default_factory=list)
    payments: list[PaymentView] = field(default_factory=list)
    credit_cents: int = 0
    pending_cents: int = 0          # money in the patient's name waiting in the queue
    letters: list[LetterView] = field(default_factory=list)
    plans: list[PlanSummary] = field(default_factory=list)
    disputes: list[DisputeRow] = field(default_factory=list)
    holds: list[HoldRow] = field(default_factory=list)
    agency_cases: list[dict] = field(default_factory=list)

    @property
    def patient_due_cents(self) -> int:
        return sum(i.patient_due_cents for i in self.invoices)

    @property
    def net_due_cents(self) -> int:
        """What the patient owes net of credits: never more than the open patient shares."""
        return max(self.patient_due_cents - self.credit_cents, 0)

    @property
    def on_hold(self) -> bool:
        return any(h.released_on is None for h in self.holds)


def share_state(payer_type: str, expected: int, paid: int, moved_out: int, due: int) -> str:
    """The state of one share in the desk's words."""
    if expected == 0 and due == 0:
        return "sans objet"
    if moved_out > 0 and due <= 0:
        return "rejetée, reportée sur le patient"
    if due <= 0:
        return "payée" if due == 0 else "payée (trop-perçu)"
    partly = " (en partie payée)" if paid > 0 else ""
    if payer_type == "amo":
        return "attendue de la CPAM" + partly
    if payer_type == "amc":
        return "attendue de la mutuelle" + partly
    return "à régler par le patient" + partly


def _invoices(conn: Connection, shares: pd.DataFrame, patient_id: str, as_of: date) -> list[InvoiceView]:
    if shares.empty:
        return []
    from recouvrement.db.agency import handed_over_invoices
    from recouvrement.db.disputes import disputed_invoices
    from recouvrement.db.plans import active_plan_invoices
    disputed, in_plan = disputed_invoices(conn, as_of), active_plan_invoices(conn)
    agency = handed_over_invoices(conn, as_of)
    totals = invoice_totals(conn, patient_id)
    order = {"amo": 0, "amc": 1, "patient": 2}
    # Plain rows, read once: pandas' per-group and per-row access costs more than the page's whole SQL.
    columns = ("invoice_number", "payer_type", "amc_payer", "expected", "paid", "moved_out", "moved_in", "due_cents",
               "issue_date", "due_date")
    grouped: dict[str, list[tuple]] = {}
    for row in zip(*(shares[c].tolist() for c in columns)):
        grouped.setdefault(row[0], []).append(row)
    views = []
    for number, rows in grouped.items():
        share_views = tuple(sorted((
            ShareView(payer_type, (text_of(amc_payer) or "Mutuelle") if payer_type == "amc"
                      else PAYER_LABELS[payer_type], int(expected), int(paid), int(moved_out), int(moved_in), int(due),
                      share_state(payer_type, int(expected), int(paid), int(moved_out), int(due)))
            for _, payer_type, amc_payer, expected, paid, moved_out, moved_in, due, _, _ in rows),
            key=lambda s: order[s.payer_type]))
        issue_date, due_date = rows[0][8], rows[0][9]
        views.append(InvoiceView(number, as_date(issue_date), as_date(due_date), int(totals.get(number, 0)),
                                 share_views, number in disputed, number in in_plan, number in agency))
    return sorted(views, key=lambda v: (v.issue_date, v.invoice_number), reverse=True)


def patient_account(engine: Engine, patient_id: str, as_of: date, rules: Rules) -> PatientAccount | None:
    """Everything the desk may see of one patient's account on `as_of`; None for an unknown patient."""
    with engine.connect() as conn:
        person = patient_contact(conn, patient_id)
        if person is None:
            return None
        guarantor = " ".join(text_of(person[k]) for k in ("guarantor_first_name", "guarantor_last_name")).strip()
        account = PatientAccount(person["patient_id"], text_of(person["last_name"]), text_of(person["first_name"]),
                                 text_of(person["address"]), text_of(person["postal_code"]), text_of(person["city"]),
                                 text_of(person["phone"]), text_of(person["email"]), guarantor)
        snapshot = load_snapshot(conn, as_of, [patient_id])
        shares = outstanding(snapshot, rejection_due_after_days=rules.ladder.rejection_notice.due_after_days)
        account.invoices = _invoices(conn, shares, patient_id, as_of)
        account.payments = [PaymentView(*r) for r in patient_allocations(conn, patient_id, as_of)]
        money = patient_money(snapshot, table=shares)
        if patient_id in money.index:
            account.credit_cents = int(money.loc[patient_id, "credit_cents"])
            account.pending_cents = int(money.loc[patient_id, "pending_cents"])
        account.letters = [LetterView(*r) for r in patient_letters(conn, patient_id)]
        account.disputes = [d for d in list_disputes(conn, include_closed=True) if d.patient_id == patient_id]
        account.holds = holds(conn, patient_id)
        account.agency_cases = patient_agency_cases(conn, patient_id)
        account.plans = patient_plan_summaries(conn, patient_id, as_of, rules)
    return account
