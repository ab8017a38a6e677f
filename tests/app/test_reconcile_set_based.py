"""The set-based pass settles the plain explicit lines exactly as the pure engine would."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.db.session import open_engine
from tools.samples import generate

SAMPLES = Path(__file__).resolve().parents[2] / "recouvrement" / "sample_clinic"
FILES = ("invoices.csv", "remittance_amo.csv", "remittance_amc.csv", "bank_camt053.xml", "bank_cfonb120.txt")
SCALE_FILES = ("invoices.csv", "remittance_amo.csv", "remittance_amc.csv", "payments_patient.csv")


def outcome(engine) -> tuple[list, list, list]:
    with engine.connect() as conn:
        allocations = sorted(tuple(r) for r in conn.execute(text(
            "SELECT payment_id, invoice_number, payer_type, amount_cents, rule FROM allocation")))
        queue = sorted(tuple(r) for r in conn.execute(text(
            "SELECT payment_id, kind, remaining_cents, reason, patient_id FROM payment_exception")))
        moved = sorted(tuple(str(v) for v in r) for r in conn.execute(text(
            "SELECT invoice_number, from_payer, amount_cents, transfer_date, reversed_by FROM share_transfer")))
    return allocations, queue, moved


def reconciled_both_ways(folder: Path, files, db_url: str, tmp_path: Path, settings, in_steps: bool):
    results = []
    for set_based, url in ((True, db_url), (False, f"sqlite:///{tmp_path / 'pure.db'}")):
        engine = open_engine(url)
        for number, name in enumerate(files):
            import_file(engine, folder / name, settings)
            if in_steps and number:          # several nights: later files meet earlier allocations
                run_reconcile(engine, set_based=set_based)
        run_reconcile(engine, set_based=set_based)
        results.append(outcome(engine))
        with engine.connect() as conn:
            passes = [e for (e,) in conn.execute(text("SELECT payload FROM audit_event WHERE kind = 'reconcile'"))]
        assert any('"set_based": null' not in p for p in passes) == set_based    # the pass really ran, or not
        engine.dispose()
    return results


@pytest.mark.parametrize("in_steps", [False, True])
def test_the_sample_clinic_reconciles_the_same_with_and_without_the_set_based_pass(db_url, tmp_path, settings,
                                                                                   in_steps):
    with_sql, pure = reconciled_both_ways(SAMPLES, FILES, db_url, tmp_path, settings, in_steps)
    assert with_sql == pure
    assert len(with_sql[0]) > 600


def test_a_scale_set_reconciles_the_same_with_and_without_the_set_based_pass(db_url, tmp_path, settings):
    folder = tmp_path / "scale"
    generate(folder, invoices=3000, scale=True)
    with_sql, pure = reconciled_both_ways(folder, SCALE_FILES, db_url, tmp_path, settings, in_steps=True)
    assert with_sql == pure
    assert {a[4] for a in with_sql[0]} >= {"explicit", "rf", "text"}
