"""Bulk loads (db.bulk) turn a frame into rows a chunk at a time (issue #16: memory); every row lands once."""

from __future__ import annotations

import pandas as pd

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
