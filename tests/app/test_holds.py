"""Holds: pausing a patient, releasing, the days they cover, and the reason kept out of the audit log."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import text

from recouvrement.app.holds import holds, patients_on_hold, place_hold, release_hold
from recouvrement.app.imports import import_file
from recouvrement.audit import verify
from recouvrement.errors import RecouvrementError
from tests.app.world import invoices_file

NOW = datetime(2025, 4, 2, 9, 30, tzinfo=timezone.utc)
REASON = "Patiente décédée, succession en cours"


@pytest.fixture
def world(engine, settings, tmp_path):
    import_file(engine, invoices_file(tmp_path), settings)
    return engine


def on_hold(engine, day):
    with engine.connect() as conn:
        return patients_on_hold(conn, day)


def test_a_held_patient_is_on_hold_from_the_day_it_begins(world):
    place_hold(world, "P2", REASON, since=date(2025, 4, 1), now=NOW)
    assert on_hold(world, date(2025, 3, 31)) == set()
    assert on_hold(world, date(2025, 4, 1)) == {"P2"}


def test_a_released_patient_is_free_from_the_release_day(world):
    place_hold(world, "P2", REASON, since=date(2025, 4, 1), now=NOW)
    release_hold(world, "P2", on=date(2025, 6, 1), now=NOW)
    assert on_hold(world, date(2025, 5, 31)) == {"P2"}
    assert on_hold(world, date(2025, 6, 1)) == set()


def test_a_hold_on_an_unknown_patient_is_refused(world):
    with pytest.raises(RecouvrementError, match="patient inconnu 'P9'"):
        place_hold(world, "P9", REASON)


def test_a_second_hold_on_a_held_patient_is_refused(world):
    place_hold(world, "P2", REASON, now=NOW)
    with pytest.raises(RecouvrementError, match="déjà suspendu"):
        place_hold(world, "P2", "autre", now=NOW)


def test_releasing_a_patient_without_a_hold_is_refused(world):
    with pytest.raises(RecouvrementError, match="n'est pas suspendu"):
        release_hold(world, "P1", now=NOW)


def test_a_hold_cannot_end_before_it_began(world):
    place_hold(world, "P2", REASON, since=date(2025, 4, 1), now=NOW)
    with pytest.raises(RecouvrementError, match="ne peut pas finir avant"):
        release_hold(world, "P2", on=date(2025, 3, 1), now=NOW)


def test_a_patient_may_be_held_again_after_a_release(world):
    place_hold(world, "P2", REASON, since=date(2025, 4, 1), now=NOW)
    release_hold(world, "P2", on=date(2025, 5, 1), now=NOW)
    place_hold(world, "P2", "tutelle", since=date(2025, 7, 1), now=NOW)
    assert on_hold(world, date(2025, 6, 1)) == set() and on_hold(world, date(2025, 7, 1)) == {"P2"}
    with world.connect() as conn:
        assert len(holds(conn, "P2")) == 2


def test_a_hold_needs_a_reason(world):
    with pytest.raises(RecouvrementError, match=r"\[reason\]"):
        place_hold(world, "P2", " ")


def test_hold_and_release_are_audited_with_only_a_digest_of_the_reason(world):
    place_hold(world, "P2", REASON, since=date(2025, 4, 1), now=NOW)
    release_hold(world, "P2", on=date(2025, 6, 1), now=NOW)
    with world.connect() as conn:
        rows = conn.execute(text("SELECT kind, patient_id, payload FROM audit_event WHERE kind LIKE 'hold%' "
                                 "ORDER BY seq")).all()
        assert verify(conn).ok
        assert holds(conn, "P2")[0].reason == REASON   # staff still read it in the hold table
    assert [(r[0], r[1]) for r in rows] == [("hold", "P2"), ("hold_release", "P2")]
    assert "décédée" not in rows[0][2] and hashlib.sha256(REASON.encode()).hexdigest() in rows[0][2]


def refuse_inserts_into(engine, table: str) -> None:
    """A real database failure on the next write to `table` (a trigger that aborts it)."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text(f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
                              "BEGIN SELECT RAISE(ABORT, 'refused'); END"))
        else:
            conn.execute(text("CREATE FUNCTION refuse_insert() RETURNS trigger AS $$ BEGIN "
                              "RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql"))
            conn.execute(text(f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} FOR EACH ROW "
                              "EXECUTE FUNCTION refuse_insert()"))


def hold_rows(engine) -> tuple[int, int, int]:
    """(holds, review dates, hold audit events)."""
    with engine.connect() as conn:
        return tuple(conn.execute(text(sql)).scalar_one() for sql in (
            "SELECT COUNT(*) FROM hold", "SELECT COUNT(*) FROM hold_review",
            "SELECT COUNT(*) FROM audit_event WHERE kind LIKE 'hold%'"))


def test_a_hold_placed_with_a_review_date_is_written_with_it_and_both_are_audited(world):
    from recouvrement.app.hold_reviews import reviews
    hold_id = place_hold(world, "P2", REASON, since=date(2025, 4, 1), review_on=date(2025, 6, 1), now=NOW,
                         actor="marie")
    assert reviews(world, "P2") == {hold_id: date(2025, 6, 1)}
    with world.connect() as conn:
        kinds = conn.execute(text("SELECT kind, actor FROM audit_event WHERE kind LIKE 'hold%' ORDER BY seq")).all()
    assert [tuple(k) for k in kinds] == [("hold", "marie"), ("hold_review", "marie")]


def test_a_hold_whose_review_date_is_refused_writes_nothing(world):
    for review_on in (date(2025, 4, 1), date(2026, 6, 1)):      # not after the first day; more than a year ahead
        with pytest.raises(RecouvrementError, match=r"\[review_on\].*date de revue"):
            place_hold(world, "P2", REASON, since=date(2025, 4, 1), review_on=review_on, now=NOW)
    assert hold_rows(world) == (0, 0, 0)


def test_a_failure_writing_the_review_date_leaves_no_hold_without_its_date(world):
    refuse_inserts_into(world, "hold_review")
    with pytest.raises(Exception, match="refused"):
        place_hold(world, "P2", REASON, since=date(2025, 4, 1), review_on=date(2025, 6, 1), now=NOW)
    assert hold_rows(world) == (0, 0, 0) and on_hold(world, date(2025, 4, 1)) == set()
