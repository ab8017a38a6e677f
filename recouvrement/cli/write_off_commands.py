"""`recouvrement write-off`: the accountant writes off a debt (admission en non-valeur)."""

from __future__ import annotations

import click

from recouvrement.app.write_offs import REASONS, write_off
from recouvrement.cli import Context, cli, out, pass_context
from recouvrement.cli.options import day_option
from recouvrement.core.books import WRITE_OFF_REASONS
from recouvrement.money import format_eur


@cli.command("write-off")
@click.argument("invoice_number")
@click.option("--reason", required=True, type=click.Choice([r.replace("_", "-") for r in REASONS]),
              callback=lambda _ctx, _param, value: value.replace("-", "_"),
              help="time-barred (prescrite), deceased (débiteur décédé), agency-uncollectable (rendue irrécouvrable "
                   "par l'agence), under-cost (inférieure au coût du recouvrement).")
@click.option("--note", help="Note interne (gardée en base, jamais dans un courrier ni un export).")
@day_option("--on", "on", help="Jour de l'admission en non-valeur (jj/mm/aaaa ou ISO ; défaut : aujourd'hui).")
@pass_context
def write_off_command(ctx: Context, invoice_number: str, reason: str, note: str | None, on) -> None:
    """Passer en non-valeur ce que le patient doit encore sur une facture : elle quitte les relances, les
    échéanciers, le fichier de l'agence et la balance ; elle reste dans la piste d'audit et est comptée dans le
    FEC (audité).

    Exemple : recouvrement write-off F2024-000123 --reason time-barred
    """
    done = write_off(ctx.engine, invoice_number, reason=reason, today=on, note=note)
    out.print(f"{format_eur(done.amount_cents)} de la facture {done.invoice_number} passés en non-valeur "
              f"({WRITE_OFF_REASONS[done.reason]})")
