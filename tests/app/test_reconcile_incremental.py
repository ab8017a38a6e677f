"""A night that reads only what its payments can touch allocates exactly as a night reading the whole ledger."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

import recouvrement.app.reconcile as reconcile_use_case
import recouvrement.db.ledger as ledger_store
from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.db.session import open_engine
from tests.app.test_reconcile_set_based import FILES, SAMPLES, SCALE_FILES, outcome
from tests.app.world import INVOICES, invoices_file, payments_file
from tools.samples import generate
from tools.split_days import ordinary_last_day, split


def _whole_ledger_forbidden(*_args, **_kwargs):
    raise AssertionError("the incremental night read the whole ledger")


def nights(engine, folders: list[Path], files, settings, incremental: bool, monkeypatch,
           tried: list | None = None) -> tuple[list, list, list]:
    """Each folder's files imported, then one reconcile: one night per folder. `tried` gets each night's count
    of payments reconciled (new lines and queue entries tried again)."""
    with monkeypatch.context() as patched:
        if incremental:
            patched.setattr(reconcile_use_case, "load_ledger", _whole_ledger_forbidden)
        for folder in folders:
            for name in files:
                if (folder / name).exists():
                    import_file(engine, folder / name, settings)
            report = run_reconcile(engine, incremental=incremental)
            if tried is not None:
                tried.append(report.payments)
    return outcome(engine)


def both_ways(db_url, tmp_path, settings, folders, files, monkeypatch, tried: tuple[list, list] | None = None):
    """The nights run incrementally (the ledger's part and the queue entries what changed can reach) on
    `db_url`, and on the whole ledger with the whole queue on SQLite."""
    incremental = open_engine(db_url)
    whole = open_engine(f"sqlite:///{tmp_path / 'whole.db'}")
    tried = tried or ([], [])
    try:
        return (nights(incremental, folders, files, settings, True, monkeypatch, tried[0]),
                nights(whole, folders, files, settings, False, monkeypatch, tried[1]))
    finally:
        incremental.dispose()
        whole.dispose()


def test_a_scale_set_split_into_history_and_its_last_days_reconciles_incrementally_as_on_the_whole_ledger(
        db_url, tmp_path, settings, monkeypatch):
    folder = tmp_path / "scale"
    generate(folder, invoices=3000, scale=True)
    last = ordinary_last_day(folder)
    days = []
    for k, day in enumerate((last - timedelta(days=2), last - timedelta(days=1), last, last + timedelta(days=1))):
        days.append(tmp_path / f"day{k}")
        split(folder, tmp_path / f"before{k}", days[-1], day)
    history = tmp_path / "before0"
    tried: tuple[list, list] = ([], [])
    incremental, whole = both_ways(db_url, tmp_path, settings, [history, *days], SCALE_FILES, monkeypatch, tried)
    allocations, queue, moved = incremental
    assert (allocations, queue, moved) == whole
    assert tried[0][0] == tried[1][0]                       # the history: every payment, both ways
    assert sum(tried[0][1:]) < sum(tried[1][1:])            # the nights: the queue entries nothing reached wait
    assert {a[4] for a in allocations} >= {"explicit", "rf", "text", "name_amount"}
    assert {q[1] for q in queue} >= {"credit", "ambiguous", "unmatched"}
    assert moved


def test_the_sample_clinic_night_by_night_reconciles_incrementally_as_on_the_whole_ledger(
        db_url, tmp_path, settings, monkeypatch):
    folders = []
    for k, name in enumerate(FILES):            # one file a night: later nights meet earlier allocations
        folders.append(tmp_path / f"night{k}")
        folders[-1].mkdir()
        (folders[-1] / name).write_bytes((SAMPLES / name).read_bytes())
    incremental, whole = both_ways(db_url, tmp_path, settings, folders, FILES, monkeypatch)
    assert incremental == whole
    assert len(incremental[0]) > 600


def test_a_patient_renamed_by_a_newer_invoice_is_found_by_the_new_name_on_the_incremental_path(
        db_url, tmp_path, settings, monkeypatch):
    folder = tmp_path / "world"
    folder.mkdir()
    invoices_file(folder)
    invoices_file(folder, ["F2025-000105;20/03/2025;;P2;Quatremer;Jean-François;8 avenue Foch;69006;Lyon;;;;1,00;"
                           "1,00;0;0;;none;;"], name="renamed.csv")
    payments_file(folder, ["N1;2025-04-01;patient;MME QUATREMER JEAN FRANCOIS;23,00;;;paid;"])
    engine = open_engine(db_url)
    for name in ("invoices.csv", "renamed.csv", "payments.csv"):
        import_file(engine, folder / name, settings)
    monkeypatch.setattr(reconcile_use_case, "load_ledger", _whole_ledger_forbidden)
    run_reconcile(engine, incremental=True)
    with engine.connect() as conn:
        found = conn.execute(text("SELECT invoice_number, rule FROM allocation WHERE payment_id = 'N1'")).all()
    engine.dispose()
    assert [tuple(row) for row in found] == [("F2025-000103", "name_amount")]


def _night(engine, folder: Path, settings, invoices: list[str] | None, payments: list[str] | None, seen: list):
    """One night on the incremental path: the files written and imported, then the reconcile, with the payments
    the matching engine was given added to `seen`."""
    folder.mkdir()
    if invoices is not None:
        import_file(engine, invoices_file(folder, invoices), settings)
    if payments is not None:
        import_file(engine, payments_file(folder, payments), settings)
    engine_reconcile = reconcile_use_case.reconcile

    def watched(pending, *args, **kwargs):
        seen.extend(pending["payment_id"])
        return engine_reconcile(pending, *args, **kwargs)

    reconcile_use_case.reconcile = watched
    try:
        return run_reconcile(engine, incremental=True)
    finally:
        reconcile_use_case.reconcile = engine_reconcile


STRANGER_PAYS_A_FUTURE_INVOICE = "N1;2025-04-01;patient;MME DURAND;40,00;facture F2025-000200;;paid;"
INVOICE_200 = ("F2025-000200;15/03/2025;;P4;Roussel;Agathe;2 rue Neuve;69001;Lyon;;;;40,00;0;0;40,00;;none;;")


def _queue_entry(engine, payment_id: str):
    with engine.connect() as conn:
        return conn.execute(text("SELECT kind, remaining_cents, reason FROM payment_exception WHERE payment_id = :p"),
                            {"p": payment_id}).first()


def test_an_old_queue_entry_is_settled_by_the_invoice_it_names_when_the_invoice_arrives_on_a_later_night(
        db_url, tmp_path, settings):
    engine = open_engine(db_url)
    seen: list = []
    _night(engine, tmp_path / "night1", settings, INVOICES, [STRANGER_PAYS_A_FUTURE_INVOICE], seen)
    assert _queue_entry(engine, "N1")[0] == "unmatched"
    _night(engine, tmp_path / "night2", settings, [INVOICE_200], None, seen)
    with engine.connect() as conn:
        found = conn.execute(text("SELECT invoice_number, amount_cents, rule FROM allocation WHERE payment_id = 'N1'")).all()
    engine.dispose()
    assert [tuple(row) for row in found] == [("F2025-000200", 4000, "text")]
    assert _queue_entry(engine, "N1") is None


def test_an_old_queue_entry_nothing_new_can_reach_is_not_tried_again(db_url, tmp_path, settings):
    engine = open_engine(db_url)
    seen: list = []
    _night(engine, tmp_path / "night1", settings, INVOICES, [STRANGER_PAYS_A_FUTURE_INVOICE], seen)
    waiting = _queue_entry(engine, "N1")
    seen.clear()
    report = _night(engine, tmp_path / "night2", settings,
                    ["F2025-000300;20/03/2025;;P5;Martin;Paul;5 rue Vieille;69001;Lyon;;;;30,00;0;0;30,00;;none;;"],
                    ["N2;2025-04-02;patient;MARTIN PAUL;30,00;F2025-000300;;paid;"], seen)
    assert seen == ["N2"]
    assert report.payments == 1
    assert _queue_entry(engine, "N1") == waiting
    engine.dispose()


def _world_nights(tmp_path: Path, nights_files: list[tuple[list[str] | None, list[str] | None]]) -> list[Path]:
    """One folder per night, with its invoices and payments files (None: no such file that night)."""
    folders = []
    for k, (invoices, payments) in enumerate(nights_files):
        folders.append(tmp_path / f"night{k}")
        folders[-1].mkdir()
        if invoices is not None:
            invoices_file(folders[-1], invoices)
        if payments is not None:
            payments_file(folders[-1], payments)
    return folders


MARTIN = "P6;Martin;Paul;5 rue Vieille;69001;Lyon;;;;30,00;0;0;30,00;;none;;"
ROUSSEL = "P7;Roussel;Agathe;2 rue Neuve;69001;Lyon;;;;30,00;0;0;30,00;;none;;"
ROUSSEL_PAYS_HER_INVOICE = "N3;2025-04-03;patient;ROUSSEL AGATHE;30,00;;F2025-000108;paid;"


def test_a_queue_entry_that_read_a_share_a_later_payment_of_the_same_night_settled_is_tried_again_the_next_night(
        db_url, tmp_path, settings, monkeypatch):
    folders = _world_nights(tmp_path, [
        (["F2025-000106;10/03/2025;;" + MARTIN, "F2025-000108;10/03/2025;;" + ROUSSEL],
         ["N1;2025-04-01;patient;MARTIN PAUL;30,00;;;paid;", "E1;2025-04-02;patient;MARTIN PAUL;30,00;;;paid;"]),
        (None, [ROUSSEL_PAYS_HER_INVOICE])])
    incremental, whole = both_ways(db_url, tmp_path, settings, folders, ["invoices.csv", "payments.csv"], monkeypatch)
    assert incremental == whole
    assert ("E1", "unmatched", 3000, "the payer is a patient, but the amount matches none of their open shares",
            "P6") in incremental[1]


def test_a_queue_entry_is_tried_again_when_another_entry_tried_again_may_settle_a_share_it_reads(
        db_url, tmp_path, settings, monkeypatch):
    folders = _world_nights(tmp_path, [
        (["F2025-000106;10/03/2025;;" + MARTIN, "F2025-000107;11/03/2025;;" + MARTIN,
          "F2025-000108;10/03/2025;;" + ROUSSEL],
         ["E1;2025-04-01;patient;MME DURAND;30,00;F2025-000106 F2025-000108;;paid;",
          "E2;2025-04-02;patient;MARTIN PAUL;30,00;;;paid;"]),
        (None, [ROUSSEL_PAYS_HER_INVOICE])])
    incremental, whole = both_ways(db_url, tmp_path, settings, folders, ["invoices.csv", "payments.csv"], monkeypatch)
    assert incremental == whole
    assert {a[:2] for a in incremental[0]} >= {("E1", "F2025-000106"), ("E2", "F2025-000107")}


def test_an_old_queue_entry_is_settled_when_a_later_night_renames_a_patient_to_the_payer_s_name(
        db_url, tmp_path, settings):
    engine = open_engine(db_url)
    seen: list = []
    _night(engine, tmp_path / "night1", settings, INVOICES,
           ["N1;2025-04-01;patient;MME QUATREMER JEAN FRANCOIS;23,00;;;paid;"], seen)
    assert _queue_entry(engine, "N1")[0] == "unmatched"
    _night(engine, tmp_path / "night2", settings,
           ["F2025-000105;20/03/2025;;P2;Quatremer;Jean-François;8 avenue Foch;69006;Lyon;;;;1,00;1,00;0;0;;none;;"],
           None, seen)
    with engine.connect() as conn:
        found = conn.execute(text("SELECT invoice_number, rule FROM allocation WHERE payment_id = 'N1'")).all()
    engine.dispose()
    assert [tuple(row) for row in found] == [("F2025-000103", "name_amount")]


def test_a_night_reads_the_patients_its_payments_reach_once_by_their_names_only(db_url, tmp_path, settings,
                                                                               monkeypatch):
    """The invoices' patients and the bearers of the payers' names (a sole bearer, and the two of a name two
    patients bear) in one read of what the engine reads of them: their names (db.ledger.NAME_COLUMNS)."""
    folder = tmp_path / "world"
    folder.mkdir()
    invoices_file(folder, [*INVOICES, "F2025-000105;14/03/2025;;P4;N'Diaye;Maëlle;2 rue Neuve;69001;Lyon;;;;30,00;0;0;"
                                      "30,00;;none;;"])
    payments_file(folder, ["N1;2025-04-01;patient;MME DE LA FONTAINE JEAN FRANCOIS;23,00;;;paid;",
                           "N2;2025-04-01;patient;NDIAYE MAELLE;23,00;;;paid;"])
    engine = open_engine(db_url)
    for name in ("invoices.csv", "payments.csv"):
        import_file(engine, folder / name, settings)
    reads, given = [], []
    real_read, real_ledger = ledger_store.read_frame, reconcile_use_case._ledger

    def read_frame(conn, sql, params=None):
        frame = real_read(conn, sql, params)
        if " patient p " in sql:
            reads.append(frame)
        return frame

    monkeypatch.setattr(ledger_store, "read_frame", read_frame)
    monkeypatch.setattr(reconcile_use_case, "_ledger", lambda snapshot, patients, earlier: given.append(patients)
                        or real_ledger(snapshot, patients, earlier))
    monkeypatch.setattr(reconcile_use_case, "load_ledger", _whole_ledger_forbidden)
    run_reconcile(engine, incremental=True)
    engine.dispose()
    assert len(reads) == 1
    assert list(reads[0].columns) == ledger_store.NAME_COLUMNS
    assert reads[0]["patient_id"].tolist() == ["P2", "P3", "P4"]
    assert given[0]["patient_id"].tolist() == ["P2", "P3", "P4"]
    assert given[0].loc[2, "last_name"] == "N'Diaye"
