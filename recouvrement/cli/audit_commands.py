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
    """The audit trail (events chained and sealed with the audit key) and the privacy scan of files."""


@audit.command("verify")
@click.option("--files", "folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Also check the files written under this folder (letters, PDFs, exports, manifests, reports) "
                   "against the SHA-256 the trail holds.")
@pass_context
def audit_verify(ctx: Context, folder: Path | None) -> None:
    """Check every event's link and MAC (audit key), then the head against the checkpoint file; exit 1 naming
    what is wrong: the first bad event, or the events missing after the last one.

    Example: recouvrement audit verify --files out/"""
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
        if files.checked == 0:
            warning(f"le journal ne nomme aucun fichier sous {folder}")
        out.print(f"{files.checked} fichier(s) vérifié(s) : {len(files.modified)} modifié(s), "
                  f"{len(files.missing)} manquant(s)")
        broken = broken or not files.ok
    if broken:
        sys.exit(1)


@audit.command("log")
@click.option("--patient", "patient_id", help="Only this patient's events.")
@click.option("--invoice", "invoice_number", help="Only the events about this invoice (letters, plans and "
                                                  "agency cases that list it included).")
@click.option("--limit", type=click.IntRange(min=1), default=DEFAULT_LIMIT, show_default=True,
              help="The latest N events.")
@pass_context
def audit_log_command(ctx: Context, patient_id: str | None, invoice_number: str | None, limit: int) -> None:
    """The latest events, oldest first: seq, time, kind, who, patient, invoice, payload summary."""
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
    """Scan files and folders for medical data; print each finding masked; exit 1 if any.

    The creditor's identity of the settings ([creditor] name, address, city, e-mail) is known text,
    as when the documents were written.
    """
    findings = scan_paths(paths, known=known_texts(ctx.settings))
    for path, finding in findings:
        out.print(format_finding(path, finding))
    files = len({path for path, _ in findings})
    if findings:
        out.print(f"{len(findings)} constat(s) dans {files} fichier(s)")
        sys.exit(1)
    out.print("aucune donnée médicale trouvée")
