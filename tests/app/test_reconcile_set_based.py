"""The set-based pass settles the plain explicit lines exactly as the pure engine would."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event, text

from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.db import explicit
from recouvrement.db.session import open_engine
from tests.app.world import INVOICES, invoices_file, payments_file
from tools.samples import generate

SAMPLES = Path(__file__).resolve().parents[2] / "recouvrement" / "sample_clinic"
FILES = ("invoices.csv", "remittance_amo.csv", "remittance_amc.csv", "retour_noemie.rsp", "bank_camt053.xml",
         "bank_cfonb120.txt")
SCALE_FILES = ("invoices.csv", "remittance_amo.csv", "remittance_amc.csv", "payments_patient.csv")


def outcome(engine) -> tuple[list, list, list]:
    with engine.connect() as conn:
        allocations = sorted(tuple(r) for r in conn.execute(text(
            "SELECT payment_id, invoice_number, payer_type, amount_cents, rule FROM allocation")))
        queue = sorted(tuple(r) for r in conn.execute(text(
            "SELECT payment_id, kind, remaining_cents, reason, patient_id FROM payment_exception")))
        moved = sorted(tuple(str(v) for v in r) for r in conn.execute(text(
            "SELECT invoice_number, from_payer, amount_cents, transfer_date, reversed_by FROM share_transfer")))
    return allocations, queue, moved


def reconciled_both_ways(folder: Path, files, db_url: str, tmp_path: Path, settings, in_steps: bool):
    results = []
    for set_based, url in ((True, db_url), (False, f"sqlite:///{tmp_path / 'pure.db'}")):
        engine = open_engine(url)
        for number, name in enumerate(files):
            import_file(engine, folder / name, settings)
            if in_steps and number:          # several nights: later files meet earlier allocations
                run_reconcile(engine, set_based=set_based)
        run_reconcile(engine, set_based=set_based)
        results.append(outcome(engine))
        with engine.connect() as conn:
            passes = [e for (e,) in conn.execute(text("SELECT payload FROM audit_event WHERE kind = 'reconcile'"))]
        assert any('"set_based": null' not in p for p in passes) == set_based    # the pass really ran, or not
        engine.dispose()
    return results


@pytest.mark.parametrize("in_steps", [False, True])
def test_the_sample_clinic_reconciles_the_same_with_and_without_the_set_based_pass(db_url, tmp_path, settings,
                                                                                   in_steps):
    with_sql, pure = reconciled_both_ways(SAMPLES, FILES, db_url, tmp_path, settings, in_steps)
    assert with_sql == pure
    assert len(with_sql[0]) > 600


def test_a_scale_set_reconciles_the_same_with_and_without_the_set_based_pass(db_url, tmp_path, settings):
    folder = tmp_path / "scale"
    generate(folder, invoices=3000, scale=True)
    with_sql, pure = reconciled_both_ways(folder, SCALE_FILES, db_url, tmp_path, settings, in_steps=True)
    assert with_sql == pure
    assert {a[4] for a in with_sql[0]} >= {"explicit", "rf", "text"}


@pytest.mark.parametrize("in_steps", [False, True])
def test_a_patient_line_on_a_settled_share_is_judged_by_the_payers_name_on_both_paths(db_url, tmp_path, settings,
                                                                                       in_steps):
    folder = tmp_path / "world"
    folder.mkdir()
    invoices_file(folder)
    payments_file(folder, ["C1;2025-03-05;patient;LEFEVRE ELOISE;45,00;;F2025-000102;;"], "night1.csv")
    payments_file(folder, ["C2;2025-03-06;patient;MME LEFEVRE ELOISE;45,00;;F2025-000102;;",
                           "C3;2025-03-07;patient;DE LA FONTAINE JEAN-FRANCOIS;45,00;;F2025-000102;;",
                           "C4;2025-03-12;patient;J F DE LA FONTAINE;23,00;;F2025-000102;;"], "night2.csv")
    with_sql, pure = reconciled_both_ways(folder, ("invoices.csv", "night1.csv", "night2.csv"), db_url, tmp_path,
                                          settings, in_steps)
    assert with_sql == pure
    queue = {row[0]: (row[1], row[2], row[4]) for row in with_sql[1]}
    assert queue["C2"] == ("credit", 4500, "P1")           # the patient paid twice: their credit
    assert queue["C3"] == ("unmatched", 4500, "P2")        # a mistyped number: not P1's money
    assert "C4" not in queue                               # the payer's own share, by name and amount
    assert ("C4", "F2025-000103", "patient", 2300, "name_amount") in with_sql[0]


@pytest.mark.parametrize("new_unknown_lines", [0, 3])   # fewer new lines than queue entries, and more
def test_a_new_line_naming_an_invoice_a_queue_entry_names_waits_for_the_entry_whichever_side_is_larger(
        db_url, tmp_path, settings, new_unknown_lines):
    folder = tmp_path / "world"
    folder.mkdir()
    invoices_file(folder, [row for row in INVOICES if "F2025-000103" not in row])
    invoices_file(folder, [row for row in INVOICES if "F2025-000103" in row], "invoices2.csv")
    payments_file(folder, ["Q1;2025-03-05;patient;DE LA FONTAINE JEAN-FRANCOIS;23,00;;F2025-000103;;",
                           "Q2;2025-03-06;amo;CPAM;10,00;;F2025-000999;;"], "night1.csv")
    payments_file(folder, ["N1;2025-03-20;patient;DE LA FONTAINE JEAN-FRANCOIS;23,00;;F2025-000103;;",
                           *(f"U{n};2025-03-20;amo;CPAM;10,00;;F2025-00099{n};;" for n in range(new_unknown_lines))],
                  "night2.csv")
    results = []
    for set_based, url in ((True, db_url), (False, f"sqlite:///{tmp_path / 'pure.db'}")):
        engine = open_engine(url)
        for names in (("invoices.csv", "night1.csv"), ("invoices2.csv", "night2.csv")):
            for name in names:
                import_file(engine, folder / name, settings)
            run_reconcile(engine, set_based=set_based)
        results.append(outcome(engine))
        engine.dispose()
    with_sql, pure = results
    assert with_sql == pure
    assert ("Q1", "F2025-000103", "patient", 2300, "explicit") in with_sql[0]    # the older payment first
    assert not [a for a in with_sql[0] if a[0] == "N1"]


@pytest.mark.parametrize("in_steps, rows_at_once", [(False, None), (True, None), (False, 2)])
def test_a_share_paid_in_several_lines_is_paid_in_date_then_id_order_on_both_paths(db_url, tmp_path, settings,
                                                                                   in_steps, rows_at_once,
                                                                                   monkeypatch):
    # The set-based pass counts each line as its share's only one, then counts again the shares paid in several
    # lines: out of row order, two on the same day (the id decides), one over the share, one on a paid share.
    # `rows_at_once`: SQLite reads the lines' shares (to find those paid several times) a few rows at a time, the
    # lines of one share across two reads.
    if rows_at_once:
        monkeypatch.setattr(explicit, "_INTEGERS_ROWS", rows_at_once)
    folder = tmp_path / "world"
    folder.mkdir()
    invoices_file(folder)
    payments_file(folder, ["A3;2025-03-10;amo;CPAM;30,00;;F2025-000101;;",
                           "A2;2025-03-05;amo;CPAM;30,00;;F2025-000101;;",
                           "A1;2025-03-05;amo;CPAM;30,00;;F2025-000101;;",
                           "M1;2025-03-06;amc;MGEN;20,00;;F2025-000101;;",
                           "B1;2025-03-07;amo;CPAM;21,00;;F2025-000103;;",
                           "B2;2025-03-08;amo;CPAM;5,00;;F2025-000103;;"], "day1.csv")
    payments_file(folder, ["A4;2025-03-12;amo;CPAM;5,00;;F2025-000101;;",
                           "C1;2025-03-12;amc;HARMONIE;4,00;;F2025-000103;;",
                           "C2;2025-03-11;amc;HARMONIE;4,00;;F2025-000103;;"], "day2.csv")
    with_sql, pure = reconciled_both_ways(folder, ("invoices.csv", "day1.csv", "day2.csv"), db_url, tmp_path,
                                          settings, in_steps)
    assert with_sql == pure
    assert {a for a in with_sql[0] if a[0][0] in "ABCM"} == {
        ("A1", "F2025-000101", "amo", 3000, "explicit"), ("A2", "F2025-000101", "amo", 3000, "explicit"),
        ("A3", "F2025-000101", "amo", 1000, "explicit"), ("M1", "F2025-000101", "amc", 2000, "explicit"),
        ("B1", "F2025-000103", "amo", 2100, "explicit"), ("C2", "F2025-000103", "amc", 400, "explicit"),
        ("C1", "F2025-000103", "amc", 200, "explicit")}
    credits = {row[0]: row[2] for row in with_sql[1] if row[1] == "credit"}
    assert credits == {"A3": 2000, "B2": 500, "A4": 500, "C1": 200}


@pytest.mark.parametrize("waiting, new", [(0, 2), (2, 2), (3, 2), (1, 5), (40, 2)])
def test_whether_more_entries_wait_than_new_lines_is_told_from_as_many_entries_as_new_lines_and_one(
        engine, settings, tmp_path, waiting, new):
    path = payments_file(tmp_path, [f"N{n};2025-03-20;amo;CPAM;10,00;;F2025-00099{n};;" for n in range(new)])
    import_file(engine, path, settings)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with engine.begin() as conn:
        for n in range(waiting + 3):            # and three credits, which do not wait
            conn.execute(text("INSERT INTO payment_exception (payment_id, kind, remaining_cents, reason) "
                              "VALUES (:p, :k, 100, 'x')"), {"p": f"E{n}", "k": "unmatched" if n < waiting else "credit"})
        last = conn.execute(text("SELECT MAX(id) FROM payment")).scalar_one()
        assert explicit._queue_is_larger(conn, last) == (waiting > new)
    counts = [s for s in statements if "COUNT(*)" in s and "payment_exception" in s]
    assert counts == [] if not waiting else all("LIMIT" in s for s in counts) and counts


def test_the_lines_of_an_invoice_the_plain_pass_leaves_to_the_engine_are_never_staged_in_it(db_url, tmp_path,
                                                                                          settings):
    # A rejection pending on F2025-000101: its paid lines go to the engine. On PostgreSQL the pass leaves them out
    # as it stages its lines (plain_blocked first), rather than deleting them after; SQLite deletes them after (and
    # finds the blocked invoices once its lines are staged: the rejected ones may come from the ledger's thread).
    from sqlalchemy.engine import Engine
    folder = tmp_path / "world"
    folder.mkdir()
    invoices_file(folder)
    payments_file(folder, ["R1;2025-03-02;amc;MGEN;20,00;;F2025-000101;rejected;Droits fermés",
                           "P1;2025-03-05;amo;CPAM;30,00;;F2025-000101;;",
                           "P2;2025-03-06;amo;CPAM;21,00;;F2025-000103;;"], "day1.csv")
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()))

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        with_sql, pure = reconciled_both_ways(folder, ("invoices.csv", "day1.csv"), db_url, tmp_path, settings,
                                              in_steps=False)
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert with_sql == pure
    assert ("P2", "F2025-000103", "amo", 2100, "explicit") in with_sql[0]
    staged = [i for i, s in enumerate(statements) if s.startswith("INSERT INTO plain_explicit")]
    blocked = [i for i, s in enumerate(statements) if s.startswith("CREATE TEMPORARY TABLE plain_blocked")]
    deleted = [i for i, s in enumerate(statements) if s.startswith("DELETE FROM plain_explicit WHERE id IN")]
    assert len(staged) == len(blocked) == 1
    if db_url.startswith("sqlite"):
        assert len(deleted) == 1 and staged[0] < blocked[0] < deleted[0]
    else:
        assert not deleted and blocked[0] < staged[0]
