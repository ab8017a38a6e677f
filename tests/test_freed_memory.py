"""db.session.release_freed_memory: the C heap trimmed only when enough is free in it to be worth giving back."""

from __future__ import annotations

import sys

import pytest

from recouvrement.db import session


@pytest.fixture
def trims(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(session, "_malloc_trim", lambda: calls.append)
    return calls


@pytest.mark.parametrize(("free", "trimmed"), [
    (0, False), (session.TRIM_FROM_BYTES - 1, False), (session.TRIM_FROM_BYTES, True), (10 * session.TRIM_FROM_BYTES, True)])
def test_the_heap_is_trimmed_only_when_enough_is_free_in_it(monkeypatch, trims, free, trimmed):
    monkeypatch.setattr(session, "_heap_free_bytes", lambda: free)
    session.release_freed_memory()
    assert trims == ([0] if trimmed else [])


def test_the_heap_is_trimmed_when_what_is_free_in_it_is_unknown(monkeypatch, trims):
    monkeypatch.setattr(session, "_mallinfo2", lambda: None)
    session.release_freed_memory()
    assert trims == [0]


@pytest.mark.skipif(session._mallinfo2() is None, reason="no glibc mallinfo2 here")
def test_what_is_free_in_the_heap_is_what_glibc_counts():
    free = session._heap_free_bytes()
    assert isinstance(free, int) and 0 <= free <= session._mallinfo2()().arena + session._mallinfo2()().hblkhd
    assert sys.platform.startswith("linux")
