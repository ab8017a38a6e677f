"""Segments from the database: level-2 letters, broken plans and holds read for each patient."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from sqlalchemy import text

from recouvrement.app.holds import place_hold
from recouvrement.app.imports import import_file
from recouvrement.app.segmentation import patient_segments, segment_counts
from recouvrement.rules import load_rules
from tests.app.world import invoices_file

RULES = load_rules()      # chronic: 2 invoices at level 2 within 12 months, or 1 broken plan within 24
AS_OF = date(2025, 12, 1)


@pytest.fixture
def world(engine, settings, tmp_path):
    import_file(engine, invoices_file(tmp_path), settings)
    return engine


def letter(engine, letter_id, patient, level, day, invoices):
    """A letter as the reminder run records it (written here by hand: the world is built by hand)."""
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO letter (letter_id, patient_id, level, kind, channel, as_of, amount_cents, "
                          "sha256, file, status) VALUES (:l, :p, :lv, 'relance', 'letter', :d, 1000, 'x', 'f', "
                          "'written')"), {"l": letter_id, "p": patient, "lv": level, "d": day})
        for number in invoices:
            conn.execute(text("INSERT INTO letter_item (letter_id, invoice_number, amount_cents, level) "
                              "VALUES (:l, :i, 500, :lv)"), {"l": letter_id, "i": number, "lv": level})


def broken_plan(engine, patient, ended_on):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO plan (patient_id, status, proposed_on, accepted_on, ended_on, total_cents, "
                          "invoice_numbers) VALUES (:p, 'broken', :d, :d, :e, 4500, 'F2025-000102')"),
                     {"p": patient, "d": date(2024, 1, 1), "e": ended_on})


def segments(engine, as_of=AS_OF, patient=None):
    with engine.connect() as conn:
        return patient_segments(conn, as_of, RULES, patient)


def test_a_patient_without_history_is_one_off(world):
    assert {p: r.segment for p, r in segments(world).items()} == {"P1": "one_off", "P2": "one_off", "P3": "one_off"}


def test_two_invoices_at_level_2_within_the_window_make_a_patient_chronic(world):
    letter(world, "L1", "P1", 2, date(2025, 5, 1), ["F2025-000101", "F2025-000102"])
    result = segments(world)["P1"]
    assert result.segment == "chronic"
    assert "2 factures au niveau 2" in result.reasons[0]


def test_an_invoice_counts_once_whatever_the_number_of_its_level_2_letters(world):
    letter(world, "L1", "P1", 2, date(2025, 5, 1), ["F2025-000101"])
    letter(world, "L2", "P1", 3, date(2025, 6, 1), ["F2025-000101"])
    assert segments(world)["P1"].segment == "one_off"


def test_level_1_letters_do_not_count(world):
    letter(world, "L1", "P1", 1, date(2025, 5, 1), ["F2025-000101", "F2025-000102"])
    assert segments(world)["P1"].segment == "one_off"


def test_an_invoice_reached_level_2_the_day_of_its_first_such_letter(world):
    letter(world, "L1", "P1", 2, date(2024, 6, 1), ["F2025-000101"])    # outside the 12-month window
    letter(world, "L2", "P1", 3, date(2025, 6, 1), ["F2025-000101"])
    letter(world, "L3", "P1", 2, date(2025, 6, 1), ["F2025-000102"])
    assert segments(world)["P1"].segment == "one_off"


def test_letters_after_as_of_are_not_seen(world):
    letter(world, "L1", "P1", 2, date(2026, 1, 5), ["F2025-000101", "F2025-000102"])
    assert segments(world)["P1"].segment == "one_off"


def test_a_broken_plan_makes_a_patient_chronic(world):
    broken_plan(world, "P2", date(2025, 3, 1))
    assert segments(world)["P2"].segment == "chronic"


def test_a_hold_wins_over_a_chronic_history(world):
    broken_plan(world, "P2", date(2025, 3, 1))
    place_hold(world, "P2", "tutelle", since=date(2025, 11, 1), now=datetime(2025, 11, 1, tzinfo=timezone.utc))
    assert segments(world)["P2"].segment == "on_hold"
    assert segments(world, as_of=date(2025, 10, 31))["P2"].segment == "chronic"


def test_one_patient_can_be_asked_for(world):
    broken_plan(world, "P2", date(2025, 3, 1))
    assert list(segments(world, patient="P2")) == ["P2"]
    assert segments(world, patient="P9") == {}


def test_counts_name_every_segment(world):
    broken_plan(world, "P2", date(2025, 3, 1))
    assert segment_counts(segments(world)) == {"one_off": 2, "chronic": 1, "on_hold": 0}


def test_the_segments_of_some_patients_are_theirs_among_everyones(world):
    from recouvrement.db.segments import segments_of
    letter(world, "L1", "P1", 2, date(2025, 5, 1), ["F2025-000101", "F2025-000102"])
    broken_plan(world, "P2", date(2025, 3, 1))
    place_hold(world, "P3", "tutelle", since=date(2025, 11, 1), now=datetime(2025, 11, 1, tzinfo=timezone.utc))
    everyone = segments(world)
    with world.connect() as conn:
        some = segments_of(conn, AS_OF, RULES, {"P3", "P1"})
    assert some == {p: everyone[p] for p in ("P1", "P3")}
    assert {p: r.segment for p, r in some.items()} == {"P1": "chronic", "P3": "on_hold"}
