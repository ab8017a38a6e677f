"""The inbox: a file is taken only once complete; links, folders, hidden files and long names each get a
clear, reported decision; one bad file never stops the others or the rest of the night."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from recouvrement.app import imports, nightly
from recouvrement.app.nightly import run_nightly
from recouvrement.config import Inbox, Paths, Settings, load_settings
from tests.app.world import INVOICE_HEADER, INVOICES, invoices_file

AS_OF = date(2025, 4, 1)
SAMPLE_TOML = Path(__file__).resolve().parents[2] / "recouvrement" / "sample_clinic" / "recouvrement.toml"

WRITER = r"""
import sys, time
path, rows, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
with open(path, "w", encoding="utf-8", newline="") as handle:
    handle.write(sys.argv[4] + "\r\n")
    handle.flush()
    for n in range(1, rows + 1):
        handle.write(f"F2025-{n:06d};10/01/2025;;P{n};Martin;Luc;1 rue A;75019;Paris;;;;10,00;0;0;10,00;;none;;\r\n")
        handle.flush()
        time.sleep(pause)
"""


@pytest.fixture
def inbox_settings(settings, tmp_path) -> Settings:
    return replace(settings, creditor=load_settings(SAMPLE_TOML).creditor, paths=Paths(tmp_path / "inbox", tmp_path / "archive", tmp_path / "quarantine",
                                         tmp_path / "out"), inbox=Inbox(settle_seconds=0))


def count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def test_a_file_still_being_written_by_another_process_is_imported_only_once_complete(engine, inbox_settings):
    settings = replace(inbox_settings, inbox=Inbox(settle_seconds=1))
    inbox = settings.paths.inbox
    inbox.mkdir(parents=True)
    target = inbox / "invoices.csv"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target), "100", "0.05", INVOICE_HEADER])
    try:
        while not target.exists() or target.stat().st_size == 0:
            time.sleep(0.01)
        during = run_nightly(engine, settings, AS_OF)
    finally:
        writer.wait(timeout=60)
    assert count(engine, "invoice") == 0 and target.exists()
    assert during.counts["files"]["left"] == 1
    assert any("invoices.csv : en cours d'écriture" in e for e in during.errors)
    time.sleep(1.1)
    after = run_nightly(engine, settings, AS_OF)
    assert count(engine, "invoice") == 100 and after.counts["rows"] == {"imported": 100, "duplicates": 0, "refused": 0}
    assert not target.exists() and (settings.paths.archive / AS_OF.isoformat() / "invoices.csv").exists()


def test_a_file_uploaded_under_part_is_left_until_renamed_and_taken_then(engine, inbox_settings):
    inbox = inbox_settings.paths.inbox
    inbox.mkdir(parents=True)
    upload = invoices_file(inbox, name="invoices.csv.part")
    first = run_nightly(engine, inbox_settings, AS_OF)
    assert count(engine, "invoice") == 0 and upload.exists()
    assert "boîte de réception : invoices.csv.part : dépôt en cours (*.part) : pris une fois renommé" in first.errors
    upload.rename(inbox / "invoices.csv")
    run_nightly(engine, inbox_settings, AS_OF)
    assert count(engine, "invoice") == len(INVOICES)


def test_a_symbolic_link_is_refused_and_what_it_points_to_is_never_copied(engine, inbox_settings, tmp_path):
    inbox = inbox_settings.paths.inbox
    inbox.mkdir(parents=True)
    outside = invoices_file(tmp_path, name="outside.csv")
    (inbox / "passwd.csv").symlink_to("/etc/passwd")
    (inbox / "invoices.csv").symlink_to(outside)
    result = run_nightly(engine, inbox_settings, AS_OF)
    assert count(engine, "invoice") == 0
    for folder in (inbox_settings.paths.quarantine, inbox_settings.paths.archive):
        assert not folder.exists() or not [p for p in folder.rglob("*") if p.is_file()]
    assert (inbox / "passwd.csv").is_symlink() and (inbox / "invoices.csv").is_symlink()
    assert sum("lien symbolique refusé" in e for e in result.errors) == 2
    assert result.counts["files"] == {"seen": 0, "imported": 0, "quarantined": 0, "left": 2}


def test_a_file_turned_into_a_link_after_the_listing_is_refused_too(tmp_path):
    (tmp_path / "f.csv").symlink_to("/etc/passwd")
    signature = (os.stat("/etc/passwd").st_size, os.stat("/etc/passwd").st_mtime_ns)
    with pytest.raises(OSError):
        nightly.stage(tmp_path / "f.csv", signature, tmp_path / "staging")
    assert not (tmp_path / "staging" / "f.csv").exists()


def test_a_sub_folder_is_not_read_and_is_reported(engine, inbox_settings):
    inbox = inbox_settings.paths.inbox
    (inbox / "2025").mkdir(parents=True)
    invoices_file(inbox / "2025")
    result = run_nightly(engine, inbox_settings, AS_OF)
    assert count(engine, "invoice") == 0 and (inbox / "2025" / "invoices.csv").exists()
    assert ("boîte de réception : 2025 : dossier ignoré : les fichiers se déposent directement dans la boîte"
            in result.errors)


def test_a_hidden_file_is_left_alone_and_reported(engine, inbox_settings):
    inbox = inbox_settings.paths.inbox
    inbox.mkdir(parents=True)
    invoices_file(inbox, name=".invoices.csv")
    result = run_nightly(engine, inbox_settings, AS_OF)
    assert count(engine, "invoice") == 0 and (inbox / ".invoices.csv").exists()
    assert "boîte de réception : .invoices.csv : fichier caché ignoré" in result.errors


def test_a_file_whose_name_is_too_long_for_our_suffixes_is_imported_and_archived_under_a_shorter_name(
        engine, inbox_settings):
    inbox = inbox_settings.paths.inbox
    inbox.mkdir(parents=True)
    name = "relevé-" + "é" * 115 + ".csv"            # 246 bytes: room for no "-2" or ".rejects.csv"
    assert len(name.encode()) > 240
    invoices_file(inbox, INVOICES + ["F2025-000199;pas une date;;P9;X;Y;1 rue;75019;Paris;;;;1,00;0;0;1,00;;none;;"],
                  name=name)
    result = run_nightly(engine, inbox_settings, AS_OF)
    assert count(engine, "invoice") == len(INVOICES) and not (inbox / name).exists()
    archived = sorted(p.name for p in (inbox_settings.paths.archive / AS_OF.isoformat()).iterdir())
    assert len(archived) == 2 and archived[0].endswith(".csv") and archived[1] == archived[0] + ".rejects.csv"
    assert all(len(n.encode()) <= 255 for n in archived)
    assert result.counts["files"]["imported"] == 1 and result.counts["rows"]["refused"] == 1


def test_a_file_that_breaks_the_importer_is_left_and_the_others_and_the_night_go_on(engine, inbox_settings,
                                                                                    monkeypatch):
    inbox = inbox_settings.paths.inbox
    inbox.mkdir(parents=True)
    invoices_file(inbox, INVOICES[:2], name="1-good.csv")
    invoices_file(inbox, INVOICES[2:3], name="2-breaks.csv")
    invoices_file(inbox, INVOICES[3:], name="3-good.csv")
    real = imports.import_file    # what the night's import_files calls for each file

    def flaky(engine_, path, settings_, *args, **kwargs):
        if path.name == "2-breaks.csv":
            raise RuntimeError("importer bug")
        return real(engine_, path, settings_, *args, **kwargs)

    monkeypatch.setattr(imports, "import_file", flaky)
    result = run_nightly(engine, inbox_settings, AS_OF)
    assert count(engine, "invoice") == len(INVOICES) - 1
    assert sorted(p.name for p in inbox.iterdir()) == ["2-breaks.csv"]
    assert any(e.startswith("boîte de réception : 2-breaks.csv : erreur inattendue (RuntimeError)")
               for e in result.errors)
    assert "letters" in result.counts and result.report is not None      # the rest of the night ran


def test_a_file_that_cannot_be_read_as_anything_goes_to_quarantine_and_the_next_is_imported(engine,
                                                                                          inbox_settings):
    inbox = inbox_settings.paths.inbox
    inbox.mkdir(parents=True)
    (inbox / "1-notes.txt").write_bytes(b"\xff\xfe not a statement")
    invoices_file(inbox, name="2-invoices.csv")
    result = run_nightly(engine, inbox_settings, AS_OF)
    assert (inbox_settings.paths.quarantine / "1-notes.txt").exists()
    assert count(engine, "invoice") == len(INVOICES) and list(inbox.iterdir()) == []
    assert result.counts["files"] == {"seen": 2, "imported": 1, "quarantined": 1, "left": 0}


def test_a_file_dated_in_the_future_is_taken_once_watched_unchanged_for_the_settle_delay(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("x", encoding="utf-8")
    future = time.time() + 3600
    os.utime(path, (future, future))
    clock = [time.time()]
    ready, left = nightly.settled([path], 10, clock=lambda: clock[0],
                                  sleep=lambda seconds: clock.__setitem__(0, clock[0] + seconds))
    assert [p for p, _ in ready] == [path] and left == []


def test_a_file_changed_within_the_settle_delay_is_left_for_the_next_run(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("x", encoding="utf-8")

    def writer_meanwhile(seconds):
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("more")

    ready, left = nightly.settled([path], 10, sleep=writer_meanwhile)
    assert ready == [] and [item.name for item in left] == ["f.csv"]


def test_a_name_with_a_line_break_is_reported_on_one_line(engine, inbox_settings):
    inbox = inbox_settings.paths.inbox
    inbox.mkdir(parents=True)
    (inbox / ".caché\nfaux : rapport").write_text("x", encoding="utf-8")
    result = run_nightly(engine, inbox_settings, AS_OF)
    assert "boîte de réception : .caché?faux : rapport : fichier caché ignoré" in result.errors
