"""The aged balance (with its grand total and its per-patient and per-invoice detail) and the reconciliation
exports (allocations, exceptions queue)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from recouvrement.audit import record_files
from recouvrement.core.balance import (INVOICE_DETAIL, PATIENT_DETAIL, aged_of_invoice_detail, invoice_state,
                                       with_grand_total)
from recouvrement.db import exports
from recouvrement.db.eligibility import dispute_spans, handover_days, hold_spans, plan_facts
from recouvrement.db import ledger
from recouvrement.db.ledger import BUCKETS  # noqa: F401  (BUCKETS: still importable here)
from recouvrement.memory import no_cycle_collection
from recouvrement.render.csvfile import PLAIN, Amount, Dialect
from recouvrement.render.files import write_checked_csv

DETAILS = ("patients", "invoices")
# invoice_state of an invoice with no dispute, hold, plan or agency case: it hangs on its money alone.
_PLAIN_STATES = {(awaited, written_off): invoice_state("", date.min, awaited=awaited, written_off=written_off)
                 for awaited in (False, True) for written_off in (False, True)}
_MONEY = {"amount", "paid", "written_off", "amo_remaining", "amc_remaining", "patient_remaining", "remaining", "amo",
          "amc", "patient", "total", "credit", "pending", "patient_net"}


def aged_balance(engine: Engine, as_of: date, ageing: str = "issue") -> pd.DataFrame:
    """The aged balance on `as_of` (db.ledger.aged_balance): by payer type, then by mutuelle; the age buckets
    and the total, in cents."""
    with engine.connect() as conn:
        return ledger.aged_balance(conn, as_of, ageing)


def outstanding_shares(engine: Engine, as_of: date, ageing: str = "issue") -> pd.DataFrame:
    """Every share with money still due at the end of `as_of` (db.ledger.outstanding_shares)."""
    with engine.connect() as conn:
        return ledger.outstanding_shares(conn, as_of, ageing)


def balance_table(engine: Engine, as_of: date, ageing: str = "issue") -> pd.DataFrame:
    """The aged balance on `as_of` (by payer type, then by mutuelle) and its last row `total:all`, every payer."""
    return with_grand_total(aged_balance(engine, as_of, ageing))


def balance_and_detail(engine: Engine, as_of: date, detail: str | None,
                       ageing: str = "issue") -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """balance_table and, when asked, balance_detail: with the invoices' detail, the balance is added up from it
    (core.balance.aged_of_invoice_detail, held equal to aged_balance by tests/app/test_balance_sums.py) instead of
    reading the same dues twice."""
    if detail != "invoices":
        return balance_table(engine, as_of, ageing), None
    read = balance_detail(engine, as_of, detail, ageing)
    return with_grand_total(aged_of_invoice_detail(read, ageing)), read


def write_balance_csv(table: pd.DataFrame, path: Path, dialect: Dialect = PLAIN) -> int:
    """The aged balance as CSV: group (type | mutuelle | total), name, one column per bucket, total."""
    rows = [[group.split(":", 1)[0], group.split(":", 1)[1], *(Amount(v) for v in values)]
            for group, values in zip(table.index, table.to_numpy().tolist())]
    return write_checked_csv(path, ["group", "name", *table.columns], rows, dialect=dialect)


def balance_detail(engine: Engine, as_of: date, detail: str, ageing: str = "issue") -> pd.DataFrame:
    """The per-patient (PATIENT_DETAIL) or per-invoice (INVOICE_DETAIL) detail of the balance on `as_of`, in cents;
    its payer columns add up to the balance's grand total."""
    if detail not in DETAILS:
        raise ValueError(f"detail is one of {', '.join(DETAILS)}, not {detail!r}")
    with engine.connect() as conn:
        if detail == "patients":
            return ledger.patient_balance(conn, as_of)      # summed in the database
        table = ledger.invoice_balance(conn, as_of, ageing)
        # What decision_facts() holds of these facts, without its every-patient read.
        holds, plans = hold_spans(conn, as_of), plan_facts(conn, as_of)
        disputes, handed_over_on = dispute_spans(conn, as_of), handover_days(conn, as_of)
    states = []
    facts = (table[column].tolist() for column in ("invoice_number", "patient_id", "awaited", "any_written_off"))
    for number, patient_id, awaited, written_off in zip(*facts):
        if number in disputes or number in handed_over_on or patient_id in holds or patient_id in plans:
            states.append(invoice_state(number, as_of, awaited=awaited, written_off=written_off,
                                        disputes=disputes.get(number, ()), holds=holds.get(patient_id, ()),
                                        plans=plans.get(patient_id, ()), handed_over_on=handed_over_on.get(number)))
        else:                   # most invoices: nothing stands on them but their own money
            states.append(_PLAIN_STATES[awaited, written_off])
    return table.assign(state=pd.Series(states, index=table.index, dtype=object))[list(INVOICE_DETAIL)]


def write_balance_detail(engine: Engine, as_of: date, detail: str, path: Path, dialect: Dialect = PLAIN,
                         ageing: str = "issue", read: pd.DataFrame | None = None) -> tuple[int, int]:
    """Write the detail as CSV through the one safe writer (scanned; names and mutuelles masked on a row the
    scanner flags), record the file in the audit trail; (rows, cents still due in it). `read`: the detail
    balance_detail already read for these arguments (balance_and_detail), else it is read here."""
    table = balance_detail(engine, as_of, detail, ageing) if read is None else read
    header = list(PATIENT_DETAIL if detail == "patients" else INVOICE_DETAIL)
    # Column by column (a million-invoice detail has millions of cells): the money as Amounts, the rest as it is.
    # The rows are built with the collector paused, as the document is (memory.no_cycle_collection).
    amounts: dict[int, Amount] = {}
    free = ("last_name", "first_name") if detail == "patients" else ("mutuelle",)
    with no_cycle_collection():
        columns = [_as_amounts(table[column].tolist(), amounts) if column in _MONEY else table[column].tolist()
                   for column in header]
        rows = list(zip(*columns))
        count = write_checked_csv(path, header, rows, free_text=free, dialect=dialect)
    due = int(table[["amo", "amc", "patient"]].to_numpy().sum()) if detail == "patients" else int(table["remaining"].sum())
    record_files(engine, "export", [path], export=f"balance-{detail}", rows=count, as_of=as_of)
    return count, due


def _as_amounts(values: list, made: dict[int, Amount]) -> list[Amount]:
    """The cents as Amounts, one object per amount (`made`: those made so far; amounts repeat, zeros above all)."""
    out = []
    for value in values:
        amount = made.get(value)
        if amount is None:
            amount = made[value] = Amount(int(value))
        out.append(amount)
    return out


def export_allocations(engine: Engine, path: Path, dialect: Dialect = PLAIN) -> int:
    with engine.connect() as conn:
        data = exports.allocations(conn)
    rows = [[p, i, t, Amount(a), r] for p, i, t, a, r in data.itertuples(index=False, name=None)]
    count = write_checked_csv(path, ["payment_id", "invoice_number", "payer_type", "amount", "rule"], rows,
                              dialect=dialect)
    record_files(engine, "export", [path], export="allocations", rows=count)
    return count


def export_exceptions(engine: Engine, path: Path, dialect: Dialect = PLAIN) -> int:
    with engine.connect() as conn:
        data = exports.exceptions(conn)
    rows = [[pid, str(day), ptype, name, Amount(amount), Amount(left), kind, reason, patient or "", ref]
            for pid, day, ptype, name, amount, left, kind, reason, patient, ref in data.itertuples(index=False, name=None)]
    header = ["payment_id", "payment_date", "payer_type", "payer_name", "amount", "remaining", "kind", "reason",
              "patient_id", "reference"]
    count = write_checked_csv(path, header, rows, free_text=("payer_name", "reference"), dialect=dialect)
    record_files(engine, "export", [path], export="exceptions", rows=count)
    return count
