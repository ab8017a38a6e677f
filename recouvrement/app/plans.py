"""Instalment plan use cases: propose (with its letter), accept, cancel, show, and the nightly refresh.

Decisions where the brief was silent, documented once here:

* The debt a plan covers is the patient's open patient shares on `as_of`, less invoices under an open
  dispute, time-barred ones, invoices handed to the agency or already in an active plan, less the
  patient's known credits (the letter shows them deducted). Plans carry no fees: the instalments
  add up to that debt to the cent (core.plans.propose_plan).
* Payments that count toward a plan are the patient's own payments (payer_type 'patient')
  allocated to the plan's invoices and dated AFTER the proposal day: the debt was measured on the
  proposal day, payments up to then are already deducted, and a patient who pays the first
  instalment before the office records the acceptance must not look late.
* The proposal letter is written to disk and recorded in the audit trail (file, sha256), not in the
  `letter` table, which is the reminder ladder's history: a proposal must not reset or advance it.
* A proposed plan pauses the ladder (and the agency) over its invoices for its answer window
  (`answer_window_days`, core.ladder.plan_answer_deadline). Not accepted by then, it has lapsed: it can no
  longer be accepted, the nightly refresh stores it as 'lapsed' (ended_on = the first day after the
  window), and the ladder resumes. Only an accepted plan is ever 'active', then 'broken' or 'completed'.
* A plan covers only invoices the ladder would chase on the proposal day (core.eligibility, action
  "propose"): none with a share still awaited from an insurer, disputed, time-barred, handed over or in an
  active plan; and none at all while the patient is on hold, a minor without a guarantor, under a CSS/AME/
  AT-MP coverage, or has a payment waiting in the queue that may be theirs — the refusal says why. A plan
  still awaiting its answer, or a promise to pay, does not stop a new proposal (the patient asks for other
  terms, or turns a promise into a plan).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine

from recouvrement.db import plans as store
from recouvrement.db.eligibility import decision_facts, queued_payment_patients
from recouvrement.db.patients import patient_row
from recouvrement.db.plans import PlanRow, PlanSummary, plan_summary
from recouvrement.db.plans import active_plan_invoices, proposed_plan_invoices  # noqa: F401 (moved to the store)
from recouvrement.db.ledger import load_snapshot
from recouvrement.db.session import writing
from recouvrement.render.recipients import has_guarantor, is_minor, recipient_of
from recouvrement.audit import append_event, file_record
from recouvrement.config import Settings
from recouvrement.core.ledger import asked_cents, outstanding, patient_money
from recouvrement.core.eligibility import PATIENT_CODES, Action, Invoice, Refusal, refusals
from recouvrement.core.plans import (
    Instalment, plan_answer_deadline, propose_plan,
)
from recouvrement.errors import RecouvrementError
from recouvrement.money import format_eur
from recouvrement.rules import Rules, load_rules


@dataclass(frozen=True)
class OpenShare:
    invoice_number: str
    issue_date: date
    due_date: date
    due_cents: int


@dataclass(frozen=True)
class PlanDebt:
    """What a plan proposed on a day may cover: the shares it may take, those it may not (and why)."""

    shares: list[OpenShare]                               # oldest first
    refused: list[tuple[str, tuple[Refusal, ...]]]        # (invoice number, every reason not), by number
    credits_cents: int

    def patient_refusal(self) -> Refusal | None:
        """The reason that concerns the patient rather than one invoice (a hold, a minor …) when it alone keeps
        some share out of the plan; None when every share refused is refused for itself too."""
        alone = [found for _, found in self.refused if all(r.code in PATIENT_CODES for r in found)]
        return alone[0][0] if alone else None


def plan_candidates(engine: Engine, patient_id: str, as_of: date, rules: Rules) -> PlanDebt:
    """The patient's open patient shares on as_of, each judged by core.eligibility (action "propose")."""
    with engine.connect() as conn:
        snapshot = load_snapshot(conn, as_of, [patient_id])
    table = outstanding(snapshot, rejection_due_after_days=rules.ladder.rejection_notice.due_after_days)
    money = patient_money(snapshot, table=table)
    credits = 0 if patient_id not in money.index else int(money.loc[patient_id, "credit_cents"]
                                                          + money.loc[patient_id, "pending_cents"])
    shares = table[(table["payer_type"] == "patient") & (table["due_cents"] > 0)]
    insurers = dict(zip(shares["invoice_number"], shares["awaited_cents"]))
    open_shares = [OpenShare(n, i, d, int(c)) for n, i, d, c in shares[
        ["invoice_number", "issue_date", "due_date", "due_cents"]].itertuples(index=False, name=None)]
    with engine.connect() as conn:
        queued = queued_payment_patients(conn, as_of, pd.DataFrame(
            {"patient_id": patient_id, "amount_cents": [s.due_cents for s in open_shares],
             "issue_date": [s.issue_date for s in open_shares]}))
        facts = decision_facts(conn, as_of, patient_id, queued)
    kept, refused = [], []
    for share in open_shares:
        item = Invoice(share.invoice_number, share.issue_date, share.due_cents,
                       int(insurers.get(share.invoice_number, 0)), facts.disputes.get(share.invoice_number, ()),
                       facts.handed_over_on.get(share.invoice_number), patient=facts.patient(patient_id))
        found = refusals(item, Action.PROPOSE, as_of, rules)
        if found:
            refused.append((share.invoice_number, found))
        else:
            kept.append(share)
    refused.sort(key=lambda pair: pair[0])
    return PlanDebt(sorted(kept, key=lambda s: (s.issue_date, s.invoice_number)), refused, credits)


def plan_debt(engine: Engine, patient_id: str, as_of: date, rules: Rules) -> tuple[list[OpenShare], int]:
    """(the open patient shares a plan may cover, oldest first; what to deduct from them: the patient's credits
    and the money waiting in their name, core.ledger.patient_money)."""
    debt = plan_candidates(engine, patient_id, as_of, rules)
    return debt.shares, debt.credits_cents


@dataclass(frozen=True)
class Proposal:
    plan_id: int
    patient_id: str
    invoice_numbers: tuple[str, ...]
    credits_cents: int
    total_cents: int
    instalments: tuple[Instalment, ...]
    files: tuple[Path, ...]


def propose(engine: Engine, patient_id: str, as_of: date, settings: Settings, *, months: int | None = None,
            out_dir: Path | None = None, rules: Rules | None = None, now: datetime | None = None,
            actor: str | None = None) -> Proposal:
    """Store a proposed plan over the patient's open debt and write its letter (HTML + PDF).
    `actor` (here and in accept / cancel): who acted, for the audit trail (default the OS user)."""
    rules = rules or settings.rules()
    creditor = settings.require_creditor()
    with engine.connect() as conn:
        _patient(conn, patient_id)
    debt = plan_candidates(engine, patient_id, as_of, rules)
    shares, credits = debt.shares, debt.credits_cents
    refusal = debt.patient_refusal()
    if refusal is not None:
        raise RecouvrementError(f"aucun échéancier ne peut être proposé au patient {patient_id} le {as_of:%d/%m/%Y} : "
                                f"{refusal.reason}", field="PATIENT_ID")
    owed = sum(s.due_cents for s in shares)
    total = asked_cents((s.due_cents for s in shares), credits, 0)
    if not shares or total <= 0:
        raise RecouvrementError(f"le patient {patient_id} ne doit rien qu'un échéancier pourrait couvrir au {as_of:%d/%m/%Y} "
                                f"(parts ouvertes {format_eur(owed)}, avoirs {format_eur(credits)})", field="PATIENT_ID")
    try:
        instalments = propose_plan(total, as_of, rules, months=months)
    except ValueError as exc:
        raise RecouvrementError(str(exc), field="months") from None
    numbers = tuple(s.invoice_number for s in shares)
    folder = out_dir if out_dir is not None else settings.paths.output / "plans"
    with writing(engine) as conn:
        patient = _patient(conn, patient_id)
        plan_id = store.insert_plan(conn, patient_id, as_of, total, numbers, instalments)
        view = _letter_view(plan_id, as_of, creditor, patient, shares, credits, total, instalments)
        files = _write_letter(view, folder, f"echeancier_{plan_id}", settings)
        append_event(conn, "plan_proposed", {
            "plan_id": plan_id, "total_cents": total, "credits_cents": credits, "invoices": list(numbers),
            "instalments": [[i.due_date, i.amount_cents] for i in instalments],
            "letter": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files},
            "files": [file_record(p) for p in files]},
            patient_id=patient_id, at=now, actor=actor)
    return Proposal(plan_id, patient_id, numbers, credits, total, instalments, files)


def _patient(conn: Connection, patient_id: str):
    row = patient_row(conn, patient_id)
    if row is None:
        raise RecouvrementError(f"patient inconnu {patient_id!r}", field="PATIENT_ID")
    return row


def _recipient(patient, as_of: date):
    """The guarantor when the patient has one, else the patient; never a minor."""
    if not has_guarantor(patient) and is_minor(patient["birth_date"], as_of):
        raise RecouvrementError(f"le patient {patient['patient_id']} est mineur et sans garant : "
                                "aucune lettre n'est jamais adressée à un mineur", field="PATIENT_ID")
    return recipient_of(patient)


def _letter_view(plan_id: int, as_of: date, creditor, patient, shares: list[OpenShare], credits: int, total: int,
                 instalments: tuple[Instalment, ...]):
    from recouvrement.core.references import rf_reference
    from recouvrement.render.views import Creditor, LetterLine, LetterView
    lines = tuple(LetterLine(s.invoice_number, s.issue_date, s.due_date, s.due_cents, rf_reference(s.invoice_number))
                  for s in shares)
    return LetterView(
        letter_id=f"ECH-{plan_id}", kind="proposition_echeancier", level=0, date=as_of,
        creditor=Creditor(creditor.name, creditor.address, creditor.postal_code, creditor.city, creditor.phone,
                          creditor.email, creditor.siret, creditor.iban, creditor.bic),
        recipient=_recipient(patient, as_of),
        patient_display_name=f"{patient['first_name']} {patient['last_name']}",
        lines=lines, credits_cents=credits, total_due_cents=total, offer_plan_first=False, payer_rejected=None,
        instalments=tuple((i.due_date, i.amount_cents) for i in instalments))


def _write_letter(view, folder: Path, stem: str, settings: Settings) -> tuple[Path, Path]:
    """HTML and PDF of the letter, refused whole if the privacy scanner finds anything in the HTML."""
    from recouvrement.render.files import write_atomically
    from recouvrement.render.letters import render_html
    from recouvrement.render.pdf import render_pdf
    from recouvrement.scanner import ensure_clean, html_text, known_texts
    from recouvrement.render.sepa_qr import epc_payload
    html = render_html(view)
    ensure_clean(html_text(html), f"{stem}.html", known=known_texts(settings))
    ensure_clean(epc_payload(view), f"{stem} (QR code)", known=known_texts(settings))
    html_path, pdf_path = folder / f"{stem}.html", folder / f"{stem}.pdf"
    write_atomically(html_path, html)
    write_atomically(pdf_path, render_pdf(html))
    return html_path, pdf_path


# -- accept, cancel, show -------------------------------------------------------------------------

def _plan(conn: Connection, plan_id: int) -> PlanRow:
    row = store.plan(conn, plan_id)
    if row is None:
        raise RecouvrementError(f"échéancier inconnu {plan_id}", field="PLAN_ID")
    return row


def accept(engine: Engine, plan_id: int, on: date, now: datetime | None = None, rules: Rules | None = None,
           actor: str | None = None) -> None:
    """A proposed plan becomes active within its answer window; a patient has at most one active plan."""
    with writing(engine) as conn:
        plan = _plan(conn, plan_id)
        if plan.status != "proposed":
            raise RecouvrementError(f"l'échéancier {plan_id} est {plan.status} : seul un échéancier proposé peut être accepté",
                                    field="PLAN_ID")
        if on < plan.proposed_on:
            raise RecouvrementError(f"l'échéancier {plan_id} a été proposé le {plan.proposed_on:%d/%m/%Y} : il ne peut "
                                    "pas être accepté avant", field="accepted_on")
        lapsed_on = plan_answer_deadline(plan.proposed_on, rules or load_rules())
        if on >= lapsed_on:
            raise RecouvrementError(f"l'échéancier {plan_id} est caduc depuis le {lapsed_on:%d/%m/%Y}, resté sans "
                                    "réponse : proposez-en un nouveau", field="PLAN_ID")
        other = store.active_plan_id(conn, plan.patient_id)
        if other is not None:
            raise RecouvrementError(f"le patient {plan.patient_id} a déjà un échéancier actif ({other}) : "
                                    "l'annuler d'abord", field="PLAN_ID")
        store.mark_accepted(conn, plan_id, on)
        append_event(conn, "plan_accepted", {"plan_id": plan_id, "accepted_on": on,
                                             "invoices": list(plan.invoice_numbers)},
                     patient_id=plan.patient_id, at=now, actor=actor)


def cancel(engine: Engine, plan_id: int, on: date, now: datetime | None = None, actor: str | None = None) -> None:
    """A proposed or active plan is cancelled: its invoices go back to the ladder."""
    with writing(engine) as conn:
        plan = _plan(conn, plan_id)
        if plan.status not in ("proposed", "active"):
            raise RecouvrementError(f"l'échéancier {plan_id} est déjà {plan.status}", field="PLAN_ID")
        store.mark_ended(conn, plan_id, "cancelled", on)
        append_event(conn, "plan_cancelled", {"plan_id": plan_id, "was": plan.status, "ended_on": on,
                                              "invoices": list(plan.invoice_numbers)},
                     patient_id=plan.patient_id, at=now, actor=actor)


def plan_payments(conn: Connection, plan: PlanRow, as_of: date) -> tuple[tuple[date, int], ...]:
    """The patient's own payments to the plan's invoices, dated after the proposal and by as_of."""
    return store.plan_payments(conn, plan, as_of)


def show(engine: Engine, as_of: date, *, plan_id: int | None = None, patient_id: str | None = None,
         rules: Rules | None = None) -> list[PlanSummary]:
    """One plan, or every plan of a patient (newest first), with where each stands on as_of."""
    rules = rules or load_rules()
    with engine.connect() as conn:
        plans = ([_plan(conn, plan_id)] if plan_id is not None else
                 store.plans_of(conn, patient_id) if patient_id is not None else [])
        return [plan_summary(conn, plan, as_of, rules) for plan in plans]


# -- the nightly refresh ----------------------------------------------------------------------------

def refresh_plans(engine: Engine, as_of: date, rules: Rules | None = None, now: datetime | None = None) -> dict:
    """Check every active plan against the patient's payments: broken or completed plans are closed.

    Proposals left unanswered past their window are stored as lapsed first.
    Returns {"checked": n, "broken": n, "completed": n, "lapsed": n}. A broken plan's ended_on is the day it broke
    (segments count broken plans from plan.status / ended_on); a completed one's is the day of the
    payment that settled it.
    """
    rules = rules or load_rules()
    counts = {"checked": 0, "broken": 0, "completed": 0, "lapsed": 0}
    with writing(engine) as conn:
        counts["lapsed"] = _lapse_unanswered(conn, as_of, rules, now)
        for plan in store.plans_with_status(conn, "active"):
            counts["checked"] += 1
            state = plan_summary(conn, plan, as_of, rules)
            if state.standing.state == "broken" and state.standing.broken_on is not None:   # (always both)
                _close(conn, plan, "broken", state.standing.broken_on, state, now)
                counts["broken"] += 1
            elif state.standing.state == "completed":
                _close(conn, plan, "completed", _settled_on(state), state, now)
                counts["completed"] += 1
    return counts


def _lapse_unanswered(conn: Connection, as_of: date, rules: Rules, now: datetime | None) -> int:
    """Proposed plans whose answer window is over become 'lapsed' (ended_on: the day they lapsed)."""
    lapsed = 0
    for plan in store.plans_with_status(conn, "proposed"):
        deadline = plan_answer_deadline(plan.proposed_on, rules)
        if as_of < deadline:
            continue
        store.mark_ended(conn, plan.id, "lapsed", deadline)
        append_event(conn, "plan_lapsed", {"plan_id": plan.id, "ended_on": deadline, "proposed_on": plan.proposed_on},
                     patient_id=plan.patient_id, at=now or datetime.now(timezone.utc))
        lapsed += 1
    return lapsed


def _settled_on(state: PlanSummary) -> date:
    paid = 0
    for day, cents in state.payments:
        paid += cents
        if paid >= state.total_cents:
            return day
    raise AssertionError("a completed plan has payments covering it")


def _close(conn: Connection, plan: PlanRow, status: str, on: date, state: PlanSummary,
           now: datetime | None) -> None:
    store.mark_ended(conn, plan.id, status, on)
    append_event(conn, f"plan_{status}", {"plan_id": plan.id, "ended_on": on,
                                          "invoices": list(plan.invoice_numbers),
                                          "paid_cents": state.standing.paid_cents,
                                          "total_cents": state.total_cents, "reason": state.standing.reason},
                 patient_id=plan.patient_id, at=now or datetime.now(timezone.utc))
