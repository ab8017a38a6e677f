"""The aged balance on plain data: age buckets (from the issue date or past the due date), the grand total, each
open invoice's state and the per-patient and per-invoice detail rows, all from `core.ledger.outstanding()`.

Ageing, two bases for the same buckets:

- ``issue`` (the default, as always): days since the invoice's issue date, buckets 0-30, 31-60, 61-90, >90;
- ``due``: days past the invoice's own due date (the same day for its three shares), with one more bucket in
  front, ``not-due``, for what is not yet due; due today counts in 0-30.

>>> from datetime import date
>>> issued = pd.Series([date(2026, 1, 1), date(2026, 3, 1)])
>>> due = pd.Series([date(2026, 1, 31), date(2026, 3, 31)])
>>> age_buckets(date(2026, 3, 15), issued, due, "issue").tolist()
['61-90', '0-30']
>>> age_buckets(date(2026, 3, 15), issued, due, "due").tolist()
['31-60', 'not-due']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

import pandas as pd

from recouvrement.core.eligibility import PlanFacts, Span

AGEING = ("issue", "due")
BUCKETS = ("0-30", "31-60", "61-90", ">90")
NOT_DUE = "not-due"
GRAND_TOTAL = "total:all"
STATES = ("awaited", "disputed", "held", "plan", "agency", "written_off")
OPEN = "open"

PATIENT_DETAIL = ("patient_id", "last_name", "first_name", "open_invoices", "amo", "amc", "patient", "total",
                  "credit", "pending", "patient_net")
INVOICE_DETAIL = ("invoice_number", "patient_id", "issue_date", "due_date", "amount", "paid", "written_off",
                  "amo_remaining", "amc_remaining", "patient_remaining", "remaining", "mutuelle", "age_bucket",
                  "state")


def bucket_columns(ageing: str) -> tuple[str, ...]:
    """The balance's bucket columns on that basis (``due`` adds ``not-due`` in front)."""
    if ageing not in AGEING:
        raise ValueError(f"ageing is one of {', '.join(AGEING)}, not {ageing!r}")
    return (NOT_DUE, *BUCKETS) if ageing == "due" else BUCKETS


def age_buckets(as_of: date, issue_dates: pd.Series, due_dates: pd.Series, ageing: str = "issue") -> pd.Series:
    """Each row's bucket on `as_of`: days since its issue date, or past its due date (see the module)."""
    bucket_columns(ageing)
    start = due_dates if ageing == "due" else issue_dates
    age = (pd.Timestamp(as_of) - pd.to_datetime(start)).dt.days
    labels = pd.cut(age, [-10**6, 30, 60, 90, 10**6], labels=BUCKETS).astype(str)
    if ageing == "due":
        labels[age < 0] = NOT_DUE
    return labels


def with_grand_total(table: pd.DataFrame) -> pd.DataFrame:
    """The aged balance (rows ``type:…`` then ``mutuelle:…``) with a last row ``total:all``: every payer type
    added up (the mutuelle rows detail ``type:amc`` and are not counted twice).

    >>> table = pd.DataFrame({"0-30": [100, 50, 50], "total": [100, 50, 50]},
    ...                      index=["type:amo", "type:amc", "mutuelle:MGEN"])
    >>> with_grand_total(table).loc[GRAND_TOTAL].tolist()
    [150, 150]
    """
    by_type = table[[str(name).startswith("type:") for name in table.index]]
    total = pd.DataFrame([by_type.sum(axis=0).astype("int64")], index=[GRAND_TOTAL])
    return pd.concat([table, total.reindex(columns=table.columns, fill_value=0)]).astype("int64")


def aged_of_invoice_detail(detail: pd.DataFrame, ageing: str = "issue") -> pd.DataFrame:
    """The aged balance (rows ``type:…`` then ``mutuelle:…``, the bucket columns and ``total``, in cents) added up
    from the invoice detail (INVOICE_DETAIL: each share's remaining, the invoice's age bucket and mutuelle), as
    db.ledger.aged_balance adds up the same dues in the database: for a command that reads the detail anyway."""
    columns = list(bucket_columns(ageing))
    rows: dict[str, list[int]] = {}
    for share in ("amo", "amc", "patient"):
        sums = detail.groupby("age_bucket")[f"{share}_remaining"].sum()
        if (sums > 0).any():
            rows[f"type:{share}"] = [int(sums.get(column, 0)) for column in columns]
    amc = detail[detail["amc_remaining"] > 0]
    payers = amc["mutuelle"].map(lambda payer: "Mutuelle" if payer is None or payer != payer else payer)
    for payer, group in amc.groupby(payers.to_numpy(dtype=object)):
        sums = group.groupby("age_bucket")["amc_remaining"].sum()
        rows[f"mutuelle:{payer}"] = [int(sums.get(column, 0)) for column in columns]
    keys = sorted(k for k in rows if k.startswith("type:")) + sorted(k for k in rows if k.startswith("mutuelle:"))
    table = pd.DataFrame([rows[k] for k in keys], index=keys, columns=pd.Index(columns, name="bucket"), dtype="int64")
    table["total"] = table.sum(axis=1).astype("int64")
    return table


def invoice_state(invoice_number: str, day: date, *, awaited: bool, written_off: bool,
                  disputes: Iterable[Span] = (), holds: Iterable[Span] = (), plans: Iterable[PlanFacts] = (),
                  handed_over_on: date | None = None) -> str:
    """What stands on the invoice on `day`, in STATES order, space-separated; ``open`` when nothing does.

    awaited      a share is still due from the AMO or the mutuelle
    disputed     a complaint received and not closed
    held         the patient's collection is paused (a hold)
    plan         in an accepted instalment plan in force
    agency       handed to the collection agency (whatever the case became since)
    written_off  a write-off (admission en non-valeur) took part or all of it

    >>> invoice_state("F1", date(2026, 3, 1), awaited=True, written_off=False, disputes=[Span(date(2026, 2, 1))])
    'awaited disputed'
    >>> invoice_state("F1", date(2026, 3, 1), awaited=False, written_off=False, holds=[Span(date(2026, 1, 1),
    ...               date(2026, 2, 1))])
    'open'
    """
    found = {
        "awaited": awaited,
        "disputed": any(span.covers(day) for span in disputes),
        "held": any(span.covers(day) for span in holds),
        "plan": any(invoice_number in plan.invoice_numbers and (span := plan.accepted_span()) is not None
                    and span.covers(day) for plan in plans),
        "agency": handed_over_on is not None and handed_over_on <= day,
        "written_off": written_off,
    }
    return " ".join(state for state in STATES if found[state]) or OPEN


def _per_share(shares: pd.DataFrame, column: str) -> pd.DataFrame:
    """invoice_number x (amo, amc, patient) of `column`, zeros where missing."""
    return shares.pivot_table(index="invoice_number", columns="payer_type", values=column, aggfunc="sum",
                              fill_value=0).reindex(columns=["amo", "amc", "patient"], fill_value=0).astype("int64")


def invoice_detail(shares: pd.DataFrame, states: Mapping[str, str]) -> pd.DataFrame:
    """One row per invoice with money still due or a write-off (INVOICE_DETAIL, in invoice order), from
    share_states-like rows (outstanding() with `bucket` and `invoice_due_date`); remaining per payer is each
    share's due, at least 0, as the aged balance counts it; `states`: invoice -> invoice_state()."""
    shares = shares.assign(remaining=shares["due_cents"].clip(lower=0))
    remaining = _per_share(shares, "remaining")
    sums = shares.groupby("invoice_number")[["expected", "paid", "written_off"]].sum().astype("int64")
    first = shares.groupby("invoice_number")[["patient_id", "issue_date", "invoice_due_date", "amc_payer",
                                              "bucket"]].first()
    detail = pd.concat([first, sums, remaining.add_suffix("_remaining")], axis=1)
    detail["remaining"] = remaining.sum(axis=1)
    detail = detail[(detail["remaining"] > 0) | (detail["written_off"] > 0)].sort_index()
    detail = detail.reset_index().rename(columns={"invoice_due_date": "due_date", "expected": "amount",
                                                  "amc_payer": "mutuelle", "bucket": "age_bucket"})
    detail["state"] = [states.get(number, OPEN) for number in detail["invoice_number"]]
    return detail[list(INVOICE_DETAIL)]


def patient_detail(shares: pd.DataFrame, money: pd.DataFrame, names: pd.DataFrame) -> pd.DataFrame:
    """One row per patient who owes anything (to any payer) or has a credit or money waiting in their name
    (PATIENT_DETAIL, by patient id). `money`: core.ledger.patient_money(); `names`: patient_id, last_name,
    first_name. The three payer columns add up, over all patients, to the aged balance's grand total;
    patient_net = max(0, patient - credit), the most the patient may be asked."""
    shares = shares.assign(remaining=shares["due_cents"].clip(lower=0))
    by_invoice = _per_share(shares, "remaining")
    patient_of = shares.groupby("invoice_number")["patient_id"].first()
    owed = by_invoice.groupby(patient_of.reindex(by_invoice.index)).sum()
    counts = (by_invoice.sum(axis=1) > 0).groupby(patient_of.reindex(by_invoice.index)).sum()
    detail = pd.concat([owed, counts.rename("open_invoices"),
                        money[["credit_cents", "pending_cents"]].rename(columns={"credit_cents": "credit",
                                                                                  "pending_cents": "pending"})],
                       axis=1).fillna(0).astype("int64")
    detail["total"] = detail[["amo", "amc", "patient"]].sum(axis=1)
    detail["patient_net"] = (detail["patient"] - detail["credit"]).clip(lower=0)
    detail = detail[(detail["total"] > 0) | (detail["credit"] > 0) | (detail["pending"] > 0)].sort_index()
    detail.index.name = "patient_id"
    detail = detail.reset_index().merge(names[["patient_id", "last_name", "first_name"]], on="patient_id",
                                        how="left")
    return detail[list(PATIENT_DETAIL)]
