"""The reminder ladder: which letter is due for which patient on a given day, and why not.

Decisions, documented once here (the rules files repeat them for the office):

* Each invoice climbs the ladder on its own. Its stage is the highest level it was listed at in a
  letter (``OpenItem.history``: plain dated listings, the rejection notice being level 0). It may reach
  its next level L when it is at least ``ladder.level(L).days`` past due and, for L >= 2, when it was
  listed at level L-1 at least ``min_gap_days`` before. Levels are never skipped: a debt 60 days old
  with no letter gets level 1. An invoice that reached the last level (the mise en demeure) is never
  listed again: the agency handover takes it once that letter is ``agency.after_level3_days`` old
  (core.eligibility, action hand_over; :func:`handover_ready` for one invoice's history).
* A letter is still one per patient. Its level is the highest level one of its invoices may reach;
  the invoices at that level are its formal part, every other overdue remindable invoice is listed
  apart, gently, as "also due" at its own level (its next level when it may climb, else the level it
  already has, at least 1). A level-1 letter is all formal. At least ``min_gap_days`` separate two
  letters of any kind to a patient.
* A share shifted onto the patient by an insurer's rejection is first announced by a neutral notice
  (level 0, ``rejection_notice`` template) as soon as the shift exists, whatever its due date; the
  notice takes precedence over a ladder letter due the same day. The notice asks for payment by its
  date + ``due_after_days``, and that deadline is the due date the ladder counts from afterwards: no
  ladder letter before the date the notice promised.
* Whether an invoice may be chased at all on the day is core.eligibility's (one rule with the plans and
  the agency): a share still awaited from an insurer holds back the whole invoice; an invoice in a plan
  proposed and not yet answered waits for the plan's answer window (``plans.answer_window_days``); a hold,
  a dispute or a plan counts from its start to its end, never before it starts.
* Amount asked = sum of the listed items - the patient's credits, floored at zero, the credits
  deducted from the formal part first; no letter under ``min_total_cents`` in all, nor one whose
  formal part the credits cover.
* A promise to pay (``Account.promises``, or ``promised_until``: a promise known in force) holds the whole
  account through its day; the day after, the ladder resumes by itself if money is still owed.
* ``has_email``: the recipient (the guarantor for a minor) has a valid address and consented to e-mail;
  ``has_mobile``: the patient, who receives their own letters, has a valid mobile and consented to SMS.
  A level's means (rules.channel_means) are kept only when the recipient may be reached that way; when none
  is left, the letter goes by post (``"sms+letter"`` without SMS consent: the letter alone).
* The pre-due notice ("avant échéance", ``ladder.pre_due``, :func:`pre_due_notice`) is not a ladder level: it is
  a neutral message listing each invoice (patient share at least ``min_patient_share_cents``, never listed in
  any letter) whose due date is at most ``days_before`` ahead and still to come — from that day until the eve
  of the due date, so a night missed (or a Sunday) is caught up while the invoice is not yet due, and never
  sent on or after the due date. Whatever the ladder may not chase (core.eligibility) it never lists; a
  shifted share gets the rejection notice instead. It is decided apart from the ladder's letter (both may
  go the same day), is recorded at level ``PRE_DUE_LEVEL`` (-1), and neither climbs the ladder nor counts in
  the gap between two letters.
* A phone step (a level with ``channel = "phone"``) puts the patient on the call list instead of sending a
  letter (``Decision.channel == "phone"``, ``template``: the call script), when the recipient has a phone
  number not found wrong. While the call is open (``Account.calls``, status "open") the patient gets no other
  ladder letter. Its outcome: reached, promise or dispute (``CALL_DONE``) make the step done that day (the
  app adds it to each invoice's history at that level: the next level comes ``min_gap_days`` after at the
  earliest); a wrong number or no outcome within the level's ``call_within_days`` (:func:`call_expired`)
  falls back to that level's letter (post, e-mail in copy when there is an address), never a second call
  at that level. A call whose patient may no longer be chased is not wanted any more (:func:`call_wanted`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache
from typing import Iterable

import holidays

from recouvrement.core.eligibility import (ALWAYS, PATIENT_CODES, Action, Invoice, Patient, PlanFacts, Refusal, Span,
                                          refusals)
from recouvrement.core.eligibility import (PENDING_PAYMENT_REASON, QUEUED_PAYMENT_REASON,  # noqa: F401
                                           is_time_barred)  # noqa: F401 (callers import them from here)
from recouvrement.core.ledger import asked_cents
from recouvrement.money import format_eur
from recouvrement.rules import PHONE, Rules, channel_means, channel_name

NOTICE_LEVEL = 0
CALL_DONE = frozenset({"reached", "promise", "dispute"})  # outcomes that make the phone step done
CALL_FAILED = frozenset({"wrong_number", "expired"})        # outcomes that fall back to the level's letter
PRE_DUE_LEVEL = -1  # the notice before the due date: outside the ladder


@dataclass(frozen=True)
class Listing:
    """One letter that listed an invoice: the invoice's own level in it (0: rejection notice) and its date."""

    level: int
    sent_on: date


@dataclass(frozen=True)
class OpenItem:
    """One invoice's outstanding patient share, with the letters that listed it."""

    invoice_number: str
    issue_date: date
    due_date: date
    amount_cents: int  # what the patient still owes on this invoice
    insurer_awaited_cents: int = 0  # still expected from the AMO or AMC
    disputed: bool = False
    in_plan: bool = False
    handed_over: bool = False
    shifted_from: str | None = None  # "amo" | "amc" when an insurer's rejection moved it onto the patient
    notified: bool = True  # whether the rejection notice about it was sent
    history: tuple[Listing, ...] = ()  # every letter that listed this invoice, at its own level
    plan_proposed_on: date | None = None  # a plan proposed over it, neither accepted nor cancelled
    # Dated facts, judged on the day by core.eligibility (the booleans above: facts already judged on it).
    disputes: tuple[Span, ...] = ()  # from each complaint's receipt to its closing
    handed_over_on: date | None = None


@dataclass(frozen=True)
class LetterHistory:
    """The patient's last letter of any kind (for the gap between two letters)."""

    level: int  # 0 for the rejection notice
    sent_on: date


@dataclass(frozen=True)
class CallFacts:
    """A phone step listed for the patient: its level, the night that listed it, its outcome so far."""

    level: int
    listed_on: date
    status: str = "open"  # open | reached | promise | dispute | wrong_number | expired | cancelled
    invoice_numbers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Account:
    patient_id: str
    coverage: str
    items: tuple[OpenItem, ...]
    on_hold: bool = False
    has_email: bool = False
    has_mobile: bool = False
    is_minor: bool = False
    has_guarantor: bool = False
    pending_credit_cents: int = 0  # unmatched transfers / unallocated payments attributed to the patient
    queued_payment_may_be_theirs: bool = False  # a queued payment in nobody's name fits their name and a share
    segment: str = "one_off"
    last_letter: LetterHistory | None = None
    handed_over: bool = False
    credit_cents: int = 0  # known credit on the account (credit note, overpayment) deducted from the amount asked
    promised_until: date | None = None  # a promise to pay in force: nothing is sent through this day
    # Dated facts, judged on the day by core.eligibility (on_hold above: a hold already judged in force).
    holds: tuple[Span, ...] = ()
    promises: tuple[Span, ...] = ()
    plans: tuple[PlanFacts, ...] = ()  # every plan of the patient, proposed or accepted, with its dates
    phone_usable: bool = False  # the recipient has a phone number not found wrong on a call
    calls: tuple[CallFacts, ...] = ()  # the phone steps listed for the patient, with their outcome


@dataclass(frozen=True)
class Exclusion:
    invoice_number: str | None  # None when the whole account is concerned
    code: str
    reason: str  # French, shown in the dry run


@dataclass(frozen=True)
class Decision:
    patient_id: str
    level: int | None  # None: nothing to send; 0: rejection notice; 1.. ladder levels
    template: str | None
    channel: str | None  # letter | email | sms | both | e.g. letter+sms, resolved against the recipient (_channel);
    #                     phone: the call list
    items: tuple[OpenItem, ...]  # every invoice the letter lists: the formal part first, then the "also due"
    amount_due_cents: int  # all it asks, net of credits
    offer_plan_first: bool
    anomalies: tuple[Exclusion, ...]  # to flag to the accountant (also listed in exclusions)
    exclusions: tuple[Exclusion, ...]
    reason: str  # why this level, or why nothing
    recipient: str = "patient"  # patient | guarantor
    item_levels: tuple[int, ...] = ()  # each listed item's own level in this letter, parallel to items
    formal_due_cents: int = 0  # what the formal part asks, net of credits (deducted from it first)

    @property
    def formal_items(self) -> tuple[OpenItem, ...]:
        """The invoices the letter demands at its own level."""
        return tuple(i for i, level in zip(self.items, self.item_levels) if level == self.level)

    @property
    def also_due(self) -> tuple[tuple[OpenItem, int], ...]:
        """The other overdue invoices, listed apart with their own (lower) level and no formal demand."""
        return tuple((i, level) for i, level in zip(self.items, self.item_levels) if level != self.level)


@lru_cache(maxsize=1024)
def is_quiet_day(day: date) -> bool:
    """Sundays and French public holidays: no letter, no e-mail (asked once per account: remembered per day)."""
    return day.weekday() == 6 or day in _french_holidays(day.year)


@lru_cache(maxsize=None)
def _french_holidays(year: int) -> holidays.HolidayBase:
    return holidays.France(years=year)


def due_reminders(accounts: Iterable[Account], as_of: date, rules: Rules) -> list[Decision]:
    """The decisions with a letter to send on as_of (none on a quiet day: the next working day catches up)."""
    if is_quiet_day(as_of):
        return []
    return [d for d in (decide(a, as_of, rules) for a in accounts) if d.level is not None]


def decide(account: Account, as_of: date, rules: Rules) -> Decision:
    """The letter due to this patient on as_of, or none, with every exclusion and its reason."""
    patient = patient_facts(account)
    anomalies, blockers = _patient_stops(account, patient, as_of, rules)
    screened, remindable = ((), ()) if anomalies else _screen_items(account, patient, as_of, rules)
    exclusions = anomalies + blockers + screened
    if anomalies or blockers:
        return _nothing(account, (anomalies + blockers)[0].reason, exclusions, anomalies)
    notice = tuple(i for i in remindable if i.shifted_from and not i.notified)
    if notice:
        reason = "part rejetée par l'assureur : avis au patient avant toute relance"
        pay_by = notice_deadline(as_of, rules)
        items = tuple(replace(i, due_date=max(i.due_date, pay_by)) for i in notice)
        return _letter(account, rules, NOTICE_LEVEL, items, (NOTICE_LEVEL,) * len(items), reason, exclusions, as_of)
    overdue = tuple(_counted_from(i, rules) for i in remindable)
    overdue = tuple(i for i in overdue if i.due_date < as_of)
    done = tuple(i for i in overdue if stage(i) >= rules.ladder.max_level)
    exclusions += tuple(Exclusion(i.invoice_number, "mise_en_demeure_sent", _DONE) for i in done)
    climbing = tuple(i for i in overdue if stage(i) < rules.ladder.max_level)
    if not climbing:
        return _nothing(account, _DONE if done else "aucune facture échue à relancer", exclusions, anomalies)
    waiting = open_call(account, as_of, rules)
    if waiting is not None:
        return _nothing(account, (f"appel de relance {waiting.level} à passer (liste du {waiting.listed_on:%d/%m/%Y}) : "
                                  "pas d'autre relance en attendant son issue"), exclusions, anomalies)
    last = account.last_letter
    if last is not None and (as_of - last.sent_on).days < rules.ladder.min_gap_days:
        return _nothing(account, (f"dernier courrier il y a {(as_of - last.sent_on).days} jours "
                                  f"(au moins {rules.ladder.min_gap_days} entre deux courriers)"),
                        exclusions, anomalies)
    return _ladder_letter(account, climbing, as_of, rules, exclusions)


def _ladder_letter(account: Account, climbing: tuple[OpenItem, ...], as_of: date, rules: Rules,
                   exclusions: tuple[Exclusion, ...]) -> Decision:
    """The patient's letter when one of their invoices may climb today: its level is the highest own level."""
    steps = {i.invoice_number: next_level(i, as_of, rules) for i in climbing}
    why_not = {number: why for number, (_, why) in steps.items() if why is not None}
    if len(why_not) == len(steps):
        oldest = max(climbing, key=lambda i: ((as_of - i.due_date).days, i.invoice_number))
        return _nothing(account, why_not[oldest.invoice_number], exclusions, ())
    # Each invoice's own level: the next one when it may climb today, else the one it has (at least 1).
    own = {number: lvl if why is None else max(1, lvl - 1) for number, (lvl, why) in steps.items()}
    level = max(own.values())
    ordered = sorted(climbing, key=lambda i: (own[i.invoice_number] != level, i.due_date, i.invoice_number))
    late_days = max((as_of - i.due_date).days for i in climbing if own[i.invoice_number] == level)
    reason = f"la plus ancienne facture a {late_days} jours de retard : relance {level}"
    return _letter(account, rules, level, tuple(ordered), tuple(own[i.invoice_number] for i in ordered),
                   reason, exclusions, as_of)


_DONE = "mise en demeure déjà envoyée : plus de relance, la suite relève de l'agence"


def stage(item: OpenItem) -> int:
    """The highest ladder level the invoice was listed at (0: never in a ladder letter; a pre-due notice is none)."""
    return max((listing.level for listing in item.history if listing.level > 0), default=0)


def pre_due_notice(account: Account, as_of: date, rules: Rules) -> Decision:
    """The pre-due notice due to this patient on as_of (level ``PRE_DUE_LEVEL``), or a decision with no level.

    >>> from recouvrement.rules import LadderRules, PreDueNotice
    >>> on = Rules(ladder=LadderRules(pre_due=PreDueNotice(enabled=True, days_before=7)))
    >>> bill = OpenItem("F1", date(2026, 11, 1), date(2026, 12, 1), 4000)
    >>> [pre_due_notice(Account("P1", "none", (bill,)), day, on).level
    ...  for day in (date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 30), date(2026, 12, 1))]
    [None, -1, -1, None]
    """
    pre = rules.ladder.pre_due
    if not pre.enabled:
        return _nothing(account, "avis avant échéance désactivé (ladder.toml, [pre_due])", (), ())
    patient = patient_facts(account)
    stops = sum(_patient_stops(account, patient, as_of, rules), ())
    if stops:
        return _nothing(account, stops[0].reason, (), ())
    _, remindable = _screen_items(account, patient, as_of, rules)
    items = tuple(i for i in remindable if is_pre_due(i, as_of, rules))
    if not items:
        return _nothing(account, "aucune facture n'arrive à échéance dans les jours qui viennent", (), ())
    reason = f"échéance dans {min((i.due_date - as_of).days for i in items)} jours : avis avant échéance"
    return _letter(account, rules, PRE_DUE_LEVEL, items, (PRE_DUE_LEVEL,) * len(items), reason, (), as_of)


def is_pre_due(item: OpenItem, as_of: date, rules: Rules) -> bool:
    """Whether the pre-due notice may list this (remindable) invoice on as_of: due within ``days_before`` days
    but not yet, a patient share at least the threshold, never in a letter before, not a shifted share."""
    pre = rules.ladder.pre_due
    return (item.due_date - timedelta(days=pre.days_before) <= as_of < item.due_date
            and item.amount_cents >= pre.min_patient_share_cents
            and not item.history and item.shifted_from is None)


def notice_deadline(sent_on: date, rules: Rules) -> date:
    """The date a rejection notice sent on sent_on asks payment by."""
    return sent_on + timedelta(days=rules.ladder.rejection_notice.due_after_days)


def count_from(item: OpenItem, rules: Rules) -> date:
    """The due date the ladder counts from: the invoice's, or the latest rejection notice's deadline."""
    notices = [notice_deadline(listing.sent_on, rules) for listing in item.history if listing.level == NOTICE_LEVEL]
    return max([item.due_date, *notices])


def _counted_from(item: OpenItem, rules: Rules) -> OpenItem:
    """The item with the due date the ladder counts from (the same item when that is its own due date)."""
    day = count_from(item, rules)
    return item if day == item.due_date else replace(item, due_date=day)


def next_level(item: OpenItem, as_of: date, rules: Rules) -> tuple[int, str | None]:
    """(the next level this invoice may reach, None if it may reach it on as_of, else why not yet).

    ``item.due_date`` is the date the ladder counts from (see :func:`count_from`).
    """
    ladder = rules.ladder
    step = ladder.level(stage(item) + 1)
    late = (as_of - item.due_date).days
    if late < step.days:
        return step.level, (f"relance {step.level} à {step.days} jours de retard ; "
                            f"la plus ancienne facture en a {late}")
    if step.level == 1:
        return step.level, None
    # The earliest letter that listed it one rung lower (the stage's level: it exists).
    waited = (as_of - min(x.sent_on for x in item.history if x.level == step.level - 1)).days
    if waited < ladder.min_gap_days:
        return step.level, (f"facture {item.invoice_number} : relance {step.level} au moins "
                            f"{ladder.min_gap_days} jours après la relance {step.level - 1} (il y a {waited} jours)")
    return step.level, None


def handover_ready(history: Iterable[Listing], as_of: date, rules: Rules) -> bool:
    """Whether the agency may take this invoice on as_of as far as its own mise en demeure goes (old enough:
    core.eligibility's level3_too_recent, the rule the agency export reads)."""
    notices = [listing.sent_on for listing in history if listing.level == rules.ladder.max_level]
    if not notices:
        return False
    item = Invoice("", as_of, 1, mise_en_demeure_on=min(notices))
    return not refusals(item, Action.HAND_OVER, as_of, rules, codes=frozenset({"no_mise_en_demeure",
                                                                              "level3_too_recent"}))


def patient_facts(account: Account) -> Patient:
    """The account's facts as core.eligibility reads them (its booleans as pauses in force on the day)."""
    return Patient(
        coverage=account.coverage,
        holds=account.holds + ((ALWAYS,) if account.on_hold or account.segment == "on_hold" else ()),
        promises=account.promises + ((Span(date.min, account.promised_until + timedelta(days=1)),)
                                     if account.promised_until is not None else ()),
        plans=account.plans, has_guarantor=account.has_guarantor,
        minor=account.is_minor, pending_payment=account.pending_credit_cents > 0,
        queued_payment_may_be_theirs=account.queued_payment_may_be_theirs)


def invoice_facts(item: OpenItem, patient: Patient) -> Invoice:
    """One open item as core.eligibility reads it."""
    plans = patient.plans
    if item.in_plan:
        plans += (PlanFacts(date.min, frozenset({item.invoice_number}), accepted_on=date.min),)
    if item.plan_proposed_on is not None:
        plans += (PlanFacts(item.plan_proposed_on, frozenset({item.invoice_number})),)
    if plans is not patient.plans:
        patient = replace(patient, plans=plans)
    return Invoice(item.invoice_number, item.issue_date, item.amount_cents, item.insurer_awaited_cents,
                   item.disputes + ((ALWAYS,) if item.disputed else ()),
                   date.min if item.handed_over else item.handed_over_on, patient=patient)


_ANOMALY_CODES = frozenset({"exempt_coverage"})
_ITEM_CODES = frozenset({"handed_over", "nothing_owed", "in_plan", "plan_proposed", "disputed", "insurer_awaited",
                         "time_barred"})


def _patient_stops(account: Account, patient: Patient, as_of: date,
                   rules: Rules) -> tuple[tuple[Exclusion, ...], tuple[Exclusion, ...]]:
    """(the account's anomalies: one exclusion per item, what stops every letter to the patient on as_of), from
    the patient's facts asked of core.eligibility once (every invoice of theirs is refused alike on them)."""
    found = _patient_refusals(patient, as_of, rules)
    anomalies = tuple(Exclusion(i.invoice_number, r.code, r.reason) for r in found if r.code in _ANOMALY_CODES
                      for i in account.items)
    handed = ((Exclusion(None, "handed_over", "dossier transmis à l'agence de recouvrement"),)
              if account.handed_over else ())
    quiet = ((Exclusion(None, "quiet_day", "dimanche ou jour férié : aucun envoi, rattrapage le jour ouvré suivant"),)
             if is_quiet_day(as_of) else ())
    return anomalies, handed + tuple(Exclusion(None, r.code, r.reason) for r in found
                                     if r.code not in _ANOMALY_CODES) + quiet


# The patient's refusals, remembered per facts and day: a night's 138k accounts (1M invoices) bear 14 distinct facts.
# For one rules object at a time, by identity (hashing the rules costs more than the checks); the entry holds
# the rules, so their id is never another's while it is kept.
_PATIENT_REFUSALS: dict[tuple[Patient, date], tuple[Rules, tuple[Refusal, ...]]] = {}


def _patient_refusals(patient: Patient, as_of: date, rules: Rules) -> tuple[Refusal, ...]:
    """core.eligibility's refusals of the patient's own facts on as_of (any invoice of theirs is refused alike)."""
    key = (patient, as_of)
    known = _PATIENT_REFUSALS.get(key)
    if known is not None and known[0] is rules:
        return known[1]
    if len(_PATIENT_REFUSALS) >= 4096:
        _PATIENT_REFUSALS.clear()
    found = refusals(Invoice("", as_of, 0, patient=patient), Action.CHASE, as_of, rules, codes=PATIENT_CODES)
    _PATIENT_REFUSALS[key] = (rules, found)
    return found


def _screen_items(account: Account, patient: Patient, as_of: date,
                  rules: Rules) -> tuple[tuple[Exclusion, ...], tuple[OpenItem, ...]]:
    """(one exclusion per excluded item, the remindable items), whatever their due date."""
    excluded, remindable = [], []
    for item in account.items:
        found = refusals(invoice_facts(item, patient), Action.CHASE, as_of, rules, codes=_ITEM_CODES)
        if not found:
            remindable.append(item)
        else:
            excluded.append(Exclusion(item.invoice_number, found[0].code, found[0].reason))
    return tuple(excluded), tuple(remindable)


def _letter(account: Account, rules: Rules, level: int, items: tuple[OpenItem, ...], levels: tuple[int, ...],
            reason: str, exclusions: tuple[Exclusion, ...], as_of: date) -> Decision:
    amount = _asked(account, items)
    formal = _asked(account, (i for i, own in zip(items, levels) if own == level))
    minimum = rules.exclusions.min_total_cents
    if amount < minimum or formal <= 0:
        below = Exclusion(None, "below_minimum",
                          f"montant à demander ({format_eur(amount)}) inférieur au minimum de {format_eur(minimum)}"
                          if amount < minimum else "les avoirs du patient couvrent les factures à relancer")
        return _nothing(account, below.reason, exclusions + (below,), ())
    step = (rules.ladder.rejection_notice if level == NOTICE_LEVEL else rules.ladder.pre_due
            if level == PRE_DUE_LEVEL else rules.ladder.level(level))
    template, channel = step.template, _channel(step.channel, account.has_email, account.has_mobile)
    if step.channel == PHONE:
        if account.phone_usable and not call_failed(account, level, as_of, rules):
            template, channel = rules.ladder.level(level).script or step.template, PHONE
        else:  # no usable number, a wrong one, or no outcome in time: the level's letter, by post
            channel = _channel("both", account.has_email, account.has_mobile)
            reason += " (par courrier : pas d'appel possible à ce niveau)"
    return Decision(
        patient_id=account.patient_id, level=level, template=template,
        channel=channel, items=items, amount_due_cents=amount,
        offer_plan_first=level >= 1 and account.segment == "chronic", anomalies=(),
        exclusions=exclusions, reason=reason, recipient="guarantor" if account.is_minor else "patient",
        item_levels=levels, formal_due_cents=formal,
    )


def _asked(account: Account, items: Iterable[OpenItem]) -> int:
    """What a letter over these items asks (core.ledger.asked_cents, as plans and the agency ask): their sum
    less every credit and payment waiting in the patient's name, never below 0."""
    return asked_cents((i.amount_cents for i in items), account.credit_cents, account.pending_credit_cents)


def call_expired(call: CallFacts, as_of: date, rules: Rules) -> bool:
    """An open call with no outcome `call_within_days` after its list: its step falls back to the letter."""
    step = rules.ladder.level(call.level) if 1 <= call.level <= rules.ladder.max_level else None
    within = step.call_within_days or 0 if step is not None else 0  # a level no longer by phone: expired
    return call.status == "open" and (as_of - call.listed_on).days >= within


def open_call(account: Account, as_of: date, rules: Rules) -> CallFacts | None:
    """The patient's call still to make on as_of (listed, no outcome, not expired), if any."""
    return next((c for c in account.calls if c.status == "open" and c.listed_on <= as_of
                 and not call_expired(c, as_of, rules)), None)


def call_failed(account: Account, level: int, as_of: date, rules: Rules) -> bool:
    """Whether a call at this level already failed for the patient (wrong number, or no outcome in time)."""
    return any(c.level == level and (c.status in CALL_FAILED or call_expired(c, as_of, rules))
               for c in account.calls)


def call_wanted(account: Account, call: CallFacts, as_of: date, rules: Rules) -> bool:
    """Whether an open call is still to be made on as_of: nothing stops chasing the patient (a quiet day
    aside) and one of its invoices may still be chased."""
    patient = patient_facts(account)
    anomalies, blockers = _patient_stops(account, patient, as_of, rules)
    stops = anomalies + tuple(e for e in blockers if e.code != "quiet_day")
    if stops:
        return False
    _, remindable = _screen_items(account, patient, as_of, rules)
    return any(i.invoice_number in call.invoice_numbers for i in remindable)




def _channel(configured: str, has_email: bool, has_mobile: bool = False) -> str:
    """The level's means the recipient may be reached by (e-mail: an address and consent; SMS: a mobile and
    consent); the post when none is left.

    >>> _channel("sms+letter", has_email=True, has_mobile=False), _channel("email+sms", False, True)
    ('letter', 'sms')
    >>> _channel("email", has_email=False), _channel("both", has_email=True)
    ('letter', 'both')
    """
    if configured == PHONE:
        return PHONE
    usable = {"letter", *(["email"] if has_email else []), *(["sms"] if has_mobile else [])}
    means = channel_means(configured) & usable
    return channel_name(means or {"letter"})


def _nothing(account: Account, reason: str, exclusions: tuple[Exclusion, ...],
             anomalies: tuple[Exclusion, ...]) -> Decision:
    return Decision(
        patient_id=account.patient_id, level=None, template=None, channel=None, items=(),
        amount_due_cents=0, offer_plan_first=False, anomalies=anomalies, exclusions=exclusions, reason=reason,
    )
