"""The creditor's own identity is known text: a clinic named after its care sends its letters; a letter
refused for what a patient's data holds names the letter, the kind of finding and what to do, never the text."""

from __future__ import annotations

from dataclasses import replace

import pytest

from recouvrement.app.plans import propose
from recouvrement.app.remind import run_remind
from recouvrement.app.report import write_report
from recouvrement.scanner import extract_text, scan_paths
from tests.app.test_remind import CREDITOR, MONDAY, invoice, load

NAMES = ["Cabinet dentaire du Parc", "Laboratoire d'analyses médicales", "Centre de radiologie"]


def clinic(settings, name: str, email: str = "accueil@cabinet-dentaire-du-parc.example"):
    return replace(settings, creditor=replace(CREDITOR, name=name, email=email,
                                              address="3 allée de la Radiologie"))


@pytest.mark.parametrize("name", NAMES)
def test_a_creditor_named_after_its_care_sends_its_letters_and_e_mails(engine, settings, tmp_path, name):
    load(engine, settings, tmp_path, [
        invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00"),
        invoice("F2025-000202", "P2", "01/04/2025", "15/04/2025", "45,00", email="claire@example.org")])
    report = run_remind(engine, clinic(settings, name), MONDAY, tmp_path / "out", single_pdf=True)
    assert report.errors == []
    assert sorted(w.channel for w in report.letters) == ["both", "letter"] or len(report.letters) == 2
    assert report.batch_pdf is not None
    assert name in " ".join(extract_text(tmp_path / "out" / "L20250602-P1-1.html").split())


def test_the_audit_scan_of_the_letters_knows_the_creditor_too(engine, settings, tmp_path):
    from recouvrement.scanner import known_texts
    ours = clinic(settings, NAMES[0])
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00")])
    run_remind(engine, ours, MONDAY, tmp_path / "out")
    assert scan_paths([tmp_path / "out"], known=known_texts(ours)) == []
    assert scan_paths([tmp_path / "out"]) != []  # without it, the name is flagged as anyone's would be


def test_a_creditor_named_after_its_care_may_propose_a_plan(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "450,00")])
    proposal = propose(engine, "P1", MONDAY, clinic(settings, NAMES[1]), out_dir=tmp_path / "plans")
    assert all(path.exists() for path in proposal.files)


def test_the_report_of_a_creditor_named_after_its_care_is_written(engine, settings, tmp_path):
    load(engine, settings, tmp_path, [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00")])
    path = write_report(engine, clinic(settings, NAMES[2]), MONDAY, tmp_path / "report.html")
    assert NAMES[2] in path.read_text(encoding="utf-8")


def test_the_creditor_name_does_not_hide_the_same_words_elsewhere(engine, settings, tmp_path):
    rows = [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00", last_name="Soins dentaires")]
    load(engine, settings, tmp_path, rows)
    report = run_remind(engine, clinic(settings, NAMES[0]), MONDAY, tmp_path / "out")
    assert report.letters == [] and len(report.errors) == 1


def test_a_refused_letter_names_the_letter_the_kind_and_how_to_proceed_never_the_text(engine, settings, tmp_path):
    rows = [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00", last_name="Martin séance kiné")]
    load(engine, settings, tmp_path, rows)
    report = run_remind(engine, clinic(settings, "Centre de santé des Lilas"), MONDAY, tmp_path / "out")
    [error] = report.errors
    assert error.startswith("L20250602-P1-1.html:")
    assert "terme de soin" in error and "réimportez" in error and "[creditor]" in error
    assert "kiné" not in error.lower() and "Martin" not in error
    assert not (tmp_path / "out" / "L20250602-P1-1.html").exists()
