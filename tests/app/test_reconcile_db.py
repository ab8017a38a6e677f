"""Reconciliation through the database: what is stored, re-runs, file order, rejections, manual work."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from recouvrement.app.balance import aged_balance
from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import _payment_days, manual_match, manual_unmatch, run_reconcile
from recouvrement.audit import verify
from recouvrement.core.references import rf_reference
from recouvrement.db.session import open_engine
from recouvrement.errors import RecouvrementError
from tests.app.world import invoices_file, ledger_reads_beside, payments_file

INSURERS = ["A1;2025-03-01;amo;CPAM DE PARIS;70,00;;F2025-000101;paid;",
            "A2;2025-03-02;amc;MGEN;20,00;;F2025-000101;rejected;Droits fermés",
            "A3;2025-03-20;amo;CPAM DU RHONE;21,00;;F2025-000103;paid;"]
PATIENTS = [f"B1;2025-03-05;patient;MME LEFEVRE ELOISE;45,00;{rf_reference('F2025-000102')};;;",
            "B2;2025-03-06;patient;JF DE LA FONTAINE;23,00;Facture f2025 000103;;;",
            "B3;2025-03-07;patient;INCONNU PAUL;12,00;;;;",
            "B4;2025-03-08;patient;LEFEVRE ELOISE;12,34;;;;"]


def world(engine, settings, tmp_path, order=("insurers", "patients")):
    import_file(engine, invoices_file(tmp_path), settings)
    files = {"insurers": payments_file(tmp_path, INSURERS, "ins.csv"),
             "patients": payments_file(tmp_path, PATIENTS, "pat.csv")}
    for name in order:
        import_file(engine, files[name], settings)


def allocations(engine):
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(text(
            "SELECT payment_id, invoice_number, payer_type, amount_cents, rule FROM allocation")))


def queue(engine):
    with engine.connect() as conn:
        return {r[0]: tuple(r[1:]) for r in conn.execute(text(
            "SELECT payment_id, kind, remaining_cents, patient_id FROM payment_exception"))}


def test_reconcile_stores_each_allocation_with_its_rule(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    report = run_reconcile(engine)
    assert allocations(engine) == [
        ("A1", "F2025-000101", "amo", 7000, "explicit"),
        ("A3", "F2025-000103", "amo", 2100, "explicit"),
        ("B1", "F2025-000102", "patient", 4500, "rf"),
        ("B2", "F2025-000103", "patient", 2300, "text")]
    assert queue(engine) == {"B3": ("unmatched", 1200, None), "B4": ("unmatched", 1234, "P1")}
    assert report.transfers == 1


def test_a_second_run_with_nothing_new_changes_nothing(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    run_reconcile(engine)
    before = (allocations(engine), queue(engine))
    with engine.connect() as conn:
        events = conn.execute(text("SELECT COUNT(*) FROM audit_event")).scalar_one()
    assert run_reconcile(engine).skipped
    assert (allocations(engine), queue(engine)) == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM audit_event")).scalar_one() == events


def test_the_order_of_the_input_files_does_not_change_the_result(engine, settings, tmp_path, db_url):
    world(engine, settings, tmp_path, order=("patients", "insurers"))
    run_reconcile(engine)
    first = (allocations(engine), queue(engine))
    with engine.begin() as conn:
        for table in ("allocation", "payment_exception", "share_transfer", "payment", "meta"):
            conn.execute(text(f"DELETE FROM {table}"))
    for name, rows in (("ins.csv", INSURERS), ("pat.csv", PATIENTS)):
        import_file(engine, payments_file(tmp_path, rows, name), settings)
    run_reconcile(engine)
    assert (allocations(engine), queue(engine)) == first


def test_a_rejected_insurer_share_moves_to_the_patient(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    run_reconcile(engine)
    with engine.connect() as conn:
        moved = conn.execute(text("SELECT invoice_number, from_payer, amount_cents, transfer_date FROM share_transfer")).one()
    assert tuple(moved)[:3] == ("F2025-000101", "amc", 2000) and str(moved[3]) == "2025-03-02"
    shares = aged_balance(engine, date(2025, 3, 31))
    assert shares.loc["type:patient", "total"] == 1000 + 2000 + 2300   # P1 10+20, P3 23


ZERO_REJECTION = "A8;2025-03-04;amo;CPAM DE PARIS;0,00;;F2025-000103;rejected;Assuré inconnu"


def transfers(engine):
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT invoice_number, from_payer, amount_cents, payment_id FROM share_transfer ORDER BY id"))]


def test_an_insurer_rejection_line_of_zero_euros_moves_the_share_to_the_patient(engine, settings, tmp_path):
    import_file(engine, invoices_file(tmp_path), settings)
    report = import_file(engine, payments_file(tmp_path, [ZERO_REJECTION], "rejet.csv"), settings)
    assert (report.imported, report.rejects) == (1, [])
    run_reconcile(engine)
    assert transfers(engine) == [("F2025-000103", "amo", 2100, "A8")]
    shares = aged_balance(engine, date(2025, 3, 31))
    assert shares.loc["type:amo", "total"] == 7000                          # F101 only: F103's 21,00 moved
    assert shares.loc["type:patient", "total"] == 1000 + 4500 + 2300 + 2300 + 2100


def test_a_zero_euro_rejection_imported_again_changes_nothing(engine, settings, tmp_path):
    import_file(engine, invoices_file(tmp_path), settings)
    import_file(engine, payments_file(tmp_path, [ZERO_REJECTION], "rejet.csv"), settings)
    run_reconcile(engine)
    again = import_file(engine, payments_file(tmp_path, [ZERO_REJECTION], "rejet-bis.csv"), settings)
    assert (again.imported, again.duplicates, again.rejects) == (0, 1, [])
    assert run_reconcile(engine).skipped
    assert transfers(engine) == [("F2025-000103", "amo", 2100, "A8")]


def test_payments_imported_later_are_matched_by_the_next_run_only(engine, settings, tmp_path):
    world(engine, settings, tmp_path, order=("insurers",))
    run_reconcile(engine)
    before = allocations(engine)
    import_file(engine, payments_file(tmp_path, PATIENTS, "pat.csv"), settings)
    run_reconcile(engine)
    after = allocations(engine)
    assert set(before) < set(after) and len(after) == 4


def test_an_insurer_paying_after_a_rejection_takes_the_share_back_and_leaves_a_credit(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    run_reconcile(engine)
    import_file(engine, payments_file(tmp_path, ["B9;2025-04-01;patient;LEFEVRE ELOISE;30,00;F2025-000101;;;"],
                                      "p2.csv"), settings)
    run_reconcile(engine)
    import_file(engine, payments_file(tmp_path, ["A9;2025-04-15;amc;MGEN;20,00;;F2025-000101;paid;"], "i2.csv"),
                settings)
    run_reconcile(engine)
    assert ("A9", "F2025-000101", "amc", 2000, "explicit") in allocations(engine)
    assert ("B9", "F2025-000101", "patient", 1000, "text") in allocations(engine)
    assert queue(engine)["B9"] == ("credit", 2000, "P1")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT reversed_by FROM share_transfer")).scalar_one() == "A9"


def test_a_manual_match_settles_a_queued_payment_and_is_audited(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    run_reconcile(engine)
    assert manual_match(engine, "B4", "F2025-000101", 1234) == 1234
    assert ("B4", "F2025-000101", "patient", 1234, "manual") in allocations(engine)
    assert "B4" not in queue(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT kind FROM audit_event ORDER BY seq DESC LIMIT 1")).scalar_one() == "manual_match"
        assert verify(conn).ok


def test_a_manual_match_cannot_take_more_than_the_share_owes(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    run_reconcile(engine)
    with pytest.raises(RecouvrementError, match="impossible d'affecter"):
        manual_match(engine, "B3", "F2025-000102", 1200)        # already paid by B1


def test_an_unmatched_payment_waits_for_a_person_and_is_not_rematched_automatically(engine, settings, tmp_path):
    world(engine, settings, tmp_path)
    run_reconcile(engine)
    manual_unmatch(engine, "B1")
    import_file(engine, payments_file(tmp_path, ["B8;2025-05-01;patient;X;1,00;;;;"], "x.csv"), settings)
    run_reconcile(engine)
    assert not [a for a in allocations(engine) if a[0] == "B1"]
    assert queue(engine)["B1"][0] == "held"


def _keys(engine, table: str = "payment") -> list[tuple]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return [tuple(r) for r in conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE "
                                                           "tbl_name = ? AND type = 'index' ORDER BY name", (table,))]
        return [tuple(r) for r in conn.exec_driver_sql(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisunique, i.indisprimary FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass ORDER BY c.relname", (table,))]


def test_a_first_run_leaves_every_index_and_key_of_the_payment_and_allocation_tables_as_it_was(engine, settings,
                                                                                               tmp_path):
    before = [_keys(engine, "payment"), _keys(engine, "allocation")]
    world(engine, settings, tmp_path)
    run_reconcile(engine)
    assert [_keys(engine, "payment"), _keys(engine, "allocation")] == before
    with engine.connect() as conn:          # the keys still hold: a payment id cannot be stored twice
        with pytest.raises(IntegrityError):
            conn.execute(text("INSERT INTO payment (payment_id, payment_date, payer_type, payer_name, amount_cents, "
                              "reference, status, source_file, reconciled) SELECT payment_id, payment_date, "
                              "payer_type, payer_name, amount_cents, reference, status, source_file, reconciled "
                              "FROM payment LIMIT 1"))


def test_a_run_marking_a_few_new_payments_keeps_the_payment_indexes_in_place(engine, settings, tmp_path):
    from sqlalchemy import event
    world(engine, settings, tmp_path)
    run_reconcile(engine)
    import_file(engine, payments_file(tmp_path, ["C1;2025-04-01;patient;INCONNU PAUL;1,00;;;;"], "late.csv"),
                settings)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    assert run_reconcile(engine).payments >= 1
    assert not [s for s in statements if "DROP INDEX" in s.upper() or "DROP CONSTRAINT" in s.upper()]


def test_a_run_marks_what_it_processed_by_moving_its_mark_and_writes_no_payment_row(engine, settings, tmp_path):
    # Every payment up to the run's last row is reconciled by one key moved (db.reconcile.RECONCILED_THROUGH):
    # what comes after, and only that, is the next run's; a payment matched by hand before is not taken again.
    from sqlalchemy import event

    from recouvrement.db.payments import unreconciled_count
    world(engine, settings, tmp_path)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(" ".join(args[2].split()).upper()))
    assert run_reconcile(engine).payments == 7
    assert not [s for s in statements if s.startswith("UPDATE PAYMENT ")]
    later = date(2030, 1, 1)
    with engine.connect() as conn:
        assert unreconciled_count(conn, later) == 0
    import_file(engine, payments_file(tmp_path, ["C1;2025-04-01;patient;INCONNU PAUL;1,00;;;;",
                                                 "C2;2025-04-02;patient;N DIAYE MAELLE;5,00;;;;"], "late.csv"), settings)
    with engine.connect() as conn:
        assert unreconciled_count(conn, later) == 2
    manual_match(engine, "C2", "F2025-000104", actor="test")
    with engine.connect() as conn:
        assert unreconciled_count(conn, later) == 1
    run_reconcile(engine)
    assert [a for a in allocations(engine) if a[0] in ("C1", "C2")] == [("C2", "F2025-000104", "patient", 500,
                                                                          "manual")]
    assert queue(engine)["C1"][:2] == ("unmatched", 100) and "C2" not in queue(engine)
    assert run_reconcile(engine).skipped
    with engine.connect() as conn:
        assert unreconciled_count(conn, later) == 0


def test_the_invoices_of_letter_references_are_read_for_many_references_at_once(engine):
    # More references than one statement binds on SQLite; PostgreSQL sends them as one JSON text
    from recouvrement.db.letter_references import letter_invoices
    with engine.begin() as conn:
        for n in range(3):
            conn.execute(text("INSERT INTO letter (letter_id, patient_id, level, kind, channel, as_of, amount_cents, "
                              "sha256, file, rf_reference, status, attempts) VALUES (:l, 'P1', 1, 'relance_1', "
                              "'letter', '2025-04-01', 100, 'x', 'f', :r, 'written', 0)"),
                         {"l": f"L{n}", "r": f"RF{n:02d}LETTER{n}"})
        for letter, invoice in [("L0", "F2"), ("L0", "F1"), ("L2", "F3")]:
            conn.execute(text("INSERT INTO letter_item (letter_id, invoice_number, amount_cents, level) "
                              "VALUES (:l, :i, 50, 1)"), {"l": letter, "i": invoice})
    asked = [f"RF99NOLETTER{n}" for n in range(1_200)] + ["RF02LETTER2", "RF00LETTER0", "RF00LETTER0"]
    with engine.connect() as conn:
        found = letter_invoices(conn, asked)
        assert list(found.columns) == ["reference", "invoice_number"]
        assert found.values.tolist() == [["RF00LETTER0", "F1"], ["RF00LETTER0", "F2"], ["RF02LETTER2", "F3"]]
        assert letter_invoices(conn, ["RF99NOLETTER"]).empty and letter_invoices(conn, []).empty


def test_the_ledger_read_beside_the_explicit_pass_is_the_one_read_after_it(engine, settings, tmp_path):
    """The invoices, patients and sums paid read on another connection while the explicit pass allocates (a thread;
    PostgreSQL: in the run's snapshot), with the pass's allocations added after, give the ledger read in one go after the pass (earlier runs'
    allocations and this pass's on it); so does the same read made after the pass (nothing to add)."""
    from datetime import datetime, timezone

    import numpy as np

    from recouvrement.app.reconcile import _LedgerBeside, load_ledger, settle_plain_explicit
    from recouvrement.db import reconcile as store
    from recouvrement.db.explicit import paid_shares
    from recouvrement.db.ledger import matching_before
    from recouvrement.db.session import bulk_transaction
    import_file(engine, invoices_file(tmp_path), settings)
    import_file(engine, payments_file(tmp_path, PATIENTS, "pat.csv"), settings)
    run_reconcile(engine)
    import_file(engine, payments_file(tmp_path, INSURERS, "ins.csv"), settings)
    with bulk_transaction(engine) as conn:
        beside = _LedgerBeside(engine, conn)
        plain = settle_plain_explicit(conn, store.last_payment_row(conn), datetime.now(timezone.utc))
        before = beside.result()
        assert plain.allocations == 1 and before is not None
        once = load_ledger(conn)
        after = matching_before(conn)
        assert after.mark == before.mark + 1      # the pass's one allocation, added apart
        shares = paid_shares(conn)      # SQLite: read back by invoice rowid, as integers (db.explicit)
        if shares is not None:
            assert shares[1].tolist() == [2100] and shares[0] % 4 == 1     # F2025-000103's AMO share
        for read in (before, after):
            invoices = read.invoices.set_index("invoice_number")
            apart = load_ledger(conn, read)
            assert np.array_equal(apart.outstanding, once.outstanding)
            row = apart.invoices["invoice_number"].tolist().index("F2025-000103")     # A3 now, B2 the run before
            assert apart.outstanding[row, 0] == invoices.at["F2025-000103", "amo_cents"] - 2100
            assert apart.outstanding[row, 2] == invoices.at["F2025-000103", "patient_cents"] - 2300
            for name in ("invoices", "patients", "transfers", "patient_allocations"):
                pd.testing.assert_frame_equal(getattr(apart, name), getattr(once, name))


def test_each_allocation_takes_its_payment_s_day_from_the_payment_s_first_row_and_none_when_it_is_not_there():
    payments = pd.DataFrame({"payment_id": ["A", "B", "A"], "payment_date": ["2025-03-01", "2025-03-02", "2025-04-01"]})
    allocations = pd.DataFrame({"payment_id": ["B", "Z", "A", "B"]}, index=[7, 3, 9, 1])
    days = _payment_days(allocations, payments)
    assert days.tolist() == ["2025-03-02", None, "2025-03-01", "2025-03-02"]
    assert days.index.tolist() == [7, 3, 9, 1]
    assert _payment_days(allocations.iloc[:0], payments).tolist() == []


def test_a_first_run_builds_the_allocation_indexes_its_reads_do_not_need_once_the_engine_s_allocations_are_in(
        engine, settings, tmp_path):
    """SQLite: both (no moved share stands); PostgreSQL: the payment's alone, the matching read needs the covering
    one."""
    from sqlalchemy import event
    before = _keys(engine, "allocation")
    world(engine, settings, tmp_path)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(" ".join(args[2].split())))
    report = run_reconcile(engine, incremental=False)
    assert report.by_rule["explicit"] and sum(report.by_rule.values()) > report.by_rule["explicit"]
    built = [i for i, s in enumerate(statements) if s.startswith("CREATE INDEX ix_allocation_")]
    engine_writes = next(i for i, s in enumerate(statements) if s.startswith("DELETE FROM payment_exception"))
    assert len(built) == 2
    after = sorted(statements[i].split()[2] for i in built if i > engine_writes)
    assert after == (["ix_allocation_invoice_covering", "ix_allocation_payment_id"] if engine.dialect.name == "sqlite"
                     else ["ix_allocation_payment_id"])
    assert _keys(engine, "allocation") == before


def test_the_report_s_counts_are_made_beside_the_settling_of_the_invoices(engine, settings, tmp_path, monkeypatch):
    # app.reconcile._FiguresBeside: in a thread of their own, while the store settles the invoices (the thread waits
    # for settle's UPDATE to start), and the report and the audit event come out as they did.
    import threading

    from sqlalchemy import event

    import recouvrement.app.reconcile as reconcile_use_case
    world(engine, settings, tmp_path)
    settling, seen = threading.Event(), []
    event.listen(engine, "before_cursor_execute",
                 lambda *args: settling.set() if "settled_on" in args[2] and "UPDATE" in args[2].upper() else None)
    summarise = reconcile_use_case._summarise

    def waiting_for_the_settle(report, outcome):
        seen.append((threading.current_thread() is threading.main_thread(), settling.wait(10)))
        summarise(report, outcome)
    monkeypatch.setattr(reconcile_use_case, "_summarise", waiting_for_the_settle)
    report = run_reconcile(engine)
    assert seen == [(False, True)]
    assert report.payments == 7 and report.by_rule["explicit"] == 2 and report.exceptions["unmatched"] == 2
    with engine.connect() as conn:
        assert verify(conn).ok


def test_a_failure_beside_the_writes_fails_the_run_writes_nothing_and_leaves_no_thread(engine, settings, tmp_path,
                                                                                       monkeypatch):
    import threading

    import recouvrement.app.reconcile as reconcile_use_case
    world(engine, settings, tmp_path)

    def broken(outcome):
        raise RuntimeError("digest lost")
    monkeypatch.setattr(reconcile_use_case, "_digest", broken)
    with pytest.raises(RuntimeError, match="digest lost"):
        run_reconcile(engine)
    assert allocations(engine) == [] and queue(engine) == {}
    assert not [t for t in threading.enumerate() if t.name.startswith("outcome-figures")]
    monkeypatch.undo()
    assert run_reconcile(engine).payments == 7


def test_the_waiting_entries_patients_are_found_beside_the_settling_on_sqlite_and_their_reach_is_kept(
        engine, settings, tmp_path, monkeypatch):
    # On SQLite in WAL mode on a second connection, in the figures' thread (app.reconcile._FiguresBeside); elsewhere
    # on the run's own connection after the settling.
    import threading

    import recouvrement.app.reconcile as reconcile_use_case
    world(engine, settings, tmp_path)
    found: list[tuple[bool, pd.DataFrame]] = []
    resolve = reconcile_use_case.retries.resolve

    def recorded(conn, reach):
        found.append((threading.current_thread() is threading.main_thread(), resolve(conn, reach)))
        return found[-1][1]
    monkeypatch.setattr(reconcile_use_case.retries, "resolve", recorded)
    run_reconcile(engine, incremental=False)
    assert [in_main for in_main, _ in found] == [engine.dialect.name != "sqlite"]
    reach = found[0][1]
    assert set(reach["payment_id"]) == {"B3", "B4"} and "p:P1" in set(reach["key"])     # B4 is a name P1 bears
    with engine.connect() as conn:
        kept = sorted(tuple(r) for r in conn.execute(text("SELECT payment_id, key FROM queue_reach")))
    assert kept == sorted(set(reach[["payment_id", "key"]].itertuples(index=False, name=None)))


class _Undone(Exception):
    """Raised to roll a bulk transaction back."""


@pytest.mark.parametrize("from_row", ["the runs' mark", "the first row"])
def test_the_payments_the_pass_never_settles_read_apart_put_back_give_the_payments_one_read_gives(
        engine, settings, tmp_path, from_row):
    """The new payments the explicit pass never settles (naming no invoice, not paid, an agency's), read apart (beside
    the pass, on SQLite) and left out of the read after the pass, are put back among the others: the same frame, the
    same row order, as one read after the pass gives, with every queue entry (every entry, none, some). From the first
    row, the queue entries' payments are new ones too, some of them read apart: each still once, in row order."""
    from datetime import datetime, timezone

    from recouvrement.db import explicit
    from recouvrement.db import reconcile as store
    from recouvrement.db.session import bulk_transaction
    from recouvrement.importers.base import PAYMENT_COLUMNS
    world(engine, settings, tmp_path)
    run_reconcile(engine)           # B3, B4 wait in the queue
    payments_file(tmp_path, ["C1;2025-04-01;amc;HARMONIE;6,00;;F2025-000103;paid;",
                             "C2;2025-04-02;patient;INCONNU PAUL;5,00;;;;",
                             "C3;2025-04-03;amc;MGEN;20,00;;F2025-000104;rejected;Droits fermés",
                             "C4;2025-04-04;amo;CPAM;9,00;;F2025-000999;paid;",
                             "C5;2025-04-05;patient;LEFEVRE ELOISE;3,00;;F2025-000102;paid;",
                             "C6;2025-04-06;agency;RECOUVRA;4,00;;F2025-000104;paid;"], "night.csv")
    import_file(engine, tmp_path / "night.csv", settings)
    sqlite = engine.dialect.name == "sqlite"
    with pytest.raises(_Undone), bulk_transaction(engine) as conn:
        if from_row == "the first row":
            store.set_meta(conn, store.RECONCILED_THROUGH, "0")
        last = store.last_payment_row(conn)
        explicit.settle_plain_explicit(conn, last, datetime.now(timezone.utc))
        aside = store.payments_the_pass_leaves(conn, store.unreconciled(conn, "p"), last, PAYMENT_COLUMNS)
        assert {"C2", "C3", "C6"} <= set(aside["payment_id"]) and "C4" not in set(aside["payment_id"])
        for retried in (None, [], ["B4"]):
            one = store.pending_payments(conn, last, PAYMENT_COLUMNS, retried, True)
            apart = store.pending_payments(conn, last, PAYMENT_COLUMNS, retried, True, aside)
            assert {"C2", "C3", "C4", "C5", "C6"} <= set(one["payment_id"]) and "C1" not in set(one["payment_id"])
            assert ("B4" in set(one["payment_id"])) == (retried != [] or from_row == "the first row")
            if not sqlite:      # no order without ORDER BY on PostgreSQL (the engine sorts the payments itself)
                one, apart = (f.sort_values("payment_id", ignore_index=True) for f in (one, apart))
            pd.testing.assert_frame_equal(apart, one)
        raise _Undone


def test_a_first_run_reads_the_payments_the_pass_never_settles_beside_it_with_the_ledger(db_url, tmp_path, settings,
                                                                                         monkeypatch):
    """The new payments the explicit pass never settles are read in the ledger's thread while the pass runs, and the
    read after the pass is given them (fails without the change: all read after the pass, in the main thread; on
    PostgreSQL, since it reads beside the pass too)."""
    import threading

    from recouvrement.db import reconcile as store
    from tools.samples import generate
    folder = tmp_path / "scale"
    generate(folder, invoices=600, seed=3, scale=True)
    engine = open_engine(db_url)
    for name in ("invoices.csv", "remittance_amo.csv", "remittance_amc.csv", "payments_patient.csv"):
        import_file(engine, folder / name, settings)
    threads: list[str] = []
    given: list[int] = []
    leaves, pending = store.payments_the_pass_leaves, store.pending_payments

    def watched_leaves(*args):
        threads.append(threading.current_thread().name)
        return leaves(*args)

    def watched_pending(conn, last_id, columns, retried=None, settled=False, aside=None):
        given.extend([len(aside)] if aside is not None else [])
        return pending(conn, last_id, columns, retried, settled, aside)
    monkeypatch.setattr(store, "payments_the_pass_leaves", watched_leaves)
    monkeypatch.setattr(store, "pending_payments", watched_pending)
    report = run_reconcile(engine)
    assert [name.startswith("ledger-read") for name in threads] == [True]
    assert len(given) == 1 and 0 < given[0] < report.payments
    engine.dispose()


def test_the_ledger_read_before_anything_is_allocated_reads_no_sums_and_gives_the_ledger_the_sums_give(
        engine, settings, tmp_path, monkeypatch):
    """Before a first run (no allocation at all), the ledger's read beside the pass reads the invoices without joining
    the sums paid on them (fails without the change: joined to the allocations summed, all of them none): the same
    invoices, row ids and sums (all 0) as the joined read; once something is allocated, the sums are read again."""
    import numpy as np

    from recouvrement.db import ledger
    world(engine, settings, tmp_path)
    statements = _sql_read(monkeypatch, ledger)
    with engine.connect() as conn:
        before = ledger.matching_before(conn)
        assert before.mark == 0 and not [s for s in statements if "allocation" in s]
        joined, paid = ledger._invoices_with_paid(conn, ledger._invoices_paid_up_to(ledger._row_id(conn)),
                                                  {"mark": 0})
    assert before.row_ids is not None      # SQLite's rowids, PostgreSQL's places of the rows
    assert np.array_equal(joined.pop("row_id").to_numpy(dtype="int64"), before.row_ids)
    pd.testing.assert_frame_equal(before.invoices, joined)
    assert np.array_equal(before.paid, paid) and before.paid.shape == (4, 3) and not before.paid.any()
    run_reconcile(engine)
    statements.clear()
    with engine.connect() as conn:
        after = ledger.matching_before(conn)
    assert after.mark > 0 and after.paid.any() and [s for s in statements if "allocation" in s]


def test_a_run_finds_the_rf_references_the_payments_quote_in_a_thread_beside_its_statements(engine, settings,
                                                                                           tmp_path, monkeypatch):
    """The RF references are found (Arrow) in a thread while the main thread reads the pass's allocations back and
    what else comes before the ledger's read (fails without the change: found in the main thread); the run is the same
    (B1's reference still finds its letter's invoice)."""
    import threading

    from recouvrement.app import reconcile as use_case
    world(engine, settings, tmp_path)
    threads: list[str] = []
    real = use_case.rf_references

    def watched(payments):
        threads.append(threading.current_thread().name)
        return real(payments)
    monkeypatch.setattr(use_case, "rf_references", watched)
    run_reconcile(engine)
    assert [name.startswith("rf-references") for name in threads] == [True]
    assert ("B1", "F2025-000102", "patient", 4500, "rf") in allocations(engine)


def test_a_first_run_reads_the_pass_s_allocations_back_before_it_waits_for_the_ledger_s_thread(db_url, tmp_path,
                                                                                               settings, monkeypatch):
    """The pass's allocations are read back (db.explicit.paid_shares, once) while the ledger's thread ends its
    reads, before the run waits for them (fails without the change: after, with the payments left to the engine;
    on PostgreSQL, not read back at all: the ledger's read after the pass summed them)."""
    from recouvrement.app import reconcile as use_case
    from recouvrement.db import explicit
    from tools.samples import generate
    folder = tmp_path / "scale"
    generate(folder, invoices=600, seed=5, scale=True)
    engine = open_engine(db_url)
    for name in ("invoices.csv", "remittance_amo.csv", "remittance_amc.csv", "payments_patient.csv"):
        import_file(engine, folder / name, settings)
    events: list[str] = []
    read_back, waited = explicit.paid_shares, use_case._LedgerBeside.result

    def watched_read_back(conn, days=False):
        found = read_back(conn, days)
        events.append("read back" if found is not None else "nothing read back")
        return found

    def watched_wait(self):
        events.append("waited")
        return waited(self)
    monkeypatch.setattr(explicit, "paid_shares", watched_read_back)
    monkeypatch.setattr(use_case._LedgerBeside, "result", watched_wait)
    run_reconcile(engine)
    assert events == ["read back", "waited"]
    engine.dispose()


def test_the_invoices_the_rejection_lines_name_found_among_the_payments_read_apart_block_what_the_scan_blocks(
        engine, settings, tmp_path):
    """The invoices the new rejection and clawback lines name, found among the payments the pass never settles
    (db.explicit.rejected_named), give the pass the invoices it leaves to the engine (plain_blocked) that its scan of
    the new payments gives."""
    from recouvrement.db import explicit
    from recouvrement.db import reconcile as store
    from recouvrement.db.session import bulk_transaction
    from recouvrement.importers.base import PAYMENT_COLUMNS
    world(engine, settings, tmp_path)
    payments_file(tmp_path, ["C1;2025-04-01;amc;HARMONIE;6,00;;F2025-000103;paid;",
                             "C3;2025-04-03;amc;MGEN;20,00;;F2025-000104;rejected;Droits fermés",
                             "C7;2025-04-04;amo;CPAM;-9,00;;F2025-000102;clawback;Indu",
                             "C8;2025-04-05;amo;CPAM;0,00;;;rejected;Sans facture"], "night.csv")
    import_file(engine, tmp_path / "night.csv", settings)
    with pytest.raises(_Undone), bulk_transaction(engine) as conn:
        last, pending = store.last_payment_row(conn), store.unreconciled(conn, "p")
        aside = store.payments_the_pass_leaves(conn, pending, last, PAYMENT_COLUMNS)
        rejected = explicit.rejected_named(aside)
        assert sorted(rejected) == ["F2025-000101", "F2025-000102", "F2025-000104"]
        blocked = []
        for given in (None, rejected):
            conn.exec_driver_sql("DROP TABLE IF EXISTS plain_blocked")
            explicit._blocked(conn, last, pending, given)
            blocked.append(sorted(n for (n,) in conn.exec_driver_sql("SELECT invoice_number FROM plain_blocked")
                                  if n is not None))
        assert blocked[0] == blocked[1] and {"F2025-000101", "F2025-000102", "F2025-000104"} <= set(blocked[0])
        raise _Undone


def test_a_first_run_s_pass_takes_the_rejected_invoices_from_the_payments_read_beside_it(db_url, tmp_path, settings):
    """SQLite: a first run's explicit pass takes the invoices the rejection lines name from the payments the ledger's
    thread read (fails without the change: it scans the payment table for them); PostgreSQL, which reads nothing
    beside the pass, scans for them as before (what each gives: the test before)."""
    from sqlalchemy import event

    from tools.samples import generate
    folder = tmp_path / "scale"
    generate(folder, invoices=600, seed=3, scale=True)
    engine = open_engine(db_url)
    for name in ("invoices.csv", "remittance_amo.csv", "remittance_amc.csv", "payments_patient.csv"):
        import_file(engine, folder / name, settings)
    with engine.connect() as conn:
        rejected = conn.execute(text("SELECT COUNT(*) FROM payment WHERE status IN ('rejected', 'clawback') "
                                     "AND invoice_number IS NOT NULL")).scalar_one()
    scans: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def watched(conn, cursor, statement, parameters, context, executemany):
        if "FROM payment p WHERE p.status IN ('rejected', 'clawback')" in statement:
            scans.append(statement)
    run_reconcile(engine)
    assert rejected > 0 and len(scans) == (0 if engine.dialect.name == "sqlite" else 1)
    engine.dispose()


def test_a_first_run_reads_the_lines_its_pass_took_out_by_their_row_ids_not_by_a_scan(db_url, tmp_path, settings,
                                                                                       monkeypatch):
    """After a first run's pass, the new lines it staged and took out again or never staged (a blocked invoice's, a
    patient's on a share with nothing left to pay, one naming no known invoice: plain_left) are read by their row ids,
    not by a scan of every new payment for those not staged (fails without the change: the payment table scanned;
    on PostgreSQL since it keeps them too); what the read gives is the one read's
    (test_the_payments_the_pass_never_settles_read_apart_...)."""
    from recouvrement.db import reconcile as store
    from tools.samples import generate
    folder = tmp_path / "scale"
    generate(folder, invoices=600, seed=3, scale=True)
    engine = open_engine(db_url)
    for name in ("invoices.csv", "remittance_amo.csv", "remittance_amc.csv", "payments_patient.csv"):
        import_file(engine, folder / name, settings)
    reads = _sql_read(monkeypatch, store)
    run_reconcile(engine)
    after = [sql for sql in reads if "plain_explicit" in sql]      # the read after the pass
    assert len(after) == 1 and "FROM plain_left l CROSS JOIN payment p WHERE p.id = l.id" in after[0]
    engine.dispose()


def _sql_read(monkeypatch, module) -> list[str]:
    """The SQL of each read_columns call `module` makes from now on, in order."""
    reads: list[str] = []
    real = module.read_columns

    def watched(conn, sql, *args, **kwargs):
        reads.append(sql)
        return real(conn, sql, *args, **kwargs)
    monkeypatch.setattr(module, "read_columns", watched)
    return reads


def _twin_engine(request, engine, tmp_path, audit_key):
    """A second fresh database of the test's kind (its own file, or its own database on the test server)."""
    from recouvrement.audit import AuditSeal, seal_engine
    if engine.dialect.name == "sqlite":
        url = f"sqlite:///{tmp_path / 'twin.db'}"
    else:
        base, admin = request.getfixturevalue("postgres_server")
        name = f"{engine.url.database}_twin"
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE template_recouvrement")
        url = f"{base}/{name}"
    return seal_engine(open_engine(url), AuditSeal(audit_key, tmp_path / "twin.checkpoint"))


def _stored(engine) -> dict:
    """What a run leaves: allocations, invoices settled, the queue, the shares moved, each in order."""
    sql = {"allocation": "SELECT payment_id, invoice_number, payer_type, amount_cents, rule, payment_date FROM "
                         "allocation ORDER BY payment_id, invoice_number, payer_type",
           "settled": "SELECT invoice_number, settled_on FROM invoice ORDER BY invoice_number",
           "queue": "SELECT payment_id, kind, remaining_cents, patient_id FROM payment_exception ORDER BY payment_id",
           "moved": "SELECT invoice_number, from_payer, amount_cents, reversed_on FROM share_transfer ORDER BY "
                    "invoice_number, from_payer"}
    with engine.connect() as conn:
        return {name: [tuple(str(v) for v in row) for row in conn.execute(text(query))] for name, query in sql.items()}


def _run_watched(engine, seconds: float = 120.0, **options):
    """run_reconcile in a thread, failing the test when it has not ended after `seconds` (a read beside the run
    waiting for a lock the run holds, while the run waits for the read, would never end)."""
    import threading
    done: list = []
    runner = threading.Thread(target=lambda: done.append(run_reconcile(engine, **options)), daemon=True)
    runner.start()
    runner.join(seconds)
    if runner.is_alive():
        pytest.fail(f"the run did not end within {seconds:g} s")
    assert done, "the run failed"
    return done[0]


_NIGHT = ["A4;2025-04-01;amo;CPAM DE PARIS;-70,00;;F2025-000101;clawback;Indu",
          "C1;2025-04-02;patient;INCONNU PAUL;5,00;;;;"]


def _scenario(engine, settings, tmp_path, case: str) -> None:
    """Builds the case's database and runs what comes before the run watched (_run_watched)."""
    if case == "the pass has nothing to do":
        import_file(engine, invoices_file(tmp_path), settings)
        import_file(engine, payments_file(tmp_path, PATIENTS, "pat.csv"), settings)
        return
    world(engine, settings, tmp_path)
    if case == "an allocation made before the first run":
        manual_match(engine, "B3", "F2025-000104", 1200)
    elif case == "a clawback":
        run_reconcile(engine)
        import_file(engine, payments_file(tmp_path, _NIGHT, "night.csv"), settings)


@pytest.mark.parametrize("case", ["nothing allocated before", "an allocation made before the first run", "a clawback",
                                  "the pass has nothing to do"])
def test_a_run_reading_the_ledger_beside_its_pass_ends_and_stores_what_a_run_reading_it_after_stores(
        request, engine, settings, tmp_path, audit_key, monkeypatch, case):
    """The whole ledger read beside the explicit pass (PostgreSQL: a second connection in the run's snapshot, as on
    SQLite) never waits for the run, whatever the allocation table holds (a first run's pass sets its indexes aside,
    locking it), and the run stores exactly what a run reading everything after its pass stores (`twin`: the same
    database, nothing read beside). Fails without the change on PostgreSQL: nothing read beside."""
    from recouvrement.app import reconcile as use_case
    (tmp_path / "twin").mkdir()
    twin = _twin_engine(request, engine, tmp_path / "twin", audit_key)
    _scenario(twin, settings, tmp_path / "twin", case)
    with monkeypatch.context() as patched:
        patched.setattr(use_case, "view_beside", lambda conn: None)
        _run_watched(twin, incremental=False)
    _scenario(engine, settings, tmp_path, case)
    read = ledger_reads_beside(monkeypatch)
    report = _run_watched(engine, incremental=False)
    assert len(read) == 1 and read[0] is not None      # read beside the pass, not given up
    assert report.payments > 0 and _stored(engine) == _stored(twin)
    twin.dispose()


def test_a_read_beside_the_pass_that_would_wait_for_the_run_s_lock_gives_up_and_the_run_reads_for_itself(
        request, engine, settings, tmp_path, audit_key, monkeypatch):
    """A read beside a first run's pass that touches the allocation table once the pass has set its indexes aside
    (PostgreSQL: an exclusive lock until the run commits) would wait for the run while the run waits for it: it fails
    after db.session.BESIDE_LOCK_WAIT_MS instead, and the run reads the ledger on its own connection, storing what a
    run that read nothing beside stores. Fails without the lock wait bounded on PostgreSQL: the run never ends (the
    test fails after 120 s). SQLite readers wait for no writer: the read is kept."""
    import threading

    from sqlalchemy import event

    from recouvrement.app import reconcile as use_case
    (tmp_path / "twin").mkdir()
    twin = _twin_engine(request, engine, tmp_path / "twin", audit_key)
    world(twin, settings, tmp_path / "twin")
    with monkeypatch.context() as patched:
        patched.setattr(use_case, "view_beside", lambda conn: None)
        _run_watched(twin, incremental=False)
    world(engine, settings, tmp_path)
    set_aside = threading.Event()
    event.listen(engine, "after_cursor_execute", lambda *args: set_aside.set()
                 if args[2].startswith(("DROP INDEX", "ALTER TABLE allocation DROP")) else None)
    real = use_case.matching_before

    def touching_allocations(other, so_far=None):
        assert set_aside.wait(30)
        other.exec_driver_sql("SELECT 1 FROM allocation LIMIT 1").all()
        return real(other, so_far)
    monkeypatch.setattr(use_case, "matching_before", touching_allocations)
    read = ledger_reads_beside(monkeypatch)
    _run_watched(engine, incremental=False)
    assert len(read) == 1 and (read[0] is None) == (engine.dialect.name == "postgresql")
    assert _stored(engine) == _stored(twin)
    twin.dispose()


def test_the_ledger_read_beside_a_first_run_s_pass_reads_no_allocation_and_gives_the_ledger_and_days_read_after_it(
        engine, settings, tmp_path, monkeypatch):
    """Beside a first run's pass (which sets the allocation indexes aside), the ledger's thread reads no allocation:
    where the sums stop and that there are none was read on the run's connection before (db.ledger.allocated_so_far).
    With the pass's allocations read back after (db.explicit.paid_shares: keyed by the invoices' row ids, SQLite's
    rowids, PostgreSQL's places of the rows), the ledger and each invoice's latest day are those one (dated) read
    after the pass gives."""
    import threading
    from datetime import datetime, timezone

    import numpy as np

    from sqlalchemy import event

    from recouvrement.app.reconcile import (_days_on_rows, _LedgerBeside, load_ledger, load_ledger_dated,
                                            settle_plain_explicit)
    from recouvrement.db import ledger
    from recouvrement.db import reconcile as store
    from recouvrement.db.explicit import paid_shares
    from recouvrement.db.session import bulk_transaction
    world(engine, settings, tmp_path)
    beside_statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: beside_statements.append(args[2])
                 if threading.current_thread().name.startswith("ledger-read") else None)
    read_columns = ledger.read_columns       # SQLite's reads go through the driver's own cursor

    def watched(conn, sql, *args, **kwargs):
        if threading.current_thread().name.startswith("ledger-read"):
            beside_statements.append(sql)
        return read_columns(conn, sql, *args, **kwargs)
    monkeypatch.setattr(ledger, "read_columns", watched)
    with pytest.raises(_Undone), bulk_transaction(engine) as conn:
        beside = _LedgerBeside(engine, conn)
        plain = settle_plain_explicit(conn, store.last_payment_row(conn), datetime.now(timezone.utc), True)
        before = beside.result()
        assert plain.allocations == 1 and before is not None and before.mark == 0      # A3 (A1's invoice blocked)
        assert beside_statements and not [s for s in beside_statements if "allocation" in s]
        pass_paid = paid_shares(conn, days=True)
        assert pass_paid is not None and pass_paid.days is not None
        apart = load_ledger(conn, before, pass_paid)
        once, once_days = load_ledger_dated(conn)
        assert np.array_equal(apart.outstanding, once.outstanding)
        for name in ("invoices", "patients", "transfers", "patient_allocations"):
            pd.testing.assert_frame_equal(getattr(apart, name), getattr(once, name))
        days = _days_on_rows(before.row_ids, (pass_paid.shares, pass_paid.days), plain.allocations)
        assert days is not None
        row = apart.invoices["invoice_number"].tolist().index("F2025-000103")
        assert days[row] == 20250320 and (days == -1).sum() == 3      # A3's day; none elsewhere
        assert once_days is None if engine.dialect.name == "sqlite" else np.array_equal(days, once_days)
        raise _Undone
