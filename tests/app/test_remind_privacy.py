"""No medical input ever reaches a reminder: care descriptions, act codes and NIRs planted in the invoices
CSV (kept in the database with keep_care) appear in no letter, PDF, e-mail or manifest."""

from __future__ import annotations

import itertools
import os
import tempfile

from pathlib import Path

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from recouvrement.app.remind import run_remind
from recouvrement.config import Privacy, Settings
from recouvrement.db.session import open_engine
from recouvrement.scanner import extract_text, scan_paths
from tests.app.test_remind import MONDAY, invoice, load, with_creditor
from tests.app.world import nir_valid

_databases = itertools.count()
CARE_WORDS = ["Consultation cardiologie", "Séance de kinésithérapie", "Échographie abdominale", "Psychiatrie",
              "Détartrage", "Bilan sanguin", "Radiographie du thorax", "Chimiothérapie"]
ccam = st.from_regex(r"[A-HJ-NP-Z]{4}[0-9]{3}", fullmatch=True)
nir = st.from_regex(r"[12][0-9]{2}(0[1-9]|1[0-2])75[0-9]{6}", fullmatch=True).map(nir_valid)
care = st.lists(st.sampled_from(CARE_WORDS), min_size=1, max_size=3).map(" + ".join)


def fresh_engine(request, folder: Path):
    """A new database for one hypothesis example (the `engine` fixture is one per test, not per example)."""
    if not os.environ.get("RECOUVREMENT_TEST_DB", "sqlite").startswith("postgres"):
        return open_engine(f"sqlite:///{folder / 'recouvrement.db'}")
    base, admin = request.getfixturevalue("postgres_server")
    name = f"privacy{os.getpid()}_{next(_databases)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE template_recouvrement")
    return open_engine(f"{base}/{name}")


@hypothesis_settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cares=st.lists(care, min_size=3, max_size=3), acts=st.lists(st.lists(ccam, min_size=1, max_size=3).map(" ".join),
                                                                   min_size=3, max_size=3),
       nirs=st.lists(nir, min_size=3, max_size=3))
def test_no_planted_medical_input_reaches_any_reminder(request, cares, acts, nirs):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = Settings(privacy=Privacy(keep_care=True, nir_key_file=folder / "nir.key"))
        engine = fresh_engine(request, folder)
        try:
            rows = [invoice(f"F2025-00020{n}", f"P{n}", "01/04/2025", "15/04/2025", "45,00", care=cares[n],
                            acts=acts[n], nir=nirs[n], email="claire@example.org" if n == 0 else "")
                    for n in range(3)]
            load(engine, settings, folder, rows)
            report = run_remind(engine, with_creditor(settings), MONDAY, folder / "out", single_pdf=True)
        finally:
            engine.dispose()
        assert len(report.letters) == 3 and report.errors == []
        produced = sorted((folder / "out").iterdir())
        assert {p.suffix for p in produced} >= {".html", ".pdf", ".eml", ".csv"}
        assert scan_paths([folder / "out"]) == []
        planted = [p for n in range(3) for p in (*acts[n].split(), nirs[n], nirs[n][:13], *cares[n].split(" + "))]
        for path in produced:
            content = " ".join(extract_text(path).split()).lower()
            assert not [p for p in planted if p.lower() in content], path.name
