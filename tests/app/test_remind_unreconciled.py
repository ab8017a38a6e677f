"""The reminders never run on a half-reconciled ledger: payments imported but not yet reconciled block the
letters (run_remind and `recouvrement remind`), a dry run warns, a payment the reconcile queued does not block."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.app.remind import PaymentsNotReconciled, run_remind
from recouvrement.cli import NOT_RECONCILED_EXIT, cli
from recouvrement.cli import commands  # noqa: F401  (registers the commands)
from recouvrement.core.references import rf_reference
from tests.app.test_remind import MONDAY, invoice, load, namesakes, with_creditor
from tests.app.world import payments_file

ONE = "1 paiement importé n'est pas encore rapproché : lancez « recouvrement reconcile » avant les relances."
TWO = "2 paiements importés ne sont pas encore rapprochés : lancez « recouvrement reconcile » avant les relances."


def two_patients(engine, settings, folder: Path) -> None:
    """P1 and P2 each owe 45 € due 15/04/2025, reconciled: on MONDAY both are due a letter."""
    load(engine, settings, folder, [invoice("F2025-000201", "P1", "01/04/2025", "15/04/2025", "45,00"),
                                    invoice("F2025-000202", "P2", "01/04/2025", "15/04/2025", "45,00",
                                            last_name="Durand")])


def import_only(engine, settings, folder: Path, rows: list[str]) -> None:
    """Payments imported, no reconcile after them."""
    import_file(engine, payments_file(folder, rows, name=f"pay{len(list(folder.glob('pay*')))}.csv"), settings)


def p1_pays(day: str = "2025-05-20", pid: str = "B1") -> str:
    return f"{pid};{day};patient;MARTIN CLAIRE;45,00;{rf_reference('F2025-000201')};;;"


def rows(engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def invoke(db_url: str, folder: Path, *args: str):
    (folder / "none.toml").write_text("")
    return CliRunner().invoke(cli, ["--db", db_url, "--config", str(folder / "none.toml"), "remind",
                                    "--as-of", MONDAY.isoformat(), "--out", str(folder / "out"), *args])


def test_a_payment_imported_but_not_reconciled_blocks_the_letters_and_nothing_is_written_or_queued(
        engine, settings, tmp_path):
    two_patients(engine, settings, tmp_path)
    import_only(engine, settings, tmp_path, [p1_pays()])
    with pytest.raises(PaymentsNotReconciled) as refused:
        run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    assert str(refused.value) == ONE
    assert not (tmp_path / "out").exists()
    assert [rows(engine, t) for t in ("letter", "letter_item", "print_batch", "sms_message", "call_task")] == \
        [0, 0, 0, 0, 0]


def test_the_remind_command_refuses_with_the_french_line_and_exit_status_5(engine, settings, db_url, tmp_path):
    two_patients(engine, settings, tmp_path)
    import_only(engine, settings, tmp_path, [p1_pays(), p1_pays("2025-05-21", "B2")])
    result = invoke(db_url, tmp_path)
    assert result.exit_code == NOT_RECONCILED_EXIT == 5, result.output
    assert result.output.strip() == f"erreur : {TWO}"
    assert not (tmp_path / "out").exists() and rows(engine, "letter") == 0


def test_after_reconcile_the_letters_go_and_the_patient_who_paid_gets_none(engine, settings, tmp_path):
    two_patients(engine, settings, tmp_path)
    import_only(engine, settings, tmp_path, [p1_pays()])
    run_reconcile(engine)
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    assert {w.patient_id for w in report.letters} == {"P2"}
    assert report.warning is None


def test_a_dry_run_shows_the_letters_due_with_the_same_warning(engine, settings, db_url, tmp_path):
    two_patients(engine, settings, tmp_path)
    import_only(engine, settings, tmp_path, [p1_pays()])
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out", dry_run=True)
    assert report.warning == ONE and {d.patient_id for d in report.decisions} == {"P1", "P2"}
    result = invoke(db_url, tmp_path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"avertissement : {ONE}" in result.output and "P2" in result.output
    assert not (tmp_path / "out").exists() and rows(engine, "letter") == 0


def test_a_payment_the_reconcile_queued_does_not_block_and_its_candidates_stay_held(engine, settings, tmp_path):
    namesakes(engine, settings, tmp_path)   # imported, then reconciled: the queue holds it for P1 and P2
    with engine.connect() as conn:
        assert conn.execute(text("SELECT kind FROM payment_exception")).scalars().all() == ["ambiguous"]
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    assert report.warning is None
    assert {w.patient_id for w in report.letters} == {"P3"}
    assert {e.patient_id for e in report.exclusions if e.code == "queued_payment"} == {"P1", "P2"}


def test_a_payment_dated_after_the_run_does_not_block_it(engine, settings, tmp_path):
    """A night replayed: a payment dated later counts in no balance of that day."""
    two_patients(engine, settings, tmp_path)
    import_only(engine, settings, tmp_path, [p1_pays("2025-06-10")])
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    assert {w.patient_id for w in report.letters} == {"P1", "P2"}
    with pytest.raises(PaymentsNotReconciled):
        run_remind(engine, with_creditor(settings), date(2025, 6, 10), tmp_path / "later")
