"""`recouvrement import ...` and `recouvrement export payments`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from recouvrement.render.files import write_rejects
from recouvrement.cli import Context, LazyGroup, Table, cli, console, error, out, pass_context, user_message, warning
from recouvrement.errors import RecouvrementError
from recouvrement.render.csvfile import DIALECTS

if TYPE_CHECKING:
    from recouvrement.importers.base import ImportReport, Reject


# The subcommands other modules add to `import` and `export`, imported when asked for (see LazyGroup).
IMPORT_MODULES = {"agency-returns": ("agency_commands",)}
EXPORT_MODULES = {"agency": ("agency_commands",), "fec": ("books_commands",),
                  "allocations": ("reconcile_commands",), "exceptions": ("reconcile_commands",)}


@cli.group("import", cls=LazyGroup, lazy=IMPORT_MODULES)
def import_group() -> None:
    """Importer factures et paiements (exports CSV, remises des assureurs, camt.053, CFONB 120)."""


def _run_imports(ctx: Context, files: tuple[Path, ...], expect: str, strict: bool, rejects_file: Path | None) -> None:
    missing = [path for path in files if not path.is_file()]
    if missing:   # a typo on the command line: nothing is imported, the user corrects it
        raise RecouvrementError("fichier introuvable" if not missing[0].exists() else "ce n'est pas un fichier",
                                file=str(missing[0]))
    from recouvrement.app.imports import ImportRefused, import_file
    reports: list[ImportReport] = []
    failed = False
    for path in files:
        try:
            reports.append(import_file(ctx.engine, path, ctx.settings, expect=expect, strict=strict))
        except ImportRefused as exc:
            reports.append(exc.report)
            error(exc, label="refusé")
        except RecouvrementError as exc:   # one unreadable file does not stop the others
            error(user_message(exc))
            failed = True
    if reports:
        _print_summary(reports)
    rejects = [r for report in reports for r in report.rejects]
    for message in (w for report in reports for w in report.warnings):
        warning(message)
    if rejects:
        _report_rejects(rejects, rejects_file)
    if rejects or failed:
        sys.exit(1)


def _print_summary(reports: list[ImportReport]) -> None:
    table = Table(title="Import")
    for column in ("fichier", "format", "lignes", "importées", "déjà là", "refusées"):
        table.add_column(column, justify="left" if column in ("fichier", "format") else "right")
    for r in reports:
        table.add_row(r.file, r.format, str(r.rows_read), str(r.imported), str(r.duplicates), str(len(r.rejects)))
    out.print(table)
    for r in reports:
        if r.refunds_done:
            out.print(f"{r.file} : {r.refunds_done} remboursement(s) versé(s) par la banque, trop-perçu(s) soldé(s)")


def _report_rejects(rejects: list[Reject], rejects_file: Path | None) -> None:
    if rejects_file:
        write_rejects(rejects_file, [(r.file, r.line, r.field, r.reason) for r in rejects])
        console.print(f"{len(rejects)} ligne(s) refusée(s) listée(s) dans {rejects_file}")
    shown = rejects[:50]
    for reject in shown:
        error(reject, label="refusée")
    if len(rejects) > len(shown):
        console.print(f"… et {len(rejects) - len(shown)} autre(s) (--rejects FICHIER pour la liste complète)")


def _import_command(kind: str):
    @click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
    @click.option("--strict", is_flag=True, help="Refuser tout le fichier dès qu'une de ses lignes est refusée.")
    @click.option("--rejects", "rejects_file", type=click.Path(dir_okay=False, path_type=Path),
                  help="Écrire aussi les lignes refusées (fichier, ligne, champ, motif) dans ce CSV.")
    @pass_context
    def command(ctx: Context, files, strict, rejects_file) -> None:
        _run_imports(ctx, files, kind, strict, rejects_file)
    return command


import_group.command("invoices", help="Importer des fichiers CSV de factures, chacun dans sa propre transaction.")(_import_command("invoices"))
import_group.command("payments", help="Importer des fichiers de paiements : CSV de remises, relevés camt.053 ou CFONB 120.")(
    _import_command("payments"))


@cli.group("export", cls=LazyGroup, lazy=EXPORT_MODULES)
def export_group() -> None:
    """Exporter le contenu de la base en CSV (contrôlé contre les données médicales avant écriture).

    Les cellules de texte qu'un tableur exécuterait comme une formule (commençant par = + - @) sont précédées
    d'une '.
    """


def format_option(command):
    """--format csv|excel-fr, shared by every command that writes a CSV export."""
    return click.option(
        "--format", "dialect", type=click.Choice(sorted(DIALECTS)), default="csv", show_default=True,
        callback=lambda _ctx, _param, value: DIALECTS[value],
        help="csv : virgule, point décimal, UTF-8, LF. excel-fr : point-virgule, virgule décimale, UTF-8 avec BOM, "
             "CRLF (s'ouvre en colonnes dans un Excel français).")(command)


@export_group.command("payments")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@format_option
@pass_context
def export_payments_command(ctx: Context, out_file: Path, dialect) -> None:
    """Tous les paiements importés, tels que lus : pour vérifier ce qu'un import a compris.

    Exemple : recouvrement export payments --out paiements.csv --format excel-fr
    """
    from recouvrement.app.exports import export_payments
    count = export_payments(ctx.engine, out_file, dialect)
    out.print(f"{count} paiement(s) écrit(s) dans {out_file}")
