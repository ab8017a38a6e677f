"""`recouvrement demo`: the main job on the bundled samples, in a folder of its own."""

from __future__ import annotations

from pathlib import Path

import click

from recouvrement.cli import Context, cli, out, pass_context

SAMPLES = Path(__file__).resolve().parents[1] / "sample_clinic"


@cli.command()
@click.option("--dir", "folder", default="demo", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Working folder: its database (unless --db is given), outputs and reports.")
@pass_context
def demo(ctx: Context, folder: Path) -> None:
    """Run the nightly job on the bundled sample clinic over seven weeks: import, reconcile, reminders,
    a plan proposal, the agency handover and the accountant's report."""
    from recouvrement.app.demo import run_demo
    folder.mkdir(parents=True, exist_ok=True)
    if not ctx.db_url:
        ctx.db_url = f"sqlite:///{folder / 'recouvrement.db'}"
    if not ctx.config_file:
        ctx.config_file = str(SAMPLES / "recouvrement.toml")
    run_demo(ctx, SAMPLES, folder, out)
