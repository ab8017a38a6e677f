"""The README's main command, run as a user runs it."""

from __future__ import annotations

import os
import re
import shlex
import subprocess

import pytest

from recouvrement.app.demo import prepare_folder
from recouvrement.cli.demo_commands import SAMPLES
from recouvrement.errors import RecouvrementError


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
    assert "fichiers : 6 vus, 6 importés" in done.stdout            # the NOEMIE return among them
    assert "reprise de l'assureur" in done.stdout                      # its retenue reversed an AMO payment
    assert "lettres : avant échéance : 1," in done.stdout           # its own rules turn the pre-due notice on
    assert re.search(r"envois : courrier \d+, e-mail [1-9]\d*, SMS [1-9]", done.stdout)   # consent (issue #14)
    assert list((tmp_path / "demo" / "out").rglob("*.sms.txt"))     # SMS written, not sent: no [sms] url


def test_after_the_demo_the_printed_export_line_lets_the_everyday_commands_find_its_database(tmp_path, db_url):
    env = {k: v for k, v in os.environ.items() if k not in ("RECOUVREMENT_DB", "RECOUVREMENT_CONFIG")}
    done = subprocess.run(["recouvrement", "--db", db_url, "demo", "--dir", str(tmp_path / "demo")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    [export] = [line.strip() for line in done.stdout.splitlines() if line.strip().startswith("export ")]
    for word in shlex.split(export)[1:]:
        name, value = word.split("=", 1)
        env[name] = value
    assert env["RECOUVREMENT_CONFIG"] == str(tmp_path / "demo" / "recouvrement.toml")
    (tmp_path / "elsewhere").mkdir()
    # The head the demo left is the one the folder's commands check (a cut tail is seen from the first command on).
    verify = subprocess.run(["recouvrement", "audit", "verify"], cwd=tmp_path / "elsewhere", env=env,
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stderr
    assert "aucun point de contrôle" not in verify.stderr and "point de contrôle du" in verify.stdout
    runs = subprocess.run(["recouvrement", "runs"], cwd=tmp_path / "elsewhere", env={**env, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=120)
    assert runs.returncode == 0 and runs.stdout.count("terminé") == 4


def test_the_demo_run_again_empties_its_folder_and_says_so(tmp_path):
    folder = tmp_path / "demo"
    assert prepare_folder(folder, SAMPLES, own_database=True) == f"Dossier de démonstration : {folder}"
    for made in ("inbox/a.csv", "out/reports/r.html", "archive/2026-11-23/a.csv"):
        (folder / made).parent.mkdir(parents=True, exist_ok=True)
        (folder / made).write_text("x", encoding="utf-8")
    (folder / "recouvrement.db").write_text("x", encoding="utf-8")
    said = prepare_folder(folder, SAMPLES, own_database=True)
    assert said.endswith("déjà utilisé : résultats précédents effacés, base de données repartie de zéro")
    # what is left is what the demo set up: its marker, the settings and the sample clinic's own rules
    assert sorted(p.name for p in folder.iterdir()) == [".recouvrement-demo", "recouvrement.toml", "rules"]
    assert sorted(p.name for p in (folder / "rules").iterdir()) == sorted(
        p.name for p in (SAMPLES / "rules").iterdir())


def test_the_demo_run_again_on_its_own_database_starts_a_new_audit_checkpoint_too(tmp_path):
    """The checkpoint names the head of the database it was written for: it goes with the demo's own database (kept
    beside a new one, `audit verify` found the new trail rewritten), and stays with a database given as is."""
    folder = tmp_path / "demo"
    prepare_folder(folder, SAMPLES, own_database=True)
    (folder / "recouvrement.db").write_text("x", encoding="utf-8")
    (folder / "recouvrement-audit.checkpoint").write_text("x", encoding="utf-8")
    prepare_folder(folder, SAMPLES, own_database=False)
    assert (folder / "recouvrement-audit.checkpoint").exists() and (folder / "recouvrement.db").exists()
    prepare_folder(folder, SAMPLES, own_database=True)
    assert not (folder / "recouvrement-audit.checkpoint").exists() and not (folder / "recouvrement.db").exists()


def test_the_demo_refuses_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "mine.txt").write_text("à garder", encoding="utf-8")
    with pytest.raises(RecouvrementError, match="ne vient pas de la démo"):
        prepare_folder(tmp_path, SAMPLES, own_database=True)
    assert (tmp_path / "mine.txt").exists()
