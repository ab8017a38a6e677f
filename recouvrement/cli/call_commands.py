"""`recouvrement call list|record`: the ladder's phone steps, as the nights listed them, and their outcomes."""

from __future__ import annotations

import click

from recouvrement.app.calls import OUTCOMES, call_list, call_of, record_call
from recouvrement.app.disputes import open_dispute
from recouvrement.app.patient_account import patient_account
from recouvrement.app.promises import record_promise
from recouvrement.audit import os_actor
from recouvrement.cli import Context, Table, cli, out, pass_context
from recouvrement.cli.options import day_option
from recouvrement.errors import RecouvrementError
from recouvrement.money import format_eur


@cli.group("call")
def call_group() -> None:
    """La liste d'appels des étapes téléphoniques de l'échelle (rules/ladder.toml, channel = "phone") et leurs issues."""


@call_group.command("list")
@pass_context
def list_command(ctx: Context) -> None:
    """Les appels restant à passer, tels que les traitements de nuit les ont listés.

    Exemple : recouvrement call list"""
    calls = call_list(ctx.engine)
    if not calls:
        out.print("aucun appel à passer")
        return
    table = Table("appel", "patient", "nom", "téléphone", "montant", "niveau", "liste du")
    for c in calls:
        table.add_row(c.call_id, c.patient_id, f"{c.last_name} {c.first_name}", c.phone, format_eur(c.amount_cents),
                      str(c.level), f"{c.listed_on:%d/%m/%Y}")
    out.print(table)


@call_group.command("record")
@click.argument("call_id")
@click.argument("outcome", type=click.Choice(list(OUTCOMES)))
@day_option("--on", "on", help="Jour de l'appel (jj/mm/aaaa ou ISO ; défaut : aujourd'hui).")
@day_option("--until", "until", default_today=False, help="promise : le jour avant lequel le patient a promis de payer.")
@click.option("--invoice", help="dispute : la facture que le patient conteste (une de celles de l'appel).")
@click.option("--reason", help="dispute : ce que le patient conteste (sans détail de soin).")
@pass_context
def record_command(ctx: Context, call_id: str, outcome: str, on, until, invoice: str | None,
                   reason: str | None) -> None:
    """Noter l'issue d'un appel : reached, promise (--until), dispute (--invoice, --reason), wrong_number, no_answer.

    Exemple : recouvrement call record C20261208-P000012-2 promise --until 31/12/2026"""
    call = call_of(ctx.engine, call_id)
    if call is None:
        raise RecouvrementError(f"appel inconnu {call_id!r}", field="CALL_ID")
    if call.status == "open" and outcome == "promise":
        if until is None:
            raise click.UsageError("une promesse demande sa date (--until)")
        account = patient_account(ctx.engine, call.patient_id, on, ctx.settings.rules())
        record_promise(ctx.engine, call.patient_id, until, on, owed_cents=account.net_due_cents if account else 0,
                       actor=os_actor())
    elif call.status == "open" and outcome == "dispute":
        if invoice is None and len(call.invoice_numbers) == 1:
            invoice = call.invoice_numbers[0]
        if invoice not in call.invoice_numbers:
            raise click.UsageError(f"--invoice : choisir l'une des factures de l'appel : "
                                   f"{', '.join(call.invoice_numbers)}")
        open_dispute(ctx.engine, str(invoice), reason or "", channel="phone", received=on)
    record_call(ctx.engine, call_id, outcome, on, actor=os_actor())
    out.print(f"appel {call_id} : {OUTCOMES[outcome]}")
