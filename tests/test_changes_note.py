"""db.changes.note: the changed keys recorded once each, whether they come as Arrow text (the invoices' and patients'
keys, by Arrow's kernels) or as Python strings."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import text

from recouvrement.db import changes

KEYS = st.lists(st.sampled_from(["n:", "c:", "p:", "k:"]).flatmap(
    lambda prefix: st.text(min_size=0, max_size=6).map(lambda rest: prefix + rest)), max_size=40)


def _refused(self):
    raise AssertionError("Arrow text made Python strings one by one")


@pytest.fixture
def arrow_text_never_iterated(monkeypatch):
    monkeypatch.setattr(pd.arrays.ArrowStringArray, "__iter__", _refused)


@settings(max_examples=300)
@given(KEYS)
def test_keys_come_once_each_in_pythons_order_arrow_text_by_arrows_kernels(keys):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pd.arrays.ArrowStringArray, "__iter__", _refused)
        assert changes._once_each_in_order(pd.Series(keys, dtype="string[pyarrow]")) == sorted(set(keys))
    assert changes._once_each_in_order(iter(keys)) == sorted(set(keys))


def test_noted_keys_are_stored_once_each_from_arrow_text_or_python_strings(engine, arrow_text_never_iterated):
    with engine.begin() as conn:
        changes.note(conn, pd.Series(["n:F1"], dtype="string[pyarrow]"))      # nothing waits: nothing kept
        assert conn.execute(text("SELECT COUNT(*) FROM queue_change")).scalar_one() == 0
        conn.execute(text("INSERT INTO queue_reach (key, payment_id) VALUES ('p:P1', 'x')"))
        changes.note(conn, pd.Series(["n:F2", "c:F2", "n:F2", "p:É1", "p:P1"], dtype="string[pyarrow]"))
        changes.note(conn, {"p:P1", "p:Z9"})
        changes.note(conn, pd.Series(["n:F2", "k:DUPONT JEAN"], dtype="string[pyarrow]"))
        changes.note(conn, [])
        stored = [key for (key,) in conn.execute(text("SELECT key FROM queue_change"))]
    assert sorted(stored) == sorted({"n:F2", "c:F2", "p:É1", "p:P1", "p:Z9", "k:DUPONT JEAN"})
    assert len(stored) == 6
