"""The patient page's figures read in the database for one patient (db.ledger.patient_invoice_sums and
patient_credits, issue #16) equal core.ledger.outstanding() and patient_money() on that patient's dated snapshot,
for every patient of the sample clinic, on past and later days, with a write-off and a reversed transfer; on SQLite
and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from recouvrement.core.ledger import SHARES, outstanding, patient_money
from recouvrement.db.ledger import SHARE_FIELDS, load_snapshot, patient_credits, patient_invoice_sums
from tests.app.world import reconciled_sample_clinic, write_off_and_reverse_a_transfer

DAYS = (date(2025, 1, 15), date(2025, 6, 2), date(2026, 11, 2), date(2026, 11, 23), date(2027, 1, 1))
COLUMNS = {"expected": "expected", "paid": "paid", "moved_out": "moved_out", "moved_in": "moved_in",
           "written_off": "written_off", "due": "due_cents"}


@pytest.fixture
def sample(engine, settings):
    return reconciled_sample_clinic(engine, settings)


def from_snapshot(conn, patient_id: str, day: date):
    """What the page showed before #16: outstanding() and patient_money() of the patient's dated snapshot."""
    snapshot = load_snapshot(conn, day, [patient_id])
    shares = outstanding(snapshot)
    rows = {}
    for row in shares.to_dict("records"):
        rows.setdefault(row["invoice_number"], {"issue_date": row["issue_date"], "due_date": row["due_date"],
                                                "amc_payer": row["amc_payer"], "shares": {}})
        if row["payer_type"] == "amo":
            rows[row["invoice_number"]]["due_date"] = row["due_date"]
        rows[row["invoice_number"]]["shares"][row["payer_type"]] = tuple(int(row[c]) for c in COLUMNS.values())
    money = patient_money(snapshot, table=shares)
    credits = ((int(money.loc[patient_id, "credit_cents"]), int(money.loc[patient_id, "pending_cents"]))
               if patient_id in money.index else (0, 0))
    return rows, credits


def from_database(conn, patient_id: str, day: date):
    rows = {}
    for invoice in patient_invoice_sums(conn, patient_id, day):
        assert [s.payer_type for s in invoice.shares] == list(SHARES)
        rows[invoice.invoice_number] = {"issue_date": invoice.issue_date, "due_date": invoice.due_date,
                                        "amc_payer": invoice.amc_payer,
                                        "shares": {s.payer_type: tuple(getattr(s, f) for f in SHARE_FIELDS)
                                                   for s in invoice.shares}}
    return rows, patient_credits(conn, patient_id, day)


def assert_every_patient_equal(engine, days=DAYS) -> None:
    with engine.connect() as conn:
        patients = conn.execute(text("SELECT patient_id FROM patient ORDER BY patient_id")).scalars().all()
        for day in days:
            for patient_id in patients:
                assert from_database(conn, patient_id, day) == from_snapshot(conn, patient_id, day), (day, patient_id)


def test_every_patients_shares_and_credits_read_in_the_database_equal_the_ledgers_on_every_day(sample):
    with sample.connect() as conn:
        kinds = set(conn.execute(text("SELECT DISTINCT kind FROM payment_exception WHERE patient_id IS NOT NULL"))
                    .scalars())
        moved = conn.execute(text("SELECT COUNT(*) FROM share_transfer")).scalar_one()
    assert "credit" in kinds and moved > 0
    assert_every_patient_equal(sample)


def test_a_write_off_and_a_reversed_transfer_show_on_the_page_as_in_the_ledger(sample):
    with sample.connect() as conn:
        shares = outstanding(load_snapshot(conn, date(2026, 11, 23)))
    write_off_and_reverse_a_transfer(
        sample, list(shares[(shares["payer_type"] == "patient") & (shares["due_cents"] > 0)]["invoice_number"]))
    assert_every_patient_equal(sample, (date(2026, 11, 1), date(2026, 11, 9), date(2026, 11, 10), date(2026, 11, 23)))


def test_an_unknown_patient_has_no_invoice_and_no_credit(sample):
    with sample.connect() as conn:
        assert patient_invoice_sums(conn, "P-INCONNU", date(2026, 11, 23)) == []
        assert patient_credits(conn, "P-INCONNU", date(2026, 11, 23)) == (0, 0)
