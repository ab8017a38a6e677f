"""The nightly lock: one INSERT wins, stale holders of this host are taken over, real processes wait."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from recouvrement.app.lock import LockHeld, acquire, current_holder, force_release, is_stale, release, try_acquire

OLD = datetime(2026, 11, 23, 2, 30, tzinfo=timezone.utc)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def plant(engine, holder: str, at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO run_lock (name, holder, acquired_at) VALUES ('nightly', :h, :t)"),
                     {"h": holder, "t": at})


def test_a_second_holder_is_refused_while_the_lock_is_held(engine):
    assert try_acquire(engine, holder=f"{socket.gethostname()}:{os.getpid()}")
    assert try_acquire(engine, holder="other:1") is None


def test_releasing_the_lock_lets_the_next_holder_take_it(engine):
    holding = acquire(engine)
    assert release(engine, holding)
    assert current_holder(engine) is None
    assert acquire(engine, holder="next:1").holder == "next:1"


def test_a_waiting_holder_gives_up_with_the_holders_name(engine):
    plant(engine, f"{socket.gethostname()}:{os.getpid()}", datetime.now(timezone.utc).replace(microsecond=0))
    with pytest.raises(LockHeld, match="en cours"):
        acquire(engine, holder="me:2", wait=0)


def test_an_old_lock_whose_process_is_gone_from_this_host_is_taken_over(engine):
    plant(engine, f"{socket.gethostname()}:{dead_pid()}", OLD - timedelta(hours=7))
    holding = try_acquire(engine, holder="me:3", now=OLD)
    assert holding and holding.took_over
    assert current_holder(engine)[0] == "me:3"


def test_a_recent_lock_of_a_dead_process_is_not_taken_over(engine):
    plant(engine, f"{socket.gethostname()}:{dead_pid()}", OLD - timedelta(hours=1))
    assert try_acquire(engine, holder="me:4", now=OLD) is None


def test_a_lock_held_from_another_host_is_never_presumed_dead():
    assert not is_stale("elsewhere:1", OLD - timedelta(days=3), OLD, host="here")


def test_an_old_lock_of_a_living_process_is_not_stale():
    assert not is_stale(f"here:{os.getpid()}", OLD - timedelta(days=3), OLD, host="here")


def test_a_lock_released_by_hand_is_audited(engine):
    plant(engine, "elsewhere:1", OLD)
    assert force_release(engine) == "elsewhere:1"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM audit_event WHERE kind = 'lock_released_by_hand'")).scalar_one() == 1


HOLDER = textwrap.dedent("""
    import sys
    from recouvrement.db.session import open_engine
    from recouvrement.app.lock import held
    with held(open_engine(sys.argv[1])):
        print("held", flush=True)
        sys.stdin.read()          # holds until the test closes our stdin
""")


def test_a_nightly_started_while_another_process_holds_the_lock_exits_with_status_3(db_url, tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, db_url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=tmp_path)
    try:
        assert holder.stdout.readline().strip() == "held"
        second = subprocess.run(["recouvrement", "--db", db_url, "nightly", "--as-of", "2026-11-23", "--wait", "1"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert second.returncode == 3
        assert "un autre passage nightly est en cours" in second.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    third = subprocess.run(["recouvrement", "--db", db_url, "nightly", "--as-of", "2026-11-23"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert third.returncode != 3 and "passage 1 du 23/11/2026" in third.stdout
