"""The package installed as a user installs it (not editable, from a copy of the sources, run from another
folder) finds its rules, templates and sample clinic: the demo runs end to end."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_installed_package_runs_the_demo_from_another_folder(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "tests", "benchmarks", "demo", ".ci"))
    target = tmp_path / "site"
    # Offline and fast: no index, no dependencies (this interpreter's), no isolated build environment.
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(source)], check=True, timeout=600,
                   capture_output=True)
    shutil.rmtree(source)              # nothing may be read from the sources any more
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOUVREMENT_")}
    env["PYTHONPATH"] = str(target)
    where = subprocess.run([sys.executable, "-c", "import recouvrement; print(recouvrement.__file__)"], cwd=elsewhere,
                           env=env, capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(target))
    done = subprocess.run([str(target / "bin" / "recouvrement"), "demo"], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert ": aucune donnée médicale" in done.stdout and "échéancier proposé à" in done.stdout
    report = Path(done.stdout.strip().splitlines()[-1].split("Rapport :")[-1].strip())
    assert report.is_file() and report.is_relative_to(elsewhere / "demo")
    explored = subprocess.run([str(target / "bin" / "recouvrement"), "runs"], cwd=elsewhere / "demo", env=env,
                              capture_output=True, text=True, timeout=300)     # its database and settings, found
    assert explored.returncode == 0 and explored.stdout.count("terminé") == 4, explored.stdout + explored.stderr
