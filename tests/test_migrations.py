"""The migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import recouvrement.db.models  # noqa: F401


def test_the_migrated_schema_matches_the_models(engine):
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert differences == []


def test_upgrading_an_up_to_date_database_changes_nothing(db_url):
    from recouvrement.db.session import open_engine, schema_is_current
    engine = open_engine(db_url)
    assert schema_is_current(engine)
    open_engine(db_url).dispose()
    assert schema_is_current(engine)
