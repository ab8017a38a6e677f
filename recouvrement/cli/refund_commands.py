"""`recouvrement refund list|approve|cancel|file`: paying back credits by SEPA credit transfer."""

from __future__ import annotations

from pathlib import Path

import click

from recouvrement.app.refunds import approve_refund, cancel_refund, credit_kind, refund_queue, write_transfer_file
from recouvrement.cli import Context, Table, cli, out, pass_context
from recouvrement.cli.options import day_option
from recouvrement.money import format_eur

STATES = {"approved": "approuvé", "sent": "envoyé à la banque", "done": "versé", "cancelled": "annulé"}


@cli.group("refund")
def refund_group() -> None:
    """Remboursements des avoirs (trop-perçus, part payée deux fois) : liste, approbation, fichier de virements SEPA."""


@refund_group.command("list")
@pass_context
def refund_list(ctx: Context) -> None:
    """Les avoirs en attente de remboursement, et les remboursements en cours.

    Exemple : recouvrement refund list
    """
    credits, under_way = refund_queue(ctx.engine)
    table = Table(title="Trop-perçus à rembourser")
    for column in ("paiement", "date", "payeur", "patient", "nature", "à rembourser"):
        table.add_column(column, justify="right" if column == "à rembourser" else "left")
    for c in credits:
        table.add_row(c.payment_id, f"{c.payment_date:%d/%m/%Y}", c.payer_type,
                      f"{c.patient_id} {c.patient_name}" if c.patient_id else "", credit_kind(c),
                      format_eur(c.available_cents))
    out.print(table)
    if under_way:
        table = Table(title="Remboursements en cours")
        for column in ("n°", "paiement", "bénéficiaire", "montant", "état", "approuvé le"):
            table.add_column(column)
        for r in under_way:
            table.add_row(str(r.id), r.payment_id, r.beneficiary, format_eur(r.amount_cents), STATES[r.status],
                          f"{r.approved_on:%d/%m/%Y}")
        out.print(table)


@refund_group.command("approve")
@click.argument("payment_id")
@click.option("--name", "beneficiary", required=True, help="Nom du titulaire du compte, tel que la banque le connaît.")
@click.option("--iban", required=True, help="Le compte à payer (le RIB donné par le patient ou l'assureur).")
@click.option("--bic", help="Le BIC de sa banque (facultatif dans la zone SEPA).")
@day_option("--on", "on", help="Jour de l'approbation (jj/mm/aaaa ou ISO ; défaut : aujourd'hui).")
@pass_context
def refund_approve(ctx: Context, payment_id: str, beneficiary: str, iban: str, bic: str | None, on) -> None:
    """Approuver le remboursement de ce qui reste de l'avoir d'un paiement (audité).

    Exemple : recouvrement refund approve VIR-2026-0042 --name "Anne Martin" --iban FR7630006000011234567890189
    """
    done = approve_refund(ctx.engine, payment_id, beneficiary=beneficiary, iban=iban, bic=bic, today=on)
    out.print(f"remboursement {done.id} approuvé : {format_eur(done.amount_cents)} à {done.beneficiary} "
              f"(référence {done.end_to_end_id}) ; il partira dans le prochain fichier de virements")


@refund_group.command("cancel")
@click.argument("refund_id", type=int)
@click.option("--reason", required=True, help="Pourquoi (la banque a refusé le virement, compte erroné…).")
@pass_context
def refund_cancel(ctx: Context, refund_id: int, reason: str) -> None:
    """Annuler un remboursement pas encore payé : son avoir attend de nouveau un remboursement (audité)."""
    done = cancel_refund(ctx.engine, refund_id, reason=reason)
    out.print(f"remboursement {done.id} annulé ; le trop-perçu du paiement {done.payment_id} reste à rembourser")


@refund_group.command("file")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Le fichier XML pain.001 à déposer à la banque.")
@day_option("--on", "execution_date", help="Jour d'exécution demandé (jj/mm/aaaa ou ISO ; défaut : aujourd'hui).")
@pass_context
def refund_file(ctx: Context, out_file: Path, execution_date) -> None:
    """Les remboursements approuvés en un fichier de virements SEPA (ISO 20022 pain.001.001.09), payés depuis le
    compte [creditor] ; chaque remboursement est fait quand un relevé camt.053 montre son virement.

    Exemple : recouvrement refund file --out virements.xml
    """
    done = write_transfer_file(ctx.engine, ctx.settings, out_file, execution_date=execution_date)
    for path in done.rewritten:
        out.print(f"fichier interrompu écrit à nouveau (mêmes virements) : {path}")
    if done.path is not None:
        out.print(f"{done.refunds} virement(s), {format_eur(done.total_cents)}, écrits dans {done.path} : "
                  "à déposer sur le site de la banque")
