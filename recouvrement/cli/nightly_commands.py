"""`recouvrement nightly`, `runs`, `report`, `schedule` and `unlock`: the unattended side of the job."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from rich.table import Table

from recouvrement.cli import Context, cli, console, out, pass_context
from recouvrement.errors import RecouvrementError

LOCKED_EXIT = 3


def today_in(timezone: str) -> date:
    return datetime.now(ZoneInfo(timezone)).date()


def _as_of(ctx: Context, value: datetime | None) -> date:
    return value.date() if value else today_in(ctx.settings.schedule.timezone)


def print_run(result) -> None:
    counts = result.counts
    files = counts.get("files", {})
    out.print(f"run {result.run_id} for {result.as_of}: [bold]{result.status}[/]")
    out.print(f"  files: {files.get('seen', 0)} seen, {files.get('imported', 0)} imported, "
              f"{files.get('quarantined', 0)} quarantined; rows imported: {counts.get('rows', {}).get('imported', 0)}")
    out.print(f"  allocations: {counts.get('allocations', 0)}; exceptions: {counts.get('exceptions', {})}")
    out.print(f"  letters by level: {counts.get('letters', {})}; agency cases: {counts.get('agency_cases', 0)}")
    for error in result.errors:
        console.print(f"  [yellow]{error}[/]", markup=True)
    if result.report:
        out.print(f"  report: {result.report}")


@cli.command()
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), help="The day to run for (default: today).")
@click.option("--wait", default=0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds to wait for a run already in progress before giving up (exit status 3).")
@pass_context
def nightly(ctx: Context, as_of: datetime | None, wait: float) -> None:
    """Import the inbox, reconcile, refresh plans, remind, hand over to the agency, write the report."""
    from recouvrement.app.lock import LockHeld
    from recouvrement.app.nightly import run_nightly
    try:
        result = run_nightly(ctx.engine, ctx.settings, _as_of(ctx, as_of), wait=wait)
    except LockHeld as exc:
        console.print(f"[bold red]locked:[/] {exc}", markup=True)
        sys.exit(LOCKED_EXIT)
    print_run(result)
    if result.status != "ok":
        sys.exit(1)


@cli.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@pass_context
def runs(ctx: Context, limit: int) -> None:
    """The history of nightly runs, newest first."""
    from recouvrement.app.nightly import list_runs
    table = Table(title="Runs")
    for column in ("id", "as of", "started (UTC)", "ended (UTC)", "status", "files", "allocations", "letters",
                   "errors"):
        table.add_column(column)
    for run in list_runs(ctx.engine, limit):
        files = run.counts.get("files", {})
        table.add_row(str(run.id), str(run.as_of), f"{run.started_at:%Y-%m-%d %H:%M}",
                      f"{run.ended_at:%H:%M:%S}" if run.ended_at else "", run.status,
                      f"{files.get('imported', 0)}/{files.get('seen', 0)}", str(run.counts.get("allocations", "")),
                      str(sum(run.counts.get("letters", {}).values())), run.errors.replace("\n", "; ")[:80])
    out.print(table)


@cli.command()
@click.option("--as-of", "as_of", type=click.DateTime(["%Y-%m-%d"]), help="Situation at the end of this day.")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@pass_context
def report(ctx: Context, as_of: datetime | None, out_file: Path) -> None:
    """The accountant's report as one HTML page (balance, DSO, queue, disputes, letters, plans, agency)."""
    from recouvrement.app.report import write_report
    path = write_report(ctx.engine, ctx.settings, _as_of(ctx, as_of), out_file)
    out.print(f"report written to {path}")


@cli.command()
@click.option("--wait", default=0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds each scheduled run waits for a run already in progress.")
@pass_context
def schedule(ctx: Context, wait: float) -> None:
    """Run the nightly job on the [schedule] cron (default 02:30 Europe/Paris) until stopped (SIGTERM, ^C)."""
    from recouvrement.scheduler import serve
    ctx.engine  # migrate the schema and check the URL before the scheduler starts
    serve(ctx.settings, str(ctx.engine.url.render_as_string(hide_password=False)), ctx.config_file, wait=wait,
          say=lambda line: out.print(line))


@cli.command()
@click.option("--yes", is_flag=True, help="Confirm that the holder's process is really gone.")
@pass_context
def unlock(ctx: Context, yes: bool) -> None:
    """Release the nightly lock held by a process on another host that died (audited)."""
    from recouvrement.app.lock import current_holder, force_release
    found = current_holder(ctx.engine)
    if found is None:
        out.print("the nightly lock is free")
        return
    if not yes:
        raise RecouvrementError(f"the lock is held by {found[0]} since {found[1]:%Y-%m-%d %H:%M} UTC; check that "
                                "process is gone, then run again with --yes", field="--yes")
    out.print(f"released the lock held by {force_release(ctx.engine)}")
