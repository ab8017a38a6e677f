"""The day's accounts read and decided by two processes on a big ledger (app.remind.read_and_decide, issue 16): the same
decisions, pre-due notices and kept accounts as one process gives, on a scale set; a child that read another ledger
or failed is not counted, its part read again here."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from recouvrement import memory
from recouvrement.app import remind
from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.app.remind import marks, read_and_decide, run_remind
from recouvrement.core.ladder import decide
from recouvrement.db.accounts import patient_split
from recouvrement.db.session import wait_for_checkpoint
from recouvrement.rules import Rules
from tools.samples import generate

SCALE_FILES = ("invoices.csv", "remittance_amo.csv", "remittance_amc.csv", "payments_patient.csv")
ONE_PROCESS = 10**12


@pytest.fixture
def scale_day(engine, tmp_path, settings) -> date:
    """A reconciled scale set; the day after its last payment."""
    folder = tmp_path / "scale"
    generate(folder, invoices=6_000, scale=True)
    for name in SCALE_FILES:
        import_file(engine, folder / name, settings)
    run_reconcile(engine)
    with engine.connect() as conn:
        last = conn.execute(text("SELECT MAX(payment_date) FROM payment")).scalar_one()
    return date.fromisoformat(str(last)[:10]) + timedelta(days=1)


def with_pre_due(rules: Rules) -> Rules:
    ladder = rules.ladder
    return dataclasses.replace(rules, ladder=dataclasses.replace(
        ladder, pre_due=dataclasses.replace(ladder.pre_due, enabled=True)))


def both_ways(engine, as_of: date, rules: Rules, read=None):
    with engine.connect() as conn:
        read = marks(conn) if read is None else read
        parts = read_and_decide(engine, conn, as_of, rules, read, split_from=1)
        whole = read_and_decide(engine, conn, as_of, rules, marks(conn), split_from=ONE_PROCESS)
    return parts, whole


def test_two_processes_decide_what_one_process_decides_on_a_scale_set(engine, settings, scale_day):
    rules = with_pre_due(settings.rules())
    parts, whole = both_ways(engine, scale_day, rules)
    assert whole.split_at is None
    if engine.dialect.name != "sqlite":         # a server database is read by this process alone
        assert parts.split_at is None and parts == whole
        return
    assert parts.split_at is not None and parts.child_counted
    assert (parts.letters, parts.exclusions, parts.pre_due) == (whole.letters, whole.exclusions, whole.pre_due)
    # This process's part whole, of the child's the accounts with calls (what the run closes or keeps).
    assert parts.accounts == [a for a in whole.accounts if a.patient_id < parts.split_at or a.calls]
    assert len(whole.accounts) > 500 and sum(a.patient_id >= parts.split_at for a in whole.accounts) > 200
    assert sum(d.patient_id >= parts.split_at for d in whole.letters) > 50
    assert sum(e[0] >= parts.split_at for e in whole.exclusions) > 50
    assert whole.pre_due


def test_the_split_gives_each_process_its_share_of_the_open_invoices_not_of_the_patients(engine, scale_day):
    if engine.dialect.name != "sqlite":
        pytest.skip("one process on a server database")
    with engine.connect() as conn:
        first = patient_split(conn, scale_day, 0.53, at_least=2)
        lower, total = conn.execute(text(
            "SELECT SUM(CASE WHEN patient_id < :p THEN 1 ELSE 0 END), COUNT(*) FROM invoice "
            "WHERE (settled_on IS NULL OR settled_on > :d) AND issue_date <= :d"), {"p": first, "d": scale_day}).one()
        patients, below = conn.execute(text("SELECT COUNT(*), SUM(CASE WHEN patient_id < :p THEN 1 ELSE 0 END) "
                                            "FROM patient"), {"p": first}).one()
    assert abs(lower / total - 0.53) < 0.02
    # The older patients hold more of the open invoices: their share of the patients is not the split.
    assert abs(below / patients - 0.53) > 0.03


def test_a_child_that_started_from_another_ledger_is_not_counted(engine, settings, scale_day):
    if engine.dialect.name != "sqlite":
        pytest.skip("one process on a server database")
    rules = settings.rules()
    with engine.connect() as conn:
        payments, invoices, pauses = marks(conn)
    stale = ((payments[0] - 1, payments[1]), invoices, pauses)     # as if a payment was imported in between
    parts, whole = both_ways(engine, scale_day, rules, read=stale)
    assert parts.split_at is not None and not parts.child_counted
    assert (parts.letters, parts.exclusions, parts.pre_due) == (whole.letters, whole.exclusions, whole.pre_due)


def test_a_child_that_failed_leaves_its_part_to_this_process():
    failed: Future = Future()
    failed.set_exception(MemoryError())
    assert remind._child_result(failed, ("marks",)) is None
    done: Future = Future()
    done.set_result((("other",), "part"))
    assert remind._child_result(done, ("marks",)) is None
    done = Future()
    done.set_result((("marks",), "part"))
    assert remind._child_result(done, ("marks",)) == "part"


def test_a_dry_run_in_two_processes_reports_what_one_process_reports(engine, settings, scale_day, tmp_path,
                                                                     monkeypatch):
    one = run_remind(engine, settings, scale_day, tmp_path / "one", dry_run=True)
    monkeypatch.setattr(remind, "SPLIT_FROM_PATIENTS", 1)
    two = run_remind(engine, settings, scale_day, tmp_path / "two", dry_run=True)
    assert two.decisions == one.decisions and two.exclusions == one.exclusions
    assert len(one.decisions) > 100 and len(one.exclusions) > 100


# What a forked child sees of this process: set here at run time, never by an import (a spawned child would import
# this module again and see None).
_SEEN_BY_THE_CHILD: dict[str, str | None] = {"token": None}


def _token_seen() -> str | None:
    return _SEEN_BY_THE_CHILD["token"]


def test_the_child_is_forked_before_the_run_opens_the_database(engine, settings, scale_day, monkeypatch):
    if engine.dialect.name != "sqlite":
        pytest.skip("one process on a server database")
    monkeypatch.setattr(remind, "SPLIT_FROM_PATIENTS", 1)
    monkeypatch.setitem(_SEEN_BY_THE_CHILD, "token", "set in the parent")
    _no_checkpoint_behind(engine)       # the reconcile's, behind its commit: a thread (see the last test)
    with remind.child_pool(engine) as pool:
        assert pool is not None
        assert pool.submit(_token_seen).result() == "set in the parent"
        with engine.connect() as conn:     # the run's reads, after the fork: the child takes its part as before
            read = marks(conn)
            parts = read_and_decide(engine, conn, scale_day, settings.rules(), read, split_from=1, pool=pool)
    assert parts.child_counted


def _no_checkpoint_behind(engine) -> None:
    """This engine's checkpoint behind its last commit, and any other engine's still running in this process (a
    thread: released_for_fork then refuses the fork, rightly), waited for."""
    wait_for_checkpoint(engine)
    for thread in threading.enumerate():
        if thread.name == "recouvrement-sqlite-checkpoint":
            thread.join()


def test_no_child_is_forked_while_a_connection_to_the_file_is_open(engine, scale_day, monkeypatch):
    monkeypatch.setattr(remind, "SPLIT_FROM_PATIENTS", 1)
    with engine.connect() as held:
        held.execute(text("SELECT COUNT(*) FROM patient")).scalar_one()
        with remind.child_pool(engine) as pool:
            assert pool is None             # read_and_decide spawns its child, as it did before
    _no_checkpoint_behind(engine)
    with remind.child_pool(engine) as pool:
        assert (pool is not None) == (engine.dialect.name == "sqlite")


def test_a_connection_released_into_a_pool_disposed_of_does_not_forbid_the_fork(engine, scale_day, monkeypatch):
    # The connection checked out while the first child_pool disposed of the engine's pool goes back, released, into
    # that pool, which only the cycle collector closes; with the collector paused (as it may not have run yet, which
    # made the test above fail now and then), the fork is still allowed once the connection is released.
    if engine.dialect.name != "sqlite":
        pytest.skip("one process on a server database")
    monkeypatch.setattr(remind, "SPLIT_FROM_PATIENTS", 1)
    _no_checkpoint_behind(engine)
    with memory.no_cycle_collection():
        with engine.connect() as held:
            held.execute(text("SELECT COUNT(*) FROM patient")).scalar_one()
            engine.dispose()
            with remind.child_pool(engine) as pool:
                assert pool is None
        with remind.child_pool(engine) as pool:
            assert pool is not None


def test_no_child_is_forked_for_fewer_patients_than_a_part_needs(engine, scale_day, monkeypatch):
    with engine.connect() as conn:
        patients = conn.execute(text("SELECT COUNT(*) FROM patient")).scalar_one()
    monkeypatch.setattr(remind, "SPLIT_FROM_PATIENTS", patients + 1)
    wait_for_checkpoint(engine)
    with remind.child_pool(engine) as pool:
        assert pool is None


def test_no_child_is_forked_while_another_thread_runs(engine, scale_day, monkeypatch):
    monkeypatch.setattr(remind, "SPLIT_FROM_PATIENTS", 1)
    done = threading.Event()
    wait_for_checkpoint(engine)
    other = threading.Thread(target=done.wait)      # as the checkpoint behind a bulk commit is
    other.start()
    try:
        with remind.child_pool(engine) as pool:
            assert pool is None
    finally:
        done.set()
        other.join()


def test_the_day_keeps_every_letter_and_every_exclusion_the_ladder_decides_in_patient_order(
        engine, settings, scale_day):
    rules = settings.rules()
    with engine.connect() as conn:
        day = read_and_decide(engine, conn, scale_day, rules, marks(conn), split_from=1)
        whole = read_and_decide(engine, conn, scale_day, rules, marks(conn), split_from=ONE_PROCESS)
    judged = [decide(account, scale_day, rules) for account in whole.accounts]
    assert day.letters == [d for d in judged if d.level is not None] and day.letters
    assert day.exclusions == [(d.patient_id, e.invoice_number, e.code, e.reason) for d in judged
                              for e in d.exclusions] and day.exclusions


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_the_child_ends_when_the_process_that_started_it_is_killed(start, tmp_path):
    # A run killed half-way (SIGKILL, nothing to clean up) must not leave its child behind: it would decide its part,
    # then block for ever writing its result into a pipe nobody reads.
    script = ("import os, time\n"
              "from recouvrement.app import remind\n"
              "if __name__ == '__main__':\n"
              f"    pool = remind._child_executor({start!r})\n"
              "    child = pool.submit(os.getpid).result()\n"
              "    pool.submit(time.sleep, 60)\n"
              "    print(child, flush=True)\n"
              "    time.sleep(60)\n")
    (tmp_path / "parent.py").write_text(script)
    parent = subprocess.Popen([sys.executable, str(tmp_path / "parent.py")], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())

    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] != "Z"     # a zombie has ended
        except FileNotFoundError:
            return False

    assert alive(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    ended = not alive(child)
    if not ended:
        os.kill(child, signal.SIGKILL)
    assert ended


def test_a_dry_runs_listings_are_made_by_the_process_that_decided_each_part(engine, settings, scale_day, monkeypatch):
    # The child's lines come back made (the command made every line once both parts were back: 1.2-1.4 s at 1M).
    from recouvrement.render.listing import exclusion_rows, letter_rows, lines

    rules = with_pre_due(settings.rules())
    child_parts = []
    child_result = remind._child_result

    def kept(future, own_marks):
        part = child_result(future, own_marks)
        child_parts.append(part)
        return part

    monkeypatch.setattr(remind, "_child_result", kept)
    with engine.connect() as conn:
        day = read_and_decide(engine, conn, scale_day, rules, marks(conn), split_from=1, listing=True)
        whole = read_and_decide(engine, conn, scale_day, rules, marks(conn), split_from=ONE_PROCESS, listing=True)
    made = (lines(letter_rows(whole.letters)), lines(letter_rows(whole.pre_due)), lines(exclusion_rows(whole.exclusions)))
    assert whole.listing == made and all(made)
    assert day.listing == made
    if engine.dialect.name != "sqlite":         # a server database is read by this process alone
        return
    child, = child_parts
    assert day.child_counted and child.listing is not None
    upper = [d for d in whole.letters if d.patient_id >= day.split_at]
    assert child.listing[0] == lines(letter_rows(upper)) and child.listing[0]


def test_a_dry_run_reports_its_listings_lines_and_a_run_none(engine, settings, scale_day, tmp_path, monkeypatch):
    from recouvrement.render.listing import exclusion_rows, letter_rows, lines

    monkeypatch.setattr(remind, "SPLIT_FROM_PATIENTS", 1)
    report = run_remind(engine, settings, scale_day, tmp_path / "dry", dry_run=True)
    assert report.listing == (lines(letter_rows(report.decisions)), lines(exclusion_rows(
        (e.patient_id, e.invoice_number, e.code, e.reason) for e in report.exclusions)))
    with engine.connect() as conn:
        assert read_and_decide(engine, conn, scale_day, settings.rules(), marks(conn), split_from=1).listing is None
