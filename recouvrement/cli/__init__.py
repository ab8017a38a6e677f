"""The `recouvrement` command line: small click commands over the application layer.

Every command opens the database named by --db / RECOUVREMENT_DB (default: SQLite file
recouvrement.db here) and the settings named by --config / RECOUVREMENT_CONFIG. What a person reads
is in French. A user error prints one line naming file, line and field; never a traceback.

Exit statuses (documented in README.md):
  0  done;
  1  done, but something was refused (rows of an import, a document, a failed nightly step);
  2  user error: bad option, missing or unreadable file, bad settings — nothing was changed;
  3  the nightly lock is held by another run;
  4  database error (unreachable, refused the operation) — nothing was changed;
  5  `remind`: payments imported are not reconciled yet — nothing written; run `reconcile` first;
  70 internal error (a bug): one line; RECOUVREMENT_DEBUG=1 shows the traceback.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import sys
from datetime import date, datetime
from functools import cached_property
from zoneinfo import ZoneInfo

import click
import rich.table
from rich.console import Console

from recouvrement import __version__
from recouvrement.config import Settings, load_settings
from recouvrement.db.session import open_engine
from recouvrement.errors import RecouvrementError
from recouvrement.memory import no_cycle_collection

USER_ERROR_EXIT = 2
DATABASE_ERROR_EXIT = 4
NOT_RECONCILED_EXIT = 5
INTERNAL_ERROR_EXIT = 70


def _width(stream) -> int | None:
    """Piped output is read by a program or a file: never cut it to 80 columns."""
    if os.environ.get("COLUMNS") or stream.isatty():
        return None
    return 400


# Markup is off: a value from outside (a payer's name, a file name) is printed as it is, and a
# "[/red]" in it can neither restyle nor crash the display. Styles are given with style=.
console = Console(stderr=True, highlight=False, markup=False, soft_wrap=True, width=_width(sys.stderr))
out = Console(highlight=False, markup=False, soft_wrap=True, width=_width(sys.stdout))


class Table(rich.table.Table):
    """A rich table that never cuts a value ("2027-0…"): on a narrow screen its text columns wrap between
    words; when even that does not fit, the table is drawn at its narrowest whole width and the terminal
    wraps the lines, so every date and amount stays whole."""

    def __rich_console__(self, console, options):
        narrowest = self.__rich_measure__(console, options.update(max_width=10_000)).minimum
        if narrowest > options.max_width:
            options = options.update(max_width=narrowest + len(self.columns))   # rich measures a little short
        yield from super().__rich_console__(console, options)


# The domain raises with its own field names; the command line shows the option a person typed.
OPTION_OF_FIELD = {
    "role": "--role",
    "demo_folder": "--dir",
    "as_of": "--as-of",
    "database": "--db",
    "iban": "--iban",
    "bic": "--bic",
    "account_holder": "--name",
    "reason": "--reason",
    "note": "--note",
    "channel": "--channel",
    "category": "--category",
    "months": "--months",
    "amount": "--amount",
    "released_on": "--on",
    "review_on": "--review-on",
    "accepted_on": "--on",
}


def user_message(exc: RecouvrementError) -> str:
    """A user error in the command line's words: its field named as the option that sets it; medical data in
    it described, never echoed (core.privacy.safe_message)."""
    from recouvrement.core.privacy import safe_message
    return safe_message(exc.located(OPTION_OF_FIELD.get(exc.field or "")))


def error(message: object, label: str = "erreur") -> None:
    """One line on stderr: `label : message`, the label in red."""
    console.print(f"{label} : ", style="bold red", end="")
    console.print(str(message))


def warning(message: object, label: str = "avertissement") -> None:
    console.print(f"{label} : ", style="yellow", end="")
    console.print(str(message))


class Context:
    def __init__(self, db: str | None, config: str | None) -> None:
        self.db_url, self.config_file = db, config

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config_file)

    @property
    def database_url(self) -> str | None:
        """--db / RECOUVREMENT_DB, else the settings' [database] url, else the default SQLite file."""
        return self.db_url or self.settings.database.url or None

    @cached_property
    def engine(self):
        """The database, its audit trail sealed with the installation's key; when the command ends (however
        it ends), the trail's head is anchored in the checkpoint file."""
        from recouvrement.audit import seal_engine, settings_seal
        engine = seal_engine(open_engine(self.database_url, schema=self.settings.database.schema),
                             settings_seal(self.settings))
        click_context = click.get_current_context(silent=True)
        if click_context is not None:
            click_context.call_on_close(lambda: _close(engine))
        return engine

    @cached_property
    def today(self) -> date:
        """The clinic's day (the [schedule] timezone, Europe/Paris by default)."""
        return datetime.now(ZoneInfo(self.settings.schedule.timezone)).date()


def _close(engine) -> None:
    """As a command ends: the audit trail anchored, then the database's connections closed (SQLite checkpoints
    its WAL into the file then), not left to the interpreter's end (see `main`)."""
    _anchor_audit_trail(engine)
    engine.dispose()


def _anchor_audit_trail(engine) -> None:
    """Write the audit checkpoint as a command ends; a failure is one warning line, never a mask over the
    command's own outcome (its error, its exit status)."""
    from recouvrement.audit import write_checkpoint
    try:
        write_checkpoint(engine)
    except Exception as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        console.print(f"avertissement : point de contrôle d'audit non écrit ({reason})", markup=False)


pass_context = click.make_pass_decorator(Context)


class LazyGroup(click.Group):
    """A group whose commands are imported when asked for (click's documented lazy loading): a command imports
    only its own module and what that module runs, not every use case's libraries (pdf, web, importers). `lazy`
    names, for each command, the modules of this package that register it and its subcommands; `--help` imports
    them all to show each command's one-line help. tests/test_cli_lazy.py holds the maps equal to the modules."""

    def __init__(self, *args, lazy: dict[str, tuple[str, ...]] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        # The cyclic garbage collector paused meanwhile: a command's libraries (pandas, pyarrow, SQLModel's tables)
        # are a few hundred thousand objects, none garbage, and each batch of them made the collector walk the heap
        # again: `remind`'s lazy import 1.03-1.23 -> 0.98-1.10 s CPU (alternated, 4 runs each, quiet machine).
        with no_cycle_collection():
            for module in self.lazy.get(cmd_name, ()):
                importlib.import_module(f"{__name__}.{module}")   # registers its commands on their groups
        return super().get_command(ctx, cmd_name)


# The module(s) registering each command: where it is defined first, then those adding subcommands to it.
COMMAND_MODULES = {
    "audit": ("audit_commands",),
    "balance": ("reconcile_commands",),
    "call": ("call_commands",),
    "db": ("db_commands",),
    "demo": ("demo_commands",),
    "dispute": ("dispute_commands",),
    "export": ("import_commands",),
    "hold": ("dispute_commands",),
    "import": ("import_commands",),
    "match": ("reconcile_commands",),
    "nightly": ("nightly_commands",),
    "plan": ("plan_commands",),
    "reconcile": ("reconcile_commands",),
    "refund": ("refund_commands",),
    "registered-post": ("agency_commands",),
    "remind": ("remind_commands",),
    "report": ("nightly_commands",),
    "runs": ("nightly_commands",),
    "schedule": ("nightly_commands",),
    "segments": ("segment_commands",),
    "unlock": ("nightly_commands",),
    "unmatch": ("reconcile_commands",),
    "user": ("web_commands",),
    "web": ("web_commands",),
    "write-off": ("write_off_commands",),
}


@click.group(cls=LazyGroup, lazy=COMMAND_MODULES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="recouvrement")
@click.option("--db", envvar="RECOUVREMENT_DB", help="URL SQLAlchemy de la base (défaut : sqlite:///recouvrement.db).")
@click.option("--config", envvar="RECOUVREMENT_CONFIG", type=click.Path(dir_okay=False),
              help="Fichier de réglages (défaut : ./recouvrement.toml s'il existe).")
@click.pass_context
def cli(ctx: click.Context, db: str | None, config: str | None) -> None:
    """Créances de soins et recouvrement éthique pour les établissements de santé français."""
    ctx.obj = Context(db, config)


def database_message(exc: Exception) -> str:
    """One line about a database error, without the SQL statement or its parameters (they may hold
    patients' data): the driver's first line only."""
    from sqlalchemy import exc as sa
    if isinstance(exc, sa.ArgumentError):
        return "adresse de base de données invalide (--db ou RECOUVREMENT_DB)"
    original = getattr(exc, "orig", None)
    detail = str(original if original is not None else exc).strip().splitlines()
    first = detail[0] if detail else type(exc).__name__
    if isinstance(exc, sa.OperationalError):
        return f"base de données inaccessible : {first}"
    return f"la base de données a refusé l'opération : {first}"


def main() -> None:
    from recouvrement.cli.french import install as french
    french()
    # The interpreter's end collects every object left, twice: 0.25 s after a reminder run at 1M (the modules'
    # ~250k objects). They are frozen out of it as it starts (atexit, before those collections): what a command
    # opened is closed by then (Context.engine). Registered once, however often main() runs in a process.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    _main()


def _main() -> None:
    from sqlalchemy.exc import SQLAlchemyError
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        error("abandon")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RecouvrementError as exc:
        error(user_message(exc))
        sys.exit(USER_ERROR_EXIT)
    except SQLAlchemyError as exc:
        error(database_message(exc))
        sys.exit(DATABASE_ERROR_EXIT)
    except OSError as exc:
        where = f"{exc.filename} : " if exc.filename else ""
        error(f"{where}{exc.strerror or type(exc).__name__}")
        sys.exit(USER_ERROR_EXIT)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        error("interrompu")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("RECOUVREMENT_DEBUG"):
            raise
        error(f"erreur interne ({type(exc).__name__}) ; relancer avec RECOUVREMENT_DEBUG=1 pour le détail")
        sys.exit(INTERNAL_ERROR_EXIT)
