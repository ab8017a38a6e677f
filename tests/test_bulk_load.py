"""Bulk loads (db.bulk) turn a frame into rows a chunk at a time (issue #16: memory); every row lands once."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import text

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
