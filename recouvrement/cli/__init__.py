"""The `recouvrement` command line: small click commands over the application layer.

Every command opens the database named by --db / RECOUVREMENT_DB (default: SQLite file
recouvrement.db here) and the settings named by --config / RECOUVREMENT_CONFIG. A user error prints
one line naming file, line and field, and exits 2; never a traceback.
"""

from __future__ import annotations

import sys
from functools import cached_property

import click
from rich.console import Console
from rich.markup import escape

from recouvrement import __version__
from recouvrement.config import Settings, load_settings
from recouvrement.db.session import open_engine
from recouvrement.errors import RecouvrementError

console = Console(stderr=True, highlight=False)
out = Console(highlight=False, soft_wrap=True)


class Context:
    def __init__(self, db: str | None, config: str | None) -> None:
        self.db_url, self.config_file = db, config

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config_file)

    @cached_property
    def engine(self):
        return open_engine(self.db_url)


pass_context = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="recouvrement")
@click.option("--db", envvar="RECOUVREMENT_DB", help="SQLAlchemy URL of the database (default: sqlite:///recouvrement.db).")
@click.option("--config", envvar="RECOUVREMENT_CONFIG", type=click.Path(dir_okay=False),
              help="Settings file (default: ./recouvrement.toml when present).")
@click.pass_context
def cli(ctx: click.Context, db: str | None, config: str | None) -> None:
    """Medical receivables and ethical debt collection for French healthcare providers."""
    ctx.obj = Context(db, config)


def main() -> None:
    from recouvrement.cli import commands  # noqa: F401  (registers the commands)
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RecouvrementError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True)
        sys.exit(2)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
