"""The patients' name index (table patient_name_key): the keys the name + amount rule compares, kept by the
patient writes, read by the payer names' keys. The keys are core.reconcile.patient_name_keys' own, so the
index finds exactly the patients the rule would find among all of them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, text

from recouvrement.core.reconcile import patient_name_keys_in_order
from recouvrement.db import changes
from recouvrement.db.bulk import build_indexes, bulk_insert, read_frame, set_aside_indexes, stage

NAME_COLUMNS = "patient_id, last_name, first_name, guarantor_last_name, guarantor_first_name"


def _among(ids: pd.Series, among) -> np.ndarray:
    """Which of the patient ids `ids` are in `among` (ids, never missing): pandas' isin on text builds a pyarrow
    scalar per value asked (2 s for a first file's 500,000 patients), pyarrow's is_in hashes them at once."""
    values = pa.array(list(among) if isinstance(among, (set, frozenset)) else among, type=pa.large_string())
    return pc.is_in(pa.array(ids, type=pa.large_string()), value_set=values).to_numpy(zero_copy_only=False)


def key_rows(patients: pd.DataFrame) -> pd.DataFrame:
    """The index's rows for these patients (patient_id and the four name columns): last_key, first_key, patient_id,
    sorted as the index is (its text as Arrow's: the insert makes Python objects of it chunk by chunk, db.bulk)."""
    keys = patient_name_keys_in_order(patients).rename(columns={"last": "last_key", "first": "first_key"})
    return keys[["last_key", "first_key", "patient_id"]]


def add_new(conn: Connection, patients: pd.DataFrame, rows: pd.DataFrame | None = None) -> None:
    """Index patients just inserted: patient_id and the four name columns (`rows`: their key_rows, when already
    worked out). Keys left under their ids (patients deleted by hand, then imported again) are replaced; into an
    empty index, straight, its secondary index built once after, sorted (a first file's 500,000 patients)."""
    set_aside: list[str] = []
    if conn.execute(text("SELECT 1 FROM patient_name_key LIMIT 1")).first() is not None:
        ids = patients["patient_id"].tolist()
        if conn.dialect.name == "postgresql":
            conn.execute(text("DELETE FROM patient_name_key WHERE patient_id = ANY(:ids)"), {"ids": ids})
        else:
            conn.execute(text("DELETE FROM patient_name_key WHERE patient_id IN (SELECT value FROM json_each(:ids))"),
                         {"ids": json.dumps(ids)})
    else:
        set_aside = set_aside_indexes(conn, "patient_name_key")
    rows = key_rows(patients) if rows is None else rows
    bulk_insert(conn, "patient_name_key", rows)
    build_indexes(conn, set_aside, analyse="patient_name_key")
    if changes.anything_waits(conn):    # (a first file's 500,000 patients: nothing waits, nothing to work out)
        changes.note_patients(conn, _with_unnamed(rows, patients["patient_id"]))


def _with_unnamed(rows: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    """The keys, and the patients without any (a name too short to compare) by their id alone."""
    unnamed = ids[~_among(ids, rows["patient_id"])]
    return pd.concat([rows, pd.DataFrame({"patient_id": unnamed.to_numpy()})], ignore_index=True)


def renamed_by(conn: Connection, staging: str, written: dict[str, str]) -> list[str]:
    """The patients of the staging table `staging` (a patient_id column, its alias `s`) whose names a write is about
    to change, or who are not stored yet: `written` gives, for each name column, the expression of the value the
    write will store, over `s` and the stored row `patient` (the UPDATE's own). Asked before the write, in the pass
    over the stored rows the write makes anyway (their pages then cached): no copy of the names kept to compare
    after (a temporary table of the staged patients' names, indexed, then joined again: 3,585 patients at 1M)."""
    differs = "IS DISTINCT FROM" if conn.dialect.name == "postgresql" else "IS NOT"
    renamed = " OR ".join(f"({written[c]}) {differs} patient.{c}" for c in NAME_COLUMNS.split(", ")[1:])
    # From the staged ids outwards (the LEFT JOIN's order): else SQLite reads the whole index to find them.
    return [patient_id for (patient_id,) in conn.execute(text(
        f"SELECT s.patient_id FROM {staging} s LEFT JOIN patient ON patient.patient_id = s.patient_id "
        f"WHERE patient.patient_id IS NULL OR {renamed}"))]


def refresh_staged(conn: Connection, renamed: list[str]) -> None:
    """Index again the patients `renamed` (renamed_by: new patients, renamed ones), as stored now. Only the
    patients whose keys changed are rewritten (and noted): a night's file names thousands of known patients, most
    of them under the same names, and their keys, a function of their names, are the same. The night's file at 1M
    (3,585 patients, 516 of them new, none renamed): keys worked out and compared for 516 patients, not 3,585."""
    if not renamed:
        return
    stage(conn, "named_patient", pd.DataFrame({"patient_id": pd.Series(renamed, dtype=object)}), {},
          index="patient_id")
    patients = read_frame(conn, f"SELECT p.{NAME_COLUMNS.replace(', ', ', p.')} FROM named_patient s "
                                "CROSS JOIN patient p WHERE p.patient_id = s.patient_id")
    before = read_frame(conn, "SELECT k.last_key, k.first_key, k.patient_id FROM named_patient s "
                              "CROSS JOIN patient_name_key k WHERE k.patient_id = s.patient_id")
    rows = key_rows(patients)
    changed = _renamed(_with_unnamed(rows, patients["patient_id"]), before)
    ids = changed["patient_id"].drop_duplicates()
    if ids.empty:
        return
    stage(conn, "renamed_patient", pd.DataFrame({"value": ids.reset_index(drop=True)}), {}, index="value")
    conn.execute(text("DELETE FROM patient_name_key WHERE patient_id IN (SELECT value FROM renamed_patient)"))
    bulk_insert(conn, "patient_name_key", rows[_among(rows["patient_id"], ids)])
    changes.note_patients(conn, changed)


def _renamed(now: pd.DataFrame, before: pd.DataFrame) -> pd.DataFrame:
    """The keys (`now`, as _with_unnamed) of the patients whose keys are not those they had `before`, or who had
    none before. When none of them had any (a night's new patients: the 1M history's 516), all of them, as the
    comparison would find (13 ms of the night's import)."""
    if before.empty:
        return now
    key = ["patient_id", "last_key", "first_key"]
    keyed_now = now.dropna(subset=["last_key", "first_key"])[key].drop_duplicates()
    keyed_before = before.dropna(subset=["last_key", "first_key"])[key].drop_duplicates()
    both = keyed_now.merge(keyed_before, how="outer", on=key, indicator=True)
    differ = set(both.loc[both["_merge"] != "both", "patient_id"])
    ids = now["patient_id"].drop_duplicates()
    changed = ids[_among(ids, differ) | ~_among(ids, keyed_before["patient_id"])]
    return now[_among(now["patient_id"], changed)]


def refresh_all(conn: Connection) -> None:
    """Index every stored patient (the migration that creates the index)."""
    conn.execute(text("DELETE FROM patient_name_key"))
    bulk_insert(conn, "patient_name_key", key_rows(read_frame(conn, f"SELECT {NAME_COLUMNS} FROM patient")))


# The n-th bearer of an asked key, by id (one seek in the index's (last, first, patient) order).
_BEARER = ("(SELECT k.patient_id FROM patient_name_key k WHERE k.last_key = a.last_key AND k.first_key = a.first_key "
           "ORDER BY k.patient_id LIMIT 1 OFFSET {})")


def patients_named(conn: Connection, keys: pd.DataFrame) -> pd.DataFrame:
    """The patients bearing these (last, first) keys, by the index, at most two per key, those with the
    smallest ids: last, first, patient_id. Two tell all the name rules read: whether one patient or several
    bear a name, and the two bearers a name's ambiguity keeps (core.reconcile.name_reach, name_scope); a
    common name's thousands of bearers are never read."""
    if keys.empty:
        return pd.DataFrame(columns=["last", "first", "patient_id"])
    asked = keys[["last", "first"]].drop_duplicates().rename(columns={"last": "last_key", "first": "first_key"})
    stage(conn, "asked_name_key", asked, {})
    found = read_frame(conn, f"SELECT a.last_key, a.first_key, {_BEARER.format(0)} AS first_bearer, "
                             f"{_BEARER.format(1)} AS second_bearer FROM asked_name_key a")
    bearers = pd.concat([found[["last_key", "first_key", column]].set_axis(["last", "first", "patient_id"], axis=1)
                         for column in ("first_bearer", "second_bearer")], ignore_index=True)
    return bearers.dropna(subset=["patient_id"]).reset_index(drop=True)
