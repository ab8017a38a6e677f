"""The README's main command, run as a user runs it."""

from __future__ import annotations

import os
import subprocess


def test_the_demo_runs_the_nightly_job_on_the_samples_and_ends_with_a_clean_scan_and_the_report(tmp_path, db_url):
    env = {k: v for k, v in os.environ.items() if k not in ("RECOUVREMENT_DB", "RECOUVREMENT_CONFIG")}
    done = subprocess.run(["recouvrement", "--db", db_url, "demo", "--dir", str(tmp_path / "demo")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "Contrôle de confidentialité" in done.stdout and ": aucune donnée médicale" in done.stdout
    assert "dossiers remis à l'agence : 0" in done.stdout and "échéancier proposé à" in done.stdout
    report = done.stdout.strip().splitlines()[-1].split("Rapport :")[-1].strip()
    assert (tmp_path / report).is_file()
    assert list((tmp_path / "demo" / "out" / "agency").glob("agency-2027-01-08*.csv"))
