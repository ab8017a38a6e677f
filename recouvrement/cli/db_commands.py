"""`recouvrement db ...`: schema management."""

from __future__ import annotations

from recouvrement.cli import Context, cli, out, pass_context
from recouvrement.db.session import open_engine, schema_is_current, upgrade


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_context
def db_upgrade(ctx: Context) -> None:
    """Create or upgrade the schema to the latest migration (also done automatically on first use)."""
    engine = open_engine(ctx.database_url, migrate=False, schema=ctx.settings.database.schema)
    was_current = schema_is_current(engine)
    upgrade(engine)
    out.print("schéma déjà à jour" if was_current else "schéma mis à jour")
