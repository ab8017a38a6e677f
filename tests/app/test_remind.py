"""`run_remind` through the database: exclusions, the ladder over time, grouping, idempotence, the files."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import text

from recouvrement.app.disputes import open_dispute
from recouvrement.app.holds import place_hold
from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.app.remind import MANIFEST_HEADER, run_remind
from recouvrement.audit import verify
from recouvrement.config import Creditor
from recouvrement.core.ladder import is_quiet_day
from recouvrement.core.references import rf_reference
from recouvrement.scanner import extract_text
from tests.app.world import invoices_file, payments_file

MONDAY = date(2025, 6, 2)
CREDITOR = Creditor("Centre de santé des Lilas", "12 rue des Lilas", "75019", "Paris", "01 42 00 00 00",
                    "facturation@centre-lilas.example", "84512367800011", "FR7630004019250001234567876",
                    "BNPAFRPPXXX")


def with_creditor(settings):
    return replace(settings, creditor=CREDITOR)


def invoice(number: str, patient: str, issue: str, due: str, patient_amount: str, *, amo: str = "0",
            coverage: str = "none", email: str = "", last_name: str = "Martin",
            care: str = "", acts: str = "", nir: str = "") -> str:
    """One invoices-CSV row; the total is the AMO plus the patient share."""
    total = f"{float(amo.replace(',', '.')) + float(patient_amount.replace(',', '.')):.2f}".replace(".", ",")
    return (f"{number};{issue};{due};{patient};{last_name};Claire;5 rue Haute;75011;Paris;{email};;{nir};{total};"
            f"{amo};0;{patient_amount};;{coverage};{care};{acts}")


def load(engine, settings, folder: Path, rows: list[str], payments: list[str] = ()) -> None:
    if rows:
        import_file(engine, invoices_file(folder, rows, name=f"inv{len(list(folder.glob('inv*')))}.csv"), settings)
    if payments:
        import_file(engine, payments_file(folder, list(payments), name=f"pay{len(list(folder.glob('pay*')))}.csv"),
                    settings)
    run_reconcile(engine)


def excluded(report, patient: str) -> set[str]:
    return {e.code for e in report.exclusions if e.patient_id == patient}


def lettered(report) -> set[str]:
    return {d.patient_id for d in report.decisions}


def test_an_overdue_share_gets_a_first_letter_in_the_batch_pdf_and_manifest(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00")])
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    assert [(w.patient_id, w.level, w.channel) for w in report.letters] == [("P1", 1, "letter")]
    assert (tmp_path / "out" / "L20250602-P1-1.html").exists()
    assert report.batch_pdf == tmp_path / "out" / "batch-2025-06-02.pdf"
    assert list(report.pages) == ["L20250602-P1-1"] and report.pages["L20250602-P1-1"][0] == 1
    with open(tmp_path / "out" / "manifest.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [MANIFEST_HEADER, ["L20250602-P1-1", "P1", "F2025-000201", "1", "letter", "45.00",
                                      "L20250602-P1-1.html"]]


def test_the_pdf_shows_numbers_total_and_rf_and_no_care(engine, settings, tmp_path):
    rows = [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00", care="Consultation cardiologie",
                    acts="DEQP003")]
    load(engine, replace(settings, privacy=replace(settings.privacy, keep_care=True)), tmp_path, rows)
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    pdf = " ".join(extract_text(report.batch_pdf).split())
    assert "F2025-000201" in pdf and "45,00" in pdf
    assert report.letters[0].rf_reference in pdf.replace(" ", "")  # the letter's own reference (issue #14)
    assert "cardiologie" not in pdf.lower() and "DEQP003" not in pdf


def test_several_invoices_of_one_patient_go_in_one_letter(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00"),
                                      invoice("F2025-000202", "P1", "10/05/2025", "20/05/2025", "12,50")])
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    assert [(w.invoice_numbers, w.amount_cents) for w in report.letters] == [
        (("F2025-000201", "F2025-000202"), 5750)]
    with engine.connect() as conn:
        items = conn.execute(text("SELECT invoice_number, amount_cents FROM letter_item ORDER BY invoice_number")).all()
    assert [tuple(r) for r in items] == [("F2025-000201", 4500), ("F2025-000202", 1250)]


def test_the_same_day_twice_sends_nothing_twice_and_rewrites_the_same_manifest(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00")])
    run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    first = (tmp_path / "out" / "manifest.csv").read_bytes()
    again = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    assert again.letters == [] and again.already_recorded == ["L20250602-P1-1"]
    assert (tmp_path / "out" / "manifest.csv").read_bytes() == first
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM letter")).scalar_one() == 1
        assert conn.execute(text("SELECT COUNT(*) FROM audit_event WHERE kind = 'reminder'")).scalar_one() == 1
        assert verify(conn).ok


def test_a_dry_run_writes_and_records_nothing(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00")])
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out", dry_run=True)
    assert lettered(report) == {"P1"}
    assert not (tmp_path / "out").exists()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM letter")).scalar_one() == 0


def test_an_anomaly_coverage_is_flagged_never_chased(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice(f"F2025-00030{n}", f"P{n}", "01/04/2025", "15/04/2025", "45,00",
                                              coverage=coverage) for n, coverage in enumerate(("css", "ame", "at_mp"))])
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out", dry_run=True)
    assert lettered(report) == set()
    assert {e.patient_id for e in report.exclusions if e.code == "exempt_coverage"} == {"P0", "P1", "P2"}


def test_an_invoice_awaiting_the_insurer_waits_whole(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00", amo="70,00")])
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out", dry_run=True)
    assert lettered(report) == set() and excluded(report, "P1") == {"insurer_awaited"}


def test_a_paid_insurer_share_lets_the_patient_share_be_chased(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00", amo="70,00")],
         ["A1;2025-04-20;amo;CPAM DE PARIS;70,00;;F2025-000201;paid;"])
    assert lettered(run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out", dry_run=True)) == {"P1"}


def test_a_disputed_invoice_is_not_chased(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00")])
    open_dispute(engine, "F2025-000201", "montant contesté", received=date(2025, 5, 2))
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out", dry_run=True)
    assert lettered(report) == set() and excluded(report, "P1") == {"disputed"}


def test_a_patient_on_hold_gets_nothing(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00")])
    place_hold(engine, "P1", "situation difficile", since=date(2025, 5, 1))
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out", dry_run=True)
    assert lettered(report) == set() and "on_hold" in excluded(report, "P1")


def test_a_time_barred_invoice_is_not_chased(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2023-000201", "P1", "01/04/2023", "15/04/2023", "45,00")])
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out", dry_run=True)
    assert lettered(report) == set() and excluded(report, "P1") == {"time_barred"}


def test_less_than_five_euros_is_not_asked(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "4,99")])
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out", dry_run=True)
    assert lettered(report) == set() and excluded(report, "P1") == {"below_minimum"}


def test_an_unmatched_transfer_in_the_patients_name_holds_the_letter(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00")],
         ["B1;2025-05-20;patient;MARTIN CLAIRE;12,34;;;;"])
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out", dry_run=True)
    assert lettered(report) == set() and excluded(report, "P1") == {"pending_credit"}


def test_a_rejected_insurer_share_is_announced_by_a_notice_first(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/05/2025", "31/05/2025", "0", amo="70,00")],
         ["A1;2025-05-28;amo;CPAM DE PARIS;70,00;;F2025-000201;rejected;Droits fermés"])
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    assert [(w.level, w.kind, w.amount_cents) for w in report.letters] == [(0, "avis_rejet", 7000)]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT notified FROM share_transfer")).scalar_one() in (True, 1)
    later = run_remind(engine, with_creditor(settings), date(2025, 6, 16), tmp_path / "out2")
    assert later.letters == []  # the shifted share falls due 30 days after the rejection


def test_a_rejection_line_of_zero_euros_is_announced_by_the_notice_too(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/05/2025", "31/05/2025", "0", amo="70,00")],
         ["A1;2025-05-28;amo;CPAM DE PARIS;0,00;;F2025-000201;rejected;Droits fermés"])
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    assert [(w.level, w.kind, w.amount_cents) for w in report.letters] == [(0, "avis_rejet", 7000)]


def ladder_days(engine, settings, folder: Path, start: date, days: int) -> dict[str, list[tuple[date, int]]]:
    """Run the reminders every day from start, as the nightly job would: who got which level when."""
    sent: dict[str, list[tuple[date, int]]] = {}
    for offset in range(days):
        day = start + timedelta(days=offset)
        report = run_remind(engine, settings, day, folder / day.isoformat())
        if is_quiet_day(day):
            assert report.decisions == [] and report.letters == []
        for w in report.letters:
            sent.setdefault(w.patient_id, []).append((day, w.level))
    return sent


def test_the_ladder_climbs_on_the_right_days_skipping_sundays_and_holidays(engine, settings, tmp_path):
    # P1: due 8 April 2025; level 2 falls on 8 May (a holiday), sent on the 9th; level 3 is 45 days past due.
    # P2: due 5 April; level 1 falls on Easter Sunday, then Easter Monday: sent the Tuesday;
    #     level 2 waits for the 14-day gap; level 3 at 45 days.
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/03/2025", "08/04/2025", "45,00"),
                                      invoice("F2025-000202", "P2", "01/03/2025", "05/04/2025", "30,00",
                                              last_name="Durand")])
    sent = ladder_days(engine, with_creditor(settings), tmp_path, date(2025, 4, 1), 90)
    assert sent == {"P1": [(date(2025, 4, 23), 1), (date(2025, 5, 9), 2), (date(2025, 5, 23), 3)],
                    "P2": [(date(2025, 4, 22), 1), (date(2025, 5, 6), 2), (date(2025, 5, 20), 3)]}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM letter")).scalar_one() == 6
        assert verify(conn).ok


def test_a_payment_stops_the_ladder(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/03/2025", "08/04/2025", "45,00")])
    run_remind(engine, with_creditor(settings), date(2025, 4, 23), tmp_path / "a")
    load(engine, settings, tmp_path, [], [f"B1;2025-04-30;patient;MARTIN CLAIRE;45,00;{rf_reference('F2025-000201')};;;"])
    assert run_remind(engine, with_creditor(settings), date(2025, 5, 9), tmp_path / "b").decisions == []


def test_a_sunday_says_so_and_sends_nothing(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00")])
    report = run_remind(engine, with_creditor(settings), date(2025, 6, 1), tmp_path / "out")
    assert report.quiet_day and report.letters == [] and not (tmp_path / "out").exists()


def test_the_cli_prints_the_dry_run_exclusions(engine, settings, db_url, tmp_path):
    from click.testing import CliRunner

    from recouvrement.cli import cli
    from recouvrement.cli import commands  # noqa: F401
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "4,99")])
    result = CliRunner().invoke(cli, ["--db", db_url, "remind", "--as-of", "2025-06-02", "--out",
                                      str(tmp_path / "out"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "below_minimum" in result.output and "P1" in result.output


def namesakes(engine, settings, folder):
    """'ALAIN DE LA FONTAINE' pays 45 € with no reference: his name fits three patients, two of whom owe 45 €."""
    rows = [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00", last_name="De La Fontaine"),
            invoice("F2025-000202", "P2", "01/04/2025", "15/04/2025", "45,00", last_name="Fontaine"),
            invoice("F2025-000203", "P3", "01/04/2025", "15/04/2025", "30,00", last_name="Fontaine")]
    load(engine, settings, folder, [r.replace(";Claire;", ";Alain;") for r in rows],
         ["B1;2025-05-20;patient;ALAIN DE LA FONTAINE;45,00;;;;"])


def test_a_queued_payment_whose_name_fits_several_patients_holds_each_one_with_a_share_of_that_amount(
        engine, settings, tmp_path):
    namesakes(engine, settings, tmp_path)
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out", dry_run=True)
    assert lettered(report) == {"P3"}                    # a namesake, but no share of that amount
    assert excluded(report, "P1") == excluded(report, "P2") == {"queued_payment"}
    reasons = {e.reason for e in report.exclusions if e.code == "queued_payment"}
    assert reasons == {"un paiement en attente de rapprochement pourrait être le sien (nom du payeur et montant "
                       "d'une facture concordent) : pas de relance avant la décision"}


def test_once_a_person_matches_the_namesakes_payment_the_other_candidate_is_chased_again(engine, settings, tmp_path):
    from recouvrement.app.reconcile import manual_match
    namesakes(engine, settings, tmp_path)
    manual_match(engine, "B1", "F2025-000201")
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out", dry_run=True)
    assert lettered(report) == {"P2", "P3"}


def test_the_segments_command_says_why_a_namesakes_reminders_wait(engine, settings, db_url, tmp_path):
    from click.testing import CliRunner
    from recouvrement.cli import cli
    import recouvrement.cli.commands  # noqa: F401  (registers the commands)
    namesakes(engine, settings, tmp_path)
    (tmp_path / "none.toml").write_text("")
    base = ["--db", db_url, "--config", str(tmp_path / "none.toml"), "segments", "--as-of", "2025-06-02"]
    one = CliRunner().invoke(cli, [*base, "--patient", "P2"])
    assert one.exit_code == 0, one.output
    assert "pourrait être le sien" in one.output
    assert "pourrait être le sien" not in CliRunner().invoke(cli, [*base, "--patient", "P3"]).output


def listed_levels(engine) -> dict[str, list[tuple[str, int, int]]]:
    """invoice -> [(letter date, letter level, its own level in it)], from the letter_item rows."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT i.invoice_number, l.as_of, l.level, i.level FROM letter_item i JOIN letter l "
                                 "ON l.letter_id = i.letter_id ORDER BY l.as_of, i.invoice_number")).all()
    found: dict[str, list[tuple[str, int, int]]] = {}
    for number, day, letter_level, own in rows:
        found.setdefault(number, []).append((str(day)[:10], int(letter_level), int(own)))
    return found


def test_over_a_quarter_an_invoice_falling_due_later_climbs_from_level_one(engine, settings, tmp_path):
    # F1 falls due before the first letter; F2 after it, F3 after the mise en demeure of F1.
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/03/2025", "08/04/2025", "45,00"),
                                      invoice("F2025-000202", "P1", "01/04/2025", "28/04/2025", "30,00"),
                                      invoice("F2025-000203", "P1", "01/05/2025", "30/05/2025", "20,00")])
    sent = ladder_days(engine, with_creditor(settings), tmp_path, date(2025, 4, 1), 92)
    assert sent == {"P1": [(date(2025, 4, 23), 1), (date(2025, 5, 9), 2), (date(2025, 5, 23), 3),
                           (date(2025, 6, 6), 2), (date(2025, 6, 20), 3)]}
    assert listed_levels(engine) == {
        "F2025-000201": [("2025-04-23", 1, 1), ("2025-05-09", 2, 2), ("2025-05-23", 3, 3)],
        "F2025-000202": [("2025-05-09", 2, 1), ("2025-05-23", 3, 1), ("2025-06-06", 2, 2), ("2025-06-20", 3, 3)],
        "F2025-000203": [("2025-06-06", 2, 1), ("2025-06-20", 3, 1)],
    }


def test_a_mise_en_demeure_demands_only_its_formal_invoices_and_lists_the_newer_ones_apart(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/03/2025", "08/04/2025", "45,00"),
                                      invoice("F2025-000202", "P1", "01/04/2025", "28/04/2025", "30,00")])
    for day in (date(2025, 4, 23), date(2025, 5, 9), date(2025, 5, 23)):
        report = run_remind(engine, with_creditor(settings), day, tmp_path / day.isoformat())
    [written] = report.letters
    assert (written.level, written.amount_cents) == (3, 7500)
    text_ = " ".join((tmp_path / "2025-05-23" / written.file).read_text().split())
    demand = text_[:text_.index("Autre facture arrivée à échéance")]
    assert "Malgré nos précédents rappels, votre facture n° F2025-000201 reste impayée" in demand
    assert "la somme de <strong>45,00" in demand and "F2025-000202" not in demand
    apart = text_[text_.index("Autre facture arrivée à échéance"):]
    assert "F2025-000202" in apart and "pas l'objet de la présente mise en demeure" in apart
    assert "Total également dû</td><td class=\"amount\">30,00" in apart


def test_no_ladder_letter_comes_before_the_deadline_the_rejection_notice_gave(engine, settings, tmp_path):
    # The insurer rejected in April; the rejection reaches the clinic's files (and the notice) only in June.
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/03/2025", "31/03/2025", "0", amo="70,00")],
         ["A1;2025-04-10;amo;CPAM DE PARIS;70,00;;F2025-000201;rejected;Droits fermés"])
    sent = ladder_days(engine, with_creditor(settings), tmp_path, MONDAY, 50)
    # The notice of 2 June asks for payment by 2 July: the ladder counts from there (level 1 at 15 days).
    assert sent == {"P1": [(MONDAY, 0), (date(2025, 7, 17), 1)]}
    notice = (tmp_path / MONDAY.isoformat() / f"L{MONDAY:%Y%m%d}-P1-0.html").read_text()
    assert "au plus tard le <strong>2 juillet 2025</strong>" in " ".join(notice.split())


def test_a_payment_quoting_a_letters_reference_settles_its_invoices_oldest_first(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000202", "P1", "10/04/2025", "20/04/2025", "12,50"),
                                      invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00")])
    written, = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out").letters
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT rf_reference FROM letter")).scalar_one()
    assert stored == written.rf_reference and stored.startswith("RF")
    load(engine, settings, tmp_path, [], [f"B1;2025-06-10;patient;DUPONT JEAN;50,00;VIR {stored} MERCI;;;"])
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT invoice_number, amount_cents, rule FROM allocation ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [("F2025-000201", 4500, "rf_letter"), ("F2025-000202", 500, "rf_letter")]


def test_a_letter_prints_its_one_reference_once_with_the_total(engine, settings, tmp_path):
    from recouvrement.core.references import format_rf
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00"),
                                      invoice("F2025-000202", "P1", "10/04/2025", "20/04/2025", "12,50")])
    written, = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out").letters
    letter = " ".join((tmp_path / "out" / f"{written.letter_id}.html").read_text(encoding="utf-8").split())
    assert letter.count(format_rf(written.rf_reference)) == 1
    assert rf_reference("F2025-000201") not in letter and format_rf(rf_reference("F2025-000201")) not in letter
    assert "Montant à régler : <strong>57,50" in letter


def _notice_text(engine, settings, tmp_path, reason: str) -> str:
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "20/05/2025", "20/05/2025", "5,00", amo="30,00")],
         [f"R1;2025-05-28;amo;CPAM;0,00;;F2025-000201;rejected;{reason}"])
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    notice, = [w for w in report.letters if w.kind == "avis_rejet"]
    return " ".join(extract_text(tmp_path / "out" / f"{notice.letter_id}.html").split())


def test_a_rejection_notice_gives_an_administrative_reason_in_the_rules_neutral_words(engine, settings, tmp_path):
    text = _notice_text(engine, settings, tmp_path, "DROITS NON OUVERTS")
    assert "Motif indiqué : vos droits n'étaient pas ouverts à cette date auprès de votre caisse." in text


def test_a_rejection_reason_the_rules_do_not_list_is_never_copied(engine, settings, tmp_path):
    text = _notice_text(engine, settings, tmp_path, "Hors nomenclature - prothese")
    assert "Motif" not in text and "nomenclature" not in text.lower() and "prothese" not in text.lower()


def test_a_long_dry_run_is_listed_as_plain_lines_with_inert_cells(engine, settings, db_url, tmp_path, monkeypatch):
    # Past TABLE_ROWS rows a listing is printed as lines, not laid out as a table (70 s for a clinic group's night).
    from click.testing import CliRunner

    import recouvrement.cli.remind_commands as remind_commands
    from recouvrement.cli import cli
    from recouvrement.cli import commands  # noqa: F401
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "4,99"),
                                      invoice("F2025-000202", "=P2", "01/04/2025", "15/04/2025", "45,00")])
    monkeypatch.setattr(remind_commands, "TABLE_ROWS", 0)
    result = CliRunner().invoke(cli, ["--db", db_url, "remind", "--as-of", "2025-06-02", "--out",
                                      str(tmp_path / "out"), "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "patient;niveau;canal;factures;montant;pourquoi" in lines and "patient;facture;code;motif" in lines
    assert any(line.startswith("'=P2;1;") for line in lines)       # a formula-like id made inert
    assert any(line.startswith("P1;(toutes);below_minimum;") for line in lines)
    assert "┃" not in result.output.split("Non relancés")[0]       # no table drawn before the counts
    assert not (tmp_path / "out").exists()


def test_a_long_dry_run_prints_the_lines_its_parts_made_without_making_them_again(monkeypatch, capsys):
    # app.remind makes a dry run's lines where each part was decided (render.listing); the command writes them.
    import recouvrement.cli.remind_commands as remind_commands
    from recouvrement.app.remind import Excluded, RemindReport

    monkeypatch.setattr(remind_commands, "TABLE_ROWS", 0)
    monkeypatch.setattr(remind_commands, "lines", None)     # not made again: calling it fails
    report = RemindReport(MONDAY, dry_run=True, quiet_day=False, listing=("made letters\n", "made exclusions\n"),
                          exclusions=[Excluded("P1", None, "below_minimum", "moins que le minimum")])
    remind_commands._print_dry_run(report)
    printed = capsys.readouterr().out
    assert "patient;niveau;canal;factures;montant;pourquoi\n" not in printed      # no letter due: a table
    assert printed.endswith("patient;facture;code;motif\nmade exclusions\n")


def test_a_long_listings_cell_holding_a_carriage_return_is_quoted_so_no_line_starts_inside_it(monkeypatch, capsys):
    # The house's CSV writer: Python's own, with lines ended by LF, left a lone CR unquoted (a new row, and a live
    # cell, in a spreadsheet).
    import recouvrement.cli.remind_commands as remind_commands
    monkeypatch.setattr(remind_commands, "TABLE_ROWS", 0)
    remind_commands._listing("Exclusions", ("patient", "motif"), [("P1\r=HYPERLINK(1)", "a;b"), ("-P2", "c")])
    assert capsys.readouterr().out.endswith('patient;motif\n"P1\r=HYPERLINK(1)";"a;b"\n\'-P2;c\n')
