"""No sum overflows: amounts are 64-bit integers in every table, and each input line is bounded at the door
(money.MAX_LINE_CENTS, held by the importers' own tests), so totals far beyond 2^31 cents stay exact."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, inspect

from recouvrement.app.balance import aged_balance
from recouvrement.app.imports import import_file
from recouvrement.money import MAX_LINE_CENTS
from tests.app.test_remind import invoice
from tests.app.world import invoices_file


def test_shares_beyond_two_to_the_31_cents_are_stored_and_summed_exactly(engine, settings, tmp_path):
    rows = [invoice(f"F2025-0009{k:02d}", f"P{k}", "01/04/2025", "15/04/2025", "10000000,00")
            for k in range(1, 31)]
    report = import_file(engine, invoices_file(tmp_path, rows), settings)
    assert report.imported == 30 and report.rejects == []
    balance = aged_balance(engine, date(2025, 6, 2))
    assert int(balance.loc[balance.index[0], "total"]) == 30 * MAX_LINE_CENTS > 2 ** 31


def test_every_amount_column_is_a_64_bit_integer(engine):
    columns = inspect(engine)
    found = {(table, c["name"]): c["type"] for table in columns.get_table_names()
             for c in columns.get_columns(table) if c["name"].endswith("_cents")}
    assert len(found) >= 12
    assert all(isinstance(kind, BigInteger) for kind in found.values()), found
