"""A full run (the whole ledger read at once) decides exactly as before while doing less work (issue #16)."""

from __future__ import annotations

import recouvrement.app.reconcile as reconcile_use_case
import recouvrement.core.reconcile as engine_module
from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.db.session import open_engine
from tests.app.test_reconcile_set_based import SCALE_FILES, outcome
from tools.samples import generate


def _every_patients_keys_forbidden(*_args, **_kwargs):
    raise AssertionError("the engine computed the name keys of every patient")


def _imported(url: str, folder, settings):
    engine = open_engine(url)
    for name in SCALE_FILES:
        import_file(engine, folder / name, settings)
    return engine


def test_a_whole_ledger_night_takes_the_payers_name_keys_from_the_name_index_and_allocates_the_same(
        db_url, tmp_path, settings, monkeypatch):
    folder = tmp_path / "scale"
    generate(folder, invoices=3000, scale=True)
    indexed = _imported(db_url, folder, settings)
    computed = _imported(f"sqlite:///{tmp_path / 'computed.db'}", folder, settings)
    whole_ledger = reconcile_use_case.load_ledger
    try:
        with monkeypatch.context() as patched:
            patched.setattr(engine_module, "patient_name_keys", _every_patients_keys_forbidden)
            run_reconcile(indexed, incremental=False)
        with monkeypatch.context() as patched:            # as before: the engine computes every patient's keys
            patched.setattr(reconcile_use_case, "load_ledger", lambda conn, payments=None: whole_ledger(conn))
            run_reconcile(computed, incremental=False)
        found, expected = outcome(indexed), outcome(computed)
    finally:
        indexed.dispose()
        computed.dispose()
    assert found == expected
    assert "name_amount" in {a[4] for a in found[0]}


def test_a_reconcile_reports_the_wall_and_cpu_seconds_of_its_stages(db_url, tmp_path, settings):
    folder = tmp_path / "scale"
    generate(folder, invoices=300, scale=True)
    engine = _imported(db_url, folder, settings)
    try:
        report = run_reconcile(engine)
    finally:
        engine.dispose()
    assert list(report.stages) == ["read", "explicit", "match", "write"]
    assert all(wall >= 0 and cpu >= 0 for wall, cpu in report.stages.values())
