"""`recouvrement plan propose|accept|show|cancel`: fee-free instalment plans (échéanciers)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click
from rich.table import Table

from recouvrement.app.plans import PlanSummary, accept, cancel, propose, show
from recouvrement.cli import Context, cli, out, pass_context
from recouvrement.errors import RecouvrementError
from recouvrement.money import format_eur

DAY = click.DateTime(formats=["%Y-%m-%d"])


def _day(value) -> date:
    return value.date() if value is not None else date.today()


@cli.group("plan")
def plan_group() -> None:
    """Propose, accept, follow and cancel instalment plans (no fees, no interest)."""


@plan_group.command("propose")
@click.argument("patient_id")
@click.option("--as-of", type=DAY, help="Day of the proposal (default: today); the debt is measured on it.")
@click.option("--months", type=int, help="Number of monthly instalments (default: as many as the rules allow).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the proposal letter (default: the output folder's plans/).")
@pass_context
def propose_command(ctx: Context, patient_id: str, as_of, months: int | None, out_dir: Path | None) -> None:
    """Propose a plan over the patient's open debt and write the proposal letter (HTML and PDF)."""
    proposal = propose(ctx.engine, patient_id, _day(as_of), ctx.settings, months=months, out_dir=out_dir)
    out.print(f"plan {proposal.plan_id} proposed to {patient_id}: {format_eur(proposal.total_cents)} in "
              f"{len(proposal.instalments)} instalment(s), invoices {' '.join(proposal.invoice_numbers)}")
    for instalment in proposal.instalments:
        out.print(f"  {instalment.due_date.isoformat()}  {format_eur(instalment.amount_cents)}")
    for path in proposal.files:
        out.print(f"  letter: {path}")


@plan_group.command("accept")
@click.argument("plan_id", type=int)
@click.option("--on", "on", type=DAY, help="Day the patient accepted (default: today).")
@pass_context
def accept_command(ctx: Context, plan_id: int, on) -> None:
    """The patient accepted: the plan becomes active and its invoices leave the reminder ladder."""
    accept(ctx.engine, plan_id, _day(on))
    out.print(f"plan {plan_id} is active")


@plan_group.command("cancel")
@click.argument("plan_id", type=int)
@click.option("--on", "on", type=DAY, help="Day of the cancellation (default: today).")
@pass_context
def cancel_command(ctx: Context, plan_id: int, on) -> None:
    """Cancel a proposed or active plan: its invoices go back to the reminder ladder."""
    cancel(ctx.engine, plan_id, _day(on))
    out.print(f"plan {plan_id} cancelled")


@plan_group.command("show")
@click.argument("plan_id", type=int, required=False)
@click.option("--patient", "patient_id", help="Show every plan of this patient instead.")
@click.option("--as-of", type=DAY, help="Day to judge the plan on (default: today).")
@pass_context
def show_command(ctx: Context, plan_id: int | None, patient_id: str | None, as_of) -> None:
    """A plan's schedule, what was paid so far and where it stands."""
    if (plan_id is None) == (patient_id is None):
        raise RecouvrementError("give either PLAN_ID or --patient ID", field="PLAN_ID")
    plans = show(ctx.engine, _day(as_of), plan_id=plan_id, patient_id=patient_id)
    if not plans:
        out.print(f"no plan for patient {patient_id}")
    for plan in plans:
        _print_plan(plan)


def _print_plan(plan: PlanSummary) -> None:
    out.print(f"[bold]plan {plan.plan_id}[/] — patient {plan.patient_id} — {plan.status} "
              f"(proposed {plan.proposed_on}, accepted {plan.accepted_on or '-'}, ended {plan.ended_on or '-'})")
    out.print(f"  invoices {' '.join(plan.invoice_numbers)}; total {format_eur(plan.total_cents)}; "
              f"paid so far {format_eur(plan.standing.paid_cents)}")
    table = Table()
    for column in ("#", "due", "amount", "covered"):
        table.add_column(column, justify="right" if column in ("#", "amount") else "left")
    cumulative = 0
    for seq, instalment in enumerate(plan.instalments, start=1):
        cumulative += instalment.amount_cents
        table.add_row(str(seq), instalment.due_date.isoformat(), format_eur(instalment.amount_cents),
                      "yes" if plan.standing.paid_cents >= cumulative else "no")
    out.print(table)
    out.print(f"  on the schedule: {plan.standing.state} — {plan.standing.reason}")
