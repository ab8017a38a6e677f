"""One eligibility rule for the ladder, the plans and the agency: every fact judged on the day asked."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from recouvrement.core.eligibility import (CHECKS, Action, Invoice, Patient, PlanFacts, Span, refusals, verdict)
from recouvrement.rules import Rules

RULES = Rules()
DAY = date(2026, 3, 16)
ACTIONS = list(Action)


def bill(**kw) -> Invoice:
    patient = kw.pop("patient", Patient())
    return Invoice(kw.pop("number", "F1"), kw.pop("issue_date", date(2026, 1, 10)), kw.pop("amount_cents", 4000),
                   patient=patient, mise_en_demeure_on=kw.pop("mise_en_demeure_on", date(2026, 2, 1)), **kw)


def code(item: Invoice, action: Action, day: date = DAY) -> str | None:
    found = verdict(item, action, day, RULES)
    return None if found is None else found.code


@pytest.mark.parametrize("action", ACTIONS)
def test_an_ordinary_overdue_invoice_may_be_chased_proposed_and_handed_over(action):
    assert code(bill(), action) is None


@pytest.mark.parametrize("action", ACTIONS)
def test_a_hold_that_starts_later_stops_nothing_yet(action):
    held = Patient(holds=(Span(date(2026, 4, 1)),))
    assert code(bill(patient=held), action) is None


@pytest.mark.parametrize("action", ACTIONS)
def test_a_hold_in_force_stops_letters_proposals_and_the_agency_alike(action):
    held = Patient(holds=(Span(date(2026, 3, 1), date(2026, 4, 1)),))
    assert code(bill(patient=held), action) == "on_hold"


@pytest.mark.parametrize("action", ACTIONS)
def test_a_hold_released_on_the_day_no_longer_stops_anything(action):
    held = Patient(holds=(Span(date(2026, 3, 1), DAY),))
    assert code(bill(patient=held), action) is None


@pytest.mark.parametrize("action", [Action.CHASE, Action.HAND_OVER])
def test_a_promise_counts_from_its_start_to_its_review_date(action):
    promised = Patient(promises=(Span(date(2026, 3, 10), date(2026, 3, 20)),))
    assert code(bill(patient=promised), action, date(2026, 3, 9)) is None
    assert code(bill(patient=promised), action, date(2026, 3, 19)) == "promise"
    assert code(bill(patient=promised), action, date(2026, 3, 20)) is None


@pytest.mark.parametrize("action", ACTIONS)
def test_a_dispute_counts_from_its_receipt_to_its_closing(action):
    disputed = bill(disputes=(Span(date(2026, 3, 20), date(2026, 4, 10)),))
    assert code(disputed, action) is None
    assert code(disputed, action, date(2026, 3, 20)) == "disputed"
    assert code(disputed, action, date(2026, 4, 10)) is None


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("coverage", ["css", "ame", "at_mp", "CSS"])
def test_an_exempt_coverage_is_never_chased_proposed_or_handed_over(action, coverage):
    assert code(bill(patient=Patient(coverage=coverage)), action) == "exempt_coverage"


@pytest.mark.parametrize("action", ACTIONS)
def test_an_insurer_share_still_awaited_holds_the_invoice_for_every_action(action):
    assert code(bill(insurer_awaited_cents=700), action) == "insurer_awaited"


@pytest.mark.parametrize("action", ACTIONS)
def test_a_time_barred_debt_is_refused_from_its_limitation_day(action):
    old = bill(issue_date=date(2024, 3, 16))
    assert code(old, action, date(2026, 3, 15)) is None
    assert code(old, action, date(2026, 3, 16)) == "time_barred"


@pytest.mark.parametrize("action", ACTIONS)
def test_an_invoice_handed_over_is_out_for_good_from_its_handover_day(action):
    handed = bill(handed_over_on=date(2026, 3, 20))
    assert code(handed, action) is None
    assert code(handed, action, date(2026, 3, 20)) == "handed_over"


@pytest.mark.parametrize("action", ACTIONS)
def test_a_minor_without_a_guarantor_is_refused_and_of_age_is_not(action):
    child = Patient(birth_date=date(2008, 3, 17))
    assert code(bill(patient=child), action) == "minor_without_guarantor"
    assert code(bill(patient=replace(child, has_guarantor=True)), action) is None
    assert code(bill(patient=child), action, date(2026, 3, 17)) is None


@pytest.mark.parametrize("action", ACTIONS)
def test_a_payment_waiting_in_the_queue_that_may_be_theirs_refuses_every_action(action):
    assert code(bill(patient=Patient(pending_payment=True)), action) == "pending_credit"
    assert code(bill(patient=Patient(queued_payment_may_be_theirs=True)), action) == "queued_payment"


@pytest.mark.parametrize("action", ACTIONS)
def test_an_accepted_plan_holds_its_invoices_from_acceptance_to_its_end(action):
    plan = PlanFacts(date(2026, 3, 1), frozenset({"F1"}), accepted_on=date(2026, 3, 10), ended_on=date(2026, 5, 1))
    planned = bill(patient=Patient(plans=(plan,)))
    assert code(planned, action, date(2026, 4, 30)) == "in_plan"
    assert code(planned, action, date(2026, 5, 1)) is None


def test_an_accepted_plan_keeps_the_whole_patient_from_the_agency_but_not_from_the_ladder():
    plan = PlanFacts(date(2026, 3, 1), frozenset({"F9"}), accepted_on=date(2026, 3, 2))
    other = bill(patient=Patient(plans=(plan,)))
    assert code(other, Action.CHASE) is None and code(other, Action.PROPOSE) is None
    assert code(other, Action.HAND_OVER) == "in_plan"


def test_a_promise_does_not_stop_a_plan_being_proposed():
    promised = Patient(promises=(Span(date(2026, 3, 10), date(2026, 3, 20)),))
    assert code(bill(patient=promised), Action.PROPOSE) is None


def test_a_proposed_plan_pauses_the_ladder_and_the_agency_for_its_window_but_not_a_new_proposal():
    window = RULES.plans.answer_window_days
    proposed = bill(patient=Patient(plans=(PlanFacts(date(2026, 3, 1), frozenset({"F1"})),)))
    assert code(proposed, Action.CHASE) == code(proposed, Action.HAND_OVER) == "plan_proposed"
    assert code(proposed, Action.PROPOSE) is None
    lapsed = date(2026, 3, 1).toordinal() + window
    assert code(proposed, Action.CHASE, date.fromordinal(lapsed)) is None


def test_a_proposal_cancelled_before_its_window_ends_pauses_nothing_after():
    cancelled = PlanFacts(date(2026, 3, 1), frozenset({"F1"}), ended_on=date(2026, 3, 5))
    assert code(bill(patient=Patient(plans=(cancelled,))), Action.CHASE) is None


def test_the_agency_waits_for_the_mise_en_demeure_to_be_old_enough():
    days = RULES.agency.after_level3_days
    recent = bill(mise_en_demeure_on=date(2026, 3, 1))
    assert code(recent, Action.HAND_OVER, date.fromordinal(date(2026, 3, 1).toordinal() + days - 1)) == \
        "level3_too_recent"
    assert code(recent, Action.HAND_OVER, date.fromordinal(date(2026, 3, 1).toordinal() + days)) is None
    assert code(bill(mise_en_demeure_on=None), Action.HAND_OVER) == "no_mise_en_demeure"
    assert code(bill(mise_en_demeure_on=None), Action.CHASE) is None


def test_refusals_lists_every_reason_in_one_order():
    item = bill(insurer_awaited_cents=100, disputes=(Span(date(2026, 1, 1)),),
                patient=Patient(holds=(Span(date(2026, 1, 1)),)))
    assert [r.code for r in refusals(item, "chase", DAY, RULES)] == ["on_hold", "disputed", "insurer_awaited"]


def test_no_reason_names_a_care_or_echoes_a_free_text():
    from recouvrement.core.privacy import scan_text
    item = bill(issue_date=date(2020, 1, 1), insurer_awaited_cents=1, disputes=(Span(date(2026, 1, 1)),),
                handed_over_on=date(2026, 1, 1), mise_en_demeure_on=date(2026, 3, 10),
                patient=Patient(coverage="at_mp", holds=(Span(date(2026, 1, 1)),),
                                promises=(Span(date(2026, 1, 1), date(2026, 4, 1)),),
                                plans=(PlanFacts(date(2026, 3, 1), frozenset({"F1"})),
                                       PlanFacts(date(2026, 3, 1), frozenset({"F1"}), date(2026, 3, 2))),
                                birth_date=date(2015, 1, 1), pending_payment=True,
                                queued_payment_may_be_theirs=True))
    found = refusals(item, Action.HAND_OVER, DAY, RULES) + refusals(item, Action.CHASE, DAY, RULES)
    assert {r.code for r in found} == {c for c, _, _ in CHECKS} - {"nothing_owed", "no_mise_en_demeure"}
    assert all(r.reason and not scan_text(r.reason) for r in found)
