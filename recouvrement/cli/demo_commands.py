"""`recouvrement demo`: the main job on the bundled samples, in a folder of its own."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from recouvrement.cli import Context, cli, out, pass_context

SAMPLES = Path(__file__).resolve().parents[1] / "sample_clinic"


@cli.command()
@click.option("--dir", "folder", default="demo", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Dossier de travail : sa base (sauf si --db est donné), ses réglages, sorties et rapports. "
                   "Relancée, la démo le vide et repart de zéro.")
@pass_context
def demo(ctx: Context, folder: Path) -> None:
    """Faire tourner le traitement de nuit sur la clinique d'exemple livrée, sur sept semaines : import,
    rapprochement, relances, une proposition d'échéancier, la remise à l'agence et le rapport comptable."""
    from recouvrement.app.demo import prepare_folder, run_demo
    folder = folder.resolve()
    own_database = not ctx.db_url
    out.print(prepare_folder(folder, SAMPLES, own_database))
    if own_database:
        ctx.db_url = f"sqlite:///{folder / 'recouvrement.db'}"
    if not ctx.config_file:
        ctx.config_file = str(folder / "recouvrement.toml")
    report = run_demo(ctx, SAMPLES, folder, out)
    out.print("\nPour explorer ce que la démo a fait, depuis son dossier (il a sa base, ses réglages et sa clé) :")
    out.print(f"  cd {shlex.quote(str(folder))} && recouvrement balance --as-of 08/01/2027")
    out.print("ou, depuis n'importe quel dossier :")
    db = ctx.engine.url.render_as_string(hide_password=True)
    out.print(f"  export RECOUVREMENT_DB={shlex.quote(db)} RECOUVREMENT_CONFIG={shlex.quote(ctx.config_file)}")
    out.print("puis : recouvrement runs ; recouvrement segments --as-of 08/01/2027 ; recouvrement audit log")
    out.print("Rapport : ", style="bold", end="")
    out.print(str(report))
