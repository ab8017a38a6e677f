"""The aged balance of issue #15: a grand total of every payer, ageing by due date as an option, and the
per-patient and per-invoice detail (French Excel CSV) — every total equal to the ledger to the cent, held
against an independent recomputation (tests/ledger_reference.py and plain SQL), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from recouvrement.app.balance import balance_detail, balance_table, write_balance_csv, write_balance_detail
from recouvrement.app.disputes import open_dispute
from recouvrement.app.holds import place_hold
from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.app.write_offs import write_off
from recouvrement.core.ledger import outstanding
from recouvrement.core.privacy import scan_text
from recouvrement.db.bulk import read_frame
from recouvrement.db.ledger import load_snapshot
from recouvrement.render.csvfile import EXCEL_FR
from tests import ledger_reference as reference
from tests.app.world import invoices_file, nir_valid, payments_file, reconciled_sample_clinic

SAMPLE_DAY = date(2026, 11, 23)
DAY = date(2025, 3, 31)


@pytest.fixture
def sample(engine, settings):
    """The sample clinic imported and reconciled, one of its invoices written off."""
    reconciled_sample_clinic(engine, settings)
    shares = outstanding_frame(engine, SAMPLE_DAY)
    owing = shares[(shares["payer_type"] == "patient") & (shares["due_cents"] > 0)]["invoice_number"]
    write_off(engine, sorted(owing)[0], reason="under_cost", today=date(2026, 11, 2))
    return engine


@pytest.fixture
def world(engine, settings, tmp_path):
    import_file(engine, invoices_file(tmp_path), settings)
    return engine


def outstanding_frame(engine, day: date):
    with engine.connect() as conn:
        return outstanding(load_snapshot(conn, day))


def reference_due(engine, day: date) -> dict[str, int]:
    """What is still due per payer type, recomputed without core.ledger: the pre-#12 share arithmetic
    (tests/ledger_reference.py) less the write-offs read with plain SQL; each share counted when positive."""
    with engine.connect() as conn:
        shares = reference.share_states(conn, day)
        offs = read_frame(conn, "SELECT invoice_number, payer_type, SUM(amount_cents) AS cents FROM write_off "
                                "WHERE written_off_on <= :d GROUP BY invoice_number, payer_type", {"d": day})
    shares = shares.merge(offs, on=["invoice_number", "payer_type"], how="left")
    due = shares["due_cents"] - shares["cents"].fillna(0).astype("int64")
    return {payer: int(due[(shares["payer_type"] == payer) & (due > 0)].sum()) for payer in ("amo", "amc", "patient")}


def read_excel_fr(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))


def euros(cell: str) -> int:
    units, cents = cell.split(",")
    return int(units) * 100 + (int(cents) if not units.startswith("-") else -int(cents))


def test_the_grand_total_is_every_payer_added_up_and_equals_the_ledger_reference_to_the_cent(sample):
    expected = reference_due(sample, SAMPLE_DAY)
    ledger = outstanding_frame(sample, SAMPLE_DAY)
    assert sum(expected.values()) == int(ledger["due_cents"].clip(lower=0).sum()) > 0
    for ageing in ("issue", "due"):
        table = balance_table(sample, SAMPLE_DAY, ageing)
        assert table.index[-1] == "total:all"
        assert {p: int(table.loc[f"type:{p}", "total"]) for p in expected} == expected
        assert int(table.loc["total:all", "total"]) == sum(expected.values())
        buckets = [c for c in table.columns if c != "total"]
        assert int(table.loc["total:all", buckets].sum()) == sum(expected.values())


def test_the_patient_and_invoice_details_add_up_to_the_grand_total_to_the_cent(sample, tmp_path):
    total = sum(reference_due(sample, SAMPLE_DAY).values())
    patients_file, invoices_csv = tmp_path / "patients.csv", tmp_path / "factures.csv"
    rows, due = write_balance_detail(sample, SAMPLE_DAY, "patients", patients_file, EXCEL_FR)
    patients = read_excel_fr(patients_file)
    assert len(patients) == rows and due == total
    assert sum(euros(r["amo"]) + euros(r["amc"]) + euros(r["patient"]) for r in patients) == total
    assert all(euros(r["total"]) == euros(r["amo"]) + euros(r["amc"]) + euros(r["patient"]) for r in patients)
    rows, due = write_balance_detail(sample, SAMPLE_DAY, "invoices", invoices_csv, EXCEL_FR, ageing="due")
    invoices = read_excel_fr(invoices_csv)
    assert len(invoices) == rows and due == total == sum(euros(r["remaining"]) for r in invoices)
    table = balance_table(sample, SAMPLE_DAY, "due")
    for bucket in [c for c in table.columns if c != "total"]:
        assert sum(euros(r["remaining"]) for r in invoices if r["age_bucket"] == bucket) == int(
            table.loc["total:all", bucket])
    assert sum(euros(r["patient_remaining"]) for r in invoices) == sum(euros(r["patient"]) for r in patients)
    assert any("written_off" in r["state"] for r in invoices)



def test_the_detail_s_rows_are_built_with_the_cycle_collector_paused_and_it_is_on_again_after(sample, tmp_path):
    import gc
    from unittest import mock

    from recouvrement.app import balance

    seen, as_amounts = [], balance._as_amounts

    def recorded(values, made):
        seen.append(gc.isenabled())
        return as_amounts(values, made)

    with mock.patch.object(balance, "_as_amounts", recorded):
        write_balance_detail(sample, SAMPLE_DAY, "invoices", tmp_path / "factures.csv")
    assert seen and not any(seen) and gc.isenabled()

def test_ageing_by_due_date_counts_past_the_invoices_due_date_and_keeps_what_is_not_yet_due_apart(world):
    # F101: issued 10/01, due 09/02 (AMO, MGEN, patient); F102 10/02, F103 10/03, F104 12/03 — due 30 days later.
    by_issue = balance_table(world, DAY, "issue")
    by_due = balance_table(world, DAY, "due")
    assert list(by_issue.columns) == ["0-30", "31-60", "61-90", ">90", "total"]
    assert list(by_due.columns) == ["not-due", "0-30", "31-60", "61-90", ">90", "total"]
    assert by_issue.loc["total:all"].tolist() == [7300, 4500, 10000, 0, 21800]
    assert by_due.loc["total:all"].tolist() == [7300, 4500, 10000, 0, 0, 21800]
    assert by_due.loc["mutuelle:MGEN"].tolist() == [0, 0, 2000, 0, 0, 2000]
    assert balance_table(world, date(2025, 4, 9), "due").loc["type:patient", "not-due"] == 2300   # F104 only


def test_the_invoice_detail_says_what_stands_on_each_invoice(world):
    open_dispute(world, "F2025-000102", "montant contesté", received=date(2025, 3, 20))
    place_hold(world, "P3", "situation difficile", since=date(2025, 3, 25))
    write_off(world, "F2025-000101", reason="under_cost", today=date(2025, 3, 30))
    with world.begin() as conn:
        conn.execute(text("INSERT INTO agency_case (case_id, patient_id, handed_on, amount_cents, invoice_numbers, "
                          "status) VALUES ('C1', 'P2', :d, 2300, 'F2025-000103', 'handed_over')"), {"d": DAY})
        conn.execute(text("INSERT INTO plan (patient_id, status, proposed_on, accepted_on, total_cents, "
                          "invoice_numbers) VALUES ('P1', 'active', :p, :a, 4500, 'F2025-000102')"),
                     {"p": date(2025, 3, 1), "a": date(2025, 3, 5)})
    detail = balance_detail(world, DAY, "invoices").set_index("invoice_number")
    assert detail["state"].to_dict() == {"F2025-000101": "awaited written_off", "F2025-000102": "disputed plan",
                                         "F2025-000103": "awaited agency", "F2025-000104": "held"}
    assert detail.loc["F2025-000101", ["amount", "paid", "written_off", "amo_remaining", "amc_remaining",
                                       "patient_remaining", "remaining"]].tolist() == [10000, 0, 1000, 7000, 2000,
                                                                                       0, 9000]
    assert (detail.loc["F2025-000101", "issue_date"], detail.loc["F2025-000101", "due_date"]) == (
        date(2025, 1, 10), date(2025, 2, 9))
    assert balance_detail(world, date(2025, 3, 19), "invoices").set_index("invoice_number")["state"].to_dict() == {
        "F2025-000101": "awaited", "F2025-000102": "plan", "F2025-000103": "awaited", "F2025-000104": "open"}


def test_the_patient_detail_nets_each_patients_credit_against_what_they_owe(world, settings, tmp_path):
    payments = payments_file(tmp_path, ["V1;20/03/2025;patient;Lefèvre Éloïse;60,00;F2025-000102;F2025-000102;paid;"])
    import_file(world, payments, settings)
    run_reconcile(world)
    detail = balance_detail(world, DAY, "patients").set_index("patient_id")
    assert detail.loc["P1", ["open_invoices", "amo", "amc", "patient", "total", "credit", "patient_net"]].tolist() == [
        1, 7000, 2000, 1000, 10000, 1500, 0]
    assert (detail.loc["P1", "last_name"], detail.loc["P1", "first_name"]) == ("Lefèvre", "Éloïse")
    assert detail["total"].sum() == balance_table(world, DAY).loc["total:all", "total"]


def test_the_detail_csvs_are_french_excel_and_carry_no_care_detail_and_no_nir(world, tmp_path):
    for kind in ("patients", "invoices"):
        path = tmp_path / f"{kind}.csv"
        write_balance_detail(world, DAY, kind, path, EXCEL_FR)
        data = path.read_bytes()
        body = data.decode("utf-8-sig")
        assert data.startswith(b"\xef\xbb\xbf") and body.count("\r\n") == body.count("\n")
        assert body.splitlines()[0].count(";") >= 10 and "70,00" in body      # F2025-000101's AMO share
        assert scan_text(body) == []
        for forbidden in ("cardiologie", "Détartrage", "DEQP003", "HBJD001", nir_valid("2850575123456"), "2850575"):
            assert forbidden.lower() not in body.lower()


def test_the_balance_csv_ends_with_the_grand_total(world, tmp_path):
    path = tmp_path / "balance.csv"
    write_balance_csv(balance_table(world, DAY, "due"), path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "group,name,not-due,0-30,31-60,61-90,>90,total"
    assert lines[-1] == "total,all,73.00,45.00,100.00,0.00,0.00,218.00"


def test_the_balance_command_prints_the_grand_total_and_writes_the_detail(world, db_url, tmp_path, monkeypatch,
                                                                            capsys):
    from tests.test_cli_messages import run_main
    code, out, err = run_main(monkeypatch, capsys, "--db", db_url, "balance", "--as-of", "31/03/2025", "--ageing",
                              "due", "--detail", "invoices", "--out", "factures.csv", "--format", "excel-fr",
                              cwd=tmp_path)
    assert code == 0, err
    assert "jours depuis l'échéance" in out and "non échu" in out
    assert "TOTAL (tous payeurs)" in out and "218,00\xa0€" in out
    assert "détail : 4 facture(s), 218,00\xa0€ restant dû, écrit dans factures.csv" in out
    assert [r["invoice_number"] for r in read_excel_fr(tmp_path / "factures.csv")] == [
        "F2025-000101", "F2025-000102", "F2025-000103", "F2025-000104"]
    code, out, err = run_main(monkeypatch, capsys, "--db", db_url, "balance", "--detail", "patients", cwd=tmp_path)
    assert code == 2 and "--detail et --out vont ensemble" in err
