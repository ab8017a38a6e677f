"""core.ledger.patient_money adds each sum up on the patients' numbers (pd.factorize) rather than aligning three
groupbys in a DataFrame: held equal to the groupby form it replaced, frame for frame (values, columns and their
dtypes, the patients in order). Not the index's dtype: the groupbys gave Arrow strings or objects depending on
which of the three sums had rows."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from recouvrement.core.ledger import MONEY_COLUMNS, Snapshot, _day, _known, outstanding, patient_money

DAY = date(2026, 3, 31)
PATIENTS = st.sampled_from(["P1", "P2", "P10", "Pé", "P3"])


def grouped(snapshot: Snapshot, as_of: date | None = None) -> pd.DataFrame:
    """patient_money as it was written before (three groupbys aligned by a DataFrame)."""
    day = _day(snapshot, as_of)
    shares = outstanding(snapshot, day)
    patient = shares[shares["payer_type"] == "patient"]
    owed = patient["due_cents"].clip(lower=0).groupby(patient["patient_id"]).sum()
    exceptions = snapshot.exceptions
    exceptions = exceptions[_known(exceptions["payment_date"], day, snapshot.as_of) & exceptions["patient_id"].notna()]
    is_credit = exceptions["kind"] == "credit"
    credit = exceptions[is_credit].groupby("patient_id")["remaining_cents"].sum()
    pending = exceptions[~is_credit].groupby("patient_id")["remaining_cents"].sum()
    money = pd.DataFrame({"owed_cents": owed, "credit_cents": credit, "pending_cents": pending})
    money = money.fillna(0).astype("int64")
    money["net_owed_cents"] = (money["owed_cents"] - money["credit_cents"]).clip(lower=0)
    money.index.name = "patient_id"
    return money.reindex(columns=list(MONEY_COLUMNS)).sort_index()


invoices = st.lists(st.fixed_dictionaries({
    "patient_id": PATIENTS, "issue_date": st.integers(0, 60).map(lambda d: DAY - timedelta(days=d)),
    "patient_cents": st.integers(0, 50_000), "amo_cents": st.integers(0, 5_000)}), max_size=12)
exceptions = st.lists(st.fixed_dictionaries({
    "kind": st.sampled_from(["credit", "unmatched", "ambiguous"]), "patient_id": st.one_of(st.none(), PATIENTS),
    "remaining_cents": st.integers(0, 80_000), "payment_date": st.integers(0, 60).map(lambda d: DAY - timedelta(days=d)),
    "payer_type": st.just("patient")}), max_size=8)
allocated = st.lists(st.tuples(st.integers(0, 11), st.integers(1, 60_000)), max_size=6)


@settings(max_examples=150)
@given(invoices, exceptions, allocated, st.sampled_from([None, DAY - timedelta(days=20)]))
def test_patient_money_equals_the_three_groupbys(rows, queued, paid, as_of):
    numbered = [{"invoice_number": f"F{k:03d}", **row} for k, row in enumerate(rows)]
    allocations = [{"invoice_number": numbered[k]["invoice_number"], "payer_type": "patient", "amount_cents": cents,
                    "payment_date": DAY - timedelta(days=5)} for k, cents in paid if k < len(numbered)]
    queued = [{"payment_id": f"V{k}", **row} for k, row in enumerate(queued)]
    snapshot = Snapshot.of(DAY, invoices=numbered, allocations=allocations, exceptions=queued)
    money, before = patient_money(snapshot, as_of), grouped(snapshot, as_of)
    pd.testing.assert_frame_equal(money, before, check_index_type=False)
    assert money.index.tolist() == before.index.tolist() and money.index.name == "patient_id"
