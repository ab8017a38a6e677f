"""A full run (import + reconcile of a scale set) reports where its time goes (issue #16)."""

from __future__ import annotations

from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.db.session import open_engine
from tests.app.test_reconcile_set_based import SCALE_FILES
from tools.samples import generate


def _imported(url: str, folder, settings):
    engine = open_engine(url)
    for name in SCALE_FILES:
        import_file(engine, folder / name, settings)
    return engine


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
