"""`recouvrement export agency` and `recouvrement import agency-returns`: the collection agency handover."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import click

from recouvrement.app.agency import export_agency, import_agency_returns, record_registered_post
from recouvrement.cli import Context, cli, out, pass_context, warning
from recouvrement.cli.options import as_of_option
from recouvrement.cli.import_commands import _print_summary, _report_rejects, export_group, format_option, import_group
from recouvrement.money import format_eur


@export_group.command("agency")
@as_of_option("Day of the handover (dd/mm/yyyy or ISO).", required=True)
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="CSV to write (never overwritten); FILE.manifest.json is written beside it.")
@format_option
@pass_context
def export_agency_command(ctx: Context, as_of, out_file: Path, dialect) -> None:
    """Hand the cases that finished the reminder ladder to the collection agency.

    A case: a patient's debt named in a mise en demeure sent at least `after_level3_days` days
    before, with no active plan, no open dispute, no hold, not time-barred, not handed over yet,
    and at least `min_amount_cents` due after credits (rules/agency.toml). The CSV holds identity,
    address, amounts, invoice numbers and dates, and the RF reference: never a NIR or any care detail.
    Exported cases leave the reminder ladder for good.
    """
    report = export_agency(ctx.engine, ctx.settings, as_of, out_file, dialect=dialect)
    if not report.cases:
        out.print(f"rien de nouveau à remettre le {as_of:%d/%m/%Y} (aucun fichier écrit)")
    else:
        out.print(f"{report.cases} dossier(s), {report.rows} facture(s), {format_eur(report.total_cents)}, écrits "
                  f"dans {report.file} ; manifeste {report.manifest}")
    if report.masked:
        warning(f"{report.masked} ligne(s) : coordonnées du débiteur masquées (le scanner y a vu une donnée "
                "médicale) ; les corriger dans le logiciel de facturation")
    reasons = Counter(report.left_out.values())
    if reasons:
        out.print("gardés à la clinique : " + ", ".join(f"{n} {KEPT_IN.get(reason, reason)}"
                                                        for reason, n in sorted(reasons.items())))


# Why a patient who got a mise en demeure stays in the building (codes of core.eligibility), in French.
KEPT_IN = {"below_minimum": "sous le montant minimum (rules/agency.toml)", "level3_too_recent":
           "mise en demeure trop récente", "handed_over": "déjà chez l'agence", "nothing_owed": "plus rien dû",
           "time_barred": "créance prescrite", "disputed": "contestation ouverte", "on_hold": "relances suspendues",
           "in_plan": "échéancier en cours", "plan_proposed": "échéancier proposé", "promise": "promesse de paiement",
           "minor_without_guarantor": "mineur sans garant", "pending_credit": "paiement en attente à son nom",
           "queued_payment": "paiement en attente qui peut être le sien", "insurer_awaited": "part d'assureur attendue",
           "exempt_coverage": "CSS / AME / AT-MP"}


@import_group.command("agency-returns")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--rejects", "rejects_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the refused rows (file, line, field, reason) to this CSV.")
@pass_context
def import_agency_returns_command(ctx: Context, file: Path, rejects_file: Path | None) -> None:
    """Import the agency's returns CSV: case_id, date, collected_amount, status[, note, commission_amount].

    status: collected, partial, plan_proposed, disputed, uncollectable, closed or returned. A collected
    amount (euros) becomes an 'agency' payment allocated to the case's invoices, oldest first; the
    agency's commission on it (the line's commission_amount, else commission_rate_bp of
    rules/agency.toml) is booked as the clinic's expense, never charged to the patient. disputed opens
    a complaint on each invoice of the case; uncollectable writes off what is still owed (reason
    agency-uncollectable). A returned case goes to the clinic's worklist and never back into the
    reminder ladder. Unknown case ids are refused with their line; re-importing a file changes nothing.
    """
    report = import_agency_returns(ctx.engine, file, rules=ctx.settings.rules())
    _print_summary([report])
    for message in report.warnings:
        warning(message)
    if report.rejects:
        _report_rejects(report.rejects, rejects_file)
        sys.exit(1)


@cli.command("registered-post")
@click.argument("letter_id")
@click.argument("tracking")
@pass_context
def registered_post_command(ctx: Context, letter_id: str, tracking: str) -> None:
    """Record that a postal letter (a mise en demeure) also went by registered post, with La Poste's
    tracking number: the agency file gives it with the mise en demeure (audited).

    Example: recouvrement registered-post L20250401-P1-3 "1A 123 456 7890 1"
    """
    number = record_registered_post(ctx.engine, letter_id, tracking)
    out.print(f"courrier {letter_id} : recommandé n° {number} enregistré")
