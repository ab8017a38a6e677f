"""Promises to pay and hold reviews, taken at the desk: may one be recorded, and is one in force on a day.

A promise is the patient's word that they will pay by a date. Through that day the ladder sends them
nothing; the day after, if they still owe, it resumes by itself (nothing to undo). A promise is not a
plan: one date, at most ``MAX_PROMISE_DAYS`` ahead; further than that, the desk proposes a plan.

>>> from datetime import date
>>> promise_refusal(date(2025, 6, 20), date(2025, 6, 2), owed_cents=1000, pending_until=None) is None
True
>>> promise_refusal(date(2025, 6, 2), date(2025, 6, 2), owed_cents=1000, pending_until=None)
"la date promise doit être après aujourd'hui (02/06/2025)"
>>> promise_in_force([Promise(date(2025, 6, 2), date(2025, 6, 20))], date(2025, 6, 21)) is None
True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterable

MAX_PROMISE_DAYS = 60
MAX_REVIEW_DAYS = 366


@dataclass(frozen=True)
class Promise:
    made_on: date
    pay_by: date
    amount_cents: int | None = None
    cancelled_on: date | None = None
    id: int | None = None

    def in_force(self, as_of: date) -> bool:
        """Made by as_of, not yet past its date, not cancelled by then."""
        cancelled = self.cancelled_on is not None and self.cancelled_on <= as_of
        return self.made_on <= as_of <= self.pay_by and not cancelled


def promise_in_force(promises: Iterable[Promise], as_of: date) -> Promise | None:
    """The promise that holds the ladder on as_of (the latest date if several), else None."""
    found = [p for p in promises if p.in_force(as_of)]
    return max(found, key=lambda p: p.pay_by) if found else None


def promise_refusal(pay_by: date, today: date, *, owed_cents: int, pending_until: date | None,
                    amount_cents: int | None = None) -> str | None:
    """Why this promise may not be recorded today (French, one line), or None when it may."""
    if owed_cents <= 0:
        return "le patient ne doit rien : il n'y a rien à promettre"
    if pay_by <= today:
        return f"la date promise doit être après aujourd'hui ({today:%d/%m/%Y})"
    if pay_by > today + timedelta(days=MAX_PROMISE_DAYS):
        return (f"une promesse va au plus à {MAX_PROMISE_DAYS} jours (le {today + timedelta(days=MAX_PROMISE_DAYS):%d/%m/%Y}) : "
                "au-delà, proposez un échéancier")
    if pending_until is not None:
        return f"une promesse est déjà en cours jusqu'au {pending_until:%d/%m/%Y}"
    if amount_cents is not None and not 0 < amount_cents <= owed_cents:
        return "le montant promis doit être positif et ne pas dépasser ce que le patient doit"
    return None


def review_refusal(review_on: date, today: date) -> str | None:
    """Why a hold's review date is not acceptable (French), or None."""
    if review_on <= today:
        return f"la date de revue doit être après aujourd'hui ({today:%d/%m/%Y})"
    if review_on > today + timedelta(days=MAX_REVIEW_DAYS):
        return "la date de revue doit être dans l'année qui vient"
    return None
