"""A patient's account as the front desk reads it: found by name, patient id or invoice number; every invoice
with its three shares and their state, payments, credits, letters, plans, disputes, holds, agency cases.

Read through the store's named reads of one patient: the shares' figures from `db.ledger.patient_invoice_sums` and
`patient_credits` (core.ledger.outstanding()'s and patient_money()'s arithmetic done in the database on that patient's
rows only, held equal to them by tests/app/test_patient_sums.py), `holds`, `list_disputes`,
`db.plans.patient_plan_summaries`. Never a care detail: nothing here reads `invoice_care`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Connection, Engine

from recouvrement.db.agency import handed_over_invoices
from recouvrement.db.disputes import DisputeRow, disputed_invoices, list_disputes
from recouvrement.db.holds import HoldRow, holds
from recouvrement.render.recipients import text_of
from recouvrement.core.names import normalise_name
from recouvrement.core.references import compact_invoice_number
from recouvrement.db.patients import (all_patient_cards, patient_agency_cases, patient_allocations, patient_card,
                                      patient_cards_by_invoice, patient_contact, patient_letters)
from recouvrement.db.ledger import patient_credits, patient_invoice_sums
from recouvrement.db.plans import PlanSummary, active_plan_invoices, patient_plan_summaries
from recouvrement.rules import Rules, channel_means

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
    status: str                    # the letter's own (for an e-mail, its outbox's)
    sms_status: str | None = None  # the SMS's outbox status when the letter went (also) by SMS

    @property
    def means(self) -> str:
        """The means the letter went by, in French: "courrier et SMS"."""
        try:
            means = channel_means(self.channel)
        except ValueError:
            return self.channel
        names = [name for mean, name in (("letter", "courrier"), ("email", "e-mail"), ("sms", "SMS")) if mean in means]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " et " + names[-1]

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


def _invoices(conn: Connection, patient_id: str, as_of: date) -> list[InvoiceView]:
    found = patient_invoice_sums(conn, patient_id, as_of)
    if not found:
        return []
    disputed = disputed_invoices(conn, as_of, patient_id=patient_id)
    in_plan = active_plan_invoices(conn, patient_id=patient_id)
    agency = handed_over_invoices(conn, as_of, patient_id=patient_id)
    views = []
    for invoice in found:
        shares = tuple(ShareView(s.payer_type, (text_of(invoice.amc_payer) or "Mutuelle") if s.payer_type == "amc"
                                 else PAYER_LABELS[s.payer_type], s.expected, s.paid, s.moved_out, s.moved_in, s.due,
                                 share_state(s.payer_type, s.expected, s.paid, s.moved_out, s.due))
                       for s in invoice.shares)
        number = invoice.invoice_number
        views.append(InvoiceView(number, invoice.issue_date, invoice.due_date, invoice.total_cents, shares,
                                 number in disputed, number in in_plan, number in agency))
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
        account.invoices = _invoices(conn, patient_id, as_of)
        account.payments = [PaymentView(*r) for r in patient_allocations(conn, patient_id, as_of)]
        account.credit_cents, account.pending_cents = patient_credits(conn, patient_id, as_of)
        account.letters = [LetterView(*r) for r in patient_letters(conn, patient_id)]
        account.disputes = list_disputes(conn, include_closed=True, patient_id=patient_id)
        account.holds = holds(conn, patient_id)
        account.agency_cases = patient_agency_cases(conn, patient_id)
        account.plans = patient_plan_summaries(conn, patient_id, as_of, rules)
    return account
