"""Two real processes writing at once (SQLite file, or the real PostgreSQL server of the test setup): nothing
allocated, recorded, printed or sent twice; a writer that waits too long says so in one French line."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from recouvrement.app.imports import import_file
from recouvrement.db.session import WriterBusy, writing
from tests.app.test_outbox import EMAIL_ROWS, Server, _config_file, smtp  # noqa: F401  (fixture)
from tests.app.test_remind import MONDAY, invoice, load
from tests.app.world import payments_file

SAMPLE_INVOICES = 1500


def cli(db_url: str, *args: str, config: Path | None = None) -> list[str]:
    options = ["--db", db_url] + (["--config", str(config)] if config else [])
    return [sys.executable, "-c", "from recouvrement.cli import main; main()", *options, *args]


def at_once(*commands: list[str], timeout: float = 600) -> list[subprocess.CompletedProcess]:
    """Start every command, then wait for all: they run at the same time."""
    runs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    done = []
    for run in runs:
        out, err = run.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess(run.args, run.returncode, out, err))
    return done


@pytest.fixture
def sample_world(engine, settings, tmp_path):
    from tools.samples import generate
    folder = tmp_path / "sample"
    generate(folder, invoices=SAMPLE_INVOICES)
    import_file(engine, folder / "invoices.csv", settings)
    for name in ("remittance_amo.csv", "remittance_amc.csv", "bank_camt053.xml", "bank_cfonb120.txt"):
        import_file(engine, folder / name, settings)
    return engine


def test_two_reconciliations_at_once_allocate_each_payment_once(sample_world, db_url):
    runs = at_once(cli(db_url, "reconcile"), cli(db_url, "reconcile"))
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    assert sum("rien de nouveau" in r.stdout for r in runs) == 1
    with sample_world.connect() as conn:
        doubled = conn.execute(text("SELECT COUNT(*) FROM (SELECT payment_id, invoice_number, payer_type FROM allocation "
                                    "GROUP BY payment_id, invoice_number, payer_type HAVING COUNT(*) > 1) d")).scalar_one()
        over = conn.execute(text("SELECT COUNT(*) FROM payment p JOIN (SELECT payment_id, SUM(amount_cents) AS cents "
                                 "FROM allocation GROUP BY payment_id) a ON a.payment_id = p.payment_id "
                                 "WHERE a.cents > p.amount_cents")).scalar_one()
        allocated = conn.execute(text("SELECT COUNT(DISTINCT payment_id) FROM allocation")).scalar_one()
    assert (doubled, over) == (0, 0) and allocated > SAMPLE_INVOICES


def test_two_imports_of_the_same_file_at_once_store_each_row_once(engine, db_url, tmp_path):
    from tools.samples import generate
    generate(tmp_path / "sample", invoices=SAMPLE_INVOICES)
    invoices = tmp_path / "sample" / "invoices.csv"
    config = tmp_path / "recouvrement.toml"
    config.write_text(f'[privacy]\nnir_key_file = "{tmp_path / "nir.key"}"\n', encoding="utf-8")
    runs = at_once(*[cli(db_url, "import", "invoices", str(invoices), config=config)] * 2)
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM invoice")).scalar_one() == SAMPLE_INVOICES
        assert conn.execute(text("SELECT COUNT(*) FROM import_batch")).scalar_one() == 1


POSTAL_ROWS = [invoice(f"F2025-0005{k:02d}", f"Q{chr(64 + k)}", "01/04/2025", "15/04/2025", "45,00") for k in range(1, 13)]


def test_two_reminder_runs_at_once_print_and_send_each_letter_once(engine, db_url, settings, tmp_path, smtp):  # noqa: F811
    load(engine, settings, tmp_path, EMAIL_ROWS + POSTAL_ROWS)
    server = Server()
    config = _config_file(tmp_path, smtp(server))
    out = tmp_path / "out"
    runs = at_once(*[cli(db_url, "remind", "--as-of", MONDAY.isoformat(), "--out", str(out), config=config)] * 2)
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    assert sorted(server.received) == [f"patient{k}@example.org" for k in range(1, 6)]
    assert [p.name for p in out.glob("batch-*.pdf")] == ["batch-2025-06-02.pdf"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*), COUNT(DISTINCT patient_id) FROM letter")).one() == (17, 17)
        assert conn.execute(text("SELECT COUNT(*) FROM audit_event WHERE kind = 'reminder'")).scalar_one() == 17
        assert conn.execute(text("SELECT COUNT(*) FROM audit_event WHERE kind = 'reminder_sent'")).scalar_one() == 5


def test_a_writer_that_waits_too_long_says_so_in_one_french_line(engine, db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("RECOUVREMENT_WRITER_WAIT", "1")
    with writing(engine):
        run = subprocess.run(cli(db_url, "reconcile"), capture_output=True, text=True, timeout=120)
        with pytest.raises(WriterBusy):
            with writing(engine.execution_options(), wait=0.2):
                pass
    assert run.returncode == 2 and "Traceback" not in run.stderr
    message = " ".join(run.stderr.split())     # one message (the console wraps it at its width)
    assert "[--db]" in message and ("base de données occupée : une autre commande y écrit depuis plus de 1 s (import, "
                                    "rapprochement, relances ou run de nuit) ; réessayez quand elle aura fini") in message


def test_a_reconciliation_and_a_reminder_run_at_once_each_write_once_one_after_the_other(
        engine, db_url, settings, tmp_path, smtp):  # noqa: F811
    load(engine, settings, tmp_path, EMAIL_ROWS + POSTAL_ROWS)
    paid = [f"V{k};2025-05-20;patient;QX MARTIN;45,00;;F2025-0005{k:02d};paid;" for k in range(1, 7)]
    import_file(engine, payments_file(tmp_path, paid), settings)          # imported, not yet reconciled
    server = Server()
    config = _config_file(tmp_path, smtp(server))
    out = tmp_path / "out"
    remind = cli(db_url, "remind", "--as-of", MONDAY.isoformat(), "--out", str(out), config=config)
    reconciled, reminded = at_once(cli(db_url, "reconcile", config=config), remind)
    assert reconciled.returncode == 0 and reminded.returncode in (0, 5), [reconciled.stderr, reminded.stderr]
    if reminded.returncode == 5:   # remind first: refused, nothing written (the six payments were not reconciled)
        assert "6 paiements importés ne sont pas encore rapprochés" in reminded.stderr
        with engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM letter")).scalar_one() == 0
        assert subprocess.run(remind, capture_output=True, text=True, timeout=600).returncode == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*), COUNT(DISTINCT payment_id) FROM allocation "
                                 "WHERE payment_id LIKE 'V%'")).one() == (6, 6)
        letters = conn.execute(text("SELECT COUNT(*), COUNT(DISTINCT patient_id) FROM letter")).one()
    assert letters == (11, 11)     # always after the reconcile: the six who paid get none
    assert sorted(server.received) == [f"patient{k}@example.org" for k in range(1, 6)]


def test_two_agency_exports_at_once_hand_each_case_over_once(engine, db_url, settings, tmp_path):
    from tests.app.test_agency import HANDOVER, letter, world
    from tests.app.test_agency import invoice as agency_invoice
    world(engine, settings, tmp_path, [agency_invoice(f"F2025-0003{k:02d}", "2025-01-10", 12000,
                                                      patient=f"PAT{k:02d}") for k in range(1, 21)])
    for k in range(1, 21):
        letter(engine, f"L3-PAT{k:02d}", date(2025, 4, 1), [f"F2025-0003{k:02d}"], patient=f"PAT{k:02d}")
    files = [tmp_path / "agence-a.csv", tmp_path / "agence-b.csv"]
    runs = at_once(*[cli(db_url, "export", "agency", "--as-of", HANDOVER.strftime("%d/%m/%Y"), "--out", str(f))
                     for f in files])
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    exported = [line for f in files if f.exists() for line in f.read_text(encoding="utf-8").splitlines()[1:]]
    assert len(exported) == 20 and len({line.split(",")[0] for line in exported}) == 20
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*), COUNT(DISTINCT patient_id) FROM agency_case")).one() == (20, 20)


def test_a_payment_imported_while_the_letters_are_composed_refuses_the_run_and_nothing_is_recorded(
        engine, db_url, settings, tmp_path, monkeypatch):
    """The reminder run reads the accounts, then composes its letters; meanwhile another process imports a payment.
    The run's check, made again under the writer lock where it records, refuses it: no letter, call or batch."""
    from recouvrement.app.remind import PaymentsNotReconciled, run_remind
    from tests.app.test_remind import with_creditor
    settings = with_creditor(settings)
    load(engine, settings, tmp_path, POSTAL_ROWS)
    paid = payments_file(tmp_path, ["V1;2025-05-20;patient;QA MARTIN;45,00;;F2025-000501;paid;"], name="late.csv")
    _meanwhile(monkeypatch, cli(db_url, "import", "payments", str(paid)))
    with pytest.raises(PaymentsNotReconciled, match="1 paiement a été importé pendant les relances"):
        run_remind(engine, settings, MONDAY, tmp_path / "out")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM letter")).scalar_one() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM print_batch")).scalar_one() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM audit_event WHERE kind = 'reminder'")).scalar_one() == 0
    assert not list((tmp_path / "out").glob("batch-*.pdf"))


def test_a_payment_imported_and_reconciled_while_the_letters_are_composed_gets_its_patient_no_letter(
        engine, db_url, settings, tmp_path, monkeypatch):
    """The same, with the payment reconciled too before the run records: nothing is unreconciled any more, yet the
    letters were decided before it; refused, and the run after it writes to all but the patient who paid."""
    from recouvrement.app.remind import PaymentsNotReconciled, run_remind
    from tests.app.test_remind import with_creditor
    settings = with_creditor(settings)
    load(engine, settings, tmp_path, POSTAL_ROWS)
    paid = payments_file(tmp_path, ["V1;2025-05-20;patient;QA MARTIN;45,00;;F2025-000501;paid;"], name="late.csv")
    _meanwhile(monkeypatch, cli(db_url, "import", "payments", str(paid)), cli(db_url, "reconcile"))
    with pytest.raises(PaymentsNotReconciled, match="rapprochés pendant les relances"):
        run_remind(engine, settings, MONDAY, tmp_path / "out")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM letter")).scalar_one() == 0
    monkeypatch.undo()
    report = run_remind(engine, settings, MONDAY, tmp_path / "out")
    assert sorted(w.patient_id for w in report.letters) == [f"Q{chr(64 + k)}" for k in range(2, 13)]


def test_an_invoices_file_imported_while_the_letters_are_composed_refuses_the_run(engine, db_url, settings, tmp_path,
                                                                                 monkeypatch):
    """Another process imports an invoices file while the run composes: QB's newest invoice says the CSS covers
    them now (the import takes a patient's details from their newest invoice). The run read QB as chaseable: it
    records nothing (exit 5 on the command line); the run after it spares QB and writes to the eleven others."""
    from recouvrement.app.remind import InvoicesImportedDuringRun, run_remind
    from tests.app.test_remind import with_creditor
    from tests.app.world import invoices_file
    settings = with_creditor(settings)
    load(engine, settings, tmp_path, POSTAL_ROWS)
    css = invoices_file(tmp_path, [invoice("F2025-000601", "QB", "02/05/2025", "16/05/2025", "0,00", amo="25,00",
                                           coverage="css")], name="css.csv")
    _meanwhile(monkeypatch, cli(db_url, "import", "invoices", str(css)))
    with pytest.raises(InvoicesImportedDuringRun, match="factures ont été importées pendant les relances"):
        run_remind(engine, settings, MONDAY, tmp_path / "out")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM letter")).scalar_one() == 0
        assert conn.execute(text("SELECT coverage FROM patient WHERE patient_id = 'QB'")).scalar_one() == "css"
    assert _letter_files(tmp_path / "out") == []
    monkeypatch.undo()
    report = run_remind(engine, settings, MONDAY, tmp_path / "out")
    assert sorted(w.patient_id for w in report.letters) == sorted(f"Q{chr(64 + k)}" for k in range(1, 13) if k != 2)


def test_the_command_refused_for_an_invoices_import_meanwhile_exits_5_in_one_line(engine, db_url, settings, tmp_path,
                                                                                 monkeypatch):
    from click.testing import CliRunner

    from recouvrement.cli import NOT_RECONCILED_EXIT
    from recouvrement.cli import cli as command_line
    from recouvrement.cli import commands  # noqa: F401  (registers the commands)
    from tests.app.test_outbox import _config_file
    from tests.app.world import invoices_file
    load(engine, settings, tmp_path, POSTAL_ROWS)
    config = _config_file(tmp_path, 1)
    config.write_text(config.read_text(encoding="utf-8").replace('host = "127.0.0.1"', 'host = ""'), encoding="utf-8")
    more = invoices_file(tmp_path, [invoice("F2025-000602", "QC", "02/05/2025", "16/05/2025", "10,00")], name="more.csv")
    _meanwhile(monkeypatch, cli(db_url, "import", "invoices", str(more)))
    result = CliRunner().invoke(command_line, ["--db", db_url, "--config", str(config), "remind", "--as-of",
                                               MONDAY.isoformat(), "--out", str(tmp_path / "out")])
    assert result.exit_code == NOT_RECONCILED_EXIT == 5, result.output
    assert result.output.strip() == ("erreur : des factures ont été importées pendant les relances (adresse, couverture "
                                     "ou garant d'un patient ont pu changer) : aucun courrier n'a été enregistré ni "
                                     "envoyé ; relancez « recouvrement remind ».")


def _meanwhile(monkeypatch, *commands: list[str]) -> None:
    """The commands run, each in its own process and to its end, once the reminder run starts composing letters."""
    from recouvrement.channels import compose as composing
    original = composing.compose

    def compose_after_the_commands(*args, **kwargs):
        for command in commands:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stderr
        yield from original(*args, **kwargs)
    monkeypatch.setattr(composing, "compose", compose_after_the_commands)


@pytest.mark.parametrize("pause", [["hold", "QB", "--reason", "décès du conjoint", "--on", "2025-06-02"],
                                   ["dispute", "open", "F2025-000502", "--reason", "montant", "--received", "2025-06-02"]])
def test_a_patient_paused_while_the_letters_are_composed_gets_no_letter_and_the_others_go(
        engine, db_url, settings, tmp_path, monkeypatch, pause):
    """Put on hold, or disputing an invoice, by another process while the run composes: that patient's letter is not
    recorded, printed nor sent (said in the run's errors); the eleven others are."""
    from recouvrement.app.remind import run_remind
    from tests.app.test_remind import with_creditor
    settings = with_creditor(settings)
    load(engine, settings, tmp_path, POSTAL_ROWS)
    _meanwhile(monkeypatch, cli(db_url, *pause))
    report = run_remind(engine, settings, MONDAY, tmp_path / "out")
    assert [e.split(" : ")[0] for e in report.errors] == ["L20250602-QB-1"]
    with engine.connect() as conn:
        recorded = {r[0] for r in conn.execute(text("SELECT patient_id FROM letter"))}
    assert recorded == {f"Q{chr(64 + k)}" for k in range(1, 13)} - {"QB"}
    assert {w.patient_id for w in report.letters} == recorded and "L20250602-QB-1" not in report.pages


def test_a_promise_hold_or_dispute_recorded_after_the_mark_names_its_patient(engine, settings, tmp_path):
    from recouvrement.app.disputes import open_dispute
    from recouvrement.app.holds import place_hold
    from recouvrement.app.promises import record_promise
    from recouvrement.db.eligibility import patients_paused_since, pauses_mark
    load(engine, settings, tmp_path, POSTAL_ROWS)
    place_hold(engine, "QA", "avant", since=MONDAY)
    with engine.connect() as conn:
        mark = pauses_mark(conn)
    record_promise(engine, "QC", date(2025, 6, 20), MONDAY, owed_cents=4500, actor="accueil")
    place_hold(engine, "QD", "après", since=MONDAY)
    open_dispute(engine, "F2025-000505", "montant", received=MONDAY)
    with engine.connect() as conn:
        assert patients_paused_since(conn, mark) == {"QC", "QD", "QE"}


def _letter_files(out: Path) -> list[str]:
    """The letters' files in the output folder (not the batch, manifest nor call list), and any private folder."""
    return sorted(p.name for p in out.iterdir() if p.name.startswith(("L", ".remind-"))) if out.exists() else []


def test_a_run_refused_when_it_records_leaves_no_letter_file(engine, db_url, settings, tmp_path, monkeypatch):
    """Its letters were composed for patients one of whom just paid: none of them may lie in the output folder,
    among the real ones, to be printed by mistake."""
    from recouvrement.app.remind import PaymentsNotReconciled, run_remind
    from tests.app.test_remind import with_creditor
    settings = with_creditor(settings)
    load(engine, settings, tmp_path, POSTAL_ROWS)
    paid = payments_file(tmp_path, ["V1;2025-05-20;patient;QA MARTIN;45,00;;F2025-000501;paid;"], name="late.csv")
    _meanwhile(monkeypatch, cli(db_url, "import", "payments", str(paid)))
    with pytest.raises(PaymentsNotReconciled):
        run_remind(engine, settings, MONDAY, tmp_path / "out")
    assert _letter_files(tmp_path / "out") == []


def test_a_run_killed_after_recording_has_its_letters_moved_into_place_printed_and_sent_by_the_next(
        engine, db_url, settings, tmp_path, smtp):  # noqa: F811
    """Killed (SIGKILL) once its letters are recorded, before their files are moved from its private folder: the
    next run moves them into place (the files the audit names), prints the batch from them and sends the e-mails."""
    import hashlib
    import os
    import signal
    from recouvrement.app.remind import PAUSE_HOOK
    load(engine, settings, tmp_path, EMAIL_ROWS + POSTAL_ROWS)
    server = Server()
    config = _config_file(tmp_path, smtp(server))
    out = tmp_path / "out"
    remind = cli(db_url, "remind", "--as-of", MONDAY.isoformat(), "--out", str(out), config=config)
    killed = subprocess.Popen(remind, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, PAUSE_HOOK: "recorded"})
    try:
        assert killed.stderr is not None and "paused after recording" in killed.stderr.readline()
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=60)
    with engine.connect() as conn:
        recorded = conn.execute(text("SELECT letter_id, file, sha256 FROM letter")).all()
    assert len(recorded) == 17 and not [n for n in _letter_files(out) if n.startswith("L")]
    assert len(_letter_files(out)) == 1 and server.received == []     # its private folder, nothing sent
    again = subprocess.run(remind, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert _letter_files(out) == sorted(f"{lid}.{kind}" for lid, *_ in recorded for kind in ("html", "eml")
                                        if kind == "html" or lid.split("-")[1].startswith("P"))
    assert all(hashlib.sha256((out / file).read_bytes()).hexdigest() == sha for _, file, sha in recorded)
    assert sorted(server.received) == [f"patient{k}@example.org" for k in range(1, 6)]
    assert [p.name for p in out.glob("batch-*.pdf")] == ["batch-2025-06-02.pdf"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM print_batch WHERE written_at IS NOT NULL")).scalar_one() == 1
        assert conn.execute(text("SELECT COUNT(*) FROM letter")).scalar_one() == 17


def test_a_dead_runs_unrecorded_letters_are_removed_and_a_live_runs_folder_left_alone(engine, settings, tmp_path):
    """A run killed before it recorded left its private folder: the next run removes it, letters and all; the
    private folder of a run still alive (its lock held) is not touched."""
    from recouvrement.app.remind import PRIVATE_PREFIX, run_remind
    from recouvrement.render.files import open_private_folder
    from tests.app.test_remind import with_creditor
    settings = with_creditor(settings)
    load(engine, settings, tmp_path, POSTAL_ROWS)
    out = tmp_path / "out"
    dead, alive = open_private_folder(out, PRIVATE_PREFIX), open_private_folder(out, PRIVATE_PREFIX)
    for folder in (dead, alive):
        (folder.path / "L20250602-QA-1.html").write_text("composée avant un paiement", encoding="utf-8")
    dead.close(remove=False)          # its process gone: the lock goes with it
    try:
        report = run_remind(engine, settings, MONDAY, out)
        assert len(report.letters) == 12
        assert _letter_files(out) == sorted([alive.path.name] + [f"{w.letter_id}.html" for w in report.letters])
        assert (out / "L20250602-QA-1.html").read_text(encoding="utf-8") != "composée avant un paiement"
    finally:
        alive.close(remove=True)


@pytest.mark.parametrize("change", ["plan", "write-off"])
def test_a_patient_offered_a_plan_or_written_off_while_the_letters_are_composed_gets_no_letter(
        engine, db_url, settings, tmp_path, monkeypatch, change):
    """A plan proposed to QB, or QB's invoice written off, by another process while the run composes: QB's letter is
    not recorded, printed nor sent (said in the run's errors); the eleven others are."""
    from recouvrement.app.remind import run_remind
    from tests.app.test_remind import with_creditor
    settings = with_creditor(settings)
    load(engine, settings, tmp_path, POSTAL_ROWS)
    config = _config_file(tmp_path, 25)
    command = (["plan", "propose", "QB", "--as-of", "2025-06-02", "--out", str(tmp_path / "plans")] if change == "plan"
               else ["write-off", "F2025-000502", "--reason", "under-cost", "--on", "2025-06-02"])
    _meanwhile(monkeypatch, cli(db_url, *command, config=config))
    report = run_remind(engine, settings, MONDAY, tmp_path / "out")
    assert [e.split(" : ")[0] for e in report.errors] == ["L20250602-QB-1"]
    assert "le dossier du patient a changé pendant les relances" in report.errors[0]
    with engine.connect() as conn:
        recorded = {r[0] for r in conn.execute(text("SELECT patient_id FROM letter"))}
    assert recorded == {f"Q{chr(64 + k)}" for k in range(1, 13)} - {"QB"}
    assert "L20250602-QB-1" not in report.pages and not (tmp_path / "out" / "L20250602-QB-1.html").exists()


def test_a_plan_accepted_a_write_off_or_a_case_handed_over_after_the_mark_names_its_patient(
        engine, settings, tmp_path):
    """Changes that only update a row (a plan accepted) or that the rows' ids the mark holds do not show (a write-off,
    a case handed over) are read from the audit trail."""
    from recouvrement.app.agency import export_agency
    from recouvrement.app.plans import accept, propose
    from recouvrement.app.write_offs import write_off
    from recouvrement.db.eligibility import patients_paused_since, pauses_mark
    from tests.app.test_agency import HANDOVER, letter, world
    from tests.app.test_agency import invoice as agency_invoice
    from tests.app.test_remind import with_creditor
    settings = with_creditor(settings)
    world(engine, settings, tmp_path, [agency_invoice(f"F2025-0003{k:02d}", "2025-01-10", 12000, patient=f"PAT{k}")
                                       for k in range(1, 5)])
    letter(engine, "L3-PAT1", date(2025, 4, 1), ["F2025-000301"], patient="PAT1")
    plan = propose(engine, "PAT2", HANDOVER, settings, out_dir=tmp_path / "plans")
    with engine.connect() as conn:
        mark = pauses_mark(conn)
        assert patients_paused_since(conn, mark) == set()
    accept(engine, plan.plan_id, HANDOVER)
    write_off(engine, "F2025-000303", reason="under_cost", today=HANDOVER)
    export_agency(engine, settings, HANDOVER, tmp_path / "agence.csv")
    with engine.connect() as conn:
        assert patients_paused_since(conn, mark) == {"PAT1", "PAT2", "PAT3"}


def test_a_run_stopped_before_its_move_has_its_letters_moved_by_a_run_writing_elsewhere(
        engine, settings, tmp_path, monkeypatch):
    """Stopped once its letters are recorded, before their files are moved (as if killed: its private folder kept,
    its lock gone): the next run, given another output folder, still moves them where their batch and outbox
    look for them."""
    from recouvrement.app import remind
    from tests.app.test_remind import with_creditor
    settings = with_creditor(settings)
    load(engine, settings, tmp_path, POSTAL_ROWS)

    def stopped(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(remind, "_move_letters", stopped)
    with pytest.raises(KeyboardInterrupt):
        remind.run_remind(engine, settings, MONDAY, tmp_path / "out")
    assert [n for n in _letter_files(tmp_path / "out") if n.startswith("L")] == []
    monkeypatch.undo()
    report = remind.run_remind(engine, settings, MONDAY, tmp_path / "elsewhere")
    assert report.letters == [] and report.errors == [] and (tmp_path / "out" / "batch-2025-06-02.pdf").exists()
    assert _letter_files(tmp_path / "out") == [f"L20250602-Q{chr(64 + k)}-1.html" for k in range(1, 13)]


def _write_often(path: str, data: bytes, started) -> None:
    import time

    from recouvrement.render.files import write_atomically
    started.wait(120)           # both writing at once: each waits for the other to be ready
    until = time.time() + 1.5
    while time.time() < until:
        write_atomically(Path(path), data)


def test_two_processes_writing_the_same_file_atomically_never_rename_each_others_part(tmp_path):
    # Two runs of a day write the day's manifest at once: with one part name for both, one renamed the other's
    # part away ("No such file or directory") or a half-written part over the file.
    import multiprocessing
    target = tmp_path / "manifest.csv"
    payloads = [b"a" * 200_000, b"b" * 200_000]
    context = multiprocessing.get_context("spawn")
    # Both start writing when both are ready (a barrier, not a clock: on a loaded machine a spawned process took
    # longer than the 5 s once given and wrote nothing — the CI run of this session's first stop).
    started = context.Barrier(2)
    writers = [context.Process(target=_write_often, args=(str(target), data, started)) for data in payloads]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
    assert [w.exitcode for w in writers] == [0, 0]
    assert target.read_bytes() in payloads
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.csv"]
