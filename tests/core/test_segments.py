"""Patient segments: one-off by default, chronic on repeated difficulty, on hold above all."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from recouvrement.core.segments import PatientHistory, segment
from recouvrement.rules import Rules

RULES = Rules()
TODAY = date(2025, 6, 30)


def test_a_patient_without_history_is_one_off():
    assert segment(PatientHistory(), TODAY, RULES).segment == "one_off"


def test_two_invoices_at_level_two_within_twelve_months_make_a_patient_chronic():
    history = PatientHistory(invoices_at_level2_dates=(date(2024, 7, 1), date(2025, 5, 2)))
    result = segment(history, TODAY, RULES)
    assert result.segment == "chronic"
    assert result.reasons == ("2 factures au niveau 2 de relance sur les 12 derniers mois",)


def test_a_level_two_invoice_older_than_the_window_does_not_count():
    history = PatientHistory(invoices_at_level2_dates=(date(2024, 6, 30), date(2025, 5, 2)))
    assert segment(history, TODAY, RULES).segment == "one_off"


def test_a_plan_broken_within_twenty_four_months_makes_a_patient_chronic():
    assert segment(PatientHistory(broken_plan_dates=(date(2023, 7, 1),)), TODAY, RULES).segment == "chronic"
    assert segment(PatientHistory(broken_plan_dates=(date(2023, 6, 30),)), TODAY, RULES).segment == "one_off"


def test_both_signs_of_difficulty_are_given_as_reasons():
    history = PatientHistory((date(2025, 1, 1), date(2025, 2, 1)), (date(2025, 3, 1),))
    assert len(segment(history, TODAY, RULES).reasons) == 2


def test_an_active_hold_wins_over_chronic_and_keeps_its_reason_internal():
    history = PatientHistory((date(2025, 1, 1), date(2025, 2, 1)), on_hold=True)
    result = segment(history, TODAY, RULES)
    assert (result.segment, result.reasons) == ("on_hold", ("suspension des relances en cours",))


def test_the_chronic_threshold_is_read_from_the_rules():
    strict = replace(RULES, segments=replace(RULES.segments, min_level2_invoices=3))
    history = PatientHistory(invoices_at_level2_dates=(date(2025, 1, 1), date(2025, 2, 1)))
    assert segment(history, TODAY, strict).segment == "one_off"
