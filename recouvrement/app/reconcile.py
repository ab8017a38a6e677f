"""Reconciliation use cases: the nightly matching run, manual match/unmatch, the queue and balance."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from recouvrement.audit import append_event
from recouvrement.core.ledger import Snapshot, due_matrix
from recouvrement.core.reconcile import (Ledger, Outcome, name_scope, payer_name_keys, payment_reach, reconcile,
                                         referenced_numbers, rf_references, rf_references_in, touched_invoices)
from recouvrement.db import changes, explicit, name_index, open_items, remittances, retries
from recouvrement.db import reconcile as store
from recouvrement.db.bulk import build_indexes, bulk_insert
from recouvrement.db.ledger import (LedgerBefore, allocated_so_far, current_due_cents, matching_before, matching_scope,
                                    matching_snapshot, matching_snapshot_dated, patient_allocations_on_moved_shares,
                                    readable_beside)
from recouvrement.db.letter_references import letter_invoices
from recouvrement.db.queue import WAITING, NoLongerWaiting
from recouvrement.db.session import (Beside, bulk_cache, bulk_transaction, reading_beside,
                                     release_freed_memory, view_beside, writing)
from recouvrement.db.values import is_iso_day
from recouvrement.errors import RecouvrementError
from recouvrement.money import format_eur
from recouvrement.importers.base import PAYMENT_COLUMNS

RETRIED = store.RETRIED      # queue entries a later run tries again (new invoices may fit)


@dataclass
class ReconcileReport:
    payments: int = 0
    allocated_payments: int = 0
    allocations: int = 0
    allocated_cents: int = 0
    by_rule: dict | None = None
    exceptions: dict | None = None
    transfers: int = 0
    reversals: int = 0
    skipped: bool = False
    # Wall and CPU seconds of the run's stages: read (payments, letters, ledger), explicit (the set-based pass,
    # reads and writes in the database), match (the engine), write (allocations, queue, audit, commit).
    stages: dict[str, tuple[float, float]] = field(default_factory=dict)


class _Laps:
    """Each stage's wall and CPU seconds (process_time: the process, every thread), a lap charged to the stage
    it ends."""

    def __init__(self) -> None:
        self.seconds: dict[str, tuple[float, float]] = {}
        self._last = (time.perf_counter(), time.process_time())

    def lap(self, stage: str) -> dict[str, tuple[float, float]]:
        now = (time.perf_counter(), time.process_time())
        wall, cpu = self.seconds.get(stage, (0.0, 0.0))
        self.seconds[stage] = (wall + now[0] - self._last[0], cpu + now[1] - self._last[1])
        self._last = now
        return self.seconds


def _iso(values: pd.Series) -> pd.Series:
    """Dates as ISO text, as the matching engine compares them (converted once per distinct date)."""
    codes, uniques = pd.factorize(values)
    text_dates = np.array([d if isinstance(d, str) else d.isoformat() for d in uniques] + [None], dtype=object)
    return pd.Series(text_dates[codes], index=values.index, dtype=object)


def load_ledger(conn: Connection, before: LedgerBefore | None = None,
                pass_paid: explicit.PassPaid | None = None) -> Ledger:
    """The matching engine's view: every invoice with what is still due on its three shares, everything
    recorded counted whatever its date (core.ledger.due_matrix on an undated snapshot, db.ledger.matching_snapshot:
    only what the engine reads). `before`: its invoices, patients and sums paid already read (_LedgerBeside);
    `pass_paid`: the explicit pass's allocations already read back (db.explicit.paid_shares)."""
    snapshot = matching_snapshot(conn, before, pass_paid)
    return _ledger(snapshot, snapshot.patients, patient_allocations_on_moved_shares(conn))


def load_ledger_dated(conn: Connection) -> tuple[Ledger, np.ndarray | None]:
    """load_ledger(conn), and on PostgreSQL each invoice's latest allocation's payment day on its rows (the integers
    yyyymmdd, -1: none; None elsewhere): a first run's are its explicit pass's, which _settled_by_outcome takes
    (read back from the pass's table with the ledger read beside the pass instead: db.explicit.paid_shares)."""
    snapshot, days = matching_snapshot_dated(conn)
    return (_ledger(snapshot, snapshot.patients, patient_allocations_on_moved_shares(conn)),
            None if days is None else explicit.epoch_day_numbers(days))


def load_ledger_for(conn: Connection, payments: pd.DataFrame, letters: pd.DataFrame,
                    reach: pd.DataFrame | None = None) -> Ledger:
    """The part of the matching engine's view these payments can touch, read through the store's indexes: the
    invoices their lines and references may designate (core.reconcile.referenced_numbers, `letters` the
    letters they quote), the patients their payers' names may be (the name index) and every invoice of a
    name's only patient. The engine decides the same on it as on the whole ledger (a test holds it).
    `reach`: the payments' reach already read (_reach: the same numbers, and the same patients by name)."""
    if reach is None:
        numbers, compacts = referenced_numbers(payments, letters)
        keys = payer_name_keys(payments)
        named, sole = name_scope(keys, name_index.patients_named(conn, keys))
    else:
        kind, value = reach["key"].str.slice(0, 2), reach["key"].str.slice(2)
        numbers, compacts = sorted(set(value[kind == "n:"])), sorted(set(value[kind == "c:"]))
        by_name = reach["named"].astype(bool)
        named, sole = sorted(set(value[by_name])), sorted(set(value[by_name & (kind == "p:")]))
    snapshot = matching_scope(conn, numbers, compacts, sole, named)
    return _ledger(snapshot, snapshot.patients, patient_allocations_on_moved_shares(conn, scoped=True))


def _ledger(snapshot: Snapshot, patients: pd.DataFrame, earlier: pd.DataFrame) -> Ledger:
    due = due_matrix(snapshot)
    invoices = snapshot.invoices[["invoice_number", "compact_number", "patient_id", "issue_date"]].copy()
    invoices["issue_date"] = _iso(invoices["issue_date"])
    transfers = snapshot.transfers
    transfers = transfers[transfers["reversed_on"].isna()][["transfer_id", "invoice_number", "from_payer",
                                                             "amount_cents"]].reset_index(drop=True)
    patients = patients[["patient_id", "last_name", "first_name", "guarantor_last_name",
                         "guarantor_first_name"]].copy()
    earlier = earlier.copy()
    earlier["payment_date"] = _iso(earlier["payment_date"])
    return Ledger(invoices, due, patients, transfers, earlier)


def _with_clawbacks(conn: Connection, payments: pd.DataFrame, ledger: Ledger) -> Ledger:
    """The ledger, with the insurer allocations a clawback may reverse when there is one to apply."""
    clawed = payments.loc[payments["status"] == "clawback", "invoice_number"].dropna()
    if len(clawed):
        ledger.insurer_allocated = remittances.insurer_allocations(conn, clawed.tolist())
    return ledger


def _watermark(conn: Connection) -> str:
    invoices, payments = store.counts(conn)
    return f"{invoices}:{payments}"


def pending_payments(conn: Connection, last_id: int, retried: list[str] | None = None,
                     settled: bool = False, aside: pd.DataFrame | None = None) -> pd.DataFrame:
    """New payments (up to row `last_id`; `settled`: but those the explicit pass settled; `aside`: those it never
    settles, already read) and the queue entries to try again (`retried`; None: all of them)."""
    payments = store.pending_payments(conn, last_id, PAYMENT_COLUMNS, retried, settled, aside)
    payments["payment_date"] = _iso(payments["payment_date"])
    return payments


# Above one pending payment for this many invoices, reading the whole ledger once costs less than reading
# each payment's part of it (a first run, a big backlog); below, the night reads only what it can touch.
WHOLE_LEDGER_RATIO = 4


def _reads_whole_ledger(payments: pd.DataFrame, invoices: int) -> bool:
    return len(payments) * WHOLE_LEDGER_RATIO > invoices


class _LedgerBeside:
    """A run that will read the whole ledger: its invoices, patients and the sums paid on them so far
    (db.ledger.matching_before; the explicit pass's allocations are added after) read on a second connection in a
    thread while the pass runs; then, given the run's last payment row (`last_id`), the new payments the pass never
    settles (db.reconcile.payments_the_pass_leaves: no invoice named, not paid; 1M first run: 496,476 of the 541,085
    left to the engine), which the read after the pass then leaves out (db.reconcile.pending_payments, `aside`).
    SQLite steps the pass's statements without the GIL, and PostgreSQL's server runs them on one core while the run
    waits, so the reads take the second core (SQLite, 1M invoices: ~2 s of the read stage each). The payments are read
    first: SQLite's pass takes the invoices their rejection lines name from them (rejected_invoices) once its lines are
    staged (1M first run: ~3 s after it began, the payments read in ~2.2 s), where it scanned every new payment for
    them (PostgreSQL's pass wants them at its very start: it scans for them, see run_reconcile).
    The run holds the database's write lock: the other connection sees what the run's transaction saw before it
    allocated, no other writer's commit (PostgreSQL: in the run's snapshot, db.session.reading_beside). The
    allocation table is never touched beside a first run's pass, which sets its indexes aside (an exclusive lock on
    PostgreSQL until the run commits): where the sums stop and whether there are any is read on the run's connection
    (db.ledger.allocated_so_far), and with none allocated the sums are not read. A statement that waits for a lock on
    PostgreSQL fails rather than wait for the run (db.session.BESIDE_LOCK_WAIT_MS). Given up (None) when a read fails
    (the run then reads on its own connection after the pass), or when the database is SQLite not in WAL mode."""

    def __init__(self, engine: Engine, conn: Connection, last_id: int | None = None) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._read: Future | None = None
        self._payments: Future | None = None
        self._left: pd.DataFrame | None = None
        seen = view_beside(conn)
        if seen is not None:
            so_far = allocated_so_far(conn)
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-read")
            if last_id is not None:
                self._payments = self._pool.submit(self._left_by_the_pass, engine, seen,
                                                   store.unreconciled(conn, "p"), last_id)
            self._read = self._pool.submit(self._before, engine, seen, so_far)

    @staticmethod
    def _before(engine: Engine, seen: Beside, so_far: tuple[int, bool]) -> LedgerBefore:
        with reading_beside(engine, seen) as other:
            return matching_before(other, so_far)

    @staticmethod
    def _left_by_the_pass(engine: Engine, seen: Beside, pending: str, last_id: int) -> pd.DataFrame:
        with reading_beside(engine, seen) as other:
            return store.payments_the_pass_leaves(other, pending, last_id, PAYMENT_COLUMNS)

    @property
    def reading(self) -> bool:
        """Whether the reads were begun (a thread reads beside the run)."""
        return self._pool is not None

    def result(self) -> LedgerBefore | None:
        """What was read of the ledger (waiting for every read), once; None: not read."""
        if self._read is None or self._pool is None:
            return None
        read, self._read = self._read, None
        try:
            return read.result()
        except OperationalError:
            return None
        finally:
            self._pool.shutdown()

    def _payments_read(self) -> pd.DataFrame | None:
        """The payments' read (waiting for it, not for the ledger's after it); None: not read, or it failed."""
        if self._payments is not None:
            read, self._payments = self._payments, None
            try:
                self._left = read.result()
            except OperationalError:
                self._left = None
        return self._left

    def rejected_invoices(self) -> list[str] | None:
        """The invoices the new rejection lines name (db.explicit.rejected_named: every rejection line is among the
        payments the pass never settles), for the pass; None: the payments not read."""
        left = self._payments_read()
        return explicit.rejected_named(left) if left is not None else None

    def payments(self) -> pd.DataFrame | None:
        """The new payments the pass never settles (waiting for them), once; None: not read. The thread is ended
        by `result`, which the run always calls."""
        left, self._left = self._payments_read(), None
        return left


def _likely_whole(conn: Connection, last_id: int, incremental: bool | None) -> bool:
    """Whether the run will read the whole ledger (run_reconcile's `whole`), told before the explicit pass from the
    payment rows not reconciled yet (at most; the pass settles some)."""
    if incremental is not None:
        return not incremental
    return (last_id - store.reconciled_through(conn)) * WHOLE_LEDGER_RATIO > store.invoices_about(conn)


def _reach(conn: Connection, payments: pd.DataFrame, letters: pd.DataFrame) -> pd.DataFrame:
    """What each payment's outcome depends on (payment_id, key), the patients it reaches included."""
    return retries.resolve(conn, payment_reach(payments, letters))


def _payments_to_try(conn: Connection, last_id: int, whole_queue: bool, plain: bool,
                     aside: pd.DataFrame | None = None) -> tuple[pd.DataFrame, list[str] | None, pd.DataFrame | None]:
    """The new payments (`plain`: but those the explicit pass settled; `aside`: those it never settles, already read,
    _LedgerBeside) and the queue entries to try again with them: every entry (`whole_queue`), else those what changed
    since the last run can reach, closed over the patients the new payments may settle (db.retries). Returns
    (payments, the entries retried (None: all), their reach (None: not read))."""
    if whole_queue:
        return pending_payments(conn, last_id, settled=plain, aside=aside), None, None
    new = pending_payments(conn, last_id, [], plain, aside)
    reach = _reach(conn, new, letter_invoices(conn, rf_references_in(new)))
    settled = reach.loc[reach["key"].str.startswith("p:"), "key"].str.slice(2)
    retried = [p for p in retries.entries_to_retry(conn, settled) if p not in set(new["payment_id"])]
    if retried:
        again = pending_payments(conn, 0, retried)
        reach = pd.concat([reach, _reach(conn, again, letter_invoices(conn, rf_references_in(again)))],
                          ignore_index=True)
        new = pd.concat([new, again], ignore_index=True)
    return new, retried, reach


def _keep_reach(conn: Connection, payments: pd.DataFrame, outcome: Outcome | None, ledger: Ledger | None,
                retried: list[str] | None, figures: _OutcomeFigures) -> None:
    """Record the reach of the entries this run left waiting (`figures`), in place of that of the entries it tried,
    and the patients whose shares it changed that one of them reaches (it read them before the change, maybe)."""
    reach = figures.waiting if figures.resolved else retries.resolve(conn, figures.waiting)
    retries.replace(conn, None if retried is None else [*retried, *payments["payment_id"]], reach)
    if outcome is None or ledger is None:
        return
    # From the patients the waiting entries reach (a few tens of thousands) to their invoices the run touched: not
    # every touched invoice's patient looked up among a million invoices (1M: 0.9 -> 0.2 s).
    reached = {key[2:] for key in reach["key"] if key.startswith("p:")}
    if not reached:
        return
    patient_ids = ledger.invoices["patient_id"].to_numpy(dtype=object)
    theirs = np.fromiter((p in reached for p in patient_ids), dtype=bool, count=len(patient_ids))
    touched = touched_invoices(outcome, ledger.transfers)
    numbers = ledger.invoices["invoice_number"].to_numpy(dtype=object)[theirs]
    changes.note(conn, {"t:" + p for p, number in zip(patient_ids[theirs], numbers) if number in touched})


@dataclass
class _OutcomeFigures:
    """What the write stage needs of the engine's outcome that no database holds."""
    counts: ReconcileReport      # the run's report with the outcome's counts (_summarise)
    digest: str | None           # the audit event's (_digest; None: no outcome)
    waiting: pd.DataFrame        # the reach of the entries the run leaves waiting (payment_id, key)
    resolved: bool               # whether `waiting` has its patients already (db.retries.resolve), else to find


def _outcome_figures(outcome: Outcome | None, payments: pd.DataFrame, letters: pd.DataFrame,
                     reach: pd.DataFrame | None, engine: Engine | None = None) -> _OutcomeFigures:
    """The figures of `outcome` on `payments` (None: nothing ran); `reach`: the payments' reach, already read and
    resolved (None: made here from the payments, core.reconcile.payment_reach, and its patients found on a
    connection of `engine`'s, or left to find when None)."""
    counts = ReconcileReport(payments=len(payments))
    waiting = (outcome.exceptions.loc[outcome.exceptions["kind"].isin(RETRIED), "payment_id"]
               if outcome is not None else pd.Series(dtype=object))
    if reach is not None:
        reach, resolved = reach[reach["payment_id"].isin(waiting)], True
    else:
        left = payments[payments["payment_id"].isin(waiting)]
        resolved = engine is not None
        if engine is not None:
            with engine.connect() as other:
                reach = _reach(other, left, letters)
        else:
            reach = payment_reach(left, letters)
    if outcome is None:
        return _OutcomeFigures(counts, None, reach, resolved)
    _summarise(counts, outcome)
    return _OutcomeFigures(counts, _digest(outcome), reach, resolved)


class _FiguresBeside:
    """_outcome_figures made in a thread while the store builds the allocation indexes a first run left aside and
    settles the invoices the run paid (_settle): SQLite steps its statements (and PostgreSQL's server works) without
    holding the GIL, and the second core is idle meanwhile (1M first run: ~2.9 s building the indexes, ~4 s
    settling). Not beside the outcome's own writes: their rows are made Python objects, which holds the GIL. Then,
    in the same thread, a first run's settled invoices worked out from its outcome (`settled`, _settled_by_outcome:
    numpy and pandas, which hold the GIL too: after the figures, not beside them, and both beside the indexes'
    build, ~2.5 s of CPU). The thread only reads the outcome, the ledger and the payments: pandas copies on write,
    no frame changes under it. On SQLite in WAL mode (db.ledger.readable_beside) the waiting
    entries' patients are found on a second connection, which sees what the run's transaction saw of the invoices
    and the patients' names (the run writes neither, and holds the write lock: no other commit comes in between).
    1M first run: the report's counts, the digest and the waiting entries' reach, ~2 s of CPU, off the write stage's
    wall."""

    def __init__(self, engine: Engine, conn: Connection, outcome: Outcome | None, payments: pd.DataFrame,
                 letters: pd.DataFrame, reach: pd.DataFrame | None,
                 settled: Callable[[], _Settled | None] | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outcome-figures")
        self._figures = self._pool.submit(_outcome_figures, outcome, payments, letters, reach,
                                          engine if readable_beside(conn) else None)
        self._settled = self._pool.submit(settled) if settled is not None else None

    def result(self) -> _OutcomeFigures:
        """The figures (waiting for them; the thread's error raised here)."""
        return self._figures.result()

    def settled(self) -> _Settled | None:
        """What `settled` found, made in the same thread after the figures (waiting for it; None: not asked)."""
        return self._settled.result() if self._settled is not None else None

    def close(self) -> None:
        """The thread ended (waited for): never one left running after the run, whatever happened."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def run_reconcile(engine: Engine, now: datetime | None = None, set_based: bool = True,
                  incremental: bool | None = None) -> ReconcileReport:
    """Allocate what is new; a run with nothing new since the last one changes nothing and returns fast.

    `set_based=False` sends every payment through the pure engine (the reference the tests compare with).
    `incremental`: read only what the payments can touch and retry only the queue entries what changed can
    reach (True), the whole ledger and the whole queue (False), or decide the ledger by the number of payments
    against the number of invoices (None); the outcome is the same either way."""
    now = now or datetime.now(timezone.utc)
    laps = _Laps()
    with bulk_transaction(engine) as conn:
        complete = retries.complete(conn)
        if complete and not store.anything_new(conn):
            return ReconcileReport(skipped=True)
        mark = None if complete else _watermark(conn)
        if mark is not None and store.meta(conn, "reconciled_at") == mark:
            return ReconcileReport(skipped=True)
        last_id = store.last_payment_row(conn)
        allocated_before = open_items.allocation_mark(conn)
        likely_whole = _likely_whole(conn, last_id, incremental)
        beside = _LedgerBeside(engine, conn, last_id) if likely_whole else None
        laps.lap("read")
        early = None
        try:
            # PostgreSQL's pass wants the invoices the rejection lines name first thing: scanned for, not waited for.
            rejected = (beside.rejected_invoices if beside is not None and beside.reading
                        and conn.dialect.name == "sqlite" else None)
            plain = (settle_plain_explicit(conn, last_id, now, likely_whole, rejected) if set_based
                     else PlainExplicit())
            if beside is not None and beside.reading:
                # The pass's allocations read back once (with their days when a first run's settle may want them)
                # while the ledger's thread ends its reads, for the whole ledger's read (else not used: see below).
                early = explicit.paid_shares(conn, days=allocated_before == 0)
        finally:
            before = beside.result() if beside is not None else None     # never a thread left reading
        aside = beside.payments() if beside is not None else None
        release_freed_memory()       # each stage gives back what it freed (see there): see db.session
        laps.lap("explicit")
        payments, retried, reach = _payments_to_try(conn, last_id, whole_queue=incremental is False or not complete,
                                                    plain=set_based, aside=aside)
        aside = None
        release_freed_memory()
        changes.take(conn)
        outcome = ledger = written = row_ids = pass_paid = pass_days = paid_days = None
        whole = False
        # The RF references the payments quote, validated once (the letters' lookup and the engine's rule), found in
        # a thread (Arrow's compute, mostly without the GIL) beside the statements and the whole ledger's read, which
        # does not look letters up (1M first run: ~0.5 s beside ~0.4 s).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rf-references") as pool:
            finding = pool.submit(rf_references, payments)
            if len(payments):
                whole = (_reads_whole_ledger(payments, store.invoices_about(conn)) if incremental is None
                         else not incremental)
                if not whole or (payments["status"] == "clawback").any():   # they read allocations by invoice
                    plain.build_indexes(conn)
                if whole:     # the engine's stage needs no pages cached: the ledger's reads scan whole tables
                    bulk_cache(conn, big=False)
                    row_ids = before.row_ids if before is not None else None
                    pass_paid = early if row_ids is not None else None
                    if row_ids is None and allocated_before == 0:     # PostgreSQL: the pass's days read with it
                        ledger, paid_days = load_ledger_dated(conn)
                    else:
                        ledger = load_ledger(conn, before, pass_paid)
            found = finding.result()
        early = None
        letters = letter_invoices(conn, rf_references_in(payments, found))
        if len(payments):
            if not whole:
                ledger = load_ledger_for(conn, payments, letters, reach)
            assert ledger is not None       # read: the whole ledger beside the references, else the part here
            pass_days = None if pass_paid is None or pass_paid.days is None else (pass_paid.shares, pass_paid.days)
            if row_ids is not None and conn.dialect.name != "sqlite":
                # PostgreSQL's row ids are the invoices' places, which its settle does not take: the pass's days are
                # put on the ledger's rows (_settled_by_outcome's `paid_days`).
                paid_days = _days_on_rows(row_ids, pass_days, plain.allocations)
                row_ids = pass_days = None
            before = pass_paid = None
            release_freed_memory()
            laps.lap("read")
            outcome = reconcile(payments, _with_clawbacks(conn, payments, ledger), letters, found)
            release_freed_memory()
            bulk_cache(conn, big=True)
            laps.lap("match")
        if outcome is not None:
            written = _store(conn, outcome, payments, now, retried, plain)
            release_freed_memory()
        # The outcome's figures made beside the statements from here on: the allocation indexes a first run left
        # aside built, then the settle, before the reach is kept (neither reads what the other writes); then, in the
        # same thread, the invoices a first run settles found from its outcome.
        every_open = _settles_every_open_invoice(conn, allocated_before)
        from_outcome = None
        if every_open and allocated_before == 0 and (row_ids is not None or paid_days is not None):
            from_outcome = partial(_settled_by_outcome, outcome, ledger, written, row_ids, pass_days,
                                   plain.allocations, open_items.settle_facts(conn), paid_days)
        beside_figures = _FiguresBeside(engine, conn, outcome, payments, letters, reach, from_outcome)
        try:
            plain.build_indexes(conn)
            store.mark_reconciled_up_to(conn, last_id)      # the explicit pass's payments and the engine's
            _settle(conn, allocated_before, every_open, beside_figures.settled)
            figures = beside_figures.result()
        finally:
            beside_figures.close()
        report = figures.counts
        _keep_reach(conn, payments, outcome, ledger, retried, figures)
        plain.add_to(report)
        if report.payments:
            append_event(conn, "reconcile", {"payments": report.payments, "allocations": report.allocations,
                                             "allocated_cents": report.allocated_cents, "by_rule": report.by_rule,
                                             "exceptions": report.exceptions, "transfers": report.transfers,
                                             "reversals": report.reversals, "set_based": plain.digest,
                                             "digest": figures.digest}, at=now)
        if mark is not None:
            store.set_meta(conn, "reconciled_at", mark)
    report.stages = laps.lap("write")
    return report


def _settles_every_open_invoice(conn: Connection, allocated_before: int) -> bool:
    """Whether the run made more allocations (after `allocated_before`) than there are invoices (a first run, a big
    backlog): its settle looks at every open invoice then (_settle)."""
    return open_items.allocation_mark(conn) - allocated_before > store.invoices_about(conn)


def _settle(conn: Connection, allocated_before: int, every_open: bool,
            settled: Callable[[], _Settled | None] = lambda: None) -> None:
    """Mark settled what this run's allocations settled (no longer open): the invoices they touched, or every
    open invoice when the run made more allocations than there are invoices (`every_open`: a first run, a big
    backlog): at 1M that costs less than staging the invoices touched and searching each (6.1 against 9.7 s CPU).
    A first run (no allocation before it) settles every open invoice from what it holds when it can (`settled`: the
    invoices found settled and their days, _settled_by_outcome; None: summed again in the database,
    db.open_items.settle)."""
    found = settled() if every_open and allocated_before == 0 else None
    if found is not None:
        open_items.settle_days(conn, *found)
    else:
        open_items.settle(conn, since=None if every_open else allocated_before)


# The invoices settled (SQLite: their rowids ascending; PostgreSQL: their numbers) and their days (ISO text):
# open_items.settle_days's arguments.
_Settled = tuple[list, list[str]]


def _settled_by_outcome(outcome: Outcome | None, ledger: Ledger | None, written: pd.DataFrame | None,
                        row_ids: np.ndarray | None, pass_days: tuple[np.ndarray, np.ndarray] | None,
                        pass_allocations: int, facts: tuple[list, list[str]],
                        paid_days: np.ndarray | None = None) -> _Settled | None:
    """A first run's invoices settled by db.open_items' rule, from what the run holds rather than its allocations
    summed again in the database: what each owes after the run is the engine's outcome.outstanding (the whole
    ledger read, with the explicit pass's allocations, less what the engine allocated and moved: the rule's sums
    over the allocations and the moves, write-offs not taken off); none written off; the day, the latest of
    the invoice's own, its allocations' payments' (SQLite: the pass's `pass_days`, its `pass_allocations` allocations'
    shares and days read back as integers with the ledger, db.explicit.paid_shares; PostgreSQL: `paid_days`, each
    invoice's latest day put on the ledger's rows from the pass's allocations read back the same way when the ledger
    was read beside the pass, _days_on_rows, else read with the ledger in the run's transaction, load_ledger_dated;
    and the engine's `written`)
    and its moves' and their reversals'. `facts`: what the caller read of the small tables for it
    (db.open_items.settle_facts: the moves' days, the invoices written off); the rest is numpy and pandas on what the
    run holds, made in a thread beside the allocation indexes' build (_FiguresBeside). (SQLite: rowids ascending,
    PostgreSQL: invoice numbers; days as ISO text); None when the run does not hold it all: not a whole ledger read
    on SQLite beside the pass (`row_ids`) nor on PostgreSQL with its days (`paid_days`), an earlier allocation shrunk
    by the engine, a day missing or not written yyyy-mm-dd.
    PostgreSQL, the 1M first run: the rule's statement summed 2.1M allocations per invoice again (a hashed group by,
    4.8-5.8 s of the server's CPU, the settle's biggest statement); the days read with the ledger cost it ~0.02 s."""
    by_row = row_ids if row_ids is not None else paid_days
    if outcome is None or ledger is None or written is None or by_row is None or len(outcome.reductions):
        return None
    invoices = ledger.invoices
    if outcome.outstanding.shape != (len(invoices), 3) or len(by_row) != len(invoices):
        return None
    day = _day_numbers(invoices["issue_date"])
    engine_days = _day_numbers(written["payment_date"])
    if row_ids is not None and (pass_days is None or len(pass_days[0]) != pass_allocations):
        return None
    if day is None or engine_days is None or (day < 0).any() or (engine_days < 0).any():
        return None
    index = pd.Index(invoices["invoice_number"], dtype=object)
    if row_ids is not None and pass_days is not None:
        keys, days = pass_days
        rows = pd.Index(row_ids).get_indexer(keys // 4)
        if (rows < 0).any():
            return None
        np.maximum.at(day, rows, days)
    elif paid_days is not None:      # PostgreSQL: read on the ledger's rows
        np.maximum(day, paid_days, out=day)
    _latest(day, index, written["invoice_number"], engine_days)
    moved, written_off = facts
    moves = pd.DataFrame(moved, columns=["invoice_number", "last_day", "last_reversal"])
    for column in ("last_day", "last_reversal"):
        days_moved = _day_numbers(moves[column])
        if days_moved is None:
            return None
        _latest(day, index, moves["invoice_number"], days_moved)
    settled = np.asarray((outcome.outstanding <= 0).all(axis=1), dtype=bool)
    off = index.get_indexer(pd.Index(written_off, dtype=object))
    settled[off[off >= 0]] = False
    if row_ids is None:
        found_rows, found_days = invoices["invoice_number"].to_numpy(dtype=object)[settled], day[settled]
    else:
        order = np.argsort(row_ids[settled], kind="stable")
        found_rows, found_days = row_ids[settled][order], day[settled][order]
    distinct, which = np.unique(found_days, return_inverse=True)
    text_days = np.array([f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d}" for d in distinct.tolist()],
                         dtype=object)
    return found_rows.tolist(), text_days[which].tolist()


def _days_on_rows(row_ids: np.ndarray, pass_days: tuple[np.ndarray, np.ndarray] | None,
                  pass_allocations: int) -> np.ndarray | None:
    """Each ledger row's latest day among the explicit pass's allocations (the integers yyyymmdd, -1: none), from
    their shares keyed by row id (db.explicit.paid_shares) and days; None when not read whole (`pass_allocations`:
    how many the pass made) or an allocation's invoice is not among the rows."""
    if pass_days is None or len(pass_days[0]) != pass_allocations:
        return None
    keys, days = pass_days
    rows = pd.Index(row_ids).get_indexer(keys // 4)
    if (rows < 0).any():
        return None
    latest = np.full(len(row_ids), -1, dtype=np.int64)
    np.maximum.at(latest, rows, days)
    return latest


def _latest(day: np.ndarray, index: pd.Index, numbers: pd.Series, days: np.ndarray) -> None:
    """day[invoice] raised to each of `days` (-1: none) on its invoice's row (`numbers`; an invoice not in `index`
    counts nowhere, as in the rule's join from the invoices)."""
    rows = index.get_indexer(pd.Index(numbers, dtype=object))
    known = rows >= 0
    np.maximum.at(day, rows[known], days[known])


def _day_numbers(values: pd.Series) -> np.ndarray | None:
    """Days as the integers yyyymmdd (-1 where missing), each distinct one converted once; None when one is neither
    missing nor ISO text (yyyy-mm-dd), or a date (compared as text in the rule: ISO text compares as the days)."""
    codes, uniques = pd.factorize(values.to_numpy(dtype=object))
    numbers = np.empty(len(uniques) + 1, dtype=np.int64)
    numbers[-1] = -1
    for k, value in enumerate(uniques):
        text_day = value.isoformat() if isinstance(value, date) else value
        if not is_iso_day(text_day):
            return None
        numbers[k] = int(text_day[:4] + text_day[5:7] + text_day[8:])
    return numbers[codes]


@dataclass
class PlainExplicit:
    """What the set-based pass settled: its counts join the run's report."""
    payments: int = 0
    allocations: int = 0
    cents: int = 0
    credits: int = 0
    digest: str | None = None
    # The allocation indexes a first run's pass left aside (db.explicit: leave_aside), built once the engine's
    # allocations are in too, or before a read that looks allocations up by invoice or payment.
    indexes_aside: list[str] = field(default_factory=list)

    def build_indexes(self, conn: Connection) -> None:
        """The allocation indexes left aside built (once; none left aside: nothing). PostgreSQL's table is not
        analysed again: the pass analysed it when it built the others (db.explicit._left_aside)."""
        build_indexes(conn, self.indexes_aside)
        self.indexes_aside = []

    def add_to(self, report: ReconcileReport) -> None:
        report.payments += self.payments
        report.allocations += self.allocations
        report.allocated_payments += self.allocations
        report.allocated_cents += self.cents
        if self.allocations:
            report.by_rule = dict(report.by_rule or {})
            report.by_rule["explicit"] = report.by_rule.get("explicit", 0) + self.allocations
        if self.credits:
            report.exceptions = dict(report.exceptions or {})
            report.exceptions["credit"] = report.exceptions.get("credit", 0) + self.credits


def settle_plain_explicit(conn: Connection, last_id: int, now: datetime, leave_aside: bool = False,
                          rejected: Callable[[], list[str] | None] | None = None) -> PlainExplicit:
    """The plain case of the explicit rule, set-based in the store (db.explicit); its counts for the report.
    `leave_aside`: a first run's allocation indexes may be left for the caller to build (PlainExplicit.build_indexes).
    `rejected`: gives the invoices the new rejection lines name when read apart (_LedgerBeside.rejected_invoices)."""
    count, allocations, cents, credits, checksum, aside = explicit.settle_plain_explicit(conn, last_id, now,
                                                                                         leave_aside, rejected)
    return PlainExplicit(count, allocations, cents, credits, f"{count}:{cents}:{checksum}" if count else None, aside)


def _summarise(report: ReconcileReport, outcome: Outcome) -> None:
    report.allocations = len(outcome.allocations)
    report.allocated_payments = int(outcome.allocations["payment_id"].nunique())
    report.allocated_cents = int(outcome.allocations["amount_cents"].sum())
    report.by_rule = {k: int(v) for k, v in outcome.counts_by_rule().items()}
    report.exceptions = {k: int(v) for k, v in outcome.exceptions["kind"].value_counts().items()}
    report.transfers = len(outcome.transfers)
    report.reversals = len(outcome.reversals) + int(outcome.transfers["reversed_by"].notna().sum())


def _digest(outcome: Outcome) -> str:
    """SHA-256 over the run's allocations, in the order the engine makes them (deterministic: payments
    are taken in (date, id) order rule by rule): what the audit event vouches for."""
    rows = pd.util.hash_pandas_object(outcome.allocations[["payment_id", "invoice_number", "payer_type",
                                                           "amount_cents", "rule"]], index=False)
    return hashlib.sha256(rows.to_numpy().tobytes()).hexdigest()


def _store(conn: Connection, outcome: Outcome, payments: pd.DataFrame, now: datetime,
           retried: list[str] | None, plain: PlainExplicit) -> pd.DataFrame:
    """Write the outcome of `payments`; the payments it covers are the unreconciled ones up to the run's last row
    (marked reconciled by the run, after) and the retried queue entries (`retried`; None: all; the nightly lock
    keeps other writers out meanwhile). The allocation indexes the explicit pass left aside (`plain`) are left for
    the caller to build after (PlainExplicit.build_indexes; here only before an allocation is reduced, which looks
    them up by payment): at 1M (first run) 403,175 of them inserted into the indexes just built over the pass's
    1.70M (0.9 + 0.5 s), whose pages are full, cost 3.3 s CPU; inserted bare, 1.5 s, then the two indexes built over
    the 2.1M, 1.5 + 1.1 s (same run, under the bench lock). Returns the engine's allocations as written (with their
    payments' days; None where filled from the payment after)."""
    store.clear_retried(conn, retried)
    allocations = outcome.allocations.assign(created_at=now.replace(tzinfo=None),
                                             payment_date=_payment_days(outcome.allocations, payments))
    mark = open_items.allocation_mark(conn)
    bulk_insert(conn, "allocation", allocations)
    if allocations["payment_date"].isna().any():     # an earlier payment's allocation moved (none at 1M)
        store.fill_payment_days(conn, mark)
    transfers = outcome.transfers.assign(notified=False)
    bulk_insert(conn, "share_transfer", transfers)
    for reversal in outcome.reversals.itertuples():
        store.reverse_transfer(conn, int(reversal.transfer_id), reversal.reversed_on, reversal.reversed_by)
    bulk_insert(conn, "payment_exception", outcome.exceptions)
    if len(outcome.reductions):
        plain.build_indexes(conn)
    for cut in outcome.reductions.itertuples():
        _reduce_allocation(conn, cut.payment_id, cut.invoice_number, int(cut.amount_cents))
    return allocations


def _payment_days(allocations: pd.DataFrame, payments: pd.DataFrame) -> pd.Series:
    """Each allocation's payment's day (allocation.payment_date, which settle reads) from the run's payments, as ISO
    text (a payment listed twice: its first row's); None for a payment not among them. The payments found by Arrow's
    hash of their ids (index_in), not pandas' of Python strings (duplicated, then reindex): the 1M first run's
    403,175 allocations among 496,476 payments 1.05 / 0.93 -> 0.38 / 0.44 s CPU (under the bench lock)."""
    found = pc.index_in(pa.array(allocations["payment_id"].to_numpy(dtype=object), type=pa.string()),
                        value_set=pa.array(payments["payment_id"].to_numpy(dtype=object), type=pa.string()))
    days = np.empty(len(payments) + 1, dtype=object)        # the last one None: -1, not among them
    days[:-1] = payments["payment_date"].to_numpy(dtype=object)
    return pd.Series(days[found.fill_null(-1).to_numpy()], index=allocations.index, dtype=object)


def _reduce_allocation(conn: Connection, payment_id: str, invoice_number: str, cents: int) -> None:
    """An insurer took back a share the patient had paid: the patient's payment becomes a credit."""
    left = store.reduce_allocation(conn, payment_id, invoice_number, cents)
    _add_credit(conn, payment_id, invoice_number, cents - left, f"invoice {invoice_number}: the insurer paid its share after all; "
                "what the patient paid for it is a credit to refund or use")


def _add_credit(conn: Connection, payment_id: str, invoice_number: str, cents: int, reason: str) -> None:
    store.add_credit(conn, payment_id, invoice_number, cents, reason)


# -- manual work on the queue -------------------------------------------------------------------

def _payment(conn: Connection, payment_id: str):
    row = store.payment(conn, payment_id)
    if row is None:
        raise RecouvrementError(f"paiement inconnu {payment_id!r}", field="PAYMENT_ID")
    if row.status != "paid":
        raise RecouvrementError(f"le paiement {payment_id} est une ligne de rejet : il ne porte pas d'argent", field="PAYMENT_ID")
    return row


def share_outstanding(conn: Connection, invoice_number: str, payer_type: str) -> int:
    """What is still due now on the share a payer of `payer_type` settles (the agency settles the patient's)."""
    due = current_due_cents(conn, invoice_number, "patient" if payer_type == "agency" else payer_type)
    if due is None:
        raise RecouvrementError(f"facture inconnue {invoice_number!r}", field="INVOICE_NUMBER")
    return due


def manual_match(engine: Engine, payment_id: str, invoice_number: str, cents: int | None = None,
                 now: datetime | None = None, *, actor: str | None = None,
                 only_if_waiting: tuple[str, ...] | None = None) -> int:
    """Allocate (part of) a queued payment to an invoice by hand; returns the cents allocated.

    With `only_if_waiting`, refuses (NoLongerWaiting) unless the payment still waits in the queue as one of
    those kinds: of two people matching the same payment at once, the second is told."""
    with writing(engine) as conn:
        if only_if_waiting is not None:
            kind = store.queue_kind(conn, payment_id)
            if kind not in only_if_waiting:
                raise NoLongerWaiting("ce paiement n'est plus dans la file : un autre utilisateur l'a traité "
                                      "entre-temps", field="PAYMENT_ID")
        payment = _payment(conn, payment_id)
        allocated = store.allocated_cents(conn, payment_id)
        remaining = int(payment.amount_cents) - int(allocated)
        due = share_outstanding(conn, invoice_number, payment.payer_type)
        amount = min(remaining, due) if cents is None else cents
        if amount <= 0 or amount > remaining or amount > due:
            raise RecouvrementError(f"impossible d'affecter {format_eur(amount)} : il reste {format_eur(remaining)} sur le paiement "
                                    f"et {format_eur(due)} dus sur la part {payment.payer_type} de la facture", field="amount")
        share = "patient" if payment.payer_type == "agency" else payment.payer_type
        store.insert_allocation(conn, payment_id, invoice_number, share, amount, "manual",
                                (now or datetime.now(timezone.utc)).replace(tzinfo=None))
        store.delete_queue_entry(conn, payment_id)
        if remaining - amount > 0:
            _add_credit(conn, payment_id, invoice_number, remaining - amount,
                        "part left after a manual match: a credit to refund or use")
        store.mark_reconciled(conn, payment_id)
        patient = store.invoice_patient(conn, invoice_number)
        append_event(conn, "manual_match", {"payment_id": payment_id, "amount_cents": amount},
                     patient_id=patient, invoice_number=invoice_number, at=now, actor=actor)
    return amount


def match_queued(engine: Engine, payment_id: str, invoice_number: str, cents: int | None = None, *,
                 actor: str, now: datetime | None = None) -> int:
    """Match a payment that still waits in the queue (the workbench's click); NoLongerWaiting if it no longer
    waits: of two people matching the same payment at once, one wins and the other is told."""
    return manual_match(engine, payment_id, invoice_number, cents, now=now, actor=actor, only_if_waiting=WAITING)


def manual_unmatch(engine: Engine, payment_id: str, now: datetime | None = None, actor: str | None = None) -> int:
    """Undo every allocation of a payment; it waits in the queue for a manual match (never re-matched alone).
    One audit event per patient whose invoices lose the payment, so that each patient's history shows it."""
    with writing(engine) as conn:
        payment = _payment(conn, payment_id)
        removed = store.payment_allocations(conn, payment_id)
        store.delete_allocations(conn, payment_id)
        changes.note(conn, {f"p:{patient}" for _, _, patient in removed if patient is not None})
        store.delete_queue_entry(conn, payment_id)
        store.hold_for_manual_match(conn, payment_id, int(payment.amount_cents))
        store.mark_reconciled(conn, payment_id)
        for patient in dict.fromkeys(p for _, _, p in removed) or [None]:
            theirs = [[i, int(a)] for i, a, p in removed if p == patient]
            append_event(conn, "manual_unmatch", {"payment_id": payment_id, "removed": theirs,
                                                  "invoices": list(dict.fromkeys(i for i, _ in theirs))},
                         patient_id=patient, invoice_number=theirs[0][0] if len(theirs) == 1 else None,
                         at=now, actor=actor)
    return len(removed)
