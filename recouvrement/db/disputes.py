"""The complaints register in the store: disputes and their notes; named reads (dates as `date`) and writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, text

from recouvrement.db.values import as_date

NEAR_DAYS = 10        # "nears": due within this many days
ANSWER_DAYS = 60      # answer due within 60 days of receipt (whoever registers the complaint)


@dataclass(frozen=True)
class DisputeNote:
    at: datetime
    action: str               # open | note | forward | answer | close
    text: str


@dataclass(frozen=True)
class DisputeRow:
    id: int
    invoice_number: str
    patient_id: str
    received_on: date
    channel: str
    category: str
    status: str
    reason: str
    answer_due: date
    closed_on: date | None

    def days_left(self, as_of: date) -> int:
        return (self.answer_due - as_of).days

    def deadline(self, as_of: date) -> str:
        """"answered"/"closed" once the patient has an answer, else "overdue", "nears" or "in time"."""
        if self.status in ("answered", "closed"):
            return self.status
        left = self.days_left(as_of)
        return "overdue" if left < 0 else "nears" if left <= NEAR_DAYS else "in time"

    def is_overdue(self, as_of: date) -> bool:
        return self.deadline(as_of) == "overdue"


_SELECT = ("SELECT d.id, d.invoice_number, i.patient_id, d.received_on, d.channel, d.category, d.status, "
           "d.reason, d.answer_due, d.closed_on FROM dispute d JOIN invoice i ON i.invoice_number = d.invoice_number")


def _row(record) -> DisputeRow:
    values = list(record)
    for index in (3, 8, 9):
        values[index] = as_date(values[index])
    return DisputeRow(*values)


def invoice_patient(conn: Connection, invoice_number: str) -> str | None:
    """The patient of an invoice, or None when the invoice is unknown."""
    return conn.execute(text("SELECT patient_id FROM invoice WHERE invoice_number = :i"),
                        {"i": invoice_number}).scalar_one_or_none()


def dispute(conn: Connection, dispute_id: int) -> DisputeRow | None:
    record = conn.execute(text(_SELECT + " WHERE d.id = :d"), {"d": dispute_id}).first()
    return None if record is None else _row(record)


def list_disputes(conn: Connection, *, include_closed: bool = False, patient_id: str | None = None) -> list[DisputeRow]:
    """The register (of one patient's invoices, if named), the nearest answer date first."""
    where = " WHERE 1 = 1" + ("" if include_closed else " AND d.status <> 'closed'")
    where += "" if patient_id is None else " AND i.patient_id = :p"
    return [_row(r) for r in conn.execute(text(_SELECT + where + " ORDER BY d.answer_due, d.id"), {"p": patient_id})]


def dispute_notes(conn: Connection, dispute_id: int) -> list[DisputeNote]:
    rows = conn.execute(text("SELECT at, action, text FROM dispute_note WHERE dispute_id = :d ORDER BY id"),
                        {"d": dispute_id})
    return [DisputeNote(r[0] if isinstance(r[0], datetime) else datetime.fromisoformat(str(r[0])), r[1], r[2])
            for r in rows]


def disputed_invoices(conn: Connection, as_of: date | None = None, patient_id: str | None = None) -> set[str]:
    """Invoices (of one patient, if named) whose collection is paused by a dispute that is not closed (received by
    as_of, if given)."""
    sql = "SELECT DISTINCT d.invoice_number FROM dispute d WHERE d.status <> 'closed'"
    params: dict = {}
    if as_of is not None:
        sql += " AND d.received_on <= :a"
        params["a"] = as_of
    if patient_id is not None:
        sql += " AND d.invoice_number IN (SELECT invoice_number FROM invoice WHERE patient_id = :p)"
        params["p"] = patient_id
    return {r[0] for r in conn.execute(text(sql), params)}


# -- writes ---------------------------------------------------------------------------------------

def insert_dispute(conn: Connection, invoice_number: str, received_on: date, channel: str, category: str,
                   reason: str, answer_due: date) -> int:
    return int(conn.execute(text(
        "INSERT INTO dispute (invoice_number, received_on, channel, category, status, reason, answer_due) "
        "VALUES (:i, :r, :ch, :ca, 'open', :reason, :due) RETURNING id"),
        {"i": invoice_number, "r": received_on, "ch": channel, "ca": category, "reason": reason,
         "due": answer_due}).scalar_one())


def insert_note(conn: Connection, dispute_id: int, action: str, note: str, at: datetime) -> None:
    conn.execute(text("INSERT INTO dispute_note (dispute_id, at, action, text) VALUES (:d, :at, :a, :t)"),
                 {"d": dispute_id, "at": at, "a": action, "t": note})


def set_status(conn: Connection, dispute_id: int, status: str, closed_on: date | None) -> None:
    conn.execute(text("UPDATE dispute SET status = :s, closed_on = :c WHERE id = :d"),
                 {"s": status, "c": closed_on, "d": dispute_id})
