"""The collection agency in the store: cases, export files, the agency's payments; named reads (dates as
`date`) and named writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd
from sqlalchemy import Connection, text

from recouvrement.db.reconcile import insert_allocation
from recouvrement.db.values import as_date


@dataclass(frozen=True)
class CaseRow:
    case_id: str
    patient_id: str
    handed_on: date
    amount_cents: int
    invoice_numbers: tuple[str, ...]
    status: str    # handed_over | partial | collected | plan_proposed | disputed | uncollectable | closed | returned
    updated_on: date | None


def handed_over_invoices(conn: Connection, as_of: date | None = None, patient_id: str | None = None) -> set[str]:
    """Every invoice (of one patient, if named) the agency received (by as_of): out of the internal ladder for good,
    whatever the case became (collected, closed, returned: a returned case goes to the clinic's worklist, never
    back)."""
    mine = "" if patient_id is None else " AND patient_id = :p"
    numbers = conn.execute(text("SELECT invoice_numbers FROM agency_case WHERE handed_on <= :d" + mine),
                           {"d": as_of or date.max, "p": patient_id}).scalars()
    return {number for row in numbers for number in row.split()}


def returned_cases(conn: Connection) -> list[dict]:
    """The clinic's worklist: cases the agency gave back, for a person to decide what comes next."""
    rows = conn.execute(text("SELECT case_id, patient_id, handed_on, amount_cents, invoice_numbers, updated_on "
                             "FROM agency_case WHERE status = 'returned' ORDER BY updated_on, case_id")).mappings()
    return [{**r, "handed_on": as_date(r["handed_on"]), "updated_on": as_date(r["updated_on"])} for r in rows]


def case(conn: Connection, case_id: str) -> CaseRow | None:
    r = conn.execute(text("SELECT case_id, patient_id, handed_on, amount_cents, invoice_numbers, status, updated_on "
                          "FROM agency_case WHERE case_id = :c"), {"c": case_id}).first()
    if r is None:
        return None
    return CaseRow(r[0], r[1], as_date(r[2]), int(r[3]), tuple(r[4].split()), r[5], as_date(r[6]))


def final_letters(conn: Connection, as_of: date, level: int) -> pd.DataFrame:
    """Each invoice formally demanded by a mise en demeure (the ladder's last `level`, at its own level) that
    went out by as_of: columns patient_id, as_of (date), invoice_number, issue_date (date). A letter went out
    when written or sent, or when it also went by post (an e-mail still queued or failed has not)."""
    rows = conn.execute(text(
        "SELECT l.patient_id, l.as_of, i.invoice_number, v.issue_date FROM letter l "
        "JOIN letter_item i ON i.letter_id = l.letter_id JOIN invoice v ON v.invoice_number = i.invoice_number "
        "WHERE l.level = :level AND i.level = :level AND l.as_of <= :d "
        "AND (l.status IN ('written', 'sent') OR l.channel = 'both')"), {"level": level, "d": as_of}).all()
    frame = pd.DataFrame(rows, columns=["patient_id", "as_of", "invoice_number", "issue_date"])
    frame["as_of"] = frame["as_of"].map(as_date)
    frame["issue_date"] = frame["issue_date"].map(as_date)
    return frame


@dataclass(frozen=True)
class LetterSent:
    """One reminder letter listing one invoice, as the agency file tells it."""

    invoice_number: str
    letter_id: str
    day: date
    level: int                        # the invoice's own level in that letter
    rf_reference: str | None          # the letter's printed reference (None: made before letters had one)
    channel: str                      # letter | email | both
    status: str                       # written | queued | sending | sent | failed (the e-mail's, see Letter)
    registered_tracking: str | None = None   # registered post's tracking number, when recorded


def letters_listing(conn: Connection, numbers: list[str] | tuple[str, ...], as_of: date) -> list[LetterSent]:
    """Every ladder letter (level 1 and up) that listed one of these invoices and went out by as_of (written or
    sent, or also by post), oldest first."""
    if not numbers:
        return []
    marks = ", ".join(f":n{k}" for k in range(len(numbers)))
    rows = conn.execute(text(
        "SELECT i.invoice_number, l.letter_id, l.as_of, i.level, l.rf_reference, l.channel, l.status, "
        "l.registered_tracking FROM letter l "
        f"JOIN letter_item i ON i.letter_id = l.letter_id WHERE i.invoice_number IN ({marks}) AND l.level >= 1 "
        "AND i.level >= 1 AND l.as_of <= :d AND (l.status IN ('written', 'sent') OR l.channel = 'both') "
        "ORDER BY l.as_of, l.letter_id"), {"d": as_of, **{f"n{k}": n for k, n in enumerate(numbers)}}).all()
    return [LetterSent(r[0], r[1], as_date(r[2]), int(r[3]), r[4], r[5], r[6], r[7]) for r in rows]


def postal_letter(conn: Connection, letter_id: str) -> tuple[str, str, str | None] | None:
    """(patient_id, channel, registered_tracking) of a letter, or None when there is no such letter."""
    row = conn.execute(text("SELECT patient_id, channel, registered_tracking FROM letter WHERE letter_id = :l"),
                       {"l": letter_id}).first()
    return None if row is None else (row[0], row[1], row[2])


def set_registered_tracking(conn: Connection, letter_id: str, tracking: str) -> None:
    conn.execute(text("UPDATE letter SET registered_tracking = :t WHERE letter_id = :l"),
                 {"t": tracking, "l": letter_id})


def collected_cents(conn: Connection, case_id: str) -> int:
    """What the agency collected on a case, all its return lines together."""
    return int(conn.execute(text("SELECT COALESCE(SUM(amount_cents), 0) FROM payment WHERE payer_type = 'agency' "
                                 "AND reference = :c"), {"c": case_id}).scalar_one())


def payment_day_and_amount(conn: Connection, payment_id: str) -> tuple[date, int] | None:
    known = conn.execute(text("SELECT payment_date, amount_cents FROM payment WHERE payment_id = :p"),
                         {"p": payment_id}).first()
    return None if known is None else (as_date(known[0]), int(known[1]))


def applied_return_lines(conn: Connection, patient_id: str) -> set[str]:
    """Ids of the return lines already applied to this patient's cases (from the audit trail)."""
    payloads = conn.execute(text("SELECT payload FROM audit_event WHERE kind = 'agency_return' AND patient_id = :p"),
                            {"p": patient_id}).scalars()
    return {json.loads(p).get("line_id") for p in payloads}


def oldest_first(conn: Connection, numbers: tuple[str, ...] | list[str]) -> list[str]:
    """The invoices, oldest issue date first (then by number)."""
    if not numbers:
        return []
    marks = ", ".join(f":n{k}" for k in range(len(numbers)))
    return list(conn.execute(text(f"SELECT invoice_number FROM invoice WHERE invoice_number IN ({marks}) "
                                  "ORDER BY issue_date, invoice_number"),
                             {f"n{k}": n for k, n in enumerate(numbers)}).scalars())


def pending_exports(conn: Connection) -> list[tuple[str, str, bytes, str]]:
    """(path, sha256, document, manifest) of every recorded agency file not yet marked written."""
    rows = conn.execute(text("SELECT path, sha256, document, manifest FROM agency_export "
                             "WHERE written_at IS NULL ORDER BY path")).all()
    return [(p, s, bytes(d), m) for p, s, d, m in rows]


# -- writes ---------------------------------------------------------------------------------------

def insert_case(conn: Connection, case_id: str, patient_id: str, handed_on: date, amount_cents: int,
                invoice_numbers: tuple[str, ...]) -> None:
    conn.execute(text("INSERT INTO agency_case (case_id, patient_id, handed_on, amount_cents, invoice_numbers, "
                      "status, updated_on) VALUES (:c, :p, :d, :a, :n, 'handed_over', :d)"),
                 {"c": case_id, "p": patient_id, "d": handed_on, "a": amount_cents, "n": " ".join(invoice_numbers)})


def set_case_status(conn: Connection, case_id: str, status: str, on: date) -> None:
    conn.execute(text("UPDATE agency_case SET status = :s, updated_on = :d WHERE case_id = :c"),
                 {"s": status, "d": on, "c": case_id})


def insert_commission(conn: Connection, line_id: str, case_id: str, booked_on: date, cents: int,
                      rate_bp: int | None) -> None:
    conn.execute(text("INSERT INTO agency_commission (line_id, case_id, booked_on, amount_cents, rate_bp) "
                      "VALUES (:l, :c, :d, :a, :r)"),
                 {"l": line_id, "c": case_id, "d": booked_on, "a": cents, "r": rate_bp})


def insert_export(conn: Connection, path: str, as_of: date, sha256: str, document: bytes, manifest: str) -> None:
    conn.execute(text("INSERT INTO agency_export (path, as_of, sha256, document, manifest) "
                      "VALUES (:p, :d, :s, :doc, :m)"),
                 {"p": path, "d": as_of, "s": sha256, "doc": document, "m": manifest})


def mark_export_written(conn: Connection, path: str, at: datetime) -> None:
    conn.execute(text("UPDATE agency_export SET written_at = :t WHERE path = :p AND written_at IS NULL"),
                 {"t": at, "p": path})


def insert_agency_payment(conn: Connection, payment_id: str, day: date, cents: int, case_id: str, file: str,
                          line: int) -> None:
    """The agency's payment, stored reconciled: the matching cascade never sees it."""
    conn.execute(text("INSERT INTO payment (payment_id, payment_date, payer_type, payer_name, amount_cents, reference, "
                      "invoice_number, status, source_file, source_line, reconciled) VALUES (:p, :d, 'agency', "
                      "'agence de recouvrement', :a, :r, NULL, 'paid', :f, :l, TRUE)"),
                 {"p": payment_id, "d": day, "a": cents, "r": case_id, "f": file, "l": line})


def insert_agency_allocation(conn: Connection, payment_id: str, invoice_number: str, cents: int,
                             at: datetime) -> None:
    insert_allocation(conn, payment_id, invoice_number, "patient", cents, "agency", at)


def insert_credit(conn: Connection, payment_id: str, cents: int, patient_id: str, reason: str) -> None:
    conn.execute(text("INSERT INTO payment_exception (payment_id, kind, remaining_cents, reason, patient_id) "
                      "VALUES (:p, 'credit', :c, :r, :pt)"),
                 {"p": payment_id, "c": cents, "pt": patient_id, "r": reason})


def insert_returns_batch(conn: Connection, file: str, sha256: str, at: datetime, read: int, imported: int,
                         duplicates: int, rejected: int) -> None:
    conn.execute(text("INSERT INTO import_batch (kind, format, source_file, sha256, imported_at, rows_read, "
                      "rows_imported, rows_duplicate, rows_rejected) VALUES ('agency_returns', 'csv', :s, :h, :t, "
                      ":r, :i, :d, :x)"),
                 {"s": file, "h": sha256, "t": at, "r": read, "i": imported, "d": duplicates, "x": rejected})
