"""Bulk loads (db.bulk) turn a frame into rows a chunk at a time (issue #16: memory); every row lands once."""

from __future__ import annotations

import os
import sqlite3
from datetime import date, datetime

import pandas as pd
import pytest
from pandas.arrays import DatetimeArray
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, select, text

from recouvrement.db import bulk


def test_a_load_of_several_chunks_stores_every_row_once_with_missing_cells_as_null(engine, monkeypatch):
    monkeypatch.setattr(bulk, "ROWS_AT_ONCE", 3)
    frame = pd.DataFrame({"n": list(range(10)),
                          "label": pd.Series(["a", None, "c", "d", None, "f", "g", "h", "i", None],
                                             dtype="string[pyarrow]"),
                          "note": ["x", "y", None, "z", "x", "y", None, "z", "x", "y"]})
    with engine.connect() as conn:
        bulk.stage(conn, "chunked", frame, {"n": "int", "label": "text", "note": "text"})
        stored = bulk.read_frame(conn, "SELECT n, label, note FROM chunked ORDER BY n")
    assert stored["n"].tolist() == list(range(10))
    assert stored["label"].tolist() == ["a", None, "c", "d", None, "f", "g", "h", "i", None]
    assert stored["note"].tolist() == ["x", "y", None, "z", "x", "y", None, "z", "x", "y"]


def test_a_read_takes_named_parameters_and_gives_what_the_driver_gives_on_either_database(engine):
    # PostgreSQL reads through psycopg's own cursor, the statement compiled by SQLAlchemy: a literal % and a cast
    # stay as written, :names are bound, a missing cell is None, whole numbers int64, dates as the driver's.
    frame = pd.DataFrame({"n": [1, 2, 3], "label": ["5 %", None, "a:b"], "day": ["2025-03-01", "2025-03-02", None]})
    with engine.connect() as conn:
        bulk.stage(conn, "read_back", frame, {"n": "int", "label": "text", "day": "date"})
        read = bulk.read_frame(conn, "SELECT n, label, day, n * 2 AS twice FROM read_back WHERE n >= :low "
                                     "AND (label IS NULL OR label LIKE '%\\%%' ESCAPE '\\' OR label LIKE :colon) "
                                     "ORDER BY n", {"low": 1, "colon": "%:%"})
        empty = bulk.read_frame(conn, "SELECT n, label FROM read_back WHERE n > :high", {"high": 9})
        plain = conn.execute(text("SELECT day FROM read_back ORDER BY n")).scalars().all()
    assert read["n"].tolist() == [1, 2, 3] and read["n"].dtype == "int64"
    assert read["twice"].tolist() == [2, 4, 6]
    assert read["label"].tolist() == ["5 %", None, "a:b"]
    assert read["day"].tolist() == plain and plain[2] is None
    assert list(empty.columns) == ["n", "label"] and len(empty) == 0


def test_a_read_by_columns_gives_the_same_frame_as_a_read_by_rows(engine):
    # SQLite joins each column's cells into one value (read_columns): missing cells, empty text, text that looks
    # like a number, accents, whole numbers with and without a missing one, parameters, in the query's order.
    frame = pd.DataFrame({"n": [3, 1, 2, 5, 4], "label": ["é ü", None, "", "007", "a,b"],
                          "count": pd.Series([7, None, -2, 0, 10 ** 12], dtype=object),
                          "day": ["2025-03-01", None, "2025-03-02", "2025-03-02", "2025-01-31"]})
    with engine.connect() as conn:
        bulk.stage(conn, "by_columns", frame, {"n": "int", "label": "text", "count": "int", "day": "date"})
        sql = ('SELECT n, label, count, day, n * 2 AS "two n" FROM by_columns WHERE n >= :low '
               "AND (day IS NULL OR day <> :day) ORDER BY n DESC")
        params = {"low": 1, "day": date(2025, 1, 31)}
        by_rows = bulk.read_frame(conn, sql, params)
        by_columns = bulk.read_columns(conn, sql, params, ints=["n", "count", "two n"])
        whole = bulk.read_columns(conn, "SELECT n, count FROM by_columns WHERE count IS NOT NULL ORDER BY n",
                                  ints=["n", "count"])
        empty = bulk.read_columns(conn, "SELECT n, label FROM by_columns WHERE n > 9", ints=["n"])
        empty_by_rows = bulk.read_frame(conn, "SELECT n, label FROM by_columns WHERE n > 9")
    pd.testing.assert_frame_equal(by_columns, by_rows)
    assert by_columns["count"].tolist() == [0, 7, -2, None] and by_columns["n"].dtype == "int64"
    assert whole["count"].dtype == "int64" and whole["count"].tolist() == [-2, 7, 10 ** 12, 0]
    pd.testing.assert_frame_equal(empty, empty_by_rows)
    assert list(empty.columns) == ["n", "label"] and len(empty) == 0


@pytest.mark.skipif(os.environ.get("RECOUVREMENT_TEST_DB", "sqlite").startswith("postgres"),
                    reason="PostgreSQL's text holds no NUL byte")
def test_a_read_by_columns_of_text_holding_a_nul_byte_gives_it_whole(engine):
    # The NUL byte joins the cells on SQLite: a cell holding one is read by rows instead, not cut in two.
    frame = pd.DataFrame({"n": [1, 2], "label": ["a\x00b", "c"]})
    with engine.connect() as conn:
        bulk.stage(conn, "with_nul", frame, {"n": "int", "label": "text"})
        read = bulk.read_columns(conn, "SELECT n, label FROM with_nul ORDER BY n", ints=["n"])
    assert read["label"].tolist() == ["a\x00b", "c"] and read["n"].tolist() == [1, 2]


@pytest.mark.skipif(os.environ.get("RECOUVREMENT_TEST_DB", "sqlite").startswith("postgres"),
                    reason="PostgreSQL reads by rows")
def test_a_read_by_columns_too_long_for_one_sqlite_value_is_read_by_rows(engine):
    # Each column is joined into one SQLite value, at most SQLITE_LIMIT_LENGTH bytes (a gigabyte by default): a
    # result past it is read by rows, whole, instead of failing the run. The limit is lowered here to reach it.
    frame = pd.DataFrame({"n": list(range(50)), "label": [f"patient {i:04d}" for i in range(50)]})
    with engine.connect() as conn:
        bulk.stage(conn, "too_long", frame, {"n": "int", "label": "text"})
        driver = conn.connection.driver_connection
        before = driver.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)
        driver.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 200)     # 50 labels of 12 characters: 600 bytes joined
        try:
            with pytest.raises(sqlite3.DataError):
                driver.execute("SELECT group_concat(label, char(0)) FROM too_long").fetchone()
            read = bulk.read_columns(conn, "SELECT n, label FROM too_long ORDER BY n", ints=["n"])
        finally:
            driver.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, before)
    assert read["n"].tolist() == list(range(50)) and read["label"].tolist() == frame["label"].tolist()


def test_truths_with_missing_cells_are_sent_as_integers_and_stored_as_one_zero_and_null(engine):
    """A consent column (True, False, None) goes to SQLite as 1, 0, -1 through NULLIF(?, -1) (sqlite3 binds a bool
    and None through its adapters' lookup, an int directly); stored as before: integers 1 and 0, and NULL."""
    truths = pd.Series([True, None, False, True, pd.NA, False], dtype=object)
    cells, marks = bulk._row_cells(pd.DataFrame({"n": range(6), "consent": truths}))
    assert marks == ["?", "NULLIF(?, -1)"]
    assert [type(v) for v in cells[:, 1]] == [int] * 6
    frame = pd.DataFrame({"n": range(6), "consent": truths, "always": [True] * 6})
    with engine.connect() as conn:
        bulk.stage(conn, "truths", frame.astype({"always": object}), {"n": "int", "consent": "bool", "always": "bool"})
        stored = conn.execute(text("SELECT consent, always FROM truths ORDER BY n")).all()
    assert [tuple(row) for row in stored] == [(True, True), (None, True), (False, True), (True, True), (None, True),
                                              (False, True)]
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS t_truths")
            conn.exec_driver_sql("CREATE TEMPORARY TABLE t_truths (consent BOOLEAN)")
            bulk.bulk_insert(conn, "t_truths", frame[["consent"]])
            assert conn.exec_driver_sql("SELECT consent, typeof(consent) FROM t_truths").all() == [
                (1, "integer"), (None, "null"), (0, "integer"), (1, "integer"), (None, "null"), (0, "integer")]


def test_times_are_formatted_once_each_distinct_and_stored_as_sqlalchemy_writes_them(engine, monkeypatch):
    """A run's allocations share one created_at (its now): SQLite is sent each distinct time formatted once
    (_times_text), not each cell; stored as SQLAlchemy stores the same times, a missing one as NULL."""
    now, other = datetime(2026, 12, 3, 17, 5, 1, 123456), datetime(2025, 2, 3, 4, 5, 6)
    frame = pd.DataFrame({"n": range(1003),
                          "at": pd.Series([now] * 1000 + [pd.NaT, other, now], dtype="datetime64[us]")})
    formatted: list[int] = []
    strftime = DatetimeArray.strftime

    def counted(self, date_format):
        formatted.append(len(self))
        return strftime(self, date_format)

    monkeypatch.setattr(DatetimeArray, "strftime", counted)
    cells, marks = bulk._row_cells(frame)
    assert formatted == [2]
    assert (cells[0, 1], cells[1000, 1], cells[1001, 1]) == ("2026-12-03 17:05:01.123456", None,
                                                             "2025-02-03 04:05:06.000000")
    table = Table("t_times", MetaData(), Column("n", Integer), Column("at", DateTime), prefixes=["TEMPORARY"])
    with engine.connect() as conn:
        table.create(conn)
        bulk.bulk_insert(conn, "t_times", frame)
        conn.execute(table.insert(), [{"n": -2, "at": other}, {"n": -1, "at": now}])      # SQLAlchemy's own
        stored = conn.execute(select(table.c.at).order_by(table.c.n)).scalars().all()
        raw = conn.exec_driver_sql("SELECT at FROM t_times ORDER BY n").scalars().all()
    assert stored == [other, now] + [now] * 1000 + [None, other, now]
    assert raw[2] == raw[1] and raw[-2] == raw[0] and raw[-3] is None
