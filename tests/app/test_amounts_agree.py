"""One patient's amount, stated alike by every reader of core.ledger: the mise en demeure, the agency case, the
plan letter and the desk's account, never more than the patient owes net of their credits."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text

from recouvrement.app.agency import export_agency
from recouvrement.app.patient_account import patient_account
from recouvrement.app.plans import plan_debt
from recouvrement.app.remind import run_remind
from recouvrement.core.ledger import asked_cents, patient_money
from recouvrement.core.references import rf_reference
from recouvrement.db.ledger import load_snapshot
from recouvrement.rules import Rules
from tests.app.test_remind import invoice, load, with_creditor

LEVELS = (date(2025, 4, 23), date(2025, 5, 9), date(2025, 5, 23))     # due 8 April: levels 1, 2, 3
HANDOVER = date(2025, 6, 12)                                            # 20 days after the mise en demeure


def claire_with_a_credit(engine, settings, folder):
    """Two unpaid patient shares (45 + 30 euros) and a third one paid 25 euros for 10: a 15-euro credit."""
    load(engine, settings, folder,
         [invoice("F2025-000201", "P1", "01/03/2025", "08/04/2025", "45,00"),
          invoice("F2025-000202", "P1", "02/03/2025", "08/04/2025", "30,00"),
          invoice("F2025-000203", "P1", "03/03/2025", "08/04/2025", "10,00")],
         [f"B1;2025-03-20;patient;MARTIN CLAIRE;25,00;{rf_reference('F2025-000203')};;;"])


def test_a_letter_and_an_agency_case_for_the_same_patient_state_the_same_amount_net_of_credits(
        engine, settings, tmp_path):
    claire_with_a_credit(engine, settings, tmp_path)
    for day in LEVELS:
        run_remind(engine, with_creditor(settings), day, tmp_path / day.isoformat())
    handed = export_agency(engine, None, HANDOVER, tmp_path / "agency.csv", rules=Rules())
    with engine.connect() as conn:
        letter = conn.execute(text("SELECT amount_cents FROM letter WHERE level = 3")).scalar_one()
        case = conn.execute(text("SELECT amount_cents FROM agency_case WHERE patient_id = 'P1'")).scalar_one()
        money = patient_money(load_snapshot(conn, HANDOVER)).loc["P1"]
    assert (int(money["owed_cents"]), int(money["credit_cents"])) == (7500, 1500)
    assert letter == case == handed.total_cents == 7500 - 1500
    assert case <= money["net_owed_cents"]


def test_a_plan_and_the_desks_account_state_the_same_net_amount_as_the_letters(engine, settings, tmp_path):
    claire_with_a_credit(engine, settings, tmp_path)
    shares, deducted = plan_debt(engine, "P1", LEVELS[0], Rules())
    account = patient_account(engine, "P1", LEVELS[0], Rules())
    assert asked_cents((s.due_cents for s in shares), deducted, 0) == account.net_due_cents == 7500 - 1500
    assert account.credit_cents == deducted == 1500


def test_a_credit_from_a_later_payment_is_not_deducted_on_an_earlier_day(engine, settings, tmp_path):
    """Plans and the desk once counted every credit whatever its date; a day sees only payments dated by then."""
    claire_with_a_credit(engine, settings, tmp_path)
    shares, deducted = plan_debt(engine, "P1", date(2025, 3, 10), Rules())
    assert deducted == 0 and patient_account(engine, "P1", date(2025, 3, 10), Rules()).credit_cents == 0
