"""The pre-due notice ("avant échéance") through the store: when it goes, once, and never for what is not chased."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import text

from recouvrement.app.disputes import open_dispute
from recouvrement.app.holds import place_hold
from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.app.remind import run_remind
from recouvrement.rules import LadderRules, PreDueNotice, Rules, load_rules
from recouvrement.scanner import extract_text, scan_text
from tests.app.test_remind import invoice, load, with_creditor

ON = Rules(ladder=replace(LadderRules(), pre_due=PreDueNotice(enabled=True, days_before=7,
                                                               min_patient_share_cents=3000)))
DUE = date(2025, 10, 20)   # a Monday; the window opens on Monday 13/10
SAMPLE_RULES = Path(__file__).resolve().parents[2] / "recouvrement" / "sample_clinic" / "rules"


def one(engine, settings, folder: Path, amount: str = "45,00", **kwargs) -> None:
    load(engine, settings, folder, [invoice("F2025-000501", "P1", "01/09/2025", f"{DUE:%d/%m/%Y}", amount, **kwargs)])


def nights(engine, settings, folder: Path, days, rules: Rules = ON) -> list[tuple[date, str, int]]:
    """(day, letter id, level) of every letter the nights of `days` wrote."""
    made = []
    for day in days:
        report = run_remind(engine, with_creditor(settings), day, folder / "out" / day.isoformat(), rules=rules)
        made += [(day, w.letter_id, w.level) for w in report.letters]
    return made


def every_day(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def test_a_pre_due_notice_goes_out_days_before_the_due_date_once_and_never_again(engine, settings, tmp_path):
    one(engine, settings, tmp_path)
    made = nights(engine, settings, tmp_path, every_day(date(2025, 10, 6), DUE))
    assert made == [(date(2025, 10, 13), "L20251013-P1-A", -1)]


def test_a_notice_missed_until_the_due_date_is_never_sent_on_it_or_after(engine, settings, tmp_path):
    one(engine, settings, tmp_path)
    assert nights(engine, settings, tmp_path, every_day(DUE, DUE + timedelta(days=10))) == []


def test_the_eve_of_the_due_date_still_sends_the_notice_missed_until_then(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000502", "P1", "01/09/2025", "22/10/2025", "45,00")])
    made = nights(engine, settings, tmp_path, [date(2025, 10, 21), date(2025, 10, 22)])
    assert made == [(date(2025, 10, 21), "L20251021-P1-A", -1)]


def test_no_pre_due_notice_under_the_threshold(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000503", "P1", "01/09/2025", f"{DUE:%d/%m/%Y}", "29,99"),
                                      invoice("F2025-000504", "P2", "01/09/2025", f"{DUE:%d/%m/%Y}", "30,00")])
    made = nights(engine, settings, tmp_path, [date(2025, 10, 14)])
    assert [lid for _, lid, _ in made] == ["L20251014-P2-A"]


def test_no_pre_due_notice_for_an_invoice_the_ladder_may_not_chase(engine, settings, tmp_path):
    due = f"{DUE:%d/%m/%Y}"
    load(engine, settings, tmp_path, [
        invoice("F2025-000511", "P1", "01/09/2025", due, "45,00", coverage="css"),
        invoice("F2025-000512", "P2", "01/09/2025", due, "45,00", amo="30,00"),       # insurer awaited
        invoice("F2025-000513", "P3", "01/09/2025", due, "45,00"),                    # disputed
        invoice("F2025-000514", "P4", "01/09/2025", due, "45,00"),                    # on hold
        invoice("F2025-000515", "P5", "01/09/2025", due, "45,00", coverage="ame"),
        invoice("F2025-000516", "P6", "01/09/2025", due, "45,00", coverage="at_mp"),
        invoice("F2025-000517", "P7", "01/09/2025", due, "45,00")])                   # the one that goes
    open_dispute(engine, "F2025-000513", "montant contesté", received=date(2025, 10, 1))
    place_hold(engine, "P4", "situation difficile", since=date(2025, 10, 1))
    made = nights(engine, settings, tmp_path, [date(2025, 10, 14)])
    assert [lid for _, lid, _ in made] == ["L20251014-P7-A"]


def test_the_pre_due_notice_is_off_by_default(engine, settings, tmp_path):
    one(engine, settings, tmp_path)
    assert load_rules().ladder.pre_due.enabled is False and Rules().ladder.pre_due.enabled is False
    assert nights(engine, settings, tmp_path, every_day(date(2025, 10, 13), date(2025, 10, 19)), rules=Rules()) == []


def test_the_sample_clinics_rules_turn_the_pre_due_notice_on(tmp_path):
    rules = load_rules(overrides=SAMPLE_RULES)
    assert rules.ladder.pre_due.enabled is True
    shipped = load_rules()
    assert rules.ladder.pre_due == replace(shipped.ladder.pre_due, enabled=True)
    # The same ladder otherwise, but for its channels (the sample's first reminder also goes by SMS).
    assert [(x.level, x.days, x.template) for x in rules.ladder.levels] == [
        (x.level, x.days, x.template) for x in shipped.ladder.levels]
    assert rules.plans == shipped.plans and rules.exclusions == shipped.exclusions


def test_the_pre_due_notice_does_not_delay_level_one(engine, settings, tmp_path):
    one(engine, settings, tmp_path)
    made = nights(engine, settings, tmp_path, every_day(date(2025, 10, 13), date(2025, 11, 5)))
    # Level 1 comes 15 days after the due date (04/11/2025, a Tuesday), as without the notice.
    assert [(day, level) for day, _, level in made] == [(date(2025, 10, 13), -1), (date(2025, 11, 4), 1)]


def test_the_pre_due_letter_says_when_how_to_pay_how_to_contest_and_no_care(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000520", "P1", "01/09/2025", f"{DUE:%d/%m/%Y}", "45,00",
                                              care="Consultation cardiologie", acts="DEQP003")])
    nights(engine, settings, tmp_path, [date(2025, 10, 13)])
    html = (tmp_path / "out" / "2025-10-13" / "L20251013-P1-A.html").read_text(encoding="utf-8")
    words = " ".join(extract_text(tmp_path / "out" / "2025-10-13" / "L20251013-P1-A.html").split())
    assert "arrive à échéance le 20 octobre 2025" in words
    assert "n'est pas une relance" in words and "Par virement" in words
    assert "Si vous contestez ce montant" in words and "plusieurs fois" in words
    assert "cardiologie" not in html and "DEQP003" not in html and not scan_text(words)
    with engine.connect() as conn:
        kind, level = conn.execute(text("SELECT kind, level FROM letter")).one()
    assert (kind, level) == ("avant_echeance", -1)


def test_a_minors_pre_due_notice_goes_to_the_guarantor(engine, settings, tmp_path):
    header = ("invoice_number;issue_date;due_date;patient_id;last_name;first_name;address;postal_code;city;"
              "birth_date;total_amount;amo_amount;patient_amount;guarantor_last_name;guarantor_first_name;"
              "guarantor_address;guarantor_postal_code;guarantor_city")
    row = (f"F2025-000530;01/09/2025;{DUE:%d/%m/%Y};P9;Petit;Léo;5 rue Haute;75011;Paris;01/02/2015;45,00;0;45,00;"
           "Petit;Anne;8 rue Basse;75012;Paris")
    path = tmp_path / "mineur.csv"
    path.write_text(header + "\r\n" + row + "\r\n", encoding="utf-8")
    import_file(engine, path, settings)
    run_reconcile(engine)
    report = run_remind(engine, with_creditor(settings), date(2025, 10, 13), tmp_path / "out", rules=ON)
    assert [(w.letter_id, w.decision.recipient) for w in report.letters] == [("L20251013-P9-A", "guarantor")]
    words = " ".join(extract_text(tmp_path / "out" / "L20251013-P9-A.html").split())
    assert "Anne Petit" in words and "8 rue Basse" in words
