"""`recouvrement db ...`: schema management."""

from __future__ import annotations

from recouvrement.cli import Context, cli, out, pass_context
from recouvrement.db.session import open_engine, schema_is_current, upgrade


@cli.group()
def db() -> None:
    """Schéma de la base de données."""


@db.command("upgrade")
@pass_context
def db_upgrade(ctx: Context) -> None:
    """Créer ou mettre à jour le schéma jusqu'à la dernière migration (aussi fait d'office au premier usage)."""
    engine = open_engine(ctx.database_url, migrate=False, schema=ctx.settings.database.schema)
    was_current = schema_is_current(engine)
    upgrade(engine)
    out.print("schéma déjà à jour" if was_current else "schéma mis à jour")
