"""`recouvrement schedule`: the nightly run on a cron, caught up once after downtime (APScheduler 3.x).

The job lives in an SQLAlchemyJobStore in the project's own database, so its next fire time survives
a restart: when the process comes back after missing nights, the missed fires are coalesced into ONE
catch-up run (coalesce=True, misfire_grace_time of a week), for the day it actually runs — the
reminder ladder works from `as_of`, so letters that fell due on missed nights come out then, once.
`max_instances=1` and the database lock (app/lock.py) keep runs from overlapping.

The job holds no configuration: the database URL and settings are this process's (set by
`serve`), so no password is ever pickled into the job table.

`due_runs` is the same arithmetic as APScheduler's own (`Job._get_run_times` + coalescing +
misfire grace), written as a pure function so that a month of nights can be simulated without a
clock or a sleep; a test checks it against APScheduler's Job on the same trigger.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable
from zoneinfo import ZoneInfo

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from recouvrement.config import Settings
from recouvrement.db.jobs import stored_next_run
from recouvrement.errors import RecouvrementError

log = logging.getLogger(__name__)

JOB_ID = "nightly"
JOB_TABLE = "apscheduler_jobs"
GRACE = timedelta(days=7)        # a fire missed by less than this is caught up (once) when we come back
_process: dict = {}              # this process's database URL, settings and wait: read by nightly_job


class NightlyTrigger(BaseTrigger):
    """The cron, at most once per local day.

    APScheduler 3.11's CronTrigger misbehaves in the hour the clocks go back: after 02:30 (summer time)
    it returns 02:30 (winter time) an hour later, then that same time again forever — a second run,
    then a scheduler spinning. The default 02:30 Europe/Paris sits in that hour. The next fire after a
    fire is therefore looked for from the next local midnight (midnight exists every day in France)."""

    def __init__(self, cron: CronTrigger) -> None:
        self.cron = cron

    def get_next_fire_time(self, previous_fire_time, now):
        if previous_fire_time is None:
            return self.cron.get_next_fire_time(None, now)
        zone = self.cron.timezone
        day = previous_fire_time.astimezone(zone).date() + timedelta(days=1)
        return self.cron.get_next_fire_time(None, datetime.combine(day, time(0), tzinfo=zone))

    def __str__(self) -> str:
        return f"nightly[{self.cron}]"


def trigger_from(settings: Settings) -> NightlyTrigger:
    try:
        return NightlyTrigger(CronTrigger.from_crontab(settings.schedule.cron,
                                                       timezone=ZoneInfo(settings.schedule.timezone)))
    except (ValueError, KeyError) as exc:
        raise RecouvrementError(f"planification cron invalide : {exc}", file=str(settings.source or "recouvrement.toml"),
                                field="schedule.cron") from None


def fire_times(trigger: BaseTrigger, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time in (start, end]."""
    times, fire = [], trigger.get_next_fire_time(None, start + timedelta(microseconds=1))
    while fire and fire <= end:
        times.append(fire)
        fire = trigger.get_next_fire_time(fire, end)
    return times


def due_runs(last_run_at: datetime, now: datetime, trigger: BaseTrigger, *, coalesce: bool = True,
             grace: timedelta | None = GRACE) -> list[datetime]:
    """The scheduled times the scheduler runs at `now`, given the fire time of the last run.

    The fires missed since `last_run_at` (up to `now`, inclusive) are coalesced into the latest one;
    a fire older than the grace time is dropped (APScheduler logs it as missed)."""
    missed = fire_times(trigger, last_run_at, now)
    runs = missed[-1:] if coalesce else missed
    return [t for t in runs if grace is None or now - t <= grace]


def as_of_for(now: datetime, settings: Settings) -> date:
    """A run is for the day it runs, in the clinic's time zone (a catch-up run included)."""
    return now.astimezone(ZoneInfo(settings.schedule.timezone)).date()


STATUS_FR = {"ok": "terminé", "failed": "en échec", "running": "en cours"}


def nightly_job() -> None:
    """The scheduled job: one nightly run for today; a run already in progress is left alone."""
    from recouvrement.app.lock import LockHeld
    from recouvrement.app.nightly import run_nightly
    from recouvrement.audit import seal_engine, settings_seal, write_checkpoint
    from recouvrement.db.session import open_engine
    settings: Settings = _process["settings"]
    engine = seal_engine(open_engine(_process["db_url"], schema=settings.database.schema), settings_seal(settings))
    try:
        result = run_nightly(engine, settings, as_of_for(datetime.now(timezone.utc), settings),
                             wait=_process.get("wait", 0))
        _process.get("say", log.info)(f"passage {result.run_id} du {result.as_of:%d/%m/%Y} : {STATUS_FR.get(result.status, result.status)}")
    except LockHeld as exc:
        _process.get("say", log.warning)(f"passage de nuit sauté : {exc}")
    finally:
        write_checkpoint(engine)
        engine.dispose()


def pending_fire(db_url: str, schema: str = "") -> datetime | None:
    """The next fire time the job store kept from before (a missed run if it is in the past)."""
    value = stored_next_run(db_url, JOB_TABLE, JOB_ID, schema)
    return datetime.fromtimestamp(value, timezone.utc) if value is not None else None


def build_scheduler(settings: Settings, db_url: str, *, scheduler_cls=BlockingScheduler, wait: float = 0,
                    now: datetime | None = None, say: Callable[[str], None] | None = None):
    """A scheduler holding the 'nightly' job (replaced, so a changed cron takes effect; a missed fire kept)."""
    trigger = trigger_from(settings)
    schema = settings.database.schema          # the clinic's job lives in the clinic's schema
    _process.update(settings=settings, db_url=db_url, wait=wait, say=say or log.info)
    scheduler = scheduler_cls(timezone=ZoneInfo(settings.schedule.timezone),
                              jobstores={"default": SQLAlchemyJobStore(url=db_url, tablename=JOB_TABLE,
                                                                            tableschema=schema or None)},
                              job_defaults={"coalesce": True, "max_instances": 1,
                                            "misfire_grace_time": int(GRACE.total_seconds())})
    now = now or datetime.now(timezone.utc)
    missed = pending_fire(db_url, schema)
    upcoming = trigger.get_next_fire_time(None, now)
    # Replacing the job (a changed cron takes effect) must not forget a night missed while we were down.
    first = missed if missed is not None and upcoming is not None and missed < upcoming else upcoming
    scheduler.add_job(nightly_job, trigger, id=JOB_ID, name="recouvrement nightly run", replace_existing=True,
                      coalesce=True, max_instances=1, misfire_grace_time=int(GRACE.total_seconds()),
                      next_run_time=first)
    return scheduler


def serve(settings: Settings, db_url: str, config_file: str | None = None, *, wait: float = 0,
          say: Callable[[str], None] = print) -> None:
    """Run until SIGTERM or SIGINT; a run in progress is finished before the process exits."""
    scheduler = build_scheduler(settings, db_url, wait=wait, say=say)

    def stop(signum, _frame) -> None:
        say(f"{signal.Signals(signum).name} reçu : arrêt après le passage en cours, s'il y en a un")
        # shutdown takes the scheduler's locks: never from inside the signal handler itself
        threading.Thread(target=scheduler.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    say(f"passage de nuit planifié : cron {settings.schedule.cron!r} ({settings.schedule.timezone})")
    scheduler.start()
    say("planificateur arrêté")
