"""The aged balance summed in the database (db.ledger.aged_sums, issue #16) equals the whole ledger's: every share
of core.ledger.outstanding() on a whole dated snapshot, grouped by payer and age bucket in pandas as the balance
did before, on SQLite and PostgreSQL, on past days and later ones, by issue and by due date."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from sqlalchemy import text

from recouvrement.app.balance import balance_detail, balance_table
from recouvrement.app.disputes import open_dispute
from recouvrement.app.holds import place_hold
from recouvrement.app.write_offs import write_off
from recouvrement.core.balance import bucket_columns, invoice_detail, invoice_state, patient_detail, with_grand_total
from recouvrement.core.ledger import outstanding
from recouvrement.db.eligibility import decision_facts
from recouvrement.db.ledger import aged_balance, balance_facts, load_snapshot, patient_balance, share_states
from tests.app.world import reconciled_sample_clinic, write_off_and_reverse_a_transfer

DAYS = (date(2025, 1, 15), date(2025, 3, 31), date(2025, 6, 2), date(2026, 6, 30), date(2026, 11, 2),
        date(2026, 11, 23), date(2027, 1, 1))


def whole_ledger_balance(conn, day: date, ageing: str) -> pd.DataFrame:
    """The aged balance as computed before #16: outstanding() of the whole snapshot on `day`, the shares with
    money due pivoted by payer type and by mutuelle in pandas."""
    shares = share_states(conn, day, ageing=ageing)
    shares = shares[shares["due_cents"] > 0]
    by_type = shares.pivot_table(index="payer_type", columns="bucket", values="due_cents", aggfunc="sum",
                                 fill_value=0, observed=False)
    amc = shares[shares["payer_type"] == "amc"]
    by_payer = amc.pivot_table(index="payer", columns="bucket", values="due_cents", aggfunc="sum", fill_value=0,
                               observed=False)
    by_type.index = [f"type:{i}" for i in by_type.index]
    by_payer.index = [f"mutuelle:{i}" for i in by_payer.index]
    table = pd.concat([by_type, by_payer]).reindex(columns=list(bucket_columns(ageing)), fill_value=0)
    table = table.fillna(0).astype("int64")
    table["total"] = table.sum(axis=1)
    return table


def assert_equal_to_whole_ledger(engine, days=DAYS) -> None:
    with engine.connect() as conn:
        for day in days:
            for ageing in ("issue", "due"):
                summed, whole = aged_balance(conn, day, ageing), whole_ledger_balance(conn, day, ageing)
                pd.testing.assert_frame_equal(summed, whole, check_index_type=False, obj=f"{day} {ageing}")


@pytest.fixture
def sample(engine, settings):
    return reconciled_sample_clinic(engine, settings)


def test_the_balance_summed_in_the_database_equals_the_whole_ledgers_on_every_day_and_both_ageings(sample):
    with sample.connect() as conn:
        shares = outstanding(load_snapshot(conn, date(2026, 11, 23)))
    assert (shares["moved_out"] > 0).any() and (shares["amc_payer"].isna() & (shares["payer_type"] == "amc")).any()
    assert_equal_to_whole_ledger(sample)


def test_a_write_off_and_an_insurers_transfer_reversed_are_counted_as_the_whole_ledger_counts_them(sample):
    with sample.connect() as conn:
        shares = outstanding(load_snapshot(conn, date(2026, 11, 23)))
    write_off_and_reverse_a_transfer(
        sample, list(shares[(shares["payer_type"] == "patient") & (shares["due_cents"] > 0)]["invoice_number"]))
    assert_equal_to_whole_ledger(sample, (date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 9),
                                          date(2026, 11, 10), date(2026, 11, 23)))


def test_an_overpaid_share_counts_nothing(sample):
    with sample.begin() as conn:
        number = conn.execute(text("SELECT MIN(invoice_number) FROM allocation WHERE payer_type = 'amo'")).scalar_one()
        conn.execute(text("UPDATE allocation SET amount_cents = amount_cents + 5000 WHERE id = (SELECT MIN(id) FROM "
                          "allocation WHERE invoice_number = :n AND payer_type = 'amo')"), {"n": number})
    assert_equal_to_whole_ledger(sample, (date(2026, 11, 23),))


def test_an_empty_ledger_has_an_empty_balance_and_a_zero_grand_total(engine):
    with engine.connect() as conn:
        table = aged_balance(conn, date(2026, 11, 23))
    assert table.empty and list(table.columns) == ["0-30", "31-60", "61-90", ">90", "total"]
    assert with_grand_total(table).loc["total:all"].tolist() == [0, 0, 0, 0, 0]
    assert balance_table(engine, date(2026, 11, 23)).loc["total:all", "total"] == 0


def test_the_patients_detail_summed_in_the_database_equals_the_ledgers_on_every_day(sample):
    with sample.connect() as conn:
        shares = outstanding(load_snapshot(conn, date(2026, 11, 23)))
    owing = sorted(shares[(shares["payer_type"] == "patient") & (shares["due_cents"] > 0)]["invoice_number"])
    write_off(sample, owing[0], reason="under_cost", today=date(2026, 11, 2))
    with sample.begin() as conn:     # money waiting in the queue in a patient's name (pending)
        conn.execute(text("UPDATE payment_exception SET patient_id = (SELECT MIN(patient_id) FROM patient) WHERE "
                          "payment_id = (SELECT MIN(payment_id) FROM payment_exception WHERE kind <> 'credit')"))
        kinds = set(conn.execute(text("SELECT kind FROM payment_exception WHERE patient_id IS NOT NULL")).scalars())
    assert "credit" in kinds and kinds - {"credit"}
    with sample.connect() as conn:
        for day in DAYS:
            summed = patient_balance(conn, day)
            whole = patient_detail(*balance_facts(conn, day))
            assert len(whole) > 0 or day < date(2025, 3, 1)
            pd.testing.assert_frame_equal(summed, whole, obj=str(day))


def invoices_detail_from_the_ledger(conn, day: date, ageing: str) -> pd.DataFrame:
    """The invoice detail as computed before #16: core.balance.invoice_detail() of balance_facts(), each listed
    invoice's state from decision_facts()."""
    shares, _, _ = balance_facts(conn, day, ageing)
    facts = decision_facts(conn, day)
    awaited = set(shares[(shares["payer_type"] != "patient") & (shares["due_cents"] > 0)]["invoice_number"])
    written_off = set(shares[shares["written_off"] > 0]["invoice_number"])
    listed = shares[(shares["due_cents"] > 0) | (shares["written_off"] > 0)]
    patient_of = listed.drop_duplicates("invoice_number").set_index("invoice_number")["patient_id"]
    states = {}
    for number, patient_id in patient_of.items():
        patient = facts.patient(patient_id)
        states[number] = invoice_state(number, day, awaited=number in awaited, written_off=number in written_off,
                                       disputes=facts.disputes.get(number, ()), holds=patient.holds,
                                       plans=patient.plans, handed_over_on=facts.handed_over_on.get(number))
    return invoice_detail(shares, states)


def test_the_invoices_detail_read_in_the_database_equals_the_ledgers_on_every_day_and_both_ageings(sample):
    with sample.connect() as conn:
        shares = outstanding(load_snapshot(conn, date(2026, 11, 23)))
    owing = sorted(shares[(shares["payer_type"] == "patient") & (shares["due_cents"] > 0)]["invoice_number"])
    write_off(sample, owing[0], reason="under_cost", today=date(2026, 11, 2))
    open_dispute(sample, owing[1], reason="conteste le montant", received=date(2026, 11, 3))
    place_hold(sample, shares.loc[shares["invoice_number"] == owing[2], "patient_id"].iloc[0], reason="difficultés",
               since=date(2026, 11, 4))
    for day in DAYS:
        for ageing in ("issue", "due"):
            with sample.connect() as conn:
                whole = invoices_detail_from_the_ledger(conn, day, ageing)
            summed = balance_detail(sample, day, "invoices", ageing)
            # Same values; text columns stay Python objects here (pandas had inferred strings for some).
            pd.testing.assert_frame_equal(summed, whole, check_dtype=False, obj=f"{day} {ageing}")
    states = set(balance_detail(sample, date(2026, 11, 23), "invoices")["state"])
    assert {"open", "written_off"} <= {word for state in states for word in state.split()} and len(states) > 3


def test_the_balance_added_up_from_the_invoices_detail_equals_the_balance_summed_in_the_database(sample):
    from recouvrement.core.balance import aged_of_invoice_detail
    with sample.connect() as conn:
        shares = outstanding(load_snapshot(conn, date(2026, 11, 23)))
    owing = sorted(shares[(shares["payer_type"] == "patient") & (shares["due_cents"] > 0)]["invoice_number"])
    write_off(sample, owing[0], reason="under_cost", today=date(2026, 11, 2))
    for day in DAYS:
        for ageing in ("issue", "due"):
            with sample.connect() as conn:
                summed = aged_balance(conn, day, ageing)
            added = aged_of_invoice_detail(balance_detail(sample, day, "invoices", ageing), ageing)
            pd.testing.assert_frame_equal(added, summed, check_index_type=False, obj=f"{day} {ageing}")
