"""`recouvrement audit verify|log|scan`: the proof that the trail is whole and that no medical data left."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from recouvrement.app.audit_views import DEFAULT_LIMIT, audit_log, verify_log
from recouvrement.cli import Context, Table, cli, error, out, pass_context
from recouvrement.scanner import format_finding, known_texts, scan_paths


@cli.group()
def audit() -> None:
    """The audit trail (hash-chained events) and the privacy scan of files."""


@audit.command("verify")
@pass_context
def audit_verify(ctx: Context) -> None:
    """Check the hash chain of every event; exit 1 naming the first bad event."""
    result = verify_log(ctx.engine)
    if result.ok:
        out.print(f"{result.events} événement(s), chaîne intacte ; tête {result.head}")
        return
    error(f"{result.problem} ({result.events} événement(s) lus ; dernière empreinte bonne {result.head})",
          label=f"journal d'audit rompu à l'événement {result.first_bad}")
    sys.exit(1)


@audit.command("log")
@click.option("--patient", "patient_id", help="Only this patient's events.")
@click.option("--invoice", "invoice_number", help="Only this invoice's events.")
@click.option("--limit", type=click.IntRange(min=1), default=DEFAULT_LIMIT, show_default=True,
              help="The latest N events.")
@pass_context
def audit_log_command(ctx: Context, patient_id: str | None, invoice_number: str | None, limit: int) -> None:
    """The latest events, oldest first: seq, time, kind, patient, invoice, payload summary."""
    rows = audit_log(ctx.engine, patient_id=patient_id, invoice_number=invoice_number, limit=limit)
    table = Table(title="Journal d'audit")
    for column in ("seq", "heure (UTC)", "type", "patient", "facture", "contenu"):
        table.add_column(column, justify="right" if column == "seq" else "left", overflow="fold")
    for r in rows:
        table.add_row(str(r.seq), r.at.replace("T", " ")[:19], r.kind, r.patient_id or "", r.invoice_number or "",
                      r.summary())
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
