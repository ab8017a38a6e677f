"""What the accountant's report reads from the store: sums and counts over invoices, payments, the queue,
disputes, letters, plans and agency cases, as of a day. Every date is a `datetime.date`."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, text

from recouvrement.db.values import as_date


def _scalar(conn: Connection, sql: str, params: dict) -> int:
    return int(conn.execute(text(sql), params).scalar_one() or 0)


def _groups(conn: Connection, sql: str, params: dict) -> dict:
    """key → (count, cents) of a `SELECT key, COUNT(*), SUM(cents) … GROUP BY key`."""
    return {key: (int(n), int(c or 0)) for key, n, c in conn.execute(text(sql), params)}


def billed_cents(conn: Connection, after: date, through: date) -> int:
    """Total of the invoices issued after `after`, up to `through`."""
    return _scalar(conn, "SELECT SUM(total_cents) FROM invoice WHERE issue_date > :s AND issue_date <= :a",
                   {"s": after, "a": through})


def billed_cents_between(conn: Connection, first: date, last: date) -> int:
    """Total of the invoices issued from `first` to `last`, both included."""
    return _scalar(conn, "SELECT SUM(total_cents) FROM invoice WHERE issue_date BETWEEN :f AND :t",
                   {"f": first, "t": last})


def collected_cents_between(conn: Connection, first: date, last: date, paid_by: date) -> int:
    """What payments dated up to `paid_by` settled on the invoices issued from `first` to `last`."""
    # From the period's invoices outwards (CROSS JOIN keeps SQLite's planner from scanning every allocation).
    return _scalar(conn, "SELECT SUM(a.amount_cents) FROM invoice i CROSS JOIN allocation a CROSS JOIN payment p "
                         "WHERE a.invoice_number = i.invoice_number AND p.payment_id = a.payment_id "
                         "AND i.issue_date BETWEEN :f AND :t AND p.payment_date <= :a",
                   {"f": first, "t": last, "a": paid_by})


def queue_by_kind(conn: Connection, as_of: date) -> dict[str, tuple[int, int]]:
    """kind → (payments, cents still to place) of the queue, for payments dated up to `as_of`."""
    # From the queue outwards: SQLite would otherwise walk every payment dated by as_of.
    return _groups(conn, "SELECT e.kind, COUNT(*), SUM(e.remaining_cents) FROM payment_exception e "
                         "CROSS JOIN payment p WHERE p.payment_id = e.payment_id AND p.payment_date <= :a "
                         "GROUP BY e.kind", {"a": as_of})


def open_disputes(conn: Connection, as_of: date) -> list[tuple[int, str, date, str, str]]:
    """(id, invoice_number, received_on, category, status) of the disputes received by `as_of` and not closed,
    oldest first."""
    rows = conn.execute(text("SELECT id, invoice_number, received_on, category, status FROM dispute "
                             "WHERE status <> 'closed' AND received_on <= :a ORDER BY received_on, id"),
                        {"a": as_of}).all()
    return [(r[0], r[1], as_date(r[2]), r[3], r[4]) for r in rows]


def letters_by_level(conn: Connection, after: date, through: date) -> dict[int, tuple[int, int]]:
    """level → (letters, cents) of the letters dated after `after`, up to `through`."""
    return _groups(conn, "SELECT level, COUNT(*), SUM(amount_cents) FROM letter WHERE as_of > :s AND as_of <= :a "
                         "GROUP BY level", {"s": after, "a": through})


def calls_by_status(conn: Connection, after: date, through: date) -> dict[str, tuple[int, int]]:
    """status → (calls, cents to ask) of the calls the nights listed after `after`, up to `through`."""
    return _groups(conn, "SELECT status, COUNT(*), SUM(amount_cents) FROM call_task WHERE listed_on > :s "
                         "AND listed_on <= :a GROUP BY status", {"s": after, "a": through})


def plans_by_status(conn: Connection, as_of: date) -> dict[str, tuple[int, int]]:
    """status → (plans, total cents) of the plans proposed by `as_of`."""
    return _groups(conn, "SELECT status, COUNT(*), SUM(total_cents) FROM plan WHERE proposed_on <= :a "
                         "GROUP BY status", {"a": as_of})


def agency_by_status(conn: Connection, as_of: date) -> dict[str, tuple[int, int, int]]:
    """status → (cases, cents handed over, cents the agency collected by `as_of`) of the cases handed over by
    `as_of` (a partial collection counts as what it is)."""
    rows = conn.execute(text(
        "SELECT c.status, COUNT(*), SUM(c.amount_cents), SUM(COALESCE(g.cents, 0)) FROM agency_case c "
        "LEFT JOIN (SELECT reference, SUM(amount_cents) AS cents FROM payment WHERE payer_type = 'agency' "
        "AND payment_date <= :a GROUP BY reference) g ON g.reference = c.case_id "
        "WHERE c.handed_on <= :a GROUP BY c.status"), {"a": as_of}).all()
    return {status: (int(n), int(handed or 0), int(collected or 0)) for status, n, handed, collected in rows}


def agency_commission_cents(conn: Connection, as_of: date) -> int:
    """The agency's commissions booked by `as_of`, in cents."""
    return _scalar(conn, "SELECT COALESCE(SUM(amount_cents), 0) FROM agency_commission WHERE booked_on <= :a",
                   {"a": as_of})


def agency_cases_handed_on(conn: Connection, day: date) -> int:
    return _scalar(conn, "SELECT COUNT(*) FROM agency_case WHERE handed_on = :a", {"a": day})
