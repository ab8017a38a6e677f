"""The reminder ladder: which letter is due for which patient account on a given day, and why not.

Decisions, documented once here (the rules files repeat them for the office):

* One letter per patient account lists every overdue, remindable item; its level follows the
  patient's previous letter (last level + 1). Level L is due when the OLDEST listed item is at least
  ``ladder.level(L).days`` past its due date and at least ``min_gap_days`` have passed since the last
  letter of any kind. Levels are never skipped: a debt 60 days old with no letter gets level 1.
* A new cycle starts when none of the overdue items was already overdue when the last letter went
  out (the old debt was paid, settled or handed over): the next letter is level 1 again, the minimum
  gap still applies. While items of a cycle that reached the mise en demeure remain remindable,
  nothing more is sent (the agency handover is decided elsewhere); later invoices wait with them.
* A share shifted onto the patient by an insurer's rejection is first announced by a neutral notice
  (level 0, ``rejection_notice`` template) as soon as the shift exists, whatever its due date; the
  notice takes precedence over a ladder letter due the same day, and a notice as last letter means
  the next ladder letter is level 1.
* A share still awaited from an insurer holds back the whole invoice.
* Amount asked = sum of the listed items - the patient's credits, floored at zero; no letter under
  ``min_total_cents``.
* ``has_email`` is the recipient's address (the guarantor's for a minor).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Iterable

import holidays

from recouvrement.core.plans import add_months
from recouvrement.money import format_eur
from recouvrement.rules import LadderLevel, Rules

NOTICE_LEVEL = 0
PENDING_PAYMENT_REASON = "un paiement à son nom attend le rapprochement"
QUEUED_PAYMENT_REASON = ("un paiement en attente de rapprochement pourrait être le sien (nom du payeur et montant "
                         "d'une facture concordent) : pas de relance avant la décision")


@dataclass(frozen=True)
class OpenItem:
    """One invoice's outstanding patient share."""

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


@dataclass(frozen=True)
class LetterHistory:
    level: int  # 0 for the rejection notice
    sent_on: date


@dataclass(frozen=True)
class Account:
    patient_id: str
    coverage: str
    items: tuple[OpenItem, ...]
    on_hold: bool = False
    has_email: bool = False
    is_minor: bool = False
    has_guarantor: bool = False
    pending_credit_cents: int = 0  # unmatched transfers / unallocated payments attributed to the patient
    queued_payment_may_be_theirs: bool = False  # a queued payment in nobody's name fits their name and a share
    segment: str = "one_off"
    last_letter: LetterHistory | None = None
    handed_over: bool = False
    credit_cents: int = 0  # known credit on the account (credit note, overpayment) deducted from the amount asked


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
    channel: str | None  # letter | email | both, resolved against the recipient's e-mail
    items: tuple[OpenItem, ...]
    amount_due_cents: int
    offer_plan_first: bool
    anomalies: tuple[Exclusion, ...]  # to flag to the accountant (also listed in exclusions)
    exclusions: tuple[Exclusion, ...]
    reason: str  # why this level, or why nothing
    recipient: str = "patient"  # patient | guarantor


def is_quiet_day(day: date) -> bool:
    """Sundays and French public holidays: no letter, no e-mail."""
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
    anomalies = _anomalies(account, rules)
    blockers = _account_blockers(account, as_of)
    screened, remindable = ((), ()) if anomalies else _screen_items(account, as_of, rules)
    exclusions = anomalies + blockers + screened
    if anomalies or blockers:
        return _nothing(account, (anomalies + blockers)[0].reason, exclusions, anomalies)
    notice = tuple(i for i in remindable if i.shifted_from and not i.notified)
    if notice:
        reason = "part rejetée par l'assureur : avis au patient avant toute relance"
        return _letter(account, rules, NOTICE_LEVEL, notice, reason, exclusions)
    overdue = tuple(i for i in remindable if i.due_date < as_of)
    if not overdue:
        return _nothing(account, "aucune facture échue à relancer", exclusions, anomalies)
    level, reason = _level_due(account, overdue, as_of, rules)
    if level is None:
        return _nothing(account, reason, exclusions, anomalies)
    return _letter(account, rules, level.level, overdue, reason, exclusions)


def _anomalies(account: Account, rules: Rules) -> tuple[Exclusion, ...]:
    coverage = account.coverage.lower()
    if coverage not in rules.exclusions.anomaly_coverages:
        return ()
    reason = (f"prise en charge {coverage.upper().replace('_', '/')} : une part patient est une anomalie "
              "de facturation, à signaler au comptable, jamais réclamée")
    return tuple(Exclusion(i.invoice_number, "exempt_coverage", reason) for i in account.items)


def _account_blockers(account: Account, as_of: date) -> tuple[Exclusion, ...]:
    checks = (
        (account.handed_over, "handed_over", "dossier transmis à l'agence de recouvrement"),
        (account.on_hold or account.segment == "on_hold", "on_hold", "relances suspendues pour ce patient"),
        (account.is_minor and not account.has_guarantor, "minor_without_guarantor",
         "patient mineur sans garant connu : aucun courrier"),
        (account.pending_credit_cents > 0, "pending_credit", PENDING_PAYMENT_REASON),
        (account.queued_payment_may_be_theirs, "queued_payment", QUEUED_PAYMENT_REASON),
        (is_quiet_day(as_of), "quiet_day", "dimanche ou jour férié : aucun envoi, rattrapage le jour ouvré suivant"),
    )
    return tuple(Exclusion(None, code, reason) for applies, code, reason in checks if applies)


def _screen_items(account: Account, as_of: date,
                  rules: Rules) -> tuple[tuple[Exclusion, ...], tuple[OpenItem, ...]]:
    """(one exclusion per excluded item, the remindable items), whatever their due date."""
    excluded, remindable = [], []
    for item in account.items:
        found = _item_exclusion(item, as_of, rules)
        if found is None:
            remindable.append(item)
        else:
            excluded.append(Exclusion(item.invoice_number, *found))
    return tuple(excluded), tuple(remindable)


def is_time_barred(issue_date: date, as_of: date, rules: Rules) -> bool:
    """Prescription: limitation_years from the invoice's issue date (29 February clamped to the 28th)."""
    return as_of >= add_months(issue_date, 12 * rules.exclusions.limitation_years)


def _item_exclusion(item: OpenItem, as_of: date, rules: Rules) -> tuple[str, str] | None:
    checks = (
        (item.amount_cents <= 0, "nothing_owed", "rien à payer sur cette facture"),
        (item.handed_over, "handed_over", "facture transmise à l'agence de recouvrement"),
        (item.in_plan, "in_plan", "facture dans un échéancier en cours"),
        (item.disputed, "disputed", "facture contestée : pas de relance pendant la contestation"),
        (item.insurer_awaited_cents > 0, "insurer_awaited",
         "une part est encore attendue de l'assurance : toute la facture attend"),
        (is_time_barred(item.issue_date, as_of, rules), "time_barred",
         f"créance prescrite : plus de {rules.exclusions.limitation_years} ans depuis la facture"),
    )
    return next(((code, reason) for applies, code, reason in checks if applies), None)


def _level_due(account: Account, overdue: tuple[OpenItem, ...], as_of: date,
               rules: Rules) -> tuple[LadderLevel | None, str]:
    ladder, last = rules.ladder, account.last_letter
    # An item already overdue when the last letter went out belongs to that letter's cycle.
    same_cycle = last is not None and any(i.due_date < last.sent_on for i in overdue)
    previous = last.level if same_cycle else 0
    if previous >= ladder.max_level:
        return None, "mise en demeure déjà envoyée : plus de relance, la suite relève de l'agence"
    if last is not None and (as_of - last.sent_on).days < ladder.min_gap_days:
        return None, (f"dernier courrier il y a {(as_of - last.sent_on).days} jours "
                      f"(au moins {ladder.min_gap_days} entre deux courriers)")
    level = ladder.level(previous + 1)
    oldest = max((as_of - i.due_date).days for i in overdue)
    if oldest < level.days:
        return None, f"relance {level.level} à {level.days} jours de retard ; la plus ancienne facture en a {oldest}"
    return level, f"la plus ancienne facture a {oldest} jours de retard : relance {level.level}"


def _letter(account: Account, rules: Rules, level: int, items: tuple[OpenItem, ...], reason: str,
            exclusions: tuple[Exclusion, ...]) -> Decision:
    amount = amount_due_cents(account, items)
    minimum = rules.exclusions.min_total_cents
    if amount < minimum:
        below = Exclusion(None, "below_minimum",
                          f"montant à demander ({format_eur(amount)}) inférieur au minimum de {format_eur(minimum)}")
        return _nothing(account, below.reason, exclusions + (below,), ())
    step = rules.ladder.rejection_notice if level == NOTICE_LEVEL else rules.ladder.level(level)
    return Decision(
        patient_id=account.patient_id, level=level, template=step.template,
        channel=_channel(step.channel, account.has_email), items=items, amount_due_cents=amount,
        offer_plan_first=level >= 1 and account.segment == "chronic", anomalies=(),
        exclusions=exclusions, reason=reason, recipient="guarantor" if account.is_minor else "patient",
    )


def amount_due_cents(account: Account, items: Iterable[OpenItem]) -> int:
    """Sum of the items less every credit in the patient's name, never negative, never more than owed."""
    owed = sum(max(0, i.amount_cents) for i in items)
    credits = max(0, account.credit_cents) + max(0, account.pending_credit_cents)
    return max(0, owed - credits)


def _channel(configured: str, has_email: bool) -> str:
    """E-mail only to a recipient who has an address; otherwise the post carries it."""
    return configured if has_email else "letter"


def _nothing(account: Account, reason: str, exclusions: tuple[Exclusion, ...],
             anomalies: tuple[Exclusion, ...]) -> Decision:
    return Decision(
        patient_id=account.patient_id, level=None, template=None, channel=None, items=(),
        amount_due_cents=0, offer_plan_first=False, anomalies=anomalies, exclusions=exclusions, reason=reason,
    )
