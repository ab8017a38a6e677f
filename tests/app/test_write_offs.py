"""Write-offs (admission en non-valeur): subtracted from what is owed in one place (core.ledger.outstanding),
audited, booked in the FEC."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from recouvrement.app.books import export_fec
from recouvrement.app.imports import import_file
from recouvrement.app.write_offs import write_off
from recouvrement.core.ledger import Snapshot, outstanding, patient_money
from recouvrement.db.ledger import load_snapshot
from recouvrement.errors import RecouvrementError
from recouvrement.rules import AccountingRules
from tests.app.world import invoices_file
from tests.fec_structure import check_entries, read_fec

DAY = date(2026, 3, 31)
SNAP = Snapshot.of(DAY, invoices=[{"invoice_number": "F1", "patient_id": "P1", "issue_date": date(2024, 1, 5),
                                   "patient_cents": 3000, "amo_cents": 7000}],
                   write_offs=[{"invoice_number": "F1", "payer_type": "patient", "amount_cents": 3000,
                                "written_off_on": date(2026, 3, 1)}])


def test_a_written_off_share_is_no_longer_owed():
    shares = outstanding(SNAP)
    patient = shares[shares["payer_type"] == "patient"].iloc[0]
    assert (patient["due_cents"], patient["written_off"]) == (0, 3000)
    assert patient_money(SNAP).loc["P1", "owed_cents"] == 0


def test_before_its_day_the_write_off_is_not_yet_known():
    assert patient_money(SNAP, date(2026, 2, 28)).loc["P1", "owed_cents"] == 3000


def test_a_write_off_leaves_the_other_shares_as_they_are():
    shares = outstanding(SNAP)
    assert shares[shares["payer_type"] == "amo"]["due_cents"].tolist() == [7000]


def test_writing_off_an_invoice_takes_what_the_patient_owes_and_is_audited(engine, settings, tmp_path):
    import_file(engine, invoices_file(tmp_path), settings)
    done = write_off(engine, "F2025-000102", reason="time_barred", today=DAY, note="relances sans réponse")
    assert (done.amount_cents, done.patient_id) == (4500, "P1")
    with engine.connect() as conn:
        shares = outstanding(load_snapshot(conn, DAY))
        event = conn.execute(text("SELECT invoice_number, patient_id, payload FROM audit_event WHERE kind = "
                                  "'write_off'")).one()
    assert shares[(shares["invoice_number"] == "F2025-000102")]["due_cents"].tolist() == [0, 0, 0]
    assert event[:2] == ("F2025-000102", "P1") and '"reason": "time_barred"' in event[2]
    assert "relances" not in event[2]


def test_nothing_owed_is_nothing_to_write_off(engine, settings, tmp_path):
    import_file(engine, invoices_file(tmp_path), settings)
    write_off(engine, "F2025-000102", reason="deceased", today=DAY)
    with pytest.raises(RecouvrementError) as caught:
        write_off(engine, "F2025-000102", reason="deceased", today=DAY)
    assert caught.value.field == "INVOICE_NUMBER"
    with pytest.raises(RecouvrementError) as caught:
        write_off(engine, "F9999-000001", reason="deceased", today=DAY)
    assert "inconnue" in str(caught.value)
    with pytest.raises(RecouvrementError) as caught:
        write_off(engine, "F2025-000104", reason="bored", today=DAY)
    assert caught.value.field == "reason"


def test_a_write_off_is_booked_in_the_fec(engine, settings, tmp_path):
    import_file(engine, invoices_file(tmp_path), settings)
    done = write_off(engine, "F2025-000103", reason="under_cost", today=DAY)
    _, records = read_fec(export_fec(engine, settings, AccountingRules(), 2026, tmp_path / "fec.txt").fec)
    check_entries(records)
    assert [(r["JournalCode"], r["CompteNum"], r["CompAuxNum"], r["Debit"], r["Credit"], r["PieceRef"])
            for r in records] == [("OD", "654000", "", "23,00", "0,00", f"ANV-{done.write_off_id}"),
                                  ("OD", "411100", "P2", "0,00", "23,00", f"ANV-{done.write_off_id}")]
    assert "Admission en non-valeur facture F2025-000103" in records[0]["EcritureLib"]


def test_the_command_writes_off_in_french(engine, settings, tmp_path, db_url, monkeypatch, capsys):
    from tests.test_cli_messages import run_main
    import_file(engine, invoices_file(tmp_path), settings)
    code, out, err = run_main(monkeypatch, capsys, "--db", db_url, "write-off", "F2025-000102", "--reason",
                              "agency-uncollectable", "--on", "31/03/2026")
    assert code == 0 and "45,00" in out and "non-valeur" in out, err
    code, out, err = run_main(monkeypatch, capsys, "--db", db_url, "write-off", "F2025-000102", "--reason",
                              "agency-uncollectable")
    assert code == 2 and "rien à passer en non-valeur" in err


def test_a_written_off_invoice_leaves_the_ladder_and_the_balance(engine, settings, tmp_path):
    from recouvrement.db.accounts import load_accounts
    from recouvrement.app.balance import aged_balance
    from recouvrement.rules import Rules
    import_file(engine, invoices_file(tmp_path), settings)
    with engine.connect() as conn:
        before = {item.invoice_number for account in load_accounts(conn, DAY, Rules()) for item in account.items}
    total_before = int(aged_balance(engine, DAY).loc["type:patient", "total"])
    write_off(engine, "F2025-000102", reason="time_barred", today=DAY)
    with engine.connect() as conn:
        after = {item.invoice_number for account in load_accounts(conn, DAY, Rules()) for item in account.items}
    assert "F2025-000102" in before and after == before - {"F2025-000102"}
    assert int(aged_balance(engine, DAY).loc["type:patient", "total"]) == total_before - 4500
