"""The ledger's snapshot: what the database knew of invoices, payments, transfers and credits at the end of a day.

Every read here is set-based (one query per table, whatever the number of invoices) and returns plain
frames whose dates are `datetime.date` objects. `recouvrement.core.ledger` computes from them what is
still owed; nothing outside this module reads these tables to compute an amount.

The everyday reads of a big ledger (the aged balance and its details, one patient's account) do the same
arithmetic in the database instead (_DUES: one SQL text for all of them, over the open invoices or one patient's),
held equal to core.ledger's by tests/app/test_balance_sums.py and tests/app/test_patient_sums.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import chain

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from recouvrement.core.balance import (BUCKETS, PATIENT_DETAIL, age_buckets,  # noqa: F401  (BUCKETS: the report's)
                                       bucket_columns)
from recouvrement.core.ledger import (EXCEPTION_COLUMNS, PATIENT_COLUMNS, SHARES, Snapshot, due_matrix, outstanding,
                                      patient_money)
from recouvrement.db.bulk import read_columns, read_frame, stage
from recouvrement.db.explicit import INVOICE_PLACE, PassPaid, paid_shares
from recouvrement.db.session import wal_mode
from recouvrement.db.values import as_date

def as_dates(values: pd.Series) -> pd.Series:
    """`date` objects (None where missing) whatever the driver returned: SQLite text, PostgreSQL dates.
    Converted once per distinct value: a million invoices have a few hundred dates."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    converted = np.empty(len(uniques) + 1, dtype=object)
    converted[:-1] = [as_date(v) for v in uniques]
    converted[-1] = None
    return pd.Series(converted[codes], index=values.index, dtype=object)




def _cents(values: pd.Series) -> pd.Series:
    return values.fillna(0).astype("int64")


def _filter(column: str, values: tuple[str, ...] | None, prefix: str) -> tuple[str, dict]:
    """` AND column IN (:x0, :x1 …)` and its parameters, or nothing when not filtered."""
    if values is None:
        return "", {}
    if not values:
        return " AND 1 = 0", {}
    marks = ", ".join(f":{prefix}{k}" for k in range(len(values)))
    return f" AND {column} IN ({marks})", {f"{prefix}{k}": v for k, v in enumerate(values)}


# A range of patient ids, [first, past) (None: open on that side): the part of the patients one of the processes
# reading the day's accounts takes (app.remind).
PatientRange = tuple[str | None, str | None]


def _within(column: str, patients: PatientRange | None) -> tuple[str, dict]:
    """` AND column >= :first AND column < :past` for the range, and its parameters (nothing without a range).
    The column is compared as `column || ''`, which no index serves: else SQLite reads the open invoices of half
    the patients through the index on patient_id, a table lookup for each of their invoices, open or settled (1M:
    1.9 s, where the index on settled_on finds the open ones and the range is checked on each)."""
    first, past = patients or (None, None)
    column = f"{column} || ''"
    return ((f" AND {column} >= :first" if first is not None else "") + (f" AND {column} < :past" if past is not None
                                                                        else ""),
            {"first": first, "past": past})


def load_snapshot(conn: Connection, as_of: date | None, patient_ids: Iterable[str] | None = None,
                  invoice_numbers: Iterable[str] | None = None) -> Snapshot:
    """The snapshot at the end of `as_of` (None: everything recorded), of every patient or only those named,
    of every invoice or only those named (with their patients' credits)."""
    patients = tuple(dict.fromkeys(patient_ids)) if patient_ids is not None else None
    numbers = tuple(dict.fromkeys(invoice_numbers)) if invoice_numbers is not None else None
    by_patient, p_params = _filter("i.patient_id", patients, "p")
    by_number, n_params = _filter("i.invoice_number", numbers, "n")
    dated = as_of is not None
    params = {"d": as_of, **p_params, **n_params}
    when = " AND i.issue_date <= :d" if dated else ""
    invoices = read_frame(conn, "SELECT i.invoice_number, i.compact_number, i.patient_id, i.issue_date, i.due_date, "
                                "i.amo_cents, i.amc_cents, i.patient_cents, i.amc_payer FROM invoice i WHERE 1 = 1"
                                + when + by_patient + by_number + " ORDER BY i.invoice_number", params)
    scoped = patients is not None or numbers is not None
    join = " JOIN invoice i ON i.invoice_number = a.invoice_number" if scoped else ""
    if dated:
        allocations = read_frame(conn, "SELECT a.invoice_number, a.payer_type, a.payment_date, "
                                       "SUM(a.amount_cents) AS amount_cents FROM allocation a" + join
                                       + " WHERE a.payment_date <= :d" + by_patient + by_number
                                       + " GROUP BY a.invoice_number, a.payer_type, a.payment_date", params)
    else:
        allocations = read_frame(conn, "SELECT a.invoice_number, a.payer_type, NULL AS payment_date, "
                                       "SUM(a.amount_cents) AS amount_cents FROM allocation a" + join + " WHERE 1 = 1"
                                       + by_patient + by_number + " GROUP BY a.invoice_number, a.payer_type", params)
    join = " JOIN invoice i ON i.invoice_number = t.invoice_number" if scoped else ""
    transfers = read_frame(conn, "SELECT t.id AS transfer_id, t.invoice_number, t.from_payer, t.amount_cents, "
                                 "t.transfer_date, t.reversed_on, t.notified FROM share_transfer t" + join
                                 + " WHERE 1 = 1" + (" AND t.transfer_date <= :d" if dated else "")
                                 + by_patient + by_number + " ORDER BY t.id", params)
    return Snapshot(as_of, _typed_invoices(invoices), _typed_allocations(allocations), _typed_transfers(transfers),
                    load_exceptions(conn, as_of, _patients_of(patients, numbers, invoices)),
                    load_patients(conn, _patients_of(patients, numbers, invoices)),
                    load_write_offs(conn, as_of, by_patient + by_number, params))


# The invoices that may still be open at the end of :d (db.open_items: the others owe nothing and have no
# write-off), as one SQL condition: open_snapshot's set, the everyday reads' scope, remind's split (db.accounts).
OPEN_ON = "(settled_on IS NULL OR settled_on > :d)"
_OPEN = ("CREATE TEMPORARY TABLE open_invoice AS SELECT invoice_number, patient_id FROM invoice "
         f"WHERE {OPEN_ON} AND issue_date <= :d")


def open_snapshot(conn: Connection, as_of: date, *, summed: bool = False,
                  patients: PatientRange | None = None) -> Snapshot:
    """The snapshot at the end of `as_of` of the invoices that may still be open then (db.open_items: settled_on
    NULL or later), with their allocations, transfers and write-offs, every credit and queued payment, and the
    patients of those invoices and of those credits: what outstanding() and patient_money() need for every
    share with money due, every write-off and every patient's money on that day, never the settled history.
    Read through a temporary table of their numbers joined on indexes. `summed`: the allocations dated by as_of
    summed in the database, one row per share, undated (what outstanding() on as_of itself reads of them; not a
    past day's, nor the payment days). `patients`: only the invoices, credits and queued money of the patients in
    that range of ids, and the money waiting in nobody's name."""
    within, bounds = _within("patient_id", patients)
    conn.exec_driver_sql("DROP TABLE IF EXISTS open_invoice")
    conn.execute(text(_OPEN + within), {"d": as_of, **bounds})
    conn.exec_driver_sql("CREATE INDEX open_invoice_number ON open_invoice (invoice_number)")
    params = {"d": as_of}
    scope = " FROM open_invoice o CROSS JOIN {0} {1} WHERE {1}.invoice_number = o.invoice_number"
    invoices = read_frame(conn, "SELECT i.invoice_number, i.compact_number, i.patient_id, i.issue_date, i.due_date, "
                                "i.amo_cents, i.amc_cents, i.patient_cents, i.amc_payer" + scope.format("invoice", "i")
                                + " ORDER BY i.invoice_number")
    # From the open invoices outwards (CROSS JOIN keeps SQLite's planner from scanning the big tables first).
    allocations = (_summed_open_allocations(conn, as_of) if summed else
                   read_frame(conn, "SELECT a.invoice_number, a.payer_type, a.payment_date, SUM(a.amount_cents) AS "
                                    "amount_cents FROM open_invoice o CROSS JOIN allocation a WHERE a.invoice_number = "
                                    "o.invoice_number AND a.payment_date <= :d GROUP BY a.invoice_number, a.payer_type, "
                                    "a.payment_date",
                              params))
    transfers = read_frame(conn, "SELECT t.id AS transfer_id, t.invoice_number, t.from_payer, t.amount_cents, "
                                 "t.transfer_date, t.reversed_on, t.notified" + scope.format("share_transfer", "t")
                                 + " AND t.transfer_date <= :d ORDER BY t.id", params)
    write_offs = read_frame(conn, "SELECT w.invoice_number, w.payer_type, w.amount_cents, w.written_off_on"
                                  + scope.format("write_off", "w") + " AND w.written_off_on <= :d ORDER BY w.id", params)
    write_offs["amount_cents"] = _cents(write_offs["amount_cents"])
    write_offs["written_off_on"] = as_dates(write_offs["written_off_on"])
    exceptions = load_exceptions(conn, as_of, within=patients)
    # Their owners' ids gathered in the database (what staging them from here cost more than reading them).
    conn.exec_driver_sql("DROP TABLE IF EXISTS wanted_patient")
    conn.execute(text(_OWNERS + _within("e.patient_id", patients)[0]), {**params, **bounds})
    conn.exec_driver_sql("DROP TABLE open_invoice")
    return Snapshot(as_of, _typed_invoices(invoices), _typed_allocations(allocations), _typed_transfers(transfers),
                    exceptions, _wanted_patients(conn), write_offs.reset_index(drop=True))


# The patients of the open invoices and of the credits and queued payments load_exceptions reads on :d.
_OWNERS = ("CREATE TEMPORARY TABLE wanted_patient AS SELECT patient_id AS value FROM open_invoice UNION "
           "SELECT e.patient_id FROM payment_exception e LEFT JOIN payment p ON p.payment_id = e.payment_id "
           "WHERE e.patient_id IS NOT NULL AND (p.payment_date IS NULL OR p.payment_date <= :d)")


def _per_share(column: str, amount: str) -> str:
    return ", ".join(f"SUM(CASE WHEN {column} = '{share}' THEN {amount} ELSE 0 END) AS {share}" for share in SHARES)


# Dated by the allocation's own copy of its payment's day (allocation.payment_date, in the covering index): read
# from the index alone, without a lookup of each allocation's payment (1M, the open invoices of a day: 0.50-0.77
# -> 0.24-0.27 s CPU in the sqlite3 shell).
_OPEN_PAID = ("SELECT a.invoice_number, " + _per_share("a.payer_type", "a.amount_cents")
              + " FROM open_invoice o CROSS JOIN allocation a WHERE a.invoice_number = o.invoice_number "
              "AND a.payment_date <= :d GROUP BY a.invoice_number")


def _summed_open_allocations(conn: Connection, as_of: date) -> pd.DataFrame:
    """The open invoices' allocations dated by as_of, summed per invoice in the database (one row each, the three
    shares as columns), spread back to one undated row per share with a sum other than 0 (ALLOCATION_COLUMNS)."""
    paid = read_frame(conn, _OPEN_PAID, {"d": as_of})
    count = len(paid)
    amounts = paid[list(SHARES)].astype("int64").to_numpy().reshape(-1) if count else np.zeros(0, dtype="int64")
    kept = amounts != 0     # a share nothing was paid on (most patient shares still open) adds nothing
    # Text as Python objects, as read_frame gives it (pandas would make Arrow strings of these arrays, which
    # outstanding() then turns back into new objects to look up: 0.3 s at 1M).
    numbers = np.repeat(paid["invoice_number"].to_numpy(dtype=object), len(SHARES))[kept]
    return pd.DataFrame({"invoice_number": pd.Series(numbers, dtype=object),
                         "payer_type": pd.Series(np.tile(np.array(SHARES, dtype=object), count)[kept], dtype=object),
                         "payment_date": np.full(int(kept.sum()), None, dtype=object),
                         "amount_cents": amounts[kept]})


# What the matching engine reads of the patients: their names and their guarantors' (core.reconcile.Ledger).
NAME_COLUMNS = ["patient_id", "last_name", "first_name", "guarantor_last_name", "guarantor_first_name"]
# What the engine reads of each invoice, and the allocations summed per invoice and share.
_MATCHING_COLUMNS = "i.invoice_number, i.compact_number, i.patient_id, i.issue_date, i.amo_cents, i.amc_cents, i.patient_cents"
_MATCHING_INTS = ["amo_cents", "amc_cents", "patient_cents", "row_id"]      # read_columns' whole numbers
_MATCHING_PATIENTS = f"SELECT {', '.join(NAME_COLUMNS)} FROM patient"
_PAID_PER_INVOICE = ("SELECT invoice_number, " + _per_share("payer_type", "amount_cents")
                     + " FROM allocation GROUP BY invoice_number")
_PAID_WITH_INVOICES = (
    f"SELECT {_MATCHING_COLUMNS}, "
    # CAST: PostgreSQL sums bigints as numeric, which psycopg gives as Decimal objects (3M at 1M invoices)
    + ", ".join(f"CAST(COALESCE(a.{share}, 0) AS BIGINT) AS paid_{share}" for share in SHARES)
    + f" FROM invoice i LEFT JOIN ({_PAID_PER_INVOICE}) a ON a.invoice_number = i.invoice_number ORDER BY i.invoice_number")
# PostgreSQL: the same, with each invoice's latest allocation's payment day as days since 1970-01-01 (NULL: none): a
# date less a date is an integer (at 1M, to_char's yyyymmdd cost the group by 0.33 s of the server's CPU, this 0.02 s).
_PAID_DAY_WITH_INVOICES = _PAID_WITH_INVOICES.replace(
    " FROM allocation GROUP BY", ", MAX(payment_date) - DATE '1970-01-01' AS last_paid FROM allocation GROUP BY").replace(
    " FROM invoice i LEFT JOIN", ", a.last_paid FROM invoice i LEFT JOIN")


# What matching_snapshot reads, read beside a run's explicit pass (matching_before): the invoices with the sums paid on
# them up to an allocation id (:mark, the last one then), and each invoice's row id (what the pass's allocations are
# keyed by, db.explicit.paid_shares: SQLite's rowid, PostgreSQL's place of the row).
_PAID_UP_TO = ("SELECT invoice_number, " + _per_share("payer_type", "amount_cents")
               + " FROM allocation WHERE id <= :mark GROUP BY invoice_number")
_PAID_SINCE = ("SELECT invoice_number, " + _per_share("payer_type", "amount_cents")
               + " FROM allocation WHERE id > :mark GROUP BY invoice_number")


def _row_id(conn: Connection) -> str:
    """What keys an invoice's row for the explicit pass's allocations read back (db.explicit.paid_shares): SQLite's
    rowid, PostgreSQL's place of the row (db.explicit.INVOICE_PLACE)."""
    return "i.rowid" if conn.dialect.name == "sqlite" else INVOICE_PLACE


def _invoices_paid_up_to(row_id: str | None, paid: bool = True) -> str:
    """The invoices with the sums paid on them up to :mark (`paid`; else without those columns: nothing allocated),
    and each one's `row_id` (_row_id) when given."""
    if not paid:
        return f"SELECT {_MATCHING_COLUMNS}" + (f", {row_id} AS row_id" if row_id else "") + " FROM invoice i " \
               "ORDER BY i.invoice_number"
    return (f"SELECT {_MATCHING_COLUMNS}, " + (f"{row_id} AS row_id, " if row_id else "")
            + ", ".join(f"CAST(COALESCE(a.{share}, 0) AS BIGINT) AS paid_{share}" for share in SHARES)
            + f" FROM invoice i LEFT JOIN ({_PAID_UP_TO}) a ON a.invoice_number = i.invoice_number "
            "ORDER BY i.invoice_number")


@dataclass
class LedgerBefore:
    """matching_snapshot's reads up to allocation `mark` (matching_before): invoices (without what was paid on them),
    what was paid on each share of them up to the mark (`paid`, as Snapshot.paid), each invoice's row id (`row_ids`,
    _row_id: SQLite's rowid, PostgreSQL's place of the row; None: not read), and the patients (NAME_COLUMNS)."""
    invoices: pd.DataFrame
    paid: np.ndarray
    mark: int
    row_ids: np.ndarray | None
    patients: pd.DataFrame


def readable_beside(conn: Connection) -> bool:
    """Whether another connection may read the database while this one writes, seeing what was committed before
    (matching_before's read in a thread): SQLite in WAL mode (a file: not an in-memory database)."""
    if conn.dialect.name != "sqlite":
        return False
    return wal_mode(conn)


def allocated_so_far(conn: Connection) -> tuple[int, bool]:
    """(the last allocation's id, 0: none; whether any allocation is stored): where matching_before's sums stop, and
    whether it reads any. Read by the run on its own connection before its explicit pass, for a read beside the pass
    (app.reconcile._LedgerBeside): a first run's pass sets the allocation table's indexes and keys aside (db.explicit,
    an ACCESS EXCLUSIVE lock on PostgreSQL until the run commits), so a reader beside it must not touch the table
    (it would wait for the run, which waits for it); a table with allocations keeps them."""
    mark = int(conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM allocation").scalar_one())
    return mark, conn.exec_driver_sql("SELECT 1 FROM allocation LIMIT 1").first() is not None


def matching_before(conn: Connection, so_far: tuple[int, bool] | None = None) -> LedgerBefore:
    """What matching_snapshot reads, as it stands now: what a run may read on another connection while its explicit
    pass allocates (app.reconcile); matching_snapshot then adds what was allocated after (the pass's allocations).
    `so_far`: allocated_so_far(), read on the run's connection (None: read here); with none allocated, the allocation
    table is not read at all."""
    mark, allocated = allocated_so_far(conn) if so_far is None else so_far
    row_id = _row_id(conn)
    if allocated:
        invoices, paid = _invoices_with_paid(conn, _invoices_paid_up_to(row_id), {"mark": mark})
    else:   # nothing allocated yet (a first run): no sums to join and read (1M: 2.2 -> 1.7 s of SQLite)
        invoices = read_columns(conn, _invoices_paid_up_to(row_id, paid=False), None, _MATCHING_INTS)
        paid = np.zeros((len(invoices), len(SHARES)), dtype="int64")
    row_ids = invoices.pop("row_id").to_numpy(dtype="int64")
    return LedgerBefore(invoices, paid, mark, row_ids, read_columns(conn, _MATCHING_PATIENTS))


def _invoices_with_paid(conn: Connection, sql: str, params: dict | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """The invoices the engine reads (by columns, db.bulk.read_columns), and their sums paid per share (the query's
    paid_<share> columns) taken off as a matrix of cents, a row an invoice."""
    paid_columns = [f"paid_{share}" for share in SHARES]
    invoices = read_columns(conn, sql, params, _MATCHING_INTS + paid_columns)
    paid = (invoices[paid_columns].to_numpy(dtype="int64") if len(invoices)
            else np.zeros((0, len(SHARES)), dtype="int64"))
    return invoices.drop(columns=paid_columns), paid


def matching_snapshot(conn: Connection, before: LedgerBefore | None = None,
                      pass_paid: PassPaid | None = None) -> Snapshot:
    """The undated snapshot (everything recorded) narrowed to what the matching engine reads (core.ledger.due_matrix
    and core.reconcile.Ledger): invoices without their due date and mutuelle, patients with their names only
    (NAME_COLUMNS), no credits or queue; allocations summed in the database per invoice and share, read on the
    invoices' own rows (Snapshot.paid: not a million invoice numbers read a second time and looked up again).
    A million invoices: half the rows and a third of the text load_snapshot(conn, None) reads.
    `before`: the invoices, patients and sums paid already read up to an allocation (matching_before, before this
    transaction allocated what it did): what was allocated after is added (_paid_since; `pass_paid`: the explicit
    pass's allocations already read back, db.explicit.paid_shares, else read there)."""
    if before is None:
        invoices, paid = _invoices_with_paid(conn, _PAID_WITH_INVOICES)
        patients = read_columns(conn, _MATCHING_PATIENTS)
    else:
        invoices, patients = before.invoices, before.patients
        paid = before.paid + _paid_since(conn, before, pass_paid)
    return _matching(conn, invoices, paid, patients)


def matching_snapshot_dated(conn: Connection) -> tuple[Snapshot, np.ndarray | None]:
    """PostgreSQL: matching_snapshot(conn) (the whole ledger read in this transaction), and each invoice's latest
    allocation's payment day as days since 1970-01-01 (-1: none), on the invoices' rows, read by the same group by
    (what app.reconcile._settled_by_outcome takes for the allocations made before the engine's, a first run's
    explicit pass's, when the ledger was not read beside the pass). Elsewhere: matching_snapshot(conn) and None
    (SQLite reads the pass's days back from its table, db.explicit.paid_shares)."""
    if conn.dialect.name != "postgresql":
        return matching_snapshot(conn), None
    invoices, paid = _invoices_with_paid(conn, _PAID_DAY_WITH_INVOICES)
    found = invoices.pop("last_paid").to_numpy(dtype=object, copy=True)
    none = pd.isna(found)
    found[none] = -1
    days: np.ndarray | None = found.astype(np.int64)
    if days is not None and (days[~none] < 0).any():    # a day before 1970: told apart from none no more (never:
        days = None                                      # let the caller settle in the database)
    return _matching(conn, invoices, paid, read_columns(conn, _MATCHING_PATIENTS)), days


def _matching(conn: Connection, invoices: pd.DataFrame, paid: np.ndarray, patients: pd.DataFrame) -> Snapshot:
    for column in ("amo_cents", "amc_cents", "patient_cents"):
        invoices[column] = _cents(invoices[column])
    invoices["issue_date"] = as_dates(invoices["issue_date"])
    allocations = pd.DataFrame({"invoice_number": pd.Series(dtype=object), "payer_type": pd.Series(dtype=object),
                                "payment_date": pd.Series(dtype=object), "amount_cents": pd.Series(dtype="int64")})
    transfers = read_frame(conn, "SELECT t.id AS transfer_id, t.invoice_number, t.from_payer, t.amount_cents, "
                                 "t.transfer_date, t.reversed_on, t.notified FROM share_transfer t ORDER BY t.id")
    exceptions = pd.DataFrame({c: pd.Series(dtype=object) for c in EXCEPTION_COLUMNS})
    return Snapshot(None, invoices, allocations, _typed_transfers(transfers), exceptions, patients,
                    load_write_offs(conn, None), paid=paid)


def _paid_since(conn: Connection, before: LedgerBefore, pass_paid: PassPaid | None = None) -> np.ndarray:
    """What was allocated after `before`'s mark, on its invoices' rows. When those allocations are the run's explicit
    pass's and nothing else (counted), read from the pass's table by invoice row id (_row_id), as integers; else summed
    per invoice in the database and put on the rows by invoice number. `pass_paid`: the pass's, already read."""
    paid = np.zeros((len(before.invoices), len(SHARES)), dtype="int64")
    shares = (pass_paid if pass_paid is not None else paid_shares(conn)) if before.row_ids is not None else None
    if shares is not None and before.row_ids is not None:
        since = conn.execute(text("SELECT COUNT(*) FROM allocation WHERE id > :mark"), {"mark": before.mark})
        keys, cents = shares.shares, shares.cents
        if since.scalar_one() == len(keys):
            rows = pd.Index(before.row_ids).get_indexer(keys // 4)
            if (rows >= 0).all():      # every allocation on an invoice read (always: the run holds the write lock)
                np.add.at(paid, (rows, keys % 4 - 1), cents)
                return paid
    return _paid_on(before.invoices, read_frame(conn, _PAID_SINCE, {"mark": before.mark}))


def _paid_on(invoices: pd.DataFrame, sums: pd.DataFrame) -> np.ndarray:
    """The sums paid per invoice (_PAID_SINCE) on the invoices' rows, 0 where none (an allocation to an
    invoice not read counts nowhere, as in the joined read)."""
    paid = np.zeros((len(invoices), len(SHARES)), dtype="int64")
    if len(sums):
        rows = pd.Index(invoices["invoice_number"]).get_indexer(sums["invoice_number"])
        known = rows >= 0
        paid[rows[known]] = sums[list(SHARES)].to_numpy(dtype="int64")[known]
    return paid


def _patients_of(patients, numbers, invoices: pd.DataFrame) -> tuple[str, ...] | None:
    if patients is not None:
        return patients
    if numbers is not None:
        return tuple(dict.fromkeys(invoices["patient_id"]))
    return None


def load_exceptions(conn: Connection, as_of: date | None, patient_ids: tuple[str, ...] | None = None, *,
                    within: PatientRange | None = None) -> pd.DataFrame:
    """What is left of payments dated by as_of: credits and money waiting in the queue (Snapshot.exceptions).
    Filtered by patient, money in nobody's name is left out; in a range of patients (`within`), it is kept. One
    whose payment row is missing (written by hand) counts whatever the day, undated: the patient is never asked
    for money they may have paid."""
    by_patient, params = _filter("e.patient_id", patient_ids, "p")
    if within is not None:
        ranged, bounds = _within("e.patient_id", within)
        by_patient, params = f" AND (e.patient_id IS NULL OR (1 = 1{ranged}))", {**params, **bounds}
    rows = read_frame(conn, "SELECT e.payment_id, e.kind, e.remaining_cents, e.patient_id, p.payment_date, "
                            "p.payer_type, p.payer_name FROM payment_exception e LEFT JOIN payment p ON "
                            "p.payment_id = e.payment_id WHERE 1 = 1"
                            + (" AND (p.payment_date IS NULL OR p.payment_date <= :d)" if as_of else "")
                            + by_patient + " ORDER BY p.payment_date, e.payment_id", {"d": as_of, **params})
    rows["remaining_cents"] = _cents(rows["remaining_cents"])
    rows["payment_date"] = as_dates(rows["payment_date"])
    return rows


def load_patients(conn: Connection, patient_ids: tuple[str, ...] | None = None) -> pd.DataFrame:
    by_patient, params = _filter("patient_id", patient_ids, "p")
    rows = read_frame(conn, f"SELECT {', '.join(PATIENT_COLUMNS)} FROM patient WHERE 1 = 1" + by_patient, params)
    rows["birth_date"] = as_dates(rows["birth_date"])
    return rows


def load_write_offs(conn: Connection, as_of: date | None, scope: str = "", params: dict | None = None) -> pd.DataFrame:
    """Debts written off by as_of (Snapshot.write_offs); `scope`: the snapshot's filter on invoice `i`."""
    rows = read_frame(conn, "SELECT w.invoice_number, w.payer_type, w.amount_cents, w.written_off_on FROM write_off w "
                            "JOIN invoice i ON i.invoice_number = w.invoice_number WHERE 1 = 1"
                            + (" AND w.written_off_on <= :d" if as_of else "") + scope + " ORDER BY w.id",
                      {"d": as_of, **(params or {})})
    rows["amount_cents"] = _cents(rows["amount_cents"])
    rows["written_off_on"] = as_dates(rows["written_off_on"])
    return rows.reset_index(drop=True)


def _typed_invoices(rows: pd.DataFrame) -> pd.DataFrame:
    for column in ("amo_cents", "amc_cents", "patient_cents"):
        rows[column] = _cents(rows[column])
    rows["issue_date"], rows["due_date"] = as_dates(rows["issue_date"]), as_dates(rows["due_date"])
    return rows.reset_index(drop=True)


def _typed_allocations(rows: pd.DataFrame) -> pd.DataFrame:
    rows["amount_cents"] = _cents(rows["amount_cents"])
    rows["payment_date"] = as_dates(rows["payment_date"])
    return rows


def _typed_transfers(rows: pd.DataFrame) -> pd.DataFrame:
    rows["amount_cents"] = _cents(rows["amount_cents"])
    rows["transfer_id"] = _cents(rows["transfer_id"])
    rows["transfer_date"], rows["reversed_on"] = as_dates(rows["transfer_date"]), as_dates(rows["reversed_on"])
    rows["notified"] = rows["notified"].fillna(False).astype(bool)
    return rows


def patient_allocations_on_moved_shares(conn: Connection, scoped: bool = False) -> pd.DataFrame:
    """Allocations to patient shares of invoices with a share moved onto the patient and not reversed:
    payment_id, invoice_number, amount_cents, payment_date (what the matching engine turns into a credit when
    the insurer pays after all); `scoped`: of the invoices of the last matching_scope only."""
    if scoped:
        rows = read_frame(conn, "SELECT a.payment_id, a.invoice_number, a.amount_cents, p.payment_date FROM scope_invoice "
                                "s CROSS JOIN share_transfer t CROSS JOIN allocation a JOIN payment p ON p.payment_id = "
                                "a.payment_id WHERE t.invoice_number = s.invoice_number AND t.reversed_on IS NULL AND "
                                "a.invoice_number = t.invoice_number AND a.payer_type = 'patient' ORDER BY a.id")
    else:
        # From the standing transfers (tens of thousands) to their invoices' patient allocations by index: SQLite
        # otherwise scanned every allocation (1M invoices: 0.32 -> 0.10 s CPU).
        rows = read_frame(conn, "SELECT a.payment_id, a.invoice_number, a.amount_cents, p.payment_date FROM "
                                "share_transfer t CROSS JOIN allocation a JOIN payment p ON p.payment_id = a.payment_id "
                                "WHERE t.reversed_on IS NULL AND a.invoice_number = t.invoice_number AND "
                                "a.payer_type = 'patient' ORDER BY a.id")
    rows = rows.drop_duplicates()
    rows["payment_date"] = as_dates(rows["payment_date"])
    return rows.reset_index(drop=True)


_SCOPE = """
CREATE TEMPORARY TABLE scope_invoice AS
SELECT i.invoice_number FROM scope_number s CROSS JOIN invoice i WHERE i.invoice_number = s.value
UNION SELECT i.invoice_number FROM scope_compact s CROSS JOIN invoice i WHERE i.compact_number = s.value
UNION SELECT i.invoice_number FROM scope_patient s CROSS JOIN invoice i WHERE i.patient_id = s.value
"""


def _keys(conn: Connection, name: str, values: Iterable[str]) -> None:
    stage(conn, name, pd.DataFrame({"value": pd.Series(sorted(set(values)), dtype=object)}), {}, index="value")


def matching_scope(conn: Connection, invoice_numbers: Iterable[str], compact_numbers: Iterable[str],
                   patient_ids: Iterable[str], named: Iterable[str] = ()) -> Snapshot:
    """The undated snapshot (everything recorded) of the invoices numbered `invoice_numbers`, of those whose
    compact number is one of `compact_numbers` and of every invoice of `patient_ids`, with their patients and the
    patients `named` (the bearers of the payers' names), by their names only (NAME_COLUMNS, in id order, each
    once: what the matching engine reads of them, as matching_snapshot): what a night's payments can touch. Read
    through a temporary table of their numbers (scope_invoice, which patient_allocations_on_moved_shares(scoped=True)
    reads too) joined on indexes, never the whole ledger."""
    for name, values in (("scope_number", invoice_numbers), ("scope_compact", compact_numbers),
                         ("scope_patient", patient_ids)):
        _keys(conn, name, values)
    conn.exec_driver_sql("DROP TABLE IF EXISTS scope_invoice")
    conn.exec_driver_sql(_SCOPE)
    conn.exec_driver_sql("CREATE INDEX scope_invoice_number ON scope_invoice (invoice_number)")
    # From the scope outwards (CROSS JOIN keeps SQLite's planner from scanning the big table first).
    scope = " FROM scope_invoice s CROSS JOIN {0} {1} WHERE {1}.invoice_number = s.invoice_number"
    invoices = read_frame(conn, "SELECT i.invoice_number, i.compact_number, i.patient_id, i.issue_date, i.due_date, "
                                "i.amo_cents, i.amc_cents, i.patient_cents, i.amc_payer" + scope.format("invoice", "i")
                                + " ORDER BY i.invoice_number")
    allocations = read_frame(conn, "SELECT a.invoice_number, a.payer_type, NULL AS payment_date, SUM(a.amount_cents) "
                                   "AS amount_cents" + scope.format("allocation", "a")
                                   + " GROUP BY a.invoice_number, a.payer_type")
    transfers = read_frame(conn, "SELECT t.id AS transfer_id, t.invoice_number, t.from_payer, t.amount_cents, "
                                 "t.transfer_date, t.reversed_on, t.notified" + scope.format("share_transfer", "t")
                                 + " ORDER BY t.id")
    write_offs = read_frame(conn, "SELECT w.invoice_number, w.payer_type, w.amount_cents, w.written_off_on"
                                  + scope.format("write_off", "w") + " ORDER BY w.id")
    write_offs["amount_cents"] = _cents(write_offs["amount_cents"])
    write_offs["written_off_on"] = as_dates(write_offs["written_off_on"])
    # The invoices' patients and the names' bearers in one read of their names: every column of the patients, read
    # twice and their birth dates made dates, cost the 1M history's night 25 ms for what the engine does not read.
    _keys(conn, "wanted_patient", chain(invoices["patient_id"].dropna(), named))
    patients = _wanted_patients(conn, NAME_COLUMNS)
    exceptions = pd.DataFrame({c: pd.Series(dtype=object) for c in EXCEPTION_COLUMNS})
    return Snapshot(None, _typed_invoices(invoices), _typed_allocations(allocations), _typed_transfers(transfers),
                    exceptions, patients, write_offs.reset_index(drop=True))


def _wanted_patients(conn: Connection, columns: Sequence[str] = PATIENT_COLUMNS) -> pd.DataFrame:
    """The patients whose ids the temporary table wanted_patient (value) holds, in id order: their `columns`."""
    # From the ids outwards (CROSS JOIN): else SQLite walks every patient in id order for the ORDER BY.
    rows = read_frame(conn, f"SELECT {', '.join('p.' + c for c in columns)} FROM wanted_patient w "
                            "CROSS JOIN patient p WHERE p.patient_id = w.value ORDER BY p.patient_id")
    if "birth_date" in rows:
        rows["birth_date"] = as_dates(rows["birth_date"])
    return rows


def current_due_cents(conn: Connection, invoice_number: str, share: str) -> int | None:
    """What a payment may still settle now on one share (amo | amc | patient) of an invoice, everything recorded
    counted, as the matching engine sees it (core.ledger.due_matrix on an undated snapshot); None for an
    unknown invoice."""
    snapshot = load_snapshot(conn, None, invoice_numbers=[invoice_number])
    if snapshot.invoices.empty:
        return None
    return int(due_matrix(snapshot)[0, SHARES.index(share)])


def _aged(snapshot: Snapshot, as_of: date, ageing: str, rejection_due_after_days: int) -> pd.DataFrame:
    """outstanding() of the snapshot with each share's payer, its invoice's own due date and its age bucket."""
    shares = outstanding(snapshot, rejection_due_after_days=rejection_due_after_days)
    shares["payer"] = shares["payer_type"].map({"amo": "Assurance Maladie", "patient": "Patients"})
    shares.loc[shares["payer_type"] == "amc", "payer"] = shares["amc_payer"].fillna("Mutuelle")
    due_of = pd.Series(snapshot.invoices["due_date"].to_numpy(dtype=object), index=snapshot.invoices["invoice_number"])
    shares["invoice_due_date"] = shares["invoice_number"].map(due_of)
    shares["bucket"] = age_buckets(as_of, shares["issue_date"], shares["invoice_due_date"], ageing)
    return shares


def share_states(conn: Connection, as_of: date, patient_id: str | None = None,
                 rejection_due_after_days: int = 0, ageing: str = "issue") -> pd.DataFrame:
    """Every share of every invoice (or of one patient's) at the end of `as_of` (core.ledger.outstanding: what
    was expected, paid, moved to the patient by an insurer's rejection and what is still due, in cents), with
    the payer's name, the invoice's own due date (`invoice_due_date`) and the age bucket (core.balance: days
    since issue, or past the invoice's due date with `ageing="due"`)."""
    snapshot = load_snapshot(conn, as_of, None if patient_id is None else [patient_id])
    return _aged(snapshot, as_of, ageing, rejection_due_after_days)


def balance_facts(conn: Connection, as_of: date, ageing: str = "issue") -> tuple[pd.DataFrame, pd.DataFrame,
                                                                                pd.DataFrame]:
    """What the balance's detail reads, from one snapshot at the end of `as_of`: (every share as share_states,
    every patient's money as core.ledger.patient_money, the patients' patient_id, last_name, first_name): the
    shares of the invoices open on that day (open_snapshot; the others owe nothing and have no write-off), every
    patient who owes anything or has money in their name."""
    snapshot = open_snapshot(conn, as_of)
    shares = _aged(snapshot, as_of, ageing, 0)
    return shares, patient_money(snapshot, table=shares), snapshot.patients[["patient_id", "last_name", "first_name"]]


def outstanding_shares(conn: Connection, as_of: date, ageing: str = "issue") -> pd.DataFrame:
    """Every share with money still due at the end of `as_of`: invoice, patient, payer type, payer, age, cents.
    Read from the invoices open on that day only (open_snapshot)."""
    shares = _aged(open_snapshot(conn, as_of), as_of, ageing, 0)
    shares = shares[shares["due_cents"] > 0].copy()
    return shares[["invoice_number", "patient_id", "payer_type", "payer", "issue_date", "due_date", "bucket",
                   "due_cents"]]


def _dues(prefix: str) -> str:
    """The columns of `due`: each share's expected, paid, moved_out, moved_in, written_off and due_cents."""
    zero = {share: "0" for share in SHARES}
    moved_in = {**zero, "patient": " + ".join(f"COALESCE(moved.{s}, 0)" for s in SHARES)}
    columns = []
    for share in SHARES:
        parts = {"expected": f"COALESCE({prefix}{share}_cents, 0)", "paid": f"COALESCE(paid.{share}, 0)",
                 "moved_out": f"COALESCE(moved.{share}, 0)", "moved_in": moved_in[share],
                 "written_off": f"COALESCE(off.{share}, 0)"}
        columns += [f"{value} AS {name}_{share}" for name, value in parts.items()]
        columns.append("{expected} - {paid} - {moved_out} + ({moved_in}) - {written_off} AS due_{share}".format(
            share=share, **parts))
    return ", ".join(columns)


# What outstanding() computes per share (due = expected - paid - moved_out + moved_in - written_off) at the end of
# :d, in the database, for the invoices of `o` (formatted in: `{scope}` filters the invoice table, `{start}` is the
# date the age counts from). From those invoices outwards (CROSS JOIN keeps SQLite's planner from scanning the big
# tables first).
_DUES = f"""
WITH o AS (SELECT invoice_number, patient_id, issue_date, due_date, total_cents, amo_cents, amc_cents, patient_cents,
                  amc_payer, {{start}} AS start FROM invoice WHERE issue_date <= :d AND {{scope}}),
paid AS (SELECT a.invoice_number AS n, {_per_share("a.payer_type", "a.amount_cents")}
         FROM o CROSS JOIN allocation a CROSS JOIN payment p WHERE a.invoice_number = o.invoice_number
         AND p.payment_id = a.payment_id AND p.payment_date <= :d GROUP BY a.invoice_number),
moved AS (SELECT t.invoice_number AS n, {_per_share("t.from_payer", "t.amount_cents")}
          FROM o CROSS JOIN share_transfer t WHERE t.invoice_number = o.invoice_number AND t.transfer_date <= :d
          AND (t.reversed_on IS NULL OR t.reversed_on > :d) GROUP BY t.invoice_number),
off AS (SELECT w.invoice_number AS n, {_per_share("w.payer_type", "w.amount_cents")}
        FROM o CROSS JOIN write_off w WHERE w.invoice_number = o.invoice_number AND w.written_off_on <= :d
        GROUP BY w.invoice_number),
due AS (SELECT o.*, {_dues("o.")}
        FROM o LEFT JOIN paid ON paid.n = o.invoice_number LEFT JOIN moved ON moved.n = o.invoice_number
        LEFT JOIN off ON off.n = o.invoice_number)
"""

# The dues of the open invoices, each share counted when positive, per age bucket and mutuelle.
_AGED = _DUES + """
, aged AS (SELECT CASE {not_due} WHEN start >= :b30 THEN '0-30' WHEN start >= :b60 THEN '31-60'
                       WHEN start >= :b90 THEN '61-90' ELSE '>90' END AS bucket, amc_payer, due_amo, due_amc,
                  due_patient FROM due)
SELECT bucket, amc_payer, SUM(CASE WHEN due_amo > 0 THEN due_amo ELSE 0 END),
       SUM(CASE WHEN due_amc > 0 THEN due_amc ELSE 0 END), SUM(CASE WHEN due_patient > 0 THEN due_patient ELSE 0 END)
FROM aged GROUP BY bucket, amc_payer
"""

# Per patient: the dues of their open invoices, each share counted when positive, the invoices with any, and the
# credits and money waiting in their name (core.ledger.patient_money's), with their names.
_PATIENTS = _DUES + """
, owed AS (SELECT patient_id, SUM(CASE WHEN due_amo > 0 THEN due_amo ELSE 0 END) AS amo,
                  SUM(CASE WHEN due_amc > 0 THEN due_amc ELSE 0 END) AS amc,
                  SUM(CASE WHEN due_patient > 0 THEN due_patient ELSE 0 END) AS patient,
                  SUM(CASE WHEN due_amo > 0 OR due_amc > 0 OR due_patient > 0 THEN 1 ELSE 0 END) AS open_invoices
           FROM due GROUP BY patient_id),
money AS (SELECT patient_id, amo, amc, patient, open_invoices, 0 AS credit, 0 AS pending FROM owed
          UNION ALL
          SELECT e.patient_id, 0, 0, 0, 0, CASE WHEN e.kind = 'credit' THEN e.remaining_cents ELSE 0 END,
                 CASE WHEN e.kind = 'credit' THEN 0 ELSE e.remaining_cents END
          FROM payment_exception e LEFT JOIN payment p ON p.payment_id = e.payment_id
          WHERE e.patient_id IS NOT NULL AND (p.payment_date IS NULL OR p.payment_date <= :d))
SELECT m.patient_id, n.last_name, n.first_name, SUM(m.open_invoices), SUM(m.amo), SUM(m.amc), SUM(m.patient),
       SUM(m.credit), SUM(m.pending)
FROM money m LEFT JOIN patient n ON n.patient_id = m.patient_id GROUP BY m.patient_id, n.last_name, n.first_name
"""


def patient_balance(conn: Connection, as_of: date) -> pd.DataFrame:
    """The balance's per-patient detail at the end of `as_of` (core.balance.PATIENT_DETAIL, by patient id): every
    patient who owes anything (to any payer) or has a credit or money waiting in their name; the payer columns are
    each share's due when positive, added up in the database over the invoices open on that day, as
    core.balance.patient_detail() adds up balance_facts() (tests/app/test_balance_sums.py)."""
    rows = []
    for patient_id, last, first, *cents in conn.execute(text(_PATIENTS.format(start="issue_date", scope=OPEN_ON)),
                                                        {"d": as_of}).all():
        count, amo, amc, patient, credit, pending = (int(c or 0) for c in cents)
        total = amo + amc + patient
        if total > 0 or credit > 0 or pending > 0:
            rows.append((patient_id, last, first, count, amo, amc, patient, total, credit, pending,
                         max(patient - credit, 0)))
    rows.sort(key=lambda row: row[0])
    values = list(zip(*rows)) or [()] * len(PATIENT_DETAIL)
    return pd.DataFrame({column: pd.Series(list(column_values), dtype=object if k < 3 else "int64")
                         for k, (column, column_values) in enumerate(zip(PATIENT_DETAIL, values))})


# Per invoice open on :d: what the balance's invoice detail lists (a share still due, or a write-off).
_INVOICES = _DUES + """
SELECT invoice_number, patient_id, issue_date, due_date, amc_payer,
       expected_amo + expected_amc + expected_patient AS amount, paid_amo + paid_amc + paid_patient AS paid,
       written_off_amo + written_off_amc + written_off_patient AS written_off, due_amo, due_amc, due_patient,
       written_off_amo > 0 OR written_off_amc > 0 OR written_off_patient > 0 AS any_written_off
FROM due WHERE due_amo > 0 OR due_amc > 0 OR due_patient > 0
      OR written_off_amo + written_off_amc + written_off_patient > 0
"""
INVOICE_BALANCE = ("invoice_number", "patient_id", "issue_date", "due_date", "amount", "paid", "written_off",
                   "amo_remaining", "amc_remaining", "patient_remaining", "remaining", "mutuelle", "age_bucket",
                   "awaited", "any_written_off")


def invoice_balance(conn: Connection, as_of: date, ageing: str = "issue") -> pd.DataFrame:
    """The balance's per-invoice detail at the end of `as_of` without its state (core.balance.INVOICE_DETAIL but
    `state`, in invoice order), plus `awaited` (an insurer's share still due) and `any_written_off` (a share
    written off): every invoice open on that day with a share still due or a write-off, its dues computed in the
    database (remaining: each share's due when positive), its age bucket by core.balance.age_buckets."""
    read = read_frame(conn, _INVOICES.format(start="issue_date", scope=OPEN_ON), {"d": as_of})
    # In invoice order, sorted here: the same order (code points) whichever database collates the text.
    read = read.iloc[np.argsort(read["invoice_number"].to_numpy(dtype=object), kind="stable")]
    cents = {column: read[column].to_numpy(dtype="int64") for column in
             ("amount", "paid", "written_off", "due_amo", "due_amc", "due_patient")}
    remaining = [np.clip(cents[column], 0, None) for column in ("due_amo", "due_amc", "due_patient")]
    issue_dates = as_dates(pd.Series(read["issue_date"].to_numpy(dtype=object), dtype=object))
    due_dates = as_dates(pd.Series(read["due_date"].to_numpy(dtype=object), dtype=object))
    frame = pd.DataFrame({
        "invoice_number": pd.Series(read["invoice_number"].to_numpy(dtype=object), dtype=object),
        "patient_id": pd.Series(read["patient_id"].to_numpy(dtype=object), dtype=object),
        "issue_date": issue_dates, "due_date": due_dates,
        "amount": cents["amount"], "paid": cents["paid"], "written_off": cents["written_off"],
        "amo_remaining": remaining[0], "amc_remaining": remaining[1], "patient_remaining": remaining[2],
        "remaining": remaining[0] + remaining[1] + remaining[2],
        "mutuelle": pd.Series(read["amc_payer"].to_numpy(dtype=object), dtype=object),
        "age_bucket": age_buckets(as_of, issue_dates, due_dates, ageing),
        "awaited": (cents["due_amo"] > 0) | (cents["due_amc"] > 0),
        "any_written_off": read["any_written_off"].to_numpy(dtype=object).astype(bool)})
    return frame[list(INVOICE_BALANCE)]


SHARE_FIELDS = ("expected", "paid", "moved_out", "moved_in", "written_off", "due")


@dataclass(frozen=True)
class ShareSums:
    """One share of an invoice at the end of a day, in cents, as core.ledger.outstanding() counts it."""
    payer_type: str
    expected: int
    paid: int
    moved_out: int
    moved_in: int
    written_off: int
    due: int


@dataclass(frozen=True)
class InvoiceSums:
    invoice_number: str
    issue_date: date
    due_date: date
    total_cents: int
    amc_payer: str | None
    shares: tuple[ShareSums, ...]      # amo, amc, patient


def patient_invoice_sums(conn: Connection, patient_id: str, as_of: date) -> list[InvoiceSums]:
    """Every invoice of the patient issued by `as_of`, in invoice order, with its three shares at the end of that
    day (expected, paid, moved by an insurer's rejection, written off, due: outstanding()'s figures), computed in
    the database from the patient's rows only (one indexed query, whatever the size of the ledger)."""
    rows = conn.execute(text(_DUES.format(start="issue_date", scope="patient_id = :p")
                             + "SELECT * FROM due ORDER BY invoice_number"), {"d": as_of, "p": patient_id})
    keys = [(share, [f"{name}_{share}" for name in SHARE_FIELDS]) for share in SHARES]
    found = []
    for row in rows.mappings().all():
        shares = tuple(ShareSums(share, *(int(row[key]) for key in names)) for share, names in keys)
        found.append(InvoiceSums(row["invoice_number"], as_date(row["issue_date"]), as_date(row["due_date"]),
                                 int(row["total_cents"] or 0), row["amc_payer"], shares))
    return found


def patient_credits(conn: Connection, patient_id: str, as_of: date) -> tuple[int, int]:
    """(credits, money waiting in the queue) in the patient's name at the end of `as_of`, in cents: what
    core.ledger.patient_money() counts from load_exceptions' rows (a row whose payment is missing counts whatever
    the day)."""
    rows = conn.execute(text("SELECT e.kind = 'credit' AS credit, SUM(e.remaining_cents) FROM payment_exception e "
                             "LEFT JOIN payment p ON p.payment_id = e.payment_id WHERE e.patient_id = :p AND "
                             "(p.payment_date IS NULL OR p.payment_date <= :d) GROUP BY e.kind = 'credit'"),
                        {"p": patient_id, "d": as_of}).all()
    sums = {bool(credit): int(cents or 0) for credit, cents in rows}
    return sums.get(True, 0), sums.get(False, 0)


def aged_sums(conn: Connection, as_of: date, ageing: str = "issue") -> list[tuple[str, str | None, int, int, int]]:
    """(bucket, mutuelle or None, AMO cents, AMC cents, patient cents) still due at the end of `as_of`: every share's
    due as outstanding() computes it, each counted when positive, added up in the database per age bucket
    (core.balance.age_buckets: days since issue, or past the invoice's own due date with `ageing="due"`) and
    mutuelle, over the invoices open on that day (db.open_items)."""
    bucket_columns(ageing)
    sql = _AGED.format(start="due_date" if ageing == "due" else "issue_date", scope=OPEN_ON,
                       not_due="WHEN start > :d THEN 'not-due'" if ageing == "due" else "")
    # age_buckets' bins on days: age <= 30 is 0-30 and so on, i.e. start on or after as_of - 30 days.
    bounds = {f"b{days}": as_of - timedelta(days=days) for days in (30, 60, 90)}
    rows = conn.execute(text(sql), {"d": as_of, **bounds}).all()
    return [(bucket, payer, int(amo or 0), int(amc or 0), int(patient or 0)) for bucket, payer, amo, amc, patient in rows]


def aged_balance(conn: Connection, as_of: date, ageing: str = "issue") -> pd.DataFrame:
    """Rows: by payer type, then by mutuelle; columns: the age buckets (core.balance: days since issue, or past
    the due date with `ageing="due"`, which adds `not-due` in front) and the total, in cents. Summed in the
    database (aged_sums), equal to grouping outstanding_shares() (tests/app/test_balance_sums.py)."""
    columns = list(bucket_columns(ageing))
    by_type: dict[str, dict[str, int]] = {}
    by_payer: dict[str, dict[str, int]] = {}
    for bucket, payer, *cents in aged_sums(conn, as_of, ageing):
        for share, amount in zip(SHARES, cents):
            if amount > 0:
                row = by_type.setdefault(f"type:{share}", dict.fromkeys(columns, 0))
                row[bucket] += amount
        if cents[1] > 0:
            row = by_payer.setdefault(f"mutuelle:{'Mutuelle' if payer is None else payer}", dict.fromkeys(columns, 0))
            row[bucket] += cents[1]
    keys = sorted(by_type) + sorted(by_payer)
    rows = {**by_type, **by_payer}
    table = pd.DataFrame([[rows[k][c] for c in columns] for k in keys], index=keys,
                         columns=pd.Index(columns, name="bucket"), dtype="int64")
    table["total"] = table.sum(axis=1).astype("int64")
    return table
