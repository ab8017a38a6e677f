"""`recouvrement import ...` and `recouvrement export payments`."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from recouvrement.app.imports import ImportRefused, ImportReport, import_file
from recouvrement.app.exports import export_payments, write_rejects
from recouvrement.cli import Context, cli, console, out, pass_context
from recouvrement.errors import RecouvrementError
from recouvrement.importers.base import Reject
from recouvrement.render.csvfile import DIALECTS


@cli.group("import")
def import_group() -> None:
    """Import invoices and payments (CSV exports, insurer remittances, camt.053, CFONB 120)."""


def _run_imports(ctx: Context, files: tuple[Path, ...], expect: str, strict: bool, rejects_file: Path | None) -> None:
    reports: list[ImportReport] = []
    failed = False
    for path in files:
        try:
            reports.append(import_file(ctx.engine, path, ctx.settings, expect=expect, strict=strict))
        except ImportRefused as exc:
            reports.append(exc.report)
            console.print(f"[red]refused:[/] {exc}")
        except RecouvrementError as exc:   # one unreadable file does not stop the others
            console.print(f"[red]error:[/] {exc}")
            failed = True
    _print_summary(reports)
    rejects = [r for report in reports for r in report.rejects]
    for warning in (w for report in reports for w in report.warnings):
        console.print(f"[yellow]warning:[/] {warning}")
    if rejects:
        _report_rejects(rejects, rejects_file)
    if rejects or failed:
        sys.exit(1)


def _print_summary(reports: list[ImportReport]) -> None:
    table = Table(title="Import")
    for column in ("file", "format", "rows", "imported", "already there", "refused"):
        table.add_column(column, justify="left" if column in ("file", "format") else "right")
    for r in reports:
        table.add_row(r.file, r.format, str(r.rows_read), str(r.imported), str(r.duplicates), str(len(r.rejects)))
    out.print(table)


def _report_rejects(rejects: list[Reject], rejects_file: Path | None) -> None:
    if rejects_file:
        write_rejects(rejects_file, [(r.file, r.line, r.field, r.reason) for r in rejects])
        console.print(f"{len(rejects)} refused row(s) listed in {rejects_file}")
    shown = rejects[:50]
    for reject in shown:
        console.print(f"[red]refused[/] {reject}", markup=True)
    if len(rejects) > len(shown):
        console.print(f"… and {len(rejects) - len(shown)} more (use --rejects FILE for the full list)")


def _import_command(kind: str):
    @click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
    @click.option("--strict", is_flag=True, help="Refuse a whole file when any of its rows is refused.")
    @click.option("--rejects", "rejects_file", type=click.Path(dir_okay=False, path_type=Path),
                  help="Also write the refused rows (file, line, field, reason) to this CSV.")
    @pass_context
    def command(ctx: Context, files, strict, rejects_file) -> None:
        _run_imports(ctx, files, kind, strict, rejects_file)
    return command


import_group.command("invoices", help="Import invoice CSV files, each in its own transaction.")(_import_command("invoices"))
import_group.command("payments", help="Import payment files: remittance CSVs, camt.053 or CFONB 120 statements.")(
    _import_command("payments"))


@cli.group("export")
def export_group() -> None:
    """Export what the database holds, as CSV (scanned for medical data before it is written).

    Text cells that a spreadsheet would run as a formula (starting with = + - @) are prefixed with '.
    """


def format_option(command):
    """--format csv|excel-fr, shared by every command that writes a CSV export."""
    return click.option(
        "--format", "dialect", type=click.Choice(sorted(DIALECTS)), default="csv", show_default=True,
        callback=lambda _ctx, _param, value: DIALECTS[value],
        help="csv: comma, decimal point, UTF-8, LF. excel-fr: semicolon, decimal comma, UTF-8 with BOM, "
             "CRLF (opens as columns in a French Excel).")(command)


@export_group.command("payments")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@format_option
@pass_context
def export_payments_command(ctx: Context, out_file: Path, dialect) -> None:
    """Every imported payment, as read: to check what an import understood.

    Example: recouvrement export payments --out paiements.csv --format excel-fr
    """
    count = export_payments(ctx.engine, out_file, dialect)
    out.print(f"{count} payment(s) written to {out_file}")
