"""Amounts are bounded at the door, so no sum overflows: 64-bit columns, 1 000 000 000,00 € at most a line."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import BigInteger, inspect

from recouvrement.app.balance import aged_balance
from recouvrement.app.imports import import_file
from recouvrement.money import MAX_CENTS, AmountError, parse_amount, parse_amounts
from tests.app.test_remind import invoice
from tests.app.world import invoices_file, payments_file


def test_a_line_of_more_than_a_billion_euros_is_not_an_amount():
    assert parse_amount("1 000 000 000,00") == MAX_CENTS
    with pytest.raises(AmountError, match="more than"):
        parse_amount("1 000 000 000,01")
    import pandas as pd
    cents, bad = parse_amounts(pd.Series(["1000000000.00", "1000000000.01", "99999999999999"]))
    assert bad.tolist() == [False, True, True] and cents.iloc[0] == MAX_CENTS


def test_a_payment_beyond_the_largest_amount_is_refused_naming_file_line_and_field(engine, settings, tmp_path):
    rows = ["V1;01/06/2025;patient;Martin;1000000000,01;;F2025-000001;paid;",
            "V2;01/06/2025;patient;Martin;12,00;;F2025-000001;paid;"]
    report = import_file(engine, payments_file(tmp_path, rows), settings)
    assert report.imported == 1
    assert [(r.file, r.line, r.field) for r in report.rejects] == [("payments.csv", 2, "amount")]


def test_shares_beyond_two_to_the_31_cents_are_stored_and_summed_exactly(engine, settings, tmp_path):
    rows = [invoice(f"F2025-0009{k:02d}", f"P{k}", "01/04/2025", "15/04/2025", "1000000000,00")
            for k in range(1, 31)]
    import_file(engine, invoices_file(tmp_path, rows), settings)
    balance = aged_balance(engine, date(2025, 6, 2))
    assert int(balance.loc[balance.index[0], "total"]) == 30 * MAX_CENTS > 2 ** 31


def test_every_amount_column_is_a_64_bit_integer(engine):
    columns = inspect(engine)
    found = {(table, c["name"]): c["type"] for table in columns.get_table_names()
             for c in columns.get_columns(table) if c["name"].endswith("_cents")}
    assert len(found) >= 12
    assert all(isinstance(kind, BigInteger) for kind in found.values()), found
