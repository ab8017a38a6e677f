"""Instalment arithmetic: propose a fee-free monthly plan to the cent, and tell whether it is kept.

>>> from datetime import date
>>> from recouvrement.rules import PlanRules
>>> [(i.due_date.isoformat(), i.amount_cents) for i in propose_plan(10000, date(2025, 1, 31), PlanRules(), months=3)]
[('2025-02-28', 3334), ('2025-03-31', 3333), ('2025-04-30', 3333)]
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Iterable

from recouvrement.rules import PlanRules, Rules


@dataclass(frozen=True)
class Instalment:
    due_date: date
    amount_cents: int


@dataclass(frozen=True)
class PlanStatus:
    state: str  # active | kept | broken | completed for an accepted plan; proposed | lapsed before
    paid_cents: int
    next_due: date | None  # first instalment not yet covered by the payments
    broken_on: date | None  # first day an instalment was more than grace_days late
    reason: str


@lru_cache(maxsize=1 << 16)
def add_months(day: date, months: int) -> date:
    """The same day of month `months` later, clamped to the month's end (31 Jan + 1 → 28/29 Feb); remembered
    (the ladder asks it for every open invoice's prescription and every patient's majority)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def propose_plan(debt_cents: int, start: date, rules: Rules | PlanRules,
                 months: int | None = None) -> tuple[Instalment, ...]:
    """Monthly instalments summing exactly to the debt, the longest the rules allow unless `months` is given."""
    plan_rules = rules.plans if isinstance(rules, Rules) else rules
    if debt_cents <= 0:
        raise ValueError(f"no plan for a debt of {debt_cents} cents")
    count = _checked_months(debt_cents, plan_rules, months)
    base, remainder = divmod(debt_cents, count)
    # The remainder cents go to the first instalments: the patient never pays more later than sooner.
    return tuple(
        Instalment(add_months(start, plan_rules.first_due_after_months + k), base + (1 if k < remainder else 0))
        for k in range(count)
    )


def _checked_months(debt_cents: int, rules: PlanRules, months: int | None) -> int:
    longest = max(1, min(rules.max_months, debt_cents // rules.min_instalment_cents))
    if months is None:
        return longest
    if not 1 <= months <= longest:
        raise ValueError(f"{months} months is not allowed for {debt_cents} cents: "
                         f"1 to {longest} (max {rules.max_months}, each at least {rules.min_instalment_cents})")
    return months


def plan_answer_deadline(proposed_on: date, rules: Rules | PlanRules) -> date:
    """The first day a proposed plan left unanswered has lapsed: the ladder resumes, it can no longer be accepted."""
    plan_rules = rules.plans if isinstance(rules, Rules) else rules
    return proposed_on + timedelta(days=plan_rules.answer_window_days)


def proposal_status(proposed_on: date, as_of: date, rules: Rules | PlanRules) -> PlanStatus:
    """Where a plan not (yet) accepted stands: waiting for the patient's answer, or lapsed. Never active or broken.

    >>> from recouvrement.rules import PlanRules
    >>> proposal_status(date(2025, 3, 1), date(2025, 3, 31), PlanRules()).state
    'lapsed'
    """
    deadline = plan_answer_deadline(proposed_on, rules)
    if as_of < deadline:
        return PlanStatus("proposed", 0, None, None,
                          f"proposé le {proposed_on.isoformat()}, en attente de réponse jusqu'au "
                          f"{(deadline - timedelta(days=1)).isoformat()}")
    return PlanStatus("lapsed", 0, None, None, f"resté sans réponse : caduc depuis le {deadline.isoformat()}")


def plan_status(instalments: Iterable[Instalment], payments: Iterable[tuple[date, int]],
                as_of: date, grace_days: int = 15) -> PlanStatus:
    """Where a plan stands on as_of: payments count cumulatively against the cumulative amount due."""
    schedule = sorted(instalments, key=lambda i: i.due_date)
    paid_by_date = sorted((d, c) for d, c in payments if d <= as_of)
    paid = sum(c for _, c in paid_by_date)
    total = sum(i.amount_cents for i in schedule)
    next_due = _first_uncovered(schedule, paid)
    broken = _first_break(schedule, paid_by_date, as_of, grace_days)
    if broken is not None:
        late, broken_on = broken
        return PlanStatus("broken", paid, next_due, broken_on,
                          f"échéance du {late.isoformat()} impayée plus de {grace_days} jours après son terme")
    if paid >= total:
        return PlanStatus("completed", paid, None, None, "échéancier soldé")
    fallen_due = [i for i in schedule if i.due_date <= as_of]
    if fallen_due and paid >= sum(i.amount_cents for i in fallen_due):
        return PlanStatus("kept", paid, next_due, None, "échéances respectées à ce jour")
    if fallen_due and next_due is not None:      # (paid < what fell due: an instalment is uncovered)
        return PlanStatus("active", paid, next_due, None,
                          f"échéance du {next_due.isoformat()} en retard, dans le délai de {grace_days} jours")
    return PlanStatus("active", paid, next_due, None, "aucune échéance encore arrivée à terme")


def _first_uncovered(schedule: list[Instalment], paid: int) -> date | None:
    due = 0
    for instalment in schedule:
        due += instalment.amount_cents
        if paid < due:
            return instalment.due_date
    return None


def _first_break(schedule: list[Instalment], payments: list[tuple[date, int]],
                 as_of: date, grace_days: int) -> tuple[date, date] | None:
    """(due date, day it broke) of the first instalment still unpaid once its grace period was over."""
    due = 0
    for instalment in schedule:
        due += instalment.amount_cents
        deadline = instalment.due_date + timedelta(days=grace_days)
        if as_of <= deadline:
            return None
        if sum(c for d, c in payments if d <= deadline) < due:
            return instalment.due_date, deadline + timedelta(days=1)
    return None
