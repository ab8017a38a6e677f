"""Two accountants matching the same payment at the same moment: one wins, the other is told, and the
payment is never allocated twice (real processes, SQLite file or the PostgreSQL server)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

RACER = """
import sys, time
from pathlib import Path
from recouvrement.app.reconcile import match_queued
from recouvrement.app.workbench import AlreadyHandled
from recouvrement.db.session import open_engine
url, invoice, folder, me = sys.argv[1:5]
engine = open_engine(url)
engine.connect().close()
Path(folder, me + ".ready").touch()
while not Path(folder, "go").exists():
    time.sleep(0.005)
try:
    match_queued(engine, "Q-NAME", invoice, actor=me)
    print("won")
except AlreadyHandled as exc:
    print("told:", exc)
"""


def test_two_people_matching_one_payment_at_once_one_wins_the_other_is_told(clinic, db_url, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    racers = [subprocess.Popen([sys.executable, "-c", RACER, db_url, invoice, str(tmp_path), name], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for invoice, name in (("F2025-000101", "compta"), ("F2025-000102", "compta2"))]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"{n}.ready").exists() for n in ("compta", "compta2")):
        assert time.monotonic() < deadline and all(r.poll() is None for r in racers)
        time.sleep(0.05)
    (tmp_path / "go").touch()
    outputs = [r.communicate(timeout=120) for r in racers]
    said = sorted(out.strip().split(":")[0] for out, _ in outputs)
    assert said == ["told", "won"], outputs
    with clinic.connect() as conn:
        allocated = conn.execute(text("SELECT COUNT(*), COALESCE(SUM(amount_cents), 0) FROM allocation "
                                      "WHERE payment_id = 'Q-NAME'")).one()
        matches = conn.execute(text("SELECT COUNT(*) FROM audit_event WHERE kind = 'manual_match'")).scalar_one()
    assert tuple(allocated) == (1, 1000) and matches == 1


SPLITTER = """
import sys, time
from pathlib import Path
from recouvrement.app.payment_split import split_payment
from recouvrement.db.session import open_engine
from recouvrement.errors import RecouvrementError
url, folder, me = sys.argv[1:4]
engine = open_engine(url)
engine.connect().close()
Path(folder, me + ".ready").touch()
while not Path(folder, "go").exists():
    time.sleep(0.005)
try:
    print("won", split_payment(engine, "Q-NAME", [("F2025-000101", 400), ("F2025-000102", 300)], actor=me))
except RecouvrementError as exc:
    print("told:", exc)
"""


def test_two_people_splitting_one_payment_at_once_never_allocate_more_than_it_holds(clinic, db_url, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    names = ("compta", "compta2")
    racers = [subprocess.Popen([sys.executable, "-c", SPLITTER, db_url, str(tmp_path), name], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in names]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"{n}.ready").exists() for n in names):
        assert time.monotonic() < deadline and all(r.poll() is None for r in racers)
        time.sleep(0.05)
    (tmp_path / "go").touch()
    outputs = [r.communicate(timeout=120) for r in racers]
    said = sorted(out.strip().split(":")[0] for out, _ in outputs)
    assert said == ["told", "won 300"], outputs
    with clinic.connect() as conn:
        allocated = conn.execute(text("SELECT COUNT(*), SUM(amount_cents) FROM allocation WHERE payment_id = 'Q-NAME'")).one()
        left = conn.execute(text("SELECT remaining_cents FROM payment_exception WHERE payment_id = 'Q-NAME'")).scalar_one()
    assert tuple(allocated) == (2, 700) and left == 300
