"""The schedule, simulated over a month with a controlled clock: once a night, missed nights caught up once.

Choice: nothing sleeps and no scheduler thread runs. The fire times come from APScheduler's own
CronTrigger; `due_runs` (checked below against APScheduler's `Job._get_run_times` + coalescing) says
what the scheduler runs when it wakes; the simulation wakes it at every fire time while the process
is up and once when it comes back after downtime, and calls the real run_nightly for each run on a
real database. The scheduler object itself is checked on the real job store, started paused.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import text

from recouvrement.app.nightly import list_runs, run_nightly
from recouvrement.config import Paths, Schedule, Settings, load_settings
from recouvrement.scheduler import GRACE, JOB_ID, as_of_for, build_scheduler, due_runs, fire_times, trigger_from
from tests.app.world import INVOICE_HEADER, write

PARIS = ZoneInfo("Europe/Paris")
SAMPLE_TOML = Path(__file__).resolve().parents[1] / "recouvrement" / "sample_clinic" / "recouvrement.toml"


def paris(*args) -> datetime:
    return datetime(*args, tzinfo=PARIS)


TRIGGER = trigger_from(Settings())


def test_the_default_schedule_fires_at_half_past_two_paris_time_across_the_clock_change():
    fires = fire_times(TRIGGER, paris(2026, 10, 24, 12), paris(2026, 10, 26, 12))
    assert [f.astimezone(PARIS).strftime("%d %H:%M") for f in fires] == ["25 02:30", "26 02:30"]
    assert fires[1].astimezone(timezone.utc) - fires[0].astimezone(timezone.utc) == timedelta(hours=25)


def test_a_process_up_all_night_runs_once_at_the_fire_time():
    assert due_runs(paris(2026, 11, 22, 2, 30), paris(2026, 11, 23, 2, 30), TRIGGER) == [paris(2026, 11, 23, 2, 30)]
    assert due_runs(paris(2026, 11, 23, 2, 30), paris(2026, 11, 23, 14, 0), TRIGGER) == []


def test_missed_nights_are_coalesced_into_one_catch_up_run():
    assert due_runs(paris(2026, 11, 14, 2, 30), paris(2026, 11, 18, 9, 0), TRIGGER) == [paris(2026, 11, 18, 2, 30)]


def test_without_coalescing_every_missed_night_would_run():
    assert len(due_runs(paris(2026, 11, 14, 2, 30), paris(2026, 11, 18, 9, 0), TRIGGER, coalesce=False)) == 4


def test_a_night_missed_beyond_the_grace_time_is_dropped():
    assert due_runs(paris(2026, 11, 1, 2, 30), paris(2026, 11, 2, 2, 30) + GRACE + timedelta(hours=1), TRIGGER,
                    coalesce=False)[:1] != [paris(2026, 11, 2, 2, 30)]


def test_due_runs_agrees_with_apschedulers_own_job_arithmetic():
    job = Job.__new__(Job)               # only the fields _get_run_times reads
    job.trigger = TRIGGER
    for last, now in [(paris(2026, 11, 14, 2, 30), paris(2026, 11, 18, 9)), (paris(2026, 3, 27, 2, 30),
                                                                           paris(2026, 4, 2, 3))]:
        job.next_run_time = TRIGGER.get_next_fire_time(last, last + timedelta(microseconds=1))
        assert due_runs(last, now, TRIGGER, coalesce=False, grace=None) == job._get_run_times(now)


def simulate(start: datetime, end: datetime, downtime: list[tuple[datetime, datetime]]) -> list[datetime]:
    """The wall-clock times at which the scheduler runs the job over [start, end] with the process down
    during each (down, up) interval: at every fire time while up, and once on coming back."""
    def up(moment: datetime) -> bool:
        return not any(down <= moment < back for down, back in downtime)
    wakes = sorted([f for f in fire_times(TRIGGER, start, end) if up(f)] + [back for _, back in downtime])
    last, runs = start, []
    for wake in wakes:
        if due_runs(last, wake, TRIGGER):
            runs.append(wake)
        last = max([last, *fire_times(TRIGGER, last, wake)])
    return runs


DOWN = [(paris(2026, 11, 14, 10), paris(2026, 11, 18, 9))]


def test_a_simulated_month_runs_once_a_night_and_catches_up_the_downtime_once():
    runs = simulate(paris(2026, 11, 1), paris(2026, 11, 30, 23), DOWN)
    days = [as_of_for(r, Settings()) for r in runs]
    assert len(days) == len(set(days))                                   # never twice a night
    assert [d.day for d in days] == [*range(1, 15), *range(18, 31)]      # 15-17 missed, 18 caught up
    assert runs[days.index(date(2026, 11, 18))] == paris(2026, 11, 18, 9)


INVOICE = ("F2026-000900;01/10/2026;31/10/2026;P9;Martin;Claire;5 rue Haute;75011;Paris;;;;50,00;0;0;50,00;;"
           "none;;")


@pytest.fixture
def clinic(settings, tmp_path):
    base = load_settings(SAMPLE_TOML)
    return replace(base, privacy=settings.privacy, paths=Paths(tmp_path / "inbox", tmp_path / "archive",
                                                               tmp_path / "quarantine", tmp_path / "out"))


@pytest.mark.skipif(importlib.util.find_spec("recouvrement.app.remind") is None,
                    reason="the reminder step is not in this build")
def test_over_a_simulated_month_the_ladder_letters_come_out_on_the_right_days(engine, clinic):
    clinic.paths.inbox.mkdir(parents=True)
    write(clinic.paths.inbox / "invoices.csv", INVOICE_HEADER, [INVOICE])
    runs = simulate(paris(2026, 11, 1), paris(2026, 12, 5, 23), DOWN)
    for moment in runs:
        result = run_nightly(engine, clinic, as_of_for(moment, clinic), now=moment)
        assert result.status == "ok", result.errors
    history = list_runs(engine, limit=100)
    assert len(history) == len(runs) and len({r.as_of for r in history}) == len(runs)
    with engine.connect() as conn:
        letters = [(int(level), str(day)[:10]) for level, day in conn.execute(text(
            "SELECT level, as_of FROM letter WHERE patient_id = 'P9' ORDER BY as_of"))]
    # Due 31/10: level 1 falls due on 15/11 (a Sunday, then the process is down): sent by the catch-up run
    # of 18/11; level 2 falls due on 30/11 but waits the 14 days' gap after the first letter: 02/12.
    assert letters == [(1, "2026-11-18"), (2, "2026-12-02")]


# Simulated "now"s ahead of the real clock, so that a started (paused) scheduler never finds the job due.
LATER = datetime.combine(date.today() + timedelta(days=400), datetime.min.time(), tzinfo=PARIS).replace(hour=12)


def test_the_job_is_kept_in_the_project_database_with_coalescing_and_one_instance(db_url, engine):
    settings = Settings(schedule=Schedule(cron="30 2 * * *"))
    first = build_scheduler(settings, db_url, scheduler_cls=BackgroundScheduler, now=LATER)
    first.start(paused=True)
    job = first.get_job(JOB_ID)
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, int(GRACE.total_seconds()))
    assert job.next_run_time == LATER.replace(hour=2, minute=30) + timedelta(days=1)
    first.shutdown(wait=False)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM apscheduler_jobs WHERE id = 'nightly'")).scalar_one() == 1


def test_restarting_after_downtime_keeps_the_missed_night_to_catch_it_up(db_url, engine):
    settings = Settings()
    first = build_scheduler(settings, db_url, scheduler_cls=BackgroundScheduler, now=LATER)
    first.start(paused=True)
    first.shutdown(wait=False)
    again = build_scheduler(settings, db_url, scheduler_cls=BackgroundScheduler, now=LATER + timedelta(days=3))
    again.start(paused=True)
    missed = LATER.replace(hour=2, minute=30) + timedelta(days=1)
    assert again.get_job(JOB_ID).next_run_time == missed    # in the past for that restart: run once on start
    again.shutdown(wait=False)


def test_a_bad_cron_is_refused_with_the_setting_named():
    from recouvrement.errors import RecouvrementError
    with pytest.raises(RecouvrementError, match="schedule.cron"):
        trigger_from(Settings(schedule=Schedule(cron="99 2 * * *")))


def test_the_night_the_clocks_go_back_runs_once_not_twice():
    assert len(due_runs(paris(2026, 10, 24, 2, 30), paris(2026, 10, 25, 12), TRIGGER, coalesce=False)) == 1


def test_the_night_the_clocks_go_forward_still_runs_once():
    assert len(fire_times(TRIGGER, paris(2026, 3, 28, 12), paris(2026, 3, 29, 12))) == 1
