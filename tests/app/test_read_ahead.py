"""app.imports.import_files, the night's import of its files: while one is stored, the next is read and checked in a
child process (ReadAhead). File by file it gives what import_file gives: the same reports, the same errors, the
same stored rows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from recouvrement.app import imports
from recouvrement.app.imports import import_file, import_files
from recouvrement.audit import AuditSeal, seal_engine
from recouvrement.db.session import open_engine
from tests.app.world import INVOICES, SAMPLE_CLINIC, SAMPLE_FILES, invoices_file, payments_file

TABLES = {
    "invoice": "invoice_number, patient_id, issue_date, due_date, total_cents, amo_cents, amc_cents, patient_cents",
    "patient": "patient_id, last_name, first_name, birth_date, phone, email, coverage, nir_hash",
    "payment": "payment_id, payment_date, payer_type, payer_name, amount_cents, reference, invoice_number, status, "
               "source_file",
    "patient_name_key": "last_key, first_key, patient_id",
    "import_batch": "kind, format, source_file, sha256, rows_read, rows_imported, rows_duplicate, rows_rejected",
}


def _files(folder: Path) -> list[Path]:
    """The sample clinic's files (a NOEMIE return: NIRs hashed with the key), files with refused rows, a binary one."""
    folder.mkdir()
    files = [Path(shutil.copy(SAMPLE_CLINIC / name, folder / name)) for name in SAMPLE_FILES]
    files.append(invoices_file(folder, [*INVOICES, "F2025-000199;pas une date;;P9;X;Y;1 rue;75019;Paris;;;;1,00;0;0;"
                                        "1,00;;none;;", INVOICES[0]], name="with-refused.csv"))
    binary = folder / "broken.csv"
    binary.write_bytes(b"invoice_number;patient_id\r\nF1;P1\r\n\x00\x00")
    files.append(binary)
    files.append(payments_file(folder, ["V1;2025-03-01;patient;Lefèvre Éloïse;10,00;F2025-000102;;;",
                                        "V2;2025-03-02;martian;X;1,00;;;;", "V3;le 3 mars;patient;X;1,00;;;;"],
                               name="payments.csv"))
    return files


def _outcome(outcome) -> tuple:
    if isinstance(outcome, Exception):
        return type(outcome).__name__, str(outcome), getattr(outcome, "line", None), getattr(outcome, "file", None)
    return (outcome.file, outcome.format, outcome.kind, outcome.rows_read, outcome.imported, outcome.duplicates,
            [str(r) for r in outcome.rejects], outcome.warnings, outcome.refunds_done)


def _stored(engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {table: sorted(tuple(str(v) for v in row) for row in conn.execute(text(f"SELECT {columns} FROM {table}")))
                for table, columns in TABLES.items()}


def test_files_read_ahead_in_a_child_give_what_one_by_one_gives(engine, settings, tmp_path, audit_key, monkeypatch):
    files = _files(tmp_path / "in")
    alone = seal_engine(open_engine(f"sqlite:///{tmp_path / 'alone.db'}"), AuditSeal(audit_key, tmp_path / "alone.cp"))
    expected = []
    for path in files:
        try:
            expected.append(_outcome(import_file(alone, path, settings)))
        except Exception as exc:
            expected.append(_outcome(exc))
    real = imports._read

    def here_only_the_first(path, *args):   # the others must come from the child (spawned: it has the real one)
        assert path == files[0], f"{path.name} read in the parent"
        return real(path, *args)

    monkeypatch.setattr(imports, "_read", here_only_the_first)
    got = [(path, _outcome(outcome)) for path, outcome in import_files(engine, files, settings, read_ahead_from=0)]
    assert [path for path, _ in got] == files
    assert [outcome for _, outcome in got] == expected
    assert any(o[0] == "RecouvrementError" and o[2] == 3 for o in expected)      # the NUL byte's line, from the child
    assert any(o[0] == "with-refused.csv" and len(o[6]) == 6 for o in expected)  # the sample's numbers, a bad date, twice
    assert _stored(engine) == _stored(alone)
    alone.dispose()


def test_small_files_are_read_one_after_the_other_without_a_child(engine, settings, tmp_path, monkeypatch):
    files = _files(tmp_path / "in")

    def no_child(*args, **kwargs):
        raise AssertionError("a child process started for files under READ_AHEAD_FROM")

    monkeypatch.setattr(imports, "ProcessPoolExecutor", no_child)
    outcomes = [outcome for _, outcome in import_files(engine, files, settings)]
    assert sum(isinstance(o, Exception) for o in outcomes) == 1 and len(outcomes) == len(files)


def test_a_file_of_the_wrong_kind_is_refused_as_import_file_does(engine, settings, tmp_path):
    files = _files(tmp_path / "in")[:3]
    outcomes = [outcome for _, outcome in import_files(engine, files, settings, expect="payments", read_ahead_from=0)]
    assert isinstance(outcomes[0], imports.RecouvrementError) and "pas paiements" in str(outcomes[0])
    assert [o.imported > 0 for o in outcomes[1:]] == [True, True]


@pytest.fixture(autouse=True)
def _no_leftover_folder(monkeypatch):
    """The child's files are written in a private folder, removed once the imports are over."""
    made = []
    real = imports.tempfile.mkdtemp

    def mkdtemp(*args, **kwargs):
        made.append(Path(real(*args, **kwargs)))
        return str(made[-1])

    monkeypatch.setattr(imports.tempfile, "mkdtemp", mkdtemp)
    yield
    assert not [folder for folder in made if folder.name.startswith("recouvrement-read-") and folder.exists()]


def test_when_the_child_fails_the_file_is_read_here_as_without_it(engine, settings, tmp_path, audit_key, monkeypatch):
    files = _files(tmp_path / "in")[:3]
    gone = tmp_path / "gone"

    def a_folder_removed_at_once(*args, **kwargs):   # the child cannot write what it read
        return str(gone)

    monkeypatch.setattr(imports.tempfile, "mkdtemp", a_folder_removed_at_once)
    outcomes = [outcome for _, outcome in import_files(engine, files, settings, read_ahead_from=0)]
    assert [type(o).__name__ for o in outcomes] == ["ImportReport"] * 3 and all(o.imported for o in outcomes)


def test_a_read_folder_left_by_a_killed_process_is_removed_and_a_running_one_s_is_kept(tmp_path):
    """A process killed while it read ahead leaves its private folder (patients' rows, pickled) behind: the next
    one removes it; the folder of a process still running (another import) is left alone."""
    import os
    import subprocess
    import sys

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        left = tmp_path / f"{imports.READ_FOLDER}{ended.pid}-abc"
        kept = tmp_path / f"{imports.READ_FOLDER}{running.pid}-def"
        mine = tmp_path / f"{imports.READ_FOLDER}{os.getpid()}-ghi"
        other = tmp_path / "recouvrement-read-not-a-pid"
        for folder in (left, kept, mine, other):
            folder.mkdir()
            (folder / "x.parsed").write_bytes(b"rows")
        assert imports.remove_left_read_folders(tmp_path) == [left]
        assert not left.exists() and kept.exists() and mine.exists() and other.exists()
    finally:
        running.kill()
        running.wait()


def test_a_parsed_result_written_column_by_column_reads_back_the_same(tmp_path):
    """write_parsed / read_parsed (the child's result, its frames' columns one pickle each): every frame of the
    Parsed, its extra ones too (an invoices file's patients and care), with the same cells, dtypes, columns and
    index; the rest (rejects, warnings, counts) as pickled whole."""
    import pandas as pd
    from pandas.testing import assert_frame_equal

    from recouvrement.importers.base import Parsed, Reject

    arrow = pd.StringDtype("pyarrow")
    frame = pd.DataFrame({"payment_id": pd.array(["P1", "P2", None], dtype=arrow),
                          "payment_date": pd.Series(["2025-01-02", "2025-01-03", None], dtype="str"),
                          "amount_cents": pd.Series([1, -2, 0], dtype="int64"),
                          "reference": pd.Series(["a", None, "c"], dtype=object),
                          "flag": [True, False, True], "ratio": [0.5, float("nan"), 1.0],
                          "kind": pd.Categorical(["x", "y", "x"])})
    parsed = Parsed("payments", frame, [Reject("f.csv", 3, "amount", "pas un montant")], ["f.csv:1: colonne"], 4)
    parsed.patients = pd.DataFrame({"patient_id": ["A", "B"]}, index=[7, 9])
    parsed.care = pd.DataFrame([[1, 2]], columns=["same", "same"])
    parsed.nothing = pd.DataFrame(index=pd.RangeIndex(2))
    with open(tmp_path / "x.parsed", "wb") as out:
        imports.write_parsed(parsed, out)
    with open(tmp_path / "x.parsed", "rb") as handle:
        back = imports.read_parsed(handle)
    for name in ("frame", "patients", "care", "nothing"):
        assert_frame_equal(getattr(back, name), getattr(parsed, name), check_exact=True)
        assert list(getattr(back, name).dtypes) == list(getattr(parsed, name).dtypes)
    assert (back.kind, back.rejects, back.warnings, back.rows_read, back.outgoing) == \
        (parsed.kind, parsed.rejects, parsed.warnings, parsed.rows_read, parsed.outgoing)
