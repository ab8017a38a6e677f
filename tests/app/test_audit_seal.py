"""The sealed audit trail: the key, the checkpoint outside the database, the actor, the legacy trail, two writers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import text

from recouvrement.app.audit_views import verify_log
from recouvrement.app.holds import place_hold
from recouvrement.audit import (AuditSeal, append_event, legacy_hash, os_actor, seal_engine,
                                write_checkpoint)
from recouvrement.db.session import open_engine
from recouvrement.errors import RecouvrementError
from tests.app.test_audit import build_trail

NOW = datetime(2025, 4, 2, 9, 30, tzinfo=timezone.utc)


@pytest.fixture
def anchored(engine, settings, tmp_path):
    """A real day's trail whose head was anchored in the checkpoint file, as every command does when it ends."""
    count = build_trail(engine, settings, tmp_path)
    assert write_checkpoint(engine).seq == count
    return engine, count


def sql(engine, statement, **params):
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def test_an_anchored_trail_verifies_against_its_checkpoint(anchored):
    engine, count = anchored
    result = verify_log(engine)
    assert result.ok and result.checkpoint.seq == count and result.warnings == ()


def test_deleting_the_last_events_is_named_against_the_checkpoint(anchored):
    engine, count = anchored
    sql(engine, "DELETE FROM audit_event WHERE seq > :s", s=count - 2)
    result = verify_log(engine)
    assert not result.ok and result.missing_after == count - 2
    assert f"les événements {count - 1} à {count} manque(nt)" in result.problem


def test_deleting_every_event_is_named_against_the_checkpoint(anchored):
    engine, count = anchored
    sql(engine, "DELETE FROM audit_event")
    result = verify_log(engine)
    assert not result.ok and result.events == 0 and result.missing_after == 0
    assert f"les événements 1 à {count} manque(nt)" in result.problem


def test_the_checkpoint_never_moves_back_over_a_truncated_trail(anchored):
    engine, count = anchored
    sql(engine, "DELETE FROM audit_event WHERE seq = :s", s=count)
    assert write_checkpoint(engine).seq == count
    assert verify_log(engine).missing_after == count - 1


def test_the_checkpoint_never_moves_forward_from_a_rewritten_trail(anchored, audit_key):
    engine, count = anchored
    sql(engine, "DELETE FROM audit_event WHERE seq = :s", s=count)
    with engine.begin() as conn:       # the key holder's tool appends over the gap: the old head is gone
        append_event(conn, "other", {"n": 1})
        append_event(conn, "other", {"n": 2})
    assert write_checkpoint(engine).seq == count
    result = verify_log(engine)
    assert result.first_bad == count and "n'est plus celui du point de contrôle" in result.problem


def test_without_a_checkpoint_verify_warns_that_truncation_cannot_be_seen(engine, settings, tmp_path):
    build_trail(engine, settings, tmp_path)
    result = verify_log(engine)
    assert result.ok and any("aucun point de contrôle" in w for w in result.warnings)


def test_a_checkpoint_lowered_without_the_key_is_named(anchored, checkpoint_file):
    engine, count = anchored
    data = json.loads(checkpoint_file.read_text())
    with engine.connect() as conn:
        data["seq"], data["mac"] = count - 1, conn.execute(text("SELECT hash FROM audit_event WHERE seq = :s"),
                                                           {"s": count - 1}).scalar_one()
    checkpoint_file.write_text(json.dumps(data))
    sql(engine, "DELETE FROM audit_event WHERE seq = :s", s=count)
    result = verify_log(engine)
    assert not result.ok and "n'est pas scellé par la clé" in result.problem


def test_a_whole_trail_rechained_with_plain_hashes_is_named_against_the_checkpoint(anchored):
    engine, count = anchored
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT seq, at, kind, patient_id, invoice_number, payload FROM audit_event "
                                 "ORDER BY seq")).all()
        prev = "0" * 64
        for seq, at, kind, patient, invoice, payload in rows:
            payload = json.dumps({"forged": True}) if seq == 3 else payload
            digest = legacy_hash(prev, seq, at, kind, patient, invoice, payload)
            conn.execute(text("UPDATE audit_event SET payload = :p, actor = NULL, prev_hash = :v, hash = :h "
                              "WHERE seq = :s"), {"p": payload, "v": prev, "h": digest, "s": seq})
            prev = digest
    result = verify_log(engine)
    assert result.first_bad == count and "journal réécrit" in result.problem


def test_another_key_fails_at_the_first_event(anchored, db_url, checkpoint_file):
    _, count = anchored
    other = seal_engine(open_engine(db_url), AuditSeal(b"another installation's key", checkpoint_file))
    try:
        result = verify_log(other)
    finally:
        other.dispose()
    assert result.first_bad == 1 and "clé d'audit différente" in result.problem


def test_appending_with_another_key_is_refused_and_writes_nothing(anchored, db_url, checkpoint_file):
    _, count = anchored
    other = seal_engine(open_engine(db_url), AuditSeal(b"a key file recreated elsewhere", checkpoint_file))
    try:
        with pytest.raises(RecouvrementError, match="ne se vérifie pas avec la clé"):
            place_hold(other, "P1", "Difficultés passagères", since=date(2025, 4, 2), now=NOW)
        with other.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM audit_event")).scalar_one() == count
            assert conn.execute(text("SELECT COUNT(*) FROM hold WHERE patient_id = 'P1'")).scalar_one() == 0
    finally:
        other.dispose()


# -- who acted ----------------------------------------------------------------------------------------------

def actors(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {kind: actor for kind, actor in conn.execute(text("SELECT kind, actor FROM audit_event ORDER BY seq"))}


def test_every_event_records_the_os_user_by_default(engine, settings, tmp_path):
    build_trail(engine, settings, tmp_path)
    assert set(actors(engine).values()) == {os_actor()}


def test_a_use_case_records_the_actor_the_web_app_gives_it(engine, settings, tmp_path):
    build_trail(engine, settings, tmp_path)
    place_hold(engine, "P1", "Difficultés passagères", since=date(2025, 4, 2), now=NOW, actor="marie.dupont")
    assert actors(engine)["hold"] == "marie.dupont"
    assert verify_log(engine).ok


def test_an_edited_actor_is_named(engine, settings, tmp_path):
    count = build_trail(engine, settings, tmp_path)
    sql(engine, "UPDATE audit_event SET actor = 'quelqu_un' WHERE seq = :s", s=count)
    assert verify_log(engine).first_bad == count


# -- a trail written before the key ------------------------------------------------------------------------

def legacy_trail(engine, events: int) -> str:
    """Events as the previous version wrote them: plain SHA-256 links, no actor. Returns the head."""
    prev = "0" * 64
    with engine.begin() as conn:
        for seq in range(1, events + 1):
            at, payload = f"2025-03-0{seq}T10:00:00+00:00", json.dumps({"n": seq})
            digest = legacy_hash(prev, seq, at, "import", None, None, payload)
            conn.execute(text("INSERT INTO audit_event (seq, at, kind, patient_id, invoice_number, actor, payload, "
                              "prev_hash, hash) VALUES (:s, :a, 'import', NULL, NULL, NULL, :p, :v, :h)"),
                         {"s": seq, "a": at, "p": payload, "v": prev, "h": digest})
            prev = digest
    return prev


def test_a_legacy_trail_verifies_and_says_it_is_not_sealed_yet(engine):
    legacy_trail(engine, 3)
    result = verify_log(engine)
    assert result.ok and result.legacy == 3 and any("seront scellés" in w for w in result.warnings)


def test_the_first_event_appended_seals_a_legacy_trail_with_the_key(engine):
    head = legacy_trail(engine, 3)
    with engine.begin() as conn:
        append_event(conn, "hold", {"hold_id": 1}, patient_id="P1")
    with engine.connect() as conn:
        kind, payload = conn.execute(text("SELECT kind, payload FROM audit_event WHERE seq = 4")).one()
    assert kind == "audit_sealed"
    assert json.loads(payload) == {"legacy_events": 3, "legacy_head": head, "legacy_intact": True,
                                   "legacy_first_bad": None}
    result = verify_log(engine)
    assert result.ok and result.events == 5 and result.legacy == 3


def test_once_sealed_a_legacy_event_rechained_without_the_key_is_named(engine):
    legacy_trail(engine, 3)
    with engine.begin() as conn:
        append_event(conn, "hold", {"hold_id": 1}, patient_id="P1")
        prev = "0" * 64
        for seq in (1, 2, 3):          # edit event 2 and recompute the plain chain, as the old scheme allowed
            at, payload = conn.execute(text("SELECT at, payload FROM audit_event WHERE seq = :s"), {"s": seq}).one()
            payload = json.dumps({"n": 99}) if seq == 2 else payload
            digest = legacy_hash(prev, seq, at, "import", None, None, payload)
            conn.execute(text("UPDATE audit_event SET payload = :p, prev_hash = :v, hash = :h WHERE seq = :s"),
                         {"p": payload, "v": prev, "h": digest, "s": seq})
            prev = digest
    result = verify_log(engine)
    assert result.first_bad == 4 and "ne suit pas" in result.problem


# -- two writers at once ------------------------------------------------------------------------------------

APPENDER = """
import sys
from sqlalchemy import text
from recouvrement.audit import append_event
from recouvrement.db.session import open_engine
engine = open_engine(sys.argv[1])
for n in range(int(sys.argv[2])):
    with engine.begin() as conn:
        conn.execute(text("SELECT COUNT(*) FROM patient")).scalar()     # a use case reads before it writes
        append_event(conn, "test", {"writer": sys.argv[3], "n": n})
"""


def test_two_processes_appending_at_once_never_fork_the_chain(engine, db_url):
    events = 150
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writers = [subprocess.Popen([sys.executable, "-c", APPENDER, db_url, str(events), name], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    outcomes = [w.communicate(timeout=600) for w in writers]
    assert [w.returncode for w in writers] == [0, 0], [err[-500:] for _, err in outcomes]
    result = verify_log(engine)
    assert result.ok and result.events == 2 * events
