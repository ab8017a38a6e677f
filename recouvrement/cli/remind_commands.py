"""`recouvrement remind`: the day's reminder letters and e-mails, or a dry run listing who is not chased and why."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click
from rich.table import Table

from recouvrement.app.remind import RemindReport, run_remind
from recouvrement.cli import Context, cli, out, pass_context
from recouvrement.money import format_eur


@cli.command()
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), required=True, help="Date of the letters.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the letters, the batch PDF, the e-mails and manifest.csv.")
@click.option("--dry-run", is_flag=True, help="Write and send nothing: list the letters due and every exclusion.")
@click.option("--single-pdf", is_flag=True, help="Also write one PDF per postal letter.")
@pass_context
def remind(ctx: Context, as_of, out_dir: Path, dry_run: bool, single_pdf: bool) -> None:
    """Send the reminders due on --as-of (one letter per patient, privacy-scanned, recorded and audited)."""
    report = run_remind(ctx.engine, ctx.settings, as_of.date(), out_dir, dry_run=dry_run, single_pdf=single_pdf)
    print_remind(report)
    if report.errors:
        raise SystemExit(1)  # a refused document: the others are written, the run is not clean


def print_remind(report: RemindReport) -> None:
    if report.quiet_day:
        out.print(f"{report.as_of:%d/%m/%Y} is a Sunday or a public holiday: nothing is sent, "
                  "the next working day catches up")
    if report.dry_run:
        _print_dry_run(report)
    else:
        _print_done(report)
    _print_exclusion_counts(report)


def _print_dry_run(report: RemindReport) -> None:
    due = Table(title=f"Relances dues le {report.as_of:%d/%m/%Y} (dry run: nothing written)")
    for column in ("patient", "level", "channel", "invoices", "amount", "why"):
        due.add_column(column)
    for d in report.decisions:
        due.add_row(d.patient_id, str(d.level), d.channel, " ".join(i.invoice_number for i in d.items),
                    format_eur(d.amount_due_cents), d.reason)
    out.print(due)
    excluded = Table(title="Exclusions")
    for column in ("patient", "invoice", "code", "reason"):
        excluded.add_column(column)
    for e in report.exclusions:
        excluded.add_row(e.patient_id, e.invoice_number or "(all)", e.code, e.reason)
    out.print(excluded)


def _print_done(report: RemindReport) -> None:
    if not report.letters and not report.quiet_day:
        out.print("no new reminder due today" + (f" ({len(report.already_recorded)} already made for this date)"
                                                 if report.already_recorded else ""))
    counts = Counter((w.level, w.channel) for w in report.letters)
    if counts:
        table = Table(title=f"Letters of {report.as_of:%d/%m/%Y}")
        for column in ("level", "channel", "letters"):
            table.add_column(column, justify="right")
        for (level, channel), count in sorted(counts.items()):
            table.add_row(str(level), channel, str(count))
        out.print(table)
    if report.batch_pdf:
        out.print(f"print batch: {report.batch_pdf} ({len(report.pages)} letter(s))")
    if report.email_note:
        out.print(report.email_note)
    if report.manifest:
        out.print(f"manifest: {report.manifest}")
    for error in report.errors:
        out.print(f"[red]refused:[/] {error}")


def _print_exclusion_counts(report: RemindReport) -> None:
    counts = Counter(e.code for e in report.exclusions)
    if not counts:
        return
    table = Table(title="Not chased, by reason")
    table.add_column("code")
    table.add_column("count", justify="right")
    for code, count in sorted(counts.items()):
        table.add_row(code, str(count))
    out.print(table)
