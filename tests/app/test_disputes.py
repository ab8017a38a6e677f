"""The complaints register: statuses, deadlines, notes, the pause on collection, and its audit events."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import text

from recouvrement.app.disputes import (add_note, answer_dispute, close_dispute, dispute_notes, disputed_invoices,
                                       forward_dispute, get_dispute, list_disputes, open_dispute)
from recouvrement.app.imports import import_file
from recouvrement.audit import verify
from recouvrement.errors import RecouvrementError
from tests.app.world import invoices_file

NOW = datetime(2025, 4, 2, 9, 30, tzinfo=timezone.utc)
REASON = "Conteste le prix de l'échographie"


@pytest.fixture
def world(engine, settings, tmp_path):
    import_file(engine, invoices_file(tmp_path), settings)
    return engine


def opened(engine, invoice="F2025-000101", received=date(2025, 4, 1), **kwargs) -> int:
    return open_dispute(engine, invoice, REASON, received=received, now=NOW, **kwargs)


def dispute(engine, dispute_id):
    with engine.connect() as conn:
        return get_dispute(conn, dispute_id)


def events(engine, kind_prefix="dispute"):
    with engine.connect() as conn:
        return conn.execute(text("SELECT kind, patient_id, invoice_number, payload FROM audit_event "
                                 "WHERE kind LIKE :k ORDER BY seq"), {"k": kind_prefix + "%"}).all()


def test_an_opened_dispute_keeps_its_channel_category_and_answer_due_60_days_later(world):
    row = dispute(world, opened(world, channel="phone", category="amount"))
    assert (row.status, row.channel, row.category, row.patient_id) == ("open", "phone", "amount", "P1")
    assert row.received_on == date(2025, 4, 1) and row.answer_due == date(2025, 5, 31)


def test_a_dispute_on_an_unknown_invoice_is_refused(world):
    with pytest.raises(RecouvrementError, match="facture inconnue 'F2099-1'"):
        open_dispute(world, "F2099-1", REASON)


def test_an_unknown_channel_or_category_is_refused(world):
    with pytest.raises(RecouvrementError, match=r"\[channel\]"):
        opened(world, channel="fax")
    with pytest.raises(RecouvrementError, match=r"\[category\]"):
        opened(world, category="medical")


def test_a_dispute_goes_open_forwarded_answered_closed(world):
    dispute_id = opened(world)
    assert forward_dispute(world, dispute_id, "au Dr Martin", now=NOW) == "forwarded"
    assert answer_dispute(world, dispute_id, "tarif conforme, expliqué", now=NOW) == "answered"
    assert close_dispute(world, dispute_id, on=date(2025, 4, 20), now=NOW) == "closed"
    assert dispute(world, dispute_id).closed_on == date(2025, 4, 20)


def test_the_desk_may_answer_without_forwarding(world):
    assert answer_dispute(world, opened(world), "erreur corrigée", now=NOW) == "answered"


def test_an_answered_dispute_cannot_be_forwarded(world):
    dispute_id = opened(world)
    answer_dispute(world, dispute_id, "réponse", now=NOW)
    with pytest.raises(RecouvrementError, match="est répondue : elle ne peut pas devenir transmise"):
        forward_dispute(world, dispute_id, now=NOW)


def test_a_closed_dispute_cannot_be_reopened_by_any_action(world):
    dispute_id = opened(world)
    close_dispute(world, dispute_id, now=NOW)
    for action in (lambda: forward_dispute(world, dispute_id), lambda: answer_dispute(world, dispute_id, "x"),
                   lambda: close_dispute(world, dispute_id)):
        with pytest.raises(RecouvrementError, match="est close"):
            action()
    assert dispute(world, dispute_id).status == "closed"


def test_a_refused_transition_writes_nothing(world):
    dispute_id = opened(world)
    close_dispute(world, dispute_id, now=NOW)
    before = len(events(world))
    with pytest.raises(RecouvrementError):
        answer_dispute(world, dispute_id, "trop tard")
    assert len(events(world)) == before
    with world.connect() as conn:
        assert [n.action for n in dispute_notes(conn, dispute_id)] == ["open", "close"]


def test_an_answer_needs_a_note(world):
    with pytest.raises(RecouvrementError, match=r"\[note\]"):
        answer_dispute(world, opened(world), "  ")


def test_an_unknown_dispute_is_a_clear_error(world):
    with pytest.raises(RecouvrementError, match="réclamation inconnue n° 42"):
        add_note(world, 42, "x")


def test_notes_are_kept_in_order_with_each_action(world):
    dispute_id = opened(world)
    add_note(world, dispute_id, "rappelée le 3/4", now=NOW)
    forward_dispute(world, dispute_id, "transmis", now=NOW)
    add_note(world, dispute_id, "relancé le praticien", now=NOW)
    with world.connect() as conn:
        notes = dispute_notes(conn, dispute_id)
    assert [(n.action, n.text) for n in notes] == [("open", ""), ("note", "rappelée le 3/4"), ("forward", "transmis"),
                                                  ("note", "relancé le praticien")]


def test_a_dispute_not_closed_pauses_its_invoice(world):
    first, second = opened(world), opened(world, invoice="F2025-000103")
    forward_dispute(world, first, now=NOW)
    close_dispute(world, second, now=NOW)
    with world.connect() as conn:
        assert disputed_invoices(conn) == {"F2025-000101"}


def test_a_dispute_received_after_as_of_does_not_pause_yet(world):
    opened(world, received=date(2025, 4, 1))
    with world.connect() as conn:
        assert disputed_invoices(conn, date(2025, 3, 31)) == set()
        assert disputed_invoices(conn, date(2025, 4, 1)) == {"F2025-000101"}


def test_the_deadline_is_in_time_nears_then_overdue(world):
    row = dispute(world, opened(world))                  # answer due 31/05/2025
    assert row.deadline(date(2025, 5, 20)) == "in time"
    assert row.deadline(date(2025, 5, 21)) == "nears"   # 10 days left
    assert row.deadline(date(2025, 5, 31)) == "nears"
    assert row.deadline(date(2025, 6, 1)) == "overdue" and row.days_left(date(2025, 6, 1)) == -1


def test_an_answered_dispute_is_never_overdue(world):
    dispute_id = opened(world)
    answer_dispute(world, dispute_id, "répondu", now=NOW)
    assert not dispute(world, dispute_id).is_overdue(date(2026, 1, 1))


def test_the_list_leaves_closed_disputes_out_unless_asked(world):
    first, second = opened(world), opened(world, invoice="F2025-000103")
    close_dispute(world, first, now=NOW)
    with world.connect() as conn:
        assert [r.id for r in list_disputes(conn)] == [second]
        assert {r.id for r in list_disputes(conn, include_closed=True)} == {first, second}


def test_each_action_appends_an_audit_event_naming_invoice_and_patient(world):
    dispute_id = opened(world)
    add_note(world, dispute_id, "note", now=NOW)
    forward_dispute(world, dispute_id, now=NOW)
    answer_dispute(world, dispute_id, "réponse", now=NOW)
    close_dispute(world, dispute_id, now=NOW)
    rows = events(world)
    assert [r[0] for r in rows] == ["dispute_open", "dispute_note", "dispute_forward", "dispute_answer",
                                    "dispute_close"]
    assert {(r[1], r[2]) for r in rows} == {("P1", "F2025-000101")}
    with world.connect() as conn:
        assert verify(conn).ok


def test_the_reason_and_notes_never_enter_the_audit_payload(world):
    dispute_id = opened(world)
    add_note(world, dispute_id, "échographie refaite", now=NOW)
    payloads = " ".join(r[3] for r in events(world))
    assert "chographie" not in payloads and "Conteste" not in payloads
    assert "reason_sha256" in json.loads(events(world)[0][3])
