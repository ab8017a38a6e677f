"""The patients' name index (db.name_index): kept by the imports, read by the name rules."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import text

from recouvrement.app.imports import import_file
from recouvrement.db import name_index
from recouvrement.db.name_index import patients_named
from tests.app.world import INVOICES, invoices_file


def _martin(number: int, patient: str, first: str = "Paul") -> str:
    return (f"F2025-0009{number:02d};10/01/2025;;{patient};Martin;{first};1 rue Neuve;69001;Lyon;;;;10,00;0;0;"
            "10,00;;none;;")


def test_a_name_many_patients_bear_is_read_as_its_two_bearers_of_smallest_ids(engine, settings, tmp_path):
    rows = [_martin(n, p) for n, p in enumerate(["P17", "P12", "P15", "P13"])]
    import_file(engine, invoices_file(tmp_path, INVOICES + rows), settings)
    asked = pd.DataFrame({"last": ["MARTIN", "MARTIN", "LEFEVRE", "NOBODY"], "first": ["PAUL", "P", "ELOISE", "X"]})
    with engine.begin() as conn:
        found = patients_named(conn, asked)
    found = sorted(zip(found["last"], found["first"], found["patient_id"]))
    assert found == [("LEFEVRE", "ELOISE", "P1"), ("MARTIN", "P", "P12"), ("MARTIN", "P", "P13"),
                     ("MARTIN", "PAUL", "P12"), ("MARTIN", "PAUL", "P13")]


def _stored_keys(engine) -> dict[tuple, str]:
    """Each name key row with where it is stored (SQLite's rowid, PostgreSQL's ctid): a row rewritten moves."""
    where = "rowid" if engine.dialect.name == "sqlite" else "ctid::text"
    with engine.connect() as conn:
        return {(last, first, patient): str(at) for last, first, patient, at in conn.execute(text(
            f"SELECT last_key, first_key, patient_id, {where} FROM patient_name_key"))}


def test_a_file_of_known_patients_rewrites_only_the_name_keys_of_those_renamed(engine, settings, tmp_path):
    import_file(engine, invoices_file(tmp_path, INVOICES + [_martin(1, "P12")]), settings)
    import_file(engine, invoices_file(tmp_path, [_martin(3, "P20", "Emile").replace("Martin", "Zola")],
                                      name="other.csv"), settings)       # stored after them, not in the later file
    before = _stored_keys(engine)
    newer = [row.replace("/2025;", "/2026;", 1).replace("F2025-", "F2026-") for row in INVOICES]   # same names
    import_file(engine, invoices_file(tmp_path, newer + [_martin(2, "P12", "Pierre").replace("/2025;", "/2026;", 1)],
                                      name="later.csv"), settings)
    after = _stored_keys(engine)
    kept = {key: at for key, at in before.items() if key[2] != "P12"}
    assert {key: after[key] for key in kept} == kept                     # the same keys, never rewritten
    assert {key for key in after if key[2] == "P12"} == {("MARTIN", "PIERRE", "P12"), ("MARTIN", "P", "P12")}


def test_a_file_of_known_patients_works_out_the_name_keys_of_its_new_and_renamed_patients_only(
        engine, settings, tmp_path, monkeypatch):
    import_file(engine, invoices_file(tmp_path, INVOICES + [_martin(1, "P12")]), settings)
    asked = _key_rows_asked(monkeypatch)
    newer = [row.replace("/2025;", "/2026;", 1).replace("F2025-", "F2026-") for row in INVOICES]   # same names
    import_file(engine, invoices_file(tmp_path, newer + [_martin(2, "P12", "Pierre").replace("/2025;", "/2026;", 1),
                                                         _martin(4, "P30", "Anne")], name="later.csv"), settings)
    assert asked == [{"P12", "P30"}]          # P1, P2, P3: the same names, the same keys
    with engine.connect() as conn:
        keys = set(conn.execute(text("SELECT last_key, first_key, patient_id FROM patient_name_key "
                                     "WHERE patient_id IN ('P12', 'P30')")))
    assert keys == {("MARTIN", "PIERRE", "P12"), ("MARTIN", "P", "P12"), ("MARTIN", "ANNE", "P30"),
                    ("MARTIN", "A", "P30")}


def test_an_older_file_naming_a_known_patient_otherwise_leaves_his_name_and_keys_as_they_are(
        engine, settings, tmp_path, monkeypatch):
    import_file(engine, invoices_file(tmp_path, INVOICES + [_martin(1, "P12")]), settings)
    before = _stored_keys(engine)
    asked = _key_rows_asked(monkeypatch)
    older = _martin(2, "P12", "Pierre").replace("/2025;", "/2024;", 1)     # the newer invoice's name stays
    import_file(engine, invoices_file(tmp_path, [older], name="older.csv"), settings)
    assert asked == []
    assert _stored_keys(engine) == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT first_name FROM patient WHERE patient_id = 'P12'")).scalar_one() == "Paul"


def _key_rows_asked(monkeypatch) -> list[set[str]]:
    """The patients name_index.key_rows is asked to work out keys for, one set a call, from now on."""
    asked: list[set[str]] = []
    original = name_index.key_rows

    def key_rows(patients: pd.DataFrame) -> pd.DataFrame:
        asked.append(set(patients["patient_id"]))
        return original(patients)

    monkeypatch.setattr(name_index, "key_rows", key_rows)
    return asked


def test_a_file_whose_only_new_keys_are_its_new_patients_indexes_them_without_comparing_keys(
        engine, settings, tmp_path, monkeypatch):
    import_file(engine, invoices_file(tmp_path, INVOICES + [_martin(1, "P12")]), settings)
    compared: list[int] = []
    original = name_index._among

    def among(ids, values):
        compared.append(len(ids))
        return original(ids, values)

    monkeypatch.setattr(name_index, "_among", among)
    newer = [row.replace("/2025;", "/2026;", 1).replace("F2025-", "F2026-") for row in INVOICES]   # same names
    import_file(engine, invoices_file(tmp_path, newer + [_martin(4, "P30", "Anne"), _martin(5, "P31", "Li")],
                                      name="later.csv"), settings)
    assert compared == [2, 4]    # their ids among their keys (_with_unnamed), their 4 keys taken: no comparison
    with engine.connect() as conn:
        keys = set(conn.execute(text("SELECT last_key, first_key, patient_id FROM patient_name_key "
                                     "WHERE patient_id IN ('P30', 'P31')")))
    assert keys == {("MARTIN", "ANNE", "P30"), ("MARTIN", "A", "P30"), ("MARTIN", "LI", "P31"), ("MARTIN", "L", "P31")}
