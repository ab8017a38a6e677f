"""Events appended together (a night's letters) are the events appended one by one: same rows, same seals, a trail
that verifies (issue #16: one by one cost 0.5 ms a letter)."""

from __future__ import annotations

from datetime import datetime, timezone
from unittest import mock

from sqlalchemy import text

from recouvrement.app.audit_views import verify_log
from recouvrement.audit import Event, append_event, append_events

NOW = datetime(2026, 11, 23, 21, 0, tzinfo=timezone.utc)
EVENTS = [Event("reminder", {"letter_id": "L1", "amount": 1250, "invoices": ["F1", "F2"]}, "P1", None),
          Event("reminder", {"letter_id": "L2", "amount": 990, "invoices": ["F3"]}, "P2", "F3"),
          Event("note", {"text": "é ü — ok"}, None, None)]


def trail(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text("SELECT seq, at, kind, patient_id, invoice_number, actor, "
                                                        "payload, prev_hash, hash FROM audit_event ORDER BY seq"))]


def test_events_appended_together_are_the_rows_appended_one_by_one(engine):
    with engine.begin() as conn:
        append_event(conn, "start", {"n": 1}, at=NOW, actor="compose")
    with mock.patch("recouvrement.audit.datetime") as clock:
        clock.now.return_value = NOW
        with engine.begin() as conn:
            head = append_events(conn, EVENTS, actor="compose")
    together = trail(engine)
    assert head == together[-1][-1] and [row[0] for row in together] == [1, 2, 3, 4]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq > 1"))
        for event in EVENTS:
            append_event(conn, event.kind, event.payload, patient_id=event.patient_id,
                         invoice_number=event.invoice_number, at=NOW, actor="compose")
    assert trail(engine) == together
    assert verify_log(engine).ok


def test_no_event_appends_nothing(engine):
    with engine.begin() as conn:
        assert append_events(conn, []) is None
    assert trail(engine) == []
