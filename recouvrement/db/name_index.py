"""The patients' name index (table patient_name_key): the keys the name + amount rule compares, kept by the
patient writes, read by the payer names' keys. The keys are core.reconcile.patient_name_keys' own, so the
index finds exactly the patients the rule would find among all of them."""

from __future__ import annotations

import json

import pandas as pd
from sqlalchemy import Connection, text

from recouvrement.core.reconcile import patient_name_keys
from recouvrement.db import changes
from recouvrement.db.bulk import bulk_insert, read_frame, stage

NAME_COLUMNS = "patient_id, last_name, first_name, guarantor_last_name, guarantor_first_name"


def _rows(patients: pd.DataFrame) -> pd.DataFrame:
    keys = patient_name_keys(patients).rename(columns={"last": "last_key", "first": "first_key"})
    return keys[["last_key", "first_key", "patient_id"]].sort_values(["last_key", "first_key", "patient_id"])


def add_new(conn: Connection, patients: pd.DataFrame) -> None:
    """Index patients just inserted: patient_id and the four name columns. Keys left under their ids (patients
    deleted by hand, then imported again) are replaced; into an empty index, straight."""
    if conn.execute(text("SELECT 1 FROM patient_name_key LIMIT 1")).first() is not None:
        ids = patients["patient_id"].tolist()
        if conn.dialect.name == "postgresql":
            conn.execute(text("DELETE FROM patient_name_key WHERE patient_id = ANY(:ids)"), {"ids": ids})
        else:
            conn.execute(text("DELETE FROM patient_name_key WHERE patient_id IN (SELECT value FROM json_each(:ids))"),
                         {"ids": json.dumps(ids)})
    rows = _rows(patients)
    bulk_insert(conn, "patient_name_key", rows)
    changes.note_patients(conn, _with_unnamed(rows, patients["patient_id"]))


def _with_unnamed(rows: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    """The keys, and the patients without any (a name too short to compare) by their id alone."""
    unnamed = ids[~ids.isin(rows["patient_id"])]
    return pd.concat([rows, pd.DataFrame({"patient_id": unnamed.to_numpy()})], ignore_index=True)


def refresh_staged(conn: Connection, staging: str) -> None:
    """Index again the patients of the staging table `staging` (a patient_id column), as stored now."""
    patients = read_frame(conn, f"SELECT p.{NAME_COLUMNS.replace(', ', ', p.')} FROM patient p "
                                f"JOIN {staging} s ON s.patient_id = p.patient_id")
    before = read_frame(conn, "SELECT k.last_key, k.first_key, k.patient_id FROM patient_name_key k "
                              f"JOIN {staging} s ON s.patient_id = k.patient_id")
    conn.execute(text(f"DELETE FROM patient_name_key WHERE patient_id IN (SELECT patient_id FROM {staging})"))
    rows = _rows(patients)
    bulk_insert(conn, "patient_name_key", rows)
    changes.note_patients(conn, _renamed(_with_unnamed(rows, patients["patient_id"]), before))


def _renamed(now: pd.DataFrame, before: pd.DataFrame) -> pd.DataFrame:
    """The keys (`now`, as _with_unnamed) of the patients whose keys are not those they had `before`."""
    def key_sets(rows: pd.DataFrame) -> pd.Series:
        keyed = rows.dropna(subset=["last_key", "first_key"])
        return (keyed["last_key"] + " " + keyed["first_key"]).groupby(keyed["patient_id"]).agg(frozenset)
    old, new = key_sets(before), key_sets(now)
    ids = now["patient_id"].drop_duplicates()
    changed = [p for p in ids if old.get(p, frozenset()) != new.get(p, frozenset()) or p not in old.index]
    return now[now["patient_id"].isin(changed)]


def refresh_all(conn: Connection) -> None:
    """Index every stored patient (the migration that creates the index)."""
    conn.execute(text("DELETE FROM patient_name_key"))
    bulk_insert(conn, "patient_name_key", _rows(read_frame(conn, f"SELECT {NAME_COLUMNS} FROM patient")))


def patients_named(conn: Connection, keys: pd.DataFrame) -> pd.DataFrame:
    """The patients bearing these (last, first) keys, by the index: last, first, patient_id."""
    if keys.empty:
        return pd.DataFrame(columns=["last", "first", "patient_id"])
    asked = keys[["last", "first"]].drop_duplicates().rename(columns={"last": "last_key", "first": "first_key"})
    stage(conn, "asked_name_key", asked, {}, index="last_key")
    found = read_frame(conn, "SELECT k.last_key, k.first_key, k.patient_id FROM patient_name_key k JOIN asked_name_key a "
                             "ON a.last_key = k.last_key AND a.first_key = k.first_key")
    return found.rename(columns={"last_key": "last", "first_key": "first"})
