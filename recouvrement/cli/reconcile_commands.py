"""`recouvrement reconcile`, `match`, `unmatch`, `balance`, `export allocations|exceptions`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click
from rich.table import Table

from recouvrement.app.balance import BUCKETS, aged_balance, export_allocations, export_exceptions, write_balance_csv
from recouvrement.app.reconcile import manual_match, manual_unmatch, run_reconcile
from recouvrement.cli import Context, cli, out, pass_context
from recouvrement.cli.import_commands import export_group, format_option
from recouvrement.money import format_eur, parse_amount, AmountError


def print_reconcile(report) -> None:
    if report.skipped:
        out.print("nothing new since the last reconciliation")
        return
    out.print(f"{report.payments} payment(s) examined, {report.allocated_payments} matched "
              f"({report.allocations} allocation(s), {format_eur(report.allocated_cents)})")
    for rule, count in sorted((report.by_rule or {}).items()):
        out.print(f"  rule {rule}: {count} payment(s)")
    for kind, count in sorted((report.exceptions or {}).items()):
        out.print(f"  queue {kind}: {count}")
    if report.transfers or report.reversals:
        out.print(f"  shares moved to patients after a rejection: {report.transfers}; taken back: {report.reversals}")


@cli.command()
@pass_context
def reconcile(ctx: Context) -> None:
    """Match every new payment to invoice shares; what fits nothing goes to the exceptions queue."""
    print_reconcile(run_reconcile(ctx.engine))


@cli.command()
@click.argument("payment_id")
@click.argument("invoice_number")
@click.option("--amount", help="Amount to allocate in euros (default: as much as both allow).")
@pass_context
def match(ctx: Context, payment_id: str, invoice_number: str, amount: str | None) -> None:
    """Allocate a queued payment to an invoice by hand (audited)."""
    try:
        cents = parse_amount(amount) if amount else None
    except AmountError as exc:
        raise click.BadParameter(str(exc), param_hint="--amount") from None
    done = manual_match(ctx.engine, payment_id, invoice_number, cents)
    out.print(f"{format_eur(done)} of {payment_id} allocated to {invoice_number}")


@cli.command()
@click.argument("payment_id")
@pass_context
def unmatch(ctx: Context, payment_id: str) -> None:
    """Undo a payment's allocations; it waits in the queue for a manual match (audited)."""
    removed = manual_unmatch(ctx.engine, payment_id)
    out.print(f"{removed} allocation(s) of {payment_id} removed; the payment waits in the queue")


@cli.command()
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Date of the balance (default today).")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path), help="Also write it as CSV.")
@format_option
@pass_context
def balance(ctx: Context, as_of, csv_file: Path | None, dialect) -> None:
    """The aged balance (days since issue) by payer type and by mutuelle."""
    day = as_of.date() if as_of else date.today()
    table = aged_balance(ctx.engine, day)
    view = Table(title=f"Balance âgée au {day:%d/%m/%Y}")
    for column in ("", *BUCKETS, "total"):
        view.add_column(column, justify="left" if not column else "right")
    for name, values in zip(table.index, table.to_numpy().tolist()):
        view.add_row(name, *(format_eur(v) for v in values))
    out.print(view)
    if csv_file:
        write_balance_csv(table, csv_file, dialect)
        out.print(f"written to {csv_file}")


@export_group.command("allocations")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@format_option
@pass_context
def export_allocations_command(ctx: Context, out_file: Path, dialect) -> None:
    """Every allocation: payment_id, invoice_number, payer_type, amount, rule."""
    out.print(f"{export_allocations(ctx.engine, out_file, dialect)} allocation(s) written to {out_file}")


@export_group.command("exceptions")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@format_option
@pass_context
def export_exceptions_command(ctx: Context, out_file: Path, dialect) -> None:
    """The exceptions queue: unmatched and ambiguous payments, and credits, each with why."""
    out.print(f"{export_exceptions(ctx.engine, out_file, dialect)} queued payment(s) written to {out_file}")
