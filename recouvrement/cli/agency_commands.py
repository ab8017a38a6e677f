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
@as_of_option("Jour de la remise (jj/mm/aaaa ou ISO).", required=True)
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="CSV à écrire (jamais écrasé) ; FICHIER.manifest.json est écrit à côté.")
@format_option
@pass_context
def export_agency_command(ctx: Context, as_of, out_file: Path, dialect) -> None:
    """Confier à l'agence de recouvrement les dossiers qui ont fini l'échelle des relances.

    Un dossier : la dette d'un patient nommée dans une mise en demeure envoyée au moins `after_level3_days`
    jours plus tôt, sans échéancier actif, sans contestation ouverte, sans suspension, non prescrite, pas
    encore confiée, et d'au moins `min_amount_cents` dus après avoirs (rules/agency.toml). Le CSV contient
    identité, adresse, montants, numéros et dates des factures et la référence RF : jamais un NIR ni un
    détail de soin. Les dossiers exportés quittent l'échelle des relances pour de bon.
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
              help="Écrire aussi les lignes refusées (fichier, ligne, champ, motif) dans ce CSV.")
@pass_context
def import_agency_returns_command(ctx: Context, file: Path, rejects_file: Path | None) -> None:
    """Importer le CSV des retours de l'agence : case_id, date, collected_amount, status[, note, commission_amount].

    status : collected, partial, plan_proposed, disputed, uncollectable, closed ou returned. Un montant
    encaissé (en euros) devient un paiement 'agency' imputé sur les factures du dossier, les plus anciennes
    d'abord ; la commission de l'agence (commission_amount de la ligne, sinon commission_rate_bp de
    rules/agency.toml) est comptée en charge de l'établissement, jamais facturée au patient. disputed ouvre
    une contestation sur chaque facture du dossier ; uncollectable passe en non-valeur ce qui reste dû
    (motif agency-uncollectable). Un dossier rendu (returned) va à la liste de travail de l'établissement et
    ne revient jamais dans l'échelle des relances. Un case_id inconnu est refusé avec sa ligne ; réimporter un
    fichier ne change rien.
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
    """Noter qu'un courrier postal (une mise en demeure) est aussi parti en recommandé, avec le numéro de
    suivi de La Poste : le fichier de l'agence le donne avec la mise en demeure (audité).

    Exemple : recouvrement registered-post L20250401-P1-3 "1A 123 456 7890 1"
    """
    number = record_registered_post(ctx.engine, letter_id, tracking)
    out.print(f"courrier {letter_id} : recommandé n° {number} enregistré")
