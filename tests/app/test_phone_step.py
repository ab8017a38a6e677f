"""The ladder's phone step through the store: the night lists the call, each outcome moves the ladder."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from recouvrement.app.calls import call_list, record_call
from recouvrement.app.disputes import open_dispute
from recouvrement.app.imports import import_file
from recouvrement.app.promises import record_promise
from recouvrement.app.reconcile import run_reconcile
from recouvrement.app.remind import CALL_LIST_HEADER, run_remind, write_call_list
from recouvrement.errors import RecouvrementError
from recouvrement.rules import LadderLevel, LadderRules, Rules
from tests.app.test_remind import with_creditor
from tests.app.world import invoices_file, payments_file

PHONE = Rules(ladder=replace(LadderRules(), levels=(
    LadderLevel(1, 15, "relance_1", "email"),
    LadderLevel(2, 30, "relance_2", "phone", "appel_relance", 5),
    LadderLevel(3, 45, "mise_en_demeure", "both"))))
FIRST = date(2025, 6, 2)          # level 1 (the invoice fell due on 15/04)
CALL = date(2025, 6, 16)          # level 2 is due: a call, not a letter
NEXT = date(2025, 6, 17)          # the call is made that day
CALL_ID = "C20250616-P1-2"


def row(number: str, patient: str, amount: str, *, phone: str = "06 12 34 56 78", last_name: str = "Martin") -> str:
    return (f"{number};01/04/2025;15/04/2025;{patient};{last_name};Claire;5 rue Haute;75011;Paris;;{phone};;"
            f"{amount};0;0;{amount};;none;;")


@pytest.fixture
def called(engine, settings, tmp_path):
    """P1 owes 45,00 € since 15/04 and has a phone: level 1 on FIRST, then the night of CALL lists a call."""
    import_file(engine, invoices_file(tmp_path, [row("F2025-000601", "P1", "45,00")]), settings)
    run_reconcile(engine)
    made = nights(engine, settings, tmp_path, [FIRST, CALL])
    assert made == [(FIRST, 1, "letter")]
    return engine


def nights(engine, settings, folder: Path, days) -> list[tuple[date, int, str]]:
    """(day, level, channel) of the letters the nights of `days` sent."""
    made = []
    for day in days:
        report = run_remind(engine, with_creditor(settings), day, folder / "out" / day.isoformat(), rules=PHONE)
        made += [(day, w.level, w.channel) for w in report.letters]
    return made


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def status(engine, call_id: str = CALL_ID) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT status FROM call_task WHERE call_id = :c"), {"c": call_id}).scalar_one()


def test_a_phone_level_puts_the_patient_on_the_stored_call_list_instead_of_a_letter(called, tmp_path):
    calls = call_list(called)
    assert [(c.call_id, c.patient_id, c.phone, c.level, c.amount_cents, c.script) for c in calls] == [
        (CALL_ID, "P1", "+33612345678", 2, 4500, "appel_relance")]
    with called.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM letter WHERE level = 2")).scalar_one() == 0


def test_while_the_call_is_open_no_other_letter_goes_out(called, settings, tmp_path):
    assert nights(called, settings, tmp_path, days(NEXT, CALL + timedelta(days=4))) == []
    assert status(called) == "open"


def test_reached_makes_the_step_done_and_the_next_level_comes_after_its_gap(called, settings, tmp_path):
    record_call(called, CALL_ID, "reached", NEXT, actor="accueil")
    made = nights(called, settings, tmp_path, days(NEXT, date(2025, 7, 5)))
    assert made == [(date(2025, 7, 1), 3, "letter")]          # 17/06 + 14 days: the mise en demeure
    assert status(called) == "reached" and call_list(called) == []


def test_a_promise_with_a_date_holds_the_ladder_until_that_date(called, settings, tmp_path):
    record_promise(called, "P1", date(2025, 7, 10), NEXT, owed_cents=4500, actor="accueil")
    record_call(called, CALL_ID, "promise", NEXT, actor="accueil")
    made = nights(called, settings, tmp_path, days(NEXT, date(2025, 7, 15)))
    assert made == [(date(2025, 7, 11), 3, "letter")]         # the day after the promised date
    assert status(called) == "promise"


def test_a_promise_outcome_without_a_promise_recorded_is_refused(called):
    with pytest.raises(RecouvrementError, match="aucune promesse"):
        record_call(called, CALL_ID, "promise", NEXT, actor="accueil")
    assert status(called) == "open"


def test_a_dispute_stops_the_ladder_on_that_invoice(called, settings, tmp_path):
    open_dispute(called, "F2025-000601", "ne reconnaît pas ce montant", channel="phone", received=NEXT)
    record_call(called, CALL_ID, "dispute", NEXT, actor="accueil")
    assert nights(called, settings, tmp_path, days(NEXT, date(2025, 7, 31))) == []
    assert status(called) == "dispute"


def test_a_wrong_number_marks_the_phone_unusable_and_the_level_goes_by_letter_the_next_night(called, settings,
                                                                                               tmp_path):
    record_call(called, CALL_ID, "wrong_number", NEXT, actor="accueil")
    made = nights(called, settings, tmp_path, days(NEXT + timedelta(days=1), date(2025, 7, 3)))
    assert made == [(date(2025, 6, 18), 2, "letter"), (date(2025, 7, 2), 3, "letter")]
    with called.connect() as conn:
        assert conn.execute(text("SELECT patient_id, phone FROM unusable_phone")).all() == [("P1", "+33612345678")]


def test_no_outcome_within_the_levels_days_falls_back_to_its_letter(called, settings, tmp_path):
    record_call(called, CALL_ID, "no_answer", NEXT, actor="accueil")     # noted: still to call
    assert [c.call_id for c in call_list(called)] == [CALL_ID]
    made = nights(called, settings, tmp_path, days(NEXT, date(2025, 6, 22)))
    assert made == [(date(2025, 6, 21), 2, "letter")]         # 16/06 + 5 days: the letter of level 2
    assert status(called) == "expired" and call_list(called) == []


def test_a_patient_without_a_phone_number_gets_the_levels_letter(engine, settings, tmp_path):
    import_file(engine, invoices_file(tmp_path, [row("F2025-000602", "P2", "45,00", phone="")]), settings)
    run_reconcile(engine)
    assert nights(engine, settings, tmp_path, [FIRST, CALL]) == [(FIRST, 1, "letter"), (CALL, 2, "letter")]
    assert call_list(engine) == []


def test_a_call_whose_patient_paid_leaves_the_list_the_next_night(called, settings, tmp_path):
    import_file(called, payments_file(tmp_path, ["V1;2025-06-16;patient;MARTIN CLAIRE;45,00;;F2025-000601;paid;"]),
                settings)
    run_reconcile(called)
    nights(called, settings, tmp_path, [NEXT])
    assert status(called) == "cancelled" and call_list(called) == []


def test_an_outcome_is_audited_with_who_recorded_it_and_recorded_once(called):
    record_call(called, CALL_ID, "reached", NEXT, actor="accueil")
    with pytest.raises(RecouvrementError, match="déjà son issue"):
        record_call(called, CALL_ID, "wrong_number", NEXT, actor="autre")
    with called.connect() as conn:
        events = conn.execute(text("SELECT kind, actor, patient_id FROM audit_event WHERE kind IN ('call_listed', "
                                   "'call') ORDER BY seq")).all()
    assert [(k, p) for k, _, p in events] == [("call_listed", "P1"), ("call", "P1")] and events[1][1] == "accueil"


def test_the_call_list_csv_is_french_excel_inert_and_privacy_scanned(engine, settings, tmp_path):
    import_file(engine, invoices_file(tmp_path, [
        row("F2025-000603", "P3", "45,00", phone="+33 6 12 34 56 78", last_name="=HYPERLINK(\"http://x\")"),
        row("F2025-000604", "P4", "52,50")]), settings)
    run_reconcile(engine)
    nights(engine, settings, tmp_path, [FIRST, CALL])
    path = tmp_path / "out" / CALL.isoformat() / "appels.csv"
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    assert rows[0] == CALL_LIST_HEADER
    by_id = {r[0]: r for r in rows[1:]}
    assert by_id["C20250616-P3-2"][1].startswith("'=") and by_id["C20250616-P3-2"][3] == "'+33612345678"
    assert by_id["C20250616-P3-2"][4:] == ["45,00", "2", "appel_relance"]
    assert by_id["C20250616-P4-2"][4:] == ["52,50", "2", "appel_relance"]


def test_a_name_the_privacy_scanner_flags_is_masked_in_the_call_list(engine, settings, tmp_path):
    import_file(engine, invoices_file(tmp_path, [row("F2025-000604", "P4", "52,50")]), settings)
    run_reconcile(engine)
    nights(engine, settings, tmp_path, [FIRST, CALL])
    with engine.begin() as conn:
        conn.execute(text("UPDATE patient SET last_name = 'Chimiothérapie' WHERE patient_id = 'P4'"))
    path = write_call_list(engine, NEXT, tmp_path / "liste")
    assert path is not None
    document = path.read_text(encoding="utf-8-sig")
    assert "[masqué]" in document and "chimio" not in document.lower() and "52,50" in document


def test_the_cli_lists_the_calls_and_records_a_promise_with_its_date(called, db_url, tmp_path):
    from click.testing import CliRunner

    from recouvrement.cli import cli
    from recouvrement.cli import commands  # noqa: F401
    listed = CliRunner().invoke(cli, ["--db", db_url, "call", "list"])
    assert listed.exit_code == 0, listed.output
    assert CALL_ID in listed.output and "45,00" in listed.output
    done = CliRunner().invoke(cli, ["--db", db_url, "call", "record", CALL_ID, "promise", "--until", "10/07/2025",
                                    "--on", "17/06/2025"])
    assert done.exit_code == 0, done.output
    assert "promesse de paiement" in done.output and status(called) == "promise"
    with called.connect() as conn:
        assert conn.execute(text("SELECT pay_by FROM promise WHERE patient_id = 'P1'")).scalar_one() \
            in (date(2025, 7, 10), "2025-07-10")


def test_the_cli_refuses_a_promise_without_its_date_and_changes_nothing(called, db_url):
    from click.testing import CliRunner

    from recouvrement.cli import cli
    from recouvrement.cli import commands  # noqa: F401
    done = CliRunner().invoke(cli, ["--db", db_url, "call", "record", CALL_ID, "promise", "--on", "17/06/2025"])
    assert done.exit_code == 2 and "--until" in done.output and status(called) == "open"


def test_the_report_counts_the_calls_by_where_they_stand_without_naming_anyone(called, settings, tmp_path):
    from recouvrement.app.report import report_data, write_report
    assert report_data(called, CALL).calls == [("À appeler", 1, 1, 4500)]
    record_call(called, CALL_ID, "reached", NEXT, actor="accueil")
    assert report_data(called, NEXT).calls == [("Patient joint", 0, 1, 4500)]
    page = write_report(called, with_creditor(settings), NEXT, tmp_path / "rapport.html").read_text(encoding="utf-8")
    assert "Appels (palier téléphonique)" in page and "Patient joint" in page
    assert "Martin" not in page and "+33612345678" not in page and "06 12 34 56 78" not in page


def test_the_nightly_summary_counts_the_calls_the_night_listed_and_closed(engine, settings, tmp_path, monkeypatch,
                                                                         capsys):
    from recouvrement.app import nightly
    from recouvrement.app.remind import RemindReport
    from recouvrement.cli.nightly_commands import print_run
    made = RemindReport(CALL, False, False, calls_listed=[CALL_ID], calls_closed={"C20250602-P2-2": "expired"})
    monkeypatch.setattr(nightly, "remind_and_send", lambda *args, **kwargs: made)
    result = nightly.RunResult(1, CALL)
    nightly._remind(engine, replace(settings, paths=replace(settings.paths, output=tmp_path)), CALL, result, None)
    assert result.counts["calls"] == {"listed": 1, "closed": 1}
    print_run(result)
    assert "appels : 1 ajouté(s) à la liste ; 1 retiré(s)" in " ".join(capsys.readouterr().out.split())
