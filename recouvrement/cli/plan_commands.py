"""`recouvrement plan propose|accept|show|cancel`: fee-free instalment plans (échéanciers)."""

from __future__ import annotations

from pathlib import Path

import click
from recouvrement.app.plans import PlanSummary, accept, cancel, propose, show
from recouvrement.cli import Context, Table, cli, out, pass_context
from recouvrement.cli.options import as_of_option, day_option
from recouvrement.errors import RecouvrementError
from recouvrement.money import format_eur

STATUS_FR = {"proposed": "proposé", "lapsed": "caduc", "active": "actif", "completed": "soldé", "cancelled": "annulé",
             "broken": "rompu", "defaulted": "rompu"}


@cli.group("plan")
def plan_group() -> None:
    """Proposer, accepter, suivre et annuler des échéanciers (sans frais, sans intérêts)."""


@plan_group.command("propose")
@click.argument("patient_id")
@as_of_option("Jour de la proposition (jj/mm/aaaa ou ISO ; défaut : aujourd'hui) ; la dette est mesurée ce jour-là.")
@click.option("--months", type=int, help="Nombre de mensualités (défaut : autant que les règles le permettent).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Dossier du courrier de proposition (défaut : plans/ dans le dossier de sortie).")
@pass_context
def propose_command(ctx: Context, patient_id: str, as_of, months: int | None, out_dir: Path | None) -> None:
    """Proposer un échéancier sur la dette ouverte du patient et écrire le courrier de proposition (HTML et PDF)."""
    proposal = propose(ctx.engine, patient_id, as_of, ctx.settings, months=months, out_dir=out_dir)
    out.print(f"échéancier {proposal.plan_id} proposé à {patient_id} : {format_eur(proposal.total_cents)} en "
              f"{len(proposal.instalments)} échéance(s), factures {' '.join(proposal.invoice_numbers)}")
    for instalment in proposal.instalments:
        out.print(f"  {instalment.due_date:%d/%m/%Y}  {format_eur(instalment.amount_cents)}")
    for path in proposal.files:
        out.print(f"  lettre : {path}")


@plan_group.command("accept")
@click.argument("plan_id", type=int)
@day_option("--on", "on", help="Jour de l'acceptation (jj/mm/aaaa ou ISO ; défaut : aujourd'hui).")
@pass_context
def accept_command(ctx: Context, plan_id: int, on) -> None:
    """Le patient a accepté : l'échéancier devient actif et ses factures quittent l'échelle des relances."""
    accept(ctx.engine, plan_id, on)
    out.print(f"échéancier {plan_id} actif")


@plan_group.command("cancel")
@click.argument("plan_id", type=int)
@day_option("--on", "on", help="Jour de l'annulation (jj/mm/aaaa ou ISO ; défaut : aujourd'hui).")
@pass_context
def cancel_command(ctx: Context, plan_id: int, on) -> None:
    """Annuler un échéancier proposé ou actif : ses factures reviennent dans l'échelle des relances."""
    cancel(ctx.engine, plan_id, on)
    out.print(f"échéancier {plan_id} annulé")


@plan_group.command("show")
@click.argument("plan_id", type=int, required=False)
@click.option("--patient", "patient_id", help="Montrer plutôt tous les échéanciers de ce patient.")
@as_of_option("Jour où juger l'échéancier (jj/mm/aaaa ou ISO ; défaut : aujourd'hui).")
@pass_context
def show_command(ctx: Context, plan_id: int | None, patient_id: str | None, as_of) -> None:
    """Le calendrier d'un échéancier, ce qui a été payé jusqu'ici et où il en est."""
    if (plan_id is None) == (patient_id is None):
        raise RecouvrementError("indiquer soit PLAN_ID, soit --patient ID", field="PLAN_ID")
    plans = show(ctx.engine, as_of, plan_id=plan_id, patient_id=patient_id)
    if not plans:
        out.print(f"aucun échéancier pour le patient {patient_id}")
    for plan in plans:
        _print_plan(plan)


def _print_plan(plan: PlanSummary) -> None:
    out.print(f"échéancier {plan.plan_id}", style="bold", end="")
    out.print(f" — patient {plan.patient_id} — {STATUS_FR.get(plan.status, plan.status)} "
              f"(proposé le {_fr(plan.proposed_on)}, accepté le {_fr(plan.accepted_on)}, "
              f"terminé le {_fr(plan.ended_on)})")
    out.print(f"  factures {' '.join(plan.invoice_numbers)} ; total {format_eur(plan.total_cents)} ; "
              f"payé à ce jour {format_eur(plan.standing.paid_cents)}")
    table = Table()
    for column in ("n°", "échéance", "montant", "couverte"):
        table.add_column(column, justify="right" if column in ("n°", "montant") else "left")
    cumulative = 0
    for seq, instalment in enumerate(plan.instalments, start=1):
        cumulative += instalment.amount_cents
        table.add_row(str(seq), f"{instalment.due_date:%d/%m/%Y}", format_eur(instalment.amount_cents),
                      "oui" if plan.standing.paid_cents >= cumulative else "non")
    out.print(table)
    out.print(f"  au regard du calendrier : {STATUS_FR.get(plan.standing.state, plan.standing.state)} — {plan.standing.reason}")


def _fr(day) -> str:
    """A day as on the letters (dd/mm/yyyy), "-" when there is none."""
    if not day:
        return "-"
    return f"{day:%d/%m/%Y}" if hasattr(day, "strftime") else str(day)
