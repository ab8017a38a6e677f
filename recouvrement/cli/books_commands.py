"""`recouvrement export fec`: the books of a fiscal year for the accountant (FEC and journal CSV)."""

from __future__ import annotations

from pathlib import Path

import click

from recouvrement.app.books import export_fec
from recouvrement.cli import Context, out, pass_context
from recouvrement.cli.import_commands import export_group
from recouvrement.money import format_eur
from recouvrement.render.fec import SEPARATORS
from recouvrement.rules import load_rules


def rules_option(command):
    return click.option("--rules", "rules_dir", type=click.Path(file_okay=False, path_type=Path),
                        help="Folder of the policy files, accounting.toml among them (default: the bundled "
                             "rules/).")(command)


@export_group.command("fec")
@click.option("--year", required=True, type=click.IntRange(1900, 2100), help="The fiscal year (1 January to 31 December).")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path),
              help="The FEC file, or a folder to write it in as <SIREN>FEC<AAAAMMJJ>.txt (creditor.siret).")
@click.option("--separator", type=click.Choice(sorted(SEPARATORS)), default="pipe", show_default=True,
              help="Field separator of the FEC (the article allows either).")
@rules_option
@pass_context
def export_fec_command(ctx: Context, year: int, out_path: Path, separator: str, rules_dir: Path | None) -> None:
    """The Fichier des Écritures Comptables of a year (article A47 A-1 du LPF) for what recouvrement books:
    receipts allocated to invoice shares, credits, shares moved to the patient after a rejection. Beside it,
    the same entries as an accounting journal CSV (<name>.journal.csv, French Excel dialect).

    Example: recouvrement export fec --year 2026 --out compta/
    """
    rules = load_rules(rules_dir).accounting
    done = export_fec(ctx.engine, ctx.settings, rules, year, out_path, separator=SEPARATORS[separator])
    out.print(f"{done.entries} écriture(s), {done.lines} ligne(s) écrites dans {done.fec} "
              f"(débit {format_eur(done.debit_cents)}, crédit {format_eur(done.credit_cents)})")
    out.print(f"journal comptable CSV : {done.journal}")
    if done.masked:
        out.print(f"{done.masked} libellé(s) de compte auxiliaire masqué(s) : le contrôle de confidentialité y a "
                  "trouvé une donnée médicale")
