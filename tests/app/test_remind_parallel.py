"""The night's letters composed by worker processes (channels.compose, issue #16): the same files, the same
refusals, the same print batch as composed in the run's own process."""

from __future__ import annotations

from pathlib import Path

import pytest

from recouvrement.app.remind import run_remind
from recouvrement.channels import compose as composing
from recouvrement.channels.compose import LetterJob, compose
from recouvrement.render.views import KINDS, specimen
from recouvrement.scanner import extract_text
from tests.app.test_remind import MONDAY, invoice, load, with_creditor

SENDER = "Centre de santé des Lilas <facturation@centre-lilas.example>"


@pytest.fixture
def in_workers(monkeypatch):
    """Every run composed by 2 spawned workers, 2 letters a chunk (a night of 200 letters or more does so)."""
    monkeypatch.setattr(composing, "PARALLEL_FROM", 1)
    monkeypatch.setattr(composing, "CHUNK", 2)


def world(engine, settings, folder: Path) -> None:
    """Five patients owing an overdue share; P3 and P5 are e-mailed, P4's name reads as a care term."""
    rows = [invoice(f"F2025-00020{n}", f"P{n}", "01/04/2025", "15/04/2025", f"{40 + n},00",
                    email="p@example.org" if n in (3, 5) else "",
                    last_name="Cardiologie" if n == 4 else "Martin") for n in range(1, 6)]
    load(engine, settings, folder, rows)


# What the run refused for P4 before its letters were composed by workers (captured on main before issue #16's change).
REFUSAL = ("L20250602-P4-1.html:71: document refusé, rien n'a été écrit ni envoyé : il contient ce qui ressemble à un "
           "terme de soin (1 constat, ligne 71) ; corrigez la donnée en cause (nom, adresse, mutuelle, payeur, libellé…) "
           "dans le logiciel du cabinet puis réimportez le fichier ; si c'est le nom, l'adresse ou l'e-mail du "
           "créancier, déclarez-les tels qu'imprimés dans la section [creditor] de recouvrement.toml ; pour une fausse "
           "alerte (un nom de famille pris pour un terme de soin), envoyez ce courrier à la main")


def test_letters_composed_by_workers_are_the_letters_composed_in_process():
    jobs = [LetterJob(specimen(KINDS[n % len(KINDS)], f"L-{n:02d}", invoices=1 + n % 3, guarantor=n % 2 == 1),
                      email=n % 2 == 0, postal=n % 3 != 0) for n in range(7)]
    alone = list(compose(jobs, SENDER, workers=1, chunk_size=3))
    together = list(compose(jobs, SENDER, workers=2, chunk_size=3))
    assert [c.letters for c in together] == [c.letters for c in alone]
    assert [m.eml is not None for c in together for m in c.letters] == [n % 2 == 0 for n in range(7)]
    parts = [c.part for c in together]
    assert [p and p.letter_ids for p in parts] == [("L-01", "L-02"), ("L-04", "L-05"), None]
    assert [(p.counts, p.findings) for p in parts if p] == [(p.counts, p.findings) for p in (c.part for c in alone) if p]


def test_a_night_composed_by_workers_writes_every_letter_and_the_batch_in_letter_order(
        engine, settings, tmp_path, in_workers):
    world(engine, settings, tmp_path)
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    assert [(w.patient_id, w.channel, w.file) for w in report.letters] == [
        ("P1", "letter", "L20250602-P1-1.html"), ("P2", "letter", "L20250602-P2-1.html"),
        ("P3", "email", "L20250602-P3-1.eml"), ("P5", "email", "L20250602-P5-1.eml")]
    assert all((tmp_path / "out" / w.file).exists() for w in report.letters)
    assert report.pages == {"L20250602-P1-1": (1, 1), "L20250602-P2-1": (2, 2)}
    text = " ".join(extract_text(report.batch_pdf).split())
    assert text.index("L20250602-P1-1") < text.index("L20250602-P2-1")


@pytest.mark.parametrize("workers", [False, True], ids=["in process", "in workers"])
def test_a_letter_the_scanner_refuses_is_refused_with_the_same_message_and_nothing_written(
        engine, settings, tmp_path, monkeypatch, workers):
    if workers:
        monkeypatch.setattr(composing, "PARALLEL_FROM", 1)
        monkeypatch.setattr(composing, "CHUNK", 2)
    world(engine, settings, tmp_path)
    report = run_remind(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    assert report.errors == [REFUSAL]
    assert "P4" not in {w.patient_id for w in report.letters}
    assert not list((tmp_path / "out").glob("*P4*"))
