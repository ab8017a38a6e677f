"""A patient's and an invoice's audit history hold every event about them, and the files the trail vouches for."""

from __future__ import annotations

from datetime import timedelta

import pytest

from recouvrement.app.agency import export_agency
from recouvrement.app.audit_views import audit_log, verify_files
from recouvrement.app.disputes import open_dispute
from recouvrement.app.holds import place_hold
from recouvrement.app.plans import propose
from recouvrement.app.reconcile import manual_unmatch
from recouvrement.app.remind import run_remind
from recouvrement.rules import Rules
from tests.app.test_agency import letter
from tests.app.test_remind import MONDAY, invoice, load, with_creditor

LATER = MONDAY + timedelta(days=20)


@pytest.fixture
def history(engine, settings, tmp_path):
    """P1 gets a letter for F1 and F2, a payment on F1 matched then unmatched by hand, F2 handed to the agency
    after a mise en demeure, a plan over F1 and F3, a hold, and a dispute on F1."""
    settings = with_creditor(settings)
    load(engine, settings, tmp_path, [invoice("F1", "P1", "01/04/2025", "15/04/2025", "45,00"),
                                      invoice("F2", "P1", "02/04/2025", "16/04/2025", "30,00"),
                                      invoice("F9", "P9", "02/04/2025", "16/04/2025", "30,00", last_name="Autre")],
         payments=["X1;2025-05-20;patient;MARTIN CLAIRE;10,00;;F1;paid;"])
    out = tmp_path / "out"
    run_remind(engine, settings, MONDAY, out / "letters")
    manual_unmatch(engine, "X1")
    letter(engine, "L3-P1", MONDAY, ["F2"])
    export_agency(engine, settings, LATER, out / "agency.csv", rules=Rules())
    load(engine, settings, tmp_path, [invoice("F3", "P1", "01/06/2025", "15/06/2025", "60,00")])
    propose(engine, "P1", LATER, settings, out_dir=out / "plans")
    place_hold(engine, "P1", "Difficultés passagères", since=LATER)
    open_dispute(engine, "F1", "Montant contesté", received=LATER)
    return engine, out


def kinds(rows) -> set[str]:
    return {r.kind for r in rows}


def test_a_patients_history_holds_every_event_about_them(history):
    engine, _ = history
    assert {"reminder", "manual_unmatch", "agency_handover", "plan_proposed", "hold",
            "dispute_open"} <= kinds(audit_log(engine, patient_id="P1", limit=1000))


def test_an_invoices_history_holds_the_letters_plans_cases_and_payments_that_list_it(history):
    engine, _ = history
    assert {"reminder", "manual_unmatch", "plan_proposed", "dispute_open"} <= kinds(
        audit_log(engine, invoice_number="F1", limit=1000))
    f2 = kinds(audit_log(engine, invoice_number="F2", limit=1000))
    assert {"reminder", "agency_handover"} <= f2 and "plan_proposed" not in f2 and "hold" not in f2


def test_an_invoices_history_leaves_out_other_patients_and_invoices(history):
    engine, _ = history
    assert all(r.patient_id == "P9" for r in audit_log(engine, invoice_number="F9", limit=1000))
    assert "dispute_open" not in kinds(audit_log(engine, invoice_number="F2", limit=1000))


def test_the_invoice_filter_keeps_the_latest_matching_events(history):
    engine, _ = history
    rows = audit_log(engine, invoice_number="F1", limit=2)
    assert [r.kind for r in rows] == ["plan_proposed", "dispute_open"]


def test_every_letter_export_and_manifest_written_is_vouched_for_by_the_trail(history):
    engine, out = history
    check = verify_files(engine, out)
    written = {p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")}
    assert check.ok and check.checked == len(written) and check.checked >= 6


def test_a_modified_letter_is_named(history):
    engine, out = history
    target = next((out / "letters").glob("*.html"))
    target.write_text(target.read_text(encoding="utf-8").replace("Madame", "Monsieur"), encoding="utf-8")
    check = verify_files(engine, out)
    assert [path for path, _ in check.modified] == [str(target.resolve())] and check.missing == []


def test_a_missing_letter_or_agency_file_is_named(history):
    engine, out = history
    gone = [next((out / "letters").glob("*.html")), out / "agency.csv"]
    for path in gone:
        path.unlink()
    check = verify_files(engine, out)
    assert sorted(path for path, _ in check.missing) == sorted(str(p.resolve()) for p in gone)


def test_a_letter_waiting_whole_in_a_killed_runs_private_folder_is_said_waiting_not_missing(history):
    """A run killed after recording its letters, before moving them into place, leaves them in its private folder
    (the next run moves them): intact, they wait; changed there, the letter is missing."""
    from recouvrement.render.files import OWNER
    engine, out = history
    letters = sorted((out / "letters").glob("*.html"))
    private = out / "letters" / ".remind-run-killed"
    private.mkdir()
    (private / OWNER).touch()
    whole, changed = letters[0], letters[1]
    whole.rename(private / whole.name)
    (private / changed.name).write_text(changed.read_text(encoding="utf-8") + " ", encoding="utf-8")
    changed.unlink()
    check = verify_files(engine, out)
    assert check.waiting == [(str(whole.resolve()), str((private / whole.name).resolve()))]
    assert [path for path, _ in check.missing] == [str(changed.resolve())] and not check.ok
