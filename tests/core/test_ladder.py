"""The reminder ladder: levels, timing, quiet days, grouping, credits and every exclusion."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from recouvrement.core.ladder import (
    Account, LetterHistory, Listing, OpenItem, decide, due_reminders, handover_ready, is_quiet_day,
)
from recouvrement.rules import Rules

RULES = Rules()
TODAY = date(2025, 3, 12)  # a Wednesday, not a holiday


def item(number: str = "F2025-0001", days_overdue: int = 20, amount: int = 4000, **kw) -> OpenItem:
    due = TODAY - timedelta(days=days_overdue)
    return OpenItem(number, kw.pop("issue_date", due - timedelta(days=30)), due, amount, **kw)


def account(*items: OpenItem, **kw) -> Account:
    return Account("P001", kw.pop("coverage", "standard"), items or (item(),), **kw)


def codes(decision) -> set[str]:
    return {e.code for e in decision.exclusions}


# --- quiet days -------------------------------------------------------------------------------

def test_sundays_and_french_public_holidays_are_quiet_days():
    assert is_quiet_day(date(2025, 3, 16))  # Sunday
    assert is_quiet_day(date(2025, 7, 14)) and is_quiet_day(date(2025, 12, 25)) and is_quiet_day(date(2026, 1, 1))
    assert not is_quiet_day(date(2025, 3, 15))  # Saturday: the post works


def test_nothing_is_sent_on_a_public_holiday_and_the_next_working_day_catches_up():
    overdue_item = OpenItem("F1", date(2025, 11, 1), date(2025, 12, 17), 4000)  # level 1 falls on 1 January
    patient = account(overdue_item)
    assert due_reminders([patient], date(2026, 1, 1), RULES) == []
    assert decide(patient, date(2026, 1, 1), RULES).exclusions[0].code == "quiet_day"
    assert [d.level for d in due_reminders([patient], date(2026, 1, 2), RULES)] == [1]


# --- the ladder over time ---------------------------------------------------------------------

def after_letter(patient: Account, decision, day: date) -> Account:
    """The account once the letter went out: each listed invoice's history and the last letter updated."""
    own = dict(zip((i.invoice_number for i in decision.items), decision.item_levels))
    items = tuple(replace(i, history=i.history + (Listing(own[i.invoice_number], day),),
                          notified=i.notified or decision.level == 0)
                  if i.invoice_number in own else i for i in patient.items)
    return replace(patient, items=items, last_letter=LetterHistory(decision.level, day))


def simulate(patient: Account, start: date, days: int) -> list[tuple[int, date]]:
    """Run the ladder day by day, feeding each sent letter back into the account."""
    return [(level, day) for day, level, _ in letters_over(patient, start, days)]


def letters_over(patient: Account, start: date, days: int) -> list[tuple[date, int, dict[str, int]]]:
    """(day, letter level, {invoice: its own level in the letter}) of every letter sent, day by day."""
    sent = []
    for offset in range(days):
        today = start + timedelta(days=offset)
        for decision in due_reminders([patient], today, RULES):
            sent.append((today, decision.level, dict(zip((i.invoice_number for i in decision.items),
                                                         decision.item_levels))))
            patient = after_letter(patient, decision, today)
    return sent


def test_levels_climb_one_to_three_on_the_right_days_skipping_sunday_and_14_july():
    due = date(2025, 6, 13)
    patient = account(OpenItem("F1", date(2025, 5, 14), due, 8000))
    sent = simulate(patient, due, 90)
    # Level 2 is due on Sunday 13 July; 14 July is a holiday; level 3 then waits the 14-day gap.
    assert sent == [(1, date(2025, 6, 28)), (2, date(2025, 7, 15)), (3, date(2025, 7, 29))]


def test_no_letter_is_ever_sent_on_a_quiet_day_nor_sooner_than_the_minimum_gap():
    for due in (date(2025, 6, 13), date(2025, 12, 10), date(2025, 4, 5)):
        sent = simulate(account(OpenItem("F1", due - timedelta(days=30), due, 8000)), due, 90)
        assert [level for level, _ in sent] == [1, 2, 3]
        assert not any(is_quiet_day(day) for _, day in sent)
        assert all((b - a).days >= RULES.ladder.min_gap_days for (_, a), (_, b) in zip(sent, sent[1:]))


def test_a_level_is_not_sent_before_its_days_past_due():
    assert decide(account(item(days_overdue=14)), TODAY, RULES).level is None
    assert decide(account(item(days_overdue=15)), TODAY, RULES).level == 1


def test_levels_are_never_skipped_even_for_an_old_debt():
    assert decide(account(item(days_overdue=80)), TODAY, RULES).level == 1


def test_the_next_level_waits_the_minimum_gap_after_the_last_letter():
    sent = TODAY - timedelta(days=13)
    last = LetterHistory(1, sent)
    listed = item(days_overdue=40, history=(Listing(1, sent),))
    assert decide(account(listed, last_letter=last), TODAY, RULES).level is None
    sent = TODAY - timedelta(days=14)
    later = LetterHistory(1, sent)
    listed = item(days_overdue=40, history=(Listing(1, sent),))
    assert decide(account(listed, last_letter=later), TODAY, RULES).level == 2


def test_nothing_follows_the_mise_en_demeure():
    sent = TODAY - timedelta(days=60)
    last = LetterHistory(3, sent)
    listed = item(days_overdue=120, history=(Listing(1, sent - timedelta(days=30)), Listing(2, sent - timedelta(days=15)),
                                             Listing(3, sent)))
    decision = decide(account(listed, last_letter=last), TODAY, RULES)
    assert decision.level is None and codes(decision) == {"mise_en_demeure_sent"}


def test_a_new_invoice_after_a_settled_cycle_starts_again_at_level_one():
    last = LetterHistory(3, TODAY - timedelta(days=60))
    assert decide(account(item(days_overdue=20), last_letter=last), TODAY, RULES).level == 1


def test_the_mise_en_demeure_is_a_postal_letter_with_an_email_copy_when_possible():
    last = LetterHistory(2, TODAY - timedelta(days=15))
    listed = item(days_overdue=50, history=(Listing(1, TODAY - timedelta(days=30)), Listing(2, last.sent_on)))
    with_email = decide(account(listed, last_letter=last, has_email=True), TODAY, RULES)
    without = decide(account(listed, last_letter=last), TODAY, RULES)
    assert (with_email.template, with_email.channel) == ("mise_en_demeure", "both")
    assert without.channel == "letter"


def test_an_email_reminder_falls_back_to_a_letter_without_an_address():
    assert decide(account(has_email=True), TODAY, RULES).channel == "email"
    assert decide(account(), TODAY, RULES).channel == "letter"


# --- grouping and amounts ---------------------------------------------------------------------

def test_one_letter_lists_all_the_overdue_invoices_and_the_oldest_sets_the_level():
    items = (item("F1", days_overdue=16, amount=3000), item("F2", days_overdue=3, amount=2500),
             item("F3", days_overdue=-5, amount=1000))
    decision = decide(account(*items), TODAY, RULES)
    assert decision.level == 1
    assert [i.invoice_number for i in decision.items] == ["F1", "F2"]
    assert decision.amount_due_cents == 5500


def test_credits_reduce_the_amount_asked():
    assert decide(account(item(amount=4000), credit_cents=1500), TODAY, RULES).amount_due_cents == 2500


def test_a_letter_under_the_minimum_total_after_credits_is_not_sent():
    decision = decide(account(item(amount=4000), credit_cents=3600), TODAY, RULES)
    assert decision.level is None and "below_minimum" in codes(decision)


@given(amounts=st.lists(st.integers(-5000, 500_000), min_size=1, max_size=6),
       credit=st.integers(0, 1_000_000))
def test_the_amount_asked_is_never_negative_nor_more_than_the_items(amounts, credit):
    items = tuple(item(f"F{n}", amount=a) for n, a in enumerate(amounts))
    decision = decide(account(*items, credit_cents=credit), TODAY, RULES)
    assert 0 <= decision.amount_due_cents <= sum(i.amount_cents for i in decision.items)


def test_a_chronic_patient_is_offered_a_plan_from_the_first_reminder():
    assert decide(account(segment="chronic"), TODAY, RULES).offer_plan_first
    assert not decide(account(), TODAY, RULES).offer_plan_first


# --- rejection notice -------------------------------------------------------------------------

def test_a_share_rejected_by_the_insurer_is_first_announced_by_a_neutral_notice():
    shifted = item("F9", days_overdue=-29, shifted_from="amc", notified=False)
    decision = decide(account(shifted), TODAY, RULES)
    assert (decision.level, decision.template) == (0, "avis_rejet")
    # The notice lists the share with the deadline it gives: 30 days from the notice.
    assert decision.items == (replace(shifted, due_date=TODAY + timedelta(days=30)),)


def test_after_the_notice_the_ladder_counts_from_the_shifted_due_date():
    notified = item("F9", days_overdue=14, shifted_from="amo", notified=True)
    notice = LetterHistory(0, TODAY - timedelta(days=44))
    assert decide(account(notified, last_letter=notice), TODAY, RULES).level is None
    later = replace(notified, due_date=notified.due_date - timedelta(days=1))
    assert decide(account(later, last_letter=notice), TODAY, RULES).level == 1


# --- exclusions -------------------------------------------------------------------------------

def test_a_css_ame_or_at_mp_patient_share_is_an_anomaly_never_chased():
    for coverage in ("css", "ame", "at_mp"):
        decision = decide(account(coverage=coverage), TODAY, RULES)
        assert decision.level is None
        assert [a.code for a in decision.anomalies] == ["exempt_coverage"]


def test_an_invoice_with_a_share_awaited_from_an_insurer_waits_whole():
    decision = decide(account(item(insurer_awaited_cents=1200)), TODAY, RULES)
    assert decision.level is None and codes(decision) == {"insurer_awaited"}


def test_a_disputed_invoice_is_left_out_of_the_letter():
    decision = decide(account(item("F1", disputed=True), item("F2")), TODAY, RULES)
    assert [i.invoice_number for i in decision.items] == ["F2"]
    assert [(e.invoice_number, e.code) for e in decision.exclusions] == [("F1", "disputed")]


def test_a_patient_on_hold_gets_nothing():
    assert "on_hold" in codes(decide(account(on_hold=True), TODAY, RULES))
    assert decide(account(segment="on_hold"), TODAY, RULES).level is None


def test_a_promise_to_pay_holds_the_ladder_through_its_day_and_not_the_day_after():
    promised = account(promised_until=TODAY + timedelta(days=7))
    assert decide(account(), TODAY, RULES).level == 1
    assert decide(promised, TODAY, RULES).level is None and "promise" in codes(decide(promised, TODAY, RULES))
    assert decide(promised, TODAY + timedelta(days=7), RULES).level is None
    assert decide(promised, TODAY + timedelta(days=8), RULES).level == 1


def test_a_debt_past_the_limitation_period_is_not_chased():
    old = item(issue_date=date(2023, 3, 12), days_overdue=600)
    assert codes(decide(account(old), TODAY, RULES)) == {"time_barred"}
    recent = item(issue_date=date(2023, 3, 13), days_overdue=600)
    assert decide(account(recent), TODAY, RULES).level == 1


def test_an_item_in_an_instalment_plan_is_not_chased():
    assert codes(decide(account(item(in_plan=True)), TODAY, RULES)) == {"in_plan"}


def test_an_item_or_account_handed_over_to_the_agency_is_not_chased():
    assert codes(decide(account(item(handed_over=True)), TODAY, RULES)) == {"handed_over"}
    assert codes(decide(account(handed_over=True), TODAY, RULES)) == {"handed_over"}


def test_a_payment_awaiting_matching_holds_the_reminder():
    decision = decide(account(pending_credit_cents=2000), TODAY, RULES)
    assert decision.level is None
    assert decision.reason == "un paiement à son nom attend le rapprochement"


def test_a_minor_without_guarantor_gets_no_letter():
    assert "minor_without_guarantor" in codes(decide(account(is_minor=True), TODAY, RULES))


def test_a_minor_s_letter_goes_to_the_guarantor():
    decision = decide(account(is_minor=True, has_guarantor=True), TODAY, RULES)
    assert (decision.level, decision.recipient) == (1, "guarantor")


# --- each invoice climbs on its own -----------------------------------------------------------

def test_over_a_quarter_each_invoice_climbs_its_own_ladder_whatever_day_it_falls_due():
    start = date(2025, 9, 1)
    patient = account(OpenItem("F1", start - timedelta(days=30), start, 4000),
                      OpenItem("F2", start, start + timedelta(days=20), 2500),
                      OpenItem("F3", start + timedelta(days=30), start + timedelta(days=60), 1800))
    assert letters_over(patient, start, 92) == [
        (date(2025, 9, 16), 1, {"F1": 1}),
        (date(2025, 10, 1), 2, {"F1": 2, "F2": 1}),            # F2, 10 days overdue: also due, gently
        (date(2025, 10, 16), 3, {"F1": 3, "F2": 1}),           # the mise en demeure demands F1 alone
        (date(2025, 10, 30), 2, {"F2": 2}),                    # F1 is done: the agency's, never listed again
        (date(2025, 11, 13), 3, {"F2": 3, "F3": 1}),
        (date(2025, 12, 1), 2, {"F3": 2}),
    ]


def test_an_invoice_enters_the_formal_part_of_a_level_only_after_the_level_below_and_its_gap():
    start = date(2025, 9, 1)
    due_dates = [start + timedelta(days=k) for k in (0, 9, 17, 26, 38, 51)]
    patient = account(*(OpenItem(f"F{k}", due - timedelta(days=30), due, 1000 + k) for k, due in enumerate(due_dates)))
    seen: dict[str, list[tuple[date, int]]] = {}
    for day, level, own in letters_over(patient, start, 120):
        assert level == max(own.values())
        for number, its_level in own.items():
            history = seen.setdefault(number, [])
            if its_level >= 2 and its_level == level:  # in the formal part: the level below, at least 14 days before
                assert any(lvl == its_level - 1 and (day - on).days >= RULES.ladder.min_gap_days
                           for on, lvl in history)
            assert its_level <= max((lvl for _, lvl in history), default=0) + 1  # never a level skipped
            history.append((day, its_level))
    assert {number: max(lvl for _, lvl in history) for number, history in seen.items()} == {
        f"F{k}": 3 for k in range(6)}


def test_a_newer_overdue_invoice_is_listed_apart_at_its_own_level_with_no_formal_demand():
    old = item("F1", days_overdue=50, amount=3000,
               history=(Listing(1, TODAY - timedelta(days=35)), Listing(2, TODAY - timedelta(days=20))))
    new = item("F2", days_overdue=7, amount=2000)
    decision = decide(account(old, new, last_letter=LetterHistory(2, TODAY - timedelta(days=20)), credit_cents=500),
                      TODAY, RULES)
    assert (decision.level, decision.template) == (3, "mise_en_demeure")
    assert [i.invoice_number for i in decision.formal_items] == ["F1"]
    assert [(i.invoice_number, level) for i, level in decision.also_due] == [("F2", 1)]
    assert (decision.formal_due_cents, decision.amount_due_cents) == (2500, 4500)  # credits off the formal part


def test_the_agency_may_take_an_invoice_only_fifteen_days_after_its_own_mise_en_demeure():
    history = (Listing(1, date(2025, 1, 2)), Listing(2, date(2025, 1, 16)), Listing(3, date(2025, 2, 1)))
    assert not handover_ready(history, date(2025, 2, 15), RULES)
    assert handover_ready(history, date(2025, 2, 16), RULES)
    assert not handover_ready(history[:2] + (Listing(1, date(2025, 2, 1)),), date(2025, 3, 30), RULES)


# --- the rejection notice's deadline ----------------------------------------------------------

def test_no_ladder_letter_comes_before_the_deadline_the_rejection_notice_gave():
    # The insurer rejected long ago (the shifted share's due date is already past) but the notice goes today.
    shifted = OpenItem("F9", TODAY - timedelta(days=90), TODAY - timedelta(days=20), 4000, shifted_from="amo",
                       notified=False)
    sent = letters_over(account(shifted), TODAY, 60)
    deadline = TODAY + timedelta(days=RULES.ladder.rejection_notice.due_after_days)
    assert sent[0] == (TODAY, 0, {"F9": 0})
    assert sent[1][1] == 1 and sent[1][0] > deadline
    assert sent[1][0] == deadline + timedelta(days=RULES.ladder.level(1).days)


def test_the_ladder_counts_from_the_rejection_notice_deadline():
    notice = Listing(0, TODAY - timedelta(days=44))  # deadline: 14 days ago
    shifted = item("F9", days_overdue=40, shifted_from="amc", history=(notice,))
    patient = account(shifted, last_letter=LetterHistory(0, notice.sent_on))
    assert decide(patient, TODAY, RULES).level is None
    assert decide(patient, TODAY + timedelta(days=1), RULES).level == 1


# --- a proposed plan --------------------------------------------------------------------------

def test_a_proposed_plan_pauses_the_ladder_for_its_answer_window_then_the_ladder_resumes():
    window = RULES.plans.answer_window_days
    waiting = decide(account(item(plan_proposed_on=TODAY - timedelta(days=window - 1))), TODAY, RULES)
    assert waiting.level is None and codes(waiting) == {"plan_proposed"}
    assert decide(account(item(plan_proposed_on=TODAY - timedelta(days=window))), TODAY, RULES).level == 1


@settings(deadline=None)
@given(amounts=st.lists(st.integers(1, 500_000), min_size=1, max_size=6),
       stages=st.lists(st.integers(0, 3), min_size=6, max_size=6), credit=st.integers(0, 1_000_000))
def test_nobody_is_asked_more_than_they_owe_net_of_credits_and_the_formal_part_is_within_it(amounts, stages, credit):
    def history(stage: int) -> tuple[Listing, ...]:
        return tuple(Listing(level, TODAY - timedelta(days=15 * (4 - level))) for level in range(1, stage + 1))
    items = tuple(item(f"F{n}", days_overdue=10 + 20 * n, amount=a, history=history(stages[n]))
                  for n, a in enumerate(amounts))
    decision = decide(account(*items, credit_cents=credit, last_letter=LetterHistory(1, TODAY - timedelta(days=15))),
                      TODAY, RULES)
    owed = max(0, sum(amounts) - credit)
    assert 0 <= decision.formal_due_cents <= decision.amount_due_cents <= owed
    if decision.level:
        assert decision.formal_items and all(own <= decision.level for own in decision.item_levels)


def test_an_sms_level_reaches_only_a_consenting_mobile_otherwise_the_post():
    rules = replace(RULES, ladder=replace(RULES.ladder, levels=(
        replace(RULES.ladder.level(1), channel="sms"), *RULES.ladder.levels[1:])))
    assert decide(account(has_mobile=True), TODAY, rules).channel == "sms"
    assert decide(account(has_email=True), TODAY, rules).channel == "letter"


def test_sms_plus_letter_without_sms_consent_is_the_letter_alone():
    rules = replace(RULES, ladder=replace(RULES.ladder, levels=(
        replace(RULES.ladder.level(1), channel="letter+sms"), *RULES.ladder.levels[1:])))
    assert decide(account(has_mobile=True), TODAY, rules).channel == "letter+sms"
    assert decide(account(has_mobile=False), TODAY, rules).channel == "letter"


def test_email_plus_sms_keeps_the_means_the_patient_consented_to():
    rules = replace(RULES, ladder=replace(RULES.ladder, levels=(
        replace(RULES.ladder.level(1), channel="email+sms"), *RULES.ladder.levels[1:])))
    assert decide(account(has_email=True, has_mobile=True), TODAY, rules).channel == "email+sms"
    assert decide(account(has_email=False, has_mobile=True), TODAY, rules).channel == "sms"
    assert decide(account(), TODAY, rules).channel == "letter"


def test_the_same_patient_facts_are_judged_by_each_rules_given_in_turn():
    # The patient's refusals are remembered per facts and day: never across two rules objects.
    exempt = Rules(exclusions=replace(RULES.exclusions, anomaly_coverages=("standard",)))
    for _ in range(2):
        assert decide(account(), TODAY, RULES).level == 1
        assert "exempt_coverage" in codes(decide(account(), TODAY, exempt))
        assert decide(account(), TODAY, exempt).level is None
