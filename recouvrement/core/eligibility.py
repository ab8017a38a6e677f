"""May we chase, propose a plan over, or hand over this invoice on day D — and if not, why (one rule for all).

The reminder ladder (chase), the instalment plans (propose) and the agency handover (hand_over) all ask
:func:`verdict`. Its facts are plain and dated: every pause is a :class:`Span` judged at D — a hold or a
promise from its start to its end, a dispute from its opening to its closing, an accepted plan from its
acceptance to its end, a proposed plan for its answer window. A pause that starts after D stops nothing
on D; a pause that ended on or before D stops nothing either (its end day is free).

What differs between the actions is data, in :data:`CHECKS` (which checks apply to which action) and
:data:`PLAN_SCOPE` (whether a plan pauses only its own invoices or the whole patient):

* a plan proposed and still in its answer window, and a promise to pay until its date, pause the ladder
  and the agency, but a (new) plan may still be proposed (the patient calls back for other terms, or
  turns a promise into a plan);
* the agency also needs the invoice's own mise en demeure to be ``agency.after_level3_days`` old;
* an accepted plan keeps the patient's whole account out of the agency (someone honouring a plan is
  never handed over for another invoice), while the ladder still chases an invoice the plan does not cover.

The reasons are French, for the office, and never name a care, an act or a diagnosis.

>>> from datetime import date
>>> from recouvrement.rules import Rules
>>> held = Patient(holds=(Span(date(2026, 3, 1), date(2026, 4, 1)),))
>>> bill = Invoice("F1", date(2026, 1, 10), 4000, patient=held)
>>> verdict(bill, Action.CHASE, date(2026, 2, 20), Rules()) is None      # the hold has not begun
True
>>> verdict(bill, Action.PROPOSE, date(2026, 3, 15), Rules()).code       # the hold is in force
'on_hold'
>>> verdict(bill, Action.CHASE, date(2026, 4, 1), Rules()) is None       # released that day: free
True
>>> verdict(bill, Action.HAND_OVER, date(2026, 4, 1), Rules()).code      # the agency needs a mise en demeure
'no_mise_en_demeure'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Callable

from recouvrement.core.plans import add_months, plan_answer_deadline
from recouvrement.rules import Rules


class Action(StrEnum):
    CHASE = "chase"          # a reminder letter (the ladder)
    PROPOSE = "propose"      # an instalment plan offered over the invoice
    HAND_OVER = "hand_over"  # the collection agency takes it


@dataclass(frozen=True)
class Span:
    """A pause from `start` (counted) to `end` (the first day it no longer counts; None: still running).

    >>> Span(date(2026, 3, 1), date(2026, 4, 1)).covers(date(2026, 3, 31)), Span(date(2026, 3, 1)).covers(date(2026, 2, 28))
    (True, False)
    """

    start: date
    end: date | None = None

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day < self.end)


ALWAYS = Span(date.min)  # a pause known to hold on the day asked (facts already judged by the caller)


@dataclass(frozen=True)
class PlanFacts:
    """One instalment plan, as dates: proposed, accepted (None: never), ended (lapsed, cancelled, broken, paid)."""

    proposed_on: date
    invoice_numbers: frozenset[str]
    accepted_on: date | None = None
    ended_on: date | None = None

    def accepted_span(self) -> Span | None:
        """From its acceptance to its end: the plan holds the invoices it covers."""
        return None if self.accepted_on is None else Span(self.accepted_on, self.ended_on)

    def answer_span(self, rules: Rules) -> Span:
        """From the proposal to the end of its answer window (or its acceptance, or its cancellation if sooner)."""
        ends = [plan_answer_deadline(self.proposed_on, rules)]
        ends += [d for d in (self.accepted_on, self.ended_on) if d is not None]
        return Span(self.proposed_on, min(ends))


@dataclass(frozen=True)
class Patient:
    """What concerns the whole account of the invoice's patient (the debtor's facts)."""

    coverage: str = "none"                    # standard, css, ame, at_mp …
    holds: tuple[Span, ...] = ()              # hardship, death, legal protection: nothing at all meanwhile
    promises: tuple[Span, ...] = ()           # a promise to pay, until its review date
    plans: tuple[PlanFacts, ...] = ()
    birth_date: date | None = None
    minor: bool = False                       # known to be a minor on the day (judged by the caller)
    has_guarantor: bool = False
    pending_payment: bool = False             # a payment in their name waits for matching (judged at D)
    queued_payment_may_be_theirs: bool = False  # one in nobody's name fits their name and a share (at D)


@dataclass(frozen=True)
class Invoice:
    """One invoice's patient share on D, with its dated facts."""

    invoice_number: str
    issue_date: date
    amount_cents: int                         # what the patient still owes on it on D
    insurer_awaited_cents: int = 0            # still expected from the AMO or the AMC on D
    disputes: tuple[Span, ...] = ()           # from the complaint's receipt to its closing
    handed_over_on: date | None = None        # first day the agency had it
    mise_en_demeure_on: date | None = None    # the first mise en demeure that formally demanded it
    patient: Patient = Patient()


@dataclass(frozen=True)
class Refusal:
    code: str     # machine code, stable (dry runs, the agency's left-out list, tests)
    reason: str   # French, for the office, no medical detail


# -- the checks: each returns the French reason when it refuses on `day`, else None --------------------

Check = Callable[[Invoice, Action, date, Rules], str | None]


def _exempt_coverage(item: Invoice, action: Action, day: date, rules: Rules) -> str | None:
    coverage = item.patient.coverage.lower()
    if coverage not in rules.exclusions.anomaly_coverages:
        return None
    return (f"prise en charge {coverage.upper().replace('_', '/')} : une part patient est une anomalie "
            "de facturation, à signaler au comptable, jamais réclamée")


def _handed_over(item: Invoice, action: Action, day: date, rules: Rules) -> str | None:
    if item.handed_over_on is None or item.handed_over_on > day:
        return None
    return "facture transmise à l'agence de recouvrement"


def _on_hold(item: Invoice, action: Action, day: date, rules: Rules) -> str | None:
    active = [s for s in item.patient.holds if s.covers(day)]
    return "relances suspendues pour ce patient" if active else None


def _promise(item: Invoice, action: Action, day: date, rules: Rules) -> str | None:
    active = [s for s in item.patient.promises if s.covers(day)]
    if not active:
        return None
    if any(s.end is None for s in active):
        return "promesse de paiement en cours"
    return f"promesse de paiement : pas de relance jusqu'au {max(s.end for s in active if s.end) - timedelta(days=1):%d/%m/%Y}"


def is_minor(birth_date: date | None, day: date) -> bool:
    """Under 18 on `day` (born 29 February: of age on 28 February).

    >>> is_minor(date(2008, 2, 29), date(2026, 2, 27)), is_minor(date(2008, 2, 29), date(2026, 2, 28))
    (True, False)
    """
    return birth_date is not None and add_months(birth_date, 18 * 12) > day


def _minor(item: Invoice, action: Action, day: date, rules: Rules) -> str | None:
    if item.patient.has_guarantor or not (item.patient.minor or is_minor(item.patient.birth_date, day)):
        return None
    return "patient mineur sans garant connu : aucun courrier"


PENDING_PAYMENT_REASON = "un paiement à son nom attend le rapprochement"
QUEUED_PAYMENT_REASON = ("un paiement en attente de rapprochement pourrait être le sien (nom du payeur et montant "
                         "d'une facture concordent) : pas de relance avant la décision")


def _pending_payment(item: Invoice, action: Action, day: date, rules: Rules) -> str | None:
    return PENDING_PAYMENT_REASON if item.patient.pending_payment else None


def _queued_payment(item: Invoice, action: Action, day: date, rules: Rules) -> str | None:
    return QUEUED_PAYMENT_REASON if item.patient.queued_payment_may_be_theirs else None


def _nothing_owed(item: Invoice, action: Action, day: date, rules: Rules) -> str | None:
    return "rien à payer sur cette facture" if item.amount_cents <= 0 else None


def _covers(plan: PlanFacts, item: Invoice, action: Action) -> bool:
    return PLAN_SCOPE[action] == "patient" or item.invoice_number in plan.invoice_numbers


def _in_plan(item: Invoice, action: Action, day: date, rules: Rules) -> str | None:
    for plan in item.patient.plans:
        span = plan.accepted_span()
        if span is not None and span.covers(day) and _covers(plan, item, action):
            return ("facture dans un échéancier en cours" if item.invoice_number in plan.invoice_numbers
                    else "le patient honore un échéancier en cours")
    return None


def _plan_proposed(item: Invoice, action: Action, day: date, rules: Rules) -> str | None:
    waiting = [plan.answer_span(rules) for plan in item.patient.plans
               if plan.answer_span(rules).covers(day) and _covers(plan, item, action)]
    if not waiting:
        return None
    answer_by = max(plan_answer_deadline(s.start, rules) for s in waiting)
    return f"échéancier proposé : pas de relance avant la fin du délai de réponse, le {answer_by:%d/%m/%Y}"


def _disputed(item: Invoice, action: Action, day: date, rules: Rules) -> str | None:
    open_ = [s for s in item.disputes if s.covers(day)]
    return "facture contestée : pas de relance pendant la contestation" if open_ else None


def _insurer_awaited(item: Invoice, action: Action, day: date, rules: Rules) -> str | None:
    if item.insurer_awaited_cents <= 0:
        return None
    return "une part est encore attendue de l'assurance : toute la facture attend"


def time_barred_on(issue_date: date, rules: Rules) -> date:
    """The day a debt becomes time-barred (prescription): limitation_years after the invoice's issue date
    (29 February clamped to the 28th).

    >>> time_barred_on(date(2024, 2, 29), Rules())
    datetime.date(2026, 2, 28)
    """
    return add_months(issue_date, 12 * rules.exclusions.limitation_years)


def is_time_barred(issue_date: date, day: date, rules: Rules) -> bool:
    """Prescription: from `time_barred_on` on, the debt is no longer chased."""
    return day >= time_barred_on(issue_date, rules)


def _time_barred(item: Invoice, action: Action, day: date, rules: Rules) -> str | None:
    if not is_time_barred(item.issue_date, day, rules):
        return None
    return f"créance prescrite : plus de {rules.exclusions.limitation_years} ans depuis la facture"


def _no_mise_en_demeure(item: Invoice, action: Action, day: date, rules: Rules) -> str | None:
    if item.mise_en_demeure_on is not None and item.mise_en_demeure_on <= day:
        return None
    return "aucune mise en demeure n'a réclamé cette facture : l'agence ne la prend pas"


def _mise_en_demeure_too_recent(item: Invoice, action: Action, day: date, rules: Rules) -> str | None:
    sent = item.mise_en_demeure_on
    if sent is None or sent > day or (day - sent).days >= rules.agency.after_level3_days:
        return None
    ready_on = sent + timedelta(days=rules.agency.after_level3_days)
    return (f"mise en demeure du {sent:%d/%m/%Y} : l'agence ne la prend pas avant "
            f"{rules.agency.after_level3_days} jours, le {ready_on:%d/%m/%Y}")


ALL = frozenset(Action)
# A pause the patient asked for (their promise to pay, a plan awaiting their answer) stops letters and the
# agency, never a (new) plan offered to them: a promise too far off becomes a plan, a patient calls back for
# other terms.
THE_PATIENTS_OWN_PAUSE = frozenset({Action.CHASE, Action.HAND_OVER})

# Whether a plan pauses only the invoices it covers or every invoice of its patient, per action.
PLAN_SCOPE: dict[Action, str] = {Action.CHASE: "invoice", Action.PROPOSE: "invoice", Action.HAND_OVER: "patient"}

# (code, check, the actions it refuses), in the order a refusal is reported: the patient's facts first,
# then the invoice's. Every action is refused on every fact the ladder would not chase on.
CHECKS: tuple[tuple[str, Check, frozenset[Action]], ...] = (
    ("exempt_coverage", _exempt_coverage, ALL),
    ("handed_over", _handed_over, ALL),
    ("on_hold", _on_hold, ALL),
    ("promise", _promise, THE_PATIENTS_OWN_PAUSE),
    ("minor_without_guarantor", _minor, ALL),
    ("pending_credit", _pending_payment, ALL),
    ("queued_payment", _queued_payment, ALL),
    ("nothing_owed", _nothing_owed, ALL),
    ("in_plan", _in_plan, ALL),
    ("plan_proposed", _plan_proposed, THE_PATIENTS_OWN_PAUSE),
    ("disputed", _disputed, ALL),
    ("insurer_awaited", _insurer_awaited, ALL),
    ("time_barred", _time_barred, ALL),
    ("no_mise_en_demeure", _no_mise_en_demeure, frozenset({Action.HAND_OVER})),
    ("level3_too_recent", _mise_en_demeure_too_recent, frozenset({Action.HAND_OVER})),
)

# The agency takes a case as a whole or not at all: these refusals leave that one invoice out of the case,
# any other keeps the whole case in the building (a dispute, a hold, a plan, a payment that may be theirs …).
LEFT_OUT_OF_A_CASE = frozenset({"handed_over", "nothing_owed", "insurer_awaited", "time_barred",
                                "no_mise_en_demeure", "level3_too_recent"})

# Codes that concern the patient rather than one invoice (the ladder reports them once per account).
PATIENT_CODES = frozenset({"exempt_coverage", "on_hold", "promise", "minor_without_guarantor", "pending_credit",
                           "queued_payment"})


_PLANS: dict[tuple[Action, frozenset[str] | None], tuple[tuple[str, Check], ...]] = {}


def _checks(action: Action, codes: frozenset[str] | None) -> tuple[tuple[str, Check], ...]:
    """The checks of CHECKS that apply to `action` (and to `codes`), in order; computed once per pair."""
    key = (action, codes)
    if key not in _PLANS:
        _PLANS[key] = tuple((code, check) for code, check, actions in CHECKS
                            if action in actions and (codes is None or code in codes))
    return _PLANS[key]


def refusals(item: Invoice, action: Action | str, day: date, rules: Rules,
             codes: frozenset[str] | None = None) -> tuple[Refusal, ...]:
    """Every reason not to act on this invoice on `day` (empty: we may), in :data:`CHECKS` order;
    `codes` limits the checks to those codes."""
    if not isinstance(action, Action):
        action = Action(action)
    found: tuple[Refusal, ...] = ()
    for code, check in _checks(action, codes):
        reason = check(item, action, day, rules)
        if reason is not None:
            found += (Refusal(code, reason),)
    return found


def verdict(item: Invoice, action: Action | str, day: date, rules: Rules) -> Refusal | None:
    """The first reason not to `action` this invoice on `day`, or None when we may.

    >>> from recouvrement.rules import Rules
    >>> bill = Invoice("F1", date(2026, 1, 10), 4000, disputes=(Span(date(2026, 2, 1), date(2026, 3, 1)),))
    >>> verdict(bill, "chase", date(2026, 2, 15), Rules()).reason
    'facture contestée : pas de relance pendant la contestation'
    >>> verdict(bill, "propose", date(2026, 3, 1), Rules()) is None
    True
    """
    found = refusals(item, action, day, rules)
    return found[0] if found else None
