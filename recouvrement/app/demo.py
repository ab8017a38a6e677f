"""The demo: the whole main job on the bundled samples, printed for a person to read."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sqlalchemy import text

from recouvrement.app.balance import export_exceptions
from recouvrement.app.imports import ImportRefused, import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.errors import RecouvrementError

ORDER = ("invoices.csv", "remittance_amo.csv", "remittance_amc.csv", "bank_camt053.xml", "bank_cfonb120.txt")


def run_demo(ctx, samples: Path, folder: Path, out, console) -> None:
    settings = ctx.settings
    settings = replace(settings, privacy=replace(settings.privacy, nir_key_file=folder / "nir.key"))
    engine = ctx.engine
    out.print(f"[bold]1. Import[/] of the sample clinic's files ({samples})")
    for name in ORDER:
        try:
            report = import_file(engine, samples / name, settings)
        except ImportRefused as exc:
            report = exc.report
        except RecouvrementError as exc:
            console.print(f"[red]error:[/] {exc}")
            continue
        out.print(f"  {name:<22} {report.format:<13} {report.rows_read:>5} rows, {report.imported:>5} imported, "
                  f"{report.duplicates:>5} already there, {len(report.rejects):>3} refused")
        for reject in report.rejects[:5]:
            out.print(f"      refused {reject}")
    out.print("[bold]2. Reconciliation[/]")
    from recouvrement.cli.reconcile_commands import print_reconcile
    report = run_reconcile(engine)
    print_reconcile(report)
    with engine.connect() as conn:
        total = conn.execute(text("SELECT COUNT(*) FROM payment WHERE status = 'paid'")).scalar_one()
        by_rule = conn.execute(text("SELECT rule, COUNT(DISTINCT payment_id) FROM allocation GROUP BY rule "
                                    "ORDER BY rule")).all()
        queue = conn.execute(text("SELECT kind, COUNT(*) FROM payment_exception GROUP BY kind ORDER BY kind")).all()
    out.print(f"[bold]3. Summary[/]: {total} payment(s) with money in the database")
    for rule, count in by_rule:
        out.print(f"  matched by {rule:<12} {count:>5}  ({100 * count / max(total, 1):.1f} %)")
    for kind, count in queue:
        out.print(f"  queue: {kind:<14} {count:>5}")
    export_exceptions(engine, folder / "exceptions.csv")
    out.print(f"  exceptions to review: {folder / 'exceptions.csv'}")
    out.print("[bold]4.[/] ", end="")
    demo_reminders(ctx, folder, out)


def demo_reminders(ctx, folder: Path, out) -> None:
    """The reminders of the samples' date into folder/relances, then the privacy scan of that folder."""
    from datetime import date

    from recouvrement.app.remind import run_remind
    from recouvrement.scanner import format_finding, scan_paths
    target = folder / "relances"
    report = run_remind(ctx.engine, ctx.settings, date(2026, 11, 23), target)
    letters = len(report.letters) + len(report.already_recorded)
    out.print(f"[bold]Reminders[/] of 23/11/2026: {letters} letter(s) in {target}"
              + (f", print batch {report.batch_pdf.name}" if report.batch_pdf else ""))
    if report.email_note:
        out.print(f"  {report.email_note}")
    for error in report.errors:
        out.print(f"  refused: {error}")
    findings = scan_paths([target]) if target.exists() else []
    if not findings:
        out.print("  privacy scan: clean")
    for path, finding in findings:
        out.print(f"  {format_finding(path, finding)}")
