"""`recouvrement reconcile`, `match`, `unmatch`, `balance`, `export allocations|exceptions`."""

from __future__ import annotations

from pathlib import Path

import click
from recouvrement.app.balance import (DETAILS, balance_and_detail, export_allocations, export_exceptions,
                                      write_balance_csv, write_balance_detail)
from recouvrement.app.reconcile import manual_match, manual_unmatch, run_reconcile
from recouvrement.cli import Context, Table, cli, out, pass_context
from recouvrement.cli.options import as_of_option
from recouvrement.cli.import_commands import export_group, format_option
from recouvrement.render.labels import queue_label, rule_label
from recouvrement.money import format_eur, parse_amount, AmountError


def print_reconcile(report) -> None:
    if report.skipped:
        out.print("rien de nouveau depuis le dernier rapprochement")
        return
    out.print(f"{report.payments} paiement(s) examiné(s), {report.allocated_payments} rapproché(s) "
              f"({report.allocations} affectation(s), {format_eur(report.allocated_cents)})")
    for rule, count in sorted((report.by_rule or {}).items()):
        out.print(f"  règle « {rule_label(rule)} » : {count} paiement(s)")
    for kind, count in sorted((report.exceptions or {}).items()):
        out.print(f"  file d'attente, {queue_label(kind)} : {count}")
    if report.transfers or report.reversals:
        out.print(f"  parts passées au patient après un rejet : {report.transfers} ; reprises : {report.reversals}")


@cli.command()
@pass_context
def reconcile(ctx: Context) -> None:
    """Rapprocher chaque nouveau paiement des parts des factures ; ce qui ne correspond à rien va dans la file des exceptions."""
    print_reconcile(run_reconcile(ctx.engine))


@cli.command()
@click.argument("payment_id")
@click.argument("invoice_number")
@click.option("--amount", help="Montant à imputer en euros (défaut : autant que les deux le permettent).")
@pass_context
def match(ctx: Context, payment_id: str, invoice_number: str, amount: str | None) -> None:
    """Imputer à la main un paiement en attente sur une facture (audité)."""
    try:
        cents = parse_amount(amount) if amount else None
    except AmountError as exc:
        raise click.BadParameter(str(exc), param_hint="--amount") from None
    done = manual_match(ctx.engine, payment_id, invoice_number, cents)
    out.print(f"{format_eur(done)} du paiement {payment_id} affecté(s) à la facture {invoice_number}")


@cli.command()
@click.argument("payment_id")
@pass_context
def unmatch(ctx: Context, payment_id: str) -> None:
    """Défaire les imputations d'un paiement ; il attend dans la file un rapprochement manuel (audité)."""
    removed = manual_unmatch(ctx.engine, payment_id)
    out.print(f"{removed} affectation(s) du paiement {payment_id} retirée(s) ; il attend dans la file")


BUCKET_LABELS = {"not-due": "non échu", "total": "total"}
GROUP_LABELS = {"total:all": "TOTAL (tous payeurs)"}


@cli.command()
@as_of_option("Date de la balance (jj/mm/aaaa ou ISO ; défaut : aujourd'hui).")
@click.option("--ageing", type=click.Choice(["issue", "due"]), default="issue", show_default=True,
              help="Âge compté en jours depuis la date d'émission de la facture, ou après son échéance ('due' ajoute "
                   "une colonne 'not-due' pour ce qui n'est pas encore échu).")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path), help="L'écrire aussi en CSV.")
@click.option("--detail", type=click.Choice(DETAILS),
              help="Écrire aussi le détail, une ligne par patient ou par facture, dans --out (colonnes dans le README).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), help="Le fichier CSV du détail.")
@format_option
@pass_context
def balance(ctx: Context, as_of, ageing: str, csv_file: Path | None, detail: str | None, out_file: Path | None,
            dialect) -> None:
    """La balance âgée par type de payeur et par mutuelle, et son total général (tous payeurs).

    Exemple : recouvrement balance --ageing due --detail invoices --out factures.csv --format excel-fr
    """
    if (detail is None) != (out_file is None):
        raise click.UsageError("--detail et --out vont ensemble : --detail patients|invoices --out FICHIER")
    day = as_of
    table, read = balance_and_detail(ctx.engine, day, detail if out_file else None, ageing)
    basis = "jours depuis l'échéance" if ageing == "due" else "jours depuis l'émission"
    view = Table(title=f"Balance âgée au {day:%d/%m/%Y} ({basis})")
    for column in ("", *table.columns):
        view.add_column(BUCKET_LABELS.get(column, column), justify="left" if not column else "right")
    for name, values in zip(table.index, table.to_numpy().tolist()):
        view.add_row(GROUP_LABELS.get(name, name), *(format_eur(v) for v in values))
    out.print(view)
    if csv_file:
        write_balance_csv(table, csv_file, dialect)
        out.print(f"écrit dans {csv_file}")
    if detail and out_file:
        rows, due = write_balance_detail(ctx.engine, day, detail, out_file, dialect, ageing, read=read)
        kind = "patient(s)" if detail == "patients" else "facture(s)"
        out.print(f"détail : {rows} {kind}, {format_eur(due)} restant dû, écrit dans {out_file}")


@export_group.command("allocations")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@format_option
@pass_context
def export_allocations_command(ctx: Context, out_file: Path, dialect) -> None:
    """Toutes les imputations : payment_id, invoice_number, payer_type, montant, règle."""
    out.print(f"{export_allocations(ctx.engine, out_file, dialect)} affectation(s) écrite(s) dans {out_file}")


@export_group.command("exceptions")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@format_option
@pass_context
def export_exceptions_command(ctx: Context, out_file: Path, dialect) -> None:
    """La file des exceptions : paiements non rapprochés ou ambigus, et avoirs, chacun avec sa raison."""
    out.print(f"{export_exceptions(ctx.engine, out_file, dialect)} paiement(s) en attente écrit(s) dans {out_file}")
