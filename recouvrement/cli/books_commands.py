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
                        help="Dossier des fichiers de règles, dont accounting.toml (défaut : le dossier rules/ "
                             "livré).")(command)


@export_group.command("fec")
@click.option("--year", required=True, type=click.IntRange(1900, 2100), help="L'exercice (du 1er janvier au 31 décembre).")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path),
              help="Le fichier FEC, ou un dossier où l'écrire sous le nom <SIREN>FEC<AAAAMMJJ>.txt (creditor.siret).")
@click.option("--separator", type=click.Choice(sorted(SEPARATORS)), default="pipe", show_default=True,
              help="Séparateur de champs du FEC (l'article admet les deux).")
@rules_option
@pass_context
def export_fec_command(ctx: Context, year: int, out_path: Path, separator: str, rules_dir: Path | None) -> None:
    """Le Fichier des Écritures Comptables d'un exercice (article A47 A-1 du LPF) pour ce que recouvrement
    comptabilise : encaissements imputés sur les parts des factures, avoirs, parts reportées sur le patient
    après un rejet. À côté, les mêmes écritures en journal comptable CSV (<nom>.journal.csv, format Excel
    français).

    Exemple : recouvrement export fec --year 2026 --out compta/
    """
    rules = load_rules(rules_dir).accounting
    done = export_fec(ctx.engine, ctx.settings, rules, year, out_path, separator=SEPARATORS[separator])
    out.print(f"{done.entries} écriture(s), {done.lines} ligne(s) écrites dans {done.fec} "
              f"(débit {format_eur(done.debit_cents)}, crédit {format_eur(done.credit_cents)})")
    out.print(f"journal comptable CSV : {done.journal}")
    if done.masked:
        out.print(f"{done.masked} libellé(s) de compte auxiliaire masqué(s) : le contrôle de confidentialité y a "
                  "trouvé une donnée médicale")
