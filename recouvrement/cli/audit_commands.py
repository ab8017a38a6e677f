"""`recouvrement audit verify|log|scan`: the proof that the trail is whole and that no medical data left."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from recouvrement.app.audit_views import DEFAULT_LIMIT, audit_log, verify_files, verify_log
from recouvrement.cli import Context, Table, cli, error, out, pass_context, warning
from recouvrement.scanner import format_finding, known_texts, scan_paths


@cli.group()
def audit() -> None:
    """La piste d'audit (événements chaînés et scellés par la clé d'audit) et le contrôle des fichiers contre les données médicales."""


@audit.command("verify")
@click.option("--files", "folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Vérifier aussi les fichiers écrits sous ce dossier (courriers, PDF, exports, manifestes, rapports) "
                   "contre le SHA-256 que garde la piste.")
@pass_context
def audit_verify(ctx: Context, folder: Path | None) -> None:
    """Vérifier le chaînage et le MAC (clé d'audit) de chaque événement, puis la tête contre le fichier de point
    de contrôle ; code de sortie 1 en nommant ce qui ne va pas : le premier événement faux, ou les événements
    manquants après le dernier.

    Exemple : recouvrement audit verify --files out/"""
    result = verify_log(ctx.engine)
    for message in result.warnings:
        warning(message)
    broken = not result.ok
    if broken:
        where = (f"après l'événement {result.missing_after}" if result.missing_after is not None
                 else f"à l'événement {result.first_bad}")
        error(f"{result.problem} ({result.events} événement(s) lus ; dernière empreinte valide {result.head})",
              label=f"journal d'audit rompu {where}")
    else:
        sealed = f" dont {result.legacy} ancien(s) scellé(s) par la clé" if result.legacy else ""
        anchored = (f" ; point de contrôle du {result.checkpoint.at} (événement {result.checkpoint.seq}) conforme"
                    if result.checkpoint is not None else "")
        out.print(f"{result.events} événement(s){sealed}, chaîne intègre{anchored} ; tête {result.head}")
    if folder is not None:
        files = verify_files(ctx.engine, folder)
        for path, seq in files.modified:
            error(f"{path} (empreinte de l'événement {seq})", label="fichier modifié")
        for path, seq in files.missing:
            error(f"{path} (écrit à l'événement {seq})", label="fichier manquant")
        for path, left in files.waiting:
            warning(f"{path} : intact, en attente dans {left} (passage de relances interrompu après "
                    "l'enregistrement) ; le prochain « recouvrement remind » le met en place")
        if files.checked == 0:
            warning(f"le journal ne nomme aucun fichier sous {folder}")
        out.print(f"{files.checked} fichier(s) vérifié(s) : {len(files.modified)} modifié(s), "
                  f"{len(files.missing)} manquant(s)" + (f", {len(files.waiting)} en attente" if files.waiting else ""))
        broken = broken or not files.ok
    if broken:
        sys.exit(1)


@audit.command("log")
@click.option("--patient", "patient_id", help="Seulement les événements de ce patient.")
@click.option("--invoice", "invoice_number", help="Seulement les événements de cette facture (y compris "
                                                  "courriers, échéanciers et dossiers d'agence qui la citent).")
@click.option("--limit", type=click.IntRange(min=1), default=DEFAULT_LIMIT, show_default=True,
              help="Les N derniers événements.")
@pass_context
def audit_log_command(ctx: Context, patient_id: str | None, invoice_number: str | None, limit: int) -> None:
    """Les derniers événements, du plus ancien au plus récent : n°, heure, type, auteur, patient, facture, résumé."""
    rows = audit_log(ctx.engine, patient_id=patient_id, invoice_number=invoice_number, limit=limit)
    table = Table(title="Journal d'audit")
    for column in ("n°", "heure (UTC)", "événement", "par", "patient", "facture", "détail"):
        table.add_column(column, justify="right" if column == "n°" else "left", overflow="fold")
    for r in rows:
        table.add_row(str(r.seq), r.at.replace("T", " ")[:19], r.kind, r.actor or "", r.patient_id or "",
                      r.invoice_number or "", r.summary())
    out.print(table)
    out.print(f"{len(rows)} événement(s) affiché(s)")


@audit.command("scan")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@pass_context
def audit_scan(ctx: Context, paths: tuple[Path, ...]) -> None:
    """Chercher des données médicales dans des fichiers et dossiers ; chaque trouvaille est affichée masquée ;
    code de sortie 1 s'il y en a.

    L'identité du créancier dans les réglages ([creditor] nom, adresse, ville, e-mail) est un texte connu,
    comme lors de l'écriture des documents.
    """
    findings = scan_paths(paths, known=known_texts(ctx.settings))
    for path, finding in findings:
        out.print(format_finding(path, finding))
    files = len({path for path, _ in findings})
    if findings:
        out.print(f"{len(findings)} constat(s) dans {files} fichier(s)")
        sys.exit(1)
    out.print("aucune donnée médicale trouvée")
