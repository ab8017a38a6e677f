"""The reminders' read-and-decide step pauses the cyclic garbage collector (memory.no_cycle_collection) and
always gives it back: after a run, and after a run refused."""

from __future__ import annotations

import gc

import pytest

from recouvrement.app.remind import PaymentsNotReconciled, run_remind
from tests.app.test_remind import MONDAY, with_creditor
from tests.app.test_remind_unreconciled import import_only, p1_pays, two_patients


def test_the_garbage_collector_runs_again_after_the_reminders_are_decided(engine, settings, tmp_path):
    two_patients(engine, settings, tmp_path)
    assert gc.isenabled()
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out", dry_run=True)
    assert len(report.decisions) == 2 and gc.isenabled()


def test_the_garbage_collector_runs_again_after_a_run_refused_for_payments_not_reconciled(engine, settings, tmp_path):
    two_patients(engine, settings, tmp_path)
    import_only(engine, settings, tmp_path, [p1_pays()])
    with pytest.raises(PaymentsNotReconciled):
        run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    assert gc.isenabled()
