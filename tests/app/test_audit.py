"""The audit trail written by real use cases, then tampered with in the database: verify names the first bad event."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import text

from recouvrement.app.audit_views import audit_log, payload_summary, verify_log
from recouvrement.app.disputes import forward_dispute, open_dispute
from recouvrement.app.holds import place_hold, release_hold
from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.audit import event_mac
from tests.app.world import invoices_file, payments_file

NOW = datetime(2025, 4, 2, 9, 30, tzinfo=timezone.utc)
PAYMENTS = ["A1;2025-03-01;amo;CPAM DE PARIS;70,00;;F2025-000101;paid;",
            "B1;2025-03-05;patient;INCONNU PAUL;12,00;;;;"]


def build_trail(engine, settings, folder) -> int:
    """Imports, a reconciliation, a dispute and a hold: the events a real day writes. Returns their count."""
    import_file(engine, invoices_file(folder), settings)
    import_file(engine, payments_file(folder, PAYMENTS), settings)
    run_reconcile(engine)
    dispute_id = open_dispute(engine, "F2025-000103", "Montant contesté", received=date(2025, 4, 1), now=NOW)
    forward_dispute(engine, dispute_id, now=NOW)
    place_hold(engine, "P3", "Mesure de protection", since=date(2025, 4, 1), now=NOW)
    release_hold(engine, "P3", on=date(2025, 5, 1), now=NOW)
    with engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM audit_event")).scalar_one()


@pytest.fixture
def trail(engine, settings, tmp_path):
    count = build_trail(engine, settings, tmp_path)
    assert count >= 6
    return engine, count


def sql(engine, statement, **params):
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def test_an_untouched_trail_verifies_with_its_head(trail):
    engine, count = trail
    result = verify_log(engine)
    assert result.ok and result.events == count and len(result.head) == 64


def test_an_edited_payload_is_named(trail):
    engine, _ = trail
    sql(engine, "UPDATE audit_event SET payload = :p WHERE seq = 3", p='{"forged": true}')
    result = verify_log(engine)
    assert result.first_bad == 3 and "MAC invalide" in result.problem


def test_an_edited_patient_is_named(trail):
    engine, count = trail
    sql(engine, "UPDATE audit_event SET patient_id = 'P1' WHERE seq = :s", s=count - 1)
    assert verify_log(engine).first_bad == count - 1


def test_an_edited_time_is_named(trail):
    engine, _ = trail
    sql(engine, "UPDATE audit_event SET at = '2020-01-01T00:00:00+00:00' WHERE seq = 2")
    assert verify_log(engine).first_bad == 2


def test_a_deleted_event_is_named(trail):
    engine, _ = trail
    sql(engine, "DELETE FROM audit_event WHERE seq = 4")
    result = verify_log(engine)
    assert result.first_bad == 4 and "l'événement 4 manque" in result.problem


def test_a_deleted_first_event_is_named(trail):
    engine, _ = trail
    sql(engine, "DELETE FROM audit_event WHERE seq = 1")
    assert verify_log(engine).first_bad == 1


def test_two_swapped_events_are_named_at_the_first(trail):
    engine, _ = trail
    sql(engine, "UPDATE audit_event SET seq = -1 WHERE seq = 3")
    sql(engine, "UPDATE audit_event SET seq = 3 WHERE seq = 4")
    sql(engine, "UPDATE audit_event SET seq = 4 WHERE seq = -1")
    result = verify_log(engine)
    assert result.first_bad == 3 and "déplacé" in result.problem


def test_an_edited_event_rechained_without_the_key_is_named_where_it_was_edited(trail):
    engine, count = trail
    forged_key = b"a key the forger made up"
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT seq, at, kind, patient_id, invoice_number, actor, payload, prev_hash "
                                 "FROM audit_event WHERE seq >= 2 ORDER BY seq")).all()
        prev = None
        for seq, at, kind, patient, invoice, actor, payload, old_prev in rows:
            payload = json.dumps({"forged": True}) if seq == 2 else payload
            prev = prev or old_prev
            digest = event_mac(forged_key, prev, seq, at, kind, patient, invoice, actor, payload)
            conn.execute(text("UPDATE audit_event SET payload = :p, prev_hash = :v, hash = :h WHERE seq = :s"),
                         {"p": payload, "v": prev, "h": digest, "s": seq})
            prev = digest
    result = verify_log(engine)
    assert result.first_bad == 2 and "MAC invalide" in result.problem


def test_a_truncated_tail_changes_the_head(trail):
    engine, count = trail
    head = verify_log(engine).head
    sql(engine, "DELETE FROM audit_event WHERE seq = :s", s=count)
    result = verify_log(engine)
    assert result.ok and result.events == count - 1 and result.head != head


def test_the_log_filters_by_patient_and_invoice(trail):
    engine, _ = trail
    assert [r.kind for r in audit_log(engine, patient_id="P3")] == ["hold", "hold_release"]
    assert [r.kind for r in audit_log(engine, invoice_number="F2025-000103")] == ["dispute_open", "dispute_forward"]


def test_the_log_shows_the_latest_events_oldest_first(trail):
    engine, count = trail
    assert [r.seq for r in audit_log(engine, limit=2)] == [count - 1, count]


def test_the_log_never_shows_a_hold_or_dispute_reason(trail):
    engine, _ = trail
    shown = " ".join(r.summary(1000) for r in audit_log(engine, limit=1000))
    assert "protection" not in shown and "contesté" not in shown


def test_a_payload_summary_is_cut_to_its_width_and_shortens_digests():
    summary = payload_summary(json.dumps({"reason_sha256": "a" * 64, "hold_id": 1}), width=30)
    assert summary == "reason_sha256=aaaaaaaaaaaa… h…"
    assert payload_summary(json.dumps({"hold_id": 1, "since": "2025-04-01"})) == "hold_id=1 since=2025-04-01"
