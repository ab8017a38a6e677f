"""db.retries._entries_with: the waiting entries whose reach holds one of the keys, the keys sent as one parameter."""

from __future__ import annotations

from sqlalchemy import text

from recouvrement.db import retries

REACH = [("p:P1", "pay-1"), ("n:F-1", "pay-1"), ("p:P2", "pay-2"), ("k:ÉLOÏSE DURAND", "pay-3"), ("c:F1", "pay-4"),
         ("p:P3", "pay-4")]


def test_the_entries_reached_by_keys_are_found_without_staging_the_keys(engine, monkeypatch):
    staged: list[str] = []
    real_stage = retries.stage
    monkeypatch.setattr(retries, "stage", lambda conn, name, *a, **k: staged.append(name) or real_stage(conn, name, *a, **k))
    with engine.begin() as conn:
        for key, payment_id in REACH:
            conn.execute(text("INSERT INTO queue_reach (key, payment_id) VALUES (:k, :p)"), {"k": key, "p": payment_id})
        assert retries._entries_with(conn, set()) == set()
        assert retries._entries_with(conn, {"p:P9", "x:"}) == set()
        assert retries._entries_with(conn, {"p:P1"}) == {"pay-1"}
        assert retries._entries_with(conn, {"n:F-1", "p:P2", "k:ÉLOÏSE DURAND", "p:P3", "p:P9"}) == {
            "pay-1", "pay-2", "pay-3", "pay-4"}
        many = {f"p:Q{i}" for i in range(5_000)} | {"c:F1"}
        assert retries._entries_with(conn, many) == {"pay-4"}
    assert staged == []
