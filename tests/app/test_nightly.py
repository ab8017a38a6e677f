"""The nightly run: inbox to archive or quarantine, run history, and a run killed half-way finished by the next."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from recouvrement.app.nightly import free_name, inbox_files, list_runs, move_out, run_nightly
from recouvrement.config import Inbox, Paths, load_settings
from tests.app.world import INVOICES, invoices_file, payments_file
from tests.app.test_reconcile_db import INSURERS, PATIENTS

AS_OF = date(2025, 4, 1)
SAMPLE_TOML = Path(__file__).resolve().parents[2] / "recouvrement" / "sample_clinic" / "recouvrement.toml"


@pytest.fixture
def folder_settings(settings, tmp_path):
    base = load_settings(SAMPLE_TOML)
    return replace(base, privacy=settings.privacy, paths=Paths(tmp_path / "inbox", tmp_path / "archive",
                                                               tmp_path / "quarantine", tmp_path / "out"),
                   inbox=Inbox(settle_seconds=0))   # files written by the test itself are complete


def drop_world(inbox: Path) -> list[Path]:
    inbox.mkdir(parents=True, exist_ok=True)
    return [invoices_file(inbox, name="1-invoices.csv"), payments_file(inbox, INSURERS, "2-insurers.csv"),
            payments_file(inbox, PATIENTS, "3-patients.csv")]


def count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def test_a_run_imports_the_inbox_and_archives_each_file_under_its_day(engine, folder_settings):
    drop_world(folder_settings.paths.inbox)
    result = run_nightly(engine, folder_settings, AS_OF)
    archive = folder_settings.paths.archive / "2025-04-01"
    assert sorted(p.name for p in archive.iterdir()) == ["1-invoices.csv", "2-insurers.csv", "3-patients.csv"]
    assert list(folder_settings.paths.inbox.iterdir()) == []
    assert (count(engine, "invoice"), count(engine, "payment")) == (len(INVOICES), len(INSURERS) + len(PATIENTS))
    assert result.counts["files"] == {"seen": 3, "imported": 3, "quarantined": 0, "left": 0}
    assert result.counts["allocations"] == 4


def test_a_refused_row_is_listed_beside_the_archived_file_and_the_good_rows_are_imported(engine, folder_settings):
    inbox = folder_settings.paths.inbox
    inbox.mkdir(parents=True)
    payments_file(inbox, ["X1;2025-03-01;amo;CPAM;not money;;;paid;", "X2;2025-03-01;amo;CPAM;10,00;;;paid;"], "bad.csv")
    result = run_nightly(engine, folder_settings, AS_OF)
    archive = folder_settings.paths.archive / "2025-04-01"
    assert (archive / "bad.csv").exists() and not (inbox / "bad.csv").exists()
    assert not folder_settings.paths.quarantine.exists() or not any(folder_settings.paths.quarantine.iterdir())
    rejects = (archive / "bad.csv.rejects.csv").read_text().splitlines()
    assert rejects[0] == "file,line,field,reason" and rejects[1].startswith("bad.csv,2,amount,")
    assert count(engine, "payment") == 1
    assert "bad.csv : 1 ligne(s) refusée(s), listées dans bad.csv.rejects.csv" in result.errors
    assert result.counts["rows"]["refused"] == 1


def test_a_file_of_no_known_format_goes_to_quarantine_with_the_reason(engine, folder_settings):
    inbox = folder_settings.paths.inbox
    inbox.mkdir(parents=True)
    (inbox / "notes.txt").write_text("hello\n")
    run_nightly(engine, folder_settings, AS_OF)
    assert "format de fichier inconnu" in (folder_settings.paths.quarantine / "notes.txt.rejects.csv").read_text()


def test_hidden_and_partly_uploaded_files_are_left_in_the_inbox(tmp_path):
    for name in (".hidden.csv", "upload.csv.part", "b.csv", "a.xml"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in inbox_files(tmp_path)] == ["a.xml", "b.csv"]


def test_a_file_dropped_again_the_same_day_is_archived_under_a_new_name(engine, folder_settings):
    inbox = folder_settings.paths.inbox
    drop_world(inbox)
    run_nightly(engine, folder_settings, AS_OF)
    payments_file(inbox, INSURERS[:1], "2-insurers.csv")
    result = run_nightly(engine, folder_settings, AS_OF)
    assert (folder_settings.paths.archive / "2025-04-01" / "2-insurers-2.csv").exists()
    assert result.counts["rows"] == {"imported": 0, "duplicates": 1, "refused": 0}


def test_a_file_already_moved_with_the_same_content_is_not_copied_twice(tmp_path):
    (tmp_path / "inbox").mkdir()
    (tmp_path / "archive").mkdir()
    (tmp_path / "inbox" / "f.csv").write_text("same")
    (tmp_path / "archive" / "f.csv").write_text("same")
    assert move_out(tmp_path / "inbox" / "f.csv", tmp_path / "archive") == tmp_path / "archive" / "f.csv"
    assert sorted(p.name for p in (tmp_path / "archive").iterdir()) == ["f.csv"]
    assert not (tmp_path / "inbox" / "f.csv").exists()


def test_a_taken_name_gets_a_numbered_suffix(tmp_path):
    (tmp_path / "f.csv").write_text("a")
    (tmp_path / "f-2.csv").write_text("b")
    assert free_name(tmp_path, "f.csv") == tmp_path / "f-3.csv"


def test_each_run_is_recorded_with_its_counts_and_status(engine, folder_settings):
    drop_world(folder_settings.paths.inbox)
    result = run_nightly(engine, folder_settings, AS_OF, now=datetime(2025, 4, 1, 0, 30, tzinfo=timezone.utc))
    [run] = list_runs(engine)
    assert (run.id, run.as_of, run.status) == (result.run_id, AS_OF, result.status)
    assert run.counts["files"]["imported"] == 3 and run.counts["allocations"] == 4
    assert run.started_at == datetime(2025, 4, 1, 0, 30, tzinfo=timezone.utc)
    assert result.report == folder_settings.paths.output / "reports" / "report-2025-04-01.html"


def test_a_run_left_running_is_marked_failed_as_interrupted_by_the_next(engine, folder_settings):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO run (started_at, as_of, status, counts, errors) "
                          "VALUES (:t, :a, 'running', '{}', '')"), {"t": datetime(2025, 3, 31, 0, 30, tzinfo=timezone.utc), "a": date(2025, 3, 31)})
    run_nightly(engine, folder_settings, AS_OF)
    old = list_runs(engine)[-1]
    assert (old.status, old.errors) == ("failed", "interrupted")
    assert old.ended_at is not None


def test_the_run_holds_the_lock_and_releases_it(engine, folder_settings):
    run_nightly(engine, folder_settings, AS_OF)
    assert count(engine, "run_lock") == 0


# -- a real process killed half-way -----------------------------------------------------------------

def write_config(folder: Path) -> None:
    text_ = SAMPLE_TOML.read_text(encoding="utf-8") + '\n[privacy]\nnir_key_file = "nir.key"\n[inbox]\nsettle_seconds = 0\n'
    (folder / "recouvrement.toml").write_text(text_, encoding="utf-8")


def nightly_process(db_url: str, folder: Path, pause: int | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("RECOUVREMENT_TEST_PAUSE_AFTER_FILE", None)
    if pause:
        env["RECOUVREMENT_TEST_PAUSE_AFTER_FILE"] = str(pause)
    return subprocess.Popen(["recouvrement", "--db", db_url, "nightly", "--as-of", AS_OF.isoformat()], cwd=folder,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_run_killed_after_committing_a_file_is_finished_by_the_next_with_nothing_lost_or_doubled(
        engine, db_url, tmp_path):
    write_config(tmp_path)
    drop_world(tmp_path / "inbox")
    first = nightly_process(db_url, tmp_path, pause=2)
    try:
        assert first.stderr.readline().strip() == "paused after file 2"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    # File 2 is committed but still in the inbox; file 3 was never read.
    assert sorted(p.name for p in (tmp_path / "inbox").iterdir()) == ["2-insurers.csv", "3-patients.csv"]
    assert [r.status for r in list_runs(engine)] == ["running"]
    with engine.begin() as conn:     # hours pass: the dead holder's lock grows stale
        conn.execute(text("UPDATE run_lock SET acquired_at = :t"), {"t": datetime.now(timezone.utc) - timedelta(hours=7)})
    second = nightly_process(db_url, tmp_path)
    out, err = second.communicate(timeout=300)
    assert "locked" not in err
    assert list((tmp_path / "inbox").iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "archive" / "2025-04-01").iterdir()) == [
        "1-invoices.csv", "2-insurers.csv", "3-patients.csv"]
    assert (count(engine, "invoice"), count(engine, "payment")) == (len(INVOICES), len(INSURERS) + len(PATIENTS))
    assert count(engine, "allocation") == 4
    runs = list_runs(engine)
    assert [(r.status, r.errors) for r in runs][1] == ("failed", "interrupted")
    assert runs[0].counts["rows"] == {"imported": len(PATIENTS), "duplicates": len(INSURERS), "refused": 0}
    listing = subprocess.run(["recouvrement", "--db", db_url, "runs"], cwd=tmp_path, capture_output=True, text=True,
                             env={**os.environ, "COLUMNS": "200"})
    assert listing.returncode == 0 and "interrupted" in listing.stdout
