"""Letters in the store: the day's letters, their invoices, print batches, and the patients they go to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd
from sqlalchemy import Connection, bindparam, text

from recouvrement.db.bulk import read_frame
from recouvrement.db.values import as_date


def letter_ids_of_day(conn: Connection, as_of: date) -> set[str]:
    """The ids of the letters recorded for `as_of`."""
    return set(conn.execute(text("SELECT letter_id FROM letter WHERE as_of = :d"), {"d": as_of}).scalars())


def patients_frame(conn: Connection) -> pd.DataFrame:
    """Every patient, indexed by patient_id, with the patient table's columns (birth_date and identity_date as
    `datetime.date`, None when missing)."""
    people = read_frame(conn, "SELECT * FROM patient").set_index("patient_id")
    for column in ("birth_date", "identity_date"):
        if column in people.columns:
            people[column] = people[column].map(as_date, na_action="ignore")
    return people


def print_batch_names(conn: Connection, as_of: date) -> set[str]:
    return set(conn.execute(text("SELECT name FROM print_batch WHERE as_of = :d"), {"d": as_of}).scalars())


def insert_print_batch(conn: Connection, name: str, as_of: date, folder: str, letters: int) -> None:
    conn.execute(text("INSERT INTO print_batch (name, as_of, folder, letters) VALUES (:n, :d, :f, :c)"),
                 {"n": name, "d": as_of, "f": folder, "c": letters})


@dataclass(frozen=True)
class NewLetter:
    """A letter to record (no attempt yet) and its invoices: `items` as (invoice_number, amount_cents, level)."""
    letter_id: str
    patient_id: str
    level: int
    kind: str
    channel: str
    as_of: date
    amount_cents: int
    sha256: str
    file: str
    status: str
    folder: str
    batch: str | None
    rf_reference: str | None
    items: list[tuple[str, int, int]]


def insert_letters(conn: Connection, letters: list[NewLetter]) -> None:
    """The letters (no attempt yet) and their invoices, in two statements (a night's letters)."""
    if not letters:
        return
    conn.execute(text("INSERT INTO letter (letter_id, patient_id, level, kind, channel, as_of, amount_cents, "
                      "sha256, file, status, folder, batch, attempts, rf_reference) "
                      "VALUES (:l, :p, :v, :k, :c, :d, :a, :s, :f, :st, :fo, :b, 0, :rf)"),
                 [{"l": x.letter_id, "rf": x.rf_reference, "p": x.patient_id, "v": x.level, "k": x.kind,
                   "c": x.channel, "d": x.as_of, "a": x.amount_cents, "s": x.sha256, "f": x.file, "fo": x.folder,
                   "b": x.batch, "st": x.status} for x in letters])
    items = [{"l": x.letter_id, "i": invoice, "a": int(cents), "v": item_level}
             for x in letters for invoice, cents, item_level in x.items]
    if items:
        conn.execute(text("INSERT INTO letter_item (letter_id, invoice_number, amount_cents, level) "
                          "VALUES (:l, :i, :a, :v)"), items)


def mark_transfers_notified(conn: Connection, as_of: date, invoices: tuple[str, ...]) -> None:
    """The share moves of these invoices (to the patient, by `as_of`, not reversed) are told to the patient."""
    conn.execute(text("UPDATE share_transfer SET notified = TRUE WHERE invoice_number = :i AND transfer_date <= :d "
                      "AND reversed_on IS NULL"), [{"i": number, "d": as_of} for number in invoices])


def unwritten_batches(conn: Connection) -> list[tuple[str, str, list[str]]]:
    """(name, folder, letter ids in order) of every print batch recorded but not yet written, by name."""
    pending = conn.execute(text("SELECT name, folder FROM print_batch WHERE written_at IS NULL ORDER BY name")).all()
    # Sorted here, not by the database's collation (a PostgreSQL locale orders "-" and "_" its own way): the
    # order app/remind.py lays the batch out in, chunk by chunk.
    return [(name, folder, sorted(conn.execute(text("SELECT letter_id FROM letter WHERE batch = :b"),
                                               {"b": name}).scalars())) for name, folder in pending]


def mark_batch_written(conn: Connection, name: str, sha256: str, at: datetime) -> bool:
    """The batch is written (its digest); False when it already was."""
    return bool(conn.execute(text("UPDATE print_batch SET sha256 = :s, written_at = :t WHERE name = :n "
                                  "AND written_at IS NULL"), {"s": sha256, "t": at, "n": name}).rowcount)


def folders_awaiting_files(conn: Connection) -> list[str]:
    """The folders of the letters the outbox still has to send and of the print batches not yet written: where a
    killed run's private folder may hold files they need."""
    return sorted(conn.execute(text(
        "SELECT folder FROM letter WHERE status IN ('queued', 'sending') AND folder IS NOT NULL "
        "UNION SELECT folder FROM print_batch WHERE written_at IS NULL AND folder IS NOT NULL")).scalars())


def recorded_documents(conn: Connection, letter_ids: Sequence[str]) -> dict[str, tuple[str, str, str]]:
    """letter id -> (folder, file, sha256) of those of the letters that are recorded."""
    query = text("SELECT letter_id, folder, file, sha256 FROM letter WHERE letter_id IN :ids").bindparams(
        bindparam("ids", expanding=True))
    ids = list(letter_ids)
    found: dict[str, tuple[str, str, str]] = {}
    for start in range(0, len(ids), 5000):   # a night's letters, under SQLite's limit of bound values
        for lid, folder, file, sha256 in conn.execute(query, {"ids": ids[start:start + 5000]}):
            found[lid] = (folder or "", file or "", sha256 or "")
    return found


def day_letters(conn: Connection, as_of: date) -> pd.DataFrame:
    """letter_id, patient_id, level, channel, amount_cents, file of the letters of `as_of`, by letter id."""
    return read_frame(conn, "SELECT letter_id, patient_id, level, channel, amount_cents, file FROM letter "
                            "WHERE as_of = :d ORDER BY letter_id", {"d": as_of})


def day_letter_invoices(conn: Connection, as_of: date) -> pd.DataFrame:
    """letter_id, invoice_number of the invoices of the letters of `as_of`, in order."""
    return read_frame(conn, "SELECT li.letter_id, li.invoice_number FROM letter_item li JOIN letter l "
                            "ON l.letter_id = li.letter_id WHERE l.as_of = :d ORDER BY li.letter_id, li.invoice_number",
                      {"d": as_of})


def letters_up_to(conn: Connection, as_of: date) -> pd.DataFrame:
    """Every letter dated on or before `as_of`: patient_id, level, as_of (as the driver returns it), letter_id."""
    return read_frame(conn, "SELECT patient_id, level, as_of, letter_id FROM letter WHERE as_of <= :d", {"d": as_of})


def listings_up_to(conn: Connection, as_of: date) -> pd.DataFrame:
    """Every listing of an invoice in a letter dated on or before `as_of`, at the invoice's own level (each
    invoice's own ladder): invoice_number, level, as_of (as the driver returns it)."""
    return read_frame(conn, "SELECT i.invoice_number, i.level, l.as_of FROM letter_item i JOIN letter l "
                            "ON l.letter_id = i.letter_id WHERE l.as_of <= :d", {"d": as_of})
