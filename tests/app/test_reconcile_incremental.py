"""A night that reads only what its payments can touch allocates exactly as a night reading the whole ledger."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

import recouvrement.app.reconcile as reconcile_use_case
from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.db.session import open_engine
from tests.app.test_reconcile_set_based import FILES, SAMPLES, SCALE_FILES, outcome
from tests.app.world import invoices_file, payments_file
from tools.samples import generate
from tools.split_days import ordinary_last_day, split


def _whole_ledger_forbidden(*_args, **_kwargs):
    raise AssertionError("the incremental night read the whole ledger")


def nights(engine, folders: list[Path], files, settings, incremental: bool, monkeypatch) -> tuple[list, list, list]:
    """Each folder's files imported, then one reconcile: one night per folder."""
    with monkeypatch.context() as patched:
        if incremental:
            patched.setattr(reconcile_use_case, "load_ledger", _whole_ledger_forbidden)
        for folder in folders:
            for name in files:
                if (folder / name).exists():
                    import_file(engine, folder / name, settings)
            run_reconcile(engine, incremental=incremental)
    return outcome(engine)


def both_ways(db_url, tmp_path, settings, folders, files, monkeypatch):
    incremental = open_engine(db_url)
    whole = open_engine(f"sqlite:///{tmp_path / 'whole.db'}")
    try:
        return (nights(incremental, folders, files, settings, True, monkeypatch),
                nights(whole, folders, files, settings, False, monkeypatch))
    finally:
        incremental.dispose()
        whole.dispose()


def test_a_scale_set_split_into_history_and_its_last_days_reconciles_incrementally_as_on_the_whole_ledger(
        db_url, tmp_path, settings, monkeypatch):
    folder = tmp_path / "scale"
    generate(folder, invoices=3000, scale=True)
    last = ordinary_last_day(folder)
    days = []
    for k, day in enumerate((last - timedelta(days=2), last - timedelta(days=1), last, last + timedelta(days=1))):
        days.append(tmp_path / f"day{k}")
        split(folder, tmp_path / f"before{k}", days[-1], day)
    history = tmp_path / "before0"
    incremental, whole = both_ways(db_url, tmp_path, settings, [history, *days], SCALE_FILES, monkeypatch)
    allocations, queue, moved = incremental
    assert (allocations, queue, moved) == whole
    assert {a[4] for a in allocations} >= {"explicit", "rf", "text", "name_amount"}
    assert {q[1] for q in queue} >= {"credit", "ambiguous", "unmatched"}
    assert moved


def test_the_sample_clinic_night_by_night_reconciles_incrementally_as_on_the_whole_ledger(
        db_url, tmp_path, settings, monkeypatch):
    folders = []
    for k, name in enumerate(FILES):            # one file a night: later nights meet earlier allocations
        folders.append(tmp_path / f"night{k}")
        folders[-1].mkdir()
        (folders[-1] / name).write_bytes((SAMPLES / name).read_bytes())
    incremental, whole = both_ways(db_url, tmp_path, settings, folders, FILES, monkeypatch)
    assert incremental == whole
    assert len(incremental[0]) > 600


def test_a_patient_renamed_by_a_newer_invoice_is_found_by_the_new_name_on_the_incremental_path(
        db_url, tmp_path, settings, monkeypatch):
    folder = tmp_path / "world"
    folder.mkdir()
    invoices_file(folder)
    invoices_file(folder, ["F2025-000105;20/03/2025;;P2;Quatremer;Jean-François;8 avenue Foch;69006;Lyon;;;;1,00;"
                           "1,00;0;0;;none;;"], name="renamed.csv")
    payments_file(folder, ["N1;2025-04-01;patient;MME QUATREMER JEAN FRANCOIS;23,00;;;paid;"])
    engine = open_engine(db_url)
    for name in ("invoices.csv", "renamed.csv", "payments.csv"):
        import_file(engine, folder / name, settings)
    monkeypatch.setattr(reconcile_use_case, "load_ledger", _whole_ledger_forbidden)
    run_reconcile(engine, incremental=True)
    with engine.connect() as conn:
        found = conn.execute(text("SELECT invoice_number, rule FROM allocation WHERE payment_id = 'N1'")).all()
    engine.dispose()
    assert [tuple(row) for row in found] == [("F2025-000103", "name_amount")]
