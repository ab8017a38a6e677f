"""`recouvrement nightly`, `runs`, `report`, `schedule` and `unlock`: the unattended side of the job."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click
from recouvrement.cli import Context, Table, cli, error, out, pass_context, warning
from recouvrement.cli.options import as_of_option
from recouvrement.errors import RecouvrementError

LOCKED_EXIT = 3


STATUS_FR = {"ok": "terminé", "failed": "en échec", "running": "en cours"}


def print_run(result) -> None:
    counts = result.counts
    files = counts.get("files", {})
    out.print(f"passage {result.run_id} du {result.as_of:%d/%m/%Y} : ", end="")
    out.print(STATUS_FR.get(result.status, result.status), style="bold")
    out.print(f"  fichiers : {files.get('seen', 0)} vus, {files.get('imported', 0)} importés, "
              f"{files.get('quarantined', 0)} en quarantaine, {files.get('left', 0)} laissés dans la boîte ; "
              f"lignes importées : {counts.get('rows', {}).get('imported', 0)}")
    out.print(f"  affectations : {counts.get('allocations', 0)} ; file d'attente : {counts.get('exceptions', {})}")
    kept = (f" (gardés à la clinique, sous le minimum : {counts['agency_below_minimum']})"
            if counts.get("agency_below_minimum") else "")
    out.print(f"  lettres par niveau : {counts.get('letters', {})} ; dossiers remis à l'agence : "
              f"{counts.get('agency_cases', 0)}{kept}")
    calls = counts.get("calls", {})
    if calls:
        out.print(f"  appels : {calls.get('listed', 0)} ajouté(s) à la liste ; {calls.get('closed', 0)} retiré(s) "
                  "(sans issue à temps ou plus utiles)")
    emails = counts.get("emails", {})
    if counts.get("sent") or emails:
        out.print(f"  e-mails envoyés : {counts.get('sent', 0)} ; en attente : {emails.get('queued', 0)} ; "
                  f"refusés pour de bon : {emails.get('failed', 0)}")
    for message in result.errors:
        warning(message, label="  problème")
    if result.report:
        out.print(f"  rapport : {result.report}")


@cli.command()
@as_of_option("Le jour à traiter (jj/mm/aaaa ou ISO ; défaut : aujourd'hui).")
@click.option("--wait", default=0, show_default=True, type=click.FloatRange(min=0),
              help="Secondes d'attente d'un traitement déjà en cours avant d'abandonner (code de sortie 3).")
@pass_context
def nightly(ctx: Context, as_of: date, wait: float) -> None:
    """Importer la boîte de dépôt, rapprocher, mettre à jour les échéanciers, relancer, remettre à l'agence, écrire le rapport."""
    from recouvrement.app.lock import LockHeld
    from recouvrement.app.nightly import run_nightly
    try:
        result = run_nightly(ctx.engine, ctx.settings, as_of, wait=wait)
    except LockHeld as exc:
        error(exc, label="verrouillé")
        sys.exit(LOCKED_EXIT)
    print_run(result)
    if result.status != "ok":
        sys.exit(1)


@cli.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@pass_context
def runs(ctx: Context, limit: int) -> None:
    """L'historique des traitements de nuit, du plus récent au plus ancien."""
    from recouvrement.app.nightly import list_runs
    table = Table(title="Passages")
    for column in ("n°", "jour", "début (UTC)", "fin (UTC)", "statut", "fichiers", "affectations", "lettres",
                   "problèmes"):
        table.add_column(column)
    for run in list_runs(ctx.engine, limit):
        files = run.counts.get("files", {})
        table.add_row(str(run.id), f"{run.as_of:%d/%m/%Y}", f"{run.started_at:%d/%m/%Y %H:%M}",
                      f"{run.ended_at:%H:%M:%S}" if run.ended_at else "", STATUS_FR.get(run.status, run.status),
                      f"{files.get('imported', 0)}/{files.get('seen', 0)}", str(run.counts.get("allocations", "")),
                      str(sum(run.counts.get("letters", {}).values())), run.errors.replace("\n", "; ")[:80])
    out.print(table)


@cli.command()
@as_of_option("Situation à la fin de ce jour (jj/mm/aaaa ou ISO ; défaut : aujourd'hui).")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@pass_context
def report(ctx: Context, as_of: date, out_file: Path) -> None:
    """Le rapport du comptable en une page HTML (balance, DSO, file, contestations, courriers, échéanciers, agence)."""
    from recouvrement.app.report import write_report
    path = write_report(ctx.engine, ctx.settings, as_of, out_file)
    out.print(f"rapport écrit dans {path}")


@cli.command()
@click.option("--wait", default=0, show_default=True, type=click.FloatRange(min=0),
              help="Secondes qu'attend chaque traitement planifié si un autre est déjà en cours.")
@pass_context
def schedule(ctx: Context, wait: float) -> None:
    """Lancer le traitement de nuit selon le cron [schedule] (défaut 02:30 Europe/Paris) jusqu'à l'arrêt (SIGTERM, ^C)."""
    from recouvrement.scheduler import serve
    engine = ctx.engine  # migrate the schema and check the URL before the scheduler starts
    serve(ctx.settings, str(engine.url.render_as_string(hide_password=False)), ctx.config_file, wait=wait,
          say=lambda line: out.print(line))


@cli.command()
@click.option("--yes", is_flag=True, help="Confirmer que le processus détenteur a bien disparu.")
@pass_context
def unlock(ctx: Context, yes: bool) -> None:
    """Libérer le verrou de nuit tenu par un processus mort sur une autre machine (audité)."""
    from recouvrement.app.lock import current_holder, force_release
    found = current_holder(ctx.engine)
    if found is None:
        out.print("le verrou de la nuit est libre")
        return
    if not yes:
        raise RecouvrementError(f"le verrou est tenu par {found[0]} depuis le {found[1]:%d/%m/%Y %H:%M} UTC ; "
                                "vérifier que ce processus n'existe plus, puis relancer avec --yes", field="--yes")
    out.print(f"verrou libéré (il était tenu par {force_release(ctx.engine)})")
