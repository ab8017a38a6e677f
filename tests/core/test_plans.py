"""Instalment plans: exact fee-free arithmetic, monthly dates, and kept versus broken over time."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recouvrement.core.plans import Instalment, add_months, plan_status, propose_plan
from recouvrement.rules import Rules

RULES = Rules()


def test_remainder_cents_go_to_the_first_instalments():
    plan = propose_plan(10000, date(2025, 3, 10), RULES, months=3)
    assert [i.amount_cents for i in plan] == [3334, 3333, 3333]


def test_the_first_instalment_falls_one_month_after_the_proposal_clamped_to_month_end():
    plan = propose_plan(6000, date(2025, 1, 31), RULES, months=3)
    assert [i.due_date for i in plan] == [date(2025, 2, 28), date(2025, 3, 31), date(2025, 4, 30)]


def test_the_plan_is_as_long_as_allowed_while_each_instalment_stays_at_the_minimum():
    assert len(propose_plan(6000, date(2025, 3, 10), RULES)) == 4
    assert len(propose_plan(1_000_000, date(2025, 3, 10), RULES)) == 12


def test_a_debt_under_twice_the_minimum_is_paid_in_one_instalment():
    assert propose_plan(2999, date(2025, 3, 10), RULES) == (Instalment(date(2025, 4, 10), 2999),)
    assert len(propose_plan(700, date(2025, 3, 10), RULES)) == 1


def test_no_plan_for_a_debt_of_zero_or_less():
    with pytest.raises(ValueError):
        propose_plan(0, date(2025, 3, 10), RULES)


def test_a_requested_length_that_breaks_the_minimum_instalment_is_refused():
    with pytest.raises(ValueError):
        propose_plan(3000, date(2025, 3, 10), RULES, months=3)


@given(debt=st.integers(1, 10_000_000), start=st.dates(date(2020, 1, 1), date(2035, 12, 31)))
def test_a_proposed_plan_sums_to_the_debt_within_the_rules(debt, start):
    plan = propose_plan(debt, start, RULES)
    amounts = [i.amount_cents for i in plan]
    assert sum(amounts) == debt
    assert 1 <= len(plan) <= RULES.plans.max_months
    assert len(plan) == 1 or min(amounts) >= RULES.plans.min_instalment_cents
    assert max(amounts) - min(amounts) <= 1 and amounts == sorted(amounts, reverse=True)
    assert [i.due_date for i in plan] == [add_months(start, k + 1) for k in range(len(plan))]


# --- status over a simulated clock ------------------------------------------------------------

PLAN = propose_plan(9000, date(2025, 1, 15), RULES, months=3)  # 30 € on 15 Feb, 15 Mar, 15 Apr


def states(payments, start=date(2025, 1, 15), days=150):
    return {start + timedelta(n): plan_status(PLAN, payments, start + timedelta(n)) for n in range(days)}


def test_a_plan_paid_on_time_is_active_then_kept_then_completed():
    history = states([(date(2025, 2, 14), 3000), (date(2025, 3, 15), 3000), (date(2025, 4, 20), 3000)])
    assert history[date(2025, 2, 1)].state == "active"
    assert history[date(2025, 3, 1)].state == "kept"
    assert history[date(2025, 4, 16)].state == "active"  # late, within the grace days
    assert history[date(2025, 4, 20)].state == "completed"
    assert not any(s.state == "broken" for s in history.values())


def test_an_instalment_missed_by_more_than_the_grace_days_breaks_the_plan():
    history = states([(date(2025, 2, 14), 3000)])
    assert history[date(2025, 3, 30)].state == "active"
    broken = history[date(2025, 3, 31)]
    assert (broken.state, broken.broken_on, broken.next_due) == ("broken", date(2025, 3, 31), date(2025, 3, 15))


def test_payments_count_cumulatively_so_a_double_payment_covers_two_instalments():
    status = plan_status(PLAN, [(date(2025, 2, 10), 6000)], date(2025, 4, 1))
    assert (status.state, status.paid_cents, status.next_due) == ("kept", 6000, date(2025, 4, 15))


def test_a_late_catch_up_within_the_grace_days_keeps_the_plan():
    status = plan_status(PLAN, [(date(2025, 3, 2), 3000)], date(2025, 3, 10))
    assert status.state == "kept"


def test_payments_after_as_of_are_not_counted():
    status = plan_status(PLAN, [(date(2025, 2, 20), 3000)], date(2025, 2, 19))
    assert status.paid_cents == 0
