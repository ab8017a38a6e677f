"""Patient segments: one-off, chronic or on hold, each with the reasons that put the patient there."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from recouvrement.core.plans import add_months
from recouvrement.rules import Rules

ONE_OFF, CHRONIC, ON_HOLD = "one_off", "chronic", "on_hold"


@dataclass(frozen=True)
class PatientHistory:
    """What the segment is judged on: plain dates, no invoice content."""

    invoices_at_level2_dates: tuple[date, ...] = ()  # the day each invoice reached reminder level 2
    broken_plan_dates: tuple[date, ...] = ()  # the day each instalment plan broke
    on_hold: bool = False


@dataclass(frozen=True)
class SegmentResult:
    segment: str  # one_off | chronic | on_hold
    reasons: tuple[str, ...]


def segment(history: PatientHistory, as_of: date, rules: Rules) -> SegmentResult:
    """The patient's segment on as_of; a hold wins over everything, and its own reason stays internal."""
    if history.on_hold:
        return SegmentResult(ON_HOLD, ("suspension des relances en cours",))
    reasons = _chronic_reasons(history, as_of, rules)
    if reasons:
        return SegmentResult(CHRONIC, reasons)
    return SegmentResult(ONE_OFF, ("pas de difficulté de paiement répétée",))


def _chronic_reasons(history: PatientHistory, as_of: date, rules: Rules) -> tuple[str, ...]:
    policy = rules.segments
    reasons = []
    level2 = _count_within(history.invoices_at_level2_dates, as_of, policy.level2_window_months)
    if level2 >= policy.min_level2_invoices:
        reasons.append(f"{level2} factures au niveau 2 de relance sur les {policy.level2_window_months} derniers mois")
    broken = _count_within(history.broken_plan_dates, as_of, policy.broken_plan_window_months)
    if broken >= policy.min_broken_plans:
        reasons.append(f"{broken} échéancier(s) non respecté(s) "
                       f"sur les {policy.broken_plan_window_months} derniers mois")
    return tuple(reasons)


def _count_within(dates: tuple[date, ...], as_of: date, months: int) -> int:
    """Events in the window (as_of - months, as_of]; future-dated events are not counted."""
    start = add_months(as_of, -months)
    return sum(1 for d in dates if start < d <= as_of)
