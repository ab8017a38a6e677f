"""Refused-row messages, rejects listings, run errors, logs and file names never echo a NIR or a care term:
a flagged cell is described, not copied."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from recouvrement.app import nightly
from recouvrement.app.imports import import_file
from recouvrement.app.nightly import run_nightly
from recouvrement.config import Paths, load_settings
from recouvrement import errors
from recouvrement.cli import user_message
from recouvrement.errors import RecouvrementError
from recouvrement.importers.base import Reject
from tests.app.world import INVOICES, invoices_file, payments_file

AS_OF = date(2025, 4, 1)
NIR = "184127645108946"  # a real key: stdnum says valid
TYPED = ["1-84-12-76-451-089-46", "NIR184127645108946", "1 84 12 76 451 089 46"]
SAMPLE_TOML = Path(__file__).resolve().parents[2] / "recouvrement" / "sample_clinic" / "recouvrement.toml"


def digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def echoes(text: str) -> bool:
    """True when the text holds the NIR (whatever its separators) or the care words planted."""
    return NIR in digits(text) or "kiné" in text.lower() or "kine" in text.lower()


@pytest.fixture
def folder_settings(settings, tmp_path):
    base = load_settings(SAMPLE_TOML)
    return replace(base, privacy=settings.privacy, paths=Paths(tmp_path / "inbox", tmp_path / "archive",
                                                               tmp_path / "quarantine", tmp_path / "out"))


@pytest.mark.parametrize("typed", TYPED)
def test_a_refused_date_cell_holding_a_nir_is_described_not_echoed(engine, settings, tmp_path, typed):
    row = INVOICES[2].replace("10/03/2025", typed)
    report = import_file(engine, invoices_file(tmp_path, [row]), settings)
    [reject] = report.rejects
    assert reject.field == "issue_date" and not echoes(reject.reason)
    assert "ressemble à un NIR" in reject.reason


def test_a_refused_amount_cell_holding_a_care_word_is_described_not_echoed(engine, settings, tmp_path):
    path = payments_file(tmp_path, ["X1;2025-03-01;patient;Martin;séance kiné;;;paid;"])
    [reject] = import_file(engine, path, settings).rejects
    assert reject.field == "amount" and not echoes(reject.reason)
    assert "terme de soin" in reject.reason


def test_a_harmless_refused_cell_is_still_quoted(engine, settings, tmp_path):
    path = payments_file(tmp_path, ["X1;2025-03-01;patient;Martin;not money;;;paid;"])
    [reject] = import_file(engine, path, settings).rejects
    assert reject.reason.endswith("not money")


def test_every_reject_whatever_its_importer_describes_what_it_would_echo():
    reject = Reject(f"releve_{NIR}.csv", 3, "amount", f"not a CFONB amount in cents: '{TYPED[0]}'")
    assert not echoes(str(reject)) and "masque-nir" in reject.file


def test_a_user_error_never_echoes_a_nir_or_a_care_word():
    error = RecouvrementError(f"cannot read as CSV: Expected 3 columns, got 4: Martin;{NIR};séance kiné",
                              file=f"/inbox/kiné_{NIR}.csv", line=3)
    assert not echoes(str(error)) and not echoes(error.file)
    assert str(error).startswith("/inbox/masque-lexicon_masque-nir.csv:3: cannot read as CSV")


def test_the_command_line_and_the_web_app_describe_what_an_error_would_echo_when_they_show_it(monkeypatch):
    from recouvrement.web.app import _french_error
    monkeypatch.setattr(errors, "_scrub", None)     # an error made before the detectors were handed to the errors
    error = RecouvrementError(f"cannot read as CSV: Martin;{NIR};séance kiné", field="as_of")
    assert echoes(str(error))
    shown = [user_message(error), _french_error(error)]
    assert not any(echoes(line) for line in shown) and all("ressemble à un NIR" in line for line in shown)
    assert shown[0].startswith("[--as-of]: cannot read as CSV")


def test_a_file_named_with_a_nir_is_archived_listed_and_reported_under_a_masked_name(engine, folder_settings):
    inbox = folder_settings.paths.inbox
    inbox.mkdir(parents=True)
    payments_file(inbox, ["X1;2025-03-01;amo;CPAM;not money;;;paid;", "X2;2025-03-01;amo;CPAM;10,00;;;paid;"],
                  f"releve_{TYPED[0]}.csv")
    result = run_nightly(engine, folder_settings, AS_OF)
    archived = sorted(p.name for p in (folder_settings.paths.archive / "2025-04-01").iterdir())
    assert archived == ["releve_masque-nir.csv", "releve_masque-nir.csv.rejects.csv"]
    listing = (folder_settings.paths.archive / "2025-04-01" / archived[1]).read_text(encoding="utf-8")
    assert not echoes(listing) and "not money" in listing
    assert result.errors and not any(echoes(e) for e in result.errors)


def test_a_quarantined_file_and_its_reason_never_echo_the_row_the_parser_quoted(engine, folder_settings):
    inbox = folder_settings.paths.inbox
    inbox.mkdir(parents=True)
    header = "invoice_number;issue_date;due_date;patient_id;last_name;first_name;address;postal_code;city;" \
             "total_amount;amo_amount"
    (inbox / f"kiné {NIR}.csv").write_text(f"{header}\nF1;01/03/2025;;P1;Martin;séance kiné;{NIR};1;2;3;4;5;6;7\n",
                                           encoding="utf-8")
    result = run_nightly(engine, folder_settings, AS_OF)
    [quarantined] = result.quarantined
    assert not echoes(quarantined.name)
    reason = (quarantined.parent / f"{quarantined.name}.rejects.csv").read_text(encoding="utf-8")
    assert not echoes(reason) and "illisible comme fichier CSV" in reason
    assert result.errors and not any(echoes(e) for e in result.errors)


def test_a_failing_step_that_quotes_a_value_is_recorded_and_logged_without_it(engine, folder_settings, monkeypatch,
                                                                                caplog):
    def failing(*args):
        raise ValueError(f"duplicate key value violates unique constraint: ({TYPED[2]}, séance kiné)")
    monkeypatch.setattr(nightly, "STEPS", (("reconcile", failing),))
    with caplog.at_level(logging.ERROR, logger="recouvrement.app.nightly"):
        result = run_nightly(engine, folder_settings, AS_OF)
    assert result.status == "failed"
    assert any(e.startswith("reconcile: ValueError") for e in result.errors)
    assert not any(echoes(e) for e in result.errors)
    assert caplog.records and not echoes(caplog.text)
    stored = nightly.list_runs(engine)[0].errors
    assert "reconcile" in stored and not echoes(stored)
