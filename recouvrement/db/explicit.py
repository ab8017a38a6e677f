"""The explicit-reference pass done set-based, in SQL where the rows are (the store's side of app.reconcile)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from recouvrement.db.bulk import build_indexes, set_aside_indexes, stage
from recouvrement.db.reconcile import PASS_LINE, unreconciled
from recouvrement.db.values import is_iso_day

# The plain case of the explicit rule, done in SQL where the rows are: a paid line naming a known
# invoice, on an invoice with no rejection pending and no share moved to the patient. It allocates
# exactly as core.reconcile does (each payer its own share, payments in (date, id) order, what is left
# a credit); a test holds the two equal. Everything else goes through the pure engine, including a
# patient's line on a share with nothing left to pay: whether it is the patient's credit or a stranger's
# mistyped reference depends on the payer's name (core.reconcile), which SQL does not compare.
# Invoices the plain pass leaves to the engine: a share moved to the patient (looked up for the invoices the
# new lines name only; none to look for when no share is moved), a rejection pending, or a queued payment
# naming them (which the engine takes in date order with the new ones).
_MOVED = """SELECT t.invoice_number FROM payment p CROSS JOIN share_transfer t
      WHERE {unreconciled} AND p.id <= :last AND t.invoice_number = p.invoice_number AND t.reversed_on IS NULL"""
_REJECTIONS = ("rejected", "clawback")
_REJECTED = f"""SELECT p.invoice_number FROM payment p WHERE p.status IN {_REJECTIONS} AND {{unreconciled}}
      AND p.id <= :last"""
# The same invoices found by the caller among the new payments it read (rejected_named), staged.
_REJECTED_GIVEN = "SELECT invoice_number FROM plain_rejected"
# The invoices a waiting queue entry names, of those the new lines name: read from the queue when it is the
# smaller side (a first run: empty), else from the new lines (a night: a few thousand lines, a queue of tens
# of thousands whose every payment would be looked up).
_QUEUED_FROM_QUEUE = """SELECT q.invoice_number FROM payment_exception e JOIN payment q ON q.payment_id = e.payment_id
      WHERE e.kind IN ('unmatched', 'ambiguous') AND q.invoice_number IS NOT NULL"""
_QUEUED_FROM_NEW = """SELECT q.invoice_number FROM payment p CROSS JOIN payment q CROSS JOIN payment_exception e
      WHERE {unreconciled} AND p.id <= :last AND q.invoice_number = p.invoice_number
      AND e.payment_id = q.payment_id AND e.kind IN ('unmatched', 'ambiguous')"""
# Each new paid line on a known invoice, with what its share leaves to pay before it: the share less what is
# allocated to it already (nothing to look up on a first run: no allocation yet) and, on a share paid in
# several lines (few: none in most runs), less the lines before it in (date, id) order. Counted first as if
# each line were its share's only one: the lines of the shares paid several times are then counted again
# (a window over those lines only), rather than the whole pass sorted by share for a window over every line.
# The rows are kept in payment row order (SQLite: the rowid), the order the allocations are written in.
_PLAIN_TABLE = """CREATE TEMPORARY TABLE plain_explicit (id {id_column}, payment_id VARCHAR, invoice_number VARCHAR,
    payer_type VARCHAR, amount_cents BIGINT, patient_id VARCHAR, payment_date DATE, share {share_type}, due BIGINT,
    paid BIGINT)"""
_PAIDS = """
INSERT INTO plain_explicit (id, payment_id, invoice_number, payer_type, amount_cents, patient_id, payment_date, share,
                            due, paid)
SELECT c.id, c.payment_id, c.invoice_number, c.payer_type, c.amount_cents, c.patient_id, c.payment_date, c.share,
       c.due, CASE WHEN c.due <= 0 THEN 0 WHEN c.due >= c.amount_cents THEN c.amount_cents ELSE c.due END
FROM (
    SELECT p.id, p.payment_id, p.invoice_number, p.payer_type, p.amount_cents, i.patient_id, p.payment_date,
           {share} AS share,
           CASE p.payer_type WHEN 'amo' THEN i.amo_cents WHEN 'amc' THEN i.amc_cents ELSE i.patient_cents END
             {less_allocated} AS due
    FROM payment p {join} invoice i ON i.invoice_number = p.invoice_number
    WHERE {unreconciled} AND p.id <= :last AND {pass_line}
      {unblocked}
) c
"""
_LESS_ALLOCATED = """- COALESCE((SELECT SUM(a.amount_cents) FROM allocation a WHERE a.invoice_number = p.invoice_number
                         AND a.payer_type = p.payer_type), 0)"""
# PostgreSQL: the lines of the invoices in plain_blocked left out as they are staged (see _blocked).
_UNBLOCKED = "AND NOT EXISTS (SELECT 1 FROM plain_blocked b WHERE b.invoice_number = p.invoice_number)"
# SQLite sorts an integer key faster than the invoice number and payer: the invoice's rowid and the payer.
_SHARE_SQLITE = "i.rowid * 4 + CASE p.payer_type WHEN 'amo' THEN 1 WHEN 'amc' THEN 2 ELSE 3 END"
# PostgreSQL's rows have no rowid: the invoice's place (its ctid: page and line), which stays while the run holds the
# writer lock (no invoice written until its settle, no other writer; a VACUUM FULL waits for the run). The pass stages
# it as it is (a tid: nothing computed per line), paid_shares reads it back as text and makes it the integer the
# ledger's read beside the pass reads for each invoice (INVOICE_PLACE, db.ledger.matching_before): the pass's
# allocations find their invoices' rows by it, as SQLite's by rowid. Its text made an integer in the database cost
# the 1M first run's pass ~2 s of the server's CPU (1.7M lines).
INVOICE_PLACE = "((i.ctid::text::point)[0]::bigint * 65536 + (i.ctid::text::point)[1]::bigint)"
_SHARE_POSTGRES = "i.ctid"
# PostgreSQL: the shares paid by several lines, grouped in the database (SQLite: _shared_shares).
_SHARED = """CREATE TEMPORARY TABLE plain_shared AS SELECT invoice_number, payer_type FROM plain_explicit
    GROUP BY invoice_number, payer_type HAVING COUNT(*) > 1"""
_BEFORE = """CREATE TEMPORARY TABLE plain_before AS
SELECT e.id, COALESCE(SUM(e.amount_cents) OVER (PARTITION BY e.invoice_number, e.payer_type
                      ORDER BY e.payment_date, e.payment_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
         AS before_cents
FROM plain_explicit e JOIN plain_shared s ON {same_share}"""
_AFTER_BEFORE = """UPDATE plain_explicit SET due = plain_explicit.due - b.before_cents,
    paid = CASE WHEN plain_explicit.due - b.before_cents <= 0 THEN 0
                WHEN plain_explicit.due - b.before_cents >= plain_explicit.amount_cents THEN plain_explicit.amount_cents
                ELSE plain_explicit.due - b.before_cents END
FROM plain_before b WHERE b.id = plain_explicit.id AND b.before_cents <> 0"""
# The new lines the pass staged and took out again, left to the engine (a blocked invoice's, a patient's with nothing
# left to pay, one naming no known invoice: staged by a LEFT JOIN, share NULL), and on PostgreSQL those of the blocked
# invoices it never staged (_BLOCKED_LINES), which the read after the pass finds by their row ids
# (db.reconcile.pending_payments) rather than scanning every new payment for them (PostgreSQL, 1M first run: 2.2M
# payments scanned, ~3.5 s of the server's).
_LEFT_TABLE = "CREATE TEMPORARY TABLE plain_left (id {id_column} PRIMARY KEY)"
# PostgreSQL: the lines of the blocked invoices, never staged (_UNBLOCKED), kept in plain_left, found from those
# invoices by the payments' index on their invoice.
_BLOCKED_LINES = """INSERT INTO plain_left (id) SELECT p.id FROM plain_blocked b JOIN payment p
    ON p.invoice_number = b.invoice_number WHERE {unreconciled} AND p.id <= :last AND {pass_line}"""
_TABLES = ("plain_explicit", "plain_blocked", "plain_rejected", "plain_left", "plain_shared", "plain_before")


def rejected_named(payments: pd.DataFrame) -> list[str]:
    """The invoices the rejection and clawback lines among `payments` name (what _REJECTED reads, once each, none
    missing), `payments` being the new ones up to the run's last row, or at least all of those that are not a
    PASS_LINE (db.reconcile.payments_the_pass_leaves): their `status` and `invoice_number`."""
    named = payments.loc[payments["status"].isin(_REJECTIONS), "invoice_number"].dropna()
    return [str(number) for number in named.unique()]


_WAITING = "kind IN ('unmatched', 'ambiguous')"


def _queue_is_larger(conn: Connection, last_id: int) -> bool:
    """More entries wait in the queue than new lines wait to be reconciled: the new lines counted by the primary
    key's range (not at all when nothing waits), the waiting entries only up to one more than them. A night's
    3,000 lines stop the count of a 45,000-entry queue at its 3,001st (1M: 8.7-27 ms -> under 1 ms)."""
    if conn.execute(text(f"SELECT 1 FROM payment_exception WHERE {_WAITING} LIMIT 1")).first() is None:
        return False
    new = conn.execute(text(f"SELECT COUNT(*) FROM payment WHERE {unreconciled(conn)} AND id <= :last"),
                       {"last": last_id}).scalar_one()
    waiting = conn.execute(text(f"SELECT COUNT(*) FROM (SELECT 1 FROM payment_exception WHERE {_WAITING} "
                                "LIMIT :more) w"), {"more": new + 1}).scalar_one()
    return waiting > new


def _blocked(conn: Connection, last_id: int, pending: str, rejected: list[str] | None = None) -> None:
    """plain_blocked: the invoices the plain pass leaves to the engine (see _MOVED). PostgreSQL leaves their lines out
    of plain_explicit as it stages them (_UNBLOCKED, a hashed anti-join on this small table) rather than deleting them
    after. The 1M first run's three statements alone on the imported set (a server with the benchmark's settings,
    3 rounds alternated under the bench lock): 4.12 / 4.22 / 3.72 s of the server's CPU -> 3.88 / 3.78 / 2.73, the
    same 1,655,041 lines. SQLite deletes them after: left out so, each line looked up in an index of this table,
    they cost it 0.5 s more than the delete (3.74 / 3.51 -> 4.21 / 4.06 s CPU). `rejected`: the invoices the new
    rejection lines name, already found (rejected_named), staged rather than read by _REJECTED, a scan of every new
    payment for a few percent of them (1M first run: 2.2M rows, ~0.6 s, for 46k lines)."""
    moved = conn.execute(text("SELECT 1 FROM share_transfer WHERE reversed_on IS NULL LIMIT 1")).first() is not None
    queued = _QUEUED_FROM_NEW if _queue_is_larger(conn, last_id) else _QUEUED_FROM_QUEUE
    arms = [_MOVED] if moved else []
    if rejected is not None:
        stage(conn, "plain_rejected", pd.DataFrame({"invoice_number": pd.Series(rejected, dtype=object)}), {})
    arms += [_REJECTED if rejected is None else _REJECTED_GIVEN, queued]
    conn.execute(text("CREATE TEMPORARY TABLE plain_blocked AS "
                      + " UNION ".join(arms).format(unreconciled=pending)), {"last": last_id})
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ANALYZE plain_blocked")


def _unblock(conn: Connection) -> None:
    """SQLite: takes the lines of plain_blocked's invoices out of plain_explicit, into plain_left. Driven by the blocked
    invoices (a few percent of the lines), each finding its payments by their index (`+p.id`: each then looked up
    in plain_explicit, not plain_explicit's ids walked for each invoice)."""
    conn.execute(text("INSERT INTO plain_left (id) SELECT p.id FROM plain_blocked b CROSS JOIN payment p "
                      "WHERE p.invoice_number = b.invoice_number AND +p.id IN (SELECT id FROM plain_explicit)"))
    conn.execute(text("DELETE FROM plain_explicit WHERE id IN (SELECT id FROM plain_left)"))


def _plain_lines(conn: Connection, last_id: int, rejected: Callable[[], list[str] | None] | None = None) -> None:
    """plain_explicit: the plain pass's lines (row id, payment, invoice, share, patient, paid: what is allocated).
    `rejected`: gives the invoices the new rejection lines name, or None (see _blocked); SQLite asks for them once
    its lines are staged (it takes the blocked invoices' lines out after), while they may still be read."""
    sqlite = conn.dialect.name == "sqlite"
    pending = unreconciled(conn, "p")
    conn.exec_driver_sql(_PLAIN_TABLE.format(id_column="INTEGER PRIMARY KEY" if sqlite else "BIGINT",
                                             share_type="BIGINT" if sqlite else "TID"))
    conn.exec_driver_sql(_LEFT_TABLE.format(id_column="INTEGER" if sqlite else "BIGINT"))
    allocated = conn.execute(text("SELECT 1 FROM allocation LIMIT 1")).first() is not None
    if not sqlite:
        _blocked(conn, last_id, pending, rejected() if rejected is not None else None)
    conn.execute(text(_PAIDS.format(unreconciled=pending, pass_line=f"{PASS_LINE} AND p.invoice_number IS NOT NULL",
                                    share=_SHARE_SQLITE if sqlite else _SHARE_POSTGRES,
                                    less_allocated=_LESS_ALLOCATED if allocated else "",
                                    join="LEFT JOIN",
                                    unblocked="" if sqlite else _UNBLOCKED)), {"last": last_id})
    if sqlite:
        _blocked(conn, last_id, pending, rejected() if rejected is not None else None)
        _unblock(conn)
    share = ["share"] if sqlite else ["invoice_number", "payer_type"]
    _shared_shares(conn) if sqlite else conn.exec_driver_sql(_SHARED)
    if conn.execute(text("SELECT 1 FROM plain_shared LIMIT 1")).first() is not None:
        conn.exec_driver_sql(_BEFORE.format(same_share=" AND ".join(f"s.{c} = e.{c}" for c in share)))
        conn.exec_driver_sql(_AFTER_BEFORE)
    # A patient's line on a share with nothing left to pay goes to the engine (see above), and a line naming no known
    # invoice (no share), each kept in plain_left.
    if not sqlite:
        conn.execute(text(_BLOCKED_LINES.format(unreconciled=pending, pass_line=PASS_LINE)), {"last": last_id})
        conn.exec_driver_sql("WITH gone AS (DELETE FROM plain_explicit WHERE payer_type = 'patient' AND due <= 0 OR "
                             "share IS NULL RETURNING id) INSERT INTO plain_left (id) SELECT id FROM gone")
        conn.exec_driver_sql("ANALYZE plain_left")
        return
    left = conn.exec_driver_sql("DELETE FROM plain_explicit WHERE payer_type = 'patient' AND due <= 0 OR share IS NULL "
                                "RETURNING id").all()
    if left:
        conn.exec_driver_sql("INSERT INTO plain_left (id) VALUES (?)", [(int(i),) for (i,) in left])


def _shared_shares(conn: Connection) -> None:
    """SQLite: plain_shared, the shares (_SHARE_SQLITE) paid by several lines, found by numpy among the lines' shares
    read as integers (_plain_integers), where GROUP BY sorted the lines in the database. The 1M first run's 1.70M
    lines (none paid on the same share): alone 0.65-0.72 -> 0.30-0.45 s CPU; in the run, beside the ledger's read
    in its thread, the GROUP BY took 1.8-2.2 s wall, 1.4-3.4 s CPU of the two threads, this ~0.4 s."""
    shares = np.sort(_plain_integers(conn, "share"))
    several = np.unique(shares[1:][shares[1:] == shares[:-1]])
    conn.exec_driver_sql("CREATE TEMPORARY TABLE plain_shared (share INTEGER)")
    if len(several):
        conn.exec_driver_sql("INSERT INTO plain_shared (share) VALUES (?)", [(int(v),) for v in several])


def settle_plain_explicit(conn: Connection, last_id: int, now: datetime, leave_aside: bool = False,
                          rejected: Callable[[], list[str] | None] | None = None
                          ) -> tuple[int, int, int, int, int, list[str]]:
    """Allocate the plain explicit payments up to row `last_id`, leave what is over as credits; they stay in
    plain_explicit for the rest of the run (the engine's read leaves them out; the run's mark covers them);
    (payments, allocations, cents allocated, credits, checksum of the allocations, the allocation indexes left to
    build: see `leave_aside`). `rejected`: gives the invoices the new rejection lines name (rejected_named) when
    they were read apart, else None: the pass then reads them (see _blocked)."""
    for table in _TABLES:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    _plain_lines(conn, last_id, rejected)
    stamp = now.replace(tzinfo=None)
    # The first run fills an empty allocation table with most of its rows: its indexes are built once after that
    # (PostgreSQL: its keys too), sorted, rather than updated row by row; the run's later lookups find them in place.
    empty = conn.execute(text("SELECT 1 FROM allocation LIMIT 1")).first() is None
    set_aside = set_aside_indexes(conn, "allocation") if empty else []
    conn.execute(text("INSERT INTO allocation (payment_id, invoice_number, payer_type, amount_cents, rule, created_at, "
                      "payment_date) SELECT payment_id, invoice_number, payer_type, paid, 'explicit', :t, payment_date "
                      "FROM plain_explicit "
                      "WHERE paid > 0 ORDER BY id"), {"t": stamp})
    if set_aside and leave_aside:
        set_aside = _left_aside(conn, set_aside)
    else:
        build_indexes(conn, set_aside, analyse="allocation")
        set_aside = []
    conn.execute(text(
        "INSERT INTO payment_exception (payment_id, kind, remaining_cents, reason, patient_id) "
        "SELECT payment_id, 'credit', amount_cents - paid, CASE WHEN paid = 0 THEN 'invoice ' || invoice_number || "
        "': nothing left to pay on the ' || payer_type || ' share' ELSE 'paid more than was due: the excess is a "
        "credit to refund or use' END, CASE WHEN payer_type = 'patient' THEN patient_id END "
        "FROM plain_explicit WHERE paid < amount_cents"))
    row = conn.execute(text("SELECT COUNT(*), COALESCE(SUM(CASE WHEN paid > 0 THEN 1 ELSE 0 END), 0), "
                            "COALESCE(SUM(paid), 0), COALESCE(SUM(CASE WHEN paid < amount_cents THEN 1 ELSE 0 END), 0),"
                            " COALESCE(SUM(paid * (id % 9973)), 0) FROM plain_explicit")).one()
    count, allocations, cents, credits, checksum = (int(v) for v in row)
    return count, allocations, cents, credits, checksum, set_aside


# PostgreSQL: the allocation index the run's reads do not need before its writes, left aside for the engine's
# allocations (pg_get_indexdef's text of ix_allocation_payment_id).
_BY_PAYMENT_ALONE = " (payment_id)"


def _left_aside(conn: Connection, statements: list[str]) -> list[str]:
    """Of the first run's allocation indexes set aside (`statements`), builds those the run reads before its writes
    and returns the others, built once the engine's allocations are in (app.reconcile._store). SQLite: all left when
    _may_leave_aside. PostgreSQL: the payment's index alone is left; the matching read needs the covering one (the
    sums per invoice read in its order: without it, hashed and sorted, 4-5 times slower) and the key. The 1M first
    run's engine COPY of 403,175 allocations with the three in place 8.5-9.5 s, with the key and the covering index
    only 4.9 s, the payment's index built over the 2.1M after 3.5 s where over the pass's 1.7M it took 2.9 s (server
    wall, a loaded machine, psql)."""
    if _may_leave_aside(conn):
        return statements
    later = [s for s in statements if conn.dialect.name == "postgresql" and s.endswith(_BY_PAYMENT_ALONE)]
    build_indexes(conn, [s for s in statements if s not in later], analyse="allocation")
    return later


def _may_leave_aside(conn: Connection) -> bool:
    """Whether the first run's allocation indexes may wait for the engine's allocations (`leave_aside`): on SQLite,
    when no share moved stands (the ledger's read of the allocations on moved shares, driven by them, then reads
    none; the run's other reads before its writes take the allocations by row id, or build the indexes first).
    Built over the engine's rows too rather than kept up as they are inserted into the freshly built (full) pages:
    1M first run, the explicit pass's 1.70M allocations then the engine's 403k, see app.reconcile._store."""
    return conn.dialect.name == "sqlite" and conn.execute(text(
        "SELECT 1 FROM share_transfer WHERE reversed_on IS NULL LIMIT 1")).first() is None


# The pass's integers read back as text in one value per million payment rows (SQLite's group_concat), parsed by
# numpy: where a fetch makes a tuple and an int object of each (1M invoices: the allocations' 2.1M (share, cents)
# rows 0.8 against 1.4 s CPU, and 3.0 s plus 1 s of lookups by invoice number for the sums per invoice).
_INTEGERS = "SELECT group_concat({values}, ',') FROM plain_explicit WHERE {condition} AND id > :low AND id <= :high"
_INTEGERS_ROWS = 1_000_000


def _plain_integers(conn: Connection, values: str, condition: str = "1") -> np.ndarray:
    """SQLite: the integers `values` (an expression, several joined by ',') of plain_explicit's lines that meet
    `condition`, in row order, flat."""
    low = conn.exec_driver_sql("SELECT MIN(id) FROM plain_explicit").scalar_one()      # each by the key's ends
    high = conn.exec_driver_sql("SELECT MAX(id) FROM plain_explicit").scalar_one()
    statement = text(_INTEGERS.format(values=values, condition=condition))
    parts = []
    for start in range(int(low or 1) - 1, int(high or 0), _INTEGERS_ROWS):
        found = conn.execute(statement, {"low": start, "high": start + _INTEGERS_ROWS}).scalar_one()
        if found:
            parts.append(np.fromstring(found, dtype=np.int64, sep=","))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class PassPaid(NamedTuple):
    """The explicit pass's allocations read back (paid_shares; SQLite: in row order): each one's share (the invoice's
    row id * 4 + 1, 2 or 3: amo, amc, patient: SQLite's rowid, _SHARE_SQLITE; PostgreSQL's place of the row,
    INVOICE_PLACE), its cents and, when asked for, its payment's day as the integer yyyymmdd (None: not asked, or a
    day missing or not written yyyy-mm-dd, or before 1970 on PostgreSQL)."""
    shares: np.ndarray
    cents: np.ndarray
    days: np.ndarray | None


def paid_shares(conn: Connection, days: bool = False) -> PassPaid | None:
    """After settle_plain_explicit in this transaction: its allocations (PassPaid; `days`: with their payments'
    days, read in the same pass over its lines: a first run's settle wants them, app.reconcile._settled_by_outcome);
    None when the pass did not run here."""
    if conn.dialect.name == "postgresql":
        return _paid_shares_postgres(conn, days)
    if conn.dialect.name != "sqlite" or conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_temp_master WHERE type = 'table' AND name = 'plain_explicit'").first() is None:
        return None
    if days and _days_written_iso(conn):
        triples = _plain_integers(conn, "share || ',' || paid || ',' || replace(payment_date, '-', '')", "paid > 0")
        return PassPaid(triples[0::3], triples[1::3], triples[2::3])
    pairs = _plain_integers(conn, "share || ',' || paid", "paid > 0")
    return PassPaid(pairs[0::2], pairs[1::2], None)


def _days_written_iso(conn: Connection) -> bool:
    """Whether every day of the pass's allocations is written yyyy-mm-dd, which replace(day, '-', '') makes the
    integer yyyymmdd: each distinct day checked once (a few hundred), not each line's day by a GLOB (the 1M first
    run's 1.7M lines, alone: shares and cents 0.7-0.8 s CPU and again shares and days, GLOB on each, 1.4 s; the
    three at once 1.2 s, and this 0.3 s). The distinct days are those of every payment (_PAYMENT_DAYS: theirs among
    them), found by a seek each in the payment day's index where it stands, rather than a scan of the pass's lines
    (1M first run: 0.23-0.39 s CPU, on the tail of the explicit stage that the ledger's thread does not cover, ->
    under 0.01): a payment outside the pass whose day is not written so then leaves the days unread too (the settle
    sums them again in the database, db.open_items.settle: the same days, slower)."""
    if conn.exec_driver_sql(_PAYMENT_DAY_INDEX).first() is not None:
        days = conn.exec_driver_sql(_PAYMENT_DAYS).scalars().all()
    else:
        days = conn.exec_driver_sql("SELECT DISTINCT payment_date FROM plain_explicit WHERE paid > 0").scalars().all()
    return all(is_iso_day(day) for day in days)


# Every payment's distinct days, in the index's order: from the least, each next one found by a seek past the last
# (SQLite orders values of every type: integers, then text); the index named, so that a walk never falls back to
# scanning the table once a day.
_PAYMENT_DAY_INDEX = ("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'ix_payment_payment_date' "
                      "AND tbl_name = 'payment'")
_PAYMENT_DAYS = """WITH RECURSIVE day (value) AS (
    SELECT (SELECT MIN(payment_date) FROM payment INDEXED BY ix_payment_payment_date)
    UNION ALL
    SELECT (SELECT MIN(payment_date) FROM payment INDEXED BY ix_payment_payment_date WHERE payment_date > day.value)
    FROM day WHERE day.value IS NOT NULL)
SELECT value FROM day WHERE value IS NOT NULL"""


# PostgreSQL: the pass's allocations as one text of integers (the invoice's place as "(page,line)", the share's payer
# 1, 2 or 3, the cents and, asked for, the day as days since 1970-01-01), parsed by numpy: where a fetch makes a tuple
# and an int object of each (1M first run: 1.70M lines).
_PAID_TEXT = ("SELECT COUNT(*), string_agg(concat_ws(',', share, CASE payer_type WHEN 'amo' THEN 1 WHEN 'amc' THEN 2 "
              "ELSE 3 END, paid{day}), ',') FROM plain_explicit WHERE paid > 0")
_DAY = ", payment_date - DATE '1970-01-01'"


def _paid_shares_postgres(conn: Connection, days: bool) -> PassPaid | None:
    """PostgreSQL: paid_shares' allocations, their shares keyed by the invoice's place (INVOICE_PLACE); None when the
    pass did not run in this transaction. A day before 1970: no days (never; the caller then settles in the
    database)."""
    if conn.exec_driver_sql("SELECT to_regclass('pg_temp.plain_explicit')").scalar_one() is None:
        return None
    count, joined = conn.exec_driver_sql(_PAID_TEXT.format(day=_DAY if days else "")).one()
    width = 5 if days else 4
    values = (np.fromstring(joined.translate(_PARENTHESES), dtype=np.int64, sep=",") if joined
              else np.zeros(0, dtype=np.int64))
    if len(values) != count * width:
        return None
    values = values.reshape(count, width)
    shares = (values[:, 0] * 65536 + values[:, 1]) * 4 + values[:, 2]       # INVOICE_PLACE * 4 + the payer's
    if not days:
        return PassPaid(shares, values[:, 3].copy(), None)
    epoch = values[:, 4]
    return PassPaid(shares, values[:, 3].copy(), epoch_day_numbers(epoch) if not (epoch < 0).any() else None)


_PARENTHESES = str.maketrans("", "", "()")


def epoch_day_numbers(days: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 (none below 0; -1: none) as the integers yyyymmdd (-1 kept)."""
    dates = np.maximum(days, 0).astype("datetime64[D]")
    months = dates.astype("datetime64[M]")
    numbers = ((months.astype("datetime64[Y]").astype(np.int64) + 1970) * 10000
               + (months.astype(np.int64) % 12 + 1) * 100 + (dates - months).astype(np.int64) + 1)
    return np.where(days < 0, -1, numbers)
